//! A compact projection of the cluster: what the planner needs to know about
//! every node and pod, and nothing else.
//!
//! The shell builds it from its watch-fed caches once per cycle. At 150,000
//! pods it has to stay small (target ≤ 1 KiB per pod, in practice ~0.2 KiB):
//! names are boxed strings, namespaces and owner names are `Arc<str>` shared by
//! every pod that has them, and scheduling constraints are one `Arc<Constraints>`
//! per workload (the shell interns them; `Constraints` is `Hash + Eq` for that).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use crate::fit::{self, Misfit, NodeFacts, Placement, PodNeeds, Requirement, Resources, Toleration};
use crate::male::Male;
use crate::strategy::{self, Owner, Strategy};

/// The cluster at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub nodes: Vec<NodeView>,
    pub pods: Vec<PodView>,
    /// Whether usage comes from metrics.k8s.io for this snapshot (the metrics API answered).
    pub metrics_available: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeView {
    /// Name, labels, readiness, cordon, taints, allocatable, and `requested` = the
    /// requests of the non-terminated pods bound to it ([`Snapshot::recompute_requested`]).
    pub facts: NodeFacts,
    /// Labelled `node-role.kubernetes.io/control-plane`: never a source or a target.
    pub control_plane: bool,
    /// Measured usage (metrics.k8s.io): the node's total, including system overhead.
    pub usage: Option<Usage>,
}

/// Measured CPU (millicores) and memory (bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Usage {
    pub cpu_m: u64,
    pub mem_b: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Phase {
    #[default]
    Pending,
    Running,
    Succeeded,
    Failed,
    Unknown,
}

impl Phase {
    /// `status.phase`; anything unrecognised is `Unknown`.
    pub fn parse(s: &str) -> Phase {
        match s {
            "Pending" => Phase::Pending,
            "Running" => Phase::Running,
            "Succeeded" => Phase::Succeeded,
            "Failed" => Phase::Failed,
            _ => Phase::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Running => "Running",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
            Phase::Unknown => "Unknown",
        }
    }

    /// Succeeded or Failed: the pod holds no resources any more.
    pub fn is_terminated(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed)
    }
}

/// The kind of the pod's controller (its controller ownerReference).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum OwnerKind {
    /// A bare pod.
    #[default]
    None,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    /// Any other controller (Job, a custom resource, …).
    Other,
}

impl OwnerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerKind::None => "none",
            OwnerKind::ReplicaSet => "ReplicaSet",
            OwnerKind::StatefulSet => "StatefulSet",
            OwnerKind::DaemonSet => "DaemonSet",
            OwnerKind::Other => "controller",
        }
    }

    /// The strategy `auto` picks for this owner ([`strategy::choose`] with no
    /// request); `None` for DaemonSet pods, which cannot move. Allocation-free.
    pub fn auto_strategy(self) -> Option<Strategy> {
        let owner = match self {
            OwnerKind::None => Owner::None,
            OwnerKind::ReplicaSet => Owner::ReplicaSet { name: String::new(), deployment: None },
            OwnerKind::StatefulSet => Owner::StatefulSet { name: String::new() },
            OwnerKind::DaemonSet => Owner::DaemonSet { name: String::new() },
            OwnerKind::Other => Owner::Other { kind: String::new(), name: String::new() },
        };
        strategy::choose(None, &owner).ok()
    }
}

/// A pod's scheduling constraints, shared between the pods of one workload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Constraints {
    pub node_selector: BTreeMap<String, String>,
    /// Required node affinity: OR of terms, each an AND of requirements. Empty = none.
    pub affinity_terms: Vec<Vec<Requirement>>,
    pub tolerations: Vec<Toleration>,
}

impl Constraints {
    pub fn is_empty(&self) -> bool {
        self.node_selector.is_empty() && self.affinity_terms.is_empty() && self.tolerations.is_empty()
    }

    pub fn placement(&self) -> Placement<'_> {
        Placement {
            node_selector: &self.node_selector,
            affinity_terms: &self.affinity_terms,
            tolerations: &self.tolerations,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodView {
    /// Shared by every pod of the namespace.
    pub namespace: Arc<str>,
    pub name: Box<str>,
    /// Index into [`Snapshot::nodes`]; `None` while unscheduled.
    pub node: Option<u32>,
    pub phase: Phase,
    /// Sum of container requests (max with init containers), `pods = 1`.
    pub requests: Resources,
    /// Measured usage (metrics.k8s.io), if known.
    pub usage: Option<Usage>,
    /// Scheduling constraints, shared between pods of one workload (the shell interns them).
    pub needs: Arc<Constraints>,
    pub owner: OwnerKind,
    /// The controller's name (shared by the pods of the workload).
    pub owner_name: Option<Arc<str>>,
    /// A static pod's mirror (annotation `kubernetes.io/config.mirror`): the
    /// kubelet of its node owns it, it cannot move.
    pub mirror: bool,
    /// Annotated `sdi-migration/exclude: "true"`.
    pub excluded: bool,
    /// `metadata.deletionTimestamp` is set.
    pub terminating: bool,
    pub male: Male,
    pub priority: i32,
    /// Other Ready pods of the same controller (for the B rule: "keeps a running replica").
    pub ready_siblings: u16,
    /// How many more disruptions the PodDisruptionBudgets covering this pod allow
    /// now (the minimum over them); `None` = no PDB covers it.
    pub disruptions_allowed: Option<u32>,
}

impl PodView {
    /// `namespace/name`, the key of [`crate::planner::PlanState`] maps.
    pub fn key(&self) -> String {
        let mut s = String::with_capacity(self.namespace.len() + 1 + self.name.len());
        write_key(&mut s, &self.namespace, &self.name);
        s
    }

    /// The owner as [`strategy::choose`] wants it (the Deployment behind a
    /// ReplicaSet is not part of the snapshot, so `deployment` is `None`).
    pub fn owner(&self) -> Owner {
        let name = self.owner_name.as_deref().unwrap_or_default().to_string();
        match self.owner {
            OwnerKind::None => Owner::None,
            OwnerKind::ReplicaSet => Owner::ReplicaSet { name, deployment: None },
            OwnerKind::StatefulSet => Owner::StatefulSet { name },
            OwnerKind::DaemonSet => Owner::DaemonSet { name },
            OwnerKind::Other => Owner::Other { kind: "controller".to_string(), name },
        }
    }

    /// [`fit::misfits`] for this pod on `node`, without building a [`PodNeeds`].
    pub fn misfits(&self, node: &NodeFacts) -> Vec<Misfit> {
        fit::misfits_parts(&self.requests, self.needs.placement(), node)
    }

    /// An owned [`PodNeeds`] (clones the constraints; prefer [`PodView::misfits`]).
    pub fn pod_needs(&self) -> PodNeeds {
        PodNeeds {
            requests: self.requests,
            node_selector: self.needs.node_selector.clone(),
            affinity_terms: self.needs.affinity_terms.clone(),
            tolerations: self.needs.tolerations.clone(),
        }
    }

    /// Whether the pod's requests count against its node in the state the
    /// planner plans for: it has not finished and is not on its way out (a
    /// terminating pod's resources are as good as free — counting them made the
    /// rebalancer move more than needed while pods stopped slowly).
    pub fn holds_requests(&self) -> bool {
        !self.phase.is_terminated() && !self.terminating
    }

    /// Heap bytes owned by this pod alone (its name). Shared `Arc`s are counted
    /// once per snapshot by [`Snapshot::memory`].
    fn own_heap_bytes(&self) -> usize {
        self.name.len()
    }
}

/// Clears `buf` and writes `namespace/name` into it (lets the planner look pods up
/// in `String`-keyed maps with one reused buffer).
pub(crate) fn write_key(buf: &mut String, namespace: &str, name: &str) {
    buf.clear();
    buf.push_str(namespace);
    buf.push('/');
    buf.push_str(name);
}

/// How much memory a snapshot holds, counted from `size_of` and string lengths
/// (allocator overhead not included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryEstimate {
    pub pods: usize,
    /// `size_of::<PodView>()` times the pods.
    pub pod_inline_bytes: usize,
    /// Pod names plus every distinct shared namespace, owner name and constraint set.
    pub pod_heap_bytes: usize,
    pub node_bytes: usize,
}

impl MemoryEstimate {
    pub fn bytes_per_pod(&self) -> f64 {
        if self.pods == 0 { 0.0 } else { (self.pod_inline_bytes + self.pod_heap_bytes) as f64 / self.pods as f64 }
    }
}

fn constraints_heap_bytes(c: &Constraints) -> usize {
    // A BTreeMap entry: key and value Strings inline plus their bytes (node overhead ignored).
    let sel: usize = c.node_selector.iter().map(|(k, v)| 2 * size_of::<String>() + k.len() + v.len()).sum();
    let req = |r: &Requirement| {
        size_of::<Requirement>() + r.key.len() + r.values.iter().map(|v| size_of::<String>() + v.len()).sum::<usize>()
    };
    let aff: usize =
        c.affinity_terms.iter().map(|t| size_of::<Vec<Requirement>>() + t.iter().map(req).sum::<usize>()).sum();
    let tol: usize = c
        .tolerations
        .iter()
        .map(|t| size_of::<Toleration>() + t.key.len() + t.operator.len() + t.value.len() + t.effect.len())
        .sum();
    // Arc header (two counters) + the struct itself.
    2 * size_of::<usize>() + size_of::<Constraints>() + sel + aff + tol
}

impl Snapshot {
    /// Sets every node's `facts.requested` to the sum of the requests of the pods
    /// bound to it that [hold requests](PodView::holds_requests). The shell may
    /// fill `requested` itself; this is the rule.
    pub fn recompute_requested(&mut self) {
        for n in &mut self.nodes {
            n.facts.requested = Resources::default();
        }
        for p in &self.pods {
            if !p.holds_requests() {
                continue;
            }
            if let Some(n) = p.node.and_then(|i| self.nodes.get_mut(i as usize)) {
                n.facts.requested = n.facts.requested + p.requests;
            }
        }
    }

    /// Index of the node called `name`.
    pub fn node_index(&self, name: &str) -> Option<u32> {
        self.nodes.iter().position(|n| n.facts.name == name).and_then(|i| u32::try_from(i).ok())
    }

    /// An estimate of the memory the snapshot holds (shared `Arc`s counted once).
    pub fn memory(&self) -> MemoryEstimate {
        let mut seen = HashSet::new();
        let mut heap = 0usize;
        for p in &self.pods {
            heap += p.own_heap_bytes();
            if seen.insert(Arc::as_ptr(&p.namespace) as *const u8 as usize) {
                heap += 2 * size_of::<usize>() + p.namespace.len();
            }
            if let Some(o) = &p.owner_name
                && seen.insert(Arc::as_ptr(o) as *const u8 as usize)
            {
                heap += 2 * size_of::<usize>() + o.len();
            }
            if seen.insert(Arc::as_ptr(&p.needs) as usize) {
                heap += constraints_heap_bytes(&p.needs);
            }
        }
        let node_bytes = self
            .nodes
            .iter()
            .map(|n| {
                size_of::<NodeView>()
                    + n.facts.name.len()
                    + n.facts.labels.iter().map(|(k, v)| 2 * size_of::<String>() + k.len() + v.len()).sum::<usize>()
                    + n.facts.taints.len() * size_of::<fit::Taint>()
            })
            .sum();
        MemoryEstimate {
            pods: self.pods.len(),
            pod_inline_bytes: self.pods.len() * size_of::<PodView>(),
            pod_heap_bytes: heap,
            node_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_view_is_small() {
        // The inline part; names and shared parts come on top (~30–60 bytes a pod).
        assert!(size_of::<PodView>() <= 192, "PodView is {} bytes", size_of::<PodView>());
    }

    #[test]
    fn key_and_owner() {
        let p = PodView {
            namespace: "web".into(),
            name: "front-1".into(),
            owner: OwnerKind::ReplicaSet,
            owner_name: Some("front-abc".into()),
            ..PodView::default()
        };
        assert_eq!(p.key(), "web/front-1");
        assert_eq!(p.owner(), Owner::ReplicaSet { name: "front-abc".into(), deployment: None });
        assert_eq!(OwnerKind::ReplicaSet.auto_strategy(), Some(Strategy::Surge));
        assert_eq!(OwnerKind::None.auto_strategy(), Some(Strategy::Recreate));
        assert_eq!(OwnerKind::StatefulSet.auto_strategy(), Some(Strategy::Evict));
        assert_eq!(OwnerKind::Other.auto_strategy(), Some(Strategy::Evict));
        assert_eq!(OwnerKind::DaemonSet.auto_strategy(), None);
    }

    #[test]
    fn misfits_from_shared_constraints_match_pod_needs() {
        let mut c = Constraints::default();
        c.node_selector.insert("zone".into(), "b".into());
        let p = PodView {
            requests: Resources { cpu_m: 100, mem_b: 1 << 20, pods: 1 },
            needs: Arc::new(c),
            ..PodView::default()
        };
        let node = NodeFacts {
            name: "w1".into(),
            labels: [("zone".to_string(), "a".to_string())].into(),
            ready: true,
            allocatable: Resources { cpu_m: 1000, mem_b: 1 << 30, pods: 10 },
            ..NodeFacts::default()
        };
        assert_eq!(p.misfits(&node), fit::misfits(&p.pod_needs(), &node));
        assert_eq!(p.misfits(&node).len(), 1);
    }

    #[test]
    fn requested_counts_non_terminated_pods() {
        let pod = |node: Option<u32>, phase: Phase, cpu_m: u64| PodView {
            node,
            phase,
            requests: Resources { cpu_m, mem_b: 10, pods: 1 },
            ..PodView::default()
        };
        let mut s = Snapshot {
            nodes: vec![NodeView::default(), NodeView::default()],
            pods: vec![
                pod(Some(0), Phase::Running, 100),
                pod(Some(0), Phase::Pending, 50),
                pod(Some(0), Phase::Succeeded, 1000),
                pod(Some(1), Phase::Unknown, 7),
                pod(None, Phase::Pending, 9),
                pod(Some(9), Phase::Running, 9),
            ],
            metrics_available: false,
        };
        s.recompute_requested();
        assert_eq!(s.nodes[0].facts.requested, Resources { cpu_m: 150, mem_b: 20, pods: 2 });
        assert_eq!(s.nodes[1].facts.requested, Resources { cpu_m: 7, mem_b: 10, pods: 1 });
    }

    #[test]
    fn memory_counts_shared_parts_once() {
        let ns: Arc<str> = "ns".into();
        let needs = Arc::new(Constraints::default());
        let pods: Vec<PodView> = (0..10)
            .map(|i| PodView {
                namespace: ns.clone(),
                name: format!("p-{i}").into(),
                needs: needs.clone(),
                ..PodView::default()
            })
            .collect();
        let s = Snapshot { pods, ..Snapshot::default() };
        let m = s.memory();
        assert_eq!(m.pods, 10);
        let shared = 2 * size_of::<usize>() + 2 + constraints_heap_bytes(&needs);
        assert_eq!(m.pod_heap_bytes, 10 * 3 + shared);
        assert!(m.bytes_per_pod() < 1024.0);
    }
}
