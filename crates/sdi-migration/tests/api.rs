//! The HTTP contract: exact error bodies for every validation and pre-flight
//! refusal, list filters, health, OpenAPI, and a property test that throws
//! arbitrary requests at the API and finds no 5xx.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Env, request, settings};
use proptest::prelude::*;
use serde_json::{Value, json};

const CLUSTER: &str = r#"
workloads:
  - kind: Pod
    name: tensorflow-pod
    nodeName: w1
    containers: [{name: trainer, requests: {cpu: 500m, memory: 512Mi}}]
  - kind: Pod
    name: big
    nodeName: w1
    containers: [{name: app, requests: {cpu: "2", memory: 1Gi}}]
  - kind: Pod
    name: filler
    nodeName: w2
    containers: [{name: app, requests: {cpu: 2500m, memory: 1Gi}}]
  - kind: Pod
    name: slow
    nodeName: w1
    startupSeconds: 1
    containers: [{name: app, requests: {cpu: 100m, memory: 64Mi}}]
"#;

fn body(error: &str, details: &str) -> Value {
    json!({"error": error, "details": details})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_its_exact_body() {
    let env = Env::start(CLUSTER).await;
    let nodes = env.sim.dynamic("v1", "nodes", None).unwrap();
    nodes.patch("w3", None, kube_sim::PatchType::Merge, &json!({"spec": {"unschedulable": true}})).unwrap();
    // Pre-flight reads the service's watch-fed cache: let it see the cordon.
    let cache = env.service().rebalancer.cache.clone();
    common::eventually(10, "the cache sees w3 cordoned", || {
        let seen = cache.read(|v| v.node("w3").is_some_and(|n| n.facts.unschedulable));
        async move { seen }
    })
    .await;

    let with = |f: fn(&mut Value)| {
        let mut b = request("tensorflow-pod", "default", "w1", "w2");
        f(&mut b);
        b.to_string()
    };
    let cases: Vec<(String, u16, Value)> = vec![
        ("{".into(), 400, body("Invalid request format", "EOF while parsing an object at line 1 column 1")),
        ("[]".into(), 400, body("Invalid request format", "expected a JSON object, got an array")),
        (
            with(|b| b["timeout"] = json!("10")),
            400,
            body("Invalid request format", "invalid type: string \"10\", expected i64 at line 1 column 107"),
        ),
        (
            with(|b| b["strategy"] = json!("teleport")),
            400,
            body(
                "Invalid request format",
                "unknown variant `teleport`, expected one of `auto`, `surge`, `recreate`, `evict`, `pin` at line 1 column 95",
            ),
        ),
        (
            "{}".into(),
            400,
            body(
                "Validation failed",
                "pod_name is required; pod_namespace is required; source_node is required; target_node is required",
            ),
        ),
        (
            with(|b| b["target_node"] = json!("w1")),
            400,
            body("Validation failed", "source_node and target_node must be different"),
        ),
        (with(|b| b["timeout"] = json!(-1)), 400, body("Validation failed", "timeout must be >= 0 seconds, got -1")),
        (with(|b| b["pod_name"] = json!("ghost")), 404, body("Pod not found", "pod default/ghost does not exist")),
        (
            with(|b| b["source_node"] = json!("w3")),
            409,
            body("Pod is not on the source node", "pod default/tensorflow-pod runs on node w1, not on source_node w3"),
        ),
        (
            with(|b| b["target_node"] = json!("w9")),
            422,
            body("Target node unavailable", "target node w9 does not exist"),
        ),
        (
            with(|b| b["target_node"] = json!("w3")),
            422,
            body("Target node unavailable", "target node w3 is cordoned (spec.unschedulable=true)"),
        ),
        (
            with(|b| b["target_node"] = json!("cp")),
            422,
            body(
                "Target node unavailable",
                "target node cp has taint node-role.kubernetes.io/control-plane=:NoSchedule that the pod does not tolerate",
            ),
        ),
        (
            with(|b| b["pod_name"] = json!("big")),
            422,
            body(
                "Target node unavailable",
                "pod does not fit on target node w2: cpu requested 2 but only 1500m of 4 allocatable is free",
            ),
        ),
        (
            with(|b| b["strategy"] = json!("evict")),
            422,
            body(
                "Strategy not applicable",
                "strategy evict cannot move this pod (no controller): evict needs a controller to recreate the pod; a bare pod would be lost; use recreate (or auto)",
            ),
        ),
    ];
    for (sent, code, want) in cases {
        let (got_code, got) = env.post_raw("/api/v1/migrations", &sent).await;
        assert_eq!((got_code, &got), (code, &want), "for {sent}");
    }
    let (_, list) = env.get("/api/v1/migrations").await;
    assert_eq!(list, json!([]), "no refused request created a job");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_job_for_the_same_pod_is_refused_and_lists_filter() {
    let env = Env::start(CLUSTER).await;
    let (code, first) = env.migrate(request("slow", "default", "w1", "w2")).await;
    assert_eq!(code, 202, "{first}");
    let id = first["migration_id"].as_str().unwrap();
    let (code, second) = env.migrate(request("slow", "default", "w1", "w2")).await;
    assert_eq!(code, 409);
    assert_eq!(second["error"], "Migration already in progress");
    assert_eq!(second["migration_id"], id);

    let (code, status) = env.get(&format!("/api/v1/migrations/{id}/status")).await;
    assert_eq!(code, 200);
    assert_eq!(status["migration_id"], id);
    assert!(["pending", "running", "completed"].contains(&status["status"].as_str().unwrap()));
    let done = env.finished(id, 60).await;
    assert_eq!(done["status"], "completed", "{done:#}");
    let (_, status) = env.get(&format!("/api/v1/migrations/{id}/status")).await;
    assert_eq!(status["message"], "Migration completed successfully");
    assert!(status["duration_seconds"].as_f64().unwrap() > 0.0);
    assert!(status["end_time"].is_string());

    let (_, second) = env.migrate(request("tensorflow-pod", "default", "w1", "w3")).await;
    let second_id = second["migration_id"].as_str().unwrap();
    env.finished(second_id, 60).await;
    let ids = |v: Value| {
        v.as_array().unwrap().iter().map(|j| j["migration_id"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(ids(env.get("/api/v1/migrations").await.1), [second_id, id], "newest first");
    assert_eq!(ids(env.get("/api/v1/migrations?node=w2").await.1), [id]);
    assert_eq!(ids(env.get("/api/v1/migrations?status=completed&limit=1").await.1), [second_id]);
    assert!(ids(env.get("/api/v1/migrations?namespace=kube-system").await.1).is_empty());
    let (code, bad) = env.get("/api/v1/migrations?status=done").await;
    assert_eq!(
        (code, bad),
        (400, body("Invalid query", "status \"done\" is not one of pending, running, completed, failed, cancelled"))
    );
    let (code, bad) = env.get("/api/v1/migrations?limit=0").await;
    assert_eq!((code, bad), (400, body("Invalid query", "limit \"0\" must be between 1 and 1000")));
    let (code, bad) = env.get("/api/v1/migrations?pod=x").await;
    assert_eq!(code, 400, "{bad}");

    let (code, missing) = env.get("/api/v1/migrations/migration-deadbeef").await;
    assert_eq!((code, missing), (404, body("Migration not found", "no migration with id migration-deadbeef")));
    let (_, m) = env.get("/api/v1/metrics").await;
    assert_eq!(m["total_migrations"], 2);
    assert_eq!(m["successful_migrations"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_openapi_and_unknown_routes() {
    let env = Env::start(CLUSTER).await;
    let (code, h) = env.get("/health").await;
    assert_eq!((code, &h["status"], &h["service"]), (200, &json!("healthy"), &json!("sdi-migration")));
    let (code, doc) = env.get("/openapi.json").await;
    assert_eq!(code, 200);
    for path in [
        "/api/v1/migrations",
        "/api/v1/migrations/{id}",
        "/api/v1/migrations/{id}/status",
        "/api/v1/metrics",
        "/health",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} documented");
    }
    let req = &doc["components"]["schemas"]["MigrationRequest"]["properties"];
    for field in [
        "pod_name",
        "pod_namespace",
        "source_node",
        "target_node",
        "preserve_pv",
        "force_restart",
        "timeout",
        "strategy",
        "checkpoint",
    ] {
        assert!(req.get(field).is_some(), "MigrationRequest.{field} in the schema");
    }
    let (code, nf) = env.get("/api/v2/nothing").await;
    assert_eq!((code, &nf["error"]), (404, &json!("Not found")));
    let r = env.http.put(env.url("/api/v1/migrations")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
}

/// One field of a fuzzed request: absent, right type, wrong type, or nonsense.
fn field(valid: &'static [&'static str]) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        proptest::sample::select(valid).prop_map(|s| Some(json!(s))),
        "[a-z0-9.-]{0,70}".prop_map(|s| Some(json!(s))),
        any::<String>().prop_map(|s| Some(json!(s))),
        any::<i64>().prop_map(|n| Some(json!(n))),
        any::<bool>().prop_map(|b| Some(json!(b))),
        Just(Some(Value::Null)),
        Just(Some(json!({"nested": [1, 2]}))),
    ]
}

fn fuzzed_request() -> impl Strategy<Value = String> {
    let names = &["tensorflow-pod", "big", "slow", "ghost", "filler"];
    let nodes = &["w1", "w2", "w3", "cp", "w9"];
    (
        (field(names), field(&["default", "kube-system"]), field(nodes), field(nodes)),
        (
            field(&["0", "5"]),
            field(&["auto", "recreate", "surge", "evict", "pin", "x"]),
            field(&["true"]),
            field(&["false"]),
        ),
        prop_oneof![3 => Just(None), 1 => ".{0,40}".prop_map(Some)],
    )
        .prop_map(|((pod, ns, from, to), (timeout, strategy, pv, ck), garbage)| {
            if let Some(g) = garbage {
                return g;
            }
            let mut obj = serde_json::Map::new();
            for (k, v) in [
                ("pod_name", pod),
                ("pod_namespace", ns),
                ("source_node", from),
                ("target_node", to),
                (
                    "timeout",
                    timeout.map(
                        |t| if t.is_string() { json!(t.as_str().unwrap().parse::<i64>().unwrap_or(0)) } else { t },
                    ),
                ),
                ("strategy", strategy),
                ("preserve_pv", pv.map(|v| if v == json!("true") { json!(true) } else { v })),
                ("checkpoint", ck.map(|v| if v == json!("false") { json!(false) } else { v })),
            ] {
                if let Some(v) = v {
                    obj.insert(k.into(), v);
                }
            }
            Value::Object(obj).to_string()
        })
}

#[test]
fn fuzzed_requests_never_get_a_server_error() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut s = settings();
    s.migration_timeout = 5;
    let env = rt.block_on(Env::start_with(CLUSTER, s, 5.0));
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: 300,
        failure_persistence: None,
        ..Default::default()
    });
    let paths = prop_oneof![
        Just("/api/v1/migrations".to_string()),
        "[a-z0-9%?=&/-]{0,30}".prop_map(|s| format!("/api/v1/migrations/{s}")),
        "[a-z0-9%=&-]{0,30}".prop_map(|s| format!("/api/v1/migrations?{s}")),
    ];
    runner
        .run(&(fuzzed_request(), paths), |(body, path)| {
            rt.block_on(async {
                let (code, answer) = env.post_raw("/api/v1/migrations", &body).await;
                prop_assert!(code < 500 || code == 503, "POST {body} -> {code} {answer}");
                prop_assert!(answer.get("error").is_some() || code == 202, "{body} -> {answer}");
                let r = env.http.get(env.url(&path)).send().await.unwrap();
                prop_assert!(r.status().as_u16() < 500, "GET {path} -> {}", r.status());
                let r = env.http.delete(env.url(&path)).send().await.unwrap();
                prop_assert!(r.status().as_u16() < 500, "DELETE {path} -> {}", r.status());
                Ok(())
            })
        })
        .unwrap();
    // Jobs the fuzzer started all end.
    rt.block_on(async {
        let (_, list) = env.get("/api/v1/migrations?limit=1000").await;
        for job in list.as_array().unwrap() {
            env.finished(job["migration_id"].as_str().unwrap(), 60).await;
        }
    });
}
