//! Memory of the rebalancer's cluster view at 150,000 pods (target ≤ 1 KiB per
//! pod; anchor: a client-go informer holds about 40 KiB per pod), measured as the
//! process's resident memory before and after projecting realistic pod objects.
//!
//!     cargo bench -p sdi-migration --bench cache      (PODS=N, default 150000)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use k8s_openapi::api::core::v1::Pod;
use sdi_migration::cluster::cache::ClusterCache;
use serde_json::json;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// A pod as a ReplicaSet of the generated benchmark cluster makes it (30 per node).
fn pod(i: usize) -> Pod {
    let deployment = i / 10;
    let node = i / 30;
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
        "status": {"phase": "Running", "podIP": "10.0.0.1", "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "image": "x", "imageID": "x",
                                           "state": {"running": {"startedAt": "2026-11-21T00:00:00Z"}}}]}
    }))
    .unwrap()
}

fn main() {
    let n: usize = std::env::var("PODS").ok().and_then(|v| v.parse().ok()).unwrap_or(150_000);
    let cache = ClusterCache::new(85.0);
    let before = rss_bytes();
    let t = Instant::now();
    // In chunks, as a watch delivers them: no batch of full objects stays alive.
    for chunk in (0..n).collect::<Vec<_>>().chunks(5_000) {
        let pods: Vec<Pod> = chunk.iter().map(|&i| pod(i)).collect();
        cache.ingest(pods);
    }
    let ingest = t.elapsed();
    let after = rss_bytes();
    assert_eq!(cache.pods_cached(), n);
    let t = Instant::now();
    let snapshot = cache.snapshot();
    let build = t.elapsed();
    let with_snapshot = rss_bytes();
    let per_pod = (after.saturating_sub(before)) as f64 / n as f64;
    let est = snapshot.memory();
    println!("pods cached:                    {n}");
    println!(
        "projection (incl. decoding):    {:.0} ms ({:.1} µs/pod)",
        ingest.as_secs_f64() * 1e3,
        ingest.as_secs_f64() * 1e6 / n as f64
    );
    println!(
        "cache resident memory:          {:.1} MiB = {per_pod:.0} B/pod  (target ≤ 1024: {:.2}x; client-go informer ~40 KiB/pod: {:.3}x)",
        (after - before) as f64 / (1 << 20) as f64,
        per_pod / 1024.0,
        per_pod / 40960.0
    );
    println!(
        "snapshot build for one cycle:   {:.0} ms, +{:.1} MiB while it lives ({:.0} B/pod by size_of estimate)",
        build.as_secs_f64() * 1e3,
        (with_snapshot.saturating_sub(after)) as f64 / (1 << 20) as f64,
        est.bytes_per_pod()
    );
}
