//! Each strategy through the HTTP API against a live simulated cluster: the pod
//! ends on the target, Ready; the original is gone; and what each strategy
//! promises (only running containers copied, PVC mounted, replicas never drop)
//! holds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Env, eventually, node_of, ready, request};
use futures::StreamExt;
use serde_json::{Value, json};

const BARE: &str = r#"
workloads:
  - kind: Pod
    name: tensorflow-pod
    nodeName: w1
    containers:
      - name: trainer
        requests: {cpu: 500m, memory: 512Mi}
        usage: {cpu: 400m, memory: 300Mi}
      - name: downloader
        behaviour: complete
        requests: {cpu: 100m, memory: 64Mi}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_moves_a_bare_pod_with_only_its_running_containers_and_the_checkpoint_pvc() {
    let env = Env::start(BARE).await;
    let mut body = request("tensorflow-pod", "default", "w1", "w2");
    body["preserve_pv"] = json!(true);
    let (code, created) = env.migrate(body).await;
    assert_eq!(code, 202, "{created}");
    assert_eq!(created["message"], "Migration started");
    assert_eq!(created["status"], "pending");
    let id = created["migration_id"].as_str().unwrap().to_string();

    let job = env.finished(&id, 60).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(job["message"], "Migration completed successfully");
    let d = &job["details"];
    assert_eq!(d["strategy"], "recreate");
    let states: Vec<(&str, &str, bool)> = d["container_states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["state"].as_str().unwrap(), c["should_migrate"].as_bool().unwrap()))
        .collect();
    assert_eq!(states, [("trainer", "running", true), ("downloader", "completed", false)]);
    let steps: Vec<&str> = d["steps"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        steps,
        [
            "capture-state",
            "create-checkpoint-pvc",
            "checkpoint",
            "create-pod",
            "wait-ready",
            "delete-original",
            "measure"
        ]
    );
    assert!(d["steps"].as_array().unwrap().iter().all(|s| s["status"] == "completed"), "{d:#}");
    assert!(d["original_resources"]["cpu_usage"].as_f64().unwrap() > 0.3, "measured, not invented: {d:#}");
    assert!(d["duration"].as_u64().unwrap() > 0);
    assert!(d["checkpoint_path"].as_str().unwrap().contains("trainer"), "{d:#}");

    // The cluster: the copy runs on w2 with one container and the PVC; the original is going or gone.
    let new_name = d["new_pod_name"].as_str().unwrap();
    assert!(new_name.starts_with("tensorflow-pod-migrated-"));
    let copy = env.pod("default", new_name).unwrap();
    assert_eq!(node_of(&copy), "w2");
    assert!(ready(&copy));
    let containers = copy["spec"]["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0]["name"], "trainer");
    assert_eq!(containers[0]["volumeMounts"].as_array().unwrap().last().unwrap()["mountPath"], "/migration-checkpoint");
    let pvc_name = d["pv_claim_name"].as_str().unwrap();
    assert!(pvc_name.starts_with("checkpoint-tensorflow-pod-"));
    let volume = copy["spec"]["volumes"].as_array().unwrap().iter().find(|v| v["name"] == "checkpoint-volume").unwrap();
    assert_eq!(volume["persistentVolumeClaim"]["claimName"], pvc_name);
    assert_eq!(copy["metadata"]["labels"]["migration.sdi/original-pod"], "tensorflow-pod");
    assert_eq!(copy["metadata"]["labels"]["migration.sdi/target-node"], "w2");
    let pvc = env.sim.dynamic("v1", "persistentvolumeclaims", Some("default")).unwrap().get(pvc_name).unwrap();
    assert_eq!(pvc["spec"]["accessModes"], json!(["ReadWriteOnce"]));
    assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "1Gi");
    assert_eq!(pvc["metadata"]["labels"]["component"], "migration-checkpoint");
    eventually(30, "original gone", || async { env.pod("default", "tensorflow-pod").is_none() }).await;

    // Events on the pod tell the story.
    let events = env.sim.dynamic("events.k8s.io/v1", "events", Some("default")).unwrap().list("", "").unwrap();
    let reasons: Vec<&str> = events
        .iter()
        .filter(|e| e["regarding"]["name"] == "tensorflow-pod")
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert!(reasons.contains(&"MigrationStarted") && reasons.contains(&"MigrationSucceeded"), "{reasons:?}");
    let node_events = env.sim.dynamic("events.k8s.io/v1", "events", Some("default")).unwrap().list("", "").unwrap();
    assert!(
        node_events.iter().any(|e| e["regarding"]["kind"] == "Node"
            && e["regarding"]["name"] == "w2"
            && e["reason"] == "MigrationSucceeded"),
        "an event on the target node: {node_events:#?}"
    );

    // The totals.
    let (_, m) = env.get("/api/v1/metrics").await;
    assert_eq!((m["total_migrations"].as_u64(), m["successful_migrations"].as_u64()), (Some(1), Some(1)));
    assert!(m["average_duration"].as_u64().unwrap() > 0);
}

const DEPLOYMENT: &str = r#"
workloads:
  - kind: Deployment
    name: web
    replicas: 3
    nodeSelector: {}
    containers:
      - name: nginx
        requests: {cpu: 200m, memory: 128Mi}
        usage: {cpu: 100m, memory: 100Mi}
  - kind: PodDisruptionBudget
    name: web
    minAvailable: 3
    selector: {matchLabels: {app: web}}
"#;

fn ready_replicas(pods: &[Value]) -> usize {
    pods.iter()
        .filter(|p| p["metadata"]["labels"]["app"] == "web" && ready(p) && !p["metadata"]["ownerReferences"].is_null())
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surge_moves_a_deployment_pod_without_ever_dropping_a_ready_replica() {
    let env = Env::start(DEPLOYMENT).await;
    let pods = env.pods("default");
    let victim = pods.iter().find(|p| node_of(p) != "w3").expect("a web pod off w3");
    let (name, from) = (victim["metadata"]["name"].as_str().unwrap().to_string(), node_of(victim).to_string());
    let before = ready_replicas(&pods);
    assert_eq!(before, 3);

    // Watch every pod change and track the number of Ready replicas owned by the ReplicaSet.
    let mut watch = Box::pin(env.sim.dynamic("v1", "pods", Some("default")).unwrap().watch());
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let observer = {
        let sim = env.sim.dynamic("v1", "pods", Some("default")).unwrap();
        tokio::spawn(async move {
            let (mut min, mut events) = (usize::MAX, 0);
            loop {
                tokio::select! {
                    ev = watch.next() => {
                        if ev.is_none() { break; }
                        events += 1;
                        min = min.min(ready_replicas(&sim.list("", "").unwrap()));
                    }
                    _ = &mut stopped => break,
                }
            }
            (min, events)
        })
    };

    let (code, created) = env.migrate(request(&name, "default", &from, "w3")).await;
    assert_eq!(code, 202, "{created}");
    let id = created["migration_id"].as_str().unwrap();
    let job = env.finished(id, 60).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(job["details"]["strategy"], "surge");
    let new_name = job["details"]["new_pod_name"].as_str().unwrap();
    eventually(30, "original gone", || async { env.pod("default", &name).is_none() }).await;
    let copy = env.pod("default", new_name).unwrap();
    assert_eq!(node_of(&copy), "w3");
    assert!(ready(&copy));
    assert_eq!(copy["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet", "adopted: {copy:#}");
    assert!(copy["metadata"]["labels"].get("sdi-migration/role").is_none());
    let after = env.pods("default");
    assert_eq!(ready_replicas(&after), 3, "back to 3 replicas, no extra: {after:#?}");

    stop.send(()).unwrap();
    let (min, events) = observer.await.unwrap();
    assert!(events >= 4, "the watch saw the move ({events} events)");
    assert_eq!(min, before, "Ready replicas never dropped below {before}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_moves_every_replica_of_the_deployment_to_the_target() {
    let env = Env::start(DEPLOYMENT).await;
    let pods = env.pods("default");
    let victim = pods.iter().find(|p| node_of(p) != "w3").unwrap();
    let name = victim["metadata"]["name"].as_str().unwrap();
    let mut body = request(name, "default", node_of(victim), "w3");
    body["strategy"] = json!("pin");
    let (code, created) = env.migrate(body).await;
    assert_eq!(code, 202, "{created}");
    let job = env.finished(created["migration_id"].as_str().unwrap(), 60).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(job["details"]["strategy"], "pin");
    assert_eq!(job["details"]["new_node_name"], "w3");

    let dep = env.sim.dynamic("apps/v1", "deployments", Some("default")).unwrap().get("web").unwrap();
    assert_eq!(dep["spec"]["template"]["spec"]["nodeSelector"]["kubernetes.io/hostname"], "w3");
    let annotations = dep["metadata"]["annotations"].as_object().cloned().unwrap_or_default();
    assert!(!annotations.keys().any(|k| k.starts_with("sdi-migration/")), "markers removed: {annotations:?}");
    eventually(30, "every web replica Ready on w3 and nothing else left", || async {
        let web: Vec<Value> =
            env.pods("default").into_iter().filter(|p| p["metadata"]["labels"]["app"] == "web").collect();
        web.len() == 3 && web.iter().all(|p| ready(p) && node_of(p) == "w3")
    })
    .await;
}

const STATEFUL: &str = r#"
workloads:
  - kind: StatefulSet
    name: db
    replicas: 1
    containers:
      - name: postgres
        requests: {cpu: 100m, memory: 128Mi}
        usage: {cpu: 50m, memory: 100Mi}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evict_moves_a_statefulset_pod_and_reports_where_the_replacement_landed() {
    let env = Env::start(STATEFUL).await;
    let original = env.pod("default", "db-0").unwrap();
    let from = node_of(&original).to_string();
    let target = if from == "w3" { "w2" } else { "w3" };
    // As an operator draining a node would: only the target is left to schedule on.
    let nodes = env.sim.dynamic("v1", "nodes", None).unwrap();
    for n in ["w1", "w2", "w3"].iter().filter(|n| **n != target) {
        nodes.patch(n, None, kube_sim::PatchType::Merge, &json!({"spec": {"unschedulable": true}})).unwrap();
    }
    let (code, created) = env.migrate(request("db-0", "default", &from, target)).await;
    assert_eq!(code, 202, "{created}");
    let job = env.finished(created["migration_id"].as_str().unwrap(), 60).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(job["details"]["strategy"], "evict");
    assert_eq!(job["details"]["new_pod_name"], "db-0");
    assert_eq!(job["details"]["new_node_name"], target);
    let now = env.pod("default", "db-0").unwrap();
    assert_ne!(now["metadata"]["uid"], original["metadata"]["uid"], "a new pod replaced the original");
    assert_eq!(node_of(&now), target);
    assert!(ready(&now));
}

const SLOW_REPLICAS: &str = r#"
workloads:
  - kind: Deployment
    name: api
    replicas: 3
    startupSeconds: 20
    containers: [{name: api, requests: {cpu: 100m, memory: 64Mi}}]
"#;

/// Siblings are Ready all along; the replacement becomes Ready seconds after the
/// eviction. The job must name the replacement, not a sibling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evict_waits_for_the_replacement_not_an_existing_sibling() {
    let env = Env::start_with(SLOW_REPLICAS, common::settings(), 10.0).await;
    let before = env.pods("default");
    let names: Vec<String> = before.iter().map(|p| p["metadata"]["name"].as_str().unwrap().to_string()).collect();
    let victim = &before[0];
    let from = node_of(victim).to_string();
    let target = if from == "w3" { "w1" } else { "w3" };
    let mut body = request(&names[0], "default", &from, target);
    body["strategy"] = json!("evict");
    let (code, created) = env.migrate(body).await;
    assert_eq!(code, 202, "{created}");
    let job = env.finished(created["migration_id"].as_str().unwrap(), 60).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    let new_name = job["details"]["new_pod_name"].as_str().unwrap();
    assert!(!names.iter().any(|n| n == new_name), "{new_name} existed before the eviction: {names:?}");
    let new = env.pod("default", new_name).unwrap();
    assert!(ready(&new));
    assert_eq!(job["details"]["new_node_name"], node_of(&new));
    // It took the replacement's start-up (20 simulated s at 10x), not a few milliseconds.
    let step = job["details"]["steps"].as_array().unwrap().iter().find(|s| s["name"] == "wait-replacement").unwrap();
    let t = |k: &str| step[k].as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    assert!(t("end_time").duration_since(t("start_time")).as_secs_f64() > 1.0, "{step}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_cannot_checkpoint_is_recorded_and_the_move_goes_on_unless_demanded() {
    let env = Env::start(BARE).await;
    let nodes = env.sim.dynamic("v1", "nodes", None).unwrap();
    let annotate = json!({"metadata": {"annotations": {"sim.kube-sim.io/checkpoint": "false"}}});
    nodes.patch("w1", None, kube_sim::PatchType::Merge, &annotate).unwrap();

    // Demanded: no checkpoint, no migration — and nothing left behind.
    let mut body = request("tensorflow-pod", "default", "w1", "w2");
    body["checkpoint"] = json!(true);
    let (code, created) = env.migrate(body).await;
    assert_eq!(code, 202, "{created}");
    let job = env.finished(created["migration_id"].as_str().unwrap(), 60).await;
    assert_eq!(job["status"], "failed", "{job:#}");
    assert!(job["message"].as_str().unwrap().contains("checkpoint required but not taken"), "{job:#}");
    assert_eq!(env.pods("default").len(), 1, "only the original");
    assert!(ready(&env.pod("default", "tensorflow-pod").unwrap()));

    // Best effort (preserve_pv without `checkpoint`): noted, and the move completes.
    let mut body = request("tensorflow-pod", "default", "w1", "w2");
    body["preserve_pv"] = json!(true);
    let (_, created) = env.migrate(body).await;
    let job = env.finished(created["migration_id"].as_str().unwrap(), 60).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    let step = job["details"]["steps"].as_array().unwrap().iter().find(|s| s["name"] == "checkpoint").unwrap().clone();
    assert_eq!(step["status"], "failed");
    assert!(step["message"].as_str().unwrap().contains("continuing without a checkpoint"), "{step}");
    assert_eq!(job["details"]["checkpoint_path"], "");
}
