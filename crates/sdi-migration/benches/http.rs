//! `GET /api/v1/migrations/{id}` throughput with `wrk`, as a ratio to a trivial
//! axum handler measured in the same run on the same machine (target ≥ 0.8).
//!
//!     cargo bench -p sdi-migration --bench http      (needs wrk: apt-get install wrk)
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::time::Duration;

use axum::Json;
use axum::routing::get;
use sdi_migration::config::Settings;
use serde_json::{Value, json};

/// Requests/s reported by `wrk` for `url`.
/// `token`: sent as a bearer token (the API checks it; the answer is cached,
/// so this measures the cached path, as a busy client sees it).
fn wrk(url: &str, secs: u32, token: Option<&str>) -> f64 {
    let header = token.map(|t| format!("Authorization: Bearer {t}"));
    let out = Command::new("wrk")
        .args(["-t2", "-c32", &format!("-d{secs}s"), "--latency"])
        .args(header.iter().flat_map(|h| ["-H", h.as_str()]))
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("cannot run wrk ({e}); install it with: apt-get install -y wrk"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("Non-2xx"), "wrk saw errors:\n{text}");
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:").map(|v| v.trim().parse::<f64>().unwrap()))
        .unwrap_or_else(|| panic!("no Requests/sec in wrk output:\n{text}"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let secs: u32 = std::env::var("BENCH_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let text = r#"
name: http
defaults: {startupSeconds: 0, shutdownSeconds: 0}
nodes: [{name: "w{i}", count: 2, capacity: {cpu: 8, memory: 16Gi}}]
workloads:
  - {kind: Pod, name: app, nodeName: w1, containers: [{name: app, requests: {cpu: 100m, memory: 64Mi}}]}
"#;
    let settings = Settings { policy_engine_url: None, ..common::settings() };
    let mut env = common::Env::start_scenario(text, settings, 1.0).await;
    let (service, http) = (env.service(), env.http.clone());
    let body = json!({"pod_name": "app", "pod_namespace": "default", "source_node": "w1", "target_node": "w2"});
    let created: Value = http
        .post(format!("{}/api/v1/migrations", service.url()))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["migration_id"].as_str().unwrap().to_string();
    let job_url = format!("{}/api/v1/migrations/{id}", service.url());
    loop {
        let job: Value = http.get(&job_url).send().await.unwrap().json().await.unwrap();
        if job["status"] == "completed" {
            println!(
                "job body: {} bytes, {} steps",
                job.to_string().len(),
                job["details"]["steps"].as_array().unwrap().len()
            );
            break;
        }
        assert_ne!(job["status"], "failed", "{job:#}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The anchor: a trivial axum handler returning a small JSON body.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let trivial = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let app = axum::Router::new().route("/", get(|| async { Json(json!({"status": "healthy"})) }));
        axum::serve(listener, app).await.unwrap();
    });

    // Alternate, twice each, and keep each side's best run.
    let (mut ours, mut anchor) = (0f64, 0f64);
    for _ in 0..2 {
        anchor = anchor.max(wrk(&trivial, secs, None));
        ours = ours.max(wrk(&job_url, secs, Some(&env.api_token)));
    }
    println!("trivial axum handler:           {anchor:>10.0} req/s");
    println!("GET /api/v1/migrations/{{id}}:    {ours:>10.0} req/s");
    println!("ratio: {:.2} (target >= 0.8)", ours / anchor);
    env.service.take().unwrap().shutdown(Duration::from_secs(1)).await;
    env.sim.stop();
}
