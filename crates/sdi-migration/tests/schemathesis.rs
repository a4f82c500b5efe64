//! The API document says what the API enforces: schemathesis (PyPI) generates
//! requests from `/openapi.json` — valid and invalid — and checks every answer
//! against it (`--checks all`): no server error, schema-valid requests accepted,
//! invalid ones rejected, responses as documented. Against the real service on
//! a simulated cluster. In CI (`CI=true`) a missing schemathesis is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::Env;

const PODS: &str = r#"
workloads:
  - kind: Pod
    name: web
    nodeName: w1
    containers: [{name: app, requests: {cpu: 100m, memory: 64Mi}}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_failure() {
    if Command::new("schemathesis").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").is_err(),
            "schemathesis is required in CI (pip install schemathesis; scripts/test.sh installs it)"
        );
        eprintln!("skipped: schemathesis is not installed (pip install schemathesis)");
        return;
    }
    let env = Env::start(PODS).await;
    let hooks = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis");
    let url = env.url("/openapi.json");
    let report = env.dir.path().join("schemathesis");
    // Its cache (`.schemathesis/`) goes in the test's own directory, not the source tree.
    let workdir = env.dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("schemathesis")
            .args(["run", "--checks", "all", "--max-examples", "60", "--seed", "20261202", "--no-color"])
            // An endless event stream has no last byte to check; tests/stream.rs covers it.
            .args(["--exclude-path", "/api/v1/stream"])
            .arg("--report-dir")
            .arg(&report)
            .arg(&url)
            .env("SCHEMATHESIS_HOOKS", "hooks")
            .env("PYTHONPATH", hooks)
            .current_dir(&workdir)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "schemathesis failed:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    // Every selected operation (all but the endless stream) was exercised.
    let count = |label: &str| {
        let at = text.find(label).unwrap_or_else(|| panic!("no {label:?} in:\n{text}")) + label.len();
        text[at..].trim_start().split(|c: char| !c.is_ascii_digit()).next().unwrap().parse::<usize>().unwrap()
    };
    assert!(count("Selected:") >= 11, "{text}");
    assert_eq!(count("Tested:"), count("Selected:"), "every operation was exercised:\n{text}");
    assert!(!text.contains("server error"), "{text}");
}
