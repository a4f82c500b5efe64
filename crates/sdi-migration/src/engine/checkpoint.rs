//! Container checkpoints through the kubelet checkpoint API (Kubernetes
//! ContainerCheckpoint), reached via the API server's node proxy:
//! `POST /api/v1/nodes/{node}/proxy/checkpoint/{namespace}/{pod}/{container}`.

use sdi_core::error::Category;
use serde_json::Value;

use super::{CheckpointMode, JobCtx, Plan};
use crate::error::Error;

/// Checkpoint one container; the archive path(s) on the node.
async fn one(ctx: &JobCtx, node: &str, namespace: &str, pod: &str, container: &str) -> Result<Vec<String>, Error> {
    let answer = ctx.writer.checkpoint(node, namespace, pod, container).await.map_err(|e| {
        let source = match e {
            Error::Api { source, .. } => source,
            other => return other,
        };
        let message = match source {
            kube::Error::Api(s) if s.code == 404 => format!(
                "kubelet on {node} does not know container {container} of {namespace}/{pod} (or checkpointing is not enabled there)"
            ),
            kube::Error::Api(s) => {
                format!("kubelet on {node} could not checkpoint {container}: {} ({})", s.message, s.code)
            }
            other => format!("checkpoint of {container} on {node} failed: {other}"),
        };
        Error::new(Category::Checkpoint, message)
    })?;
    let items = answer.get("items").and_then(Value::as_array).ok_or_else(|| {
        Error::new(Category::Checkpoint, format!("kubelet on {node} answered without items: {answer}"))
    })?;
    Ok(items.iter().filter_map(Value::as_str).map(str::to_string).collect())
}

/// The `checkpoint` step: every container being migrated. A node that cannot
/// checkpoint is recorded and the job carries on — unless the request demanded it.
pub async fn take(ctx: &JobCtx, plan: &Plan, containers: &[String]) -> Result<(), Error> {
    if plan.checkpoint == CheckpointMode::No {
        return Ok(());
    }
    let result = ctx
        .step("checkpoint", async {
            let mut paths = Vec::new();
            for c in containers {
                paths.extend(one(ctx, &plan.source, &plan.namespace, &plan.pod_name, c).await?);
            }
            ctx.note("checkpoint", format!("{} archive(s) on {}", paths.len(), plan.source));
            ctx.details(|d| d.checkpoint_path = paths.join(","));
            Ok(())
        })
        .await;
    match result {
        Err(e) if e.category() == Category::Leadership => Err(e),
        Err(e) if plan.checkpoint == CheckpointMode::IfPossible => {
            tracing::warn!(job = %ctx.id, error = %e, "checkpoint not taken; migrating without it");
            ctx.note("checkpoint", format!("{e}; continuing without a checkpoint"));
            Ok(())
        }
        Err(e) => Err(Error::new(Category::Checkpoint, format!("checkpoint required but not taken: {e}"))),
        Ok(()) => Ok(()),
    }
}
