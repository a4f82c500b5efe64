//! The kubelet checkpoint API behind the node proxy
//! (`POST /api/v1/nodes/{node}/proxy/checkpoint/{namespace}/{pod}/{container}`),
//! answering as a kubelet with the ContainerCheckpoint feature does: 200
//! `{"items": [archive path]}`, 404 for a pod or container the node does not
//! run, 500 when the node's container runtime cannot checkpoint (nodes
//! annotated `sim.kube-sim.io/checkpoint: "false"`). Each archive taken is
//! recorded, with a size equal to the container's memory in use.

use std::sync::Arc;

use serde_json::{Value, json};

use super::metrics::{Metrics, container_memory_bytes};
use super::state::{CheckpointRecord, Shared, node_of};
use crate::apiserver::NodeProxy;
use crate::clock::Clock;
use crate::error::ApiResult;

#[derive(Debug)]
pub struct Kubelets {
    pub state: Shared,
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
}

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
        if !pod.spec.iter().flat_map(|s| &s.containers).any(|c| c.name == container) {
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
        let running = pod.status.as_ref().and_then(|s| s.container_statuses.as_ref()).is_some_and(|cs| {
            cs.iter().any(|c| c.name == container && c.state.as_ref().is_some_and(|s| s.running.is_some()))
        });
        if !running {
            return text(
                500,
                &format!("checkpointing of {ns}/{pod_name}/{container} failed (container is not running)"),
            );
        }
        let time = self.clock.now_rfc3339();
        let path = format!("/var/lib/kubelet/checkpoints/checkpoint-{pod_name}_{ns}-{container}-{time}.tar");
        let size = container_memory_bytes(&self.metrics, &pod, container);
        self.state.write().checkpoints.push(CheckpointRecord {
            node: node.to_string(),
            namespace: ns.to_string(),
            pod: pod_name.to_string(),
            container: container.to_string(),
            path: path.clone(),
            size_bytes: size,
            time,
        });
        Ok((200, json!({"items": [path]})))
    }
}
