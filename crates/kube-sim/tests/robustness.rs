//! Bad input never produces a 5xx or a panic: malformed and random bodies,
//! every patch and content type, odd paths and query parameters, against
//! every verb. Deterministic (seeded), so a failure reproduces.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Sim;
use reqwest::Method;

const BODIES: &[&str] = &[
    "",
    "{",
    "{bad",
    "null",
    "[]",
    "[1,2",
    "42",
    "\"str\"",
    "{\"metadata\": 5}",
    "{\"metadata\": {\"name\": 5}}",
    "{\"apiVersion\": \"v2\", \"kind\": \"Pod\"}",
    "{\"kind\": \"Deployment\"}",
    "{\"metadata\": {\"name\": \"x\", \"labels\": {\"a\": 1}}}",
    "{\"metadata\": {\"name\": \"x\"}, \"spec\": {\"containers\": \"no\"}}",
    "{\"metadata\": {\"name\": \"x\"}, \"spec\": {\"containers\": [{}]}}",
    "{\"metadata\": {\"name\": \"x\", \"resourceVersion\": \"abc\"}}",
    "{\"metadata\": {\"name\": \"x\"}, \"spec\": {\"replicas\": -5, \"selector\": {}}}",
    "[{\"op\": \"nope\"}]",
    "[{\"op\": \"remove\", \"path\": \"/does/not/exist\"}]",
    "{\"$patch\": \"delete\"}",
    "{\"spec\": {\"containers\": [{\"$patch\": \"bogus\"}]}}",
    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n",
    "\u{0}\u{1}\u{2}",
];

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
    "application/vnd.kubernetes.protobuf",
    "text/plain",
    "",
];

const PATHS: &[&str] = &[
    "/api/v1/namespaces/default/pods",
    "/api/v1/namespaces/default/pods/x",
    "/api/v1/namespaces/default/pods/x/status",
    "/api/v1/namespaces/default/pods/x/eviction",
    "/api/v1/namespaces/default/pods/x/binding",
    "/api/v1/namespaces/default/pods/x/nope",
    "/apis/apps/v1/namespaces/default/deployments/d/scale",
    "/apis/apps/v1/namespaces/default/deployments",
    "/api/v1/nodes/n/proxy/checkpoint/default/x/c",
    "/api/v1/namespaces/nope/configmaps",
    "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
    "/apis/metrics.k8s.io/v1beta1/nodes",
    "/apis/nope/v1/things",
    "/api/v9/pods",
    "/api/v1/namespaces/default/pods/x/status/extra/segments",
    "/_sim/faults",
    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
];

const QUERIES: &[&str] = &[
    "",
    "?labelSelector=a%20in%20(",
    "?fieldSelector=spec.bogus=1",
    "?limit=-1&continue=garbage",
    "?resourceVersion=abc",
    "?resourceVersion=1&resourceVersionMatch=Exact",
    "?resourceVersionMatch=Exact",
    "?watch=true&timeoutSeconds=1&resourceVersion=1",
    "?dryRun=Sometimes",
    "?fieldValidation=Loud",
    "?gracePeriodSeconds=abc",
    "?propagationPolicy=Sideways",
    "?force=true",
];

#[tokio::test]
async fn no_input_produces_a_server_error() {
    let sim = Sim::start().await;
    let http = sim.http();
    let mut rng = fastrand::Rng::with_seed(20261121);
    let methods = [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];
    let mut checked = 0;
    for _ in 0..1500 {
        let method = methods[rng.usize(..methods.len())].clone();
        let path = PATHS[rng.usize(..PATHS.len())];
        let query = QUERIES[rng.usize(..QUERIES.len())];
        let ct = CONTENT_TYPES[rng.usize(..CONTENT_TYPES.len())];
        let body = if rng.bool() {
            BODIES[rng.usize(..BODIES.len())].as_bytes().to_vec()
        } else {
            (0..rng.usize(0..64)).map(|_| rng.u8(..)).collect()
        };
        let url = sim.url(&format!("{path}{query}"));
        let mut req = http.request(method.clone(), &url).body(body.clone());
        if !ct.is_empty() {
            req = req.header("content-type", ct);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{method} {url}: transport error {e}"));
        let code = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        assert!(
            code < 500 || path.contains("/proxy/"),
            "{method} {url} [{ct}] {:?} -> {code}: {text}",
            String::from_utf8_lossy(&body)
        );
        if code >= 400 && !path.starts_with("/_sim") {
            let status: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method} {url}: error is not JSON: {text}"));
            assert_eq!(status["kind"], "Status", "{method} {url}: {text}");
            assert_eq!(status["code"].as_u64(), Some(u64::from(code)), "{method} {url}: {text}");
        }
        checked += 1;
    }
    assert_eq!(checked, 1500);
    // And the server is still healthy.
    assert_eq!(sim.get("/api/v1/namespaces/default").await.0, 200);
    // A resourceVersion the server has not reached is waited for (bounded), then
    // answered with upstream's 504 Timeout and a retry hint.
    let (code, body) = sim.get("/api/v1/namespaces/default/pods?resourceVersion=99999999999").await;
    assert_eq!((code, body["reason"].as_str()), (504, Some("Timeout")), "{body}");
    assert_eq!(body["details"]["retryAfterSeconds"], 1);
}
