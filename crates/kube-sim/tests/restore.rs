//! The simulated container runtime's checkpoint/restore: the kubelet writes a
//! real archive in CRI-O's layout into the node's checkpoint directory; each
//! container's counter is readable through the node proxy; a container whose
//! image is a checkpoint image (recognised by its manifest annotation, pulled
//! from a registry) continues from the archive's counter where the runtime can
//! restore, and fails to start where it cannot. The registry here is a small
//! in-process one serving fixed content; sdi-migration's tests use a real one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use common::{Sim, eventually};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::PostParams;
use kube_sim::ServerConfig;
use kube_sim::controllers::runtime;
use serde_json::{Value, json};

type Blobs = Arc<parking_lot::RwLock<HashMap<String, Vec<u8>>>>;

async fn serve_registry(blobs: Blobs) -> String {
    async fn get(State(b): State<Blobs>, Path(rest): Path<String>) -> (StatusCode, Vec<u8>) {
        match b.read().get(&rest) {
            Some(v) => (StatusCode::OK, v.clone()),
            None => (StatusCode::NOT_FOUND, b"{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\"}]}".to_vec()),
        }
    }
    let app = axum::Router::new().route("/v2/{*rest}", axum::routing::get(get)).with_state(blobs);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    host
}

async fn node(c: &kube::Client, name: &str, runtime: &str) {
    let n: Node =
        serde_json::from_value(json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "nodeInfo": {"containerRuntimeVersion": runtime, "kubeletVersion": "v1.32.0", "architecture": "amd64",
                "bootID": "", "kernelVersion": "", "kubeProxyVersion": "", "machineID": "", "operatingSystem": "linux",
                "osImage": "", "systemUUID": ""}}}))
        .unwrap();
    Api::<Node>::all(c.clone()).create(&PostParams::default(), &n).await.unwrap();
}

async fn pod(pods: &Api<Pod>, name: &str, node: &str, image: &str) {
    let p: Pod = serde_json::from_value(json!({"metadata": {"name": name},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": image}]}}))
    .unwrap();
    pods.create(&PostParams::default(), &p).await.unwrap();
}

fn waiting_reason(p: &Pod) -> Option<String> {
    p.status.as_ref()?.container_statuses.as_ref()?.first()?.state.as_ref()?.waiting.as_ref()?.reason.clone()
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archives_are_real_and_checkpoint_images_continue_the_counter() {
    let blobs: Blobs = Default::default();
    let host = serve_registry(blobs.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        checkpoint_dir: Some(dir.path().to_path_buf()),
        registries: vec![host.clone()],
        ..ServerConfig::default()
    };
    let sim = Sim::start_clock(config, kube_sim::Clock::new(10.0)).await;
    let c = sim.client().await;
    node(&c, "crio", "cri-o://1.31.0").await;
    node(&c, "old", "containerd://1.7.22").await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    pod(&pods, "a", "crio", "registry.k8s.io/pause:3.10").await;
    eventually(30, "a Ready", || async { ready(&pods.get("a").await.unwrap()) }).await;

    let (code, state) = sim.get("/api/v1/nodes/crio/proxy/sim/state/default/a/app").await;
    assert_eq!(code, 200, "{state}");
    assert!(state["counter"].as_i64().unwrap() >= 1);
    assert_eq!(state["restoredFrom"], Value::Null);

    // The checkpoint: a real tar in the node's directory, with the counter.
    let r = sim.http().post(sim.url("/api/v1/nodes/crio/proxy/checkpoint/default/a/app")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    let path = answer["items"][0].as_str().unwrap();
    let file = dir.path().join("crio").join(path.rsplit('/').next().unwrap());
    let archive = std::fs::read(&file).unwrap();
    let at_checkpoint = runtime::read_state(&archive[..]).unwrap().counter;
    assert_eq!(sim.cluster.checkpoints()[0].counter, at_checkpoint);
    assert_eq!(sim.cluster.checkpoints()[0].size_bytes, archive.len() as i64);

    // A checkpoint image of it: index → manifest (with CRI-O's annotation) → the archive as layer.
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:c", "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:l", "size": archive.len()}],
        "annotations": {runtime::CHECKPOINT_NAME_ANNOTATION: "app"}});
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:m", "size": 1,
            "platform": {"architecture": "amd64", "os": "linux"}}]});
    {
        let mut b = blobs.write();
        b.insert("ckpt/a/manifests/v1".into(), index.to_string().into_bytes());
        b.insert("ckpt/a/manifests/sha256:m".into(), manifest.to_string().into_bytes());
        b.insert("ckpt/a/blobs/sha256:l".into(), archive.clone());
        b.insert("plain/x/manifests/v1".into(), json!({"schemaVersion": 2, "layers": []}).to_string().into_bytes());
    }
    let image = format!("{host}/ckpt/a:v1");

    // Restored where the runtime can: the counter continues.
    pod(&pods, "b", "crio", &image).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let b = pods.get("b").await.unwrap();
        if ready(&b) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "b not Ready: {:#?}", b.status);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, state) = sim.get("/api/v1/nodes/crio/proxy/sim/state/default/b/app").await;
    assert_eq!(state["restoredFrom"], at_checkpoint, "{state}");
    assert!(state["counter"].as_i64().unwrap() > at_checkpoint, "{state}");

    // containerd 1.7 cannot restore it; a missing image cannot be pulled; a plain image just runs.
    pod(&pods, "c", "old", &image).await;
    pod(&pods, "d", "crio", &format!("{host}/ckpt/missing:v1")).await;
    pod(&pods, "e", "crio", &format!("{host}/plain/x:v1")).await;
    eventually(30, "c and d waiting with their reasons, e Ready", || async {
        let (c, d, e) = (pods.get("c").await.unwrap(), pods.get("d").await.unwrap(), pods.get("e").await.unwrap());
        waiting_reason(&c).as_deref() == Some("CreateContainerError")
            && waiting_reason(&d).as_deref() == Some("ErrImagePull")
            && ready(&e)
    })
    .await;
    let c_pod = pods.get("c").await.unwrap();
    assert!(!ready(&c_pod));
    let (_, state) = sim.get("/api/v1/nodes/crio/proxy/sim/state/default/e/app").await;
    assert_eq!(state["restoredFrom"], Value::Null);
}
