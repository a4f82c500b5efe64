//! Server-side `meta.k8s.io/v1` Table rendering.
//!
//! `kubectl get` asks for `application/json;as=Table;v=v1;g=meta.k8s.io` and prints whatever
//! cells the server sends, so kube-sim must compute the same columns and cell values as the
//! kube-apiserver printers (pkg/printers/internalversion), the CRD table convertor and the
//! default table convertor. Everything works on raw JSON so that missing or odd fields degrade
//! to the placeholders upstream shows (`<none>`, `<unknown>`, 0) instead of failing.
//!
//! Like the real server, tables are always generated "wide": priority-1 columns are present
//! and kubectl hides them unless `-o wide` is given.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde_json::{Map, Value, json};

/// How much of each object goes into a row's `object` field (query param `includeObject`:
/// None | Metadata (default) | Object).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

/// Column definitions for a kind. `printer_columns` are a CRD's additionalPrinterColumns (JSON
/// array from the CRD version) when the kind is a custom resource, else None.
///
/// Returns a JSON array of `TableColumnDefinition` (`name`, `type`, `format`, `description`,
/// `priority`); every field is always present because upstream does not omit them either.
pub fn columns(kind: &str, printer_columns: Option<&Value>) -> Value {
    let cols: Vec<Value> = match printer_for(kind, printer_columns) {
        Printer::Custom => custom_columns(printer_columns)
            .iter()
            .map(|c| column_json(&c.name, &c.ty, &c.format, &c.description, c.priority))
            .collect(),
        p => builtin_columns(p).iter().map(|c| column_json(c.name, c.ty, c.format, c.desc, c.priority)).collect(),
    };
    Value::Array(cols)
}

/// One row for an object: `{"cells":[...],"object":...}`, plus `conditions` for finished pods
/// (upstream marks Succeeded/Failed pods as `Completed` rows).
pub fn row(kind: &str, obj: &Value, printer_columns: Option<&Value>, include: IncludeObject, now: Timestamp) -> Value {
    let (cells, conditions) = match printer_for(kind, printer_columns) {
        Printer::Custom => (custom_cells(obj, printer_columns, now), Vec::new()),
        p => builtin_cells(p, obj, now),
    };
    let mut r = Map::new();
    r.insert("cells".into(), Value::Array(cells));
    if !conditions.is_empty() {
        r.insert("conditions".into(), Value::Array(conditions));
    }
    r.insert("object".into(), embedded_object(obj, include));
    Value::Object(r)
}

/// A whole Table: `{"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{...},
/// "columnDefinitions":[...],"rows":[...]}`. Empty `resource_version`/`continue_token` are
/// omitted, matching ListMeta's omitempty fields.
pub fn table(
    kind: &str,
    objs: &[Value],
    printer_columns: Option<&Value>,
    include: IncludeObject,
    now: Timestamp,
    resource_version: &str,
    continue_token: Option<&str>,
) -> Value {
    let mut metadata = Map::new();
    if !resource_version.is_empty() {
        metadata.insert("resourceVersion".into(), json!(resource_version));
    }
    if let Some(token) = continue_token.filter(|t| !t.is_empty()) {
        metadata.insert("continue".into(), json!(token));
    }
    let rows: Vec<Value> = objs.iter().map(|o| row(kind, o, printer_columns, include, now)).collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns(kind, printer_columns),
        "rows": rows,
    })
}

/// Human age as kubectl shows it ("5s", "3m12s", "2d3h", "<unknown>" for missing timestamps) —
/// same rules as apimachinery duration.HumanDuration.
pub fn human_age(created: Option<&str>, now: Timestamp) -> String {
    since(created.and_then(parse_time), now)
}

// ---------------------------------------------------------------------------------------------
// Time formatting

/// Accepts RFC 3339 with or without fractional seconds (Time and MicroTime both serialize so).
fn parse_time(s: &str) -> Option<Timestamp> {
    s.parse().ok()
}

/// Upstream's translateTimestampSince: an absent (zero) timestamp prints as `<unknown>`.
fn since(t: Option<Timestamp>, now: Timestamp) -> String {
    match t {
        Some(t) => human_duration(now.as_nanosecond() - t.as_nanosecond()),
        None => "<unknown>".to_string(),
    }
}

/// HumanDuration: ~2-3 significant figures, tolerating up to 1s of clock skew as "0s".
/// Integer division truncates toward zero exactly like Go's `int(d.Seconds())`.
fn human_duration(nanos: i128) -> String {
    const SEC: i128 = 1_000_000_000;
    let seconds = nanos / SEC;
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = nanos / (60 * SEC);
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 { format!("{minutes}m") } else { format!("{minutes}m{s}s") };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = nanos / (3600 * SEC);
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 { format!("{hours}h") } else { format!("{hours}h{m}m") };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 { format!("{days}d") } else { format!("{days}d{h}h") };
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        let dy = days % 365;
        return if dy == 0 { format!("{years}y") } else { format!("{years}y{dy}d") };
    }
    format!("{years}y")
}

// ---------------------------------------------------------------------------------------------
// JSON access helpers: every lookup tolerates missing keys, nulls and wrong types.

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for key in path {
        cur = cur.get(*key)?;
    }
    (!cur.is_null()).then_some(cur)
}

fn text<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path).and_then(Value::as_str).unwrap_or("")
}

fn opt_text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(v, path).and_then(Value::as_str)
}

fn int_or(v: &Value, path: &[&str], default: i64) -> i64 {
    at(v, path).and_then(|x| x.as_i64().or_else(|| x.as_f64().map(|f| f as i64))).unwrap_or(default)
}

fn int(v: &Value, path: &[&str]) -> i64 {
    int_or(v, path, 0)
}

fn list<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    at(v, path).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn map_len(v: &Value, path: &[&str]) -> usize {
    at(v, path).and_then(Value::as_object).map_or(0, Map::len)
}

fn flag(v: &Value, path: &[&str]) -> bool {
    at(v, path).and_then(Value::as_bool).unwrap_or(false)
}

fn time(v: &Value, path: &[&str]) -> Option<Timestamp> {
    opt_text(v, path).and_then(parse_time)
}

fn name(obj: &Value) -> String {
    text(obj, &["metadata", "name"]).to_string()
}

fn age(obj: &Value, now: Timestamp) -> String {
    since(time(obj, &["metadata", "creationTimestamp"]), now)
}

fn or_none(s: &str) -> String {
    if s.is_empty() { "<none>" } else { s }.to_string()
}

/// Scalars as Go would print them with `%v`; used where upstream prints an IntOrString or a
/// quantity that the JSON may carry either as a string or as a number.
fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// labels.FormatLabels: sorted `k=v` joined by commas, `<none>` when empty.
fn format_labels(v: Option<&Value>) -> String {
    let Some(m) = v.and_then(Value::as_object).filter(|m| !m.is_empty()) else {
        return "<none>".to_string();
    };
    let sorted: BTreeMap<&String, String> = m.iter().map(|(k, v)| (k, scalar_text(v))).collect();
    sorted.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// The string form of a metav1.LabelSelector as labels.Selector.String() renders it:
/// requirements sorted by key, set values sorted. A nil or empty selector renders as "".
/// Err means the selector would not convert (unknown operator, bad value count).
fn selector_string(sel: Option<&Value>) -> Result<String, ()> {
    let Some(sel) = sel else {
        return Ok(String::new());
    };
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in m {
            reqs.push((k.clone(), format!("{k}={}", scalar_text(v))));
        }
    }
    for expr in list(sel, &["matchExpressions"]) {
        let key = text(expr, &["key"]);
        let mut values: Vec<String> = list(expr, &["values"]).iter().map(scalar_text).collect();
        values.sort();
        let rendered = match text(expr, &["operator"]) {
            "In" | "NotIn" if values.is_empty() => return Err(()),
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" | "DoesNotExist" if !values.is_empty() => return Err(()),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => return Err(()),
        };
        reqs.push((key.to_string(), rendered));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(reqs.into_iter().map(|(_, r)| r).collect::<Vec<_>>().join(","))
}

/// metav1.FormatLabelSelector: `<none>` for empty, `<error>` for unconvertible selectors.
fn format_label_selector(sel: Option<&Value>) -> String {
    match selector_string(sel) {
        Ok(s) if s.is_empty() => "<none>".to_string(),
        Ok(s) => s,
        Err(()) => "<error>".to_string(),
    }
}

/// layoutContainerCells: container names and images, each comma-joined.
fn container_cells(pod_spec: Option<&Value>) -> (String, String) {
    let containers = pod_spec.map_or(&[][..], |s| list(s, &["containers"]));
    let names: Vec<&str> = containers.iter().map(|c| text(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| text(c, &["image"])).collect();
    (names.join(","), images.join(","))
}

fn condition<'a>(conditions: &'a [Value], ty: &str) -> Option<&'a Value> {
    conditions.iter().find(|c| text(c, &["type"]) == ty)
}

/// Upstream access-mode abbreviations, always in RWO,ROX,RWX,RWOP order.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"), ("ReadWriteOncePod", "RWOP")]
        .iter()
        .filter(|(full, _)| has(full))
        .map(|(_, short)| *short)
        .collect::<Vec<_>>()
        .join(",")
}

/// The beta storage-class annotation still wins over spec.storageClassName upstream.
fn storage_class(obj: &Value) -> String {
    opt_text(obj, &["metadata", "annotations", "volume.beta.kubernetes.io/storage-class"])
        .or_else(|| opt_text(obj, &["spec", "storageClassName"]))
        .unwrap_or("")
        .to_string()
}

/// Load-balancer ingress points as a sorted, de-duplicated list (IP preferred over hostname).
/// Never truncated: the server always renders wide.
fn load_balancer_ingress(status: &Value) -> String {
    let set: BTreeSet<&str> = list(status, &["loadBalancer", "ingress"])
        .iter()
        .filter_map(|i| {
            let ip = text(i, &["ip"]);
            let host = text(i, &["hostname"]);
            if !ip.is_empty() {
                Some(ip)
            } else if !host.is_empty() {
                Some(host)
            } else {
                None
            }
        })
        .collect();
    set.into_iter().collect::<Vec<_>>().join(",")
}

/// "a,b,c + N more..." lists used by endpoint-ish printers.
fn list_with_more(items: &[String], total: usize, max: usize, empty: &str) -> String {
    let shown = items.iter().take(max).cloned().collect::<Vec<_>>().join(",");
    if total > max {
        format!("{shown} + {} more...", total - max)
    } else if shown.is_empty() {
        empty.to_string()
    } else {
        shown
    }
}

// ---------------------------------------------------------------------------------------------
// Printer selection and column definitions

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Printer {
    Pod,
    PodTemplate,
    Node,
    Namespace,
    Deployment,
    ReplicaSet,
    ReplicationController,
    StatefulSet,
    DaemonSet,
    Job,
    CronJob,
    Service,
    Endpoints,
    EndpointSlice,
    Ingress,
    IngressClass,
    ConfigMap,
    Secret,
    ServiceAccount,
    Event,
    PersistentVolumeClaim,
    PersistentVolume,
    PodDisruptionBudget,
    PriorityClass,
    Lease,
    StorageClass,
    RoleBinding,
    ControllerRevision,
    WebhookConfiguration,
    RuntimeClass,
    /// Custom resource: NAME + the CRD's additionalPrinterColumns.
    Custom,
    /// rest.DefaultTableConvertor: NAME + CREATED AT (CRDs, Roles, anything without a printer).
    Default,
}

/// Any kind with printer columns is a custom resource, even if its kind name collides with a
/// built-in (e.g. a CRD kind called "Job"), because CRs never use the built-in printers.
fn printer_for(kind: &str, printer_columns: Option<&Value>) -> Printer {
    if printer_columns.is_some() {
        return Printer::Custom;
    }
    match kind {
        "Pod" => Printer::Pod,
        "PodTemplate" => Printer::PodTemplate,
        "Node" => Printer::Node,
        "Namespace" => Printer::Namespace,
        "Deployment" => Printer::Deployment,
        "ReplicaSet" => Printer::ReplicaSet,
        "ReplicationController" => Printer::ReplicationController,
        "StatefulSet" => Printer::StatefulSet,
        "DaemonSet" => Printer::DaemonSet,
        "Job" => Printer::Job,
        "CronJob" => Printer::CronJob,
        "Service" => Printer::Service,
        "Endpoints" => Printer::Endpoints,
        "EndpointSlice" => Printer::EndpointSlice,
        "Ingress" => Printer::Ingress,
        "IngressClass" => Printer::IngressClass,
        "ConfigMap" => Printer::ConfigMap,
        "Secret" => Printer::Secret,
        "ServiceAccount" => Printer::ServiceAccount,
        "Event" => Printer::Event,
        "PersistentVolumeClaim" => Printer::PersistentVolumeClaim,
        "PersistentVolume" => Printer::PersistentVolume,
        "PodDisruptionBudget" => Printer::PodDisruptionBudget,
        "PriorityClass" => Printer::PriorityClass,
        "Lease" => Printer::Lease,
        "StorageClass" => Printer::StorageClass,
        "RoleBinding" | "ClusterRoleBinding" => Printer::RoleBinding,
        "ControllerRevision" => Printer::ControllerRevision,
        "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration" => Printer::WebhookConfiguration,
        "RuntimeClass" => Printer::RuntimeClass,
        _ => Printer::Default,
    }
}

struct Col {
    name: &'static str,
    ty: &'static str,
    format: &'static str,
    desc: &'static str,
    priority: i64,
}

fn column_json(name: &str, ty: &str, format: &str, desc: &str, priority: i64) -> Value {
    json!({"name": name, "type": ty, "format": format, "description": desc, "priority": priority})
}

/// Descriptions are our own wording: kubectl never prints them, only names/types/priorities
/// matter for output.
const NAME_DESC: &str = "Name of the object, unique within its namespace (or the cluster).";
const AGE_DESC: &str = "Time since the object was created (metadata.creationTimestamp).";
const CONTAINERS_DESC: &str = "Container names from the pod template.";
const IMAGES_DESC: &str = "Container images from the pod template.";
const SELECTOR_DESC: &str = "Label selector that picks the managed pods.";

const fn c(name: &'static str, ty: &'static str, desc: &'static str) -> Col {
    Col { name, ty, format: "", desc, priority: 0 }
}

/// A priority-1 column: only shown by kubectl with `-o wide`.
const fn w(name: &'static str, ty: &'static str, desc: &'static str) -> Col {
    Col { name, ty, format: "", desc, priority: 1 }
}

const NAME: Col = Col { name: "Name", ty: "string", format: "name", desc: NAME_DESC, priority: 0 };
const AGE: Col = c("Age", "string", AGE_DESC);
const CONTAINERS: Col = w("Containers", "string", CONTAINERS_DESC);
const IMAGES: Col = w("Images", "string", IMAGES_DESC);
const SELECTOR: Col = w("Selector", "string", SELECTOR_DESC);

fn builtin_columns(p: Printer) -> Vec<Col> {
    match p {
        Printer::Pod => vec![
            NAME,
            c("Ready", "string", "Ready containers out of all containers."),
            c("Status", "string", "Summary of the pod and container states."),
            c("Restarts", "string", "Container restarts, with the time of the last one."),
            AGE,
            w("IP", "string", "First pod IP."),
            w("Node", "string", "Node the pod is bound to."),
            w("Nominated Node", "string", "Node nominated by preemption."),
            w("Readiness Gates", "string", "Readiness gates that are satisfied."),
        ],
        Printer::PodTemplate => vec![
            NAME,
            c("Containers", "string", CONTAINERS_DESC),
            c("Images", "string", IMAGES_DESC),
            c("Pod Labels", "string", "Labels of the pod template."),
        ],
        Printer::Node => vec![
            NAME,
            c("Status", "string", "Readiness and schedulability of the node."),
            c("Roles", "string", "Roles taken from node-role labels."),
            AGE,
            c("Version", "string", "Kubelet version."),
            w("Internal-IP", "string", "First InternalIP address."),
            w("External-IP", "string", "First ExternalIP address."),
            w("OS-Image", "string", "Operating system image."),
            w("Kernel-Version", "string", "Kernel version."),
            w("Container-Runtime", "string", "Container runtime and version."),
        ],
        Printer::Namespace => vec![NAME, c("Status", "string", "Lifecycle phase of the namespace."), AGE],
        Printer::Deployment => vec![
            NAME,
            c("Ready", "string", "Ready replicas out of desired replicas."),
            c("Up-to-date", "string", "Replicas running the current template."),
            c("Available", "string", "Replicas available to serve."),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        Printer::ReplicaSet | Printer::ReplicationController => vec![
            NAME,
            c("Desired", "integer", "Desired number of replicas."),
            c("Current", "integer", "Observed number of replicas."),
            c("Ready", "integer", "Number of ready replicas."),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        Printer::StatefulSet => {
            vec![NAME, c("Ready", "string", "Ready replicas out of desired replicas."), AGE, CONTAINERS, IMAGES]
        }
        Printer::DaemonSet => vec![
            NAME,
            c("Desired", "integer", "Nodes that should run the daemon pod."),
            c("Current", "integer", "Nodes running the daemon pod."),
            c("Ready", "integer", "Nodes with a ready daemon pod."),
            c("Up-to-date", "integer", "Nodes running the current template."),
            c("Available", "integer", "Nodes with an available daemon pod."),
            c("Node Selector", "string", "Node selector of the pod template."),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        Printer::Job => vec![
            NAME,
            c("Status", "string", "Overall state of the job."),
            c("Completions", "string", "Succeeded pods out of required completions."),
            c("Duration", "string", "How long the job ran or has been running."),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        Printer::CronJob => vec![
            NAME,
            c("Schedule", "string", "Cron schedule."),
            c("Timezone", "string", "Time zone of the schedule."),
            c("Suspend", "boolean", "Whether new runs are suspended."),
            c("Active", "integer", "Number of running jobs."),
            c("Last Schedule", "string", "Time since the last scheduled run."),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        Printer::Service => vec![
            NAME,
            c("Type", "string", "Service type."),
            c("Cluster-IP", "string", "Primary cluster IP."),
            c("External-IP", "string", "External or load-balancer addresses."),
            c("Port(s)", "string", "Service ports."),
            AGE,
            w("Selector", "string", "Pod selector of the service."),
        ],
        Printer::Endpoints => vec![NAME, c("Endpoints", "string", "Endpoint addresses."), AGE],
        Printer::EndpointSlice => vec![
            NAME,
            c("AddressType", "string", "Address family of the slice."),
            c("Ports", "string", "Ports of the slice."),
            c("Endpoints", "string", "Endpoint addresses."),
            AGE,
        ],
        Printer::Ingress => vec![
            NAME,
            c("Class", "string", "IngressClass used by this ingress."),
            c("Hosts", "string", "Hosts matched by the rules."),
            c("Address", "string", "Load-balancer addresses."),
            c("Ports", "string", "Ports served."),
            AGE,
        ],
        Printer::IngressClass => vec![
            NAME,
            c("Controller", "string", "Controller implementing the class."),
            c("Parameters", "string", "Reference to extra parameters."),
            AGE,
        ],
        Printer::ConfigMap => vec![NAME, c("Data", "string", "Number of keys."), AGE],
        Printer::Secret => vec![NAME, c("Type", "string", "Secret type."), c("Data", "string", "Number of keys."), AGE],
        Printer::ServiceAccount => vec![NAME, c("Secrets", "string", "Number of referenced secrets."), AGE],
        Printer::Event => vec![
            c("Last Seen", "string", "Time since the event was last observed."),
            c("Type", "string", "Event type."),
            c("Reason", "string", "Short machine-readable reason."),
            c("Object", "string", "Object the event is about."),
            w("Subobject", "string", "Field path within the object."),
            w("Source", "string", "Component that reported the event."),
            c("Message", "string", "Human-readable description."),
            w("First Seen", "string", "Time since the event was first observed."),
            w("Count", "string", "Number of occurrences."),
            Col { priority: 1, ..NAME },
        ],
        Printer::PersistentVolumeClaim => vec![
            NAME,
            c("Status", "string", "Phase of the claim."),
            c("Volume", "string", "Bound volume."),
            c("Capacity", "string", "Capacity of the bound volume."),
            c("Access Modes", "string", "Access modes of the bound volume."),
            c("StorageClass", "string", "Storage class of the claim."),
            c("VolumeAttributesClass", "string", "Volume attributes class of the claim."),
            AGE,
            w("VolumeMode", "string", "Volume mode."),
        ],
        Printer::PersistentVolume => vec![
            NAME,
            c("Capacity", "string", "Storage capacity."),
            c("Access Modes", "string", "Access modes."),
            c("Reclaim Policy", "string", "What happens when released."),
            c("Status", "string", "Phase of the volume."),
            c("Claim", "string", "Bound claim as namespace/name."),
            c("StorageClass", "string", "Storage class of the volume."),
            c("VolumeAttributesClass", "string", "Volume attributes class of the volume."),
            c("Reason", "string", "Reason for the current phase."),
            AGE,
            w("VolumeMode", "string", "Volume mode."),
        ],
        Printer::PodDisruptionBudget => vec![
            NAME,
            c("Min Available", "string", "Pods that must stay available."),
            c("Max Unavailable", "string", "Pods that may be unavailable."),
            c("Allowed Disruptions", "integer", "Disruptions currently allowed."),
            AGE,
        ],
        Printer::PriorityClass => vec![
            NAME,
            c("Value", "integer", "Priority value."),
            c("Global-Default", "boolean", "Whether this is the default class."),
            AGE,
            c("PreemptionPolicy", "string", "Preemption policy."),
        ],
        Printer::Lease => vec![NAME, c("Holder", "string", "Current holder identity."), AGE],
        Printer::StorageClass => vec![
            NAME,
            c("Provisioner", "string", "Volume provisioner."),
            c("ReclaimPolicy", "string", "Reclaim policy of provisioned volumes."),
            c("VolumeBindingMode", "string", "When volumes are bound."),
            c("AllowVolumeExpansion", "string", "Whether volumes may grow."),
            AGE,
        ],
        Printer::RoleBinding => vec![
            NAME,
            c("Role", "string", "Referenced role as Kind/name."),
            AGE,
            w("Users", "string", "Bound users."),
            w("Groups", "string", "Bound groups."),
            w("ServiceAccounts", "string", "Bound service accounts."),
        ],
        Printer::ControllerRevision => vec![
            NAME,
            c("Controller", "string", "Owning controller."),
            c("Revision", "string", "Revision number."),
            AGE,
        ],
        Printer::WebhookConfiguration => {
            vec![NAME, c("Webhooks", "integer", "Number of webhooks."), AGE]
        }
        Printer::RuntimeClass => vec![NAME, c("Handler", "string", "CRI handler."), AGE],
        Printer::Default => vec![NAME, c("Created At", "date", "Creation time (RFC 3339).")],
        // Custom columns are data-driven and built elsewhere; keep a sane fallback.
        Printer::Custom => vec![NAME],
    }
}

// ---------------------------------------------------------------------------------------------
// Row cells for built-in kinds

fn builtin_cells(p: Printer, obj: &Value, now: Timestamp) -> (Vec<Value>, Vec<Value>) {
    let cells = match p {
        Printer::Pod => return pod_cells(obj, now),
        Printer::PodTemplate => {
            let (names, images) = container_cells(at(obj, &["template", "spec"]));
            vec![
                json!(name(obj)),
                json!(names),
                json!(images),
                json!(format_labels(at(obj, &["template", "metadata", "labels"]))),
            ]
        }
        Printer::Node => node_cells(obj, now),
        Printer::Namespace => vec![json!(name(obj)), json!(text(obj, &["status", "phase"])), json!(age(obj, now))],
        Printer::Deployment => {
            let (names, images) = container_cells(at(obj, &["spec", "template", "spec"]));
            let selector = selector_string(at(obj, &["spec", "selector"])).unwrap_or_else(|()| "<invalid>".to_string());
            vec![
                json!(name(obj)),
                json!(format!("{}/{}", int(obj, &["status", "readyReplicas"]), int_or(obj, &["spec", "replicas"], 1))),
                json!(int(obj, &["status", "updatedReplicas"])),
                json!(int(obj, &["status", "availableReplicas"])),
                json!(age(obj, now)),
                json!(names),
                json!(images),
                json!(selector),
            ]
        }
        Printer::ReplicaSet | Printer::ReplicationController => {
            let (names, images) = container_cells(at(obj, &["spec", "template", "spec"]));
            let selector = if p == Printer::ReplicaSet {
                format_label_selector(at(obj, &["spec", "selector"]))
            } else {
                format_labels(at(obj, &["spec", "selector"]))
            };
            vec![
                json!(name(obj)),
                json!(int_or(obj, &["spec", "replicas"], 1)),
                json!(int(obj, &["status", "replicas"])),
                json!(int(obj, &["status", "readyReplicas"])),
                json!(age(obj, now)),
                json!(names),
                json!(images),
                json!(selector),
            ]
        }
        Printer::StatefulSet => {
            let (names, images) = container_cells(at(obj, &["spec", "template", "spec"]));
            vec![
                json!(name(obj)),
                json!(format!("{}/{}", int(obj, &["status", "readyReplicas"]), int_or(obj, &["spec", "replicas"], 1))),
                json!(age(obj, now)),
                json!(names),
                json!(images),
            ]
        }
        Printer::DaemonSet => {
            let (names, images) = container_cells(at(obj, &["spec", "template", "spec"]));
            vec![
                json!(name(obj)),
                json!(int(obj, &["status", "desiredNumberScheduled"])),
                json!(int(obj, &["status", "currentNumberScheduled"])),
                json!(int(obj, &["status", "numberReady"])),
                json!(int(obj, &["status", "updatedNumberScheduled"])),
                json!(int(obj, &["status", "numberAvailable"])),
                json!(format_labels(at(obj, &["spec", "template", "spec", "nodeSelector"]))),
                json!(age(obj, now)),
                json!(names),
                json!(images),
                json!(format_label_selector(at(obj, &["spec", "selector"]))),
            ]
        }
        Printer::Job => job_cells(obj, now),
        Printer::CronJob => {
            let job_spec = at(obj, &["spec", "jobTemplate", "spec"]);
            let (names, images) = container_cells(job_spec.and_then(|s| at(s, &["template", "spec"])));
            let last = match time(obj, &["status", "lastScheduleTime"]) {
                Some(t) => since(Some(t), now),
                None => "<none>".to_string(),
            };
            let suspend = match at(obj, &["spec", "suspend"]).and_then(Value::as_bool) {
                Some(true) => "True",
                Some(false) => "False",
                None => "<unset>",
            };
            vec![
                json!(name(obj)),
                json!(text(obj, &["spec", "schedule"])),
                json!(opt_text(obj, &["spec", "timeZone"]).unwrap_or("<none>")),
                json!(suspend),
                json!(list(obj, &["status", "active"]).len()),
                json!(last),
                json!(age(obj, now)),
                json!(names),
                json!(images),
                json!(format_label_selector(job_spec.and_then(|s| at(s, &["selector"])))),
            ]
        }
        Printer::Service => service_cells(obj, now),
        Printer::Endpoints => vec![json!(name(obj)), json!(format_endpoints(obj)), json!(age(obj, now))],
        Printer::EndpointSlice => {
            let ports: Vec<String> = list(obj, &["ports"])
                .iter()
                .map(|p| match at(p, &["port"]) {
                    Some(n) => scalar_text(n),
                    None => opt_text(p, &["name"]).unwrap_or("*").to_string(),
                })
                .collect();
            let addrs: Vec<String> = list(obj, &["endpoints"])
                .iter()
                .flat_map(|e| list(e, &["addresses"]).iter().map(scalar_text))
                .collect();
            vec![
                json!(name(obj)),
                json!(text(obj, &["addressType"])),
                json!(list_with_more(&ports, ports.len(), 3, "<unset>")),
                json!(list_with_more(&addrs, addrs.len(), 3, "<unset>")),
                json!(age(obj, now)),
            ]
        }
        Printer::Ingress => ingress_cells(obj, now),
        Printer::IngressClass => {
            let params = match at(obj, &["spec", "parameters"]) {
                Some(p) => {
                    let mut s = text(p, &["kind"]).to_string();
                    if let Some(group) = opt_text(p, &["apiGroup"]) {
                        s = format!("{s}.{group}");
                    }
                    format!("{s}/{}", text(p, &["name"]))
                }
                None => "<none>".to_string(),
            };
            vec![json!(name(obj)), json!(text(obj, &["spec", "controller"])), json!(params), json!(age(obj, now))]
        }
        Printer::ConfigMap => {
            vec![json!(name(obj)), json!(map_len(obj, &["data"]) + map_len(obj, &["binaryData"])), json!(age(obj, now))]
        }
        Printer::Secret => {
            vec![json!(name(obj)), json!(text(obj, &["type"])), json!(map_len(obj, &["data"])), json!(age(obj, now))]
        }
        Printer::ServiceAccount => vec![json!(name(obj)), json!(list(obj, &["secrets"]).len()), json!(age(obj, now))],
        Printer::Event => event_cells(obj, now),
        Printer::PersistentVolumeClaim => {
            let phase = if at(obj, &["metadata", "deletionTimestamp"]).is_some() {
                "Terminating"
            } else {
                text(obj, &["status", "phase"])
            };
            let volume = text(obj, &["spec", "volumeName"]);
            // Capacity and modes are only meaningful once bound, as upstream prints them.
            let (capacity, modes) = if volume.is_empty() {
                (String::new(), String::new())
            } else {
                (
                    at(obj, &["status", "capacity", "storage"]).map_or_else(|| "0".to_string(), scalar_text),
                    access_modes(list(obj, &["status", "accessModes"])),
                )
            };
            vec![
                json!(name(obj)),
                json!(phase),
                json!(volume),
                json!(capacity),
                json!(modes),
                json!(storage_class(obj)),
                json!(opt_text(obj, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>")),
                json!(age(obj, now)),
                json!(opt_text(obj, &["spec", "volumeMode"]).unwrap_or("<unset>")),
            ]
        }
        Printer::PersistentVolume => {
            let claim = at(obj, &["spec", "claimRef"])
                .map_or(String::new(), |r| format!("{}/{}", text(r, &["namespace"]), text(r, &["name"])));
            let phase = if at(obj, &["metadata", "deletionTimestamp"]).is_some() {
                "Terminating"
            } else {
                text(obj, &["status", "phase"])
            };
            vec![
                json!(name(obj)),
                json!(at(obj, &["spec", "capacity", "storage"]).map_or_else(|| "0".to_string(), scalar_text)),
                json!(access_modes(list(obj, &["spec", "accessModes"]))),
                json!(text(obj, &["spec", "persistentVolumeReclaimPolicy"])),
                json!(phase),
                json!(claim),
                json!(storage_class(obj)),
                json!(opt_text(obj, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>")),
                json!(text(obj, &["status", "reason"])),
                json!(age(obj, now)),
                json!(opt_text(obj, &["spec", "volumeMode"]).unwrap_or("<unset>")),
            ]
        }
        Printer::PodDisruptionBudget => {
            let bound = |field: &str| at(obj, &["spec", field]).map_or_else(|| "N/A".to_string(), scalar_text);
            vec![
                json!(name(obj)),
                json!(bound("minAvailable")),
                json!(bound("maxUnavailable")),
                json!(int(obj, &["status", "disruptionsAllowed"])),
                json!(age(obj, now)),
            ]
        }
        Printer::PriorityClass => vec![
            json!(name(obj)),
            json!(int(obj, &["value"])),
            json!(flag(obj, &["globalDefault"])),
            json!(age(obj, now)),
            json!(text(obj, &["preemptionPolicy"])),
        ],
        Printer::Lease => vec![json!(name(obj)), json!(text(obj, &["spec", "holderIdentity"])), json!(age(obj, now))],
        Printer::StorageClass => {
            let is_default = |key: &str| text(obj, &["metadata", "annotations", key]) == "true";
            let mut n = name(obj);
            if is_default("storageclass.kubernetes.io/is-default-class")
                || is_default("storageclass.beta.kubernetes.io/is-default-class")
            {
                n.push_str(" (default)");
            }
            vec![
                json!(n),
                json!(text(obj, &["provisioner"])),
                json!(opt_text(obj, &["reclaimPolicy"]).unwrap_or("Delete")),
                json!(opt_text(obj, &["volumeBindingMode"]).unwrap_or("Immediate")),
                json!(flag(obj, &["allowVolumeExpansion"])),
                json!(age(obj, now)),
            ]
        }
        Printer::RoleBinding => {
            let mut users = Vec::new();
            let mut groups = Vec::new();
            let mut sas = Vec::new();
            for s in list(obj, &["subjects"]) {
                let n = text(s, &["name"]);
                match text(s, &["kind"]) {
                    "User" => users.push(n.to_string()),
                    "Group" => groups.push(n.to_string()),
                    "ServiceAccount" => sas.push(format!("{}/{n}", text(s, &["namespace"]))),
                    _ => {}
                }
            }
            vec![
                json!(name(obj)),
                json!(format!("{}/{}", text(obj, &["roleRef", "kind"]), text(obj, &["roleRef", "name"]))),
                json!(age(obj, now)),
                json!(users.join(", ")),
                json!(groups.join(", ")),
                json!(sas.join(", ")),
            ]
        }
        Printer::ControllerRevision => {
            let owner = list(obj, &["metadata", "ownerReferences"]).iter().find(|r| flag(r, &["controller"]));
            let controller = owner.map_or_else(
                || "<none>".to_string(),
                |r| {
                    let kind = text(r, &["kind"]);
                    let group = text(r, &["apiVersion"]).rsplit_once('/').map_or("", |(g, _)| g);
                    let group_kind = if group.is_empty() { kind.to_string() } else { format!("{kind}.{group}") };
                    if group_kind.is_empty() {
                        text(r, &["name"]).to_string()
                    } else {
                        format!("{}/{}", group_kind.to_lowercase(), text(r, &["name"]))
                    }
                },
            );
            vec![json!(name(obj)), json!(controller), json!(int(obj, &["revision"])), json!(age(obj, now))]
        }
        Printer::WebhookConfiguration => {
            vec![json!(name(obj)), json!(list(obj, &["webhooks"]).len()), json!(age(obj, now))]
        }
        Printer::RuntimeClass => vec![json!(name(obj)), json!(text(obj, &["handler"])), json!(age(obj, now))],
        Printer::Default => {
            // Upstream formats the zero time for a missing timestamp rather than a placeholder.
            let created = time(obj, &["metadata", "creationTimestamp"])
                .map_or_else(|| "0001-01-01T00:00:00Z".to_string(), |t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
            vec![json!(name(obj)), json!(created)]
        }
        Printer::Custom => vec![json!(name(obj))],
    };
    (cells, Vec::new())
}

/// printPod: READY counts, the STATUS reason cascade (init containers, waiting/terminated
/// reasons, Completed→Running fix-up, Terminating/Unknown on deletion) and RESTARTS with the
/// time of the most recent restart.
fn pod_cells(pod: &Value, now: Timestamp) -> (Vec<Value>, Vec<Value>) {
    let status = at(pod, &["status"]).unwrap_or(&Value::Null);
    let conditions = list(status, &["conditions"]);
    let phase = text(status, &["phase"]);
    let mut reason = match text(status, &["reason"]) {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    if conditions.iter().any(|c| text(c, &["type"]) == "PodScheduled" && text(c, &["reason"]) == "SchedulingGated") {
        reason = "SchedulingGated".to_string();
    }

    let row_conditions = match phase {
        "Succeeded" => vec![json!({"type": "Completed", "status": "True",
            "reason": "Succeeded", "message": "The pod completed successfully."})],
        "Failed" => vec![json!({"type": "Completed", "status": "True",
            "reason": "Failed", "message": "The pod failed."})],
        _ => Vec::new(),
    };

    let init_specs = list(pod, &["spec", "initContainers"]);
    // Sidecars (restartPolicy: Always) count as regular containers for READY.
    let is_sidecar = |container_name: &str| {
        init_specs.iter().any(|c| text(c, &["name"]) == container_name && text(c, &["restartPolicy"]) == "Always")
    };
    let mut total = list(pod, &["spec", "containers"]).len();
    total += init_specs.iter().filter(|c| text(c, &["restartPolicy"]) == "Always").count();

    let last_terminated = |cs: &Value| time(cs, &["lastState", "terminated", "finishedAt"]);
    let mut ready = 0usize;
    let mut restarts = 0i64;
    let mut sidecar_restarts = 0i64;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_sidecar_restart: Option<Timestamp> = None;
    let mut initializing = false;

    for (i, cs) in list(status, &["initContainerStatuses"]).iter().enumerate() {
        let count = int(cs, &["restartCount"]);
        restarts += count;
        last_restart = last_restart.max(last_terminated(cs));
        let sidecar = is_sidecar(text(cs, &["name"]));
        if sidecar {
            sidecar_restarts += count;
            last_sidecar_restart = last_sidecar_restart.max(last_terminated(cs));
        }
        let terminated = at(cs, &["state", "terminated"]);
        let waiting_reason = text(cs, &["state", "waiting", "reason"]);
        if terminated.is_some_and(|t| int(t, &["exitCode"]) == 0) {
            continue;
        }
        if sidecar && flag(cs, &["started"]) {
            if flag(cs, &["ready"]) {
                ready += 1;
            }
            continue;
        }
        reason = if let Some(t) = terminated {
            match text(t, &["reason"]) {
                "" if int(t, &["signal"]) != 0 => format!("Init:Signal:{}", int(t, &["signal"])),
                "" => format!("Init:ExitCode:{}", int(t, &["exitCode"])),
                r => format!("Init:{r}"),
            }
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }

    let initialized = condition(conditions, "Initialized").is_some_and(|c| text(c, &["status"]) == "True");
    if !initializing || initialized {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        // Upstream walks statuses backwards so the first container's reason wins.
        for cs in list(status, &["containerStatuses"]).iter().rev() {
            restarts += int(cs, &["restartCount"]);
            last_restart = last_restart.max(last_terminated(cs));
            let waiting_reason = text(cs, &["state", "waiting", "reason"]);
            let terminated = at(cs, &["state", "terminated"]);
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                reason = match text(t, &["reason"]) {
                    "" if int(t, &["signal"]) != 0 => format!("Signal:{}", int(t, &["signal"])),
                    "" => format!("ExitCode:{}", int(t, &["exitCode"])),
                    r => r.to_string(),
                };
            } else if flag(cs, &["ready"]) && at(cs, &["state", "running"]).is_some() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let pod_ready = condition(conditions, "Ready").is_some_and(|c| text(c, &["status"]) == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.to_string();
        }
    }

    if at(pod, &["metadata", "deletionTimestamp"]).is_some() {
        if text(status, &["reason"]) == "NodeLost" {
            reason = "Unknown".to_string();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".to_string();
        }
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(t), now)),
        _ => restarts.to_string(),
    };

    // podIPs[0] is authoritative; v1 objects written without podIPs still carry podIP.
    let ip = list(status, &["podIPs"])
        .first()
        .map(|p| text(p, &["ip"]))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| text(status, &["podIP"]));
    let gates = list(pod, &["spec", "readinessGates"]);
    let gates_cell = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let satisfied = gates
            .iter()
            .filter(|g| {
                condition(conditions, text(g, &["conditionType"])).is_some_and(|c| text(c, &["status"]) == "True")
            })
            .count();
        format!("{satisfied}/{}", gates.len())
    };

    let cells = vec![
        json!(name(pod)),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_cell),
        json!(age(pod, now)),
        json!(or_none(ip)),
        json!(or_none(text(pod, &["spec", "nodeName"]))),
        json!(or_none(text(status, &["nominatedNodeName"]))),
        json!(gates_cell),
    ];
    (cells, row_conditions)
}

/// printNode: only the Ready condition feeds STATUS; cordoned nodes get ",SchedulingDisabled".
fn node_cells(node: &Value, now: Timestamp) -> Vec<Value> {
    // Upstream keys conditions by type, so a later duplicate overrides an earlier one.
    let ready = list(node, &["status", "conditions"]).iter().rfind(|c| text(c, &["type"]) == "Ready");
    let mut status = vec![match ready {
        Some(c) if text(c, &["status"]) == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if flag(node, &["spec", "unschedulable"]) {
        status.push("SchedulingDisabled");
    }

    let mut roles = BTreeSet::new();
    if let Some(labels) = at(node, &["metadata", "labels"]).and_then(Value::as_object) {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.insert(role.to_string());
                }
            } else if k == "kubernetes.io/role" {
                let v = scalar_text(v);
                if !v.is_empty() {
                    roles.insert(v);
                }
            }
        }
    }
    let roles = roles.into_iter().collect::<Vec<_>>().join(",");

    let address = |ty: &str| {
        list(node, &["status", "addresses"])
            .iter()
            .find(|a| text(a, &["type"]) == ty)
            .map_or_else(|| "<none>".to_string(), |a| text(a, &["address"]).to_string())
    };
    let info = |field: &str| match text(node, &["status", "nodeInfo", field]) {
        "" => "<unknown>".to_string(),
        s => s.to_string(),
    };
    vec![
        json!(name(node)),
        json!(status.join(",")),
        json!(or_none(&roles)),
        json!(age(node, now)),
        json!(text(node, &["status", "nodeInfo", "kubeletVersion"])),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
}

fn job_cells(job: &Value, now: Timestamp) -> Vec<Value> {
    let succeeded = int(job, &["status", "succeeded"]);
    let completions = match at(job, &["spec", "completions"]) {
        Some(_) => format!("{succeeded}/{}", int(job, &["spec", "completions"])),
        None => match int(job, &["spec", "parallelism"]) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let start = time(job, &["status", "startTime"]);
    let duration = match (start, time(job, &["status", "completionTime"])) {
        (None, _) => String::new(),
        (Some(s), None) => human_duration(now.as_nanosecond() - s.as_nanosecond()),
        (Some(s), Some(c)) => human_duration(c.as_nanosecond() - s.as_nanosecond()),
    };
    let conditions = list(job, &["status", "conditions"]);
    let has = |ty: &str| condition(conditions, ty).is_some_and(|c| text(c, &["status"]) == "True");
    let status = if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if at(job, &["metadata", "deletionTimestamp"]).is_some() {
        "Terminating"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = container_cells(at(job, &["spec", "template", "spec"]));
    vec![
        json!(name(job)),
        json!(status),
        json!(completions),
        json!(duration),
        json!(age(job, now)),
        json!(names),
        json!(images),
        json!(format_label_selector(at(job, &["spec", "selector"]))),
    ]
}

/// printService. The server always renders wide, so load-balancer addresses are never clipped.
fn service_cells(svc: &Value, now: Timestamp) -> Vec<Value> {
    // A stored Service always has a type after defaulting; treat a bare object the same way.
    let ty = opt_text(svc, &["spec", "type"]).unwrap_or("ClusterIP");
    let cluster_ip = list(svc, &["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str)
        .or_else(|| opt_text(svc, &["spec", "clusterIP"]))
        .unwrap_or("<none>");
    let external_ips: Vec<String> = list(svc, &["spec", "externalIPs"]).iter().map(scalar_text).collect();
    let external = match ty {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer_ingress(at(svc, &["status"]).unwrap_or(&Value::Null));
            if !external_ips.is_empty() {
                let mut all: Vec<String> =
                    if lb.is_empty() { Vec::new() } else { lb.split(',').map(str::to_string).collect() };
                all.extend(external_ips);
                all.join(",")
            } else if !lb.is_empty() {
                lb
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => text(svc, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    };
    let ports: Vec<String> = list(svc, &["spec", "ports"])
        .iter()
        .map(|p| {
            let port = int(p, &["port"]);
            let proto = opt_text(p, &["protocol"]).unwrap_or("TCP");
            match int(p, &["nodePort"]) {
                np if np > 0 => format!("{port}:{np}/{proto}"),
                _ => format!("{port}/{proto}"),
            }
        })
        .collect();
    vec![
        json!(name(svc)),
        json!(ty),
        json!(cluster_ip),
        json!(external),
        json!(or_none(&ports.join(","))),
        json!(age(svc, now)),
        json!(format_labels(at(svc, &["spec", "selector"]))),
    ]
}

/// formatEndpoints: at most three `ip:port` entries, then "+ N more...".
fn format_endpoints(ep: &Value) -> String {
    let subsets = list(ep, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    let mut shown = Vec::new();
    let mut count = 0usize;
    for ss in subsets {
        let addrs = list(ss, &["addresses"]);
        let ports = list(ss, &["ports"]);
        if ports.is_empty() {
            count += addrs.len();
            shown.extend(addrs.iter().map(|a| text(a, &["ip"]).to_string()));
            continue;
        }
        for port in ports {
            count += addrs.len();
            let p = int(port, &["port"]);
            shown.extend(addrs.iter().map(|a| {
                let ip = text(a, &["ip"]);
                if ip.contains(':') { format!("[{ip}]:{p}") } else { format!("{ip}:{p}") }
            }));
        }
    }
    list_with_more(&shown, count, 3, "")
}

fn ingress_cells(ing: &Value, now: Timestamp) -> Vec<Value> {
    let rules = list(ing, &["spec", "rules"]);
    let mut hosts: Vec<String> = Vec::new();
    let mut more = false;
    for r in rules {
        if hosts.len() == 3 {
            more = true;
        }
        let h = text(r, &["host"]);
        if !more && !h.is_empty() {
            hosts.push(h.to_string());
        }
    }
    let hosts_cell = if hosts.is_empty() {
        "*".to_string()
    } else if more {
        format!("{} + {} more...", hosts.join(","), rules.len() - 3)
    } else {
        hosts.join(",")
    };
    let ports = if list(ing, &["spec", "tls"]).is_empty() { "80" } else { "80, 443" };
    vec![
        json!(name(ing)),
        json!(opt_text(ing, &["spec", "ingressClassName"]).unwrap_or("<none>")),
        json!(hosts_cell),
        json!(load_balancer_ingress(at(ing, &["status"]).unwrap_or(&Value::Null))),
        json!(ports),
        json!(age(ing, now)),
    ]
}

/// printEvent for both core/v1 and events.k8s.io/v1 objects (same storage upstream; the newer
/// API just renames fields: regarding, note, deprecated*).
fn event_cells(ev: &Value, now: Timestamp) -> Vec<Value> {
    let new_api = text(ev, &["apiVersion"]).starts_with("events.k8s.io/");
    let field = |core: &'static str, events: &'static str| if new_api { events } else { core };

    let first = match time(ev, &[field("firstTimestamp", "deprecatedFirstTimestamp")]) {
        Some(t) => since(Some(t), now),
        None => since(time(ev, &["eventTime"]), now),
    };
    let mut last = match time(ev, &[field("lastTimestamp", "deprecatedLastTimestamp")]) {
        Some(t) => since(Some(t), now),
        None => first.clone(),
    };
    let mut count = int(ev, &[field("count", "deprecatedCount")]);
    if let Some(series) = at(ev, &["series"]) {
        last = since(time(series, &["lastObservedTime"]), now);
        count = int(series, &["count"]);
    } else if count == 0 {
        // Singleton events from the new API carry no count.
        count = 1;
    }

    let involved = at(ev, &[field("involvedObject", "regarding")]).unwrap_or(&Value::Null);
    let kind = text(involved, &["kind"]).to_lowercase();
    let target = match text(involved, &["name"]) {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let src = at(ev, &[field("source", "deprecatedSource")]).unwrap_or(&Value::Null);
    let component = match text(src, &["component"]) {
        "" => text(ev, &[field("reportingComponent", "reportingController")]),
        c => c,
    };
    let instance = match text(src, &["host"]) {
        "" => text(ev, &["reportingInstance"]),
        h => h,
    };
    let source = if instance.is_empty() { component.to_string() } else { format!("{component}, {instance}") };
    vec![
        json!(last),
        json!(text(ev, &["type"])),
        json!(text(ev, &["reason"])),
        json!(target),
        json!(text(involved, &["fieldPath"])),
        json!(source),
        json!(text(ev, &[field("message", "note")]).trim()),
        json!(first),
        json!(count),
        json!(name(ev)),
    ]
}

// ---------------------------------------------------------------------------------------------
// Custom resources

struct CrColumn {
    name: String,
    ty: String,
    format: String,
    description: String,
    priority: i64,
    json_path: String,
}

/// The CRD's columns, or upstream's implicit `Age` date column when the version has none.
fn custom_columns(printer_columns: Option<&Value>) -> Vec<CrColumn> {
    let defined: Vec<CrColumn> = printer_columns
        .and_then(Value::as_array)
        .map(|cols| {
            cols.iter()
                .map(|col| {
                    let path = text(col, &["jsonPath"]).to_string();
                    CrColumn {
                        name: text(col, &["name"]).to_string(),
                        ty: text(col, &["type"]).to_string(),
                        format: text(col, &["format"]).to_string(),
                        description: match text(col, &["description"]) {
                            "" => format!("Custom resource column (JSONPath): {path}"),
                            d => d.to_string(),
                        },
                        priority: int(col, &["priority"]),
                        json_path: path,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = vec![CrColumn {
        name: "Name".into(),
        ty: "string".into(),
        format: "name".into(),
        description: NAME_DESC.into(),
        priority: 0,
        json_path: String::new(),
    }];
    if defined.is_empty() {
        out.push(CrColumn {
            name: "Age".into(),
            ty: "date".into(),
            format: String::new(),
            description: AGE_DESC.into(),
            priority: 0,
            json_path: ".metadata.creationTimestamp".into(),
        });
    } else {
        out.extend(defined);
    }
    out
}

fn custom_cells(obj: &Value, printer_columns: Option<&Value>, now: Timestamp) -> Vec<Value> {
    let cols = custom_columns(printer_columns);
    let mut cells = vec![json!(name(obj))];
    for col in cols.iter().skip(1) {
        let first = parse_jsonpath(&col.json_path).and_then(|segs| eval_jsonpath(obj, &segs).into_iter().next());
        cells.push(first.map_or(Value::Null, |v| custom_cell(&col.ty, v, now)));
    }
    cells
}

/// Typed cell for one JSONPath result, following the CRD table convertor: strings are printed
/// (objects/arrays as compact JSON), other types must match or the cell is null.
fn custom_cell(ty: &str, v: &Value, now: Timestamp) -> Value {
    match ty {
        "string" => match v {
            Value::String(s) => json!(s),
            Value::Null => json!("<no value>"),
            other => json!(other.to_string()),
        },
        "integer" => v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)).map_or(Value::Null, |i| json!(i)),
        "number" => v.as_f64().map_or(Value::Null, |f| json!(f)),
        "boolean" => v.as_bool().map_or(Value::Null, |b| json!(b)),
        "date" => match v.as_str() {
            Some(s) => match parse_time(s) {
                Some(t) => json!(since(Some(t), now)),
                None => json!("<invalid>"),
            },
            None => Value::Null,
        },
        _ => Value::Null,
    }
}

#[derive(Debug, PartialEq)]
enum Segment {
    Field(String),
    Index(i64),
    Wildcard,
    Filter(Filter),
}

#[derive(Debug, PartialEq)]
struct Filter {
    path: Vec<String>,
    test: Option<(CmpOp, Value)>,
}

#[derive(Debug, PartialEq, Clone, Copy)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// The subset of kubectl JSONPath that printer columns use in practice: `.a.b`, escaped dots,
/// `['key']`, `[N]`, `[*]` and `[?(@.x.y == "v")]`. Anything else yields None (null cells)
/// rather than guessing.
fn parse_jsonpath(src: &str) -> Option<Vec<Segment>> {
    let mut s = src.trim();
    if let Some(inner) = s.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
        s = inner.trim();
    }
    s = s.strip_prefix('$').unwrap_or(s);
    let chars: Vec<char> = s.chars().collect();
    let mut segs = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                match chars.get(i) {
                    Some('.') | None => return None,
                    Some('*') => {
                        segs.push(Segment::Wildcard);
                        i += 1;
                    }
                    Some(_) => {
                        let mut field = String::new();
                        while let Some(&ch) = chars.get(i) {
                            if ch == '.' || ch == '[' {
                                break;
                            }
                            if ch == '\\' {
                                i += 1;
                                field.push(*chars.get(i)?);
                            } else {
                                field.push(ch);
                            }
                            i += 1;
                        }
                        segs.push(Segment::Field(field));
                    }
                }
            }
            '[' => {
                let close = matching_bracket(&chars, i)?;
                let inner: String = chars[i + 1..close].iter().collect();
                segs.push(parse_bracket(inner.trim())?);
                i = close + 1;
            }
            _ => return None,
        }
    }
    Some(segs)
}

/// Index of the `]` closing the bracket at `open`, skipping quoted text.
fn matching_bracket(chars: &[char], open: usize) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    for (j, &ch) in chars.iter().enumerate().skip(open) {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(ch),
            (None, '[') => depth += 1,
            (None, ']') => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
    }
    None
}

fn unquote(s: &str) -> Option<&str> {
    s.strip_prefix('\'')
        .and_then(|x| x.strip_suffix('\''))
        .or_else(|| s.strip_prefix('"').and_then(|x| x.strip_suffix('"')))
}

fn parse_bracket(inner: &str) -> Option<Segment> {
    if inner == "*" {
        return Some(Segment::Wildcard);
    }
    if let Some(key) = unquote(inner) {
        return Some(Segment::Field(key.to_string()));
    }
    if let Some(body) =
        inner.strip_prefix('?').map(str::trim).and_then(|x| x.strip_prefix('(')).and_then(|x| x.strip_suffix(')'))
    {
        return parse_filter(body.trim()).map(Segment::Filter);
    }
    inner.parse::<i64>().ok().map(Segment::Index)
}

fn parse_filter(body: &str) -> Option<Filter> {
    let rest = body.strip_prefix('@')?;
    let end = rest.find(|c: char| c.is_whitespace() || "=!<>".contains(c)).unwrap_or(rest.len());
    let path: Vec<String> = rest[..end].split('.').filter(|p| !p.is_empty()).map(str::to_string).collect();
    let tail = rest[end..].trim();
    if tail.is_empty() {
        return Some(Filter { path, test: None });
    }
    let (op, lit) = [
        ("==", CmpOp::Eq),
        ("!=", CmpOp::Ne),
        ("<=", CmpOp::Le),
        (">=", CmpOp::Ge),
        ("<", CmpOp::Lt),
        (">", CmpOp::Gt),
    ]
    .iter()
    .find_map(|(tok, op)| tail.strip_prefix(tok).map(|l| (*op, l.trim())))?;
    let literal = if let Some(s) = unquote(lit) {
        json!(s)
    } else if let Ok(n) = lit.parse::<i64>() {
        json!(n)
    } else if let Ok(f) = lit.parse::<f64>() {
        json!(f)
    } else {
        match lit {
            "true" => json!(true),
            "false" => json!(false),
            _ => return None,
        }
    };
    Some(Filter { path, test: Some((op, literal)) })
}

fn filter_matches(f: &Filter, item: &Value) -> bool {
    let Some(v) = f.path.iter().try_fold(item, |cur, key| cur.get(key.as_str())) else {
        return false;
    };
    let Some((op, lit)) = &f.test else {
        return true;
    };
    let ordering = match (v, lit) {
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Number(_), Value::Number(_)) => v.as_f64().zip(lit.as_f64()).and_then(|(a, b)| a.partial_cmp(&b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    };
    match (op, ordering) {
        (CmpOp::Ne, None) => true,
        (_, None) => false,
        (CmpOp::Eq, Some(o)) => o.is_eq(),
        (CmpOp::Ne, Some(o)) => o.is_ne(),
        (CmpOp::Lt, Some(o)) => o.is_lt(),
        (CmpOp::Le, Some(o)) => o.is_le(),
        (CmpOp::Gt, Some(o)) => o.is_gt(),
        (CmpOp::Ge, Some(o)) => o.is_ge(),
    }
}

/// Missing keys are not errors (upstream sets AllowMissingKeys): they just produce no values.
fn eval_jsonpath<'a>(root: &'a Value, segs: &[Segment]) -> Vec<&'a Value> {
    let mut cur = vec![root];
    for seg in segs {
        let mut next = Vec::new();
        for v in cur {
            match seg {
                Segment::Field(k) => next.extend(v.as_object().and_then(|m| m.get(k))),
                Segment::Index(i) => {
                    if let Some(a) = v.as_array() {
                        let len = a.len() as i64;
                        let idx = if *i < 0 { len + i } else { *i };
                        if (0..len).contains(&idx) {
                            next.extend(usize::try_from(idx).ok().and_then(|u| a.get(u)));
                        }
                    }
                }
                Segment::Wildcard => match v {
                    Value::Array(a) => next.extend(a.iter()),
                    Value::Object(m) => next.extend(m.values()),
                    _ => {}
                },
                Segment::Filter(f) => {
                    if let Some(a) = v.as_array() {
                        next.extend(a.iter().filter(|item| filter_matches(f, item)));
                    }
                }
            }
        }
        cur = next;
    }
    cur
}

// ---------------------------------------------------------------------------------------------
// Row objects

/// What the row's `object` carries: by default only metadata as a PartialObjectMetadata, which
/// is all kubectl needs for names/namespaces and label columns.
fn embedded_object(obj: &Value, include: IncludeObject) -> Value {
    match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Object => obj.clone(),
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": at(obj, &["metadata"]).cloned().unwrap_or_else(|| json!({})),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-21T08:11:30Z plus `secs`, the creation time of most reference objects.
    fn at_offset(secs: i64) -> Timestamp {
        let base: Timestamp = "2026-11-21T08:11:30Z".parse().expect("valid timestamp");
        Timestamp::from_second(base.as_second() + secs).expect("in range")
    }

    fn cells(kind: &str, obj: &Value, now: Timestamp) -> Vec<Value> {
        let r = row(kind, obj, None, IncludeObject::None, now);
        r["cells"].as_array().cloned().expect("cells array")
    }

    fn strs(v: &[Value]) -> Vec<String> {
        v.iter().map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_string)).collect()
    }

    fn column_names(kind: &str, pc: Option<&Value>) -> Vec<String> {
        columns(kind, pc)
            .as_array()
            .expect("array")
            .iter()
            .map(|c| c["name"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    // Trimmed copies of testdata/k8s-reference/v1.32/*.json (fields printers read kept
    // verbatim) so the tests do not depend on that directory existing where they run.
    fn pod_scheduled_running() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"creationTimestamp": "2026-11-21T08:11:25Z", "labels": {"app": "bare"},
                "name": "bare", "namespace": "ref", "resourceVersion": "943",
                "uid": "914d2a4b-8073-4eee-80ba-1a5141a2c15a"},
            "spec": {"containers": [{"image": "nginx:1.27", "name": "main"}],
                "nodeName": "ref-n1", "restartPolicy": "Always"},
            "status": {
                "conditions": [
                    {"status": "True", "type": "PodReadyToStartContainers"},
                    {"status": "True", "type": "Initialized"},
                    {"status": "True", "type": "Ready"},
                    {"status": "True", "type": "ContainersReady"},
                    {"status": "True", "type": "PodScheduled"}],
                "containerStatuses": [{"containerID": "containerd://bare-main",
                    "image": "nginx:1.27", "lastState": {}, "name": "main", "ready": true,
                    "restartCount": 0, "started": true,
                    "state": {"running": {"startedAt": "2026-11-21T08:11:26Z"}}}],
                "hostIP": "127.0.0.1", "phase": "Running", "podIP": "127.0.0.1",
                "podIPs": [{"ip": "127.0.0.1"}], "qosClass": "Burstable",
                "startTime": "2026-11-21T08:11:26Z"}
        })
    }

    fn pod_terminating() -> Value {
        json!({
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": "web-58fd498598-54q9w", "namespace": "ref",
                "creationTimestamp": "2026-11-21T08:11:30Z",
                "deletionTimestamp": "2026-11-21T08:12:10Z", "deletionGracePeriodSeconds": 30},
            "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}], "nodeName": "n2"},
            "status": {"phase": "Running",
                "conditions": [{"type": "Initialized", "status": "True"},
                    {"type": "Ready", "status": "True"},
                    {"type": "DisruptionTarget", "status": "True",
                        "reason": "EvictionByEvictionAPI"}],
                "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}],
                "containerStatuses": [{"name": "c",
                    "state": {"running": {"startedAt": "2026-11-21T08:11:31Z"}},
                    "lastState": {}, "ready": true, "restartCount": 0, "started": true}]}
        })
    }

    fn node_created() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"creationTimestamp": "2026-11-21T08:11:22Z",
                "labels": {"kubernetes.io/hostname": "ref-n1"}, "name": "ref-n1",
                "resourceVersion": "935"},
            "spec": {},
            "status": {"conditions": [{"lastHeartbeatTime": null, "lastTransitionTime": null,
                    "status": "True", "type": "Ready"}],
                "nodeInfo": {"architecture": "", "containerRuntimeVersion": "",
                    "kernelVersion": "", "kubeletVersion": "", "osImage": ""}}
        })
    }

    fn deployment_available() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"creationTimestamp": "2026-11-21T08:11:30Z", "generation": 1,
                "name": "web", "namespace": "ref", "resourceVersion": "969"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                    "spec": {"containers": [{"image": "nginx:1.27", "name": "c"}]}}},
            "status": {"availableReplicas": 2, "observedGeneration": 1, "readyReplicas": 2,
                "replicas": 2, "updatedReplicas": 2}
        })
    }

    fn replicaset() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"creationTimestamp": "2026-11-21T08:11:30Z", "name": "web-58fd498598",
                "namespace": "ref", "resourceVersion": "968"},
            "spec": {"replicas": 2, "selector": {"matchLabels":
                    {"app": "web", "pod-template-hash": "58fd498598"}},
                "template": {"spec": {"containers": [{"image": "nginx:1.27", "name": "c"}]}}},
            "status": {"availableReplicas": 2, "fullyLabeledReplicas": 2, "readyReplicas": 2,
                "replicas": 2}
        })
    }

    fn pdb_status() -> Value {
        json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"creationTimestamp": "2026-11-21T08:11:30Z", "name": "web",
                "namespace": "ref", "resourceVersion": "967"},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"currentHealthy": 2, "desiredHealthy": 2, "disruptionsAllowed": 0,
                "expectedPods": 2}
        })
    }

    fn event_scheduled() -> Value {
        json!({"action": "Binding", "apiVersion": "v1",
            "eventTime": "2026-11-21T08:11:25.112216Z", "firstTimestamp": null,
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": "bare",
                "namespace": "ref"},
            "kind": "Event", "lastTimestamp": null,
            "message": "Successfully assigned ref/bare to ref-n1",
            "metadata": {"creationTimestamp": "2026-11-21T08:11:25Z",
                "name": "bare.18ea012adf99eee0", "namespace": "ref"},
            "reason": "Scheduled", "reportingComponent": "default-scheduler",
            "reportingInstance": "default-scheduler-vm", "source": {}, "type": "Normal"})
    }

    fn event_nopods() -> Value {
        json!({"apiVersion": "v1", "count": 1, "eventTime": null,
            "firstTimestamp": "2026-11-21T08:11:30Z",
            "involvedObject": {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "name": "web", "namespace": "ref"},
            "kind": "Event", "lastTimestamp": "2026-11-21T08:11:30Z",
            "message": "No matching pods found",
            "metadata": {"creationTimestamp": "2026-11-21T08:11:30Z",
                "name": "web.18ea012c14057a7a", "namespace": "ref"},
            "reason": "NoPods", "reportingComponent": "controllermanager",
            "reportingInstance": "", "source": {"component": "controllermanager"},
            "type": "Normal"})
    }

    #[test]
    fn human_age_matches_human_duration() {
        let now = at_offset(0);
        let ago = |s: i64| human_age(Some(&at_offset(-s).to_string()), now);
        assert_eq!(ago(0), "0s");
        assert_eq!(ago(59), "59s");
        assert_eq!(ago(119), "119s");
        assert_eq!(ago(120), "2m");
        assert_eq!(ago(123), "2m3s");
        assert_eq!(ago(10 * 60 + 5), "10m");
        assert_eq!(ago(179 * 60), "179m");
        assert_eq!(ago(3 * 3600 + 4 * 60), "3h4m");
        assert_eq!(ago(5 * 3600), "5h");
        assert_eq!(ago(30 * 3600), "30h");
        assert_eq!(ago(2 * 86400 + 3 * 3600), "2d3h");
        assert_eq!(ago(5 * 86400), "5d");
        assert_eq!(ago(100 * 86400), "100d");
        assert_eq!(ago(3 * 365 * 86400 + 10 * 86400), "3y10d");
        assert_eq!(ago(9 * 365 * 86400), "9y");
        // Up to one second of clock skew is "now"; more is reported as invalid.
        assert_eq!(ago(-1), "0s");
        assert_eq!(ago(-5), "<invalid>");
        assert_eq!(human_age(None, now), "<unknown>");
        assert_eq!(human_age(Some("not a time"), now), "<unknown>");
        assert_eq!(human_age(Some("2026-11-21T08:11:25.112216Z"), now), "4s", "MicroTime");
    }

    #[test]
    fn pod_reference_running() {
        let now = at_offset(125);
        let c = cells("Pod", &pod_scheduled_running(), now);
        assert_eq!(strs(&c), ["bare", "1/1", "Running", "0", "2m10s", "127.0.0.1", "ref-n1", "<none>", "<none>"]);
        assert_eq!(c.len(), columns("Pod", None).as_array().map_or(0, Vec::len));
    }

    #[test]
    fn pod_reference_terminating() {
        let c = cells("Pod", &pod_terminating(), at_offset(45));
        assert_eq!(strs(&c[..5]), ["web-58fd498598-54q9w", "1/1", "Terminating", "0", "45s"]);
        assert_eq!(c[6], "n2");
    }

    #[test]
    fn pod_half_ready_restarted_and_deleted() {
        let mut pod = json!({
            "metadata": {"name": "p", "creationTimestamp": "2026-11-21T08:11:30Z"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.7",
                "containerStatuses": [
                    {"name": "a", "ready": true, "restartCount": 0,
                        "state": {"running": {}}},
                    {"name": "b", "ready": false, "restartCount": 1,
                        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                        "lastState": {"terminated": {"exitCode": 1,
                            "finishedAt": "2026-11-21T08:20:00Z"}}}]}
        });
        let now = at_offset(9 * 60 + 3); // 08:20:33, i.e. 33s after the restart
        let c = cells("Pod", &pod, now);
        assert_eq!(strs(&c[..4]), ["p", "1/2", "CrashLoopBackOff", "1 (33s ago)"]);
        assert_eq!(c[5], "10.0.0.7", "falls back to podIP without podIPs");

        pod["metadata"]["deletionTimestamp"] = json!("2026-11-21T08:20:30Z");
        let c = cells("Pod", &pod, now);
        assert_eq!(strs(&c[..4]), ["p", "1/2", "Terminating", "1 (33s ago)"]);

        pod["status"]["reason"] = json!("NodeLost");
        assert_eq!(cells("Pod", &pod, now)[2], "Unknown");
    }

    #[test]
    fn pod_init_container_states() {
        let mut pod = json!({
            "metadata": {"name": "init"},
            "spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}],
                "containers": [{"name": "main"}]},
            "status": {"phase": "Pending",
                "initContainerStatuses": [
                    {"name": "i1", "state": {"terminated": {"exitCode": 0}}, "restartCount": 0},
                    {"name": "i2", "state": {"running": {}}, "restartCount": 2}],
                "containerStatuses": [{"name": "main", "restartCount": 0,
                    "state": {"waiting": {"reason": "PodInitializing"}}}]}
        });
        let now = at_offset(0);
        let c = cells("Pod", &pod, now);
        assert_eq!(strs(&c[..5]), ["init", "0/1", "Init:1/2", "2", "<unknown>"]);

        pod["status"]["initContainerStatuses"][1]["state"] = json!({"waiting": {"reason": "ErrImagePull"}});
        assert_eq!(cells("Pod", &pod, now)[2], "Init:ErrImagePull");

        pod["status"]["initContainerStatuses"][1]["state"] = json!({"terminated": {"exitCode": 3}});
        assert_eq!(cells("Pod", &pod, now)[2], "Init:ExitCode:3");

        pod["status"]["initContainerStatuses"][1]["state"] = json!({"terminated": {"exitCode": 137, "signal": 9}});
        assert_eq!(cells("Pod", &pod, now)[2], "Init:Signal:9");
    }

    #[test]
    fn pod_sidecar_counts_towards_ready() {
        let pod = json!({
            "metadata": {"name": "sc"},
            "spec": {"initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
                "containers": [{"name": "app"}]},
            "status": {"phase": "Running",
                "conditions": [{"type": "Initialized", "status": "True"}],
                "initContainerStatuses": [{"name": "proxy", "started": true, "ready": true,
                    "restartCount": 1, "state": {"running": {}}}],
                "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0,
                    "state": {"running": {}}}]}
        });
        let c = cells("Pod", &pod, at_offset(0));
        assert_eq!(strs(&c[..4]), ["sc", "2/2", "Running", "1"]);
    }

    #[test]
    fn pod_completed_has_row_condition() {
        let pod = json!({
            "metadata": {"name": "job-x"},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Succeeded", "containerStatuses": [{"name": "c",
                "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}
        });
        let r = row("Pod", &pod, None, IncludeObject::Metadata, at_offset(0));
        assert_eq!(r["cells"][1], "0/1");
        assert_eq!(r["cells"][2], "Completed");
        assert_eq!(r["conditions"][0]["type"], "Completed");
        assert_eq!(r["conditions"][0]["status"], "True");
        assert_eq!(r["conditions"][0]["reason"], "Succeeded");
        // A running container beside a completed one flips the status back.
        let mixed = json!({
            "metadata": {"name": "m"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [
                    {"name": "a", "ready": true, "state": {"running": {}}},
                    {"name": "b", "state": {"terminated": {"exitCode": 0,
                        "reason": "Completed"}}}]}
        });
        assert_eq!(cells("Pod", &mixed, at_offset(0))[2], "NotReady");
    }

    #[test]
    fn pod_readiness_gates_and_nominated_node() {
        let pod = json!({
            "metadata": {"name": "g"},
            "spec": {"containers": [], "readinessGates": [{"conditionType": "x/one"},
                {"conditionType": "x/two"}]},
            "status": {"phase": "Pending", "nominatedNodeName": "n9",
                "conditions": [{"type": "x/one", "status": "True"},
                    {"type": "x/two", "status": "False"}]}
        });
        let c = cells("Pod", &pod, at_offset(0));
        assert_eq!(strs(&c[5..]), ["<none>", "<none>", "n9", "1/2"]);
    }

    #[test]
    fn node_reference_and_cordoned_control_plane() {
        let now = at_offset(60 * 60 * 24 * 5);
        let c = cells("Node", &node_created(), now);
        assert_eq!(
            strs(&c),
            ["ref-n1", "Ready", "<none>", "5d", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"]
        );

        let mut node = node_created();
        node["spec"]["unschedulable"] = json!(true);
        node["metadata"]["labels"]["node-role.kubernetes.io/control-plane"] = json!("");
        node["status"]["addresses"] = json!([{"type": "Hostname", "address": "cp"},
            {"type": "InternalIP", "address": "192.168.1.10"}]);
        node["status"]["nodeInfo"]["kubeletVersion"] = json!("v1.32.0");
        node["status"]["nodeInfo"]["osImage"] = json!("Debian GNU/Linux 12");
        let c = cells("Node", &node, now);
        assert_eq!(c[1], "Ready,SchedulingDisabled");
        assert_eq!(c[2], "control-plane");
        assert_eq!(c[4], "v1.32.0");
        assert_eq!(c[5], "192.168.1.10");
        assert_eq!(c[7], "Debian GNU/Linux 12");

        node["metadata"]["labels"]["kubernetes.io/role"] = json!("etcd");
        node["metadata"]["labels"]["node-role.kubernetes.io/"] = json!("");
        node["status"]["conditions"][0]["status"] = json!("Unknown");
        let c = cells("Node", &node, now);
        assert_eq!(c[1], "NotReady,SchedulingDisabled");
        assert_eq!(c[2], "control-plane,etcd");

        let bare = json!({"metadata": {"name": "n"}});
        assert_eq!(cells("Node", &bare, now)[1], "Unknown");
    }

    #[test]
    fn workloads_from_reference_objects() {
        let now = at_offset(3 * 3600 + 4 * 60);
        let c = cells("Deployment", &deployment_available(), now);
        assert_eq!(
            c,
            vec![
                json!("web"),
                json!("2/2"),
                json!(2),
                json!(2),
                json!("3h4m"),
                json!("c"),
                json!("nginx:1.27"),
                json!("app=web")
            ]
        );
        let c = cells("ReplicaSet", &replicaset(), now);
        assert_eq!(
            c,
            vec![
                json!("web-58fd498598"),
                json!(2),
                json!(2),
                json!(2),
                json!("3h4m"),
                json!("c"),
                json!("nginx:1.27"),
                json!("app=web,pod-template-hash=58fd498598")
            ]
        );
        let sts = json!({"metadata": {"name": "db"}, "spec": {"replicas": 3},
            "status": {"readyReplicas": 1}});
        assert_eq!(strs(&cells("StatefulSet", &sts, now)[..2]), ["db", "1/3"]);
        let ds = json!({"metadata": {"name": "agent"},
            "spec": {"template": {"spec": {"nodeSelector": {"b": "2", "a": "1"}}}},
            "status": {"desiredNumberScheduled": 3, "numberReady": 2}});
        let c = cells("DaemonSet", &ds, now);
        assert_eq!(c[1], 3);
        assert_eq!(c[3], 2);
        assert_eq!(c[6], "a=1,b=2");
        assert_eq!(c[10], "<none>");
    }

    #[test]
    fn pdb_from_reference() {
        let c = cells("PodDisruptionBudget", &pdb_status(), at_offset(59));
        assert_eq!(c, vec![json!("web"), json!("2"), json!("N/A"), json!(0), json!("59s")]);
        let pct = json!({"metadata": {"name": "p"}, "spec": {"maxUnavailable": "25%"},
            "status": {"disruptionsAllowed": 1}});
        assert_eq!(strs(&cells("PodDisruptionBudget", &pct, at_offset(0))[..4]), ["p", "N/A", "25%", "1"]);
    }

    #[test]
    fn events_from_reference() {
        let now = at_offset(65);
        assert_eq!(
            column_names("Event", None),
            ["Last Seen", "Type", "Reason", "Object", "Subobject", "Source", "Message", "First Seen", "Count", "Name"]
        );
        let c = cells("Event", &event_scheduled(), now);
        assert_eq!(
            c,
            vec![
                json!("69s"),
                json!("Normal"),
                json!("Scheduled"),
                json!("pod/bare"),
                json!(""),
                json!("default-scheduler, default-scheduler-vm"),
                json!("Successfully assigned ref/bare to ref-n1"),
                json!("69s"),
                json!(1),
                json!("bare.18ea012adf99eee0")
            ]
        );
        let c = cells("Event", &event_nopods(), now);
        assert_eq!(c[0], "65s");
        assert_eq!(c[3], "poddisruptionbudget/web");
        assert_eq!(c[5], "controllermanager");

        let series = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e"}, "type": "Warning", "reason": "BackOff",
            "regarding": {"kind": "Pod", "name": "p", "fieldPath": "spec.containers{c}"},
            "note": " Back-off restarting \n", "reportingController": "kubelet",
            "reportingInstance": "n1", "eventTime": "2026-11-21T08:00:00.000000Z",
            "series": {"count": 7, "lastObservedTime": "2026-11-21T08:12:00.000000Z"}});
        let c = cells("Event", &series, now);
        assert_eq!(
            strs(&c),
            [
                "35s",
                "Warning",
                "BackOff",
                "pod/p",
                "spec.containers{c}",
                "kubelet, n1",
                "Back-off restarting",
                "12m",
                "7",
                "e"
            ]
        );
    }

    #[test]
    fn service_variants() {
        let now = at_offset(0);
        let lb = json!({"metadata": {"name": "web"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.10",
                "clusterIPs": ["10.96.0.10"], "selector": {"app": "web"},
                "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"},
                    {"port": 53, "protocol": "UDP"}]},
            "status": {"loadBalancer": {}}});
        assert_eq!(
            strs(&cells("Service", &lb, now)),
            ["web", "LoadBalancer", "10.96.0.10", "<pending>", "80:30080/TCP,53/UDP", "<unknown>", "app=web"]
        );
        let headless = json!({"metadata": {"name": "h"},
            "spec": {"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"]}});
        assert_eq!(strs(&cells("Service", &headless, now)[..5]), ["h", "ClusterIP", "None", "<none>", "<none>"]);
        let ext = json!({"metadata": {"name": "x"},
            "spec": {"type": "ExternalName", "externalName": "example.com"}});
        assert_eq!(cells("Service", &ext, now)[2], "<none>");
        assert_eq!(cells("Service", &ext, now)[3], "example.com");
    }

    #[test]
    fn config_secret_sa_namespace_lease_priorityclass() {
        let now = at_offset(0);
        let cm = json!({"metadata": {"name": "cfg"}, "data": {"a": "1", "b": "2"},
            "binaryData": {"c": "AA=="}});
        assert_eq!(cells("ConfigMap", &cm, now)[1], 3);
        let sec = json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"k": "dg=="}});
        assert_eq!(strs(&cells("Secret", &sec, now)[..3]), ["s", "Opaque", "1"]);
        let sa = json!({"metadata": {"name": "default"}});
        assert_eq!(cells("ServiceAccount", &sa, now)[1], 0);
        let ns = json!({"metadata": {"name": "ref"}, "status": {"phase": "Active"}});
        assert_eq!(cells("Namespace", &ns, now)[1], "Active");
        let lease = json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "n1"}});
        assert_eq!(cells("Lease", &lease, now)[1], "n1");
        let pc = json!({"metadata": {"name": "high"}, "value": 1000, "globalDefault": false,
            "preemptionPolicy": "PreemptLowerPriority"});
        let c = cells("PriorityClass", &pc, now);
        assert_eq!(c[1], 1000);
        assert_eq!(c[2], false);
        assert_eq!(c[4], "PreemptLowerPriority");
    }

    #[test]
    fn persistent_volumes_and_claims() {
        let now = at_offset(0);
        let pvc = json!({"metadata": {"name": "data",
                "annotations": {"volume.beta.kubernetes.io/storage-class": "beta"}},
            "spec": {"volumeName": "pv1", "storageClassName": "fast",
                "volumeMode": "Filesystem"},
            "status": {"phase": "Bound", "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteMany", "ReadWriteOnce"]}});
        assert_eq!(
            strs(&cells("PersistentVolumeClaim", &pvc, now)),
            ["data", "Bound", "pv1", "1Gi", "RWO,RWX", "beta", "<unset>", "<unknown>", "Filesystem"]
        );
        let pending = json!({"metadata": {"name": "p"}, "spec": {"storageClassName": "fast"},
            "status": {"phase": "Pending"}});
        assert_eq!(strs(&cells("PersistentVolumeClaim", &pending, now)[..6]), ["p", "Pending", "", "", "", "fast"]);
        let pv = json!({"metadata": {"name": "pv1",
                "deletionTimestamp": "2026-11-21T08:11:30Z"},
            "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOncePod"],
                "persistentVolumeReclaimPolicy": "Retain",
                "claimRef": {"namespace": "ref", "name": "data"}},
            "status": {"phase": "Bound"}});
        assert_eq!(
            strs(&cells("PersistentVolume", &pv, now)),
            ["pv1", "5Gi", "RWOP", "Retain", "Terminating", "ref/data", "", "<unset>", "", "<unknown>", "<unset>"]
        );
    }

    #[test]
    fn default_table_for_crds_and_unknown_kinds() {
        assert_eq!(column_names("CustomResourceDefinition", None), ["Name", "Created At"]);
        let cols = columns("Role", None);
        assert_eq!(cols[0]["format"], "name");
        assert_eq!(cols[1]["type"], "date");
        let crd = json!({"metadata": {"name": "widgets.example.com",
            "creationTimestamp": "2026-11-21T08:11:30Z"}});
        assert_eq!(
            strs(&cells("CustomResourceDefinition", &crd, at_offset(99))),
            ["widgets.example.com", "2026-11-21T08:11:30Z"]
        );
        assert_eq!(strs(&cells("Role", &json!({}), at_offset(0))), ["", "0001-01-01T00:00:00Z"]);
    }

    #[test]
    fn custom_resources_with_printer_columns() {
        let pc = json!([
            {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
            {"name": "Ready", "type": "string",
                "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
            {"name": "Owner", "type": "string", "jsonPath": ".metadata.labels.app\\.kubernetes\\.io/owner",
                "priority": 1, "description": "who owns it"},
            {"name": "Ports", "type": "string", "jsonPath": ".spec.ports"},
            {"name": "Last", "type": "string", "jsonPath": ".spec.ports[-1].name"},
            {"name": "Enabled", "type": "boolean", "jsonPath": ".spec.enabled"},
            {"name": "Started", "type": "date", "jsonPath": ".status.startedAt"},
            {"name": "Missing", "type": "string", "jsonPath": ".status.nothing"}
        ]);
        let cols = columns("Widget", Some(&pc));
        assert_eq!(
            column_names("Widget", Some(&pc)),
            ["Name", "Replicas", "Ready", "Owner", "Ports", "Last", "Enabled", "Started", "Missing"]
        );
        assert_eq!(cols[1]["type"], "integer");
        assert_eq!(cols[3]["priority"], 1);
        assert_eq!(cols[3]["description"], "who owns it");
        let obj = json!({
            "apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w1", "labels": {"app.kubernetes.io/owner": "team-a"}},
            "spec": {"replicas": 3, "enabled": true,
                "ports": [{"name": "http", "port": 80}, {"name": "grpc", "port": 90}]},
            "status": {"startedAt": "2026-11-21T08:09:27Z",
                "conditions": [{"type": "Synced", "status": "False"},
                    {"type": "Ready", "status": "True"}]}
        });
        let r = row("Widget", &obj, Some(&pc), IncludeObject::Metadata, at_offset(0));
        assert_eq!(
            r["cells"],
            json!([
                "w1",
                3,
                "True",
                "team-a",
                "[{\"name\":\"http\",\"port\":80},{\"name\":\"grpc\",\"port\":90}]",
                "grpc",
                true,
                "2m3s",
                null
            ])
        );

        // No printer columns: upstream adds an Age column of type date.
        let empty = json!([]);
        let cols = columns("Gadget", Some(&empty));
        assert_eq!(column_names("Gadget", Some(&empty)), ["Name", "Age"]);
        assert_eq!(cols[1]["type"], "date");
        let gadget = json!({"metadata": {"name": "g",
            "creationTimestamp": "2026-11-21T08:11:30Z"}});
        assert_eq!(
            row("Gadget", &gadget, Some(&empty), IncludeObject::None, at_offset(59))["cells"],
            json!(["g", "59s"])
        );
    }

    #[test]
    fn jsonpath_parser_edges() {
        assert_eq!(
            parse_jsonpath("{.a['b.c'][*]}"),
            Some(vec![Segment::Field("a".into()), Segment::Field("b.c".into()), Segment::Wildcard])
        );
        assert_eq!(parse_jsonpath("..a"), None);
        assert_eq!(parse_jsonpath(".a[1:2]"), None);
        let v = json!({"items": [{"n": 1, "x": "a"}, {"n": 5, "x": "b"}]});
        let segs = parse_jsonpath(".items[?(@.n > 2)].x").expect("parses");
        assert_eq!(eval_jsonpath(&v, &segs), vec![&json!("b")]);
        let segs = parse_jsonpath(".items[?(@.x != 'a')].n").expect("parses");
        assert_eq!(eval_jsonpath(&v, &segs), vec![&json!(5)]);
        let segs = parse_jsonpath(".items[5].n").expect("parses");
        assert!(eval_jsonpath(&v, &segs).is_empty());
    }

    #[test]
    fn include_object_variants() {
        let pod = pod_scheduled_running();
        let now = at_offset(0);
        let meta = row("Pod", &pod, None, IncludeObject::Metadata, now);
        assert_eq!(
            meta["object"],
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                "metadata": pod["metadata"].clone()})
        );
        assert_eq!(row("Pod", &pod, None, IncludeObject::Object, now)["object"], pod);
        let none = row("Pod", &pod, None, IncludeObject::None, now);
        assert!(none.as_object().is_some_and(|m| m.contains_key("object")));
        assert!(none["object"].is_null());
        assert!(none.get("conditions").is_none());
    }

    #[test]
    fn whole_table_shape() {
        let pods = [pod_scheduled_running(), pod_terminating()];
        let t = table(
            "Pod",
            &pods,
            None,
            IncludeObject::Metadata,
            at_offset(0),
            "997",
            Some("eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ"),
        );
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["metadata"], json!({"resourceVersion": "997", "continue": "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ"}));
        let cols = t["columnDefinitions"].as_array().expect("columns");
        let wide: Vec<&str> = cols.iter().filter(|c| c["priority"] == 1).filter_map(|c| c["name"].as_str()).collect();
        assert_eq!(wide, ["IP", "Node", "Nominated Node", "Readiness Gates"]);
        assert_eq!(cols[3]["name"], "Restarts");
        assert_eq!(cols[3]["type"], "string");
        assert_eq!(cols[0]["format"], "name");
        assert!(cols.iter().all(|c| c.get("description").is_some()));
        assert_eq!(t["rows"].as_array().map(Vec::len), Some(2));
        assert_eq!(t["rows"][1]["cells"][2], "Terminating");

        let empty = table("ConfigMap", &[], None, IncludeObject::None, at_offset(0), "", Some(""));
        assert_eq!(empty["metadata"], json!({}));
        assert_eq!(empty["rows"], json!([]));
    }

    #[test]
    fn selectors_render_like_labels_package() {
        let sel = json!({"matchLabels": {"tier": "web"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                {"key": "zone", "operator": "DoesNotExist"},
                {"key": "arch", "operator": "Exists"},
                {"key": "os", "operator": "NotIn", "values": ["windows"]}]});
        assert_eq!(format_label_selector(Some(&sel)), "arch,env in (dev,prod),os notin (windows),tier=web,!zone");
        assert_eq!(format_label_selector(Some(&json!({}))), "<none>");
        assert_eq!(format_label_selector(None), "<none>");
        let bad = json!({"matchExpressions": [{"key": "a", "operator": "Near"}]});
        assert_eq!(format_label_selector(Some(&bad)), "<error>");
        let dep = json!({"metadata": {"name": "d"}, "spec": {"selector": bad}});
        assert_eq!(cells("Deployment", &dep, at_offset(0))[7], "<invalid>");
        assert_eq!(cells("Deployment", &dep, at_offset(0))[1], "0/1", "unset replicas default to 1");
    }

    #[test]
    fn extra_builtin_printers() {
        let now = at_offset(0);
        let job = json!({"metadata": {"name": "j"},
            "spec": {"completions": 3, "selector": {"matchLabels": {"job": "j"}}},
            "status": {"succeeded": 3, "startTime": "2026-11-21T08:10:00Z",
                "completionTime": "2026-11-21T08:11:05Z",
                "conditions": [{"type": "Complete", "status": "True"}]}});
        assert_eq!(strs(&cells("Job", &job, now)[..4]), ["j", "Complete", "3/3", "65s"]);
        let cj = json!({"metadata": {"name": "cj"},
            "spec": {"schedule": "*/5 * * * *", "suspend": false},
            "status": {"active": [{"name": "x"}]}});
        assert_eq!(strs(&cells("CronJob", &cj, now)[..6]), ["cj", "*/5 * * * *", "<none>", "False", "1", "<none>"]);
        let ep = json!({"metadata": {"name": "web"}, "subsets": [{
            "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "10.0.0.3"},
                {"ip": "10.0.0.4"}],
            "ports": [{"port": 80}]}]});
        assert_eq!(cells("Endpoints", &ep, now)[1], "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 1 more...");
        assert_eq!(cells("Endpoints", &json!({"metadata": {"name": "e"}}), now)[1], "<none>");
        let ing = json!({"metadata": {"name": "i"},
            "spec": {"ingressClassName": "nginx", "rules": [{"host": "a.example"}, {}],
                "tls": [{}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}});
        assert_eq!(strs(&cells("Ingress", &ing, now)[..5]), ["i", "nginx", "a.example", "1.2.3.4", "80, 443"]);
        let sc = json!({"metadata": {"name": "std",
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path"});
        assert_eq!(
            cells("StorageClass", &sc, now)[..5],
            [json!("std (default)"), json!("rancher.io/local-path"), json!("Delete"), json!("Immediate"), json!(false)]
        );
        let rb = json!({"metadata": {"name": "rb"},
            "roleRef": {"kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"},
                {"kind": "ServiceAccount", "name": "sa", "namespace": "ref"}]});
        assert_eq!(
            strs(&cells("ClusterRoleBinding", &rb, now)),
            ["rb", "ClusterRole/view", "<unknown>", "alice", "devs", "ref/sa"]
        );
        let cr = json!({"metadata": {"name": "web-7d", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "controller": true}]},
            "revision": 4});
        assert_eq!(
            cells("ControllerRevision", &cr, now)[..3],
            [json!("web-7d"), json!("statefulset.apps/web"), json!(4)]
        );
    }

    /// Every printer must survive junk input and emit exactly one cell per column.
    #[test]
    fn cells_match_columns_for_every_kind_and_never_panic() {
        let kinds = [
            "Pod",
            "PodTemplate",
            "Node",
            "Namespace",
            "Deployment",
            "ReplicaSet",
            "ReplicationController",
            "StatefulSet",
            "DaemonSet",
            "Job",
            "CronJob",
            "Service",
            "Endpoints",
            "EndpointSlice",
            "Ingress",
            "IngressClass",
            "ConfigMap",
            "Secret",
            "ServiceAccount",
            "Event",
            "PersistentVolumeClaim",
            "PersistentVolume",
            "PodDisruptionBudget",
            "PriorityClass",
            "Lease",
            "StorageClass",
            "RoleBinding",
            "ClusterRoleBinding",
            "ControllerRevision",
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
            "RuntimeClass",
            "CustomResourceDefinition",
            "Whatever",
        ];
        let junk = [
            json!(null),
            json!({}),
            json!([]),
            json!({"metadata": 5, "spec": "x", "status": [1]}),
            json!({"metadata": {"name": 7, "creationTimestamp": "yesterday"},
                "spec": {"replicas": "two", "containers": {"a": 1}, "selector": 3},
                "status": {"conditions": "no", "containerStatuses": [null, 4]}}),
        ];
        let now = at_offset(0);
        for kind in kinds {
            let ncols = columns(kind, None).as_array().map_or(0, Vec::len);
            assert!(ncols >= 2, "{kind}");
            for obj in &junk {
                for include in [IncludeObject::None, IncludeObject::Metadata, IncludeObject::Object] {
                    let r = row(kind, obj, None, include, now);
                    assert_eq!(r["cells"].as_array().map(Vec::len), Some(ncols), "{kind}");
                }
            }
        }
        let pc = json!([{"name": "X", "type": "weird", "jsonPath": "not a path"}, 5]);
        for obj in &junk {
            let r = row("Thing", obj, Some(&pc), IncludeObject::Metadata, now);
            assert_eq!(r["cells"].as_array().map(Vec::len), Some(3));
        }
    }

    /// When the shared reference directory is present, run the untrimmed files too.
    #[test]
    fn full_reference_files_when_available() {
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/k8s-reference/v1.32"));
        let load = |f: &str| -> Option<Value> {
            let s = std::fs::read_to_string(dir.join(f)).ok()?;
            serde_json::from_str(&s).ok()
        };
        let Some(pod) = load("pod-scheduled-running.json") else {
            eprintln!("reference dir absent; trimmed fixtures cover the same cases");
            return;
        };
        let now = at_offset(125);
        assert_eq!(cells("Pod", &pod, now), cells("Pod", &pod_scheduled_running(), now));
        if let Some(p) = load("pod-terminating.json") {
            assert_eq!(cells("Pod", &p, now)[2], "Terminating");
        }
        if let Some(n) = load("node-created.json") {
            assert_eq!(cells("Node", &n, now), cells("Node", &node_created(), now));
        }
        if let Some(d) = load("deployment-available.json") {
            assert_eq!(cells("Deployment", &d, now), cells("Deployment", &deployment_available(), now));
        }
        if let Some(p) = load("pdb-status.json") {
            assert_eq!(cells("PodDisruptionBudget", &p, now), cells("PodDisruptionBudget", &pdb_status(), now));
        }
        if let Some(l) = load("replicaset-list.json") {
            let items = list(&l, &["items"]);
            assert_eq!(cells("ReplicaSet", &items[0], now), cells("ReplicaSet", &replicaset(), now));
        }
        if let Some(l) = load("events-core-v1.json") {
            let items = list(&l, &["items"]);
            let t = table("Event", items, None, IncludeObject::None, now, "1", None);
            assert_eq!(t["rows"].as_array().map(Vec::len), Some(items.len()));
            assert_eq!(t["rows"][0]["cells"], json!(cells("Event", &event_scheduled(), now)));
        }
    }
}
