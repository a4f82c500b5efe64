//! The exact writes each strategy makes to the cluster — on the happy path and
//! when it is undone — from the job's own write log (every write goes through
//! the one writer, which records it). A strategy that starts writing more, or in
//! another order, fails here; the per-move benchmark only prints the counts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[allow(unused_imports)]
use sdi_migration::jobs::JobStore;

use common::{Env, node_of, request, settings};
use serde_json::json;

/// The job's writes as `verb resource object`, with its new pod's name shown as `<new>`.
fn writes(env: &Env, id: &str) -> Vec<String> {
    let job = env.service().runner.store.get(id).unwrap();
    let new = &job.details.new_pod_name;
    job.writes
        .iter()
        .map(|w| {
            let line = w.to_string();
            if new.is_empty() { line } else { line.replace(new.as_str(), "<new>") }
        })
        .collect()
}

const BARE: &str = r#"
workloads:
  - kind: Pod
    name: trainer
    nodeName: w1
    containers:
      - name: main
        requests: {cpu: 500m, memory: 512Mi}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_writes() {
    let env = Env::start(BARE).await;
    let (_, created) = env.migrate(request("trainer", "default", "w1", "w2")).await;
    let id = created["migration_id"].as_str().unwrap();
    assert_eq!(env.finished(id, 60).await["status"], "completed");
    assert_eq!(
        writes(&env, id),
        [
            "event events MigrationStarted",
            "create pods default/<new>",
            "delete pods default/trainer",
            "patch pods default/<new>",
            "event events MigrationSucceeded",
            "event events MigrationSucceeded",
        ]
    );

    // With the checkpoint volume and a checkpoint: the PVC first, then the kubelet's archive.
    let new = env.service().runner.store.get(id).unwrap().details.new_pod_name;
    let mut body = request(&new, "default", "w2", "w3");
    body["preserve_pv"] = json!(true);
    let (_, created) = env.migrate(body).await;
    let id = created["migration_id"].as_str().unwrap();
    assert_eq!(env.finished(id, 60).await["status"], "completed");
    let got = writes(&env, id);
    assert_eq!(got.len(), 8, "{got:#?}");
    assert_eq!(got[0], "event events MigrationStarted");
    assert!(got[1].starts_with("create persistentvolumeclaims default/checkpoint-"), "{got:#?}");
    assert_eq!(got[2], format!("checkpoint nodes w2 default/{new}/main"));
    assert_eq!(
        got[3..],
        [
            "create pods default/<new>",
            &format!("delete pods default/{new}"),
            "patch pods default/<new>",
            "event events MigrationSucceeded",
            "event events MigrationSucceeded"
        ]
    );
}

const SLOW_BARE: &str = r#"
workloads:
  - kind: Pod
    name: slam
    nodeName: w1
    startupSeconds: 40
    containers: [{name: slam, requests: {cpu: 500m, memory: 256Mi}}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_undo_writes() {
    let env = Env::start_with(SLOW_BARE, settings(), 10.0).await;
    let (_, created) = env.migrate(request("slam", "default", "w1", "w2")).await;
    let id = created["migration_id"].as_str().unwrap();
    env.reached_step(id, "wait-ready", 30).await;
    env.set_node_ready("w2", false).await;
    let job = env.finished(id, 60).await;
    assert_eq!((job["status"].as_str(), job["details"]["error_category"].as_str()), (Some("failed"), Some("target")));
    assert_eq!(
        writes(&env, id),
        [
            "event events MigrationStarted",
            "create pods default/<new>",
            "delete pods default/<new>",
            "event events MigrationFailedTarget",
            "event events MigrationFailedTarget",
        ]
    );
}

const DEPLOYMENT: &str = r#"
workloads:
  - kind: Deployment
    name: web
    replicas: 2
    containers: [{name: nginx, requests: {cpu: 100m, memory: 64Mi}}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surge_and_pin_writes() {
    let env = Env::start(DEPLOYMENT).await;
    let pods = env.pods("default");
    let (name, from) = (pods[0]["metadata"]["name"].as_str().unwrap().to_string(), node_of(&pods[0]).to_string());
    let to = if from == "w3" { "w1" } else { "w3" };
    let (_, created) = env.migrate(request(&name, "default", &from, to)).await;
    let id = created["migration_id"].as_str().unwrap();
    assert_eq!(env.finished(id, 60).await["status"], "completed");
    assert_eq!(
        writes(&env, id),
        [
            "event events MigrationStarted".to_string(),
            "create pods default/<new>".into(),
            format!("patch pods default/{name}"),
            "patch pods default/<new>".into(),
            "event events MigrationSucceeded".into(),
            "event events MigrationSucceeded".into(),
        ]
    );

    let pods = env.pods("default");
    let p = pods.iter().find(|p| p["metadata"]["deletionTimestamp"].is_null()).unwrap();
    let from = node_of(p).to_string();
    let to = if from == "w2" { "w1" } else { "w2" };
    let mut body = request(p["metadata"]["name"].as_str().unwrap(), "default", &from, to);
    body["strategy"] = json!("pin");
    let (_, created) = env.migrate(body).await;
    let id = created["migration_id"].as_str().unwrap();
    assert_eq!(env.finished(id, 60).await["status"], "completed");
    assert_eq!(
        writes(&env, id),
        [
            "event events MigrationStarted",
            "patch deployments default/web",
            "patch deployments default/web",
            "event events MigrationSucceeded",
            "event events MigrationSucceeded",
        ]
    );
}

const SLOW_DEPLOYMENT: &str = r#"
workloads:
  - kind: Deployment
    name: web
    replicas: 2
    startupSeconds: 30
    containers: [{name: nginx, requests: {cpu: 100m, memory: 64Mi}}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surge_and_pin_undo_writes() {
    let env = Env::start_with(SLOW_DEPLOYMENT, settings(), 10.0).await;
    let pods = env.pods("default");
    let (a, b) = (&pods[0], &pods[1]);
    let target = |p: &serde_json::Value| if node_of(p) == "w3" { "w1" } else { "w3" }.to_string();

    // Surge cancelled while its copy starts: the copy goes, nothing else was touched.
    let (_, created) =
        env.migrate(request(a["metadata"]["name"].as_str().unwrap(), "default", node_of(a), &target(a))).await;
    let id = created["migration_id"].as_str().unwrap();
    env.reached_step(id, "wait-ready", 30).await;
    assert_eq!(env.delete(&format!("/api/v1/migrations/{id}")).await.0, 202);
    let job = env.finished(id, 30).await;
    assert_eq!(
        (job["status"].as_str(), job["details"]["error_category"].as_str()),
        (Some("cancelled"), Some("cancelled"))
    );
    assert_eq!(
        writes(&env, id),
        [
            "event events MigrationStarted",
            "create pods default/<new>",
            "delete pods default/<new>",
            "event events MigrationCancelled",
            "event events MigrationCancelled",
        ]
    );

    // Pin cancelled during its rollout: the selector is put back.
    let mut body = request(b["metadata"]["name"].as_str().unwrap(), "default", node_of(b), &target(b));
    body["strategy"] = json!("pin");
    let (_, created) = env.migrate(body).await;
    let id = created["migration_id"].as_str().unwrap();
    env.reached_step(id, "wait-rollout", 30).await;
    assert_eq!(env.delete(&format!("/api/v1/migrations/{id}")).await.0, 202);
    assert_eq!(env.finished(id, 30).await["status"], "cancelled");
    assert_eq!(
        writes(&env, id),
        [
            "event events MigrationStarted",
            "patch deployments default/web",
            "patch deployments default/web",
            "event events MigrationCancelled",
            "event events MigrationCancelled",
        ]
    );
}

const STATEFUL: &str = r#"
workloads:
  - kind: StatefulSet
    name: db
    replicas: 1
    containers: [{name: postgres, requests: {cpu: 100m, memory: 128Mi}}]
  - kind: PodDisruptionBudget
    name: db
    minAvailable: 1
    selector: {matchLabels: {app: db}}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evict_writes_and_a_refused_eviction_undoes_nothing() {
    let env = Env::start(STATEFUL).await;
    let from = node_of(&env.pod("default", "db-0").unwrap()).to_string();
    let to = if from == "w1" { "w2" } else { "w1" };
    // The budget refuses every attempt until the timeout; eviction writes nothing to undo.
    let mut body = request("db-0", "default", &from, to);
    body["timeout"] = json!(2);
    let (_, created) = env.migrate(body).await;
    let id = created["migration_id"].as_str().unwrap();
    let job = env.finished(id, 30).await;
    assert_eq!((job["status"].as_str(), job["details"]["error_category"].as_str()), (Some("failed"), Some("timeout")));
    let got = writes(&env, id);
    assert_eq!(got.first().map(String::as_str), Some("event events MigrationStarted"));
    assert_eq!(got[got.len() - 2..], ["event events MigrationFailedTimeout", "event events MigrationFailedTimeout"]);
    let middle = &got[1..got.len() - 2];
    assert!(!middle.is_empty() && middle.iter().all(|w| w == "evict pods default/db-0"), "{got:#?}");
}
