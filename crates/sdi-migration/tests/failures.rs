//! Failure paths: budgets that never allow, cancellation, a target lost
//! mid-way, API-server faults, and a crash mid-job — every one ends with the
//! job finished and the cluster as it was (or the move complete), never dirty.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[allow(unused_imports)]
use sdi_migration::jobs::JobStore;

use std::collections::BTreeSet;

use common::{Env, eventually, node_of, ready, request, settings};
use serde_json::{Value, json};

/// Names of every pod and PVC in the namespace: the cluster's shape.
fn shape(env: &Env) -> BTreeSet<String> {
    let pods = env.pods("default").into_iter().map(|p| format!("pod/{}", p["metadata"]["name"].as_str().unwrap()));
    let pvcs = env
        .sim
        .dynamic("v1", "persistentvolumeclaims", Some("default"))
        .unwrap()
        .list("", "")
        .unwrap()
        .into_iter()
        .map(|p| format!("pvc/{}", p["metadata"]["name"].as_str().unwrap()));
    pods.chain(pvcs).collect()
}

fn leftovers(env: &Env) -> Vec<String> {
    let mut out = Vec::new();
    for p in env.sim.dynamic("v1", "pods", None).unwrap().list("", "").unwrap() {
        let labels = &p["metadata"]["labels"];
        let annotations = &p["metadata"]["annotations"];
        if !labels["sdi-migration/role"].is_null() || !annotations["sdi-migration/deletion-cost-job"].is_null() {
            out.push(p["metadata"]["name"].as_str().unwrap().to_string());
        }
    }
    out
}

const BUDGETED: &str = r#"
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
async fn an_eviction_blocked_by_a_budget_fails_cleanly_at_the_timeout() {
    let env = Env::start(BUDGETED).await;
    let original = env.pod("default", "db-0").unwrap();
    let from = node_of(&original).to_string();
    let target = if from == "w1" { "w2" } else { "w1" };
    let mut body = request("db-0", "default", &from, target);
    body["timeout"] = json!(3);
    let (code, created) = env.migrate(body).await;
    assert_eq!(code, 202, "{created}");
    let job = env.finished(created["migration_id"].as_str().unwrap(), 30).await;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["message"], "Migration failed: timed out after 3s");
    let evict = job["details"]["steps"].as_array().unwrap().iter().find(|s| s["name"] == "evict").unwrap().clone();
    assert_eq!(evict["status"], "failed");
    let now = env.pod("default", "db-0").unwrap();
    assert_eq!(now["metadata"]["uid"], original["metadata"]["uid"], "the budget protected the pod");
    assert!(ready(&now));
    let (_, m) = env.get("/api/v1/metrics").await;
    assert_eq!(m["failed_migrations"], 1);
}

const SLOW_BARE: &str = r#"
workloads:
  - kind: Pod
    name: slam
    nodeName: w1
    startupSeconds: 40
    containers: [{name: slam, requests: {cpu: 500m, memory: 256Mi}, usage: {cpu: 300m, memory: 200Mi}}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_mid_way_restores_the_cluster() {
    let env = Env::start_with(SLOW_BARE, settings(), 10.0).await;
    let before = shape(&env);
    let mut body = request("slam", "default", "w1", "w2");
    body["preserve_pv"] = json!(true);
    let (_, created) = env.migrate(body).await;
    let id = created["migration_id"].as_str().unwrap();
    env.reached_step(id, "wait-ready", 30).await;
    assert!(shape(&env).len() > before.len(), "the job created a copy and a PVC");
    let (code, answer) = env.delete(&format!("/api/v1/migrations/{id}")).await;
    assert_eq!(code, 202, "{answer}");
    let job = env.finished(id, 30).await;
    assert_eq!(job["status"], "cancelled", "{job:#}");
    assert_eq!(job["message"], "Migration was cancelled");
    let undo = job["details"]["steps"].as_array().unwrap().iter().find(|s| s["name"] == "undo").unwrap().clone();
    assert_eq!(undo["status"], "completed", "{job:#}");
    eventually(30, "the copy and the PVC are gone", || async { shape(&env) == before }).await;
    assert!(ready(&env.pod("default", "slam").unwrap()), "the original never stopped");
    // Cancelling again: it is over.
    let (code, again) = env.delete(&format!("/api/v1/migrations/{id}")).await;
    assert_eq!(code, 409, "{again}");
    assert_eq!(again["error"], "Migration already finished");
    let (code, _) = env.delete("/api/v1/migrations/migration-00000000").await;
    assert_eq!(code, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_target_going_not_ready_mid_way_fails_the_job_and_cleans_up() {
    let env = Env::start_with(SLOW_BARE, settings(), 10.0).await;
    let before = shape(&env);
    let (_, created) = env.migrate(request("slam", "default", "w1", "w2")).await;
    let id = created["migration_id"].as_str().unwrap();
    env.reached_step(id, "wait-ready", 30).await;
    env.set_node_ready("w2", false).await;
    let job = env.finished(id, 60).await;
    assert_eq!(job["status"], "failed", "{job:#}");
    let msg = job["message"].as_str().unwrap();
    assert!(msg.contains("target node w2 became NotReady") && msg.contains("changes undone"), "{msg}");
    eventually(30, "the copy is gone", || async { shape(&env) == before }).await;
    assert!(ready(&env.pod("default", "slam").unwrap()));
}

const TWO_DEPLOYMENTS: &str = r#"
workloads:
  - kind: Deployment
    name: web
    replicas: 2
    containers: [{name: nginx, requests: {cpu: 100m, memory: 64Mi}}]
  - kind: Pod
    name: solo
    nodeName: w1
    containers: [{name: app, requests: {cpu: 100m, memory: 64Mi}}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_faults_never_leave_a_job_hanging_or_the_cluster_dirty() {
    let env = Env::start(TWO_DEPLOYMENTS).await;
    let web: Vec<Value> = env.pods("default").into_iter().filter(|p| p["metadata"]["labels"]["app"] == "web").collect();
    // One in four writes and reads fails (500 or 429); watches are cut while jobs wait.
    env.faults(json!({"seed": 3, "rules": [
        {"verbs": ["create", "patch", "delete", "get", "list"], "resources": ["pods", "pods/eviction", "persistentvolumeclaims"],
         "rate": 0.25, "error": {"type": "serverError"}},
        {"verbs": ["patch", "create"], "resources": ["pods"], "rate": 0.15, "error": {"type": "tooManyRequests", "retryAfterSeconds": 1}}
    ]}))
    .await;
    let mut ids = Vec::new();
    let w = &web[0];
    let target = if node_of(w) == "w3" { "w2" } else { "w3" };
    for body in [
        request(w["metadata"]["name"].as_str().unwrap(), "default", node_of(w), target),
        request("solo", "default", "w1", "w2"),
    ] {
        // Preflight reads may fail too: the client retries, or we get a 503 and try again.
        let mut tries = 0;
        loop {
            let (code, created) = env.migrate(body.clone()).await;
            if code == 202 {
                ids.push(created["migration_id"].as_str().unwrap().to_string());
                break;
            }
            assert_eq!(code, 503, "only an unavailable API may refuse: {created}");
            tries += 1;
            assert!(tries < 20, "preflight never got through");
        }
    }
    for _ in 0..3 {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        env.sim.api().disconnect_watches();
    }
    for id in &ids {
        let job = env.finished(id, 90).await;
        let status = job["status"].as_str().unwrap();
        assert!(status == "completed" || status == "failed", "{job:#}");
    }
    env.faults(json!({"rules": []})).await;
    eventually(30, "no copy or lowered cost left behind", || async { leftovers(&env).is_empty() }).await;
    // Whatever happened, each workload is whole.
    eventually(30, "two web replicas Ready and solo running once", || async {
        let pods = env.pods("default");
        let web = pods.iter().filter(|p| p["metadata"]["labels"]["app"] == "web" && ready(p)).count();
        let solo = pods
            .iter()
            .filter(|p| {
                p["metadata"]["annotations"]["sdi-migration/original-pod"] == "solo" || p["metadata"]["name"] == "solo"
            })
            .filter(|p| ready(p))
            .count();
        web == 2 && solo == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_job_is_repaired_on_the_next_start() {
    let mut env = Env::start_with(SLOW_BARE, settings(), 10.0).await;
    let before = shape(&env);
    let mut body = request("slam", "default", "w1", "w2");
    body["preserve_pv"] = json!(true);
    let (_, created) = env.migrate(body).await;
    let id = created["migration_id"].as_str().unwrap().to_string();
    env.reached_step(&id, "wait-ready", 30).await;
    env.service.take().unwrap().abort();
    assert_eq!(leftovers(&env).len(), 1, "the crash left the copy behind");
    assert!(shape(&env).len() == before.len() + 2);

    env.start_service(settings()).await;
    let report = &env.service().repair;
    assert_eq!(report.undone.len(), 1, "{report:?}");
    assert!(report.undone[0].starts_with(&id) && report.undone[0].contains("deleted copy"), "{report:?}");
    eventually(30, "cluster back to its starting shape", || async { shape(&env) == before }).await;
    assert!(ready(&env.pod("default", "slam").unwrap()));
    // A second start finds nothing to do.
    env.service.take().unwrap().shutdown(std::time::Duration::from_secs(1)).await;
    env.start_service(settings()).await;
    assert_eq!(env.service().repair, Default::default());
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
async fn a_crash_with_a_staged_surge_copy_and_a_pinned_deployment_is_undone() {
    let mut env = Env::start_with(SLOW_DEPLOYMENT, settings(), 10.0).await;
    let before = shape(&env);
    let web = env.pods("default");
    let (a, b) = (&web[0], &web[1]);
    let target = |p: &Value| if node_of(p) == "w3" { "w1" } else { "w3" }.to_string();
    let (_, s) = env.migrate(request(a["metadata"]["name"].as_str().unwrap(), "default", node_of(a), &target(a))).await;
    env.reached_step(s["migration_id"].as_str().unwrap(), "wait-ready", 30).await;
    env.service.take().unwrap().abort();

    env.start_service(settings()).await;
    assert_eq!(env.service().repair.undone.len(), 1, "{:?}", env.service().repair);
    eventually(30, "surge copy removed", || async { shape(&env) == before }).await;

    let mut pin = request(b["metadata"]["name"].as_str().unwrap(), "default", node_of(b), &target(b));
    pin["strategy"] = json!("pin");
    let (_, p) = env.migrate(pin).await;
    env.reached_step(p["migration_id"].as_str().unwrap(), "wait-rollout", 30).await;
    env.service.take().unwrap().abort();
    env.start_service(settings()).await;
    let report = env.service().repair.clone();
    assert_eq!(report.undone.len(), 1, "{report:?}");
    assert!(report.undone[0].contains("node selector restored"), "{report:?}");
    let dep = env.sim.dynamic("apps/v1", "deployments", Some("default")).unwrap().get("web").unwrap();
    assert!(dep["spec"]["template"]["spec"]["nodeSelector"].get("kubernetes.io/hostname").is_none(), "{dep:#}");
    assert!(dep["metadata"]["annotations"].get("sdi-migration/pinned-by").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_gives_running_jobs_their_grace_then_undoes_them() {
    let mut env = Env::start_with(SLOW_BARE, settings(), 10.0).await;
    let before = shape(&env);
    let (_, created) = env.migrate(request("slam", "default", "w1", "w2")).await;
    let id = created["migration_id"].as_str().unwrap().to_string();
    env.reached_step(&id, "wait-ready", 30).await;
    let service = env.service.take().unwrap();
    let runner = service.runner.clone();
    service.shutdown(std::time::Duration::from_millis(200)).await;
    let job = runner.store.get(&id).unwrap();
    assert_eq!(job.status.as_str(), "cancelled", "{job:?}");
    assert!(job.details.error.as_deref().unwrap().contains("changes undone"), "{job:?}");
    eventually(30, "cluster back to its starting shape", || async { shape(&env) == before }).await;
}

/// A copy that appears after its job ended (a deposed leader's create that
/// passed its fence, then stalled) is undone by the leader's periodic sweep;
/// the copy of a job running here is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_written_after_its_job_ended_is_swept_and_a_running_job_s_is_not() {
    // At 2x the copy of the real move needs 20 s to be Ready: longer than a sweep period.
    let env = Env::start_with(SLOW_BARE, settings(), 2.0).await;
    let original = env.pod("default", "slam").unwrap();
    let (_, created) = env.migrate(request("slam", "default", "w1", "w2")).await;
    let id = created["migration_id"].as_str().unwrap().to_string();
    env.reached_step(&id, "wait-ready", 30).await;
    let live_copy = |env: &Env| {
        env.pods("default").into_iter().find(|p| {
            p["metadata"]["labels"]["sdi-migration/job"] == id.as_str() && p["metadata"]["deletionTimestamp"].is_null()
        })
    };
    assert!(live_copy(&env).is_some(), "the running job's copy");

    let late = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "slam-late-copy", "namespace": "default",
                     "labels": {"sdi-migration/role": "copy", "sdi-migration/job": "migration-0000dead"},
                     "annotations": {"sdi-migration/original-pod": "slam",
                                     "sdi-migration/original-uid": original["metadata"]["uid"]}},
        "spec": {"nodeName": "w3", "containers": [{"name": "slam", "image": "x"}]}
    });
    env.sim.dynamic("v1", "pods", Some("default")).unwrap().create(late).unwrap();
    let gone =
        |env: &Env| env.pod("default", "slam-late-copy").is_none_or(|p| !p["metadata"]["deletionTimestamp"].is_null());
    eventually(30, "the sweep to delete the late copy", || async { gone(&env) }).await;
    let (_, job) = env.get(&format!("/api/v1/migrations/{id}")).await;
    assert_eq!(job["status"], "running", "the sweep came while the real move was still running: {job:#}");
    assert!(live_copy(&env).is_some(), "the sweep left the running job's copy alone");
    let metrics = env.http.get(env.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"sdi_repair_objects_total{outcome="undone"} 1"#), "{metrics}");

    assert_eq!(env.delete(&format!("/api/v1/migrations/{id}")).await.0, 202);
    assert_eq!(env.finished(&id, 30).await["status"], "cancelled");
    assert!(ready(&env.pod("default", "slam").unwrap()), "the original still serves");
}

/// A leftover whose markers cannot be read (a copy without its original-pod
/// annotation) is reported — log, Event, metric — and the rest is still
/// repaired: the service always starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_leftover_is_reported_and_the_rest_repaired() {
    let mut env = Env::start_with(SLOW_BARE, settings(), 10.0).await;
    let pods = env.sim.dynamic("v1", "pods", Some("default")).unwrap();
    let broken = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "orphan-copy", "namespace": "default",
                     "labels": {"sdi-migration/role": "copy", "sdi-migration/job": "migration-0badc0de"}},
        "spec": {"nodeName": "w3", "containers": [{"name": "c", "image": "x"}]}
    });
    pods.create(broken).unwrap();
    let (_, created) = env.migrate(request("slam", "default", "w1", "w2")).await;
    let id = created["migration_id"].as_str().unwrap().to_string();
    env.reached_step(&id, "wait-ready", 30).await;
    env.service.take().unwrap().abort();

    env.start_service(settings()).await;
    let report = env.service().repair.clone();
    assert_eq!(report.malformed.len(), 1, "{report:?}");
    assert!(report.malformed[0].contains("orphan-copy") && report.malformed[0].contains("original-pod"), "{report:?}");
    assert_eq!(report.undone.len(), 1, "the interrupted job's copy is still undone: {report:?}");
    assert!(report.failed.is_empty(), "{report:?}");
    assert!(env.pod("default", "orphan-copy").is_some(), "a malformed leftover is not touched");
    let events = env.sim.dynamic("events.k8s.io/v1", "events", Some("default")).unwrap().list("", "").unwrap();
    assert!(
        events.iter().any(|e| e["regarding"]["name"] == "orphan-copy" && e["reason"] == "MigrationRepairSkipped"),
        "{events:#?}"
    );
    let metrics = env.http.get(env.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"sdi_repair_objects_total{outcome="malformed"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"sdi_repair_objects_total{outcome="undone"} 1"#), "{metrics}");
    // The API serves.
    assert_eq!(env.get("/health").await.0, 200);
}
