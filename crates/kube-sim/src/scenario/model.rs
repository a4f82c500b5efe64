//! The scenario file format as typed structs, and how a validated scenario
//! becomes Kubernetes objects and timeline actions.
//!
//! The structs mirror the YAML one to one (camelCase keys, unknown keys
//! refused) so that serde's errors carry the exact line and field path.
//! Quantities, profiles and times stay strings here and are checked by
//! `super::load`, which can then report every bad value at once instead of
//! stopping at the first. `docs/scenarios.md` is the user-facing reference.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::profile::Profile;

/// Start-up delay (pod scheduled → Running/Ready), seconds. Kubelet reads it per pod.
pub const ANN_STARTUP_SECONDS: &str = "sim.kube-sim.io/startup-seconds";
/// Shutdown delay (deletion → gone, bounded by the grace period), seconds.
pub const ANN_SHUTDOWN_SECONDS: &str = "sim.kube-sim.io/shutdown-seconds";
/// Pod-level CPU profile, split across containers without their own profile.
pub const ANN_CPU: &str = "sim.kube-sim.io/cpu";
/// Pod-level memory profile, split like [`ANN_CPU`].
pub const ANN_MEMORY: &str = "sim.kube-sim.io/memory";
/// Prefix of per-container CPU profiles: `sim.kube-sim.io/cpu.<container>`.
pub const ANN_CPU_PREFIX: &str = "sim.kube-sim.io/cpu.";
/// Prefix of per-container memory profiles: `sim.kube-sim.io/memory.<container>`.
pub const ANN_MEMORY_PREFIX: &str = "sim.kube-sim.io/memory.";
/// Prefix of per-container behaviours: `sim.kube-sim.io/behaviour.<container>`.
pub const ANN_BEHAVIOUR_PREFIX: &str = "sim.kube-sim.io/behaviour.";
/// Node: whether the runtime can checkpoint containers ("true"/"false").
pub const ANN_CHECKPOINT: &str = "sim.kube-sim.io/checkpoint";
/// Node: system overhead CPU profile (kubelet, runtime, OS).
pub const ANN_SYSTEM_CPU: &str = "sim.kube-sim.io/system-cpu";
/// Node: system overhead memory profile.
pub const ANN_SYSTEM_MEMORY: &str = "sim.kube-sim.io/system-memory";
/// Node: "false" makes the node start NotReady.
pub const ANN_READY: &str = "sim.kube-sim.io/ready";

/// Label and taint key of control-plane nodes.
pub const CONTROL_PLANE_KEY: &str = "node-role.kubernetes.io/control-plane";
/// Image of containers a workload does not list (does nothing, like the real pause image).
pub const DEFAULT_IMAGE: &str = "registry.k8s.io/pause:3.10";
/// Container runtime of a node that names none (cannot restore checkpoints).
pub const DEFAULT_RUNTIME: &str = "containerd://1.7.22";
/// Default system overhead of a node.
pub const DEFAULT_SYSTEM_CPU: &str = "100m";
/// Default system overhead of a node.
pub const DEFAULT_SYSTEM_MEMORY: &str = "256Mi";
/// Namespaces every cluster has; listing them creates nothing.
pub const BUILTIN_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

/// A scalar written as a string, number or boolean, kept as text. YAML reads
/// `cpu: 2` as an integer and `value: true` as a boolean; Kubernetes wants
/// strings for quantities, labels and annotations, so any scalar is accepted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct Text(pub String);

impl Text {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or number")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A whole scenario file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScenarioFile {
    pub name: String,
    pub description: Option<String>,
    /// Seeds usage noise and anything else random, so runs repeat exactly.
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub nodes: Vec<NodeSpec>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub priority_classes: Vec<PriorityClassSpec>,
    #[serde(default)]
    pub workloads: Vec<Workload>,
    #[serde(default)]
    pub timeline: Vec<TimelineEntry>,
}

/// Timings used where a workload or node does not set its own.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Defaults {
    /// Seconds from scheduling to Running/Ready.
    pub startup_seconds: f64,
    /// Seconds a deleted pod takes to stop (bounded by its grace period).
    pub shutdown_seconds: f64,
    /// Seconds between node heartbeats (Lease renewals, Ready condition).
    pub heartbeat_seconds: f64,
    /// Record the Events the simulated components emit (turn off for huge clusters).
    pub record_events: bool,
}

impl Default for Defaults {
    fn default() -> Defaults {
        Defaults { startup_seconds: 2.0, shutdown_seconds: 1.0, heartbeat_seconds: 10.0, record_events: true }
    }
}

fn yes() -> bool {
    true
}

/// One node, or `count` nodes named by a `{i}` pattern.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeSpec {
    pub name: String,
    pub count: Option<i64>,
    #[serde(default)]
    pub control_plane: bool,
    pub capacity: Capacity,
    pub allocatable: Option<Allocatable>,
    #[serde(default)]
    pub labels: BTreeMap<String, Text>,
    #[serde(default)]
    pub annotations: BTreeMap<String, Text>,
    #[serde(default)]
    pub taints: Vec<Taint>,
    #[serde(default = "yes")]
    pub checkpoint: bool,
    /// `Node.status.nodeInfo.containerRuntimeVersion`, e.g. `cri-o://1.31.0`
    /// or `containerd://2.1.0` (default `containerd://1.7.22`): whether the
    /// node restores checkpoint images follows from it.
    pub runtime: Option<Text>,
    pub system_usage: Option<UsageSpec>,
    #[serde(default = "yes")]
    pub ready: bool,
}

/// A node's capacity; `pods` defaults to 110 as the kubelet's does.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Capacity {
    pub cpu: Text,
    pub memory: Text,
    pub pods: Option<i64>,
}

/// What the scheduler may hand out; each field defaults to the capacity's.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Allocatable {
    pub cpu: Option<Text>,
    pub memory: Option<Text>,
    pub pods: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Taint {
    pub key: String,
    pub value: Option<Text>,
    pub effect: String,
}

/// A pair of usage profiles (see `super::profile`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UsageSpec {
    pub cpu: Option<Text>,
    pub memory: Option<Text>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PriorityClassSpec {
    pub name: String,
    pub value: i64,
    #[serde(default)]
    pub global_default: bool,
    pub description: Option<String>,
    pub preemption_policy: Option<String>,
}

/// What a `workloads` entry creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    Pod,
    PodDisruptionBudget,
    PersistentVolumeClaim,
    /// Any Kubernetes object, passed through as written.
    Raw,
}

impl WorkloadKind {
    /// The Kubernetes kind (`Raw` has none of its own).
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
            WorkloadKind::Pod => "Pod",
            WorkloadKind::PodDisruptionBudget => "PodDisruptionBudget",
            WorkloadKind::PersistentVolumeClaim => "PersistentVolumeClaim",
            WorkloadKind::Raw => "Raw",
        }
    }

    /// True for kinds that run pods.
    pub fn runs_pods(self) -> bool {
        matches!(
            self,
            WorkloadKind::Deployment | WorkloadKind::StatefulSet | WorkloadKind::DaemonSet | WorkloadKind::Pod
        )
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `workloads` (or timeline `create`) entry. A single flat struct rather
/// than an enum per kind, so serde reports errors at the offending line; which
/// fields a kind accepts is checked afterwards.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Workload {
    pub kind: WorkloadKind,
    /// Object name; with `count` (kind Pod) a pattern containing `{i}`.
    pub name: Option<String>,
    /// Defaults to `default`.
    pub namespace: Option<String>,
    pub count: Option<i64>,
    pub replicas: Option<i64>,
    #[serde(default)]
    pub labels: BTreeMap<String, Text>,
    #[serde(default)]
    pub annotations: BTreeMap<String, Text>,
    pub priority_class_name: Option<String>,
    #[serde(default)]
    pub node_selector: BTreeMap<String, Text>,
    /// Kind Pod only: bind the pod to this node, bypassing the scheduler.
    pub node_name: Option<String>,
    #[serde(default)]
    pub tolerations: Vec<Toleration>,
    /// A Kubernetes `affinity` object, passed through.
    pub affinity: Option<Value>,
    pub startup_seconds: Option<f64>,
    pub shutdown_seconds: Option<f64>,
    pub termination_grace_period_seconds: Option<i64>,
    /// Kind Pod only: Always (default), OnFailure or Never.
    pub restart_policy: Option<String>,
    pub volume_claim: Option<VolumeClaim>,
    #[serde(default)]
    pub containers: Vec<Container>,
    /// Pod-level usage, split across containers by their requests.
    pub usage: Option<UsageSpec>,
    /// PodDisruptionBudget: an integer or a percentage.
    pub min_available: Option<Text>,
    /// PodDisruptionBudget: an integer or a percentage.
    pub max_unavailable: Option<Text>,
    /// PodDisruptionBudget: the pods it covers.
    pub selector: Option<Selector>,
    /// PersistentVolumeClaim: requested storage.
    pub size: Option<Text>,
    /// PersistentVolumeClaim: defaults to `[ReadWriteOnce]`.
    #[serde(default)]
    pub access_modes: Vec<String>,
    /// PersistentVolumeClaim: omitted means the cluster's default class.
    pub storage_class_name: Option<String>,
    /// Raw: the object itself.
    pub object: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Container {
    pub name: String,
    pub image: Option<String>,
    #[serde(default)]
    pub requests: BTreeMap<String, Text>,
    #[serde(default)]
    pub limits: BTreeMap<String, Text>,
    pub usage: Option<UsageSpec>,
    /// run (default) | complete | crash | fail:<code> | wait
    #[serde(alias = "behavior")]
    pub behaviour: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Toleration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub toleration_seconds: Option<i64>,
}

/// A PVC created for a workload and mounted into all its containers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VolumeClaim {
    /// Defaults to `<workload name>-data` (keeps `{i}`, so counted pods get one each).
    pub name: Option<String>,
    pub size: Text,
    pub storage_class_name: Option<String>,
    #[serde(default)]
    pub access_modes: Vec<String>,
    /// Defaults to `/data`.
    pub mount_path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Selector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, Text>,
}

/// One timeline entry: a time and exactly one action.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TimelineEntry {
    pub at: Text,
    pub set_usage: Option<SetUsageSpec>,
    pub node_failure: Option<String>,
    pub node_recovery: Option<String>,
    pub faults: Option<Value>,
    pub clear_faults: Option<bool>,
    pub scale: Option<ScaleSpec>,
    pub create: Option<Vec<Workload>>,
    pub delete: Option<DeleteSpec>,
    pub cordon: Option<String>,
    pub uncordon: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SetUsageSpec {
    /// Omitted: pods of every namespace.
    pub namespace: Option<String>,
    /// A label selector (`app=nav2,tier!=db`); empty selects every pod.
    #[serde(default)]
    pub selector: String,
    pub cpu: Option<Text>,
    pub memory: Option<Text>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScaleSpec {
    /// Deployment (default) or StatefulSet.
    pub kind: Option<String>,
    pub namespace: Option<String>,
    pub name: String,
    pub replicas: i64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeleteSpec {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

/// Something the simulator does at a point of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Replace the usage profiles of the selected pods (profile times are
    /// seconds since the scenario started, not since the action).
    SetUsage {
        namespace: Option<String>,
        selector: String,
        cpu: Option<Profile>,
        memory: Option<Profile>,
    },
    /// The node's kubelet stops: heartbeats end, it turns NotReady.
    NodeFailure(String),
    /// The node's kubelet comes back.
    NodeRecovery(String),
    /// API server fault rules, as `PUT /_sim/faults` takes them.
    Faults(Value),
    ClearFaults,
    Scale {
        kind: String,
        namespace: String,
        name: String,
        replicas: i32,
    },
    /// Objects to create, in a safe order.
    Create(Vec<Value>),
    /// `namespace` is None for cluster-scoped kinds (Node, Namespace, PriorityClass).
    Delete {
        kind: String,
        namespace: Option<String>,
        name: String,
    },
    Cordon(String),
    Uncordon(String),
}

/// A parsed, validated scenario (built by `super::load::parse`).
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub description: Option<String>,
    pub seed: u64,
    pub defaults: Defaults,
    /// The file as written; `objects()` and `timeline()` were derived from it when parsed.
    pub spec: ScenarioFile,
    pub(super) objects: Vec<Value>,
    pub(super) timeline: Vec<(f64, Action)>,
}

impl Scenario {
    /// Kubernetes objects to create, in a safe order (namespaces, priority
    /// classes, nodes, raw objects, PVCs, workloads, PDBs), as JSON with
    /// apiVersion/kind/metadata.
    pub fn objects(&self) -> Vec<Value> {
        self.objects.clone()
    }

    /// Timeline actions in time order (ties keep file order), times in seconds.
    pub fn timeline(&self) -> Vec<(f64, Action)> {
        self.timeline.clone()
    }
}

/// Expands a name pattern: `robot-{i}` with count 3 gives robot-1..robot-3
/// (1-based, as people number machines). Without a count the name is as written.
pub fn expand_names(pattern: &str, count: Option<i64>) -> Vec<String> {
    match count {
        Some(n) => (1..=n.max(0)).map(|i| pattern.replace("{i}", &i.to_string())).collect(),
        None => vec![pattern.to_string()],
    }
}

/// Creation order: what an object refers to exists before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    Namespace,
    PriorityClass,
    Node,
    Raw,
    Claim,
    Workload,
    Budget,
}

fn text_map(m: &BTreeMap<String, Text>) -> Map<String, Value> {
    m.iter().map(|(k, v)| (k.clone(), Value::String(v.0.clone()))).collect()
}

/// The profile as `Profile` prints it (normalised spacing), or as written if
/// it does not parse (validation has already reported that).
fn profile_text(t: &Text) -> String {
    t.0.parse::<Profile>().map_or_else(|_| t.0.trim().to_string(), |p| p.to_string())
}

fn seconds_text(s: f64) -> String {
    format!("{s}")
}

fn metadata(name: &str, namespace: Option<&str>, labels: Map<String, Value>, annotations: Map<String, Value>) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(name));
    if let Some(ns) = namespace {
        m.insert("namespace".into(), json!(ns));
    }
    if !labels.is_empty() {
        m.insert("labels".into(), Value::Object(labels));
    }
    if !annotations.is_empty() {
        m.insert("annotations".into(), Value::Object(annotations));
    }
    Value::Object(m)
}

/// All objects of a scenario, in creation order.
pub(super) fn build_objects(file: &ScenarioFile) -> Vec<Value> {
    let mut ranked: Vec<(Rank, Value)> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for ns in &file.namespaces {
        if !BUILTIN_NAMESPACES.contains(&ns.as_str()) && seen.insert(ns.as_str()) {
            let meta = metadata(ns, None, Map::new(), Map::new());
            ranked.push((Rank::Namespace, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": meta})));
        }
    }
    for pc in &file.priority_classes {
        let mut obj = json!({
            "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": metadata(&pc.name, None, Map::new(), Map::new()),
            "value": pc.value, "globalDefault": pc.global_default,
        });
        if let Some(d) = &pc.description {
            obj["description"] = json!(d);
        }
        if let Some(p) = &pc.preemption_policy {
            obj["preemptionPolicy"] = json!(p);
        }
        ranked.push((Rank::PriorityClass, obj));
    }
    let mut index = 0usize;
    for spec in &file.nodes {
        for name in expand_names(&spec.name, spec.count) {
            ranked.push((Rank::Node, node_object(&name, index, spec)));
            index += 1;
        }
    }
    for w in &file.workloads {
        ranked.extend(workload_objects(w, &file.defaults));
    }
    ranked.sort_by_key(|(rank, _)| *rank);
    ranked.into_iter().map(|(_, v)| v).collect()
}

/// Objects of a timeline `create` action, in creation order.
pub(super) fn create_objects(workloads: &[Workload], defaults: &Defaults) -> Vec<Value> {
    let mut ranked: Vec<(Rank, Value)> = workloads.iter().flat_map(|w| workload_objects(w, defaults)).collect();
    ranked.sort_by_key(|(rank, _)| *rank);
    ranked.into_iter().map(|(_, v)| v).collect()
}

/// A Node with the labels, taints and status a kubelet would register, plus
/// the `sim.kube-sim.io/` annotations the simulated kubelet runs it by.
fn node_object(name: &str, index: usize, spec: &NodeSpec) -> Value {
    let mut labels = text_map(&spec.labels);
    labels.insert("kubernetes.io/hostname".into(), json!(name));
    labels.insert("kubernetes.io/os".into(), json!("linux"));
    labels.insert("kubernetes.io/arch".into(), json!("amd64"));
    if spec.control_plane {
        labels.insert(CONTROL_PLANE_KEY.into(), json!(""));
    }
    let mut annotations = text_map(&spec.annotations);
    let system = spec.system_usage.clone().unwrap_or_default();
    let sys_cpu = system.cpu.as_ref().map_or_else(|| DEFAULT_SYSTEM_CPU.to_string(), profile_text);
    let sys_mem = system.memory.as_ref().map_or_else(|| DEFAULT_SYSTEM_MEMORY.to_string(), profile_text);
    annotations.insert(ANN_CHECKPOINT.into(), json!(spec.checkpoint.to_string()));
    annotations.insert(ANN_SYSTEM_CPU.into(), json!(sys_cpu));
    annotations.insert(ANN_SYSTEM_MEMORY.into(), json!(sys_mem));
    annotations.insert(ANN_READY.into(), json!(spec.ready.to_string()));

    let mut taints = Vec::new();
    if spec.control_plane {
        taints.push(json!({"key": CONTROL_PLANE_KEY, "effect": "NoSchedule"}));
    }
    for t in &spec.taints {
        let mut taint = json!({"key": t.key, "effect": t.effect});
        if let Some(v) = &t.value {
            taint["value"] = json!(v.0);
        }
        taints.push(taint);
    }
    let pods = spec.capacity.pods.unwrap_or(110);
    let capacity = json!({"cpu": spec.capacity.cpu.0, "memory": spec.capacity.memory.0, "pods": pods.to_string()});
    let alloc = spec.allocatable.as_ref();
    let allocatable = json!({
        "cpu": alloc.and_then(|a| a.cpu.as_ref()).unwrap_or(&spec.capacity.cpu).0,
        "memory": alloc.and_then(|a| a.memory.as_ref()).unwrap_or(&spec.capacity.memory).0,
        "pods": alloc.and_then(|a| a.pods).unwrap_or(pods).to_string(),
    });
    let (ready, reason, message) = if spec.ready {
        ("True", "KubeletReady", "kubelet is posting ready status")
    } else {
        ("False", "KubeletNotReady", "container runtime network not ready")
    };
    let runtime = spec.runtime.as_ref().map_or(DEFAULT_RUNTIME, |r| r.as_str());
    let n = index + 1;
    let ip = format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
    let mut spec_json = Map::new();
    if !taints.is_empty() {
        spec_json.insert("taints".into(), Value::Array(taints));
    }
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": metadata(name, None, labels, annotations),
        "spec": spec_json,
        "status": {
            "capacity": capacity,
            "allocatable": allocatable,
            "conditions": [
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory",
                 "message": "kubelet has sufficient memory available"},
                {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure",
                 "message": "kubelet has no disk pressure"},
                {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID",
                 "message": "kubelet has sufficient PID available"},
                {"type": "Ready", "status": ready, "reason": reason, "message": message},
            ],
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "nodeInfo": {
                "architecture": "amd64", "operatingSystem": "linux", "osImage": "Ubuntu 22.04.4 LTS",
                "kernelVersion": "5.15.0-kube-sim", "containerRuntimeVersion": runtime,
                "kubeletVersion": "v1.32.0", "kubeProxyVersion": "v1.32.0",
                "machineID": "", "systemUUID": "", "bootID": "",
            },
        },
    })
}

/// The `app` label a workload's pods get when its labels have none: its
/// name without the `{i}` placeholder. Controllers select their pods by it.
fn default_app(w: &Workload) -> String {
    let name = w.name.as_deref().unwrap_or("app").replace("{i}", "");
    let trimmed = name.trim_matches(|c| c == '-' || c == '.');
    if trimmed.is_empty() { "app".to_string() } else { trimmed.to_string() }
}

/// Labels of the pods a workload runs: its labels plus `app` if missing.
pub(super) fn pod_label_map(w: &Workload) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = w.labels.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect();
    labels.entry("app".to_string()).or_insert_with(|| default_app(w));
    labels
}

fn string_map(m: &BTreeMap<String, String>) -> Map<String, Value> {
    m.iter().map(|(k, v)| (k.clone(), json!(v))).collect()
}

/// The pod annotations that carry the simulated behaviour to the kubelet.
fn pod_annotations(w: &Workload, defaults: &Defaults) -> Map<String, Value> {
    let mut a = text_map(&w.annotations);
    let startup = w.startup_seconds.unwrap_or(defaults.startup_seconds);
    let shutdown = w.shutdown_seconds.unwrap_or(defaults.shutdown_seconds);
    a.insert(ANN_STARTUP_SECONDS.into(), json!(seconds_text(startup)));
    a.insert(ANN_SHUTDOWN_SECONDS.into(), json!(seconds_text(shutdown)));
    if let Some(u) = &w.usage {
        if let Some(cpu) = &u.cpu {
            a.insert(ANN_CPU.into(), json!(profile_text(cpu)));
        }
        if let Some(mem) = &u.memory {
            a.insert(ANN_MEMORY.into(), json!(profile_text(mem)));
        }
    }
    for c in &w.containers {
        if let Some(u) = &c.usage {
            if let Some(cpu) = &u.cpu {
                a.insert(format!("{ANN_CPU_PREFIX}{}", c.name), json!(profile_text(cpu)));
            }
            if let Some(mem) = &u.memory {
                a.insert(format!("{ANN_MEMORY_PREFIX}{}", c.name), json!(profile_text(mem)));
            }
        }
        if let Some(b) = &c.behaviour {
            a.insert(format!("{ANN_BEHAVIOUR_PREFIX}{}", c.name), json!(b.trim()));
        }
    }
    a
}

/// A pod spec for the workload; `claim` is the PVC to mount, if any.
fn pod_spec(w: &Workload, claim: Option<&str>, node_name: Option<&str>) -> Value {
    let mount = w.volume_claim.as_ref().and_then(|v| v.mount_path.clone()).unwrap_or_else(|| "/data".to_string());
    let container = |name: &str, image: &str, requests: Map<String, Value>, limits: Map<String, Value>| {
        let mut c = json!({"name": name, "image": image});
        let mut resources = Map::new();
        if !requests.is_empty() {
            resources.insert("requests".into(), Value::Object(requests));
        }
        if !limits.is_empty() {
            resources.insert("limits".into(), Value::Object(limits));
        }
        if !resources.is_empty() {
            c["resources"] = Value::Object(resources);
        }
        if claim.is_some() {
            c["volumeMounts"] = json!([{"name": "data", "mountPath": mount}]);
        }
        c
    };
    let containers: Vec<Value> = if w.containers.is_empty() {
        vec![container("main", DEFAULT_IMAGE, Map::new(), Map::new())]
    } else {
        w.containers
            .iter()
            .map(|c| {
                let image = c.image.as_deref().unwrap_or(DEFAULT_IMAGE);
                container(&c.name, image, text_map(&c.requests), text_map(&c.limits))
            })
            .collect()
    };
    let mut spec = Map::new();
    spec.insert("containers".into(), Value::Array(containers));
    if let Some(pc) = &w.priority_class_name {
        spec.insert("priorityClassName".into(), json!(pc));
    }
    if !w.node_selector.is_empty() {
        spec.insert("nodeSelector".into(), Value::Object(text_map(&w.node_selector)));
    }
    if let Some(node) = node_name {
        spec.insert("nodeName".into(), json!(node));
    }
    if !w.tolerations.is_empty() {
        spec.insert("tolerations".into(), serde_json::to_value(&w.tolerations).unwrap_or(Value::Null));
    }
    if let Some(aff) = &w.affinity {
        spec.insert("affinity".into(), aff.clone());
    }
    if let Some(g) = w.termination_grace_period_seconds {
        spec.insert("terminationGracePeriodSeconds".into(), json!(g));
    }
    if w.kind == WorkloadKind::Pod
        && let Some(r) = &w.restart_policy
    {
        spec.insert("restartPolicy".into(), json!(r));
    }
    if let Some(claim) = claim {
        spec.insert("volumes".into(), json!([{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]));
    }
    Value::Object(spec)
}

fn claim_object(name: &str, namespace: &str, size: &str, modes: &[String], class: Option<&str>) -> Value {
    let modes: Vec<&str> =
        if modes.is_empty() { vec!["ReadWriteOnce"] } else { modes.iter().map(String::as_str).collect() };
    let mut obj = json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": metadata(name, Some(namespace), Map::new(), Map::new()),
        "spec": {"accessModes": modes, "resources": {"requests": {"storage": size}}},
    });
    if let Some(class) = class {
        obj["spec"]["storageClassName"] = json!(class);
    }
    obj
}

/// An int-or-string: `2` stays a number, `50%` a string.
fn int_or_string(t: &Text) -> Value {
    t.0.trim().parse::<i64>().map_or_else(|_| json!(t.0.trim()), |n| json!(n))
}

fn workload_objects(w: &Workload, defaults: &Defaults) -> Vec<(Rank, Value)> {
    let ns = w.namespace.as_deref().unwrap_or("default");
    let name = w.name.as_deref().unwrap_or_default();
    let mut out = Vec::new();
    let claim_name = w.volume_claim.as_ref().map(|v| v.name.clone().unwrap_or_else(|| format!("{name}-data")));
    let claim_for = |claim: &str| {
        let v = w.volume_claim.as_ref();
        let size = v.map_or("", |v| v.size.as_str());
        let modes = v.map_or(&[][..], |v| &v.access_modes[..]);
        claim_object(claim, ns, size, modes, v.and_then(|v| v.storage_class_name.as_deref()))
    };
    let labels = text_map(&w.labels);
    let user_annotations = text_map(&w.annotations);
    let pod_labels = string_map(&pod_label_map(w));
    let replicas = w.replicas.unwrap_or(1);
    let template = |claim: Option<&str>| {
        json!({
            "metadata": {"labels": pod_labels.clone(), "annotations": pod_annotations(w, defaults)},
            "spec": pod_spec(w, claim, None),
        })
    };
    let selector = json!({"matchLabels": {"app": pod_labels.get("app").cloned().unwrap_or(Value::Null)}});
    let mut workload_labels = labels.clone();
    workload_labels.insert("app".into(), pod_labels.get("app").cloned().unwrap_or(Value::Null));
    let meta = || metadata(name, Some(ns), workload_labels.clone(), user_annotations.clone());
    match w.kind {
        WorkloadKind::Deployment | WorkloadKind::StatefulSet | WorkloadKind::DaemonSet => {
            if let Some(claim) = &claim_name {
                out.push((Rank::Claim, claim_for(claim)));
            }
            let mut spec = json!({"selector": selector, "template": template(claim_name.as_deref())});
            if w.kind != WorkloadKind::DaemonSet {
                spec["replicas"] = json!(replicas);
            }
            if w.kind == WorkloadKind::StatefulSet {
                spec["serviceName"] = json!(name);
            }
            let obj = json!({"apiVersion": "apps/v1", "kind": w.kind.as_str(), "metadata": meta(), "spec": spec});
            out.push((Rank::Workload, obj));
        }
        WorkloadKind::Pod => {
            let per_pod = w.count.is_some() && claim_name.as_deref().is_some_and(|c| c.contains("{i}"));
            for (i, pod_name) in expand_names(name, w.count).into_iter().enumerate() {
                let claim = claim_name.as_deref().map(|c| c.replace("{i}", &(i + 1).to_string()));
                if let Some(claim) = claim.as_deref().filter(|_| per_pod || i == 0) {
                    out.push((Rank::Claim, claim_for(claim)));
                }
                let meta = metadata(&pod_name, Some(ns), pod_labels.clone(), pod_annotations(w, defaults));
                let spec = pod_spec(w, claim.as_deref(), w.node_name.as_deref());
                out.push((Rank::Workload, json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})));
            }
        }
        WorkloadKind::PersistentVolumeClaim => {
            let size = w.size.as_ref().map_or("", Text::as_str);
            let obj = claim_object(name, ns, size, &w.access_modes, w.storage_class_name.as_deref());
            out.push((Rank::Claim, obj));
        }
        WorkloadKind::PodDisruptionBudget => {
            let mut spec = Map::new();
            if let Some(m) = &w.min_available {
                spec.insert("minAvailable".into(), int_or_string(m));
            }
            if let Some(m) = &w.max_unavailable {
                spec.insert("maxUnavailable".into(), int_or_string(m));
            }
            let match_labels = w.selector.as_ref().map(|s| text_map(&s.match_labels)).unwrap_or_default();
            spec.insert("selector".into(), json!({"matchLabels": match_labels}));
            let meta = metadata(name, Some(ns), labels, user_annotations);
            let obj = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta, "spec": spec});
            out.push((Rank::Budget, obj));
        }
        WorkloadKind::Raw => {
            if let Some(obj) = &w.object {
                out.push((Rank::Raw, obj.clone()));
            }
        }
    }
    out
}
