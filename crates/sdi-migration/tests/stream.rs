//! `GET /api/v1/stream` as a client sees it: a snapshot first, then every
//! transition of a job within a bounded time, rebalancer cycles and node
//! pressure; and `GET /api/v1/nodes`. Against the real service on kube-sim.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Env, request};
use serde_json::Value;

const PODS: &str = r#"
workloads:
  - kind: Pod
    name: web
    nodeName: w1
    containers: [{name: app, requests: {cpu: 100m, memory: 64Mi}, usage: {cpu: 50m, memory: 32Mi}}]
"#;

/// A server-sent-events client over reqwest: events as (name, JSON data).
struct Sse {
    response: reqwest::Response,
    buf: String,
}

impl Sse {
    async fn open(env: &Env, path: &str) -> Sse {
        let response = env.http.get(env.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let ct = response.headers()["content-type"].to_str().unwrap().to_string();
        assert_eq!(ct, "text/event-stream", "{path}");
        Sse { response, buf: String::new() }
    }

    /// The next event, or `None` when the stream ended. Keep-alive comments are skipped.
    async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            if let Some(i) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..i + 2).collect();
                let mut name = "message".to_string();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return Some((name, serde_json::from_str(&data).unwrap_or_else(|e| panic!("{e}: {data}"))));
            }
            match self.response.chunk().await.unwrap() {
                Some(bytes) => self.buf.push_str(std::str::from_utf8(&bytes).unwrap()),
                None => return None,
            }
        }
    }

    /// Events until `want` says `Some`, within `within`; panics naming what was seen.
    async fn until<T>(&mut self, within: Duration, what: &str, mut want: impl FnMut(&str, &Value) -> Option<T>) -> T {
        let mut seen = Vec::new();
        let found = tokio::time::timeout(within, async {
            while let Some((name, v)) = self.next().await {
                if let Some(t) = want(&name, &v) {
                    return Some(t);
                }
                seen.push(format!("{name}: {}", v.to_string().chars().take(200).collect::<String>()));
            }
            None
        })
        .await;
        match found {
            Ok(Some(t)) => t,
            Ok(None) => panic!("the stream ended before {what}; seen:\n{}", seen.join("\n")),
            Err(_) => panic!("no {what} within {within:?}; seen:\n{}", seen.join("\n")),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_receives_each_transition_of_a_job_within_a_bounded_time() {
    let env = Env::start(PODS).await;
    let mut sse = Sse::open(&env, "/api/v1/stream").await;
    let (name, snap) = sse.next().await.unwrap();
    assert_eq!(name, "snapshot");
    assert_eq!(snap["jobs"], Value::Array(vec![]), "{snap}");
    assert_eq!((snap["auto_migration"].as_bool(), snap["threshold_pct"].as_f64()), (Some(false), Some(85.0)));

    let (code, body) = env.migrate(request("web", "default", "w1", "w2")).await;
    assert_eq!(code, 202, "{body}");
    let id = body["migration_id"].as_str().unwrap().to_string();
    // Every status the job passes through arrives, in order, each within 10 s
    // of the last (the move itself takes a few simulated seconds at 5x).
    let mut statuses: Vec<String> = Vec::new();
    let mut steps_seen = 0;
    while statuses.last().map(String::as_str) != Some("completed") {
        let (status, steps) = sse
            .until(Duration::from_secs(10), &format!("a change of {id} after {statuses:?}"), |name, v| {
                (name == "job" && v["migration_id"] == id.as_str()).then(|| {
                    (v["status"].as_str().unwrap().to_string(), v["details"]["steps"].as_array().unwrap().len())
                })
            })
            .await;
        assert!(steps >= steps_seen, "steps only grow: {steps} after {steps_seen}");
        steps_seen = steps;
        if statuses.last() != Some(&status) {
            statuses.push(status);
        }
    }
    assert_eq!(statuses, ["pending", "running", "completed"]);
    // The stream carries what GET answers.
    let (_, job) = env.get(&format!("/api/v1/migrations/{id}")).await;
    assert_eq!(job["details"]["steps"].as_array().unwrap().len(), steps_seen);

    // A client connecting now starts from the same state.
    let mut late = Sse::open(&env, "/api/v1/stream?limit=1&sort=name").await;
    let (_, snap) = late.next().await.unwrap();
    assert_eq!(snap["jobs"][0]["migration_id"], id.as_str());
    assert_eq!(snap["jobs"][0]["status"], "completed");
    let nodes = &snap["nodes"];
    assert_eq!((nodes["total"].as_u64(), nodes["nodes"].as_array().unwrap().len()), (Some(3), 1), "{nodes}");
    assert_eq!(nodes["nodes"][0]["name"], "w1", "sorted by name, limit 1");
    assert_eq!(snap["plan"]["source"], "preview", "the loop is off: a plan made on request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cycles_and_node_pressure_are_pushed_and_shutdown_ends_the_stream() {
    let settings = sdi_migration::config::Settings {
        enable_auto_migration: true,
        migration_check_interval: 1,
        policy_engine_url: None,
        ..common::settings()
    };
    // Noisy usage: node pressure changes.
    let env = Env::start_with(&PODS.replace("cpu: 50m,", "cpu: 50m ~20%,"), settings, 5.0).await;
    let mut sse = Sse::open(&env, "/api/v1/stream?name=W&pressured=false").await;
    let plan = sse
        .until(Duration::from_secs(15), "a plan event", |name, v| {
            (name == "plan" && v["source"] == "cycle").then(|| v.clone())
        })
        .await;
    assert!(plan["at"].is_string() && plan["decisions"].is_array() && plan["skipped_total"].is_u64(), "{plan}");
    // Node pressure changes and is pushed, filtered by name.
    let nodes =
        sse.until(Duration::from_secs(15), "a nodes event", |name, v| (name == "nodes").then(|| v.clone())).await;
    assert_eq!((nodes["total"].as_u64(), nodes["matching"].as_u64()), (Some(3), Some(3)), "{nodes}");
    assert_eq!(nodes["basis"], "usage");

    let mut env = env;
    let service = env.service.take().unwrap();
    tokio::time::timeout(Duration::from_secs(20), service.shutdown(Duration::from_secs(1)))
        .await
        .expect("a graceful shutdown does not wait for stream clients to hang up");
    let end = tokio::time::timeout(Duration::from_secs(5), async { while sse.next().await.is_some() {} }).await;
    assert!(end.is_ok(), "the stream ends when the service stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_are_aggregated_filtered_and_queries_checked() {
    let env = Env::start(PODS).await;
    common::eventually(20, "the cluster view to be ready", || async { env.get("/api/v1/nodes").await.0 == 200 }).await;
    let (_, all) = env.get("/api/v1/nodes").await;
    let names: Vec<&str> = all["nodes"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 3, "workers only, the control plane is never a source or target: {all}");
    assert!(!names.contains(&"cp"));
    assert_eq!(all["histogram"].as_array().unwrap().len(), 10);
    let (_, one) = env.get("/api/v1/nodes?name=w2").await;
    assert_eq!((one["matching"].as_u64(), one["nodes"][0]["name"].as_str()), (Some(1), Some("w2")));
    for bad in ["limit=0", "sort=heat", "pressured=1", "node=w1"] {
        let (code, body) = env.get(&format!("/api/v1/nodes?{bad}")).await;
        assert_eq!(code, 400, "{bad}: {body}");
        assert_eq!(body["error"], "Invalid query");
        let r = env.http.get(env.url(&format!("/api/v1/stream?{bad}"))).send().await.unwrap();
        assert_eq!(r.status(), 400, "the stream checks the same parameters: {bad}");
    }
}
