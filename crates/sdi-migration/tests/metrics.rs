//! `/metrics` after real migrations, checked by Prometheus' own parser
//! (`promtool check metrics`, Debian package `prometheus`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{Env, request};

const BARE: &str = r#"
workloads:
  - kind: Pod
    name: app
    nodeName: w1
    containers: [{name: app, requests: {cpu: 100m, memory: 64Mi}}]
"#;

fn promtool() -> String {
    for p in ["promtool", "/usr/bin/promtool"] {
        if Command::new(p).arg("--version").output().is_ok() {
            return p.to_string();
        }
    }
    panic!("promtool is missing: apt-get install -y prometheus (scripts/test.sh installs it)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_with_promtool_and_count_migrations() {
    let env = Env::start(BARE).await;
    let (_, created) = env.migrate(request("app", "default", "w1", "w2")).await;
    let job = env.finished(created["migration_id"].as_str().unwrap(), 60).await;
    assert_eq!(job["status"], "completed");
    let (code, _) = env.migrate(request("ghost", "default", "w1", "w2")).await;
    assert_eq!(code, 404);

    let r = env.http.get(env.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = r.text().await.unwrap();
    // Prometheus itself asks for OpenMetrics, and gets it.
    let om = env
        .http
        .get(env.url("/metrics"))
        .header("accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
        .send()
        .await
        .unwrap();
    assert!(om.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    assert!(om.text().await.unwrap().ends_with("# EOF\n"));
    for series in [
        r#"sdi_migrations_total{result="completed",strategy="recreate",origin="api"} 1"#,
        r#"sdi_migration_duration_seconds_count{strategy="recreate"} 1"#,
        "sdi_migrations_active 0",
        "sdi_kubernetes_api_writes_total",
        "sdi_kubernetes_api_errors_total",
    ] {
        assert!(text.contains(series), "missing {series} in:\n{text}");
    }
    assert!(!text.contains("pod=") && !text.contains("app\""), "no pod names in labels:\n{text}");

    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool rejected the exposition:\n{report}\n{text}");
}

/// A migration shows as finished only once it is counted: when the finish
/// hooks (the metrics, InfluxDB) run, the store still shows it running and
/// it holds no slot; a client polling for the end then reads metrics that
/// include it (the race behind an earlier flake of the test above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_is_counted_before_it_shows_as_finished() {
    let env = Env::start(BARE).await;
    let service = env.service.as_ref().expect("the service runs");
    let seen = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let (runner, s) = (service.runner.clone(), seen.clone());
    service.runner.on_finish(move |job| {
        let shown = runner.store.get(&job.id).map(|j| j.status);
        s.lock().push((job.status, shown, runner.active()));
    });
    let (_, created) = env.migrate(request("app", "default", "w1", "w2")).await;
    let job = env.finished(created["migration_id"].as_str().unwrap(), 60).await;
    assert_eq!(job["status"], "completed");
    let seen = seen.lock().clone();
    assert_eq!(seen.len(), 1, "counted once: {seen:?}");
    let (status, shown, active) = seen[0];
    assert_eq!(status, sdi_core::job::JobStatus::Completed);
    assert!(shown.is_some_and(|s| !s.is_terminal()), "shown as {shown:?} before it was counted");
    assert_eq!(active, 0, "the slot is given up before the end is counted");
}
