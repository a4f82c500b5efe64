//! What the server serves: every resource with its group, version, kind, scope,
//! verbs, short names and subresources — the data behind discovery, URL routing and
//! per-resource behaviour. Built-in resources mirror a real v1.32 server's discovery
//! (`testdata/k8s-reference/v1.32/api-v1.json`, `apis-*.json`); custom resources are
//! added and removed at runtime as their CustomResourceDefinitions come and go.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::{Value, json};

/// Storage identity of a resource: versions of one group/resource share objects.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupResource {
    pub group: String,
    pub resource: String,
}

impl GroupResource {
    pub fn new(group: &str, resource: &str) -> Self {
        GroupResource { group: group.into(), resource: resource.into() }
    }
}

impl std::fmt::Display for GroupResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() { f.write_str(&self.resource) } else { write!(f, "{}.{}", self.resource, self.group) }
    }
}

/// A subresource as discovery lists it (`pods/status`, `deployments/scale`, ...).
#[derive(Debug, Clone)]
pub struct Subresource {
    pub name: &'static str,
    pub kind: &'static str,
    /// Set when the subresource speaks another group's type (Scale, Eviction).
    pub group_version: Option<(&'static str, &'static str)>,
    pub verbs: &'static [&'static str],
}

/// How a resource's objects are converted when served under a group other than
/// the one they are stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    None,
    /// events.k8s.io/v1 Events are core/v1 Events with renamed fields.
    EventsV1,
}

/// Everything the server knows about one served resource (one group/version).
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub verbs: Vec<&'static str>,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub subresources: Vec<Subresource>,
    pub storage_version_hash: Option<String>,
    /// Where the objects live (differs from group/plural only for converted views).
    pub storage: GroupResource,
    pub conversion: Conversion,
    /// `metadata.generation` is maintained and bumped on spec changes.
    pub has_generation: bool,
    /// Writes to the main resource keep status; `/status` keeps everything else.
    pub has_status: bool,
    /// Field-selector labels beyond metadata.name/metadata.namespace.
    pub field_labels: &'static [&'static str],
    /// Served from a CustomResourceDefinition (no strategic merge patch, no typed schema).
    pub custom: bool,
    /// DELETE answers with the object instead of a Status (upstream `ReturnDeletedObject`).
    pub return_deleted: bool,
    /// A CRD's `additionalPrinterColumns` for table output.
    pub printer_columns: Option<Value>,
    /// Metrics and other read-only views.
    pub read_only: bool,
    /// A custom resource's `openAPIV3Schema`, which its objects are held to.
    pub schema: Option<std::sync::Arc<Value>>,
}

impl ResourceInfo {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    pub fn group_resource(&self) -> GroupResource {
        GroupResource::new(&self.group, &self.plural)
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    pub fn has_subresource(&self, name: &str) -> bool {
        self.subresources.iter().any(|s| s.name == name)
    }

    pub fn allows(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }

    /// Whether `label` may be used in a field selector on this resource.
    pub fn supports_field(&self, label: &str) -> bool {
        label == "metadata.name"
            || (self.namespaced && label == "metadata.namespace")
            || self.field_labels.contains(&label)
    }

    /// The discovery entries for this resource and its subresources (APIResourceList items).
    pub fn discovery_entries(&self) -> Vec<Value> {
        let mut main = json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": self.verbs,
        });
        if !self.short_names.is_empty() {
            main["shortNames"] = json!(self.short_names);
        }
        if !self.categories.is_empty() {
            main["categories"] = json!(self.categories);
        }
        if let Some(h) = &self.storage_version_hash {
            main["storageVersionHash"] = json!(h);
        }
        let mut out = vec![main];
        for s in &self.subresources {
            let mut e = json!({
                "name": format!("{}/{}", self.plural, s.name),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": s.kind,
                "verbs": s.verbs,
            });
            if let Some((g, v)) = s.group_version {
                e["group"] = json!(g);
                e["version"] = json!(v);
            }
            out.push(e);
        }
        out
    }
}

const ALL_VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
const STATUS_VERBS: &[&str] = &["get", "patch", "update"];
const READ_VERBS: &[&str] = &["get", "list"];

fn status_sub(kind: &'static str) -> Subresource {
    Subresource { name: "status", kind, group_version: None, verbs: STATUS_VERBS }
}

fn scale_sub() -> Subresource {
    Subresource { name: "scale", kind: "Scale", group_version: Some(("autoscaling", "v1")), verbs: STATUS_VERBS }
}

/// Builder for the built-in table below, so each entry reads as one line of facts.
struct B(ResourceInfo);

impl B {
    fn new(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        let singular = kind.to_lowercase();
        B(ResourceInfo {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            singular,
            kind: kind.into(),
            namespaced,
            verbs: ALL_VERBS.to_vec(),
            short_names: Vec::new(),
            categories: Vec::new(),
            subresources: Vec::new(),
            storage_version_hash: None,
            storage: GroupResource::new(group, plural),
            conversion: Conversion::None,
            has_generation: false,
            has_status: false,
            field_labels: &[],
            custom: false,
            return_deleted: false,
            printer_columns: None,
            read_only: false,
            schema: None,
        })
    }
    fn short(mut self, names: &[&str]) -> Self {
        self.0.short_names = names.iter().map(|s| s.to_string()).collect();
        self
    }
    fn all(mut self) -> Self {
        self.0.categories = vec!["all".into()];
        self
    }
    fn hash(mut self, h: &str) -> Self {
        self.0.storage_version_hash = Some(h.into());
        self
    }
    fn verbs(mut self, v: &[&'static str]) -> Self {
        self.0.verbs = v.to_vec();
        self
    }
    fn status(mut self) -> Self {
        self.0.has_status = true;
        self.0.subresources.push(status_sub(leak(&self.0.kind)));
        self
    }
    fn sub(mut self, s: Subresource) -> Self {
        self.0.subresources.push(s);
        self
    }
    fn generation(mut self) -> Self {
        self.0.has_generation = true;
        self
    }
    fn fields(mut self, f: &'static [&'static str]) -> Self {
        self.0.field_labels = f;
        self
    }
    fn returns_deleted(mut self) -> Self {
        self.0.return_deleted = true;
        self
    }
    fn done(self) -> ResourceInfo {
        self.0
    }
}

/// Kinds are a small closed set; leaking them once gives the `&'static str` the
/// subresource table wants without threading lifetimes everywhere.
fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

/// Field-selector labels upstream supports per resource (`GetAttrs`/`ToSelectableFields`).
pub const POD_FIELDS: &[&str] = &[
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
];
pub const EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];
pub const EVENT_V1_FIELDS: &[&str] = &[
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reason",
    "reportingController",
    "type",
];

/// The built-in resources, in discovery order.
pub fn builtin() -> Vec<ResourceInfo> {
    let v1 = |plural: &str, kind: &str, ns: bool| B::new("", "v1", plural, kind, ns);
    let apps = |plural: &str, kind: &str| B::new("apps", "v1", plural, kind, true);
    let eviction =
        Subresource { name: "eviction", kind: "Eviction", group_version: Some(("policy", "v1")), verbs: &["create"] };
    let binding = Subresource { name: "binding", kind: "Binding", group_version: None, verbs: &["create"] };
    let node_proxy = Subresource {
        name: "proxy",
        kind: "NodeProxyOptions",
        group_version: None,
        verbs: &["create", "delete", "get", "patch", "update"],
    };
    // Streams of containers that do not exist in a simulator: served so that
    // clients get a clear answer (see `crate::http`), not a 404.
    let log = Subresource { name: "log", kind: "Pod", group_version: None, verbs: &["get"] };
    let exec = Subresource { name: "exec", kind: "PodExecOptions", group_version: None, verbs: &["create", "get"] };
    let attach =
        Subresource { name: "attach", kind: "PodAttachOptions", group_version: None, verbs: &["create", "get"] };
    let portforward = Subresource {
        name: "portforward",
        kind: "PodPortForwardOptions",
        group_version: None,
        verbs: &["create", "get"],
    };
    // TokenRequest: answered by `crate::auth`, like the review APIs below.
    let token_request = Subresource {
        name: "token",
        kind: "TokenRequest",
        group_version: Some(("authentication.k8s.io", "v1")),
        verbs: &["create"],
    };
    let review = |group: &str, plural: &str, kind: &str, ns: bool| {
        B::new(group, "v1", plural, kind, ns).verbs(&["create"]).done()
    };
    let ns_finalize = Subresource { name: "finalize", kind: "Namespace", group_version: None, verbs: &["update"] };
    let mut events_v1 = B::new("events.k8s.io", "v1", "events", "Event", true)
        .short(&["ev"])
        .hash("r2yiGXH7wu8=")
        .fields(EVENT_V1_FIELDS)
        .done();
    events_v1.storage = GroupResource::new("", "events");
    events_v1.conversion = Conversion::EventsV1;
    let metrics = |plural: &str, kind: &str, ns: bool| {
        let mut r = B::new("metrics.k8s.io", "v1beta1", plural, kind, ns).verbs(READ_VERBS).done();
        r.read_only = true;
        r
    };

    vec![
        v1("bindings", "Binding", true).verbs(&["create"]).done(),
        v1("configmaps", "ConfigMap", true).short(&["cm"]).hash("qFsyl6wFWjQ=").done(),
        v1("endpoints", "Endpoints", true).short(&["ep"]).hash("fWeeMqaN/OA=").done(),
        v1("events", "Event", true).short(&["ev"]).hash("r2yiGXH7wu8=").fields(EVENT_FIELDS).done(),
        v1("namespaces", "Namespace", false)
            .verbs(&["create", "delete", "get", "list", "patch", "update", "watch"])
            .short(&["ns"])
            .hash("Q3oi5N2YM8M=")
            .sub(ns_finalize)
            .status()
            .fields(&["status.phase"])
            .returns_deleted()
            .done(),
        v1("nodes", "Node", false)
            .short(&["no"])
            .hash("XwShjMxG9Fs=")
            .sub(node_proxy)
            .status()
            .fields(&["spec.unschedulable"])
            .done(),
        v1("persistentvolumeclaims", "PersistentVolumeClaim", true)
            .short(&["pvc"])
            .hash("QWTyNDq0dC4=")
            .status()
            .done(),
        v1("persistentvolumes", "PersistentVolume", false).short(&["pv"]).hash("HN/zwEC+JgM=").status().done(),
        v1("pods", "Pod", true)
            .short(&["po"])
            .all()
            .hash("xPOwRZ+Yhw8=")
            .sub(attach)
            .sub(binding)
            .sub(eviction)
            .sub(exec)
            .sub(log)
            .sub(portforward)
            .status()
            .fields(POD_FIELDS)
            .returns_deleted()
            .done(),
        v1("resourcequotas", "ResourceQuota", true).short(&["quota"]).hash("8uhSgffRX6w=").status().done(),
        v1("secrets", "Secret", true).hash("S6u1pOWzb84=").fields(&["type"]).done(),
        v1("serviceaccounts", "ServiceAccount", true)
            .short(&["sa"])
            .hash("pbx9ZvyFpBE=")
            .sub(token_request)
            .returns_deleted()
            .done(),
        v1("services", "Service", true).short(&["svc"]).all().hash("0/CO1lhkEBI=").status().done(),
        apps("controllerrevisions", "ControllerRevision").hash("85nkx63pcBU=").done(),
        apps("daemonsets", "DaemonSet").short(&["ds"]).all().hash("dd7pWHUlMKQ=").status().generation().done(),
        apps("deployments", "Deployment")
            .short(&["deploy"])
            .all()
            .hash("8aSe+NMegvE=")
            .sub(scale_sub())
            .status()
            .generation()
            .done(),
        apps("replicasets", "ReplicaSet")
            .short(&["rs"])
            .all()
            .hash("P1RzHs8/mWQ=")
            .sub(scale_sub())
            .status()
            .generation()
            .fields(&["status.replicas"])
            .done(),
        apps("statefulsets", "StatefulSet")
            .short(&["sts"])
            .all()
            .hash("H+vl74LkKdo=")
            .sub(scale_sub())
            .status()
            .generation()
            .done(),
        // Create-only, nothing stored: authentication and authorization reviews.
        review("authentication.k8s.io", "selfsubjectreviews", "SelfSubjectReview", false),
        review("authentication.k8s.io", "tokenreviews", "TokenReview", false),
        review("authorization.k8s.io", "localsubjectaccessreviews", "LocalSubjectAccessReview", true),
        review("authorization.k8s.io", "selfsubjectaccessreviews", "SelfSubjectAccessReview", false),
        review("authorization.k8s.io", "selfsubjectrulesreviews", "SelfSubjectRulesReview", false),
        review("authorization.k8s.io", "subjectaccessreviews", "SubjectAccessReview", false),
        B::new("batch", "v1", "cronjobs", "CronJob", true)
            .short(&["cj"])
            .all()
            .hash("sd5LIXh4Fjs=")
            .status()
            .generation()
            .done(),
        B::new("batch", "v1", "jobs", "Job", true).all().hash("mudhfqk/qZY=").status().generation().done(),
        B::new("coordination.k8s.io", "v1", "leases", "Lease", true).hash("gqkMMb/YqFM=").done(),
        events_v1,
        // Stored, not enforced (the simulation has no network): manifests that carry one apply.
        B::new("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", true)
            .short(&["netpol"])
            .generation()
            .done(),
        B::new("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", true)
            .short(&["pdb"])
            .hash("EVWiDmWqyJw=")
            .status()
            .generation()
            .done(),
        // Its registry sets generation 1 on create, as the recorded create shows.
        B::new("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", false)
            .short(&["pc"])
            .hash("1QwjyaZjj3Y=")
            .generation()
            .done(),
        B::new("storage.k8s.io", "v1", "storageclasses", "StorageClass", false).short(&["sc"]).returns_deleted().done(),
        // RBAC objects: enforced when the server authorizes with RBAC (`crate::auth`).
        B::new("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", false).done(),
        B::new("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", false).done(),
        B::new("rbac.authorization.k8s.io", "v1", "roles", "Role", true).done(),
        B::new("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true).done(),
        {
            let mut crd =
                B::new("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", false)
                    .short(&["crd", "crds"])
                    .hash("jfWCUB31mvA=")
                    .status()
                    .generation()
                    .done();
            crd.categories = vec!["api-extensions".into()];
            crd
        },
        metrics("nodes", "NodeMetrics", false),
        metrics("pods", "PodMetrics", true),
    ]
}

/// Served API groups with their versions, preferred first (discovery order).
#[derive(Debug, Clone)]
pub struct GroupVersions {
    pub name: String,
    pub versions: Vec<String>,
}

/// The runtime registry: built-ins plus whatever the CRDs define.
#[derive(Debug)]
pub struct Registry {
    inner: RwLock<RegistryInner>,
}

#[derive(Debug, Default)]
struct RegistryInner {
    /// (group, version, plural) → info
    by_gvr: BTreeMap<(String, String, String), Arc<ResourceInfo>>,
    /// Discovery order of (group, version) pairs and their resources.
    order: Vec<(String, String)>,
    /// CRD name → the GVRs it registered.
    crds: BTreeMap<String, Vec<(String, String, String)>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    pub fn new() -> Self {
        let mut inner = RegistryInner::default();
        for r in builtin() {
            inner.insert(Arc::new(r));
        }
        Registry { inner: RwLock::new(inner) }
    }

    /// Look a resource up by URL parts.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.inner.read().by_gvr.get(&(group.into(), version.into(), plural.into())).cloned()
    }

    /// The resource serving `kind` in `apiVersion` (used by the behaviour layer and
    /// for ownerReferences).
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceInfo>> {
        let (group, version) = split_api_version(api_version);
        self.inner
            .read()
            .by_gvr
            .values()
            .find(|r| r.group == group && r.version == version && r.kind == kind && r.conversion == Conversion::None)
            .cloned()
    }

    /// Every served resource of a storage table (e.g. both Event views).
    pub fn views_of(&self, storage: &GroupResource) -> Vec<Arc<ResourceInfo>> {
        self.inner.read().by_gvr.values().filter(|r| &r.storage == storage).cloned().collect()
    }

    /// The resources of one group/version, in registration order.
    pub fn resources_of(&self, group: &str, version: &str) -> Vec<Arc<ResourceInfo>> {
        let inner = self.inner.read();
        inner.by_gvr.values().filter(|r| r.group == group && r.version == version).cloned().collect()
    }

    /// Groups (excluding the core group) in discovery order, with their versions.
    pub fn groups(&self) -> Vec<GroupVersions> {
        let inner = self.inner.read();
        let mut out: Vec<GroupVersions> = Vec::new();
        for (g, v) in &inner.order {
            if g.is_empty() {
                continue;
            }
            match out.iter_mut().find(|gv| &gv.name == g) {
                Some(gv) => gv.versions.push(v.clone()),
                None => out.push(GroupVersions { name: g.clone(), versions: vec![v.clone()] }),
            }
        }
        out
    }

    /// Register the resources a CustomResourceDefinition defines (replacing an
    /// earlier registration of the same CRD).
    pub fn register_crd(&self, crd_name: &str, infos: Vec<ResourceInfo>) {
        let mut inner = self.inner.write();
        inner.remove_crd(crd_name);
        let mut keys = Vec::new();
        for r in infos {
            keys.push((r.group.clone(), r.version.clone(), r.plural.clone()));
            inner.insert(Arc::new(r));
        }
        inner.crds.insert(crd_name.into(), keys);
    }

    pub fn unregister_crd(&self, crd_name: &str) {
        self.inner.write().remove_crd(crd_name);
    }

    /// All served resources (for tests and the behaviour layer).
    pub fn all(&self) -> Vec<Arc<ResourceInfo>> {
        self.inner.read().by_gvr.values().cloned().collect()
    }
}

impl RegistryInner {
    fn insert(&mut self, r: Arc<ResourceInfo>) {
        let gv = (r.group.clone(), r.version.clone());
        if !self.order.contains(&gv) {
            self.order.push(gv);
        }
        self.by_gvr.insert((r.group.clone(), r.version.clone(), r.plural.clone()), r);
    }

    fn remove_crd(&mut self, crd_name: &str) {
        if let Some(keys) = self.crds.remove(crd_name) {
            for k in keys {
                self.by_gvr.remove(&k);
            }
            let by_gvr = &self.by_gvr;
            self.order.retain(|(g, v)| by_gvr.keys().any(|(g2, v2, _)| g2 == g && v2 == v));
        }
    }
}

/// "apps/v1" → ("apps", "v1"); "v1" → ("", "v1").
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// The resources a CRD object defines, one per served version. Errors name the
/// field that makes the CRD unusable.
pub fn crd_resources(crd: &Value) -> Result<Vec<ResourceInfo>, String> {
    let spec = crd.get("spec").ok_or("spec: Required value")?;
    let group = spec.get("group").and_then(Value::as_str).ok_or("spec.group: Required value")?;
    let names = spec.get("names").ok_or("spec.names: Required value")?;
    let plural = names.get("plural").and_then(Value::as_str).ok_or("spec.names.plural: Required value")?;
    let kind = names.get("kind").and_then(Value::as_str).ok_or("spec.names.kind: Required value")?;
    let singular =
        names.get("singular").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| kind.to_lowercase());
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let short_names = strings(names.get("shortNames"));
    let categories = strings(names.get("categories"));
    let namespaced = match spec.get("scope").and_then(Value::as_str) {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        other => {
            return Err(format!(
                "spec.scope: Unsupported value: {other:?}: supported values: \"Cluster\", \"Namespaced\""
            ));
        }
    };
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .filter(|v| !v.is_empty())
        .ok_or("spec.versions: Invalid value: must have exactly one version marked as storage version")?;
    let mut out = Vec::new();
    for v in versions {
        if v.get("served").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let name = v.get("name").and_then(Value::as_str).ok_or("spec.versions[].name: Required value")?;
        let subs = v.get("subresources");
        let mut info = B::new(group, name, plural, kind, namespaced).generation().done();
        info.singular = singular.clone();
        info.short_names = short_names.clone();
        info.categories = categories.clone();
        info.custom = true;
        info.printer_columns = v.get("additionalPrinterColumns").cloned();
        info.schema = v.pointer("/schema/openAPIV3Schema").cloned().map(std::sync::Arc::new);
        if subs.and_then(|s| s.get("status")).is_some() {
            info.has_status = true;
            info.subresources.push(status_sub(leak(kind)));
        }
        if subs.and_then(|s| s.get("scale")).is_some() {
            info.subresources.push(scale_sub());
        }
        out.push(info);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(name: &str) -> Value {
        let path = format!("{}/../../testdata/k8s-reference/v1.32/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// Every resource we serve appears in the real server's discovery with exactly
    /// the same entry (name, kind, scope, verbs, shortNames, categories, subresources).
    #[test]
    fn builtins_match_recorded_discovery() {
        let reg = Registry::new();
        let docs = [
            ("", "v1", "api-v1.json"),
            ("apps", "v1", "apis-apps-v1.json"),
            ("policy", "v1", "apis-policy-v1.json"),
            ("coordination.k8s.io", "v1", "apis-coordination-k8s-io-v1.json"),
            ("events.k8s.io", "v1", "apis-events-k8s-io-v1.json"),
            ("scheduling.k8s.io", "v1", "apis-scheduling-k8s-io-v1.json"),
            ("apiextensions.k8s.io", "v1", "apis-apiextensions-k8s-io-v1.json"),
        ];
        for (g, v, file) in docs {
            let recorded = reference(file);
            let recorded = recorded["resources"].as_array().unwrap();
            let ours: Vec<Value> = reg.resources_of(g, v).iter().flat_map(|r| r.discovery_entries()).collect();
            assert!(!ours.is_empty(), "{file}: nothing served");
            for entry in &ours {
                let name = entry["name"].as_str().unwrap();
                let theirs = recorded
                    .iter()
                    .find(|r| r["name"] == name)
                    .unwrap_or_else(|| panic!("{file}: {name} is not served by a real server"));
                assert_eq!(entry, theirs, "{file}: {name}");
            }
        }
    }

    #[test]
    fn crd_registers_one_resource_per_served_version() {
        let crd = json!({"spec": {"group": "sdi.keti", "scope": "Namespaced",
            "names": {"plural": "robots", "kind": "Robot", "shortNames": ["rb"]},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}}},
                         {"name": "v0", "served": false, "storage": false}]}});
        let rs = crd_resources(&crd).unwrap();
        assert_eq!(rs.len(), 1);
        assert_eq!(rs[0].singular, "robot");
        assert!(rs[0].has_status && rs[0].custom && rs[0].namespaced);
        let reg = Registry::new();
        reg.register_crd("robots.sdi.keti", rs);
        assert!(reg.get("sdi.keti", "v1", "robots").is_some());
        assert!(reg.groups().iter().any(|g| g.name == "sdi.keti"));
        reg.unregister_crd("robots.sdi.keti");
        assert!(reg.get("sdi.keti", "v1", "robots").is_none());
        assert!(!reg.groups().iter().any(|g| g.name == "sdi.keti"));
    }

    #[test]
    fn crd_without_scope_is_rejected_with_the_field() {
        let crd = json!({"spec": {"group": "g", "names": {"plural": "xs", "kind": "X"}, "versions": [{"name": "v1", "served": true}]}});
        assert!(crd_resources(&crd).unwrap_err().starts_with("spec.scope"));
    }
}
