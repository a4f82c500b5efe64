//! Per-move cost of each strategy against a simulated cluster whose pods start
//! instantly: API writes to the workload against the minimum each strategy
//! needs (anchor: recreate 2, evict 1, surge 3, pin 1), the PodMigration's own
//! writes (its creation, its status once per step plus once at the end, the
//! finalizer's removal), as kube-sim's request log counts them, and the time
//! the service adds on top of the cluster's own reaction.
//!
//!     cargo bench -p sdi-migration --bench moves        (MOVES=N per strategy, default 20)
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use sdi_migration::cluster::{facts, wait};
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
    api: Arc<kube_sim::ApiServer>,
}

/// The writes one move made, as the API server saw them.
#[derive(Default, Clone, Copy)]
struct Writes {
    /// To pods, Deployments, evictions...: the move itself.
    objects: u64,
    /// The PodMigration's creation (the REST POST).
    create: u64,
    /// Its status (once per step and once at the end).
    status: u64,
    /// Its metadata (the undo finalizer's removal at the end).
    finalizer: u64,
    events: u64,
}

impl std::ops::AddAssign for Writes {
    fn add_assign(&mut self, o: Writes) {
        self.objects += o.objects;
        self.create += o.create;
        self.status += o.status;
        self.finalizer += o.finalizer;
        self.events += o.events;
    }
}

impl Bench {
    /// Writes by the service since the last reset, the Lease's renewals apart.
    fn writes(&self) -> Writes {
        let mut w = Writes::default();
        for (k, n) in self.api.requests.counts() {
            if !k.agent.starts_with("sdi-migration/")
                || !matches!(k.verb.as_str(), "create" | "update" | "patch" | "delete")
            {
                continue;
            }
            match (k.verb.as_str(), k.resource.as_str()) {
                (_, "leases") => {}
                (_, "events") => w.events += n,
                ("create", "podmigrations") => w.create += n,
                (_, "podmigrations/status") => w.status += n,
                (_, "podmigrations") => w.finalizer += n,
                _ => w.objects += n,
            }
        }
        w
    }

    /// Run one migration through the API: its writes, its steps, seconds.
    async fn migrate(&self, body: Value) -> (Writes, u64, f64) {
        self.api.requests.reset();
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
                    let steps = job["details"]["steps"].as_array().map_or(0, Vec::len) as u64;
                    // The finalizer goes after the record closes; let it land.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    return (self.writes(), steps, secs);
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
    let bench = Bench { http: env.http.clone(), url: env.service().url(), api: env.sim.api().clone() };
    env.sim.api().requests.enable();

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
        "{:<9} {:>5} {:>7} {:>6} {:>5} {:>6} {:>6} {:>6} {:>6} {:>7} {:>6} {:>7} {:>8} {:>9}",
        "strategy",
        "moves",
        "objects",
        "anchor",
        "ratio",
        "create",
        "status",
        "steps",
        "final",
        "total",
        "events",
        "p50 ms",
        "added ms",
        "p50/floor"
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
        let (mut writes, mut steps, mut secs) = (Writes::default(), 0, Vec::new());
        for b in &bodies {
            let from = b["source"].as_str().unwrap_or("w1").to_string();
            let to = if from == "w1" { "w2" } else { "w1" };
            let body = json!({"pod_name": b["pod_name"], "pod_namespace": "default", "source_node": from,
                              "target_node": to, "strategy": b["strategy"]});
            let (w, n, s) = bench.migrate(body).await;
            writes += w;
            steps += n;
            secs.push(s);
        }
        let n = bodies.len() as f64;
        let per = |x: u64| x as f64 / n;
        let total = writes.objects + writes.create + writes.status + writes.finalizer;
        let p50 = percentile(&mut secs, 0.5);
        println!(
            "{strategy:<9} {:>5} {:>7.2} {anchor:>6} {:>5.2} {:>6.2} {:>6.2} {:>6.2} {:>6.2} {:>7.2} {:>6.2} {:>7.1} {:>8.1} {:>9.1}",
            bodies.len(),
            per(writes.objects),
            per(writes.objects) / anchor as f64,
            per(writes.create),
            per(writes.status),
            per(steps),
            per(writes.finalizer),
            per(total),
            per(writes.events),
            p50 * 1e3,
            (p50 - floor_p50) * 1e3,
            p50 / floor_p50
        );
    }
    env.service.take().unwrap().shutdown(Duration::from_secs(1)).await;
    env.sim.stop();
}
