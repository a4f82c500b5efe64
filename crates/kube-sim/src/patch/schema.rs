//! List and map merge semantics of the built-in kinds kube-sim serves.
//!
//! Kubernetes has two parallel descriptions of how a list is merged: the
//! `patchStrategy`/`patchMergeKey` struct tags used by strategic merge patch
//! (SMP), and the `+listType`/`+listMapKey` markers used by server-side apply
//! (SSA). They mostly agree but not always (container ports are keyed by
//! `containerPort` for SMP and by `containerPort`+`protocol` for SSA), so both
//! views are exposed. The tables follow the v1.32 API types; anything not
//! listed is treated as atomic, which is what both mechanisms do for fields
//! without markers.
//!
//! Paths are field names from the object root with list indices elided, e.g.
//! `["spec", "template", "spec", "containers", "ports"]` for a Deployment.

use serde_json::Value;

/// How server-side apply merges a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListType {
    /// Replaced as a whole; owned as a single leaf.
    Atomic,
    /// Elements are objects identified by these key fields.
    Map { keys: &'static [&'static str] },
    /// Elements are scalars identified by their value.
    Set,
}

/// How strategic merge patch merges a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmpList {
    /// No `patchStrategy`: the patch list replaces the original.
    Replace,
    /// `patchStrategy:"merge"` on scalars: union, `$deleteFromPrimitiveList` removes.
    MergeScalars,
    /// `patchStrategy:"merge"` with this `patchMergeKey`.
    MergeByKey(&'static str),
}

/// The SSA list type of the list at `path` in an object of `kind`.
pub fn list_type(kind: &str, path: &[&str]) -> ListType {
    classify(kind, path).0
}

/// The SMP strategy of the list at `path` in an object of `kind`.
pub fn smp_list(kind: &str, path: &[&str]) -> SmpList {
    classify(kind, path).1
}

/// The SMP `patchMergeKey` of the list at `path`, if it is merged by key.
pub fn smp_merge_key(kind: &str, path: &[&str]) -> Option<&'static str> {
    match smp_list(kind, path) {
        SmpList::MergeByKey(key) => Some(key),
        _ => None,
    }
}

/// Whether the field (or the list elements) at `path` carries the SMP
/// `retainKeys` strategy. Merging honours `$retainKeys` wherever it appears;
/// this only tells a patch generator where clients emit it.
pub fn smp_retain_keys(kind: &str, path: &[&str]) -> bool {
    if kind == "Deployment" && path == ["spec", "strategy"] {
        return true;
    }
    if kind == "Pod" && path == ["status", "resourceClaimStatuses"] {
        return true;
    }
    matches!(pod_spec_rest(kind, path), Some(["volumes"] | ["resourceClaims"]))
}

/// Whether the object at `path` is an atomic map for SSA: it is replaced as a
/// whole and owned as one leaf (label selectors, object references, ...).
/// For list elements pass the list's path.
pub fn map_is_atomic(kind: &str, path: &[&str]) -> bool {
    if let Some(rest) = pod_spec_rest(kind, path) {
        return match rest {
            ["nodeSelector"]
            | ["imagePullSecrets"]
            | ["affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution"]
            | ["topologySpreadConstraints", "labelSelector"] => true,
            ["volumes", _, "secretRef"] => true,
            [c, "env", "valueFrom", r] if is_container_list(c) => {
                matches!(*r, "configMapKeyRef" | "secretKeyRef" | "fieldRef" | "resourceFieldRef")
            }
            _ => false,
        };
    }
    if is_object_meta_list(path, "ownerReferences") {
        return true;
    }
    matches!(
        (kind, path),
        (
            "Deployment"
                | "ReplicaSet"
                | "StatefulSet"
                | "DaemonSet"
                | "Job"
                | "PodDisruptionBudget"
                | "Service"
                | "ReplicationController"
                | "PersistentVolumeClaim",
            ["spec", "selector"],
        ) | ("CronJob", ["spec", "jobTemplate", "spec", "selector"])
            | ("PersistentVolumeClaim", ["spec", "dataSource"])
            | ("ServiceAccount", ["secrets"])
            | ("Event", ["involvedObject" | "related" | "regarding"])
    )
}

/// The value SSA assumes for a missing key field of a keyed list element, if
/// the schema declares one. Only `protocol` (defaulted to TCP) matters for the
/// built-in kinds: every other key field is required.
pub fn key_default(kind: &str, path: &[&str], key: &str) -> Option<Value> {
    let keys = match list_type(kind, path) {
        ListType::Map { keys } => keys,
        _ => return None,
    };
    (key == "protocol" && keys.contains(&"protocol")).then(|| Value::from("TCP"))
}

const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

fn is_container_list(name: &str) -> bool {
    CONTAINER_LISTS.contains(&name)
}

/// Where a PodSpec sits in each kind that embeds one.
fn pod_spec_prefix(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "Pod" => Some(&["spec"]),
        "PodTemplate" => Some(&["template", "spec"]),
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job" | "ReplicationController" => {
            Some(&["spec", "template", "spec"])
        }
        "CronJob" => Some(&["spec", "jobTemplate", "spec", "template", "spec"]),
        _ => None,
    }
}

/// The part of `path` below the kind's PodSpec, if `path` lies inside one.
fn pod_spec_rest<'p, 'a>(kind: &str, path: &'p [&'a str]) -> Option<&'p [&'a str]> {
    let prefix = pod_spec_prefix(kind)?;
    if path.len() > prefix.len() && path[..prefix.len()] == *prefix { Some(&path[prefix.len()..]) } else { None }
}

/// Whether `path` is `<field>` of an ObjectMeta: the object's own metadata or
/// a template's.
fn is_object_meta_list(path: &[&str], field: &str) -> bool {
    match path {
        [before @ .., "metadata", f] if *f == field => {
            before.is_empty() || matches!(before.last(), Some(&("template" | "jobTemplate")))
        }
        _ => false,
    }
}

type Info = (ListType, SmpList);

const ATOMIC: Info = (ListType::Atomic, SmpList::Replace);

const fn keyed(keys: &'static [&'static str], smp: &'static str) -> Info {
    (ListType::Map { keys }, SmpList::MergeByKey(smp))
}

fn classify(kind: &str, path: &[&str]) -> Info {
    if is_object_meta_list(path, "finalizers") {
        return (ListType::Set, SmpList::MergeScalars);
    }
    if is_object_meta_list(path, "ownerReferences") {
        return keyed(&["uid"], "uid");
    }
    if let Some(rest) = pod_spec_rest(kind, path) {
        return pod_spec(rest);
    }
    match (kind, path) {
        ("Pod", ["status", list]) => match *list {
            "conditions" => keyed(&["type"], "type"),
            "podIPs" => keyed(&["ip"], "ip"),
            // SMP merges host IPs by ip, SSA treats the list as atomic.
            "hostIPs" => (ListType::Atomic, SmpList::MergeByKey("ip")),
            "resourceClaimStatuses" => keyed(&["name"], "name"),
            // containerStatuses & co. have neither a patch strategy nor keys.
            _ => ATOMIC,
        },
        ("Node", ["spec", "podCIDRs"]) => (ListType::Set, SmpList::MergeScalars),
        ("Node", ["status", "conditions" | "addresses"]) => keyed(&["type"], "type"),
        ("Service", ["spec", "ports"]) => keyed(&["port", "protocol"], "port"),
        (
            "Service"
            | "Deployment"
            | "ReplicaSet"
            | "StatefulSet"
            | "DaemonSet"
            | "ReplicationController"
            | "PodDisruptionBudget"
            | "Namespace"
            | "PersistentVolumeClaim",
            ["status", "conditions"],
        ) => keyed(&["type"], "type"),
        // Job conditions merge by type in SMP but are atomic for SSA.
        ("Job", ["status", "conditions"]) => (ListType::Atomic, SmpList::MergeByKey("type")),
        ("Job", ["status", "uncountedTerminatedPods", "failed" | "succeeded"]) => (ListType::Set, SmpList::Replace),
        ("ServiceAccount", ["secrets"]) => keyed(&["name"], "name"),
        _ => ATOMIC,
    }
}

fn pod_spec(rest: &[&str]) -> Info {
    match rest {
        [c] if is_container_list(c) => keyed(&["name"], "name"),
        [c, tail @ ..] if is_container_list(c) => container(tail),
        ["volumes" | "imagePullSecrets" | "resourceClaims" | "schedulingGates"] => keyed(&["name"], "name"),
        ["hostAliases"] => keyed(&["ip"], "ip"),
        ["topologySpreadConstraints"] => keyed(&["topologyKey", "whenUnsatisfiable"], "topologyKey"),
        // tolerations, readinessGates, affinity terms, dnsConfig, ...
        _ => ATOMIC,
    }
}

fn container(tail: &[&str]) -> Info {
    match tail {
        ["env"] => keyed(&["name"], "name"),
        ["ports"] => keyed(&["containerPort", "protocol"], "containerPort"),
        ["volumeMounts"] => keyed(&["mountPath"], "mountPath"),
        ["volumeDevices"] => keyed(&["devicePath"], "devicePath"),
        ["resources", "claims"] => (ListType::Map { keys: &["name"] }, SmpList::Replace),
        // envFrom, command, args, resizePolicy, ...
        _ => ATOMIC,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_spec_lists_are_found_in_every_workload() {
        let cases: [(&str, &[&str]); 6] = [
            ("Pod", &["spec", "containers"]),
            ("Deployment", &["spec", "template", "spec", "containers"]),
            ("StatefulSet", &["spec", "template", "spec", "containers"]),
            ("Job", &["spec", "template", "spec", "containers"]),
            ("CronJob", &["spec", "jobTemplate", "spec", "template", "spec", "containers"]),
            ("PodTemplate", &["template", "spec", "containers"]),
        ];
        for (kind, path) in cases {
            assert_eq!(list_type(kind, path), ListType::Map { keys: &["name"] }, "{kind}");
            assert_eq!(smp_merge_key(kind, path), Some("name"), "{kind}");
        }
        // A Service has no PodSpec.
        assert_eq!(list_type("Service", &["spec", "containers"]), ListType::Atomic);
    }

    #[test]
    fn ports_differ_between_smp_and_ssa() {
        let path = ["spec", "template", "spec", "containers", "ports"];
        assert_eq!(list_type("Deployment", &path), ListType::Map { keys: &["containerPort", "protocol"] });
        assert_eq!(smp_merge_key("Deployment", &path), Some("containerPort"));
        assert_eq!(list_type("Service", &["spec", "ports"]), ListType::Map { keys: &["port", "protocol"] });
        assert_eq!(smp_merge_key("Service", &["spec", "ports"]), Some("port"));
        assert_eq!(key_default("Service", &["spec", "ports"], "protocol"), Some(Value::from("TCP")));
        assert_eq!(key_default("Service", &["spec", "ports"], "port"), None);
    }

    #[test]
    fn metadata_lists() {
        assert_eq!(list_type("Pod", &["metadata", "finalizers"]), ListType::Set);
        assert_eq!(smp_list("ConfigMap", &["metadata", "finalizers"]), SmpList::MergeScalars);
        assert_eq!(smp_merge_key("ReplicaSet", &["metadata", "ownerReferences"]), Some("uid"));
        assert!(map_is_atomic("ReplicaSet", &["metadata", "ownerReferences"]));
        assert_eq!(list_type("Deployment", &["spec", "template", "metadata", "finalizers"]), ListType::Set);
        // "finalizers" elsewhere is not ObjectMeta's.
        assert_eq!(list_type("Namespace", &["spec", "finalizers"]), ListType::Atomic);
    }

    #[test]
    fn atomic_lists_and_maps() {
        assert_eq!(smp_list("Pod", &["spec", "tolerations"]), SmpList::Replace);
        assert_eq!(list_type("Pod", &["spec", "readinessGates"]), ListType::Atomic);
        assert_eq!(list_type("Pod", &["spec", "containers", "envFrom"]), ListType::Atomic);
        assert_eq!(list_type("Pod", &["spec", "containers", "resizePolicy"]), ListType::Atomic);
        assert_eq!(list_type("Pod", &["status", "containerStatuses"]), ListType::Atomic);
        assert_eq!(list_type("Node", &["spec", "taints"]), ListType::Atomic);
        assert_eq!(list_type("Node", &["status", "images"]), ListType::Atomic);
        assert_eq!(list_type("StatefulSet", &["spec", "volumeClaimTemplates"]), ListType::Atomic);
        assert_eq!(list_type("Service", &["spec", "clusterIPs"]), ListType::Atomic);
        assert_eq!(list_type("Unknown", &["spec", "things"]), ListType::Atomic);
        assert!(map_is_atomic("Deployment", &["spec", "selector"]));
        assert!(map_is_atomic("Service", &["spec", "selector"]));
        assert!(map_is_atomic("Pod", &["spec", "nodeSelector"]));
        assert!(map_is_atomic("Pod", &["spec", "containers", "env", "valueFrom", "secretKeyRef"]));
        assert!(!map_is_atomic("Pod", &["spec", "containers", "resources"]));
        assert!(!map_is_atomic("Deployment", &["spec", "template"]));
    }

    #[test]
    fn status_and_node_lists() {
        assert_eq!(list_type("Node", &["spec", "podCIDRs"]), ListType::Set);
        assert_eq!(smp_merge_key("Node", &["status", "addresses"]), Some("type"));
        assert_eq!(smp_merge_key("Pod", &["status", "conditions"]), Some("type"));
        assert_eq!(list_type("Pod", &["status", "hostIPs"]), ListType::Atomic);
        assert_eq!(smp_merge_key("Pod", &["status", "hostIPs"]), Some("ip"));
        assert_eq!(list_type("PodDisruptionBudget", &["status", "conditions"]), ListType::Map { keys: &["type"] });
        assert_eq!(list_type("Job", &["status", "conditions"]), ListType::Atomic);
        assert_eq!(
            list_type("Pod", &["spec", "topologySpreadConstraints"]),
            ListType::Map { keys: &["topologyKey", "whenUnsatisfiable"] }
        );
    }

    #[test]
    fn retain_keys_locations() {
        assert!(smp_retain_keys("Pod", &["spec", "volumes"]));
        assert!(smp_retain_keys("Deployment", &["spec", "template", "spec", "volumes"]));
        assert!(smp_retain_keys("Deployment", &["spec", "strategy"]));
        assert!(!smp_retain_keys("StatefulSet", &["spec", "updateStrategy"]));
    }
}
