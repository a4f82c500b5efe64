//! The rebalancer's decision (SPEC §4): which pods leave which pressured nodes,
//! and where they go. A pure, deterministic, single-threaded function of a
//! [`Snapshot`], a [`PlanConfig`] and a little [`PlanState`].
//!
//! # Rules
//!
//! - **Pressure.** For every non-control-plane node: CPU% and memory% against
//!   allocatable, on the active basis — measured node usage (`Usage`), the node's
//!   `requested` (`Requests`), or `Auto` (usage when the snapshot has metrics, else
//!   requests; a note says which). A node without usage on the usage basis falls
//!   back to its requests (noted). Pressured = CPU% **or** memory% strictly above
//!   the threshold. A node with 0 allocatable of a resource is at 0% when nothing
//!   uses it, else 100%.
//! - **Sources** are the pressured nodes, most pressured first (highest of CPU% and
//!   memory%; ties by name).
//! - **Candidates** on a source: Running or Pending pods (Succeeded and Failed pods
//!   hold nothing and are ignored silently); every other exclusion is a [`Skip`]
//!   with its reason: phase Unknown, excluded namespace, DaemonSet, static/mirror,
//!   `sdi-migration/exclude`, terminating, a job already running, cooldown, class C
//!   (never automatic), class B that cannot keep a running replica (not a ReplicaSet
//!   pod, which would move by surge, and no other Ready replica; no checkpoint is
//!   assumed), and a PodDisruptionBudget that allows no disruption for a pod that
//!   would be evicted (StatefulSet and other controllers).
//! - **Order** (re-evaluated after every planned move, against the node's projected
//!   load): least critical first (A, then B); then the move with the least
//!   disruption: a pod whose move alone brings the node to or below the threshold
//!   goes first, the one that moves the smallest amount (CPU + memory percentage
//!   points of the source) among them; otherwise the largest relief on the
//!   over-threshold resources (Σ over CPU and memory above the threshold of
//!   min(the pod's share, the excess)); then lower priority, lower mixed score,
//!   namespace and name. A pod that would relieve nothing is not moved.
//! - **Contribution** of a pod on the active basis: its measured usage (or its
//!   requests when usage is unknown) on the usage basis, its requests on the
//!   requests basis. It leaves the source and is added to the target.
//! - **Targets**: Ready, schedulable, non-control-plane nodes that are not
//!   pressured at the start of the cycle (their relief is only projected until the
//!   moves complete, so they never receive pods in the same cycle — which also
//!   means a node that receives a pod is never a source later in the cycle). The
//!   pod must fit ([`fit::has_room`] against allocatable − requested, including the
//!   moves planned earlier in this cycle, and [`fit::placement_allowed`]), and the
//!   target's projected CPU% and memory% after the move must stay ≤ threshold −
//!   hysteresis.
//! - **Score** of a target = mean of its free CPU% and free memory% *before* the
//!   move (the original's rule), on the active basis and including earlier moves
//!   of the cycle; highest wins; ties by name. Nodes better scored than the chosen
//!   one are the move's `rejected_targets` (the first 5, with reasons).
//! - **Limits**: at most `max_per_node` moves off one source, at most
//!   `max_concurrent − active_jobs` in all; a source stops once projected at or
//!   below the threshold. Evictions of one workload planned in this cycle count
//!   against its PodDisruptionBudget allowance and against the Ready siblings a
//!   class B pod relies on.
//!
//! # Cost
//!
//! One pass over the nodes, one pass over the pods only when some node is
//! pressured (to list the pods of the pressured nodes), then work proportional to
//! the pods on pressured nodes. Eligible targets are sorted by score once and kept
//! sorted as moves are planned; a target search stops as soon as the remaining
//! nodes are above the limit on average (their score bounds their projected load).
//! A search that has probed 32 targets in vain learns, once per cycle and
//! constraint set (compared by value, so interning is not required), which
//! eligible targets the constraints allow, and then checks a bit per node; a set
//! that allows none fails at once. Upper bounds of the CPU and memory headroom
//! (and free requests) over all targets refuse at once a pod no node has room
//! for; they are recomputed after a long search in vain. A constraint set that
//! found no target is not searched again for pods that need at least as much.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::fit::{self, Resources};
use crate::male::{self, Criticality, PolicyInput};
use crate::quantity::{format_bytes, format_cpu};
use crate::snapshot::{self, Constraints, OwnerKind, Phase, PodView, Snapshot};
use crate::strategy::Strategy;

/// Rejected targets kept per move.
pub const REJECTED_TARGETS_KEPT: usize = 5;
/// Rejections quoted in a "no target" skip reason.
const REJECTIONS_QUOTED: usize = 3;

/// `PRESSURE_BASIS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Basis {
    /// Measured usage from metrics.k8s.io.
    Usage,
    /// Sum of the requests of the node's non-terminated pods (what the original did).
    Requests,
    /// Usage when the metrics API answers, else requests.
    #[default]
    Auto,
}

impl Basis {
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Usage => "usage",
            Basis::Requests => "requests",
            Basis::Auto => "auto",
        }
    }

    pub fn parse(s: &str) -> Option<Basis> {
        [Basis::Usage, Basis::Requests, Basis::Auto].into_iter().find(|b| b.as_str() == s)
    }
}

/// The basis a plan was computed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum BasisUsed {
    Usage,
    Requests,
}

impl BasisUsed {
    pub fn as_str(self) -> &'static str {
        match self {
            BasisUsed::Usage => "usage",
            BasisUsed::Requests => "requests",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlanConfig {
    /// `RESOURCE_PRESSURE_THRESHOLD`, percent.
    pub threshold_pct: f64,
    /// `HYSTERESIS`, percentage points: targets must stay ≤ threshold − hysteresis.
    pub hysteresis_pct: f64,
    pub basis: Basis,
    /// `MAX_MIGRATIONS_PER_NODE`.
    pub max_per_node: u32,
    /// `MAX_CONCURRENT_MIGRATIONS`.
    pub max_concurrent: u32,
    /// `MIGRATION_COOLDOWN`, seconds.
    pub cooldown_secs: u64,
    pub excluded_namespaces: Vec<String>,
    /// `MIGRATION_STRATEGY` when it forces one; `None` = `auto` (by owner). The
    /// plan names the strategy the job will run, so the policy approves that one.
    pub strategy: Option<Strategy>,
}

impl Default for PlanConfig {
    fn default() -> Self {
        PlanConfig {
            threshold_pct: 85.0,
            hysteresis_pct: 10.0,
            basis: Basis::Auto,
            max_per_node: 3,
            max_concurrent: 5,
            cooldown_secs: 600,
            excluded_namespaces: vec!["kube-system".to_string()],
            strategy: None,
        }
    }
}

/// What the planner needs to know besides the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanState {
    /// Seconds on the same clock as `last_moved`.
    pub now_secs: u64,
    /// Pod key (`namespace/name`) → when it was last moved (seconds).
    pub last_moved: HashMap<String, u64>,
    /// Pods with a migration job running (keys).
    pub active_pods: HashSet<String>,
    /// Migration jobs still moving a pod, cluster-wide (a job measuring the new
    /// pod's usage after its move no longer counts).
    pub active_jobs: u32,
    /// Moves under way: the planner plans for the state they lead to.
    pub in_flight: Vec<InFlight>,
    /// Pod key → the node its last move took it from, and when (seconds): it
    /// does not go back there for [`RETURN_WINDOW_COOLDOWNS`] cooldowns.
    pub came_from: HashMap<String, (String, u64)>,
}

/// How many `MIGRATION_COOLDOWN`s a moved pod stays away from the node it left:
/// a load that swings between two nodes more slowly than one cooldown would
/// otherwise send it back and forth.
pub const RETURN_WINDOW_COOLDOWNS: u64 = 3;

/// A move under way, as the planner projects it: its pod leaves `source` and
/// arrives on `target`. The pods are slots of the snapshot being planned on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    /// The pod being moved, while it is still in the snapshot.
    pub original: Option<u32>,
    /// The pod replacing it, once it exists (a copy, or a controller's replacement).
    pub replacement: Option<u32>,
    pub source: String,
    pub target: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Plan {
    pub basis_used: BasisUsed,
    /// Every non-control-plane node, in snapshot order, as found at the start of the cycle.
    pub nodes: Vec<NodePressure>,
    /// In the order they were planned.
    pub moves: Vec<Move>,
    pub skipped: Vec<Skip>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct NodePressure {
    pub name: String,
    pub cpu_pct: f64,
    pub mem_pct: f64,
    pub pressured: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Move {
    pub namespace: String,
    pub pod: String,
    pub source: String,
    pub target: String,
    pub criticality: Criticality,
    /// What `auto` will use for this pod.
    pub strategy: Strategy,
    pub reason: String,
    /// The target's score (mean free CPU% and memory%) before the move.
    pub score: f64,
    /// Projected (CPU%, memory%) of the source after this and earlier moves of the cycle.
    pub source_after: (f64, f64),
    /// Projected (CPU%, memory%) of the target after this and earlier moves of the cycle.
    pub target_after: (f64, f64),
    /// Nodes scored higher than the target, and why they were not used (first 5).
    pub rejected_targets: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Skip {
    pub namespace: String,
    pub pod: String,
    pub node: String,
    pub reason: String,
}

/// Percent of `alloc`; 0 allocatable is 0% when unused, else 100%.
fn pct(v: u64, alloc: u64) -> f64 {
    if alloc == 0 { if v == 0 { 0.0 } else { 100.0 } } else { v as f64 * 100.0 / alloc as f64 }
}

/// A node as the planner projects it during the cycle.
#[derive(Debug, Clone, Copy)]
struct NodeState {
    /// CPU millicores and memory bytes on the active basis.
    load: [u64; 2],
    alloc: [u64; 2],
    /// Requests bound to it, for the fit check.
    requested: Resources,
    pressured_at_start: bool,
    received: bool,
}

impl NodeState {
    fn pcts(&self) -> [f64; 2] {
        [pct(self.load[0], self.alloc[0]), pct(self.load[1], self.alloc[1])]
    }

    fn pcts_with(&self, add: [u64; 2]) -> [f64; 2] {
        [
            pct(self.load[0].saturating_add(add[0]), self.alloc[0]),
            pct(self.load[1].saturating_add(add[1]), self.alloc[1]),
        ]
    }

    fn pcts_without(&self, sub: [u64; 2]) -> [f64; 2] {
        [
            pct(self.load[0].saturating_sub(sub[0]), self.alloc[0]),
            pct(self.load[1].saturating_sub(sub[1]), self.alloc[1]),
        ]
    }

    fn score(&self) -> f64 {
        let [c, m] = self.pcts();
        ((100.0 - c) + (100.0 - m)) / 2.0
    }
}

fn over(p: [f64; 2], threshold: f64) -> bool {
    p[0] > threshold || p[1] > threshold
}

/// A pod that passed the static checks, waiting on its source.
#[derive(Debug, Clone, Copy)]
struct Cand {
    pod: u32,
    class: Criticality,
    strategy: Strategy,
    contrib: [u64; 2],
}

/// What moving a candidate would do to its source now.
#[derive(Debug, Clone, Copy)]
struct Effect {
    /// The node ends at or below the threshold on both resources.
    sufficient: bool,
    /// Percentage points moved (CPU + memory).
    amount: f64,
    /// Percentage points removed from the excess over the threshold.
    relief: f64,
}

fn effect(node: &NodeState, contrib: [u64; 2], threshold: f64) -> Effect {
    let before = node.pcts();
    let after = node.pcts_without(contrib);
    let mut relief = 0.0;
    for d in 0..2 {
        if before[d] > threshold {
            relief += (before[d] - after[d]).min(before[d] - threshold);
        }
    }
    Effect { sufficient: !over(after, threshold), amount: (before[0] - after[0]) + (before[1] - after[1]), relief }
}

/// A target in the score-sorted list.
#[derive(Debug, Clone, Copy)]
struct Ranked {
    score: f64,
    node: u32,
}

/// After this many targets without a fit, a search learns which targets the pod's
/// constraints allow (one pass over the targets per constraint set and cycle).
const PLACEMENT_PROBE: usize = 32;

/// Eligible targets (bit per node index) that a constraint set allows.
#[derive(Debug, Clone)]
struct Allowed {
    bits: Vec<u64>,
    count: u32,
}

impl Allowed {
    fn contains(&self, node: u32) -> bool {
        self.bits[node as usize / 64] & (1 << (node % 64)) != 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    Found(usize),
    /// Every target refused it, or the rest are above the limit.
    Exhausted,
    /// `steps` targets refused it; resume at this position.
    Paused(usize),
    /// No eligible target matches its constraints.
    NoPlacement,
}

/// Upper bounds, over all eligible targets, of what one more pod may add: CPU and
/// memory below the limit on the active basis, and free requests. Targets only
/// fill up during a cycle, so stale bounds stay valid; a pod above them fits nowhere.
#[derive(Debug, Clone, Copy, Default)]
struct Room {
    /// Millicores and bytes below threshold − hysteresis.
    headroom: [f64; 2],
    /// Allocatable − requested: CPU, memory, pods.
    free: [u64; 3],
}

/// One target search: what is placed, and what it has seen so far.
struct Search<'p> {
    pod: &'p PodView,
    contrib: [u64; 2],
    source: u32,
    /// The node the pod was moved away from recently: not a target (no ping-pong).
    avoid: Option<(u32, u64)>,
    /// Better-scored nodes that refused the pod, with reasons (the first few).
    rejected: Vec<(String, String)>,
    checked: usize,
}

/// A constraint set that found no target, and the need that failed.
#[derive(Debug, Clone)]
struct NoTarget {
    requests: Resources,
    contrib: [u64; 2],
    pod_key: String,
}

/// Plans one rebalancing cycle. Same input, same plan.
pub fn plan(snapshot: &Snapshot, cfg: &PlanConfig, state: &PlanState) -> Plan {
    Planner::new(snapshot, cfg, state).run()
}

struct Planner<'a> {
    snap: &'a Snapshot,
    cfg: &'a PlanConfig,
    state: &'a PlanState,
    basis: BasisUsed,
    limit: f64,
    nodes: Vec<NodeState>,
    targets: Vec<Ranked>,
    budget: u32,
    /// Evictions planned this cycle per workload (namespace, owner kind, owner name).
    evictions: HashMap<(&'a str, OwnerKind, &'a str), u32>,
    /// Constraint sets (by value) that found no target this cycle.
    no_target: HashMap<&'a Constraints, NoTarget>,
    room: Room,
    /// Eligible targets allowed by a constraint set (by value), for sets that needed a long search.
    placement: HashMap<&'a Constraints, Allowed>,
    key_buf: String,
    plan: Plan,
}

impl<'a> Planner<'a> {
    fn new(snap: &'a Snapshot, cfg: &'a PlanConfig, state: &'a PlanState) -> Self {
        let basis = match cfg.basis {
            Basis::Usage => BasisUsed::Usage,
            Basis::Requests => BasisUsed::Requests,
            Basis::Auto if snap.metrics_available => BasisUsed::Usage,
            Basis::Auto => BasisUsed::Requests,
        };
        Planner {
            snap,
            cfg,
            state,
            basis,
            limit: cfg.threshold_pct - cfg.hysteresis_pct,
            nodes: Vec::new(),
            targets: Vec::new(),
            budget: cfg.max_concurrent.saturating_sub(state.active_jobs),
            evictions: HashMap::new(),
            no_target: HashMap::new(),
            placement: HashMap::new(),
            room: Room::default(),
            key_buf: String::new(),
            plan: Plan {
                basis_used: basis,
                nodes: Vec::new(),
                moves: Vec::new(),
                skipped: Vec::new(),
                notes: Vec::new(),
            },
        }
    }

    fn name(&self, node: u32) -> &'a str {
        &self.snap.nodes[node as usize].facts.name
    }

    fn run(mut self) -> Plan {
        if self.cfg.basis == Basis::Auto {
            self.plan.notes.push(match self.basis {
                BasisUsed::Usage => "pressure basis auto: metrics.k8s.io answered, using measured usage".to_string(),
                BasisUsed::Requests => {
                    "pressure basis auto: metrics.k8s.io unavailable, using the sum of pod requests".to_string()
                }
            });
        }
        let sources = self.measure();
        if sources.is_empty() {
            return self.plan;
        }
        self.rank_targets();
        let pods_of = self.pods_of(&sources);
        let mut cands = Vec::new();
        for (i, &source) in sources.iter().enumerate() {
            if self.budget == 0 {
                let rest: Vec<&str> = sources[i..].iter().map(|&s| self.name(s)).collect();
                self.plan.notes.push(format!(
                    "cluster-wide limit reached (MAX_CONCURRENT_MIGRATIONS {}, {} job(s) running); {} pressured \
                     node(s) not processed this cycle: {}",
                    self.cfg.max_concurrent,
                    self.state.active_jobs,
                    rest.len(),
                    abbreviate(&rest)
                ));
                break;
            }
            if self.nodes[source as usize].received {
                // Cannot happen while pressured nodes are never targets; kept as the rule.
                continue;
            }
            cands.clear();
            self.classify(source, &pods_of[i], &mut cands);
            self.relieve(source, &mut cands);
        }
        self.plan
    }

    /// Node loads and pressure, in the state the moves under way lead to;
    /// returns the sources, most pressured first.
    fn measure(&mut self) -> Vec<u32> {
        let mut missing_usage = 0usize;
        let threshold = self.cfg.threshold_pct;
        self.nodes.reserve_exact(self.snap.nodes.len());
        self.plan.nodes.reserve_exact(self.snap.nodes.len());
        for n in &self.snap.nodes {
            let req = n.facts.requested;
            let alloc = [n.facts.allocatable.cpu_m, n.facts.allocatable.mem_b];
            let load = match (self.basis, n.usage) {
                (BasisUsed::Usage, Some(u)) => [u.cpu_m, u.mem_b],
                (BasisUsed::Usage, None) => {
                    missing_usage += usize::from(!n.control_plane);
                    [req.cpu_m, req.mem_b]
                }
                (BasisUsed::Requests, _) => [req.cpu_m, req.mem_b],
            };
            self.nodes.push(NodeState { load, alloc, requested: req, pressured_at_start: false, received: false });
        }
        self.project_in_flight();
        let mut sources: Vec<(f64, u32)> = Vec::new();
        for (i, n) in self.snap.nodes.iter().enumerate() {
            if n.control_plane {
                continue;
            }
            let st = &mut self.nodes[i];
            let [c, m] = st.pcts();
            st.pressured_at_start = over([c, m], threshold);
            self.plan.nodes.push(NodePressure {
                name: n.facts.name.clone(),
                cpu_pct: c,
                mem_pct: m,
                pressured: st.pressured_at_start,
            });
            if st.pressured_at_start {
                sources.push((c.max(m), i as u32));
            }
        }
        if missing_usage > 0 {
            self.plan.notes.push(format!(
                "{missing_usage} node(s) have no usage from metrics.k8s.io; their requests are used instead"
            ));
        }
        let names = &self.snap.nodes;
        sources.sort_unstable_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| names[a.1 as usize].facts.name.cmp(&names[b.1 as usize].facts.name))
                .then(a.1.cmp(&b.1))
        });
        sources.into_iter().map(|(_, i)| i).collect()
    }

    /// Apply the moves under way: the pod leaves its source (unless it already
    /// stopped counting there) and arrives on its target (unless its replacement
    /// already counts there). Without this, a move slower than one cycle made
    /// the next cycle relieve the same node again.
    fn project_in_flight(&mut self) {
        let snap = self.snap;
        let mut projected = 0usize;
        for m in &self.state.in_flight {
            let (Some(src), Some(dst)) = (snap.node_index(&m.source), snap.node_index(&m.target)) else { continue };
            let pod = |slot: Option<u32>| slot.and_then(|i| snap.pods.get(i as usize)).filter(|p| !p.name.is_empty());
            let (original, replacement) = (pod(m.original), pod(m.replacement));
            let Some(moving) = original.or(replacement) else { continue };
            let contrib = self.contrib(moving);
            let mut changed = false;
            if let Some(o) = original
                && o.node == Some(src)
            {
                // On the usage basis a stopping pod still shows in the node's usage.
                let counted = o.holds_requests() || (self.basis == BasisUsed::Usage && o.usage.is_some());
                let s = &mut self.nodes[src as usize];
                if counted {
                    s.load = [s.load[0].saturating_sub(contrib[0]), s.load[1].saturating_sub(contrib[1])];
                    changed = true;
                }
                if o.holds_requests() {
                    s.requested = minus(s.requested, o.requests);
                }
            }
            let arrived = replacement.filter(|r| r.node == Some(dst) && r.holds_requests());
            let t = &mut self.nodes[dst as usize];
            match arrived {
                None => {
                    t.requested = t.requested + moving.requests;
                    t.load = [t.load[0].saturating_add(contrib[0]), t.load[1].saturating_add(contrib[1])];
                    changed = true;
                }
                // Counted in the target's requests already; not yet in its measured usage.
                Some(r) if self.basis == BasisUsed::Usage && r.usage.is_none() => {
                    t.load = [t.load[0].saturating_add(contrib[0]), t.load[1].saturating_add(contrib[1])];
                    changed = true;
                }
                Some(_) => {}
            }
            projected += usize::from(changed);
        }
        if projected > 0 {
            self.plan.notes.push(format!(
                "{projected} move(s) under way are projected: their pods count on their targets, not their sources"
            ));
        }
    }

    fn before(&self, a: &Ranked, b: &Ranked) -> Ordering {
        // Index last: duplicate names (a broken snapshot) still give one order.
        b.score.total_cmp(&a.score).then_with(|| self.name(a.node).cmp(self.name(b.node))).then(a.node.cmp(&b.node))
    }

    /// Eligible targets, best first.
    fn rank_targets(&mut self) {
        let mut targets: Vec<Ranked> = self
            .snap
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| {
                n.facts.ready && !n.facts.unschedulable && !n.control_plane && !self.nodes[*i].pressured_at_start
            })
            .map(|(i, _)| Ranked { score: self.nodes[i].score(), node: i as u32 })
            .collect();
        targets.sort_unstable_by(|a, b| self.before(a, b));
        self.targets = targets;
        self.measure_room();
        if self.targets.is_empty() {
            self.plan.notes.push(
                "no eligible target node: every node is a control-plane node, NotReady, cordoned or under pressure"
                    .to_string(),
            );
        }
    }

    /// Recomputes [`Room`] exactly from the targets' current state.
    fn measure_room(&mut self) {
        let mut room = Room { headroom: [f64::NEG_INFINITY; 2], free: [0; 3] };
        for r in &self.targets {
            let n = &self.nodes[r.node as usize];
            let facts = &self.snap.nodes[r.node as usize].facts;
            for d in 0..2 {
                // A resource with nothing allocatable is left to the exact check.
                let h = if n.alloc[d] == 0 {
                    f64::INFINITY
                } else {
                    self.limit * n.alloc[d] as f64 / 100.0 - n.load[d] as f64
                };
                room.headroom[d] = room.headroom[d].max(h);
            }
            let a = facts.allocatable;
            let free = [
                a.cpu_m.saturating_sub(n.requested.cpu_m),
                a.mem_b.saturating_sub(n.requested.mem_b),
                a.pods.saturating_sub(n.requested.pods),
            ];
            for (best, f) in room.free.iter_mut().zip(free) {
                *best = (*best).max(f);
            }
        }
        self.room = room;
    }

    /// Why no eligible target can have room for the pod, if [`Room`] shows it.
    fn no_room(&self, p: &PodView, contrib: [u64; 2]) -> Option<String> {
        let room = &self.room;
        let limit = num(self.limit);
        // One unit of slack keeps float rounding from refusing a node that fits exactly.
        if contrib[0] as f64 > room.headroom[0] + 1.0 {
            return Some(format!(
                "no target node can take the pod: it adds {} CPU and no eligible node has more than {} below the \
                 {limit}% limit",
                format_cpu(contrib[0]),
                format_cpu(room.headroom[0].max(0.0) as u64)
            ));
        }
        if contrib[1] as f64 > room.headroom[1] + 1.0 {
            return Some(format!(
                "no target node can take the pod: it adds {} memory and no eligible node has more than {} below the \
                 {limit}% limit",
                format_bytes(contrib[1]),
                format_bytes(room.headroom[1].max(0.0) as u64)
            ));
        }
        let want = [p.requests.cpu_m, p.requests.mem_b, p.requests.pods];
        for (d, what) in ["CPU", "memory", "pods"].into_iter().enumerate() {
            if want[d] > 0 && want[d] > room.free[d] {
                let f = |v: u64| match d {
                    0 => format_cpu(v),
                    1 => format_bytes(v),
                    _ => v.to_string(),
                };
                return Some(format!(
                    "no target node can take the pod: it requests {} {what} and no eligible node has more than {} \
                     free",
                    f(want[d]),
                    f(room.free[d])
                ));
            }
        }
        None
    }

    /// The pods bound to each source (index-aligned with `sources`), in snapshot order.
    fn pods_of(&self, sources: &[u32]) -> Vec<Vec<u32>> {
        let mut slot = vec![u32::MAX; self.snap.nodes.len()];
        for (k, &s) in sources.iter().enumerate() {
            slot[s as usize] = k as u32;
        }
        let mut lists = vec![Vec::new(); sources.len()];
        for (i, p) in self.snap.pods.iter().enumerate() {
            if let Some(n) = p.node
                && let Some(&k) = slot.get(n as usize)
                && k != u32::MAX
            {
                lists[k as usize].push(i as u32);
            }
        }
        lists
    }

    fn skip(&mut self, pod: &PodView, node: u32, reason: String) {
        self.plan.skipped.push(Skip {
            namespace: pod.namespace.to_string(),
            pod: pod.name.to_string(),
            node: self.name(node).to_string(),
            reason,
        });
    }

    /// The contribution of a pod to its node's load on the active basis.
    fn contrib(&self, p: &PodView) -> [u64; 2] {
        match (self.basis, p.usage) {
            (BasisUsed::Usage, Some(u)) => [u.cpu_m, u.mem_b],
            _ => [p.requests.cpu_m, p.requests.mem_b],
        }
    }

    /// Static exclusions: skipped pods get their reason, the rest become candidates.
    fn classify(&mut self, source: u32, pods: &[u32], cands: &mut Vec<Cand>) {
        let snap = self.snap;
        let track_state = !self.state.last_moved.is_empty() || !self.state.active_pods.is_empty();
        for &pi in pods {
            let p = &snap.pods[pi as usize];
            let reason = match p.phase {
                Phase::Succeeded | Phase::Failed => continue,
                Phase::Unknown => Some("pod phase is Unknown; only Running or Pending pods are moved".to_string()),
                Phase::Running | Phase::Pending => None,
            };
            if let Some(r) = reason.or_else(|| self.exclusion(p, track_state)) {
                self.skip(p, source, r);
                continue;
            }
            let strategy = match self.strategy_for(p) {
                Ok(s) => s,
                Err(why) => {
                    self.skip(p, source, why);
                    continue;
                }
            };
            let class = male::criticality(&p.male);
            let input = PolicyInput {
                criticality: class,
                automatic: true,
                strategy: Some(strategy),
                keeps_replica: p.ready_siblings > 0,
                checkpoint: false,
            };
            if !male::allows(&input) {
                self.skip(p, source, male::decide(&input).reason);
                continue;
            }
            if strategy == Strategy::Evict && p.disruptions_allowed == Some(0) {
                self.skip(p, source, "PodDisruptionBudget allows no disruption now".to_string());
                continue;
            }
            cands.push(Cand { pod: pi, class, strategy, contrib: self.contrib(p) });
        }
    }

    /// The strategy the job will run: the forced one (`MIGRATION_STRATEGY`) if
    /// it can move this pod, else the owner's natural one.
    fn strategy_for(&self, p: &PodView) -> Result<Strategy, String> {
        let Some(forced) = self.cfg.strategy else {
            // DaemonSet pods were excluded before, so there is one.
            return p.owner.auto_strategy().ok_or_else(|| "no strategy can move this pod".to_string());
        };
        let mut owner = p.owner();
        if let (Strategy::Pin, crate::strategy::Owner::ReplicaSet { deployment, .. }) = (forced, &mut owner) {
            // The snapshot does not know which ReplicaSets a Deployment owns; pre-flight checks it.
            *deployment = Some(String::new());
        }
        crate::strategy::choose(Some(forced), &owner).map_err(|e| format!("MIGRATION_STRATEGY={forced}: {e}"))
    }

    /// The first reason a Running or Pending pod is not a candidate, if any.
    fn exclusion(&mut self, p: &PodView, track_state: bool) -> Option<String> {
        if self.cfg.excluded_namespaces.iter().any(|ns| **ns == *p.namespace) {
            return Some(format!("namespace {} is excluded from rebalancing", p.namespace));
        }
        if p.owner == OwnerKind::DaemonSet {
            let why = crate::strategy::choose(None, &p.owner()).err();
            return Some(why.unwrap_or_else(|| "the pod belongs to a DaemonSet".to_string()));
        }
        if p.mirror {
            return Some(
                "static pod (mirror pod, annotation kubernetes.io/config.mirror): only the kubelet of its node runs it"
                    .to_string(),
            );
        }
        if p.excluded {
            return Some("pod is annotated sdi-migration/exclude=\"true\"".to_string());
        }
        if p.terminating {
            return Some("pod is terminating".to_string());
        }
        if track_state {
            snapshot::write_key(&mut self.key_buf, &p.namespace, &p.name);
            if self.state.active_pods.contains(self.key_buf.as_str()) {
                return Some("a migration job is already running for this pod".to_string());
            }
            if let Some(&at) = self.state.last_moved.get(self.key_buf.as_str()) {
                let ago = self.state.now_secs.saturating_sub(at);
                if ago < self.cfg.cooldown_secs {
                    return Some(format!(
                        "pod was moved {ago} s ago; MIGRATION_COOLDOWN is {} s, it can move again in {} s",
                        self.cfg.cooldown_secs,
                        self.cfg.cooldown_secs - ago
                    ));
                }
            }
        }
        None
    }

    /// Moves candidates off `source` until it is relieved or a limit is reached.
    fn relieve(&mut self, source: u32, cands: &mut Vec<Cand>) {
        let threshold = self.cfg.threshold_pct;
        let snap = self.snap;
        let mut moved = 0u32;
        let why_not = loop {
            let src = self.nodes[source as usize];
            if !over(src.pcts(), threshold) {
                return;
            }
            if moved >= self.cfg.max_per_node {
                break format!("MAX_MIGRATIONS_PER_NODE ({}) reached", self.cfg.max_per_node);
            }
            if self.budget == 0 {
                break "the cluster-wide limit of concurrent migrations is reached".to_string();
            }
            // Candidates that would relieve nothing now never will (the load only goes down).
            cands.retain(|c| effect(&src, c.contrib, threshold).relief > 0.0);
            let Some(best) = self.best(&src, cands) else {
                break "no more candidates: the node's other pods are skipped (see skipped) or would not relieve \
                       the resource under pressure"
                    .to_string();
            };
            let cand = cands.swap_remove(best);
            let p = &snap.pods[cand.pod as usize];
            if let Some(reason) = self.workload_refusal(p, &cand) {
                self.skip(p, source, reason);
                continue;
            }
            match self.find_target(p, cand.contrib, source) {
                Ok((pos, rejected)) => {
                    self.commit(source, p, &cand, pos, rejected);
                    moved += 1;
                }
                Err(reason) => self.skip(p, source, reason),
            }
        };
        let [c, m] = self.nodes[source as usize].pcts();
        self.plan.notes.push(format!(
            "node {} stays above the {}% threshold (projected {c:.1}% CPU, {m:.1}% memory after {moved} move(s)): \
             {why_not}",
            self.name(source),
            num(threshold)
        ));
    }

    fn best(&self, src: &NodeState, cands: &[Cand]) -> Option<usize> {
        let threshold = self.cfg.threshold_pct;
        let pods = &self.snap.pods;
        let cmp = |a: &(Cand, Effect), b: &(Cand, Effect)| {
            let (pa, pb) = (&pods[a.0.pod as usize], &pods[b.0.pod as usize]);
            a.0.class
                .move_rank()
                .cmp(&b.0.class.move_rank())
                .then(b.1.sufficient.cmp(&a.1.sufficient))
                .then(disruption(pa).cmp(&disruption(pb)))
                .then_with(|| {
                    if a.1.sufficient { a.1.amount.total_cmp(&b.1.amount) } else { b.1.relief.total_cmp(&a.1.relief) }
                })
                .then(pa.priority.cmp(&pb.priority))
                .then_with(|| pa.male.mixed_score.unwrap_or(0.0).total_cmp(&pb.male.mixed_score.unwrap_or(0.0)))
                .then_with(|| tie_break(pa).cmp(&tie_break(pb)))
                .then_with(|| pa.namespace.cmp(&pb.namespace))
                .then_with(|| pa.name.cmp(&pb.name))
        };
        let mut best: Option<(usize, (Cand, Effect))> = None;
        for (i, c) in cands.iter().enumerate() {
            let e = (*c, effect(src, c.contrib, threshold));
            if best.as_ref().is_none_or(|(_, b)| cmp(&e, b) == Ordering::Less) {
                best = Some((i, e));
            }
        }
        best.map(|(i, _)| i)
    }

    /// The node `p` was recently moved away from, as a node index, and how long ago.
    fn came_from(&mut self, p: &PodView) -> Option<(u32, u64)> {
        if self.state.came_from.is_empty() {
            return None;
        }
        snapshot::write_key(&mut self.key_buf, &p.namespace, &p.name);
        let (node, at) = self.state.came_from.get(self.key_buf.as_str())?;
        let ago = self.state.now_secs.saturating_sub(*at);
        if ago >= self.cfg.cooldown_secs.saturating_mul(RETURN_WINDOW_COOLDOWNS) {
            return None;
        }
        self.snap.node_index(node).map(|i| (i, ago))
    }

    /// Refusals that depend on what this cycle already planned for the pod's workload.
    fn workload_refusal(&self, p: &PodView, cand: &Cand) -> Option<String> {
        if cand.strategy != Strategy::Evict {
            return None;
        }
        let owner = p.owner_name.as_deref().unwrap_or_default();
        let planned = self.evictions.get(&(&*p.namespace, p.owner, owner)).copied().unwrap_or(0);
        if planned == 0 {
            return None;
        }
        if let Some(allowed) = p.disruptions_allowed
            && planned >= allowed
        {
            return Some(format!(
                "PodDisruptionBudget allows {allowed} disruption(s) now and this cycle already plans {planned} \
                 eviction(s) of {} {owner}",
                p.owner.as_str()
            ));
        }
        if cand.class == Criticality::B && u32::from(p.ready_siblings) <= planned {
            let rule = male::decide(&PolicyInput {
                criticality: Criticality::B,
                automatic: true,
                strategy: Some(cand.strategy),
                keeps_replica: false,
                checkpoint: false,
            });
            return Some(format!(
                "{}: its {} Ready sibling(s) are already being moved this cycle",
                rule.reason, p.ready_siblings
            ));
        }
        None
    }

    /// The best target for the pod: its position in `targets` and the better-scored
    /// nodes that were rejected; or why there is none.
    fn find_target(
        &mut self,
        p: &'a PodView,
        contrib: [u64; 2],
        source: u32,
    ) -> Result<(usize, Vec<(String, String)>), String> {
        let needs: &'a Constraints = &p.needs;
        if let Some(nt) = self.no_target.get(needs)
            && covers(&p.requests, &nt.requests)
            && contrib[0] >= nt.contrib[0]
            && contrib[1] >= nt.contrib[1]
        {
            return Err(format!(
                "no target node can take the pod: {} has the same constraints, needs no more, and found none this \
                 cycle",
                nt.pod_key
            ));
        }
        if self.targets.is_empty() {
            return Err("no eligible target node: every other node is a control-plane node, NotReady, cordoned or \
                        under pressure"
                .to_string());
        }
        if let Some(reason) = self.no_room(p, contrib) {
            return Err(reason);
        }
        let avoid = self.came_from(p);
        let mut search = Search { pod: p, contrib, source, avoid, rejected: Vec::new(), checked: 0 };
        let cached = self.placement.get(needs);
        let mut outcome = if cached.is_some_and(|a| a.count == 0) {
            Scan::NoPlacement
        } else {
            let steps = if cached.is_some() { usize::MAX } else { PLACEMENT_PROBE };
            self.scan(&mut search, 0, steps, cached)
        };
        if let Scan::Paused(pos) = outcome {
            // Many nodes refused it: learn once per cycle which eligible nodes its constraints allow.
            self.learn_placement(needs);
            let allowed = self.placement.get(needs);
            outcome = if allowed.is_none_or(|a| a.count == 0) {
                Scan::NoPlacement
            } else {
                self.scan(&mut search, pos, usize::MAX, allowed)
            };
        }
        let eligible = self.targets.len();
        let Search { rejected, checked, .. } = search;
        if checked >= PLACEMENT_PROBE && outcome == Scan::Exhausted {
            // A long search in vain: tighten the bounds so pods like this one fail at once.
            self.measure_room();
        }
        let mut reason = match outcome {
            Scan::Found(pos) => return Ok((pos, rejected)),
            Scan::NoPlacement => {
                let first = self.targets.iter().find(|r| r.node != source).map(|r| {
                    let facts = &self.snap.nodes[r.node as usize].facts;
                    fit::placement_misfits(needs.placement(), facts).first().map(|m| m.describe(&facts.name))
                });
                let mut reason = format!(
                    "no target node can take the pod: none of the {eligible} eligible nodes matches its nodeSelector, \
                     required node affinity and tolerations"
                );
                if let Some(Some(why)) = first {
                    reason.push_str(&format!(" (for example: {why})"));
                }
                reason
            }
            Scan::Exhausted | Scan::Paused(_) => {
                let mut reason =
                    format!("no target node can take the pod ({checked} of {eligible} eligible nodes checked");
                if checked < eligible {
                    reason.push_str(&format!(", the others are above the {}% limit already", num(self.limit)));
                }
                reason.push(')');
                for (i, (_, why)) in rejected.iter().take(REJECTIONS_QUOTED).enumerate() {
                    reason.push_str(if i == 0 { ": " } else { "; " });
                    reason.push_str(why);
                }
                reason
            }
        };
        reason.shrink_to_fit();
        if avoid.is_none() {
            // Only what holds for every pod of this constraint set is remembered.
            self.no_target.insert(needs, NoTarget { requests: p.requests, contrib, pod_key: p.key() });
        }
        Err(reason)
    }

    /// Walks `targets` from `from`, best first, for at most `steps` nodes;
    /// `allowed` replaces the placement check when known.
    fn scan(&self, search: &mut Search<'_>, from: usize, steps: usize, allowed: Option<&Allowed>) -> Scan {
        let (p, contrib, source) = (search.pod, search.contrib, search.source);
        let placement = p.needs.placement();
        for (k, r) in self.targets[from..].iter().enumerate() {
            if 100.0 - r.score > self.limit + 1e-9 {
                // Its projected load is at least its mean: this and every later node are over the limit.
                return Scan::Exhausted;
            }
            if k == steps {
                return Scan::Paused(from + k);
            }
            search.checked += 1;
            if r.node == source {
                continue;
            }
            if let Some((node, ago)) = search.avoid
                && node == r.node
            {
                if search.rejected.len() < REJECTED_TARGETS_KEPT {
                    let name = self.snap.nodes[r.node as usize].facts.name.clone();
                    let why = format!(
                        "the pod was moved away from {name} {ago} s ago; it does not go back within {} s (no ping-pong)",
                        self.cfg.cooldown_secs * RETURN_WINDOW_COOLDOWNS
                    );
                    search.rejected.push((name, why));
                }
                continue;
            }
            let t = &self.nodes[r.node as usize];
            let after = t.pcts_with(contrib);
            let facts = &self.snap.nodes[r.node as usize].facts;
            let ok = after[0] <= self.limit
                && after[1] <= self.limit
                && fit::has_room(&p.requests, &facts.allocatable, &t.requested)
                && allowed.map_or_else(|| fit::placement_allowed(placement, facts), |a| a.contains(r.node));
            if ok {
                return Scan::Found(from + k);
            }
            if search.rejected.len() < REJECTED_TARGETS_KEPT {
                search.rejected.push((facts.name.clone(), self.rejection(p, t, after, r.node)));
            }
        }
        Scan::Exhausted
    }

    /// Records which eligible targets `needs` allows (once per cycle).
    fn learn_placement(&mut self, needs: &'a Constraints) {
        let snap = self.snap;
        let targets = &self.targets;
        self.placement.entry(needs).or_insert_with(|| {
            let mut a = Allowed { bits: vec![0; snap.nodes.len().div_ceil(64)], count: 0 };
            for r in targets {
                if fit::placement_allowed(needs.placement(), &snap.nodes[r.node as usize].facts) {
                    a.bits[r.node as usize / 64] |= 1 << (r.node % 64);
                    a.count += 1;
                }
            }
            a
        });
    }

    /// Why `node` cannot take the pod, as one sentence.
    fn rejection(&self, p: &PodView, t: &NodeState, after: [f64; 2], node: u32) -> String {
        let facts = &self.snap.nodes[node as usize].facts;
        let name = &facts.name;
        let mut problems = fit::insufficient(&p.requests, &facts.allocatable, &t.requested);
        problems.extend(fit::placement_misfits(p.needs.placement(), facts));
        if let Some(first) = problems.first() {
            return first.describe(name);
        }
        format!(
            "target node {name} would be at {:.1}% CPU / {:.1}% memory after the move, above the {}% limit \
             (threshold {}% − hysteresis {})",
            after[0],
            after[1],
            num(self.limit),
            num(self.cfg.threshold_pct),
            num(self.cfg.hysteresis_pct)
        )
    }

    fn commit(&mut self, source: u32, p: &'a PodView, cand: &Cand, pos: usize, rejected: Vec<(String, String)>) {
        let ranked = self.targets[pos];
        let target = ranked.node;
        let before = self.nodes[source as usize].pcts();
        {
            let s = &mut self.nodes[source as usize];
            s.load = [s.load[0].saturating_sub(cand.contrib[0]), s.load[1].saturating_sub(cand.contrib[1])];
            s.requested = minus(s.requested, p.requests);
        }
        {
            let t = &mut self.nodes[target as usize];
            t.load = [t.load[0].saturating_add(cand.contrib[0]), t.load[1].saturating_add(cand.contrib[1])];
            t.requested = t.requested + p.requests;
            t.received = true;
        }
        // Keep the targets sorted: the target's score went down, so it moves towards the end.
        let entry = Ranked { score: self.nodes[target as usize].score(), node: target };
        let k = self.targets[pos + 1..].partition_point(|e| self.before(e, &entry) == Ordering::Less);
        self.targets[pos..=pos + k].rotate_left(1);
        self.targets[pos + k] = entry;

        self.budget -= 1;
        if cand.strategy == Strategy::Evict {
            let owner = p.owner_name.as_deref().unwrap_or_default();
            *self.evictions.entry((&*p.namespace, p.owner, owner)).or_insert(0) += 1;
        }
        let source_after = self.nodes[source as usize].pcts();
        let target_after = self.nodes[target as usize].pcts();
        let decision = male::decide(&PolicyInput {
            criticality: cand.class,
            automatic: true,
            strategy: Some(cand.strategy),
            keeps_replica: p.ready_siblings > 0,
            checkpoint: false,
        });
        let basis = self.basis.as_str();
        let reason = format!(
            "node {} is at {:.1}% CPU / {:.1}% memory ({basis} basis, threshold {}%); moving {} CPU, {} memory by \
             {} brings it to {:.1}% / {:.1}%; {}",
            self.name(source),
            before[0],
            before[1],
            num(self.cfg.threshold_pct),
            format_cpu(cand.contrib[0]),
            format_bytes(cand.contrib[1]),
            cand.strategy,
            source_after[0],
            source_after[1],
            decision.reason
        );
        self.plan.moves.push(Move {
            namespace: p.namespace.to_string(),
            pod: p.name.to_string(),
            source: self.name(source).to_string(),
            target: self.name(target).to_string(),
            criticality: cand.class,
            strategy: cand.strategy,
            reason,
            score: ranked.score,
            source_after: (source_after[0], source_after[1]),
            target_after: (target_after[0], target_after[1]),
            rejected_targets: rejected,
        });
    }
}

fn minus(a: Resources, b: Resources) -> Resources {
    Resources {
        cpu_m: a.cpu_m.saturating_sub(b.cpu_m),
        mem_b: a.mem_b.saturating_sub(b.mem_b),
        pods: a.pods.saturating_sub(b.pods),
    }
}

/// How much a pod's move disturbs beyond the pod itself: 0 for a pod no
/// PodDisruptionBudget covers, 1 for one whose move uses up budget headroom.
fn disruption(p: &PodView) -> u8 {
    u8::from(p.disruptions_allowed.is_some())
}

/// A stable, name-independent order among otherwise equal candidates (FNV-1a of
/// `namespace/name`): the same input plans the same move, but no pod is chosen
/// every time just for sorting first.
fn tie_break(p: &PodView) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in p.namespace.bytes().chain(std::iter::once(b'/')).chain(p.name.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// `a` needs at least as much as `b` on every resource.
fn covers(a: &Resources, b: &Resources) -> bool {
    a.cpu_m >= b.cpu_m && a.mem_b >= b.mem_b && a.pods >= b.pods
}

/// A configured percentage for a sentence: `85`, `72.5`, `86.36`.
fn num(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// "a, b, c and 7 more".
fn abbreviate(names: &[&str]) -> String {
    const SHOWN: usize = 5;
    let mut s = names.iter().take(SHOWN).copied().collect::<Vec<_>>().join(", ");
    if names.len() > SHOWN {
        s.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    s
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::fit::{NodeFacts, Taint, Toleration};
    use crate::male::Male;
    use crate::snapshot::{Constraints, NodeView, Usage};

    const GI: u64 = 1 << 30;
    const MI: u64 = 1 << 20;

    fn node(name: &str, cpu_m: u64) -> NodeView {
        NodeView {
            facts: NodeFacts {
                name: name.into(),
                labels: [("kubernetes.io/hostname".to_string(), name.to_string())].into(),
                ready: true,
                allocatable: Resources { cpu_m, mem_b: 16 * GI, pods: 110 },
                ..NodeFacts::default()
            },
            ..NodeView::default()
        }
    }

    fn pod(name: &str, node: u32, cpu_m: u64) -> PodView {
        PodView {
            namespace: "default".into(),
            name: name.into(),
            node: Some(node),
            phase: Phase::Running,
            requests: Resources { cpu_m, mem_b: 100 * MI, pods: 1 },
            owner: OwnerKind::ReplicaSet,
            owner_name: Some(format!("{name}-rs").into()),
            ready_siblings: 1,
            ..PodView::default()
        }
    }

    fn snap(nodes: Vec<NodeView>, pods: Vec<PodView>) -> Snapshot {
        let mut s = Snapshot { nodes, pods, metrics_available: false };
        s.recompute_requested();
        s
    }

    fn cfg() -> PlanConfig {
        PlanConfig { basis: Basis::Requests, max_concurrent: 100, ..PlanConfig::default() }
    }

    fn male(a: f32, l: f32) -> Male {
        Male { accuracy: Some(a), latency: Some(l), ..Male::default() }
    }

    /// w1 at 90% CPU (requests) with pods of 300m, 200m, 100m ×4; w2, w3 empty.
    fn busy() -> Snapshot {
        let mut pods = vec![pod("big", 0, 300), pod("mid", 0, 200)];
        pods.extend((0..4).map(|i| pod(&format!("small-{i}"), 0, 100)));
        pods.push(pod("filler", 0, 0));
        pods[6].requests.cpu_m = 3600 - 900;
        pods[6].excluded = true;
        snap(vec![node("w1", 4000), node("w2", 4000), node("w3", 4000)], pods)
    }

    fn skip_reason<'p>(plan: &'p Plan, pod: &str) -> &'p str {
        plan.skipped.iter().find(|s| s.pod == pod).map_or("<not skipped>", |s| s.reason.as_str())
    }

    #[test]
    fn pressure_is_strictly_above_the_threshold() {
        // 3400m of 4000m = 85% exactly: not pressured. 3401m: pressured.
        let s = snap(vec![node("w1", 4000), node("w2", 4000)], vec![pod("a", 0, 3400)]);
        let p = plan(&s, &cfg(), &PlanState::default());
        assert_eq!(p.nodes[0].cpu_pct, 85.0);
        assert!(!p.nodes[0].pressured && p.moves.is_empty() && p.skipped.is_empty());
        let s = snap(vec![node("w1", 4000), node("w2", 4000)], vec![pod("a", 0, 3401)]);
        let p = plan(&s, &cfg(), &PlanState::default());
        assert!(p.nodes[0].pressured);
        // Memory alone is enough.
        let mut big_mem = pod("m", 0, 10);
        big_mem.requests.mem_b = 15 * GI;
        let s = snap(vec![node("w1", 4000), node("w2", 4000)], vec![big_mem]);
        let p = plan(&s, &cfg(), &PlanState::default());
        assert!(p.nodes[0].pressured && p.nodes[0].mem_pct > 85.0 && p.nodes[0].cpu_pct < 1.0);
    }

    #[test]
    fn basis_auto_follows_metrics_and_usage_falls_back_per_node() {
        let mut s = snap(vec![node("w1", 4000), node("w2", 4000)], vec![pod("a", 0, 1000)]);
        s.nodes[0].usage = Some(Usage { cpu_m: 3800, mem_b: GI });
        s.nodes[1].usage = None;
        let auto = PlanConfig { basis: Basis::Auto, ..cfg() };
        let p = plan(&s, &auto, &PlanState::default());
        assert_eq!(p.basis_used, BasisUsed::Requests);
        assert!(p.notes[0].contains("metrics.k8s.io unavailable"), "{:?}", p.notes);
        assert!(!p.nodes[0].pressured, "requests are 25%");

        s.metrics_available = true;
        let p = plan(&s, &auto, &PlanState::default());
        assert_eq!(p.basis_used, BasisUsed::Usage);
        assert!(p.notes[0].contains("measured usage"), "{:?}", p.notes);
        assert_eq!(p.nodes[0].cpu_pct, 95.0);
        assert!(p.nodes[0].pressured);
        assert!(p.notes.iter().any(|n| n.contains("1 node(s) have no usage")), "{:?}", p.notes);
        // The pod has no usage: its requests are what moves.
        assert_eq!(p.moves.len(), 1);
        assert_eq!(p.moves[0].source_after.0, 70.0);

        let explicit = PlanConfig { basis: Basis::Usage, ..cfg() };
        let p = plan(&s, &explicit, &PlanState::default());
        assert!(!p.notes.iter().any(|n| n.contains("auto")));
    }

    #[test]
    fn control_plane_nodes_are_neither_reported_nor_used() {
        let mut s = busy();
        s.nodes[1].control_plane = true;
        s.nodes[2].control_plane = true;
        let p = plan(&s, &cfg(), &PlanState::default());
        assert_eq!(p.nodes.len(), 1);
        assert!(p.moves.is_empty());
        assert!(p.notes.iter().any(|n| n.contains("no eligible target node")), "{:?}", p.notes);
        assert!(skip_reason(&p, "big").starts_with("no eligible target node"), "{:?}", p.skipped);
    }

    #[test]
    fn every_exclusion_has_its_reason() {
        let mut pods = vec![pod("hog", 0, 3500)];
        pods[0].excluded = true;
        let mut add = |name: &str, f: &dyn Fn(&mut PodView)| {
            let mut p = pod(name, 0, 10);
            f(&mut p);
            pods.push(p);
        };
        add("sys", &|p| p.namespace = "kube-system".into());
        add("ds", &|p| {
            p.owner = OwnerKind::DaemonSet;
            p.owner_name = Some("agent".into());
        });
        add("mirror", &|p| p.mirror = true);
        add("terminating", &|p| p.terminating = true);
        add("unknown", &|p| p.phase = Phase::Unknown);
        add("done", &|p| p.phase = Phase::Succeeded);
        add("busy", &|_| {});
        add("recent", &|_| {});
        add("old", &|_| {});
        add("safety", &|p| p.male = male(0.0, 0.95));
        add("mission-bare", &|p| {
            p.male = male(0.55, 0.2);
            p.owner = OwnerKind::None;
            p.owner_name = None;
            p.ready_siblings = 0;
        });
        add("mission-rs", &|p| {
            p.male = male(0.55, 0.2);
            p.ready_siblings = 0;
        });
        add("pdb", &|p| {
            p.owner = OwnerKind::StatefulSet;
            p.disruptions_allowed = Some(0);
        });
        add("pdb-rs", &|p| p.disruptions_allowed = Some(0));
        let s = snap(vec![node("w1", 4000), node("w2", 4000)], pods);
        let state = PlanState {
            now_secs: 1000,
            last_moved: [("default/recent".to_string(), 900), ("default/old".to_string(), 100)].into(),
            active_pods: ["default/busy".to_string()].into(),
            active_jobs: 0,
            in_flight: Vec::new(),
            came_from: HashMap::new(),
        };
        let cfg = PlanConfig { max_per_node: 0, ..cfg() };
        let p = plan(&s, &cfg, &state);
        assert!(p.moves.is_empty());
        let r = |name| skip_reason(&p, name);
        assert_eq!(r("hog"), "pod is annotated sdi-migration/exclude=\"true\"");
        assert_eq!(r("sys"), "namespace kube-system is excluded from rebalancing");
        assert!(r("ds").contains("DaemonSet agent") && r("ds").contains("one pod per node"), "{}", r("ds"));
        assert!(r("mirror").contains("static pod"), "{}", r("mirror"));
        assert_eq!(r("terminating"), "pod is terminating");
        assert!(r("unknown").contains("Unknown"));
        assert_eq!(r("done"), "<not skipped>", "finished pods are ignored silently");
        assert_eq!(r("busy"), "a migration job is already running for this pod");
        assert_eq!(r("recent"), "pod was moved 100 s ago; MIGRATION_COOLDOWN is 600 s, it can move again in 500 s");
        assert_eq!(r("old"), "<not skipped>", "cooldown is over");
        assert!(r("safety").contains("class C (safety-critical)") && r("safety").contains("never moved automatically"));
        assert!(r("mission-bare").contains("class B (mission-critical)"), "{}", r("mission-bare"));
        assert_eq!(r("mission-rs"), "<not skipped>", "a ReplicaSet pod moves by surge and keeps a replica");
        assert_eq!(r("pdb"), "PodDisruptionBudget allows no disruption now");
        assert_eq!(r("pdb-rs"), "<not skipped>", "surge does not evict");
        assert!(p.notes.iter().any(|n| n.contains("MAX_MIGRATIONS_PER_NODE (0)")), "{:?}", p.notes);
        assert_eq!(p.skipped.len(), 11, "{:#?}", p.skipped);
        assert!(p.skipped.iter().all(|s| s.node == "w1" && s.namespace != "x"));
    }

    #[test]
    fn stops_once_relieved_moving_the_smallest_sufficient_pod() {
        // w1 at 90%: 200m (5 points) is enough and smaller than 300m.
        let p = plan(&busy(), &cfg(), &PlanState::default());
        assert_eq!(p.moves.len(), 1, "{:#?}", p.moves);
        let m = &p.moves[0];
        assert_eq!((m.pod.as_str(), m.source.as_str(), m.target.as_str()), ("mid", "w1", "w2"));
        assert_eq!(m.source_after.0, 85.0);
        assert_eq!(m.target_after.0, 5.0);
        assert_eq!(m.score, 100.0, "w2 and w3 are empty; w2 wins the tie by name");
        assert!(m.reason.contains("node w1 is at 90.0% CPU") && m.reason.contains("class A"), "{}", m.reason);
        assert_eq!(m.strategy, Strategy::Surge);
        assert!(m.rejected_targets.is_empty());
    }

    #[test]
    fn largest_relief_first_when_no_single_pod_is_enough() {
        // w1 at 96%: needs 440m off; 300m gives the largest relief, then 200m is enough.
        let mut s = busy();
        s.pods[6].requests.cpu_m += 240;
        s.recompute_requested();
        let p = plan(&s, &cfg(), &PlanState::default());
        let moved: Vec<&str> = p.moves.iter().map(|m| m.pod.as_str()).collect();
        assert_eq!(moved, ["big", "mid"]);
        // Targets: w2 first (tie on score, by name), then w3 scores higher.
        let targets: Vec<&str> = p.moves.iter().map(|m| m.target.as_str()).collect();
        assert_eq!(targets, ["w2", "w3"]);
        assert!(p.moves[1].source_after.0 <= 85.0);
    }

    #[test]
    fn least_critical_first() {
        let mut s = busy();
        s.pods[1].male = male(0.55, 0.2); // "mid" is class B
        let p = plan(&s, &cfg(), &PlanState::default());
        assert_eq!(p.moves[0].pod, "big", "A before B even when B would be the smaller sufficient move");
        assert_eq!(p.moves[0].criticality, Criticality::A);
    }

    #[test]
    fn ties_break_by_priority_then_a_stable_order_that_is_not_the_name() {
        let mut pods: Vec<PodView> = ["b", "a", "c"].iter().map(|n| pod(n, 0, 200)).collect();
        let mut filler = pod("filler", 0, 3000);
        filler.excluded = true;
        pods.push(filler);
        pods[0].priority = -5;
        let s = snap(vec![node("w1", 4000), node("w2", 4000)], pods);
        let p = plan(&s, &cfg(), &PlanState::default());
        assert_eq!(p.moves[0].pod, "b", "lowest priority first");
        let mut s2 = s.clone();
        s2.pods[0].priority = 0;
        let p = plan(&s2, &cfg(), &PlanState::default());
        let first = s2.pods[..3].iter().min_by_key(|p| tie_break(p)).unwrap();
        assert_eq!(p.moves[0].pod, &*first.name, "then the stable tie-break");
        assert_eq!(plan(&s2, &cfg(), &PlanState::default()), p, "the same input, the same plan");
        // Not alphabetical: over many equal pods, the first name is not always the first chosen.
        let names: Vec<String> = (0..20).map(|i| format!("pod-{i:02}")).collect();
        let firsts = (0..5)
            .filter(|k| {
                let mut pods: Vec<PodView> = names.iter().map(|n| pod(&format!("{n}-{k}"), 0, 200)).collect();
                let mut filler = pod("filler", 0, 3300);
                filler.excluded = true;
                pods.push(filler);
                let p = plan(&snap(vec![node("w1", 4000), node("w2", 4000)], pods), &cfg(), &PlanState::default());
                p.moves[0].pod == format!("pod-00-{k}")
            })
            .count();
        assert!(firsts < 5, "the alphabetically first pod is not always chosen");
    }

    #[test]
    fn an_uncovered_pod_moves_before_one_a_budget_covers() {
        let mut covered = pod("a-covered", 0, 500);
        covered.disruptions_allowed = Some(1);
        let uncovered = pod("z-uncovered", 0, 500);
        let mut filler = pod("filler", 0, 2900);
        filler.excluded = true;
        let s = snap(vec![node("w1", 4000), node("w2", 4000)], vec![covered, uncovered, filler]);
        let p = plan(&s, &cfg(), &PlanState::default());
        assert_eq!(p.moves.len(), 1, "{p:#?}");
        assert_eq!(p.moves[0].pod, "z-uncovered", "relieving equally, the pod without a budget goes");
    }

    #[test]
    fn moves_under_way_are_planned_for() {
        // w1 at 95%; a move of 500m (12.5 points) is under way to w2: w1 is projected at 82.5%.
        let pods = vec![pod("moving", 0, 500), pod("a", 0, 1000), pod("b", 0, 1000), pod("c", 0, 1300)];
        let s = snap(vec![node("w1", 4000), node("w2", 4000)], pods);
        let moving = InFlight { original: Some(0), replacement: None, source: "w1".into(), target: "w2".into() };
        let state = PlanState { in_flight: vec![moving.clone()], ..PlanState::default() };
        let p = plan(&s, &cfg(), &state);
        assert!(p.moves.is_empty(), "{p:#?}");
        assert!(!p.nodes[0].pressured && (p.nodes[0].cpu_pct - 82.5).abs() < 1e-9, "{:?}", p.nodes[0]);
        assert!((p.nodes[1].cpu_pct - 12.5).abs() < 1e-9, "the target counts it: {:?}", p.nodes[1]);
        // Without the projection the node is hot and another move is planned: the over-moving defect.
        assert_eq!(plan(&s, &cfg(), &PlanState::default()).moves.len(), 1);

        // The copy exists on the target: counted there once, not twice.
        let mut pods = s.pods.clone();
        pods.push(pod("moving-copy", 1, 500));
        let s2 = snap(s.nodes.clone(), pods);
        let state =
            PlanState { in_flight: vec![InFlight { replacement: Some(4), ..moving.clone() }], ..PlanState::default() };
        let p = plan(&s2, &cfg(), &state);
        assert!((p.nodes[1].cpu_pct - 12.5).abs() < 1e-9, "{:?}", p.nodes[1]);
        assert!((p.nodes[0].cpu_pct - 82.5).abs() < 1e-9, "{:?}", p.nodes[0]);

        // The original is terminating: it counts nowhere, with or without the job.
        let mut s3 = s2.clone();
        s3.pods[0].terminating = true;
        s3.recompute_requested();
        for state in [state.clone(), PlanState::default()] {
            let p = plan(&s3, &cfg(), &state);
            assert!((p.nodes[0].cpu_pct - 82.5).abs() < 1e-9, "{:?}", p.nodes[0]);
            assert!(p.moves.is_empty());
        }
    }

    #[test]
    fn a_moved_pod_does_not_go_back_where_it_came_from() {
        // w1 hot; "p" came from w2 (the best target) 100 s ago: it goes to w3 instead.
        let pods = vec![pod("p", 0, 1000), pod("x", 0, 2900), pod("y", 2, 1000)];
        let mut s = snap(vec![node("w1", 4000), node("w2", 4000), node("w3", 4000)], pods);
        s.pods[1].excluded = true;
        let state = PlanState {
            now_secs: 1000,
            came_from: [("default/p".to_string(), ("w2".to_string(), 900))].into(),
            ..PlanState::default()
        };
        let p = plan(&s, &cfg(), &state);
        assert_eq!(p.moves[0].target, "w3", "{p:#?}");
        assert!(p.moves[0].rejected_targets.iter().any(|(n, why)| n == "w2" && why.contains("no ping-pong")));
        // After three cooldowns it may.
        let later = PlanState { now_secs: 900 + 3 * 600, ..state };
        assert_eq!(plan(&s, &cfg(), &later).moves[0].target, "w2");
    }

    #[test]
    fn a_forced_strategy_is_planned_or_the_pod_skipped() {
        let mut pods = vec![pod("web", 0, 1000), pod("x", 0, 2900)];
        pods[1].excluded = true;
        let mut bare = pod("bare", 0, 100);
        bare.owner = OwnerKind::None;
        bare.owner_name = None;
        pods.push(bare);
        let s = snap(vec![node("w1", 4000), node("w2", 4000)], pods);
        let forced = PlanConfig { strategy: Some(Strategy::Evict), ..cfg() };
        let p = plan(&s, &forced, &PlanState::default());
        assert_eq!(p.moves.len(), 1, "{p:#?}");
        assert_eq!((p.moves[0].pod.as_str(), p.moves[0].strategy), ("web", Strategy::Evict));
        let skip = p.skipped.iter().find(|k| k.pod == "bare").unwrap();
        assert!(
            skip.reason.starts_with("MIGRATION_STRATEGY=evict: strategy evict cannot move this pod"),
            "{}",
            skip.reason
        );
        let pin = plan(&s, &PlanConfig { strategy: Some(Strategy::Pin), ..cfg() }, &PlanState::default());
        assert_eq!(pin.moves[0].strategy, Strategy::Pin);
    }

    #[test]
    fn per_node_and_cluster_limits() {
        // w1 at 100%: every 100m pod relieves 2.5 points; 3 per node at most.
        let mut pods: Vec<PodView> = (0..10).map(|i| pod(&format!("p{i}"), 0, 100)).collect();
        let mut filler = pod("filler", 0, 3000);
        filler.excluded = true;
        pods.push(filler);
        pods.extend((0..10).map(|i| pod(&format!("q{i}"), 1, 100)));
        let mut filler = pod("filler2", 1, 3000);
        filler.excluded = true;
        pods.push(filler);
        let nodes = vec![node("w1", 4000), node("w2", 4000), node("w3", 4000), node("w4", 4000)];
        let s = snap(nodes, pods);
        let p = plan(&s, &cfg(), &PlanState::default());
        assert_eq!(p.moves.len(), 6);
        assert_eq!(p.moves.iter().filter(|m| m.source == "w1").count(), 3);
        assert!(p.notes.iter().filter(|n| n.contains("MAX_MIGRATIONS_PER_NODE (3) reached")).count() == 2);

        let state = PlanState { active_jobs: 4, ..PlanState::default() };
        let p = plan(&s, &PlanConfig { max_concurrent: 5, ..cfg() }, &state);
        assert_eq!(p.moves.len(), 1);
        assert!(p.notes.iter().any(|n| n.contains("cluster-wide limit")), "{:?}", p.notes);
        let state = PlanState { active_jobs: 9, ..PlanState::default() };
        let p = plan(&s, &PlanConfig { max_concurrent: 5, ..cfg() }, &state);
        assert!(p.moves.is_empty());
        assert!(p.notes.iter().any(|n| n.contains("2 pressured node(s) not processed")), "{:?}", p.notes);
    }

    #[test]
    fn targets_stay_below_threshold_minus_hysteresis_and_rejections_are_explained() {
        let mut s = busy();
        // w2 at 60%: +200m = 65% ≤ 75 is fine, but make w2 70%: 75% is the limit exactly.
        let mut load = pod("w2-load", 1, 2800);
        load.excluded = true;
        s.pods.push(load);
        // w3 cordoned; w4 needs a toleration; w5 lacks the selector's label.
        let mut w3 = node("w3", 4000);
        w3.facts.unschedulable = true;
        s.nodes[2] = w3;
        let mut w4 = node("w4", 8000);
        w4.facts.taints.push(Taint { key: "gpu".into(), value: "yes".into(), effect: "NoSchedule".into() });
        s.nodes.push(w4);
        s.nodes.push(node("w5", 8000));
        s.nodes.push(node("w6", 400));
        s.recompute_requested();
        let p = plan(&s, &cfg(), &PlanState::default());
        let m = &p.moves[0];
        assert_eq!(m.pod, "mid");
        // w4 (tainted) and w5 score 100; w4 is rejected, w5 wins by name after it.
        assert_eq!(m.target, "w5");
        assert_eq!(m.rejected_targets.len(), 1, "{:?}", m.rejected_targets);
        assert_eq!(m.rejected_targets[0].0, "w4");
        assert!(m.rejected_targets[0].1.contains("taint gpu=yes:NoSchedule"), "{:?}", m.rejected_targets);

        // With a toleration and a selector only w2 and w4 are possible: w4 wins.
        let mut c = Constraints::default();
        c.tolerations.push(Toleration {
            key: "gpu".into(),
            operator: "Exists".into(),
            value: String::new(),
            effect: String::new(),
        });
        let mut s2 = s.clone();
        s2.pods[1].needs = Arc::new(c);
        let p = plan(&s2, &cfg(), &PlanState::default());
        assert_eq!(p.moves[0].target, "w4");

        // Only w2 (70%): 200m more is 75% = the limit, allowed; 240m is not.
        let mut c = Constraints::default();
        c.node_selector.insert("kubernetes.io/hostname".into(), "w2".into());
        let mut s3 = s.clone();
        let c = Arc::new(c);
        s3.pods[1].needs = c.clone();
        let p = plan(&s3, &cfg(), &PlanState::default());
        assert_eq!(p.moves[0].pod, "mid");
        assert_eq!((p.moves[0].target.as_str(), p.moves[0].target_after.0), ("w2", 75.0));
        s3.pods[1].requests.cpu_m = 240;
        s3.pods[0].needs = c;
        s3.recompute_requested();
        let p = plan(&s3, &cfg(), &PlanState::default());
        let r = skip_reason(&p, "mid");
        assert!(r.starts_with("no target node can take the pod (4 of 4 eligible nodes checked): "), "{r}");
        assert!(
            r.contains("target node w4 has label kubernetes.io/hostname=w4 but the pod's nodeSelector wants"),
            "{r}"
        );
        // Without the selector: no node has 240m below the limit (w2 has 200m), so it is refused at once.
        s3.pods[1].needs = Arc::new(Constraints::default());
        s3.nodes.truncate(3);
        s3.pods[0].excluded = true;
        let p2 = plan(&s3, &cfg(), &PlanState::default());
        assert_eq!(
            skip_reason(&p2, "mid"),
            "no target node can take the pod: it adds 240m CPU and no eligible node has more than 200m below the 75% \
             limit"
        );
        // Uncordon w3 at 40% CPU / 60% memory: w2 scores higher but would cross the limit.
        s3.nodes[2].facts.unschedulable = false;
        let mut w3_load = pod("w3-load", 2, 1600);
        w3_load.requests.mem_b = 16 * GI * 6 / 10;
        w3_load.excluded = true;
        s3.pods.push(w3_load);
        s3.recompute_requested();
        let p3 = plan(&s3, &cfg(), &PlanState::default());
        assert_eq!(p3.moves.len(), 1, "{:#?}", p3);
        assert_eq!(p3.moves[0].target, "w3");
        assert_eq!(
            p3.moves[0].rejected_targets,
            [(
                "w2".to_string(),
                "target node w2 would be at 76.0% CPU / 1.2% memory after the move, above the 75% limit (threshold \
                 85% − hysteresis 10)"
                    .to_string()
            )]
        );
        // "big" shares the constraint set and needs more: it is not searched again.
        assert!(skip_reason(&p, "big").contains("default/mid has the same constraints"), "{:?}", p.skipped);
    }

    #[test]
    fn a_target_may_land_exactly_on_the_limit() {
        // w2 at 70% CPU: +200m is 75% = threshold − hysteresis, allowed; +201m is not.
        for (cpu_m, moves) in [(200, 1), (201, 0)] {
            let mut filler = pod("filler", 0, 3600 - cpu_m);
            filler.excluded = true;
            let mut load = pod("load", 1, 2800);
            load.excluded = true;
            let s = snap(vec![node("w1", 4000), node("w2", 4000)], vec![filler, load, pod("mover", 0, cpu_m)]);
            let p = plan(&s, &cfg(), &PlanState::default());
            assert_eq!(p.moves.len(), moves, "{cpu_m}m: {:#?}", p);
            if moves == 1 {
                assert_eq!(p.moves[0].target_after.0, 75.0);
            } else {
                assert!(skip_reason(&p, "mover").starts_with("no target node can take the pod"), "{:?}", p.skipped);
            }
        }
    }

    #[test]
    fn targets_fill_up_and_re_rank() {
        // Two pressured nodes; one target can take only one of their pods within the limit.
        let mut pods = Vec::new();
        for (n, name) in [(0u32, "a"), (1, "b")] {
            let mut f = pod(&format!("{name}-filler"), n, 2400);
            f.excluded = true;
            pods.push(f);
            pods.push(pod(&format!("{name}-mover"), n, 1200));
        }
        let mut t_load = pod("t-load", 2, 1000);
        t_load.excluded = true;
        pods.push(t_load);
        let s = snap(vec![node("s1", 4000), node("s2", 4000), node("t1", 4000), node("t2", 4000)], pods);
        let p = plan(&s, &cfg(), &PlanState::default());
        let got: Vec<(&str, &str)> = p.moves.iter().map(|m| (m.pod.as_str(), m.target.as_str())).collect();
        assert_eq!(got, [("a-mover", "t2"), ("b-mover", "t1")]);
        // t2 took 1200m (30%): its score dropped below t1's (25%), which then had 25% + 30% = 55%.
        assert_eq!(p.moves[1].target_after.0, 55.0);
        assert!(p.moves[0].score > p.moves[1].score);
    }

    #[test]
    fn pdb_allowance_and_b_siblings_are_consumed_within_the_cycle() {
        let mut pods = Vec::new();
        for (n, name) in [(0u32, "a"), (1, "b"), (2, "c")] {
            let mut f = pod(&format!("{name}-filler"), n, 3300);
            f.excluded = true;
            pods.push(f);
            let mut db = pod(&format!("db-{name}"), n, 300);
            db.owner = OwnerKind::StatefulSet;
            db.owner_name = Some("db".into());
            db.disruptions_allowed = Some(2);
            db.ready_siblings = 2;
            pods.push(db);
        }
        let nodes = vec![node("s1", 4000), node("s2", 4000), node("s3", 4000), node("t", 16000)];
        let s = snap(nodes, pods);
        let p = plan(&s, &cfg(), &PlanState::default());
        assert_eq!(p.moves.len(), 2);
        assert!(p.moves.iter().all(|m| m.strategy == Strategy::Evict));
        let r = skip_reason(&p, "db-c");
        assert!(r.contains("PodDisruptionBudget allows 2 disruption(s) now and this cycle already plans 2"), "{r}");

        let mut s = s;
        for p in &mut s.pods {
            if p.name.starts_with("db-") {
                p.disruptions_allowed = None;
                p.ready_siblings = 1;
                p.male = male(0.55, 0.2);
            }
        }
        let p = plan(&s, &cfg(), &PlanState::default());
        assert_eq!(p.moves.len(), 1, "{:#?}", p.moves);
        assert!(p.moves[0].reason.contains("another Ready replica"), "{}", p.moves[0].reason);
        let r = skip_reason(&p, "db-b");
        assert!(r.contains("class B") && r.contains("already being moved this cycle"), "{r}");
    }

    #[test]
    fn pods_that_relieve_nothing_are_not_moved() {
        // w1 over on memory only; the CPU-only pod would not help.
        let mut hog = pod("hog", 0, 10);
        hog.requests.mem_b = 14 * GI;
        hog.excluded = true;
        let mut cpu_only = pod("cpu-only", 0, 1000);
        cpu_only.requests.mem_b = 0;
        let s = snap(vec![node("w1", 4000), node("w2", 4000)], vec![hog, cpu_only]);
        let p = plan(&s, &cfg(), &PlanState::default());
        assert!(p.moves.is_empty());
        assert!(p.notes.iter().any(|n| n.contains("would not relieve")), "{:?}", p.notes);
    }

    #[test]
    fn usage_basis_moves_usage_and_falls_back_to_requests() {
        let mut s = busy();
        s.metrics_available = true;
        s.nodes[0].usage = Some(Usage { cpu_m: 3800, mem_b: GI });
        s.nodes[1].usage = Some(Usage { cpu_m: 400, mem_b: GI });
        s.nodes[2].usage = Some(Usage { cpu_m: 2000, mem_b: GI });
        s.pods[0].usage = Some(Usage { cpu_m: 600, mem_b: 50 * MI });
        s.pods[1].usage = Some(Usage { cpu_m: 50, mem_b: 50 * MI });
        let p = plan(&s, &PlanConfig { basis: Basis::Usage, ..cfg() }, &PlanState::default());
        // 95% → needs 400m: "big" uses 600m (sufficient, smallest sufficient: small-* have no usage → 100m each).
        assert_eq!(p.moves.len(), 1, "{:#?}", p.moves);
        assert_eq!(p.moves[0].pod, "big");
        assert_eq!(p.moves[0].source_after.0, 80.0);
        assert_eq!(p.moves[0].target, "w2");
        assert_eq!(p.moves[0].target_after.0, 25.0);
    }

    #[test]
    fn long_searches_learn_the_constraints_once() {
        // Two pressured sources and 40 empty targets t00..t39, all scoring 100 (order by name).
        let mut nodes = vec![node("s1", 4000), node("s2", 4000)];
        nodes.extend((0..40).map(|i| node(&format!("t{i:02}"), 4000)));
        let selector = |host: &str| {
            let mut c = Constraints::default();
            c.node_selector.insert("kubernetes.io/hostname".into(), host.into());
            Arc::new(c)
        };
        let mut pods = Vec::new();
        for (n, name) in [(0u32, "a"), (1, "b")] {
            let mut f = pod(&format!("{name}-filler"), n, 3400);
            f.excluded = true;
            pods.push(f);
            let mut m = pod(&format!("{name}-mover"), n, 200);
            // Equal constraints in distinct allocations: the cache compares values.
            m.needs = selector("t35");
            pods.push(m);
            let mut lost = pod(&format!("{name}-lost"), n, 100);
            lost.needs = selector("nowhere");
            pods.push(lost);
        }
        let s = snap(nodes, pods);
        let p = plan(&s, &cfg(), &PlanState::default());
        let got: Vec<(&str, &str)> = p.moves.iter().map(|m| (m.pod.as_str(), m.target.as_str())).collect();
        assert_eq!(got, [("a-mover", "t35"), ("b-mover", "t35")], "{:#?}", p.skipped);
        let rejected: Vec<&str> = p.moves[0].rejected_targets.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(rejected, ["t00", "t01", "t02", "t03", "t04"]);
        // The second search starts with the learned set and still reports the better-scored nodes.
        assert_eq!(p.moves[1].rejected_targets.len(), 5);
        assert!(p.moves[1].rejected_targets[0].1.contains("kubernetes.io/hostname=t35"), "{:?}", p.moves[1]);
        // After the mover, the pod that fits nowhere is tried (it would relieve the rest) and explained.
        let r = skip_reason(&p, "a-lost");
        assert!(r.contains("none of the 40 eligible nodes matches its nodeSelector"), "{r}");
        assert!(r.contains("for example: target node t00"), "{r}");
        assert!(skip_reason(&p, "b-lost").contains("default/a-lost has the same constraints"), "{:?}", p.skipped);
    }

    #[test]
    fn numbers_in_sentences() {
        assert_eq!(num(85.0), "85");
        assert_eq!(num(72.5), "72.5");
        assert_eq!(num(86.356), "86.36");
        assert_eq!(num(0.0), "0");
        assert_eq!(num(100.0), "100");
    }

    #[test]
    fn deterministic() {
        let mut s = busy();
        s.pods.extend((0..5).map(|i| pod(&format!("x{i}"), 1, 700)));
        s.recompute_requested();
        let a = plan(&s, &cfg(), &PlanState::default());
        let b = plan(&s.clone(), &cfg(), &PlanState::default());
        assert_eq!(a, b);
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["basis_used"], "requests");
        assert_eq!(json["moves"][0]["criticality"], "A");
        assert_eq!(json["moves"][0]["strategy"], "surge");
    }
}
