//! Scheduler filter and score rules, and the kubelet's admission re-check.
//!
//! Follows upstream v1.32: the filter plugins `NodeUnschedulable`, `TaintToleration`,
//! `NodeAffinity` and `NodeResourcesFit` (run in the default profile's order), the
//! `LeastAllocated` scoring strategy, `FitError.Error()` with the `DefaultPreemption`
//! post-filter message, toleration and node-selector matching from
//! `component-helpers/scheduling/corev1`, and `pkg/kubelet/lifecycle/predicate.go`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeSelectorRequirement, NodeSelectorTerm, Taint, Toleration};

use super::resources::{Resources, node_allocatable, pod_requests};
use crate::cached_pod::{CachedPod, CachedPodSpec};

/// Taint the node controller puts on a node whose Ready condition is False.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// Taint the node controller puts on a node whose Ready condition is Unknown.
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// Taint tolerated to schedule onto a cordoned (`spec.unschedulable`) node.
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// Why a node cannot take a pod, one variant per upstream filter reason.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Unfit {
    /// `NodeUnschedulable`: the node is cordoned and the pod does not tolerate
    /// `node.kubernetes.io/unschedulable:NoSchedule`.
    Unschedulable,
    /// `NodeAffinity`: `spec.nodeSelector` does not match the node's labels.
    NodeSelector,
    /// `NodeAffinity`: the required node affinity terms do not match the node.
    NodeAffinity,
    /// `TaintToleration`: the first NoSchedule/NoExecute taint the pod does not tolerate.
    Taint { key: String, value: String, effect: String },
    /// `NodeResourcesFit`.
    InsufficientCpu,
    /// `NodeResourcesFit`.
    InsufficientMemory,
    /// `NodeResourcesFit`: the node already runs its allocatable number of pods.
    TooManyPods,
    /// `TaintToleration`: the node's Ready condition is False (or missing) and it does not carry
    /// the taint yet; upstream's node controller would have added
    /// `node.kubernetes.io/not-ready:NoSchedule`, so this reads as that untolerated taint.
    NotReady,
}

impl Unfit {
    /// The upstream reason string, as counted in `FailedScheduling` messages.
    pub fn reason(&self) -> String {
        match self {
            Unfit::Unschedulable => "node(s) were unschedulable".to_string(),
            Unfit::NodeSelector | Unfit::NodeAffinity => {
                "node(s) didn't match Pod's node affinity/selector".to_string()
            }
            Unfit::Taint { key, value, .. } => format!("node(s) had untolerated taint {{{key}: {value}}}"),
            Unfit::NotReady => format!("node(s) had untolerated taint {{{TAINT_NOT_READY}: }}"),
            Unfit::InsufficientCpu => "Insufficient cpu".to_string(),
            Unfit::InsufficientMemory => "Insufficient memory".to_string(),
            Unfit::TooManyPods => "Too many pods".to_string(),
        }
    }

    /// The upstream filter plugin that reports this reason.
    pub fn plugin(&self) -> &'static str {
        match self {
            Unfit::Unschedulable => "NodeUnschedulable",
            Unfit::Taint { .. } | Unfit::NotReady => "TaintToleration",
            Unfit::NodeSelector | Unfit::NodeAffinity => "NodeAffinity",
            Unfit::InsufficientCpu | Unfit::InsufficientMemory | Unfit::TooManyPods => "NodeResourcesFit",
        }
    }

    /// Whether evicting other pods could make the node fit (status `Unschedulable` upstream)
    /// rather than `UnschedulableAndUnresolvable`.
    pub fn resolvable_by_preemption(&self) -> bool {
        matches!(self, Unfit::InsufficientCpu | Unfit::InsufficientMemory | Unfit::TooManyPods)
    }
}

// ---------------------------------------------------------------------------------------------
// Tolerations and taints
// ---------------------------------------------------------------------------------------------

/// Upstream `Toleration.ToleratesTaint`: an empty effect or key matches any; operator
/// `Exists` ignores the value, `Equal` (or empty) compares it; other operators match nothing.
pub fn toleration_tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("") {
        "" | "Equal" => toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        "Exists" => true,
        _ => false,
    }
}

/// Whether any of `tolerations` tolerates `taint`.
pub fn tolerates(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| toleration_tolerates(t, taint))
}

/// The first taint accepted by `filter` that no toleration tolerates
/// (`FindMatchingUntoleratedTaint`).
pub fn find_untolerated_taint<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    filter: impl Fn(&Taint) -> bool,
) -> Option<&'a Taint> {
    taints.iter().find(|t| filter(t) && !tolerates(tolerations, t))
}

fn no_schedule_or_execute(t: &Taint) -> bool {
    t.effect == "NoSchedule" || t.effect == "NoExecute"
}

fn taint(key: &str, effect: &str) -> Taint {
    Taint { key: key.to_string(), effect: effect.to_string(), ..Default::default() }
}

/// The node's Ready condition status (`"True"`, `"False"`, `"Unknown"`), if reported.
pub fn node_ready_status(node: &Node) -> Option<&str> {
    node.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready").map(|c| c.status.as_str())
}

// ---------------------------------------------------------------------------------------------
// Node selectors and affinity
// ---------------------------------------------------------------------------------------------

/// `None` when the requirement is invalid (upstream then ignores the whole term).
fn label_requirement_matches(req: &NodeSelectorRequirement, labels: &BTreeMap<String, String>) -> Option<bool> {
    let values = req.values.as_deref().unwrap_or(&[]);
    let label = labels.get(&req.key);
    match req.operator.as_str() {
        "In" if !values.is_empty() => Some(label.is_some_and(|l| values.contains(l))),
        "NotIn" if !values.is_empty() => Some(!label.is_some_and(|l| values.contains(l))),
        "Exists" if values.is_empty() => Some(label.is_some()),
        "DoesNotExist" if values.is_empty() => Some(label.is_none()),
        op @ ("Gt" | "Lt") if values.len() == 1 => {
            let bound: i64 = values[0].parse().ok()?;
            let Some(have) = label.and_then(|l| l.parse::<i64>().ok()) else {
                return Some(false);
            };
            Some(if op == "Gt" { have > bound } else { have < bound })
        }
        _ => None,
    }
}

fn field_requirement_matches(req: &NodeSelectorRequirement, node_name: &str) -> Option<bool> {
    let values = req.values.as_deref().unwrap_or(&[]);
    if req.key != "metadata.name" || values.len() != 1 {
        return None;
    }
    match req.operator.as_str() {
        "In" => Some(values[0] == node_name),
        "NotIn" => Some(values[0] != node_name),
        _ => None,
    }
}

fn term_matches(term: &NodeSelectorTerm, labels: &BTreeMap<String, String>, node_name: &str) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs.iter().all(|r| label_requirement_matches(r, labels) == Some(true))
        && fields.iter().all(|r| field_requirement_matches(r, node_name) == Some(true))
}

/// Whether the node matches any of the terms (terms are ORed; within a term, expressions and
/// fields are ANDed). An empty term, an invalid term and an empty list match nothing.
pub fn matches_node_selector_terms(node: &Node, terms: &[NodeSelectorTerm]) -> bool {
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let name = node.metadata.name.as_deref().unwrap_or("");
    terms.iter().any(|t| term_matches(t, labels, name))
}

/// Whether every `spec.nodeSelector` entry is a label of the node with that value.
pub fn matches_node_selector(spec: &CachedPodSpec, node: &Node) -> bool {
    let Some(selector) = spec.node_selector.as_ref() else {
        return true;
    };
    let labels = node.metadata.labels.as_ref();
    selector.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// Whether the required node affinity (if any) matches the node.
pub fn matches_required_node_affinity(spec: &CachedPodSpec, node: &Node) -> bool {
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| na.required_during_scheduling_ignored_during_execution.as_ref());
    match required {
        None => true,
        Some(selector) => matches_node_selector_terms(node, &selector.node_selector_terms),
    }
}

// ---------------------------------------------------------------------------------------------
// Filter
// ---------------------------------------------------------------------------------------------

/// Every reason the default filter plugins reject `pod` on `node`, in plugin order
/// (NodeUnschedulable, TaintToleration, NodeAffinity, NodeResourcesFit). `node_requested` is
/// the sum of the effective requests of the pods already bound to the node, with `pods` their
/// count. Upstream stops at the first failing plugin; [`fit_error_message`] does too, while
/// this list keeps all of them for diagnostics. Empty means the pod fits.
pub fn check(node: &Node, node_requested: Resources, pod: &CachedPod) -> Vec<Unfit> {
    let empty_spec = CachedPodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty_spec);
    check_with(node, node_allocatable(node), node_requested, spec, pod_requests(spec))
}

/// [`check`] with the node's allocatable resources and the pod's requests
/// already computed (the scheduler checks one pod against many nodes).
pub fn check_with(
    node: &Node,
    allocatable: Resources,
    node_requested: Resources,
    spec: &CachedPodSpec,
    requests: Resources,
) -> Vec<Unfit> {
    let tolerations = spec.tolerations.as_deref().unwrap_or(&[]);
    let node_spec = node.spec.as_ref();
    let taints = node_spec.and_then(|s| s.taints.as_deref()).unwrap_or(&[]);
    let mut out = Vec::new();

    // NodeUnschedulable
    if node_spec.and_then(|s| s.unschedulable).unwrap_or(false)
        && !tolerates(tolerations, &taint(TAINT_UNSCHEDULABLE, "NoSchedule"))
    {
        out.push(Unfit::Unschedulable);
    }

    // TaintToleration (only the first untolerated taint is reported).
    if let Some(t) = find_untolerated_taint(taints, tolerations, no_schedule_or_execute) {
        out.push(Unfit::Taint {
            key: t.key.clone(),
            value: t.value.clone().unwrap_or_default(),
            effect: t.effect.clone(),
        });
    } else {
        let implied = match node_ready_status(node) {
            Some("True") => None,
            Some("Unknown") => Some(TAINT_UNREACHABLE),
            _ => Some(TAINT_NOT_READY),
        };
        if let Some(key) = implied {
            let already_tainted = taints.iter().any(|t| t.key == key);
            if !already_tainted && !tolerates(tolerations, &taint(key, "NoSchedule")) {
                out.push(if key == TAINT_NOT_READY {
                    Unfit::NotReady
                } else {
                    Unfit::Taint { key: key.to_string(), value: String::new(), effect: "NoSchedule".to_string() }
                });
            }
        }
    }

    // NodeAffinity
    if !matches_node_selector(spec, node) {
        out.push(Unfit::NodeSelector);
    } else if !matches_required_node_affinity(spec, node) {
        out.push(Unfit::NodeAffinity);
    }

    // NodeResourcesFit
    out.extend(resource_shortfalls(allocatable, node_requested, requests).into_iter().map(|s| s.unfit));
    out
}

/// The scheduler's fast test splits what [`check_with`] looks at in two,
/// stopping at the first failure and building no reasons (it asks this of many
/// nodes per pod and needs the reasons only when no node fits). This is the
/// resource half: room for the pod's requests and one more pod.
pub fn resources_fit(alloc: Resources, used: Resources, req: Resources) -> bool {
    // The tests of `resource_shortfalls`, without building its report: the
    // scheduler asks this of many full nodes per pod.
    used.pods.saturating_add(1) <= alloc.pods
        && (req.cpu_milli <= 0 || req.cpu_milli <= alloc.cpu_milli.saturating_sub(used.cpu_milli))
        && (req.memory <= 0 || req.memory <= alloc.memory.saturating_sub(used.memory))
}

/// The label that names its node: left out of a node's kind, since every
/// node has its own value.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// Whether the pod picks nodes by name: by field in its required node affinity
/// (a DaemonSet pod's `metadata.name`) or by the hostname label. Then two nodes
/// of the same kind may still answer [`node_admits`] differently.
pub fn depends_on_node_name(spec: &CachedPodSpec) -> bool {
    let by_label = spec.node_selector.as_ref().is_some_and(|s| s.contains_key(HOSTNAME_LABEL));
    let terms = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| na.required_during_scheduling_ignored_during_execution.as_ref())
        .map_or(&[][..], |r| &r.node_selector_terms[..]);
    by_label
        || terms.iter().any(|t| {
            t.match_fields.as_ref().is_some_and(|f| !f.is_empty())
                || t.match_expressions.iter().flatten().any(|e| e.key == HOSTNAME_LABEL)
        })
}

/// The other half of the scheduler's fast test (see [`resources_fit`]), what
/// depends on the node but not on its load:
/// node selector, required node affinity, `spec.unschedulable`, taints and the
/// taints implied by the Ready condition. Nodes alike in labels, taints and
/// readiness answer alike (unless [`depends_on_node_name`]), which lets the
/// scheduler ask once per kind of node instead of once per node.
pub fn node_admits(node: &Node, spec: &CachedPodSpec) -> bool {
    if !matches_node_selector(spec, node) || !matches_required_node_affinity(spec, node) {
        return false;
    }
    let tolerations = spec.tolerations.as_deref().unwrap_or(&[]);
    let node_spec = node.spec.as_ref();
    let taints = node_spec.and_then(|s| s.taints.as_deref()).unwrap_or(&[]);
    if node_spec.and_then(|s| s.unschedulable).unwrap_or(false)
        && !tolerates(tolerations, &taint(TAINT_UNSCHEDULABLE, "NoSchedule"))
    {
        return false;
    }
    if find_untolerated_taint(taints, tolerations, no_schedule_or_execute).is_some() {
        return false;
    }
    let implied = match node_ready_status(node) {
        Some("True") => None,
        Some("Unknown") => Some(TAINT_UNREACHABLE),
        _ => Some(TAINT_NOT_READY),
    };
    match implied {
        Some(key) => taints.iter().any(|t| t.key == key) || tolerates(tolerations, &taint(key, "NoSchedule")),
        None => true,
    }
}

/// One `InsufficientResource` of upstream's `noderesources.Fits`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shortfall {
    unfit: Unfit,
    name: &'static str,
    requested: i64,
    used: i64,
    capacity: i64,
}

fn resource_shortfalls(alloc: Resources, used: Resources, req: Resources) -> Vec<Shortfall> {
    let mut out = Vec::new();
    if used.pods.saturating_add(1) > alloc.pods {
        out.push(Shortfall {
            unfit: Unfit::TooManyPods,
            name: "pods",
            requested: 1,
            used: used.pods,
            capacity: alloc.pods,
        });
    }
    if req.cpu_milli == 0 && req.memory == 0 {
        return out;
    }
    if req.cpu_milli > 0 && req.cpu_milli > alloc.cpu_milli.saturating_sub(used.cpu_milli) {
        out.push(Shortfall {
            unfit: Unfit::InsufficientCpu,
            name: "cpu",
            requested: req.cpu_milli,
            used: used.cpu_milli,
            capacity: alloc.cpu_milli,
        });
    }
    if req.memory > 0 && req.memory > alloc.memory.saturating_sub(used.memory) {
        out.push(Shortfall {
            unfit: Unfit::InsufficientMemory,
            name: "memory",
            requested: req.memory,
            used: used.memory,
            capacity: alloc.memory,
        });
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Score
// ---------------------------------------------------------------------------------------------

const MAX_NODE_SCORE: i64 = 100;

fn least_requested(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    // (capacity - requested) * 100 / capacity without overflow.
    let free = i128::from(capacity) - i128::from(requested);
    i64::try_from(free * i128::from(MAX_NODE_SCORE) / i128::from(capacity)).unwrap_or(0)
}

/// Upstream `LeastAllocated` score (0..=100) with CPU and memory weighted 1:1.
/// `requested_after` is the node's requested resources including the incoming pod (upstream
/// uses the non-zero requests here, see [`super::resources::pod_requests_non_zero`]). A
/// resource the node has none of is left out of the average.
pub fn least_allocated_score(alloc: Resources, requested_after: Resources) -> i64 {
    let mut score = 0i64;
    let mut weights = 0i64;
    for (req, cap) in [(requested_after.cpu_milli, alloc.cpu_milli), (requested_after.memory, alloc.memory)] {
        if cap == 0 {
            continue;
        }
        score = score.saturating_add(least_requested(req, cap));
        weights += 1;
    }
    if weights == 0 { 0 } else { score / weights }
}

// ---------------------------------------------------------------------------------------------
// FailedScheduling message
// ---------------------------------------------------------------------------------------------

/// The reasons upstream records for one node: those of the first failing filter plugin.
fn first_plugin_reasons(unfits: &[Unfit]) -> &[Unfit] {
    let Some(first) = unfits.first() else {
        return unfits;
    };
    let n = unfits.iter().take_while(|u| u.plugin() == first.plugin()).count();
    &unfits[..n]
}

fn histogram(counts: &BTreeMap<String, usize>) -> String {
    let mut items: Vec<String> = counts.iter().filter(|(_, n)| **n > 0).map(|(r, n)| format!("{n} {r}")).collect();
    items.sort();
    items.join(", ")
}

/// Upstream's `FitError` message with the `DefaultPreemption` post-filter part, e.g.
/// `0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node
/// affinity/selector. preemption: 0/3 nodes are available: 1 No preemption victims found for
/// incoming pod, 2 Preemption is not helpful for scheduling.`
///
/// `reasons` lists the nodes that failed filtering (nodes with an empty list, and nodes not
/// listed, add no filter reason). Per node only the first failing plugin's reasons count, as
/// upstream stops filtering a node there. "key count" strings are sorted as strings, like
/// upstream's `sort.Strings`. The preemption part assumes no node runs lower-priority pods (the
/// simulator has no preemption victims): nodes failing only on resources read "No preemption
/// victims found for incoming pod", all others "Preemption is not helpful for scheduling".
/// With no nodes at all upstream reports `no nodes available to schedule pods`.
pub fn fit_error_message(total_nodes: usize, reasons: &[(String, Vec<Unfit>)]) -> String {
    if total_nodes == 0 {
        return "no nodes available to schedule pods".to_string();
    }
    let mut filter_counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut no_victims = 0usize;
    let mut seen = std::collections::BTreeSet::new();
    for (node, unfits) in reasons {
        if !seen.insert(node.as_str()) {
            continue;
        }
        let first = first_plugin_reasons(unfits);
        for u in first {
            *filter_counts.entry(u.reason()).or_default() += 1;
        }
        if first.first().is_some_and(Unfit::resolvable_by_preemption) {
            no_victims += 1;
        }
    }
    let mut msg = format!("0/{total_nodes} nodes are available:");
    let filters = histogram(&filter_counts);
    if !filters.is_empty() {
        msg.push_str(&format!(" {filters}."));
    }
    let mut preemption: BTreeMap<String, usize> = BTreeMap::new();
    let no_victims = no_victims.min(total_nodes);
    preemption.insert("No preemption victims found for incoming pod".to_string(), no_victims);
    preemption.insert("Preemption is not helpful for scheduling".to_string(), total_nodes - no_victims);
    msg.push_str(&format!(" preemption: 0/{total_nodes} nodes are available: {}.", histogram(&preemption)));
    msg
}

// ---------------------------------------------------------------------------------------------
// Kubelet admission
// ---------------------------------------------------------------------------------------------

/// The kubelet's admission check (`predicateAdmitHandler.Admit` / `generalFilter`): resources
/// (pods, cpu, memory), then node affinity/selector, node name, and untolerated NoExecute taints.
/// `other_pods_requests` sums the node's other active pods, `pods` being their count. On
/// failure returns upstream's reason and message for the first failure, e.g.
/// `("OutOfcpu", "Node didn't have enough resource: cpu, requested: 2000, used: 3000, capacity: 4000")`.
pub fn kubelet_admit(node: &Node, other_pods_requests: Resources, pod: &CachedPod) -> Result<(), (String, String)> {
    let empty_spec = CachedPodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty_spec);
    let shortfalls = resource_shortfalls(node_allocatable(node), other_pods_requests, pod_requests(spec));
    if let Some(s) = shortfalls.first() {
        return Err((
            format!("OutOf{}", s.name),
            format!(
                "Node didn't have enough resource: {}, requested: {}, used: {}, capacity: {}",
                s.name, s.requested, s.used, s.capacity
            ),
        ));
    }
    let predicate = |name: &str| Err((name.to_string(), format!("Predicate {name} failed")));
    if !matches_node_selector(spec, node) || !matches_required_node_affinity(spec, node) {
        return predicate("NodeAffinity");
    }
    let node_name = node.metadata.name.as_deref().unwrap_or("");
    if spec.node_name.as_deref().is_some_and(|n| !n.is_empty() && n != node_name) {
        return predicate("NodeName");
    }
    let taints = node.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or(&[]);
    let tolerations = spec.tolerations.as_deref().unwrap_or(&[]);
    if find_untolerated_taint(taints, tolerations, |t| t.effect == "NoExecute").is_some() {
        return predicate("TaintToleration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    const MI: i64 = 1024 * 1024;

    fn node(v: Value) -> Node {
        serde_json::from_value(v).unwrap()
    }

    fn pod(v: Value) -> CachedPod {
        serde_json::from_value(v).unwrap()
    }

    /// Shaped like node-created.json: 4 CPU, 8Gi, 110 pods, Ready.
    fn ref_node(name: &str, extra_spec: Value) -> Node {
        node(json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "zone": "a", "gen": "5"}},
            "spec": extra_spec,
            "status": {
                "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True"}]
            }
        }))
    }

    /// The reference deployment's pod: 200m / 128Mi plus the default 300 s tolerations.
    fn web_pod(extra_spec: Value) -> CachedPod {
        let mut spec = json!({
            "containers": [{"name": "c", "image": "nginx:1.27",
                            "resources": {"requests": {"cpu": "200m", "memory": "128Mi"}}}],
            "tolerations": [
                {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
                {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300}
            ]
        });
        if let (Some(s), Some(extra)) = (spec.as_object_mut(), extra_spec.as_object()) {
            for (k, v) in extra {
                s.insert(k.clone(), v.clone());
            }
        }
        pod(json!({"metadata": {"name": "web", "namespace": "ref"}, "spec": spec}))
    }

    fn tol(key: Option<&str>, op: Option<&str>, value: Option<&str>, effect: Option<&str>) -> Toleration {
        Toleration {
            key: key.map(Into::into),
            operator: op.map(Into::into),
            value: value.map(Into::into),
            effect: effect.map(Into::into),
            toleration_seconds: None,
        }
    }

    fn tnt(key: &str, value: &str, effect: &str) -> Taint {
        Taint { key: key.into(), value: Some(value.into()), effect: effect.into(), time_added: None }
    }

    #[test]
    fn toleration_matching() {
        let t = tnt("dedicated", "gpu", "NoSchedule");
        assert!(toleration_tolerates(&tol(Some("dedicated"), Some("Equal"), Some("gpu"), Some("NoSchedule")), &t));
        assert!(toleration_tolerates(&tol(Some("dedicated"), None, Some("gpu"), None), &t), "empty operator = Equal");
        assert!(!toleration_tolerates(&tol(Some("dedicated"), Some("Equal"), Some("cpu"), None), &t));
        assert!(toleration_tolerates(&tol(Some("dedicated"), Some("Exists"), None, None), &t));
        assert!(toleration_tolerates(&tol(None, Some("Exists"), None, None), &t), "empty key + Exists tolerates all");
        assert!(!toleration_tolerates(&tol(Some("dedicated"), Some("Exists"), None, Some("NoExecute")), &t));
        assert!(!toleration_tolerates(&tol(Some("other"), Some("Exists"), None, None), &t));
        assert!(!toleration_tolerates(&tol(Some("dedicated"), Some("Gt"), Some("gpu"), None), &t));
        let no_value = Taint { value: None, ..t.clone() };
        assert!(toleration_tolerates(&tol(Some("dedicated"), Some("Equal"), None, None), &no_value));
        assert!(tolerates(&[tol(Some("x"), None, None, None), tol(None, Some("Exists"), None, None)], &t));
        assert!(!tolerates(&[], &t));
    }

    fn term(exprs: Value, fields: Value) -> NodeSelectorTerm {
        serde_json::from_value(json!({"matchExpressions": exprs, "matchFields": fields})).unwrap()
    }

    #[test]
    fn node_selector_terms() {
        let n = ref_node("n1", json!({}));
        let yes = |e: Value| matches_node_selector_terms(&n, &[term(e, json!([]))]);
        assert!(yes(json!([{"key": "zone", "operator": "In", "values": ["a", "b"]}])));
        assert!(!yes(json!([{"key": "zone", "operator": "In", "values": ["b"]}])));
        assert!(yes(json!([{"key": "zone", "operator": "NotIn", "values": ["b"]}])));
        assert!(yes(json!([{"key": "missing", "operator": "NotIn", "values": ["b"]}])));
        assert!(yes(json!([{"key": "zone", "operator": "Exists"}])));
        assert!(yes(json!([{"key": "missing", "operator": "DoesNotExist"}])));
        assert!(yes(json!([{"key": "gen", "operator": "Gt", "values": ["4"]}])));
        assert!(!yes(json!([{"key": "gen", "operator": "Lt", "values": ["5"]}])));
        assert!(!yes(json!([{"key": "zone", "operator": "Gt", "values": ["1"]}])), "non-integer label");
        // Expressions are ANDed.
        assert!(!yes(json!([{"key": "zone", "operator": "Exists"}, {"key": "missing", "operator": "Exists"}])));
        // Invalid terms match nothing.
        assert!(!yes(json!([{"key": "zone", "operator": "In", "values": []}])));
        assert!(!yes(json!([{"key": "zone", "operator": "Exists", "values": ["a"]}])));
        assert!(!yes(json!([{"key": "gen", "operator": "Gt", "values": ["x"]}])));
        assert!(!yes(json!([{"key": "zone", "operator": "Like", "values": ["a"]}])));
        assert!(!yes(json!([])), "empty term");
        assert!(!matches_node_selector_terms(&n, &[]), "no terms");
        // Terms are ORed; an invalid term does not spoil a valid one.
        let terms = [
            term(json!([{"key": "zone", "operator": "In", "values": []}]), json!([])),
            term(json!([{"key": "zone", "operator": "In", "values": ["a"]}]), json!([])),
        ];
        assert!(matches_node_selector_terms(&n, &terms));
        // matchFields on metadata.name.
        let f = |fields: Value| matches_node_selector_terms(&n, &[term(json!([]), fields)]);
        assert!(f(json!([{"key": "metadata.name", "operator": "In", "values": ["n1"]}])));
        assert!(!f(json!([{"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}])));
        assert!(!f(json!([{"key": "metadata.name", "operator": "In", "values": ["n1", "n2"]}])));
        assert!(!f(json!([{"key": "metadata.uid", "operator": "In", "values": ["n1"]}])));
    }

    #[test]
    fn reference_pod_fits_reference_node() {
        let n = ref_node("ref-n1", json!({}));
        assert_eq!(check(&n, Resources::new(200, 128 * MI, 1), &web_pod(json!({}))), vec![]);
        assert_eq!(kubelet_admit(&n, Resources::new(200, 128 * MI, 1), &web_pod(json!({}))), Ok(()));
    }

    #[test]
    fn cordoned_node() {
        let n = ref_node("n1", json!({"unschedulable": true}));
        assert_eq!(check(&n, Resources::ZERO, &web_pod(json!({}))), vec![Unfit::Unschedulable]);
        let tolerant = web_pod(
            json!({"tolerations": [{"key": TAINT_UNSCHEDULABLE, "operator": "Exists", "effect": "NoSchedule"}]}),
        );
        assert_eq!(check(&n, Resources::ZERO, &tolerant), vec![]);
        // The kubelet does not look at spec.unschedulable.
        assert_eq!(kubelet_admit(&n, Resources::ZERO, &web_pod(json!({}))), Ok(()));
    }

    #[test]
    fn taints() {
        let n = ref_node(
            "n1",
            json!({"taints": [
                {"key": "soft", "value": "x", "effect": "PreferNoSchedule"},
                {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
                {"key": "evict", "value": "", "effect": "NoExecute"}
            ]}),
        );
        let p = web_pod(json!({}));
        let got = check(&n, Resources::ZERO, &p);
        assert_eq!(
            got,
            vec![Unfit::Taint { key: "dedicated".into(), value: "gpu".into(), effect: "NoSchedule".into() }]
        );
        assert_eq!(got[0].reason(), "node(s) had untolerated taint {dedicated: gpu}");
        let tolerant = web_pod(json!({"tolerations": [{"key": "dedicated", "operator": "Exists"}]}));
        let got = check(&n, Resources::ZERO, &tolerant);
        assert_eq!(got, vec![Unfit::Taint { key: "evict".into(), value: String::new(), effect: "NoExecute".into() }]);
        assert_eq!(got[0].reason(), "node(s) had untolerated taint {evict: }");
        // The kubelet only cares about NoExecute.
        assert_eq!(
            kubelet_admit(&n, Resources::ZERO, &tolerant),
            Err(("TaintToleration".into(), "Predicate TaintToleration failed".into()))
        );
        let all = web_pod(json!({"tolerations": [{"operator": "Exists"}]}));
        assert_eq!(check(&n, Resources::ZERO, &all), vec![]);
        assert_eq!(kubelet_admit(&n, Resources::ZERO, &all), Ok(()));
    }

    fn with_ready(status: Option<&str>, taints: Value) -> Node {
        let mut n = ref_node("n1", json!({"taints": taints}));
        if let Some(s) = n.status.as_mut() {
            s.conditions = status.map(|st| {
                vec![k8s_openapi::api::core::v1::NodeCondition {
                    type_: "Ready".into(),
                    status: st.into(),
                    ..Default::default()
                }]
            });
        }
        n
    }

    #[test]
    fn not_ready_nodes_read_as_their_taints() {
        let p = web_pod(json!({}));
        let got = check(&with_ready(Some("False"), json!([])), Resources::ZERO, &p);
        assert_eq!(got, vec![Unfit::NotReady]);
        assert_eq!(got[0].reason(), "node(s) had untolerated taint {node.kubernetes.io/not-ready: }");
        assert_eq!(check(&with_ready(None, json!([])), Resources::ZERO, &p), vec![Unfit::NotReady]);
        assert_eq!(
            check(&with_ready(Some("Unknown"), json!([])), Resources::ZERO, &p),
            vec![Unfit::Taint { key: TAINT_UNREACHABLE.into(), value: String::new(), effect: "NoSchedule".into() }]
        );
        // Already tainted by the node controller: reported once, as that taint.
        let tainted = with_ready(Some("False"), json!([{"key": TAINT_NOT_READY, "effect": "NoSchedule"}]));
        assert_eq!(
            check(&tainted, Resources::ZERO, &p),
            vec![Unfit::Taint { key: TAINT_NOT_READY.into(), value: String::new(), effect: "NoSchedule".into() }]
        );
        // The default 300 s tolerations are NoExecute only; tolerating NoSchedule helps.
        let tolerant = web_pod(json!({"tolerations": [{"key": TAINT_NOT_READY, "operator": "Exists"}]}));
        assert_eq!(check(&with_ready(Some("False"), json!([])), Resources::ZERO, &tolerant), vec![]);
    }

    #[test]
    fn node_selector_and_affinity() {
        let n = ref_node("n1", json!({}));
        let sel = web_pod(json!({"nodeSelector": {"zone": "b"}}));
        assert_eq!(check(&n, Resources::ZERO, &sel), vec![Unfit::NodeSelector]);
        assert_eq!(Unfit::NodeSelector.reason(), "node(s) didn't match Pod's node affinity/selector");
        assert_eq!(
            kubelet_admit(&n, Resources::ZERO, &sel),
            Err(("NodeAffinity".into(), "Predicate NodeAffinity failed".into()))
        );
        let ok = web_pod(json!({"nodeSelector": {"zone": "a"}}));
        assert_eq!(check(&n, Resources::ZERO, &ok), vec![]);
        let aff = web_pod(json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}]}}}}));
        assert_eq!(check(&n, Resources::ZERO, &aff), vec![Unfit::NodeAffinity]);
        assert_eq!(Unfit::NodeAffinity.reason(), Unfit::NodeSelector.reason());
        let preferred_only = web_pod(
            json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 1, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}}]}}}),
        );
        assert_eq!(check(&n, Resources::ZERO, &preferred_only), vec![]);
    }

    #[test]
    fn resources_and_pod_count() {
        let n = ref_node("n1", json!({}));
        let p = web_pod(json!({}));
        assert_eq!(check(&n, Resources::new(3800, 0, 5), &p), vec![]);
        assert_eq!(check(&n, Resources::new(3801, 0, 5), &p), vec![Unfit::InsufficientCpu]);
        assert_eq!(
            check(&n, Resources::new(3900, 8 * 1024 * MI, 110), &p),
            vec![Unfit::TooManyPods, Unfit::InsufficientCpu, Unfit::InsufficientMemory]
        );
        // A pod requesting nothing only needs a pod slot.
        let empty = pod(json!({"spec": {"containers": [{"name": "c"}]}}));
        assert_eq!(check(&n, Resources::new(9999, 99 * 1024 * MI, 3), &empty), vec![]);
        assert_eq!(check(&n, Resources::new(9999, 0, 110), &empty), vec![Unfit::TooManyPods]);
    }

    #[test]
    fn check_lists_every_failing_plugin_in_order() {
        let n = ref_node("n1", json!({"unschedulable": true, "taints": [{"key": "k", "effect": "NoSchedule"}]}));
        let p = web_pod(json!({"nodeSelector": {"zone": "b"}}));
        let got = check(&n, Resources::new(4000, 0, 0), &p);
        assert_eq!(
            got,
            vec![
                Unfit::Unschedulable,
                Unfit::Taint { key: "k".into(), value: String::new(), effect: "NoSchedule".into() },
                Unfit::NodeSelector,
                Unfit::InsufficientCpu
            ]
        );
    }

    #[test]
    fn least_allocated() {
        let alloc = Resources::new(4000, 8 * 1024 * MI, 110);
        assert_eq!(least_allocated_score(alloc, Resources::ZERO), 100);
        assert_eq!(least_allocated_score(alloc, Resources::new(1000, 2 * 1024 * MI, 1)), 75);
        assert_eq!(least_allocated_score(Resources::new(10000, 20000, 0), Resources::new(3000, 5000, 0)), 72);
        assert_eq!(least_allocated_score(alloc, Resources::new(5000, 0, 0)), 50, "over capacity scores 0 for cpu");
        assert_eq!(least_allocated_score(alloc, alloc), 0);
        assert_eq!(
            least_allocated_score(Resources::new(0, 1000, 0), Resources::new(50, 500, 0)),
            50,
            "no cpu: memory only"
        );
        assert_eq!(least_allocated_score(Resources::ZERO, Resources::ZERO), 0);
    }

    #[test]
    fn fit_error_message_format() {
        let reasons = vec![
            ("n1".to_string(), vec![Unfit::InsufficientCpu]),
            ("n2".to_string(), vec![Unfit::NodeSelector]),
            ("n3".to_string(), vec![Unfit::NodeAffinity]),
        ];
        assert_eq!(
            fit_error_message(3, &reasons),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector. \
             preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, \
             2 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn fit_error_message_counts_first_plugin_only_and_sorts_as_strings() {
        let mut reasons = vec![(
            "a".to_string(),
            vec![
                Unfit::Taint { key: "k".into(), value: "v".into(), effect: "NoSchedule".into() },
                Unfit::InsufficientCpu,
            ],
        )];
        for i in 0..10 {
            reasons.push((format!("cpu{i}"), vec![Unfit::InsufficientCpu, Unfit::InsufficientMemory]));
        }
        reasons.push(("big".to_string(), vec![Unfit::TooManyPods]));
        reasons.push(("big".to_string(), vec![Unfit::TooManyPods]));
        assert_eq!(
            fit_error_message(12, &reasons),
            "0/12 nodes are available: 1 Too many pods, 1 node(s) had untolerated taint {k: v}, \
             10 Insufficient cpu, 10 Insufficient memory. preemption: 0/12 nodes are available: \
             1 Preemption is not helpful for scheduling, 11 No preemption victims found for incoming pod."
        );
    }

    #[test]
    fn fit_error_message_edge_cases() {
        assert_eq!(fit_error_message(0, &[]), "no nodes available to schedule pods");
        assert_eq!(
            fit_error_message(2, &[("n1".into(), vec![Unfit::Unschedulable])]),
            "0/2 nodes are available: 1 node(s) were unschedulable. \
             preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
        );
        assert_eq!(
            fit_error_message(1, &[("n1".into(), vec![Unfit::NotReady])]),
            "0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }. \
             preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        );
        // More listed nodes than the total must not underflow.
        let many: Vec<(String, Vec<Unfit>)> =
            (0..3).map(|i| (format!("n{i}"), vec![Unfit::InsufficientMemory])).collect();
        assert!(fit_error_message(1, &many).ends_with("1 No preemption victims found for incoming pod."));
    }

    #[test]
    fn kubelet_admission_messages() {
        let n = ref_node("n1", json!({}));
        let big =
            web_pod(json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "2", "memory": "1Gi"}}}]}));
        assert_eq!(
            kubelet_admit(&n, Resources::new(3000, 0, 3), &big),
            Err((
                "OutOfcpu".into(),
                "Node didn't have enough resource: cpu, requested: 2000, used: 3000, capacity: 4000".into()
            ))
        );
        assert_eq!(
            kubelet_admit(&n, Resources::new(0, 7 * 1024 * MI + 1, 3), &big),
            Err((
                "OutOfmemory".into(),
                format!(
                    "Node didn't have enough resource: memory, requested: {}, used: {}, capacity: {}",
                    1024 * MI,
                    7 * 1024 * MI + 1,
                    8 * 1024 * MI
                )
            ))
        );
        assert_eq!(
            kubelet_admit(&n, Resources::new(4000, 0, 110), &big),
            Err((
                "OutOfpods".into(),
                "Node didn't have enough resource: pods, requested: 1, used: 110, capacity: 110".into()
            ))
        );
        let elsewhere = web_pod(json!({"nodeName": "n2"}));
        assert_eq!(
            kubelet_admit(&n, Resources::ZERO, &elsewhere),
            Err(("NodeName".into(), "Predicate NodeName failed".into()))
        );
        let here = web_pod(json!({"nodeName": "n1"}));
        assert_eq!(kubelet_admit(&n, Resources::ZERO, &here), Ok(()));
    }

    #[test]
    fn degenerate_objects_do_not_panic() {
        let p = CachedPod::default();
        let n = Node::default();
        assert_eq!(check(&n, Resources::ZERO, &p), vec![Unfit::NotReady, Unfit::TooManyPods]);
        assert!(kubelet_admit(&n, Resources::ZERO, &p).is_err());
    }

    proptest! {
        #[test]
        fn score_is_bounded(ac in -10i64..100_000, am in -10i64..100_000, rc in -10i64..200_000, rm in -10i64..200_000) {
            let s = least_allocated_score(Resources::new(ac, am, 0), Resources::new(rc, rm, 0));
            prop_assert!((0..=100).contains(&s) || ac < 0 || am < 0);
        }

        #[test]
        fn fits_iff_no_resource_reason(used_cpu in 0i64..5000, used_pods in 0i64..120) {
            let n = ref_node("n1", json!({}));
            let got = check(&n, Resources::new(used_cpu, 0, used_pods), &web_pod(json!({})));
            prop_assert_eq!(got.contains(&Unfit::InsufficientCpu), used_cpu > 3800);
            prop_assert_eq!(got.contains(&Unfit::TooManyPods), used_pods >= 110);
            prop_assert_eq!(kubelet_admit(&n, Resources::new(used_cpu, 0, used_pods), &web_pod(json!({}))).is_ok(), got.is_empty());
        }

        /// The scheduler's early-exit test agrees with the full check.
        #[test]
        fn the_fast_test_agrees_with_check(n in 0usize..5, p in 0usize..5, used_cpu in 0i64..5000, used_pods in 100i64..115) {
            let nodes = [
                json!({}),
                json!({"spec": {"unschedulable": true}}),
                json!({"spec": {"taints": [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]}}),
                json!({"metadata": {"labels": {"disk": "ssd"}}}),
                json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}),
            ];
            let pods = [
                json!({}),
                json!({"spec": {"nodeSelector": {"disk": "ssd"}}}),
                json!({"spec": {"tolerations": [{"key": "dedicated", "operator": "Exists"}]}}),
                json!({"spec": {"tolerations": [{"operator": "Exists"}]}}),
                json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}]}}}}}),
            ];
            let node = ref_node("n1", nodes[n].clone());
            let pod = web_pod(pods[p].clone());
            let used = Resources::new(used_cpu, 0, used_pods);
            let spec = pod.spec.clone().unwrap_or_default();
            let fast = resources_fit(node_allocatable(&node), used, pod_requests(&spec)) && node_admits(&node, &spec);
            prop_assert_eq!(fast, check(&node, used, &pod).is_empty());
        }

        /// The scheduler's resource test agrees with the reasons it reports.
        #[test]
        fn resources_fit_iff_no_shortfall(
            a in (0i64..4000, 0i64..4000, 0i64..120),
            u in (0i64..4000, 0i64..4000, 0i64..120),
            r in (0i64..2000, 0i64..2000),
        ) {
            let (alloc, used) = (Resources::new(a.0, a.1, a.2), Resources::new(u.0, u.1, u.2));
            let req = Resources::new(r.0, r.1, 1);
            prop_assert_eq!(resources_fit(alloc, used, req), resource_shortfalls(alloc, used, req).is_empty());
        }

        #[test]
        fn extreme_values_do_not_panic(c in any::<i64>(), m in any::<i64>(), p in any::<i64>()) {
            let n = ref_node("n1", json!({}));
            let _ = check(&n, Resources::new(c, m, p), &web_pod(json!({})));
            let _ = kubelet_admit(&n, Resources::new(c, m, p), &web_pod(json!({})));
            let _ = least_allocated_score(Resources::new(c, m, p), Resources::new(m, c, p));
        }
    }
}
