//! Least privilege, proven by behaviour: against kube-sim enforcing RBAC, the
//! service runs as `deploy/`'s ServiceAccount through every strategy
//! (recreate with a checkpoint and its PVC, surge, pin, evict), a migration
//! started as a kubectl-made PodMigration, a cancellation and its undo, the rebalancer's cycles, a crash and the next leader's repair
//! and history collection, and its API's access checks. kube-sim records every
//! (verb, group, resource) it was allowed: that set must equal the rules of
//! its ClusterRole plus `system:auth-delegator`'s — nothing missing (no
//! denial), nothing unused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Env, SERVICE_USER, request, settings};
use sdi_migration::cluster::rbac::{DELEGATED_AUTH_RULES, RULES};
use sdi_migration::config::Settings;
use serde_json::json;

const CLUSTER: &str = r#"
workloads:
  - kind: Pod
    name: bare
    nodeName: w1
    containers: [{name: main, requests: {cpu: 100m, memory: 64Mi}, usage: {cpu: 50m, memory: 32Mi}}]
  - kind: Pod
    name: slow
    nodeName: w1
    startupSeconds: 60
    containers: [{name: main, requests: {cpu: 100m, memory: 64Mi}}]
  - kind: Deployment
    name: web
    replicas: 2
    containers: [{name: app, requests: {cpu: 100m, memory: 64Mi}}]
  - kind: Deployment
    name: api
    replicas: 1
    containers: [{name: app, requests: {cpu: 100m, memory: 64Mi}}]
  - kind: StatefulSet
    name: db
    replicas: 1
    containers: [{name: db, requests: {cpu: 100m, memory: 64Mi}}]
  - kind: PodDisruptionBudget
    name: db
    maxUnavailable: 1
    selector: {matchLabels: {app: db}}
"#;

type Triples = BTreeSet<(String, String, String)>;

/// Rules as the (verb, group, resource) triples RBAC checks.
fn triples(rules: &[(&str, &str, &[&str])]) -> Triples {
    let mut out = Triples::new();
    for (group, resource, verbs) in rules {
        for verb in *verbs {
            out.insert((verb.to_string(), group.to_string(), resource.to_string()));
        }
    }
    out
}

/// A request moving the first pod named `prefix*` off its node.
fn move_one(env: &Env, prefix: &str) -> serde_json::Value {
    let pods = env.pods("default");
    let pod = pods
        .iter()
        .find(|p| p["metadata"]["name"].as_str().unwrap().starts_with(prefix) && common::ready(p))
        .unwrap_or_else(|| panic!("no Ready pod {prefix}*"));
    let from = common::node_of(pod);
    let to = ["w1", "w2", "w3"].into_iter().find(|n| *n != from).unwrap();
    request(pod["metadata"]["name"].as_str().unwrap(), "default", from, to)
}

async fn completed(env: &Env, body: serde_json::Value) -> String {
    let (code, created) = env.migrate(body).await;
    assert_eq!(code, 202, "{created}");
    let id = created["migration_id"].as_str().unwrap().to_string();
    let job = env.finished(&id, 90).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_uses_exactly_its_cluster_role() {
    let s = Settings {
        // The rebalancer's cycles run (nothing is hot: they plan and move nothing).
        enable_auto_migration: true,
        migration_check_interval: 1,
        // One finished migration kept: the next leader deletes the rest.
        migration_history_max: 1,
        ..settings()
    };
    let mut env = Env::start_with(CLUSTER, s.clone(), 5.0).await;

    // recreate, with a checkpoint and its PVC.
    let mut body = request("bare", "default", "w1", "w2");
    body["preserve_pv"] = json!(true);
    body["checkpoint"] = json!(true);
    completed(&env, body).await;
    // surge, pin, evict.
    completed(&env, move_one(&env, "web-")).await;
    let mut body = move_one(&env, "api-");
    body["strategy"] = json!("pin");
    completed(&env, body).await;
    completed(&env, move_one(&env, "db-0")).await;
    // A target the cache does not know is read from the API (and refused).
    let (code, body) = env.migrate(request("slow", "default", "w1", "w9")).await;
    assert_eq!(code, 422, "{body}");

    // The cache lags (its ReplicaSet and Deployment watches fail): what the
    // strategies need is read from the API instead.
    env.faults(json!({"rules": [{"verbs": ["list", "watch"], "resources": ["replicasets", "deployments"],
                                 "rate": 1.0, "error": {"type": "serverError"}}]}))
        .await;
    env.sim.api().disconnect_watches();
    // Now and then the cache still learns of the new Deployment (not understood
    // yet); then a fresh one is tried, at most three times.
    let mut late = None;
    for name in ["late", "later", "latest"] {
        let manifest = format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec: {{containers: [{{name: app, image: app, resources: {{requests: {{cpu: 100m, memory: 64Mi}}}}}}]}}\n"
        );
        let manifest: serde_json::Value = serde_yaml_ng::from_str(&manifest).unwrap();
        env.sim.dynamic("apps/v1", "deployments", Some("default")).unwrap().create(manifest).unwrap();
        let prefix = format!("{name}-");
        common::eventually(30, &format!("{name}'s two pods Ready"), || async {
            env.pods("default")
                .iter()
                .filter(|p| p["metadata"]["name"].as_str().unwrap().starts_with(&prefix) && common::ready(p))
                .count()
                == 2
        })
        .await;
        if env.service().rebalancer.cache.deployment("default", name).is_none() {
            late = Some(name);
            break;
        }
    }
    let late = late.expect("a Deployment the cache does not know");
    let prefix = format!("{late}-");
    completed(&env, move_one(&env, &prefix)).await;
    // Now only the Deployment is unknown (its ReplicaSet is listed again).
    env.faults(json!({"rules": [{"verbs": ["list", "watch"], "resources": ["deployments"],
                                 "rate": 1.0, "error": {"type": "serverError"}}]}))
        .await;
    env.sim.api().disconnect_watches();
    let rs =
        env.sim.dynamic("apps/v1", "replicasets", Some("default")).unwrap().list(&format!("app={late}"), "").unwrap();
    let rs = rs[0]["metadata"]["name"].as_str().unwrap().to_string();
    let cache = env.service().rebalancer.cache.clone();
    common::eventually(30, "the cache to list late's ReplicaSet", || {
        let known = cache.replicaset("default", &rs).is_some();
        async move { known }
    })
    .await;
    assert!(cache.deployment("default", late).is_none(), "the cache must not know {late} yet");
    let mut body = move_one(&env, &prefix);
    body["strategy"] = json!("pin");
    let (code, created) = env.migrate(body).await;
    assert_eq!(code, 202, "{created}");
    let id = created["migration_id"].as_str().unwrap().to_string();
    env.reached_step(&id, "wait-rollout", 30).await;
    // The rollout is followed through the cache: let it see Deployments again.
    env.clear_faults();
    env.sim.api().disconnect_watches();
    let job = env.finished(&id, 90).await;
    assert_eq!(job["status"], "completed", "{job:#}");

    // Cancelled mid-way: the copy and the PVC are undone.
    let mut body = request("slow", "default", "w1", "w3");
    body["preserve_pv"] = json!(true);
    let (code, created) = env.migrate(body).await;
    assert_eq!(code, 202, "{created}");
    let id = created["migration_id"].as_str().unwrap().to_string();
    env.reached_step(&id, "wait-ready", 30).await;
    let (code, body) = env.delete(&format!("/api/v1/migrations/{id}")).await;
    assert_eq!(code, 202, "{body}");
    assert_eq!(env.finished(&id, 60).await["status"], "cancelled");

    // Made with kubectl, with someone else's finalizer first: ours is found
    // (read) and removed at the end, theirs is kept.
    let body = move_one(&env, "web-");
    let pmigs = env.sim.dynamic("migration.sdi.keti.dev/v1alpha1", "podmigrations", Some("default")).unwrap();
    pmigs
        .create(json!({"apiVersion": "migration.sdi.keti.dev/v1alpha1", "kind": "PodMigration",
            "metadata": {"name": "held", "finalizers": ["example.com/hold"]},
            "spec": {"podName": body["pod_name"], "sourceNode": body["source_node"], "targetNode": body["target_node"]}}))
        .unwrap();
    common::wait_for(Duration::from_secs(90), "completed, ours released, theirs kept", || {
        let o = pmigs.get("held").unwrap();
        async move {
            let done =
                o["status"]["phase"] == "completed" && o["metadata"]["finalizers"] == json!(["example.com/hold"]);
            if done { Ok(()) } else { Err(format!("{:#}", o)) }
        }
    })
    .await;
    pmigs.patch("held", None, kube_sim::PatchType::Merge, &json!({"metadata": {"finalizers": null}})).unwrap();

    // A crash, and the next leader: takeover, repair, history collection.
    env.service.take().unwrap().abort();
    env.start_service(s).await;
    common::wait_for(Duration::from_secs(30), "history to keep one finished migration", || async {
        let n = env.service().runner.store.list(&Default::default()).len();
        if n <= 1 { Ok(()) } else { Err(format!("{n} kept")) }
    })
    .await;
    let cycles = env.service().rebalancer.cycles();
    common::eventually(30, "two rebalancer cycles", || {
        let now = env.service().rebalancer.cycles();
        async move { now >= cycles + 2 }
    })
    .await;

    let log = &env.sim.api().requests;
    let denied: Vec<_> = log.denied().into_iter().filter(|(k, _)| k.user == SERVICE_USER).collect();
    assert!(denied.is_empty(), "the service was refused: {denied:#?}");
    let used = log.used_by(SERVICE_USER);
    let mut granted = triples(RULES);
    granted.extend(triples(DELEGATED_AUTH_RULES));
    let missing: Vec<_> = used.difference(&granted).collect();
    let unused: Vec<_> = granted.difference(&used).collect();
    assert!(
        missing.is_empty() && unused.is_empty(),
        "used vs granted\n  used but not granted: {missing:?}\n  granted but unused: {unused:?}"
    );
}
