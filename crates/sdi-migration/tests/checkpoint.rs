//! State moves with the pod: kubelet checkpoint → the source node's agent
//! builds an OCI checkpoint image and pushes it to a real registry (Debian's
//! `docker-registry` on loopback) → the new pod runs that image and kube-sim's
//! runtime restores it. Verified with `skopeo`, and by the simulated process
//! state: the counter continues from the archive's value. Then each failure
//! path ends with a clear reason and nothing left behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Env, eventually, ready, request};
use kube_sim::ServerConfig;
use sdi_migration::checkpoint::agent::{self, AgentConfig};
use sdi_migration::checkpoint::local::{INSTALL_HINT, LocalRegistry};
use sdi_migration::checkpoint::registry::Registry;
use sdi_migration::checkpoint::settings::CheckpointSettings;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const SCENARIO: &str = r#"
name: checkpoint
defaults: {startupSeconds: 1, shutdownSeconds: 1, heartbeatSeconds: 2}
nodes:
  - name: cp
    controlPlane: true
    capacity: {cpu: 4, memory: 8Gi}
  - name: w1
    capacity: {cpu: 4, memory: 8Gi}
    labels: {restores: "yes"}
    runtime: cri-o://1.31.0
  - name: w2
    capacity: {cpu: 8, memory: 8Gi}
    labels: {restores: "yes"}
    runtime: containerd://2.1.0
  - name: w3
    capacity: {cpu: 8, memory: 8Gi}
    runtime: containerd://1.7.22
namespaces: [apps]
workloads:
  - kind: Deployment
    name: web
    namespace: apps
    replicas: 1
    nodeSelector: {restores: "yes"}
    containers:
      - name: cache
        requests: {cpu: 100m, memory: 64Mi}
  - kind: Pod
    name: slam
    nodeName: w1
    annotations: {sim.kube-sim.io/checkpoint-bytes: "PAGES"}
    startupSeconds: STARTUP
    containers:
      - name: mapper
        requests: {cpu: 200m, memory: 128Mi}
        # Busy enough that w1 is under pressure: the planner proposes moving it.
        usage: {cpu: 3900m, memory: 100Mi}
"#;

struct Ckpt {
    env: Env,
    registry: LocalRegistry,
    root: tempfile::TempDir,
    agents: CancellationToken,
}

impl Drop for Ckpt {
    fn drop(&mut self) {
        self.agents.cancel();
    }
}

/// The programs the tests need; missing is a failure (CI installs them via scripts/test.sh).
fn require_programs() {
    for p in ["docker-registry", "skopeo"] {
        let found = std::env::var_os("PATH")
            .into_iter()
            .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
            .chain([PathBuf::from("/usr/bin")])
            .any(|d| d.join(p).is_file());
        assert!(found, "{p} missing: {INSTALL_HINT}");
    }
}

async fn start(pages: u64, tune: impl FnOnce(&mut CheckpointSettings), agent_nodes: &[&str]) -> Ckpt {
    start_with_startup(pages, 1, tune, agent_nodes).await
}

/// `startup`: simulated seconds the stateful pod (and its copy) take to start.
async fn start_with_startup(
    pages: u64,
    startup: u32,
    tune: impl FnOnce(&mut CheckpointSettings),
    agent_nodes: &[&str],
) -> Ckpt {
    require_programs();
    let registry = LocalRegistry::start().await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        checkpoint_dir: Some(root.path().to_path_buf()),
        registries: vec![registry.host.clone()],
        ..ServerConfig::default()
    };
    let mut settings = common::settings();
    settings.checkpoint = CheckpointSettings {
        checkpoint_registry: Some(registry.setting("ckpt")),
        checkpoint_registry_insecure: true,
        checkpoint_agent_timeout: 30,
        ..CheckpointSettings::default()
    };
    tune(&mut settings.checkpoint);
    let text = SCENARIO.replace("PAGES", &pages.to_string()).replace("STARTUP", &startup.to_string());
    let env = Env::start_scenario_config(&text, settings.clone(), 5.0, config).await;
    let agents = CancellationToken::new();
    let reg = settings.checkpoint.registry().unwrap().unwrap();
    for node in agent_nodes {
        spawn_agent(&env, &reg, root.path(), node, &agents);
    }
    let leases = env.sim.dynamic("coordination.k8s.io/v1", "leases", Some("kube-system")).unwrap();
    for node in agent_nodes {
        let name = agent::lease_name(node);
        eventually(20, &format!("agent Lease {name}"), || async { leases.get(&name).is_ok() }).await;
    }
    Ckpt { env, registry, root, agents }
}

/// Run `node`'s agent (its checkpoint directory under `root`) until `stop`.
fn spawn_agent(env: &Env, registry: &Registry, root: &Path, node: &str, stop: &CancellationToken) {
    let dir = root.join(node);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = AgentConfig { node: node.to_string(), dir, registry: registry.clone(), namespace: "kube-system".into() };
    tokio::spawn(agent::run(env.admin.clone(), cfg, stop.clone()));
}

/// The simulated process state of a container, through the node proxy.
async fn state(env: &Env, node: &str, pod: &str, container: &str) -> Value {
    state_in(env, node, "default", pod, container).await
}

async fn state_in(env: &Env, node: &str, ns: &str, pod: &str, container: &str) -> Value {
    let path = format!("/api/v1/nodes/{node}/proxy/sim/state/{ns}/{pod}/{container}");
    let req = http::Request::get(path).body(Vec::new()).unwrap();
    env.admin.request::<Value>(req).await.unwrap()
}

fn files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().to_string()).collect())
        .unwrap_or_default()
}

fn skopeo_raw(reference: &str) -> Value {
    let out = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{reference}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "skopeo inspect {reference}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Tags left in the pod's repository (none, or no repository at all, is clean).
async fn tags(c: &Ckpt) -> Vec<String> {
    let url = format!("http://{}/v2/ckpt/default/slam/tags/list", c.registry.host);
    let r = reqwest::get(url).await.unwrap();
    if r.status() == 404 {
        return Vec::new();
    }
    let v: Value = r.json().await.unwrap();
    v["tags"].as_array().map(|t| t.iter().map(|t| t.as_str().unwrap().to_string()).collect()).unwrap_or_default()
}

/// The original alone, Ready on w1.
fn original_untouched(env: &Env) {
    let pods = env.pods("default");
    assert_eq!(pods.len(), 1, "only the original: {pods:#?}");
    let p = env.pod("default", "slam").unwrap();
    assert!(ready(&p));
    assert_eq!(common::node_of(&p), "w1");
}

fn checkpointed(to: &str) -> Value {
    let mut body = request("slam", "default", "w1", to);
    body["strategy"] = json!("recreate");
    body["checkpoint"] = json!(true);
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpointed_recreate_restores_the_state_from_a_real_registry() {
    let c = start(64 * 1024, |_| {}, &["w1", "w2", "w3"]).await;
    let env = &c.env;
    let (code, created) = env.migrate(checkpointed("w2")).await;
    assert_eq!(code, 202, "{created}");
    let job = env.finished(created["migration_id"].as_str().unwrap(), 60).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    let d = &job["details"];
    assert_eq!(d["restore"]["status"], "restored", "{d:#}");
    let images = d["checkpoint_images"].as_array().unwrap();
    assert_eq!(images.len(), 1, "{d:#}");
    assert_eq!(images[0]["container"], "mapper");
    let image = images[0]["image"].as_str().unwrap();
    assert!(image.starts_with(&format!("{}/ckpt/default/slam@sha256:", c.registry.host)), "{image}");
    assert!(images[0]["bytes"].as_u64().unwrap() > 64 * 1024);
    let steps: Vec<&str> = d["steps"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert!(steps.contains(&"checkpoint") && steps.contains(&"checkpoint-image"), "{steps:?}");

    // The new pod runs the checkpoint image, and its process continued.
    let new_name = d["new_pod_name"].as_str().unwrap();
    let new_pod = env.pod("default", new_name).unwrap();
    assert_eq!(new_pod["spec"]["containers"][0]["image"], image);
    let taken = c.env.sim.checkpoints();
    assert_eq!(taken.len(), 1);
    let at_checkpoint = taken[0].counter;
    assert!(at_checkpoint >= 1);
    let now = state(env, "w2", new_name, "mapper").await;
    assert_eq!(now["restoredFrom"], at_checkpoint, "{now}");
    assert!(now["counter"].as_i64().unwrap() > at_checkpoint, "counter after {now} vs {at_checkpoint} at checkpoint");

    // The archive is gone from the source node.
    assert_eq!(files(&c.root.path().join("w1")), Vec::<String>::new());

    // What the registry holds: the index and manifest with the runtimes' annotations,
    // one layer that is the archive.
    let index = skopeo_raw(image);
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json", "{index:#}");
    assert_eq!(index["annotations"]["org.criu.checkpoint.container.name"], "mapper");
    assert_eq!(index["annotations"]["io.kubernetes.cri-o.annotations.checkpoint.name"], "mapper");
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap();
    let repo = image.split('@').next().unwrap();
    let manifest = skopeo_raw(&format!("{repo}@{manifest_digest}"));
    assert_eq!(manifest["annotations"]["io.kubernetes.cri-o.annotations.checkpoint.name"], "mapper", "{manifest:#}");
    assert_eq!(manifest["annotations"]["org.criu.checkpoint.pod.name"], "slam");
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    let blob = reqwest::get(format!(
        "http://{}/v2/ckpt/default/slam/blobs/{}",
        c.registry.host,
        layers[0]["digest"].as_str().unwrap()
    ))
    .await
    .unwrap()
    .bytes()
    .await
    .unwrap();
    let names: Vec<String> = tar::Archive::new(&blob[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().to_string())
        .collect();
    for want in ["config.dump", "spec.dump", "checkpoint/sim-state.json", "rootfs-diff.tar"] {
        assert!(names.iter().any(|n| n == want), "{want} not in the layer: {names:?}");
    }

    // The PodMigration's status says the same.
    let pm = env.sim.dynamic("migration.sdi.keti.dev/v1alpha1", "podmigrations", Some("default")).unwrap();
    let obj = pm.get(created["migration_id"].as_str().unwrap()).unwrap();
    assert_eq!(obj["status"]["restore"]["status"], "restored", "{:#}", obj["status"]);
    assert_eq!(obj["status"]["checkpointImages"][0]["image"], image);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_runtime_that_cannot_restore_fails_a_demanded_restore_before_anything_happens() {
    let c = start(4096, |_| {}, &["w1", "w2", "w3"]).await;
    let env = &c.env;
    let (_, created) = env.migrate(checkpointed("w3")).await;
    let job = env.finished(created["migration_id"].as_str().unwrap(), 60).await;
    assert_eq!(job["status"], "failed", "{job:#}");
    let msg = job["message"].as_str().unwrap();
    assert!(msg.contains("target node: containerd 1.7 cannot restore"), "{msg}");
    assert_eq!(job["details"]["restore"]["status"], "failed");
    original_untouched(env);
    assert!(c.env.sim.checkpoints().is_empty(), "no checkpoint taken");
    assert!(tags(&c).await.is_empty());

    // Not demanded: the move goes on without state, and says why.
    let mut body = request("slam", "default", "w1", "w3");
    body["preserve_pv"] = json!(true);
    let (_, created) = env.migrate(body).await;
    let job = env.finished(created["migration_id"].as_str().unwrap(), 60).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(job["details"]["restore"]["status"], "skipped");
    assert!(job["details"]["restore"]["reason"].as_str().unwrap().contains("containerd 1.7"), "{job:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_that_is_down_fails_a_demanded_restore_with_the_reason() {
    let mut c = start(4096, |_| {}, &["w1", "w2", "w3"]).await;
    c.registry.stop().await;
    let env = &c.env;
    let (_, created) = env.migrate(checkpointed("w2")).await;
    let job = env.finished(created["migration_id"].as_str().unwrap(), 60).await;
    assert_eq!(job["status"], "failed", "{job:#}");
    let msg = job["message"].as_str().unwrap();
    assert!(msg.contains("checkpoint registry") && msg.contains("unreachable"), "{msg}");
    original_untouched(env);
    assert!(files(&c.root.path().join("w1")).is_empty(), "no archive left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_over_the_limit_is_refused_deleted_and_the_job_undone() {
    let c = start(64 * 1024, |s| s.checkpoint_max_bytes = 10_000, &["w1", "w2", "w3"]).await;
    let env = &c.env;
    let (_, created) = env.migrate(checkpointed("w2")).await;
    let job = env.finished(created["migration_id"].as_str().unwrap(), 60).await;
    assert_eq!(job["status"], "failed", "{job:#}");
    let msg = job["message"].as_str().unwrap();
    assert!(msg.contains("over CHECKPOINT_MAX_BYTES (10000)"), "{msg}");
    assert_eq!(job["details"]["restore"]["status"], "failed");
    original_untouched(env);
    assert!(files(&c.root.path().join("w1")).is_empty(), "the archive was deleted");
    assert!(tags(&c).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_agent_on_the_source_node_fails_before_the_checkpoint() {
    let c = start(4096, |_| {}, &["w2", "w3"]).await;
    let env = &c.env;
    let (_, created) = env.migrate(checkpointed("w2")).await;
    let job = env.finished(created["migration_id"].as_str().unwrap(), 60).await;
    assert_eq!(job["status"], "failed", "{job:#}");
    let msg = job["message"].as_str().unwrap();
    assert!(msg.contains("no checkpoint agent is running there") && msg.contains("sdi-migration-agent-w1"), "{msg}");
    original_untouched(env);
    assert!(c.env.sim.checkpoints().is_empty(), "no archive taken that nobody would clean up");
    assert!(tags(&c).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_never_answers_fails_the_job_and_the_request_is_withdrawn() {
    let c = start(4096, |s| s.checkpoint_agent_timeout = 2, &["w2", "w3"]).await;
    // A Lease as if an agent ran on w1, but nobody serves requests there.
    let client = c.env.admin.clone();
    sdi_migration::cluster::writer::agent_heartbeat(&client, "kube-system", &agent::lease_name("w1"), "w1", 30)
        .await
        .unwrap();
    let env = &c.env;
    let (_, created) = env.migrate(checkpointed("w2")).await;
    let job = env.finished(created["migration_id"].as_str().unwrap(), 60).await;
    assert_eq!(job["status"], "failed", "{job:#}");
    let msg = job["message"].as_str().unwrap();
    assert!(msg.contains("no checkpoint agent on w1 answered within 2s"), "{msg}");
    original_untouched(env);
    assert!(tags(&c).await.is_empty());
    // The undo withdrew the request: marked, so an agent that comes up later deletes the archive.
    let pm = env.sim.dynamic("migration.sdi.keti.dev/v1alpha1", "podmigrations", Some("default")).unwrap();
    let obj = pm.get(created["migration_id"].as_str().unwrap()).unwrap();
    let request = obj["metadata"]["annotations"][sdi_migration::checkpoint::REQUEST].as_str().unwrap_or("{}");
    let request: sdi_migration::checkpoint::ImageRequest = serde_json::from_str(request).unwrap();
    assert!(request.withdrawn, "{obj:#}");
    assert!(obj["metadata"]["annotations"].get(sdi_migration::checkpoint::ANSWER).is_none(), "{obj:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_during_the_push_leaves_no_image_and_no_archive() {
    // 256 MiB of pages: the push takes long enough to be cancelled in flight
    // (and if it finishes first, the undo deletes what was pushed: the end
    // state is the same either way).
    let c = start(256 << 20, |_| {}, &["w1", "w2", "w3"]).await;
    let env = &c.env;
    let (_, created) = env.migrate(checkpointed("w2")).await;
    let id = created["migration_id"].as_str().unwrap().to_string();
    env.reached_step(&id, "checkpoint-image", 60).await;
    let (code, body) = env.delete(&format!("/api/v1/migrations/{id}")).await;
    assert!(code == 200 || code == 202, "{body}");
    let job = env.finished(&id, 60).await;
    assert_eq!(job["status"], "cancelled", "{job:#}");
    let step = job["details"]["steps"].as_array().unwrap().iter().find(|s| s["name"] == "checkpoint-image").cloned();
    eprintln!("checkpoint-image step when cancelled: {step:?}");
    original_untouched(env);
    let dir = c.root.path().join("w1");
    eventually(30, "the agent to delete the archive", || async { files(&dir).is_empty() }).await;
    eventually(30, "no image left in the registry", || async { tags(&c).await.is_empty() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_deletes_the_archive_of_a_request_withdrawn_before_it_saw_it() {
    // The agents stop after their first heartbeat (their Leases stay fresh for
    // 30 s, so the pre-check passes): the request is written and withdrawn by
    // the cancel while no agent watches. The archive holds the container's
    // memory, so the agent started afterwards must delete it.
    let mut reg = None;
    let c = start(4096, |s| reg = s.registry().unwrap(), &["w1", "w2", "w3"]).await;
    c.agents.cancel();
    let env = &c.env;
    let (_, created) = env.migrate(checkpointed("w2")).await;
    let id = created["migration_id"].as_str().unwrap().to_string();
    env.reached_step(&id, "checkpoint-image", 30).await;
    let dir = c.root.path().join("w1");
    assert!(!files(&dir).is_empty(), "the kubelet wrote the archive before the request");
    assert_eq!(env.delete(&format!("/api/v1/migrations/{id}")).await.0, 202);
    let job = env.finished(&id, 60).await;
    assert_eq!(job["status"], "cancelled", "{job:#}");
    let pm = env.sim.dynamic("migration.sdi.keti.dev/v1alpha1", "podmigrations", Some("default")).unwrap();
    let request = pm.get(&id).unwrap()["metadata"]["annotations"]["checkpoint.migration.sdi.keti.dev/request"].clone();
    let request: Value = serde_json::from_str(request.as_str().expect("the withdrawn request is kept")).unwrap();
    assert_eq!(request["withdrawn"], true, "{request}");
    assert!(!files(&dir).is_empty(), "no agent ran, so the archive is still there");

    let again = CancellationToken::new();
    spawn_agent(env, &reg.unwrap(), c.root.path(), "w1", &again);
    eventually(30, "the restarted agent to delete the archive", || async { files(&dir).is_empty() }).await;
    assert!(tags(&c).await.is_empty(), "nothing was pushed for a withdrawn request");
    again.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_are_deleted_after_the_retention() {
    let c = start(4096, |s| s.checkpoint_retention = 0, &["w1", "w2", "w3"]).await;
    let env = &c.env;
    let (_, created) = env.migrate(checkpointed("w2")).await;
    let id = created["migration_id"].as_str().unwrap().to_string();
    let job = env.finished(&id, 60).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(job["details"]["restore"]["status"], "restored");
    eventually(30, "the image to be deleted and marked so", || async {
        let (_, job) = env.get(&format!("/api/v1/migrations/{id}")).await;
        job["details"]["checkpoint_images"][0]["deleted"] == true && tags(&c).await.is_empty()
    })
    .await;
    let pm = env.sim.dynamic("migration.sdi.keti.dev/v1alpha1", "podmigrations", Some("default")).unwrap();
    eventually(30, "the PodMigration to record the deletion", || async {
        pm.get(&id).unwrap()["status"]["checkpointImages"][0]["deleted"] == true
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_shows_whether_each_move_can_carry_its_state() {
    let c = start(4096, |_| {}, &["w1", "w2", "w3"]).await;
    let plan = common::wait_for(Duration::from_secs(30), "a planned move with its restore verdict", || async {
        let (code, plan) = c.env.get("/api/v1/plan").await;
        assert_eq!(code, 200, "{plan}");
        if plan["checkpoint_restore"].as_array().is_some_and(|a| !a.is_empty()) {
            Ok(plan)
        } else {
            Err(plan.to_string())
        }
    })
    .await;
    let check = &plan["checkpoint_restore"][0];
    assert_eq!(check["pod"], "slam", "{plan:#}");
    assert_eq!(check["source"], "w1");
    match check["target"].as_str().unwrap() {
        "w3" => {
            assert_eq!(check["restore"], false);
            assert!(check["reason"].as_str().unwrap().contains("containerd 1.7"), "{check}");
        }
        _ => assert_eq!(check["restore"], true, "{check}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surge_with_a_checkpoint_restores_the_replica_it_adopts() {
    let c = start(4096, |_| {}, &["w1", "w2", "w3"]).await;
    let env = &c.env;
    let pods = env.pods("apps");
    assert_eq!(pods.len(), 1);
    let name = pods[0]["metadata"]["name"].as_str().unwrap().to_string();
    let from = common::node_of(&pods[0]).to_string();
    let to = if from == "w1" { "w2" } else { "w1" };
    let mut body = request(&name, "apps", &from, to);
    body["checkpoint"] = json!(true);
    let (code, created) = env.migrate(body).await;
    assert_eq!(code, 202, "{created}");
    let job = env.finished(created["migration_id"].as_str().unwrap(), 60).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    let d = &job["details"];
    assert_eq!(d["strategy"], "surge");
    assert_eq!(d["restore"]["status"], "restored", "{d:#}");
    let image = d["checkpoint_images"][0]["image"].as_str().unwrap();
    let copy = d["new_pod_name"].as_str().unwrap();
    assert_eq!(env.pod("apps", copy).unwrap()["spec"]["containers"][0]["image"], image);
    let at_checkpoint = c.env.sim.checkpoints()[0].counter;
    let now = state_in(env, to, "apps", copy, "cache").await;
    assert_eq!(now["restoredFrom"], at_checkpoint, "{now}");
    assert!(now["counter"].as_i64().unwrap() > at_checkpoint);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_that_fails_on_the_target_fails_the_job_at_once_and_undoes_it() {
    // The copy takes 10 simulated seconds (2 s) to start: time to delete its image first.
    let c = start_with_startup(4096, 10, |_| {}, &["w1", "w2", "w3"]).await;
    let env = &c.env;
    let (_, created) = env.migrate(checkpointed("w2")).await;
    let id = created["migration_id"].as_str().unwrap().to_string();
    env.reached_step(&id, "wait-ready", 60).await;
    let (_, job) = env.get(&format!("/api/v1/migrations/{id}")).await;
    let image = job["details"]["checkpoint_images"][0]["image"].as_str().unwrap().to_string();
    let reg = CheckpointSettings {
        checkpoint_registry: Some(c.registry.setting("ckpt")),
        checkpoint_registry_insecure: true,
        ..CheckpointSettings::default()
    };
    reg.registry().unwrap().unwrap().delete_image(&image).await.unwrap();
    let job = env.finished(&id, 60).await;
    assert_eq!(job["status"], "failed", "{job:#}");
    let msg = job["message"].as_str().unwrap();
    assert!(msg.contains("did not start on w2") && msg.contains("ErrImagePull"), "{msg}");
    assert_eq!(job["details"]["restore"]["status"], "failed");
    let new_pod = job["details"]["new_pod_name"].as_str().unwrap().to_string();
    eventually(30, "the copy removed by the undo", || async { env.pod("default", &new_pod).is_none() }).await;
    original_untouched(env);
    assert!(tags(&c).await.is_empty());
}
