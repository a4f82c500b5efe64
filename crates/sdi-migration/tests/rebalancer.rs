//! The autonomous loop against simulated clusters: pressure relieved within a
//! bounded time, safety-critical pods left alone, budgets never violated, no
//! ping-pong under oscillating load, and every policy-engine failure mode
//! answered by the configured fallback with its reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Env, settings};
use futures::StreamExt;
use parking_lot::Mutex;
use sdi_migration::config::{PolicyFallback, Settings};
use serde_json::Value;

fn scenario(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../../scenarios/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn rebalancing() -> Settings {
    Settings {
        enable_auto_migration: true,
        migration_check_interval: 1,
        migration_cooldown: 600,
        // No remote engine: the built-in MALE policy decides.
        policy_engine_url: None,
        ..settings()
    }
}

async fn jobs(env: &Env) -> Vec<Value> {
    env.get("/api/v1/migrations?limit=1000").await.1.as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pressure_is_relieved_without_touching_safety_critical_pods_or_budgets() {
    let env = Env::start_scenario(&scenario("pressure.yaml"), rebalancing(), 10.0).await;
    // The disruption controller first catches up with the started pods (its
    // status lags the pods by a debounce); from then on, watch every budget for
    // the whole run: healthy pods never below desired.
    let pdbs = env.sim.dynamic("policy/v1", "poddisruptionbudgets", None).unwrap();
    common::eventually(30, "budgets report the started pods", || async {
        pdbs.list("", "").unwrap().iter().all(|o| {
            o["status"]["currentHealthy"].as_i64().unwrap_or(-1)
                >= o["status"]["desiredHealthy"].as_i64().unwrap_or(i64::MAX)
        })
    })
    .await;
    let violations = Arc::new(Mutex::new(Vec::<String>::new()));
    let watcher = {
        let v = violations.clone();
        let mut stream = Box::pin(env.sim.dynamic("policy/v1", "poddisruptionbudgets", None).unwrap().watch());
        tokio::spawn(async move {
            while let Some(ev) = stream.next().await {
                let kube_sim::DynamicEvent::Applied(_, o) = ev else { continue };
                let (healthy, desired) =
                    (o["status"]["currentHealthy"].as_i64(), o["status"]["desiredHealthy"].as_i64());
                if let (Some(h), Some(d)) = (healthy, desired)
                    && h < d
                {
                    v.lock().push(format!("{} healthy {h} < desired {d}", o["metadata"]["name"]));
                }
            }
        })
    };

    // Bounded: the loop runs every second (10 simulated seconds).
    let mut relieved = false;
    for _ in 0..600 {
        let (code, plan) = env.get("/api/v1/plan").await;
        if code == 200 {
            let nodes = plan["plan"]["nodes"].as_array().unwrap();
            let pressured: Vec<&str> =
                nodes.iter().filter(|n| n["pressured"] == true).map(|n| n["name"].as_str().unwrap()).collect();
            let active = jobs(&env)
                .await
                .iter()
                .filter(|j| ["pending", "running"].contains(&j["status"].as_str().unwrap()))
                .count();
            if pressured.is_empty() && active == 0 && !jobs(&env).await.is_empty() {
                relieved = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all = jobs(&env).await;
    assert!(
        relieved,
        "pressure not relieved within 60 s (600 simulated seconds): {:#}",
        env.get("/api/v1/plan").await.1
    );
    assert!(all.iter().all(|j| j["status"] == "completed"), "{all:#?}");
    assert!(all.len() <= 8, "relief took {} moves", all.len());
    assert!(!all.iter().any(|j| j["details"]["new_pod_name"].as_str().unwrap().starts_with("line-controller")));
    let lc = env.pod("ops", "line-controller").unwrap();
    assert_eq!(common::node_of(&lc), "worker-1", "class C stays put");
    let (_, plan) = env.get("/api/v1/plan").await;
    let cycle = &plan["last_cycle"];
    assert!(cycle["decisions"].is_array(), "{plan:#}");
    watcher.abort();
    assert!(violations.lock().is_empty(), "budgets violated: {:?}", violations.lock());

    let text = env.http.get(env.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("sdi_node_pressure_percent{node=\"worker-1\",resource=\"cpu\"}"), "{text}");
    assert!(text.contains("sdi_policy_decisions_total{source=\"builtin\",allowed=\"true\"}"), "{text}");
    assert!(text.contains("origin=\"rebalancer\""), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oscillating_load_causes_no_ping_pong_over_thirty_simulated_minutes() {
    let speed = 60.0;
    let env = Env::start_scenario(&scenario("oscillating.yaml"), rebalancing(), speed).await;
    // 30 simulated minutes at 60×.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let all = jobs(&env).await;
    assert!(!all.is_empty(), "the peaks (100% CPU) must cause some moves");
    let lineage = |name: &str| name.split("-migrated-").next().unwrap().to_string();
    let at = |j: &Value| j["details"]["start_time"].as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    let mut moves: Vec<&Value> = all.iter().collect();
    moves.sort_by_key(|j| at(j));
    for (i, later) in moves.iter().enumerate() {
        for earlier in &moves[..i] {
            let d = |j: &Value, k: &str| j["details"][k].as_str().unwrap().to_string();
            if lineage(&d(later, "pod_name")) != lineage(&d(earlier, "pod_name")) {
                continue;
            }
            let simulated = (at(later) - at(earlier)).get_seconds() as f64 * speed;
            assert!(
                simulated >= 600.0 * 0.95,
                "{} moved twice within the cooldown ({simulated:.0} simulated s apart): {earlier:#} then {later:#}",
                d(later, "pod_name")
            );
            assert!(
                !(d(later, "source_node") == d(earlier, "target_node")
                    && d(later, "target_node") == d(earlier, "source_node")),
                "ping-pong: {} went {} → {} and back",
                d(later, "pod_name"),
                d(earlier, "source_node"),
                d(earlier, "target_node")
            );
        }
    }
}

/// A policy engine on loopback that answers as told.
async fn engine(answer: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/api/v1/migration/policy",
        axum::routing::post(move |body: axum::body::Bytes| async move {
            let req: Value = serde_json::from_slice(&body).unwrap();
            // The original contract: pod name, namespace, node, labels, status, containers.
            assert!(req["pod"]["containers"].is_array() && req["pod"]["status"].is_string(), "{req}");
            match answer {
                "slow" => {
                    tokio::time::sleep(Duration::from_secs(8)).await;
                    (axum::http::StatusCode::OK, r#"{"allowed":true}"#.to_string())
                }
                "garbage" => (axum::http::StatusCode::OK, "<html>not json</html>".to_string()),
                "error" => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "{}".to_string()),
                other => (axum::http::StatusCode::OK, other.to_string()),
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

const HOT: &str = r#"
workloads:
  - kind: Pod
    name: hog-{i}
    count: 4
    nodeName: w1
    labels: {male.keti.dev/accuracy: "0.1", male.keti.dev/latency: "0.1"}
    containers: [{name: app, requests: {cpu: 500m, memory: 256Mi}, usage: {cpu: 900m, memory: 256Mi}}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_policy_engine_failure_gets_the_configured_fallback_with_its_reason() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let cases: Vec<(String, PolicyFallback, &str, &str, &str)> = vec![
        (
            engine(r#"{"allowed":true,"reason":"ok by MALE engine"}"#).await,
            PolicyFallback::Deny,
            "remote",
            "would-migrate",
            "ok by MALE engine",
        ),
        (
            engine(r#"{"allowed":false,"reason":"robot busy"}"#).await,
            PolicyFallback::Allow,
            "remote",
            "denied",
            "robot busy",
        ),
        (engine(r#"{"reason":"no opinion"}"#).await, PolicyFallback::Deny, "remote", "would-migrate", "no opinion"),
        (engine("garbage").await, PolicyFallback::Builtin, "fallback-builtin", "would-migrate", "answered badly"),
        (engine("error").await, PolicyFallback::Deny, "fallback-deny", "denied", "HTTP 500"),
        (engine("slow").await, PolicyFallback::Allow, "fallback-allow", "would-migrate", "did not answer within 5s"),
        (closed, PolicyFallback::Deny, "fallback-deny", "denied", "unreachable"),
    ];
    let env = Env::start(HOT).await;
    common::eventually(30, "metrics show w1 above the threshold", || async {
        env.service().rebalancer.plan_now().nodes.iter().any(|n| n.name == "w1" && n.pressured)
    })
    .await;
    for (url, fallback, source, action, reason) in cases {
        let s = Settings { dry_run: true, policy_engine_url: Some(url), policy_fallback: fallback, ..rebalancing() };
        let rebalancer = sdi_migration::rebalancer::Rebalancer::new(
            &s,
            env.service().rebalancer.cache.clone(),
            env.service().migrations.clone(),
            env.service().telemetry.clone(),
        )
        .unwrap();
        let report = rebalancer.cycle().await;
        assert!(!report.decisions.is_empty(), "w1 is at 90% CPU: {:#?}", report.plan);
        let d = &report.decisions[0];
        assert_eq!((d.policy.as_str(), d.action.as_str()), (source, action), "{d:#?}");
        assert!(d.reason.contains(reason), "{reason:?} not in {d:#?}");
        assert!(d.migration_id.is_none(), "dry run starts nothing");
    }
    assert!(jobs(&env).await.is_empty());
}
