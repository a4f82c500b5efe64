//! Container checkpoints through the kubelet checkpoint API (Kubernetes
//! ContainerCheckpoint), reached via the API server's node proxy:
//! `POST /api/v1/nodes/{node}/proxy/checkpoint/{namespace}/{pod}/{container}`.

use serde_json::Value;

use super::{CheckpointMode, Engine, JobCtx, Plan};
use crate::cluster::retry;

/// Checkpoint one container; the archive path(s) on the node.
async fn one(engine: &Engine, node: &str, namespace: &str, pod: &str, container: &str) -> Result<Vec<String>, String> {
    let path = format!("/api/v1/nodes/{node}/proxy/checkpoint/{namespace}/{pod}/{container}");
    let req = http::Request::post(path).body(Vec::new()).map_err(|e| e.to_string())?;
    let answer: Value = retry::unavailable_only(|| engine.client.request::<Value>(req.clone())).await.map_err(|e| match e {
        kube::Error::Api(s) if s.code == 404 => {
            format!("kubelet on {node} does not know container {container} of {namespace}/{pod} (or checkpointing is not enabled there)")
        }
        kube::Error::Api(s) => format!("kubelet on {node} could not checkpoint {container}: {} ({})", s.message, s.code),
        other => format!("checkpoint of {container} on {node} failed: {other}"),
    })?;
    let items = answer
        .get("items")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("kubelet on {node} answered without items: {answer}"))?;
    Ok(items.iter().filter_map(Value::as_str).map(str::to_string).collect())
}

/// The `checkpoint` step: every container being migrated. A node that cannot
/// checkpoint is recorded and the job carries on — unless the request demanded it.
pub async fn take(engine: &Engine, ctx: &JobCtx, plan: &Plan, containers: &[String]) -> Result<(), String> {
    if plan.checkpoint == CheckpointMode::No {
        return Ok(());
    }
    let result = ctx
        .step("checkpoint", async {
            let mut paths = Vec::new();
            for c in containers {
                paths.extend(one(engine, &plan.source, &plan.namespace, &plan.pod_name, c).await?);
            }
            ctx.note("checkpoint", format!("{} archive(s) on {}", paths.len(), plan.source));
            ctx.details(|d| d.checkpoint_path = paths.join(","));
            Ok(())
        })
        .await;
    match result {
        Err(e) if plan.checkpoint == CheckpointMode::IfPossible => {
            tracing::warn!(job = %ctx.id, error = %e, "checkpoint not taken; migrating without it");
            ctx.note("checkpoint", format!("{e}; continuing without a checkpoint"));
            Ok(())
        }
        Err(e) => Err(format!("checkpoint required but not taken: {e}")),
        Ok(()) => Ok(()),
    }
}
