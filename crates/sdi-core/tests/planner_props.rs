//! Planner invariants over random small clusters (2–12 nodes, 0–60 pods, random
//! requests, usage, flags, constraints, MALE values and configuration).
//!
//! What is checked, for every generated case:
//!
//! 1. a move never targets its source, and its target is Ready, schedulable, not a
//!    control-plane node and was not pressured at the start of the cycle;
//! 2. its source was pressured, the pod is bound to it, and no pod moves twice;
//! 3. no target is overfilled: after all planned moves, its requests fit its
//!    allocatable (every resource the moved pods request), its projected CPU% and
//!    memory% on the active basis stay ≤ threshold − hysteresis, and the moved
//!    pods' nodeSelector, affinity and tolerations allow it;
//! 4. at most `max_per_node` moves per source and `max_concurrent − active_jobs` in all;
//! 5. class C pods are never moved, and excluded pods never either;
//! 6. deterministic: planning twice (and on a clone) gives the same plan;
//! 7. relief — what can be proved about a greedy planner: if a source is still
//!    projected above the threshold after the cycle and neither limit stopped it,
//!    then none of its remaining pods that is class A, movable (passes every
//!    exclusion, and is not one the planner would evict, whose PDB allowance
//!    depends on other moves), and would still relieve it, fits on any eligible
//!    target *in the final state*. Targets only fill up during a cycle, so such a
//!    pod would also have fitted when it was considered.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use proptest::prelude::*;
use sdi_core::fit::{self, NodeFacts, Requirement, Resources, Taint, Toleration};
use sdi_core::male::{self, Criticality, Male};
use sdi_core::planner::{Basis, BasisUsed, Plan, PlanConfig, PlanState, plan};
use sdi_core::snapshot::{Constraints, NodeView, OwnerKind, Phase, PodView, Snapshot, Usage};
use sdi_core::strategy::Strategy as MoveStrategy;

const MI: u64 = 1 << 20;
const GI: u64 = 1 << 30;

fn constraint_pool() -> Vec<Arc<Constraints>> {
    let zone = |z: &str| Constraints {
        node_selector: BTreeMap::from([("zone".to_string(), z.to_string())]),
        ..Constraints::default()
    };
    let tolerate = Constraints {
        tolerations: vec![Toleration {
            key: "dedicated".into(),
            operator: "Exists".into(),
            value: String::new(),
            effect: String::new(),
        }],
        ..Constraints::default()
    };
    let affinity = Constraints {
        affinity_terms: vec![vec![Requirement {
            key: "zone".into(),
            operator: "In".into(),
            values: vec!["a".into(), "c".into()],
            field: false,
        }]],
        ..Constraints::default()
    };
    [Constraints::default(), zone("a"), zone("b"), tolerate, affinity].into_iter().map(Arc::new).collect()
}

/// (accuracy, latency): A, A, B, B, C, C.
const MALE: [(f32, f32); 6] = [(0.2, 0.1), (0.4, 0.3), (0.55, 0.2), (0.3, 0.5), (0.6, 0.4), (0.0, 0.95)];

#[derive(Debug, Clone)]
struct NodeSpec {
    cpu_m: u64,
    mem_gi: u64,
    ready: bool,
    unschedulable: bool,
    control_plane: bool,
    zone: u8,
    tainted: bool,
    /// Measured usage = this percent of the requests on the node (None = no metrics for it).
    usage_pct: Option<u64>,
}

fn node_spec() -> impl Strategy<Value = NodeSpec> {
    (
        prop::sample::select(vec![1000u64, 2000, 4000, 8000]),
        prop::sample::select(vec![2u64, 4, 8, 16]),
        prop::bool::weighted(0.9),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
        0u8..3,
        prop::bool::weighted(0.15),
        prop::option::weighted(0.9, 40u64..140),
    )
        .prop_map(|(cpu_m, mem_gi, ready, unschedulable, control_plane, zone, tainted, usage_pct)| NodeSpec {
            cpu_m,
            mem_gi,
            ready,
            unschedulable,
            control_plane,
            zone,
            tainted,
            usage_pct,
        })
}

#[derive(Debug, Clone)]
struct PodSpec {
    node: Option<u8>,
    phase: u8,
    cpu_m: u64,
    mem_mi: u64,
    usage_pct: Option<u64>,
    owner: u8,
    owner_name: u8,
    namespace: u8,
    flags: u8,
    male: u8,
    priority: i32,
    ready_siblings: u16,
    pdb: Option<u32>,
    constraints: u8,
}

fn pod_spec() -> impl Strategy<Value = PodSpec> {
    (
        (
            prop::option::weighted(0.95, any::<u8>()),
            0u8..10,
            0u64..2000,
            0u64..3000,
            prop::option::weighted(0.8, 0u64..200),
        ),
        (0u8..10, 0u8..3, 0u8..10, any::<u8>(), 0u8..6),
        (-10i32..10, 0u16..3, prop::option::weighted(0.3, 0u32..3), 0u8..5),
    )
        .prop_map(
            |(
                (node, phase, cpu_m, mem_mi, usage_pct),
                (owner, owner_name, namespace, flags, male),
                (priority, ready_siblings, pdb, constraints),
            )| PodSpec {
                node,
                phase,
                cpu_m,
                mem_mi,
                usage_pct,
                owner,
                owner_name,
                namespace,
                flags,
                male,
                priority,
                ready_siblings,
                pdb,
                constraints,
            },
        )
}

#[derive(Debug, Clone)]
struct Case {
    snapshot: Snapshot,
    cfg: PlanConfig,
    state: PlanState,
}

fn build(nodes: &[NodeSpec], pods: &[PodSpec], metrics: bool, cfg: PlanConfig, state_seed: (u32, u64)) -> Case {
    let pool = constraint_pool();
    let namespaces: Vec<Arc<str>> = ["default", "web", "kube-system"].into_iter().map(Arc::from).collect();
    let owners: Vec<Arc<str>> = ["one", "two", "three"].into_iter().map(Arc::from).collect();
    let mut snap = Snapshot {
        nodes: nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let zone = ["a", "b", "c"][n.zone as usize];
                let mut labels = BTreeMap::from([("zone".to_string(), zone.to_string())]);
                if n.control_plane {
                    labels.insert("node-role.kubernetes.io/control-plane".into(), String::new());
                }
                NodeView {
                    facts: NodeFacts {
                        name: format!("n{i:02}"),
                        labels,
                        ready: n.ready,
                        unschedulable: n.unschedulable,
                        taints: if n.tainted {
                            vec![Taint { key: "dedicated".into(), value: "x".into(), effect: "NoSchedule".into() }]
                        } else {
                            vec![]
                        },
                        allocatable: Resources { cpu_m: n.cpu_m, mem_b: n.mem_gi * GI, pods: 20 },
                        requested: Resources::default(),
                    },
                    control_plane: n.control_plane,
                    usage: None,
                }
            })
            .collect(),
        pods: Vec::new(),
        metrics_available: metrics,
    };
    let n = nodes.len();
    for (i, p) in pods.iter().enumerate() {
        let owner = [
            OwnerKind::ReplicaSet,
            OwnerKind::ReplicaSet,
            OwnerKind::ReplicaSet,
            OwnerKind::ReplicaSet,
            OwnerKind::None,
            OwnerKind::None,
            OwnerKind::StatefulSet,
            OwnerKind::StatefulSet,
            OwnerKind::DaemonSet,
            OwnerKind::Other,
        ][p.owner as usize];
        let phase = [
            Phase::Running,
            Phase::Running,
            Phase::Running,
            Phase::Running,
            Phase::Running,
            Phase::Running,
            Phase::Pending,
            Phase::Succeeded,
            Phase::Failed,
            Phase::Unknown,
        ][p.phase as usize];
        let requests = Resources { cpu_m: p.cpu_m, mem_b: p.mem_mi * MI, pods: 1 };
        let (a, l) = MALE[p.male as usize];
        snap.pods.push(PodView {
            namespace: namespaces[[0, 0, 0, 0, 0, 1, 1, 1, 1, 2][p.namespace as usize]].clone(),
            name: format!("p{i:02}").into(),
            node: p.node.map(|k| u32::from(k) % n as u32),
            phase,
            requests,
            usage: p.usage_pct.map(|u| Usage { cpu_m: p.cpu_m * u / 100, mem_b: p.mem_mi * MI * u / 100 }),
            needs: pool[p.constraints as usize].clone(),
            owner,
            owner_name: (owner != OwnerKind::None).then(|| owners[p.owner_name as usize].clone()),
            mirror: p.flags & 0b111 == 1,
            excluded: p.flags & 0b111 == 2,
            terminating: p.flags & 0b111 == 3,
            male: Male { accuracy: Some(a), latency: Some(l), ..Male::default() },
            priority: p.priority,
            ready_siblings: p.ready_siblings,
            disruptions_allowed: p.pdb,
        });
    }
    snap.recompute_requested();
    if metrics {
        for (node, spec) in snap.nodes.iter_mut().zip(nodes) {
            node.usage = spec.usage_pct.map(|u| Usage {
                cpu_m: node.facts.requested.cpu_m * u / 100,
                mem_b: node.facts.requested.mem_b * u / 100,
            });
        }
    }
    // Some pods were moved recently, some have a job running.
    let (mask, now) = state_seed;
    let mut state = PlanState { now_secs: now, ..PlanState::default() };
    for (i, p) in snap.pods.iter().enumerate() {
        match (mask >> (i % 32)) & 0b11 {
            0 if i % 3 == 0 => {
                state.last_moved.insert(p.key(), now.saturating_sub((i as u64 * 97) % 1200));
            }
            1 if i % 5 == 0 => {
                state.active_pods.insert(p.key());
            }
            _ => {}
        }
    }
    state.active_jobs = mask % 4;
    Case { snapshot: snap, cfg, state }
}

fn config() -> impl Strategy<Value = (bool, PlanConfig)> {
    (
        any::<bool>(),
        prop::sample::select(vec![Basis::Usage, Basis::Requests, Basis::Auto]),
        40.0f64..95.0,
        0.0f64..25.0,
        0u32..5,
        0u32..12,
    )
        .prop_map(|(metrics, basis, threshold_pct, hysteresis_pct, max_per_node, max_concurrent)| {
            (
                metrics,
                PlanConfig {
                    threshold_pct,
                    hysteresis_pct,
                    basis,
                    max_per_node,
                    max_concurrent,
                    cooldown_secs: 600,
                    excluded_namespaces: vec!["kube-system".into()],
                    strategy: None,
                },
            )
        })
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(node_spec(), 2..=12),
        prop::collection::vec(pod_spec(), 0..=60),
        config(),
        (any::<u32>(), 1000u64..5000),
    )
        .prop_map(|(nodes, pods, (metrics, cfg), seed)| build(&nodes, &pods, metrics, cfg, seed))
}

fn pct(v: u64, alloc: u64) -> f64 {
    if alloc == 0 { if v == 0 { 0.0 } else { 100.0 } } else { v as f64 * 100.0 / alloc as f64 }
}

/// The test's own projection: per-node load on the active basis, and requests.
struct Projection {
    load: Vec<[u64; 2]>,
    requested: Vec<Resources>,
}

fn contrib(basis: BasisUsed, p: &PodView) -> [u64; 2] {
    match (basis, p.usage) {
        (BasisUsed::Usage, Some(u)) => [u.cpu_m, u.mem_b],
        _ => [p.requests.cpu_m, p.requests.mem_b],
    }
}

fn project(s: &Snapshot, basis: BasisUsed, moves: &[(usize, usize, usize)]) -> Projection {
    let mut load: Vec<[u64; 2]> = s
        .nodes
        .iter()
        .map(|n| match (basis, n.usage) {
            (BasisUsed::Usage, Some(u)) => [u.cpu_m, u.mem_b],
            _ => [n.facts.requested.cpu_m, n.facts.requested.mem_b],
        })
        .collect();
    let mut requested: Vec<Resources> = s.nodes.iter().map(|n| n.facts.requested).collect();
    let mut out: Vec<[u64; 2]> = vec![[0, 0]; s.nodes.len()];
    for &(pod, src, dst) in moves {
        let p = &s.pods[pod];
        let c = contrib(basis, p);
        out[src][0] += c[0];
        out[src][1] += c[1];
        load[dst][0] += c[0];
        load[dst][1] += c[1];
        requested[dst] = requested[dst] + p.requests;
        let r = &mut requested[src];
        r.cpu_m = r.cpu_m.saturating_sub(p.requests.cpu_m);
        r.mem_b = r.mem_b.saturating_sub(p.requests.mem_b);
        r.pods = r.pods.saturating_sub(1);
    }
    for (l, o) in load.iter_mut().zip(&out) {
        l[0] = l[0].saturating_sub(o[0]);
        l[1] = l[1].saturating_sub(o[1]);
    }
    Projection { load, requested }
}

fn pcts(s: &Snapshot, proj: &Projection, i: usize, add: [u64; 2]) -> [f64; 2] {
    let a = s.nodes[i].facts.allocatable;
    [pct(proj.load[i][0] + add[0], a.cpu_m), pct(proj.load[i][1] + add[1], a.mem_b)]
}

/// Exclusions the planner applies before any policy.
fn statically_excluded(p: &PodView, case: &Case) -> bool {
    let key = p.key();
    !matches!(p.phase, Phase::Running | Phase::Pending)
        || case.cfg.excluded_namespaces.iter().any(|ns| **ns == *p.namespace)
        || p.owner == OwnerKind::DaemonSet
        || p.mirror
        || p.excluded
        || p.terminating
        || case.state.active_pods.contains(&key)
        || case
            .state
            .last_moved
            .get(&key)
            .is_some_and(|&at| case.state.now_secs.saturating_sub(at) < case.cfg.cooldown_secs)
}

fn check(case: &Case, plan: &Plan) -> Result<(), TestCaseError> {
    let s = &case.snapshot;
    let cfg = &case.cfg;
    let index: HashMap<&str, usize> = s.nodes.iter().enumerate().map(|(i, n)| (n.facts.name.as_str(), i)).collect();
    let pressured: HashSet<&str> = plan.nodes.iter().filter(|n| n.pressured).map(|n| n.name.as_str()).collect();
    let limit = cfg.threshold_pct - cfg.hysteresis_pct;
    let budget = cfg.max_concurrent.saturating_sub(case.state.active_jobs) as usize;
    prop_assert!(plan.moves.len() <= budget, "{} moves, budget {budget}", plan.moves.len());

    let mut moved = HashSet::new();
    let mut per_source: HashMap<&str, u32> = HashMap::new();
    let mut triples = Vec::new();
    for m in &plan.moves {
        prop_assert_ne!(&m.source, &m.target);
        prop_assert!(moved.insert((m.namespace.clone(), m.pod.clone())), "{} moved twice", m.pod);
        let pod = s.pods.iter().position(|p| *p.namespace == *m.namespace && *p.name == *m.pod);
        prop_assert!(pod.is_some());
        let pod = pod.unwrap_or_default();
        let p = &s.pods[pod];
        let (src, dst) = (index[m.source.as_str()], index[m.target.as_str()]);
        prop_assert_eq!(p.node, Some(src as u32));
        prop_assert!(pressured.contains(m.source.as_str()), "source {} was not pressured", m.source);
        prop_assert!(!pressured.contains(m.target.as_str()), "target {} was pressured", m.target);
        let t = &s.nodes[dst];
        prop_assert!(t.facts.ready && !t.facts.unschedulable && !t.control_plane, "bad target {}", m.target);
        prop_assert!(fit::placement_allowed(p.needs.placement(), &t.facts), "{} not allowed on {}", m.pod, m.target);
        prop_assert_ne!(m.criticality, Criticality::C);
        prop_assert_eq!(m.criticality, male::criticality(&p.male));
        prop_assert!(!statically_excluded(p, case), "excluded pod {} moved", m.pod);
        *per_source.entry(m.source.as_str()).or_default() += 1;
        triples.push((pod, src, dst));
    }
    for (src, n) in &per_source {
        prop_assert!(*n <= cfg.max_per_node, "{n} moves off {src}");
        prop_assert!(!plan.moves.iter().any(|m| m.target == *src), "{src} is a source and a target");
    }

    let proj = project(s, plan.basis_used, &triples);
    for &(pod, _, dst) in &triples {
        let facts = &s.nodes[dst].facts;
        let (req, alloc) = (proj.requested[dst], facts.allocatable);
        let moved_in = |f: fn(&Resources) -> u64| {
            triples.iter().filter(|t| t.2 == dst).map(|t| f(&s.pods[t.0].requests)).sum::<u64>()
        };
        for (name, get) in [
            ("cpu", (|r: &Resources| r.cpu_m) as fn(&Resources) -> u64),
            ("memory", |r: &Resources| r.mem_b),
            ("pods", |r: &Resources| r.pods),
        ] {
            prop_assert!(
                moved_in(get) == 0 || get(&req) <= get(&alloc),
                "{} overfilled on {name}: {} > {}",
                facts.name,
                get(&req),
                get(&alloc)
            );
        }
        let [c, m] = pcts(s, &proj, dst, [0, 0]);
        prop_assert!(c <= limit + 1e-9 && m <= limit + 1e-9, "{} at {c}%/{m}% > {limit}% ({pod})", facts.name);
    }

    // 7. Relief.
    let eligible: Vec<usize> = (0..s.nodes.len())
        .filter(|&i| {
            let n = &s.nodes[i];
            n.facts.ready && !n.facts.unschedulable && !n.control_plane && !pressured.contains(n.facts.name.as_str())
        })
        .collect();
    if plan.moves.len() >= budget {
        return Ok(());
    }
    for src_name in &pressured {
        let src = index[src_name];
        if per_source.get(src_name).copied().unwrap_or(0) >= cfg.max_per_node {
            continue;
        }
        let now = pcts(s, &proj, src, [0, 0]);
        if now[0] <= cfg.threshold_pct && now[1] <= cfg.threshold_pct {
            continue;
        }
        for (pi, p) in s.pods.iter().enumerate() {
            if p.node != Some(src as u32)
                || moved.contains(&(p.namespace.to_string(), p.name.to_string()))
                || statically_excluded(p, case)
                || male::criticality(&p.male) != Criticality::A
                || p.owner.auto_strategy() == Some(MoveStrategy::Evict)
            {
                continue;
            }
            let c = contrib(plan.basis_used, p);
            let alloc = s.nodes[src].facts.allocatable;
            let after = [
                pct(proj.load[src][0].saturating_sub(c[0]), alloc.cpu_m),
                pct(proj.load[src][1].saturating_sub(c[1]), alloc.mem_b),
            ];
            let relieves = (0..2).any(|d| now[d] > cfg.threshold_pct && after[d] < now[d]);
            if !relieves {
                continue;
            }
            for &t in &eligible {
                let facts = &s.nodes[t].facts;
                let [tc, tm] = pcts(s, &proj, t, c);
                let fits = tc <= limit
                    && tm <= limit
                    && fit::has_room(&p.requests, &facts.allocatable, &proj.requested[t])
                    && fit::placement_allowed(p.needs.placement(), facts);
                prop_assert!(
                    !fits,
                    "{src_name} stays pressured ({now:?}) but pod {} ({pi}) fits on {}; plan: {:#?}",
                    p.name,
                    facts.name,
                    plan
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn planner_invariants(case in case()) {
        let first = plan(&case.snapshot, &case.cfg, &case.state);
        check(&case, &first)?;
        let again = plan(&case.snapshot, &case.cfg, &case.state);
        prop_assert_eq!(&first, &again);
        let cloned = case.snapshot.clone();
        prop_assert_eq!(&first, &plan(&cloned, &case.cfg, &case.state));
    }

    /// Generous limits, so the relief property bites more often.
    #[test]
    fn planner_relieves_what_it_can(case in case().prop_map(|mut c| {
        c.cfg.max_per_node = 50;
        c.cfg.max_concurrent = 500;
        c
    })) {
        let first = plan(&case.snapshot, &case.cfg, &case.state);
        check(&case, &first)?;
    }
}

#[test]
fn generated_cases_exercise_the_planner() {
    // Not a property: a sanity check that the generator produces moves and skips at all.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut moves, mut skips, mut pressured) = (0, 0, 0);
    for _ in 0..200 {
        let Ok(tree) = case().new_tree(&mut runner) else { continue };
        let mut c = tree.current();
        c.cfg.max_concurrent = 100;
        c.cfg.max_per_node = 10;
        let p = plan(&c.snapshot, &c.cfg, &c.state);
        moves += p.moves.len();
        skips += p.skipped.len();
        pressured += p.nodes.iter().filter(|n| n.pressured).count();
    }
    assert!(moves > 50 && skips > 50 && pressured > 100, "moves {moves}, skips {skips}, pressured {pressured}");
}
