//! Per-move cost of each strategy against a simulated cluster whose pods start
//! instantly: API writes against the minimum each strategy needs (anchor:
//! recreate 2, evict 1, surge 3, pin 1), and the time the service adds on top of
//! the cluster's own reaction.
//!
//!     cargo bench -p sdi-migration --bench moves        (MOVES=N per strategy, default 20)
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use sdi_migration::cluster::{ApiStats, facts, wait};
use sdi_migration::config::Settings;
use serde_json::{Value, json};

/// The test harness's settings, and no remote policy engine.
fn engine_only() -> Settings {
    Settings { policy_engine_url: None, ..common::settings() }
}

fn scenario(moves: usize) -> String {
    format!(
        r#"
name: bench
defaults: {{startupSeconds: 0, shutdownSeconds: 0, heartbeatSeconds: 10}}
nodes:
  - {{name: "w{{i}}", count: 2, capacity: {{cpu: 64, memory: 256Gi, pods: 500}}}}
workloads:
  - kind: Pod
    name: bare-{{i}}
    count: {moves}
    nodeName: w1
    containers: [{{name: app, requests: {{cpu: 10m, memory: 16Mi}}}}]
  - kind: Deployment
    name: web
    replicas: {moves}
    containers: [{{name: app, requests: {{cpu: 10m, memory: 16Mi}}}}]
  - kind: StatefulSet
    name: db
    replicas: {moves}
    containers: [{{name: app, requests: {{cpu: 10m, memory: 16Mi}}}}]
  - kind: Deployment
    name: pinned
    replicas: 1
    containers: [{{name: app, requests: {{cpu: 10m, memory: 16Mi}}}}]
"#
    )
}

fn percentile(xs: &mut [f64], p: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[((xs.len() as f64 - 1.0) * p).round() as usize]
}

struct Bench {
    http: reqwest::Client,
    url: String,
    stats: Arc<ApiStats>,
}

impl Bench {
    /// Run one migration through the API; (writes without events, event writes, seconds).
    async fn migrate(&self, body: Value) -> (u64, u64, f64) {
        let w0 = self.stats.writes.load(Ordering::Relaxed);
        let e0 = self.stats.event_writes.load(Ordering::Relaxed);
        let r = self.http.post(format!("{}/api/v1/migrations", self.url)).json(&body).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 202, "{}", r.text().await.unwrap());
        let id = r.json::<Value>().await.unwrap()["migration_id"].as_str().unwrap().to_string();
        loop {
            let job: Value = self
                .http
                .get(format!("{}/api/v1/migrations/{id}", self.url))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            match job["status"].as_str().unwrap() {
                "completed" => {
                    let secs = job["details"]["duration"].as_f64().unwrap() / 1e9;
                    // Events are written after the job's record closes; let them land.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let e = self.stats.event_writes.load(Ordering::Relaxed) - e0;
                    let w = self.stats.writes.load(Ordering::Relaxed) - w0 - e;
                    return (w, e, secs);
                }
                "failed" | "cancelled" => panic!("{job:#}"),
                _ => tokio::time::sleep(Duration::from_millis(2)).await,
            }
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let moves: usize = std::env::var("MOVES").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    // The engine alone (no rebalancer, InfluxDB or policy engine), on a cluster
    // whose every pod is Ready first.
    let mut env = common::Env::start_scenario(&scenario(moves), engine_only(), 1.0).await;
    let pods_api: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    let bench = Bench { http: env.http.clone(), url: env.service().url(), stats: env.stats.clone() };

    // The floor: the cluster's own reaction — create a pod on a node, watch it become Ready, delete it.
    let mut floor = Vec::new();
    for i in 0..moves {
        let name = format!("floor-{i}");
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": name},
            "spec": {"nodeName": "w2", "containers": [{"name": "app", "image": "x"}]}}))
        .unwrap();
        let t = Instant::now();
        pods_api.create(&PostParams::default(), &pod).await.unwrap();
        wait::until(&pods_api, &name, |p: Option<&Pod>| match p {
            Some(p) if facts::pod_ready(p) => wait::Check::Done(()),
            _ => wait::Check::Wait,
        })
        .await
        .unwrap();
        floor.push(t.elapsed().as_secs_f64());
        pods_api.delete(&name, &DeleteParams::default().grace_period(0)).await.unwrap();
    }
    let floor_p50 = percentile(&mut floor, 0.5);
    println!("cluster floor (create a pod, watch it Ready): p50 {:.1} ms over {moves}", floor_p50 * 1e3);
    println!();
    println!(
        "{:<9} {:>6} {:>8} {:>7} {:>7} {:>8} {:>8} {:>9} {:>10}",
        "strategy", "moves", "writes", "anchor", "ratio", "events", "p50 ms", "added ms", "p50/floor"
    );

    let pods = pods_api.list(&Default::default()).await.unwrap().items;
    let name_of = |p: &Pod| p.metadata.name.clone().unwrap();
    let mut groups: Vec<(&str, u64, Vec<Value>)> = vec![
        (
            "recreate",
            2,
            pods.iter()
                .filter(|p| name_of(p).starts_with("bare-"))
                .map(|p| json!({"pod_name": name_of(p), "strategy": "recreate", "source": facts::pod_node(p)}))
                .collect(),
        ),
        (
            "surge",
            3,
            pods.iter()
                .filter(|p| name_of(p).starts_with("web-"))
                .map(|p| json!({"pod_name": name_of(p), "strategy": "surge", "source": facts::pod_node(p)}))
                .collect(),
        ),
        (
            "evict",
            1,
            pods.iter()
                .filter(|p| name_of(p).starts_with("db-"))
                .map(|p| json!({"pod_name": name_of(p), "strategy": "evict", "source": facts::pod_node(p)}))
                .collect(),
        ),
    ];
    let pinned = pods.iter().find(|p| name_of(p).starts_with("pinned-")).unwrap();
    groups.push((
        "pin",
        1,
        vec![json!({"pod_name": name_of(pinned), "strategy": "pin", "source": facts::pod_node(pinned)})],
    ));
    for (strategy, anchor, bodies) in groups {
        let (mut writes, mut events, mut secs) = (0, 0, Vec::new());
        for b in &bodies {
            let from = b["source"].as_str().unwrap_or("w1").to_string();
            let to = if from == "w1" { "w2" } else { "w1" };
            let body = json!({"pod_name": b["pod_name"], "pod_namespace": "default", "source_node": from,
                              "target_node": to, "strategy": b["strategy"]});
            let (w, e, s) = bench.migrate(body).await;
            writes += w;
            events += e;
            secs.push(s);
        }
        let n = bodies.len() as f64;
        let per = writes as f64 / n;
        let p50 = percentile(&mut secs, 0.5);
        println!(
            "{strategy:<9} {:>6} {per:>8.2} {anchor:>7} {:>7.2} {:>8.2} {:>8.1} {:>9.1} {:>10.1}",
            bodies.len(),
            per / anchor as f64,
            events as f64 / n,
            p50 * 1e3,
            (p50 - floor_p50) * 1e3,
            p50 / floor_p50
        );
    }
    env.service.take().unwrap().shutdown(Duration::from_secs(1)).await;
    env.sim.stop();
}
