//! The maintained index equals a snapshot built from scratch, whatever order
//! the events come in: pods before or after their nodes, relabels, budgets
//! created, changed and deleted, nodes removed and re-added.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use proptest::prelude::*;
use sdi_core::fit::{NodeFacts, Resources};
use sdi_core::index::{Budget, Index, Labels, PodMeta, Selector};
use sdi_core::snapshot::{NodeView, Phase, PodView};

#[derive(Debug, Clone)]
struct Pod {
    ns: usize,
    name: usize,
    node: Option<usize>,
    owner: Option<usize>,
    ready: bool,
    finished: bool,
    terminating: bool,
    app: usize,
    cpu: u64,
}

#[derive(Debug, Clone)]
enum Op {
    Pod(Pod),
    RemovePod(usize, usize),
    Node(usize),
    RemoveNode(usize),
    /// namespace, name, selector (None, or app index; 2 = empty selector), allowed
    Budget(usize, usize, Option<usize>, u32),
    RemoveBudget(usize, usize),
    Settle,
}

const NS: [&str; 2] = ["a", "b"];
const APPS: [&str; 2] = ["x", "y"];

fn op() -> impl Strategy<Value = Op> {
    let pod = (
        0..2usize,
        0..8usize,
        proptest::option::of(0..4usize),
        proptest::option::of(0..3usize),
        any::<bool>(),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
        0..2usize,
        1..500u64,
    )
        .prop_map(|(ns, name, node, owner, ready, finished, terminating, app, cpu)| {
            Op::Pod(Pod { ns, name, node, owner, ready, finished, terminating, app, cpu })
        });
    prop_oneof![
        6 => pod,
        1 => (0..2usize, 0..8usize).prop_map(|(a, b)| Op::RemovePod(a, b)),
        2 => (0..4usize).prop_map(Op::Node),
        1 => (0..4usize).prop_map(Op::RemoveNode),
        2 => (0..2usize, 0..3usize, proptest::option::of(0..3usize), 0..3u32).prop_map(|(a, b, c, d)| Op::Budget(a, b, c, d)),
        1 => (0..2usize, 0..3usize).prop_map(|(a, b)| Op::RemoveBudget(a, b)),
        1 => Just(Op::Settle),
    ]
}

fn labels(app: usize, interned: &[Arc<Labels>; 2]) -> Arc<Labels> {
    interned[app].clone()
}

fn selector(sel: Option<usize>) -> Option<Selector> {
    sel.map(|a| Selector {
        match_labels: if a < 2 { [("app".to_string(), APPS[a].to_string())].into() } else { BTreeMap::new() },
        ..Default::default()
    })
}

fn check(
    ix: &mut Index,
    pods: &BTreeMap<(usize, usize), Pod>,
    nodes: &BTreeMap<usize, ()>,
    budgets: &BTreeMap<(usize, usize), (Option<usize>, u32)>,
) {
    ix.settle();
    let snap = ix.snapshot().clone();
    // Nodes and their requests.
    let mut want_nodes: Vec<String> = nodes.keys().map(|n| format!("n{n}")).collect();
    let mut got_nodes: Vec<String> = snap.nodes.iter().map(|n| n.facts.name.clone()).collect();
    want_nodes.sort();
    got_nodes.sort();
    assert_eq!(got_nodes, want_nodes);
    for n in &snap.nodes {
        let want: u64 = pods
            .values()
            .filter(|p| p.node.map(|i| format!("n{i}")).as_deref() == Some(n.facts.name.as_str()))
            .filter(|p| !p.finished && !p.terminating)
            .map(|p| p.cpu)
            .sum();
        assert_eq!(n.facts.requested.cpu_m, want, "requested on {}", n.facts.name);
    }
    assert_eq!(snap.pods.iter().filter(|p| !p.name.is_empty()).count(), pods.len());
    for p in pods.values() {
        let (v, _) = ix.pod(NS[p.ns], &format!("p{}", p.name)).unwrap();
        let node = v.node.map(|i| snap.nodes[i as usize].facts.name.clone());
        let want_node = p.node.filter(|n| nodes.contains_key(n)).map(|n| format!("n{n}"));
        assert_eq!(node, want_node, "node of {p:?}");
        let siblings = pods
            .values()
            .filter(|q| q.owner.is_some() && q.owner == p.owner && q.ready && !q.terminating)
            .filter(|q| (q.ns, q.name) != (p.ns, p.name))
            .count() as u16;
        assert_eq!(v.ready_siblings, if p.owner.is_some() { siblings } else { 0 }, "siblings of {p:?}");
        let allowed = budgets
            .iter()
            .filter(|((ns, _), (sel, _))| {
                *ns == p.ns
                    && selector(*sel).is_some_and(|s| s.matches(&[("app".to_string(), APPS[p.app].to_string())].into()))
            })
            .map(|(_, (_, a))| *a)
            .min();
        assert_eq!(v.disruptions_allowed, allowed, "budget of {p:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn the_index_matches_a_rebuild(ops in proptest::collection::vec(op(), 1..80)) {
        let interned = [
            Arc::new([("app".to_string(), "x".to_string())].into()),
            Arc::new([("app".to_string(), "y".to_string())].into()),
        ];
        let mut ix = Index::new();
        let mut pods: BTreeMap<(usize, usize), Pod> = BTreeMap::new();
        let mut nodes: BTreeMap<usize, ()> = BTreeMap::new();
        let mut budgets: BTreeMap<(usize, usize), (Option<usize>, u32)> = BTreeMap::new();
        let owners: HashMap<usize, Arc<str>> = (0..3).map(|o| (o, Arc::from(format!("uid-{o}")))).collect();
        for op in ops {
            match op {
                Op::Pod(p) => {
                    let view = PodView {
                        namespace: NS[p.ns].into(),
                        name: format!("p{}", p.name).into(),
                        phase: if p.finished { Phase::Succeeded } else { Phase::Running },
                        terminating: p.terminating,
                        requests: Resources { cpu_m: p.cpu, mem_b: 1, pods: 1 },
                        ..Default::default()
                    };
                    let meta = PodMeta {
                        node_name: p.node.map(|n| Arc::from(format!("n{n}"))),
                        owner_uid: p.owner.map(|o| owners[&o].clone()),
                        labels: labels(p.app, &interned),
                        ready: p.ready,
                        ..Default::default()
                    };
                    ix.upsert_pod(view, meta);
                    pods.insert((p.ns, p.name), p);
                }
                Op::RemovePod(ns, name) => {
                    ix.remove_pod(NS[ns], &format!("p{name}"));
                    pods.remove(&(ns, name));
                }
                Op::Node(n) => {
                    ix.upsert_node(NodeView { facts: NodeFacts { name: format!("n{n}"), ready: true, ..Default::default() }, ..Default::default() });
                    nodes.insert(n, ());
                }
                Op::RemoveNode(n) => {
                    ix.remove_node(&format!("n{n}"));
                    nodes.remove(&n);
                }
                Op::Budget(ns, name, sel, allowed) => {
                    ix.upsert_budget(NS[ns], &format!("b{name}"), Budget { selector: selector(sel), allowed });
                    budgets.insert((ns, name), (sel, allowed));
                }
                Op::RemoveBudget(ns, name) => {
                    ix.remove_budget(NS[ns], &format!("b{name}"));
                    budgets.remove(&(ns, name));
                }
                Op::Settle => check(&mut ix, &pods, &nodes, &budgets),
            }
        }
        check(&mut ix, &pods, &nodes, &budgets);
    }
}
