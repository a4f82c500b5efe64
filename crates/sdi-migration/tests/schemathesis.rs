//! The API document says what the API enforces: schemathesis (PyPI) generates
//! requests from `/openapi.json` — valid and invalid — and checks every answer
//! against it (`--checks all`): no server error, schema-valid requests accepted,
//! invalid ones rejected, responses as documented. Against the real service on
//! a simulated cluster, with a token allowed everything. In CI (`CI=true`) a
//! missing schemathesis is a failure. Without a token, every documented
//! operation but the probes answers 401.
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
    let authorization = format!("Authorization: Bearer {}", env.api_token);
    let out = tokio::task::spawn_blocking(move || {
        Command::new("schemathesis")
            .args(["run", "--checks", "all", "--max-examples", "60", "--seed", "20261202", "--no-color"])
            // An endless event stream has no last byte to check; tests/stream.rs covers it.
            .args(["--exclude-path", "/api/v1/stream"])
            .args(["--header", &authorization])
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

/// Every operation the document lists, with no token, with a token the
/// cluster does not know: 401 with a `Bearer` challenge; only the probes answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_valid_token_every_operation_but_the_probes_is_401() {
    let env = Env::start(PODS).await;
    let doc: serde_json::Value = env.http.get(env.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let mut operations = 0;
    for token in ["", "forged"] {
        let http = common::http_with(token);
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                let url = env.url(&path.replace("{id}", "migration-0000abcd"));
                let method: reqwest::Method = method.to_uppercase().parse().unwrap();
                let r = http.request(method.clone(), url).json(&serde_json::json!({})).send().await.unwrap();
                let code = r.status().as_u16();
                if ["/health", "/ready"].contains(&path.as_str()) {
                    assert_ne!(code, 401, "{method} {path}");
                    continue;
                }
                operations += 1;
                let challenge = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string());
                assert_eq!(code, 401, "{method} {path} with token {token:?}");
                assert!(challenge.is_some_and(|c| c.starts_with("Bearer ")), "{method} {path}");
            }
        }
    }
    assert!(operations >= 2 * 10, "{operations} operations checked");
}
