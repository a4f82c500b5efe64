//! The demo as a newcomer meets it: the built-in scenario, at the demo's
//! speed, with the demo's settings. Its first migration starts within its
//! first minute of wall-clock time, every time: the scenario's load crosses the
//! threshold at about 4.4 simulated minutes (27 s at 10x), leaving the rest of
//! the minute as margin for start-up and a loaded CI machine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Env, wait_for};
use sdi_migration::config::DemoArgs;
use sdi_migration::demo::{SDI_EDGE, demo_settings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_moves_a_pod_within_its_first_minute() {
    let args = DemoArgs::default();
    let settings = sdi_migration::config::Settings { port: 0, ..demo_settings(&args) };
    assert!(settings.enable_auto_migration && !settings.dry_run, "the demo rebalances");
    // From before the simulated cluster exists: its clock starts inside.
    let started = Instant::now();
    let env = Env::start_scenario(SDI_EDGE, settings, args.speed).await;
    let within = Duration::from_secs(60).saturating_sub(started.elapsed());
    let (job, simulated) = wait_for(within, "the demo's first migration", || async {
        let (_, jobs) = env.get("/api/v1/migrations").await;
        let simulated = env.sim.clock().elapsed();
        let first = jobs.as_array().and_then(|j| j.iter().find(|j| j["details"]["origin"] == "rebalancer").cloned());
        match first {
            Some(job) => Ok((job, simulated)),
            None => {
                let (_, plan) = env.get("/api/v1/plan").await;
                let nodes: Vec<String> = plan["plan"]["nodes"]
                    .as_array()
                    .map(|n| {
                        n.iter()
                            .map(|n| {
                                format!(
                                    "{} {:.1}%/{:.1}%",
                                    n["name"],
                                    n["cpu_pct"].as_f64().unwrap_or(0.0),
                                    n["mem_pct"].as_f64().unwrap_or(0.0)
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                Err(format!("no migration at simulated {simulated:?}; nodes {nodes:?}"))
            }
        }
    })
    .await;
    let wall = started.elapsed();
    eprintln!(
        "first migration {} ({}/{} from {}) after {:.1} s wall, {:.0} simulated s",
        job["migration_id"],
        job["details"]["pod_namespace"],
        job["details"]["pod_name"],
        job["details"]["source_node"],
        wall.as_secs_f64(),
        simulated.as_secs_f64()
    );
    assert!(["turtlebot-1", "turtlebot-2"].contains(&job["details"]["source_node"].as_str().unwrap()), "{job}");
}

const BIN: &str = env!("CARGO_BIN_EXE_sdi-migration");

/// `demo` as a newcomer types it, with `extra` flags: (the banner's lines until the
/// terminal view starts, the running child).
async fn banner(extra: &[&str]) -> (Vec<String>, tokio::process::Child) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(BIN)
        .args(["demo", "--port", "0", "--duration", "120"])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("Below: node pressure") {
                return;
            }
            seen.push(line);
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read).await.expect("the demo's banner");
    (seen, child)
}

fn api_url(lines: &[String]) -> String {
    let line = lines.iter().find(|l| l.contains("migration API:")).expect("the API's address");
    line.split_whitespace().last().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_needs_no_token_and_says_so() {
    let (lines, mut child) = banner(&[]).await;
    let text = lines.join("\n");
    assert!(text.contains("AUTH_MODE=none") && text.contains("127.0.0.1 only"), "{text}");
    let api = api_url(&lines);
    assert!(api.starts_with("http://127.0.0.1:"), "{api}");
    sdi_migration::policy::init_tls();
    let r = reqwest::get(format!("{api}/api/v1/migrations")).await.unwrap();
    assert_eq!(r.status(), 200);
    child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_auth_kubernetes_prints_a_token_that_opens_the_api() {
    let (lines, mut child) = banner(&["--auth", "kubernetes"]).await;
    let text = lines.join("\n");
    assert!(text.contains("AUTH_MODE=kubernetes"), "{text}");
    let token = lines.iter().find_map(|l| l.trim().strip_prefix("TOKEN=")).expect("a printed token").to_string();
    let api = api_url(&lines);
    sdi_migration::policy::init_tls();
    let r = reqwest::get(format!("{api}/api/v1/plan")).await.unwrap();
    assert_eq!(r.status(), 401);
    let http = common::http_with(&token);
    // Cluster-wide views and migrations in any namespace: edit + sdi-migration-operator.
    for path in ["/api/v1/plan", "/api/v1/migrations", "/api/v1/nodes"] {
        let r = http.get(format!("{api}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    // Prometheus metrics are another right.
    assert_eq!(http.get(format!("{api}/metrics")).send().await.unwrap().status(), 403);
    child.kill().await.unwrap();
}
