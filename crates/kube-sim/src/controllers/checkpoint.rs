//! The kubelet checkpoint API behind the node proxy
//! (`POST /api/v1/nodes/{node}/proxy/checkpoint/{namespace}/{pod}/{container}`),
//! answering as a kubelet with the ContainerCheckpoint feature does: 200
//! `{"items": [archive path]}`, 404 for a pod or container the node does not
//! run, 500 when the node's container runtime cannot checkpoint (nodes
//! annotated `sim.kube-sim.io/checkpoint: "false"`). Each archive taken is
//! recorded; with a checkpoint directory configured it is a real tar in
//! CRI-O's layout (see `super::runtime`) written to `<dir>/<node>/`, else its
//! size is the container's memory in use.
//!
//! `GET …/proxy/sim/state/{namespace}/{pod}/{container}` answers the simulated
//! process state (`{"counter": n, "restoredFrom": m|null}`): what a test reads
//! to prove that state survived a move.

use std::sync::Arc;

use serde_json::{Value, json};

use super::metrics::{Metrics, container_memory_bytes};
use super::runtime;
use super::state::{CheckpointRecord, Shared, node_of};
use crate::apiserver::NodeProxy;
use crate::cached_pod::CachedPod;
use crate::clock::Clock;
use crate::error::ApiResult;

#[derive(Debug)]
pub struct Kubelets {
    pub state: Shared,
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
    pub dir: Option<std::path::PathBuf>,
}

/// Where a kubelet writes checkpoints, as it reports them.
pub const KUBELET_CHECKPOINT_DIR: &str = "/var/lib/kubelet/checkpoints";

fn text(code: u16, s: &str) -> ApiResult<(u16, Value)> {
    Ok((code, Value::String(s.to_string())))
}

impl NodeProxy for Kubelets {
    fn call(&self, method: &str, node: &str, path: &str, _body: &[u8]) -> ApiResult<(u16, Value)> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        match parts.as_slice() {
            ["checkpoint", ns, pod, container] => {
                if method != "POST" {
                    return text(405, "405 method not allowed");
                }
                self.checkpoint(node, ns, pod, container)
            }
            ["sim", "state", ns, pod, container] if method == "GET" => self.process_state(node, ns, pod, container),
            ["healthz"] => text(200, "ok"),
            _ => text(404, "404 page not found"),
        }
    }
}

impl Kubelets {
    fn checkpoint(&self, node: &str, ns: &str, pod_name: &str, container: &str) -> ApiResult<(u16, Value)> {
        let (pod, supported) = {
            let state = self.state.read();
            let pod = state.pods.get(&format!("{ns}/{pod_name}")).filter(|p| node_of(p) == Some(node)).cloned();
            let supported = state
                .nodes
                .get(node)
                .and_then(|n| n.metadata.annotations.as_ref())
                .and_then(|a| a.get("sim.kube-sim.io/checkpoint"))
                .is_none_or(|v| v != "false");
            (pod, supported)
        };
        let Some(pod) = pod else { return text(404, "pod does not exist") };
        if !pod.spec.iter().flat_map(|s| s.containers.iter()).any(|c| c.name == container) {
            return text(404, &format!("container {container} does not exist"));
        }
        if !supported {
            return text(
                500,
                &format!(
                    "checkpointing of {ns}/{pod_name}/{container} failed (rpc error: code = Unimplemented desc = method CheckpointContainer not implemented)"
                ),
            );
        }
        let running = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| &*c.name == container && c.running));
        if !running {
            return text(
                500,
                &format!("checkpointing of {ns}/{pod_name}/{container} failed (container is not running)"),
            );
        }
        let time = self.clock.now_rfc3339();
        let file = format!("checkpoint-{pod_name}_{ns}-{container}-{time}.tar");
        let path = format!("{KUBELET_CHECKPOINT_DIR}/{file}");
        let counter = self.counter(&pod, container).unwrap_or(0);
        let size = match &self.dir {
            Some(dir) => {
                let image = pod
                    .spec
                    .iter()
                    .flat_map(|s| s.containers.iter())
                    .find(|c| c.name == container)
                    .and_then(|c| c.image.clone())
                    .unwrap_or_default();
                let written = runtime::write_archive(
                    &dir.join(node).join(&file),
                    ns,
                    pod_name,
                    pod.metadata.uid.as_deref().unwrap_or_default(),
                    container,
                    &image,
                    counter,
                    runtime::page_bytes(pod.metadata.annotations.as_deref()),
                    &time,
                );
                match written {
                    Ok(n) => i64::try_from(n).unwrap_or(i64::MAX),
                    Err(e) => {
                        return text(
                            500,
                            &format!("checkpointing of {ns}/{pod_name}/{container} failed (writing {path}: {e})"),
                        );
                    }
                }
            }
            None => container_memory_bytes(&self.metrics, &pod, container),
        };
        self.state.write().checkpoints.push(CheckpointRecord {
            node: node.to_string(),
            namespace: ns.to_string(),
            pod: pod_name.to_string(),
            container: container.to_string(),
            path: path.clone(),
            size_bytes: size,
            time,
            counter,
        });
        Ok((200, json!({"items": [path]})))
    }

    /// The container's counter now: `base + 1` at start, one more per
    /// simulated second running. `None` when it is not running.
    fn counter(&self, pod: &CachedPod, container: &str) -> Option<i64> {
        let started = pod
            .status
            .as_ref()?
            .container_statuses
            .as_ref()?
            .iter()
            .find(|c| &*c.name == container && c.running)?
            .started_at
            .as_ref()?
            .0;
        let key = format!("{}/{container}", pod.metadata.uid.as_deref().unwrap_or_default());
        let base = self.state.read().restored.get(&key).copied().unwrap_or(0);
        let ran = self.clock.now().duration_since(started).as_secs().max(0);
        Some(base + 1 + ran)
    }

    fn process_state(&self, node: &str, ns: &str, pod_name: &str, container: &str) -> ApiResult<(u16, Value)> {
        let pod = self.state.read().pods.get(&format!("{ns}/{pod_name}")).filter(|p| node_of(p) == Some(node)).cloned();
        let Some(pod) = pod else { return text(404, "pod does not exist") };
        let key = format!("{}/{container}", pod.metadata.uid.as_deref().unwrap_or_default());
        let restored = self.state.read().restored.get(&key).copied();
        match self.counter(&pod, container) {
            Some(counter) => Ok((200, json!({"counter": counter, "restoredFrom": restored}))),
            None => text(404, &format!("container {container} is not running")),
        }
    }
}
