//! The binary as an operator meets it: configuration errors in one line, help
//! that lists every variable, and `run` against a cluster until SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_sdi-migration");

fn run_with_env(vars: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(BIN);
    cmd.arg("run").env_remove("KUBECONFIG");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn a_bad_variable_stops_start_up_with_one_line_naming_it() {
    let cases = [
        ("RESOURCE_PRESSURE_THRESHOLD", "abc", "RESOURCE_PRESSURE_THRESHOLD=\"abc\""),
        ("RESOURCE_PRESSURE_THRESHOLD", "150", "RESOURCE_PRESSURE_THRESHOLD=\"150\""),
        ("INFLUX_URL", "not a url", "INFLUX_URL=\"not a url\""),
        ("MIGRATION_CHECK_INTERVAL", "0", "MIGRATION_CHECK_INTERVAL=\"0\""),
        ("ENABLE_CHECKPOINTING", "maybe", "ENABLE_CHECKPOINTING=\"maybe\""),
        ("MIGRATION_STRATEGY", "teleport", "MIGRATION_STRATEGY=\"teleport\""),
        ("CHECKPOINT_PVC_SIZE", "lots", "CHECKPOINT_PVC_SIZE=\"lots\""),
    ];
    for (var, value, names) in cases {
        let (code, err) = run_with_env(&[(var, value)]);
        assert_eq!(code, 2, "{var}={value}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.starts_with("error: ") && err.contains(names) && err.contains("expected"), "{err}");
    }
    let (code, err) = run_with_env(&[("HYSTERESIS", "90")]);
    assert_eq!(code, 2);
    assert_eq!(err.trim(), "error: HYSTERESIS=90 must be smaller than RESOURCE_PRESSURE_THRESHOLD=85");
}

#[test]
fn help_documents_every_variable() {
    let out = Command::new(BIN).args(["run", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for var in [
        "PORT",
        "INFLUX_URL",
        "INFLUX_ORG",
        "INFLUX_BUCKET",
        "INFLUX_TOKEN",
        "INFLUX_DATABASE",
        "POLICY_ENGINE_URL",
        "ANALYSIS_ENGINE_URL",
        "MIGRATION_CHECK_INTERVAL",
        "RESOURCE_PRESSURE_THRESHOLD",
        "ENABLE_CHECKPOINTING",
        "ENABLE_AUTO_MIGRATION",
        "PRESSURE_BASIS",
        "HYSTERESIS",
        "MAX_MIGRATIONS_PER_NODE",
        "MAX_CONCURRENT_MIGRATIONS",
        "MIGRATION_COOLDOWN",
        "EXCLUDED_NAMESPACES",
        "DRY_RUN",
        "POLICY_FALLBACK",
        "MIGRATION_STRATEGY",
        "CHECKPOINT_PVC_SIZE",
        "POST_MIGRATION_SETTLE",
        "MIGRATION_TIMEOUT",
        "SHUTDOWN_GRACE",
        "LOG_FORMAT",
    ] {
        assert!(help.contains(&format!("[env: {var}")), "--help lacks {var}");
    }
}

#[test]
fn without_a_cluster_it_says_how_to_point_at_one() {
    let (code, err) = run_with_env(&[]);
    assert_eq!(code, 1);
    assert!(err.contains("--kubeconfig"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_the_api_against_a_cluster_and_stops_on_sigterm() {
    let sim = kube_sim::Cluster::new();
    sdi_migration::demo::install_crd(&sim).unwrap();
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, server.kubeconfig()).unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = tokio::process::Command::new(BIN)
        .args(["run", "--kubeconfig", kc.to_str().unwrap(), "--port", &port.to_string(), "--log-format", "json"])
        .args(["--listen", "127.0.0.1"])
        // Only when asked for, and never silently.
        .env("AUTH_MODE", "none")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    sdi_migration::policy::init_tls();
    let http = reqwest::Client::new();
    let health = format!("http://127.0.0.1:{port}/health");
    common::eventually(30, "the API answers", || async {
        http.get(&health).send().await.is_ok_and(|r| r.status().is_success())
    })
    .await;
    let pid = child.id().unwrap();
    Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    let status =
        tokio::time::timeout(Duration::from_secs(20), child.wait()).await.expect("exits after SIGTERM").unwrap();
    assert!(status.success(), "{status:?}");
    let mut err = String::new();
    use tokio::io::AsyncReadExt;
    child.stderr.take().unwrap().read_to_string(&mut err).await.unwrap();
    assert!(err.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()), "LOG_FORMAT=json: {err}");
    assert!(err.contains("sdi-migration stopped"), "{err}");
    assert!(err.contains("AUTH_MODE=none") && err.contains("WARN"), "a warning at start: {err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "LISTEN_ADDR: {err}");
}

/// Without the PodMigration CRD the service does not start, and says how to install it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_without_the_crd_says_how_to_install_it() {
    let sim = kube_sim::Cluster::new();
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, server.kubeconfig()).unwrap();
    let out =
        tokio::process::Command::new(BIN).args(["run", "--kubeconfig", kc.to_str().unwrap(), "--port", "0"]).output();
    let out = tokio::time::timeout(Duration::from_secs(30), out).await.expect("exits").unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("podmigrations.migration.sdi.keti.dev) is not installed")
            && err.contains("kubectl apply -f deploy/crd.yaml"),
        "{err}"
    );
}
