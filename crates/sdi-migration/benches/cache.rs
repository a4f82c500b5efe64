//! The rebalancer's cluster view at 150,000 pods on 5,000 nodes (2% of them
//! hot): memory per pod (target ≤ 1 KiB; anchor: a client-go informer holds
//! about 40 KiB per pod), and one rebalancer cycle from the watch-fed cache to
//! the plan — settling what changed since the last cycle, then planning on the
//! maintained snapshot in place (target ≤ 20 ms), against the plan alone.
//!
//!     cargo bench -p sdi-migration --bench cache      (PODS=N, default 150000)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use sdi_core::planner::{self, PlanConfig, PlanState};
use sdi_migration::cluster::cache::ClusterCache;
use serde_json::json;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    pages * 4096
}

const PER_NODE: usize = 30;

fn node(i: usize) -> Node {
    // Every 50th node is small: its 30 pods put it at 94% CPU requests.
    let cpu = if i.is_multiple_of(50) { "8" } else { "16" };
    serde_json::from_value(json!({
        "metadata": {"name": format!("node-{i:04}"), "labels": {"kubernetes.io/hostname": format!("node-{i:04}")}},
        "status": {"allocatable": {"cpu": cpu, "memory": "64Gi", "pods": "110"},
                   "conditions": [{"type": "Ready", "status": "True"}]}
    }))
    .unwrap()
}

/// A pod as a ReplicaSet of the generated benchmark cluster makes it (30 per node).
fn pod(i: usize, ready: bool) -> Pod {
    let deployment = i / 10;
    let node = i / PER_NODE;
    serde_json::from_value(json!({
        "metadata": {
            "name": format!("app-{deployment}-7c9f8d6b5-{i:05x}"),
            "namespace": format!("ns-{}", deployment % 50),
            "uid": format!("{:08x}-0000-4000-8000-{:012x}", i, i),
            "resourceVersion": "1",
            "labels": {"app": format!("app-{deployment}"), "pod-template-hash": "7c9f8d6b5",
                       "male.keti.dev/accuracy": "0.3", "male.keti.dev/latency": "0.2"},
            "annotations": {"sim.kube-sim.io/cpu": "200m ~10%"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("app-{deployment}-7c9f8d6b5"),
                                  "uid": format!("rs-{deployment}"), "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {
            "nodeName": format!("node-{node:04}"),
            "containers": [{"name": "app", "image": "registry.example.com/app:1.0",
                            "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
                            "ports": [{"containerPort": 8080}],
                            "env": [{"name": "MODE", "value": "production"}]}],
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
            "priority": 0
        },
        "status": {"phase": "Running", "podIP": "10.0.0.1",
                   "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
                   "containerStatuses": [{"name": "app", "ready": ready, "restartCount": 0, "image": "x", "imageID": "x",
                                           "state": {"running": {"startedAt": "2026-11-21T00:00:00Z"}}}]}
    }))
    .unwrap()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let n: usize = std::env::var("PODS").ok().and_then(|v| v.parse().ok()).unwrap_or(150_000);
    let cache = ClusterCache::new(85.0);
    let nodes = n.div_ceil(PER_NODE);
    cache.ingest_nodes((0..nodes).map(node));
    let before = rss_bytes();
    let t = Instant::now();
    // In chunks, as a watch delivers them: no batch of full objects stays alive.
    for chunk in (0..n).collect::<Vec<_>>().chunks(5_000) {
        cache.ingest(chunk.iter().map(|&i| pod(i, true)).collect::<Vec<_>>());
    }
    let ingest = t.elapsed();
    let t = Instant::now();
    let first = cache.with_snapshot(|s| s.pods.len());
    let first_settle = t.elapsed();
    let after = rss_bytes();
    assert_eq!((cache.pods_cached(), first), (n, n));

    let config = PlanConfig::default();
    let state = PlanState::default();
    // Between two cycles, 1% of the pods change (readiness flaps), as a 30 s interval's watch events would.
    let churn = (n / 100).max(1);
    let mut cycles = Vec::new();
    let mut moves = 0;
    for round in 0..15 {
        let changed: Vec<Pod> = (0..churn).map(|k| pod((k * 97 + round * 13) % n, round % 2 == 0)).collect();
        cache.ingest(changed);
        let t = Instant::now();
        let plan = cache.with_snapshot(|s| planner::plan(s, &config, &state));
        cycles.push(t.elapsed());
        moves = plan.moves.len();
    }
    let snapshot = cache.snapshot();
    let plans: Vec<Duration> = (0..15)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(planner::plan(&snapshot, &config, &state));
            t.elapsed()
        })
        .collect();
    let (cycle, plan) = (median(cycles), median(plans));
    let per_pod = (after.saturating_sub(before)) as f64 / n as f64;
    println!("pods cached:                    {n} on {nodes} nodes ({} hot)", nodes.div_ceil(50));
    println!(
        "projection (incl. decoding):    {:.0} ms ({:.1} µs/pod); first settle {:.0} ms",
        ms(ingest),
        ms(ingest) * 1e3 / n as f64,
        ms(first_settle)
    );
    println!(
        "cache resident memory:          {:.1} MiB = {per_pod:.0} B/pod  (target ≤ 1024: {:.2}x; client-go informer ~40 KiB/pod: {:.3}x)",
        (after - before) as f64 / (1 << 20) as f64,
        per_pod / 1024.0,
        per_pod / 40960.0
    );
    println!(
        "rebalancer cycle (settle {churn} changed pods + plan, median of 15): {:.2} ms (target ≤ 20 ms: {:.2}x); plan alone {:.2} ms; cycle / plan = {:.2}; {moves} moves planned",
        ms(cycle),
        ms(cycle) / 20.0,
        ms(plan),
        ms(cycle) / ms(plan)
    );
}
