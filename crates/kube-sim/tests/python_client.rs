//! The Python `kubernetes` client (PyPI package `kubernetes`) keeps working
//! against kube-sim: `tests/python/client.py` runs typed CRUD, patches, a
//! watch, scale, a Job and a 404 against a live simulated cluster. Skipped
//! with a message when the package is not installed, except in CI
//! (`scripts/test.sh` installs it), where that is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::Sim;
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_works() {
    let probe = std::process::Command::new("python3").args(["-c", "import kubernetes"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI: the Python package `kubernetes` is missing (scripts/test.sh installs it)"
        );
        eprintln!("skipping: the Python package `kubernetes` is not installed (pip install kubernetes)");
        return;
    }
    let sim = Sim::start_live_speed(10.0).await;
    let n = serde_json::json!({"metadata": {"name": "n1"}, "status": {"capacity": {"cpu": "8", "memory": "16Gi", "pods": "110"}}});
    Api::<Node>::all(sim.client().await)
        .create(&Default::default(), &serde_json::from_value(n).unwrap())
        .await
        .unwrap();
    let script = format!("{}/tests/python/client.py", env!("CARGO_MANIFEST_DIR"));
    let child =
        tokio::process::Command::new("python3").arg(script).arg(sim.kubeconfig_path()).kill_on_drop(true).output();
    let out = tokio::time::timeout(Duration::from_secs(120), child).await.expect("python client hung").unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("ok job complete") && text.contains("ok delete"), "{text}");
}
