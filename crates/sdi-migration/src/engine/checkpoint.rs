//! Container checkpoints through the kubelet checkpoint API (Kubernetes
//! ContainerCheckpoint), reached via the API server's node proxy:
//! `POST /api/v1/nodes/{node}/proxy/checkpoint/{namespace}/{pod}/{container}`;
//! and their restore: the source node's agent turns the archives into
//! checkpoint images (see [`crate::checkpoint`]) that the new pod runs.
//!
//! Restore is attempted only when `CHECKPOINT_REGISTRY` is set. Then a request
//! that demands a checkpoint (`checkpoint: true`) demands the restore too: when
//! the pre-check or the agent says it is impossible, the job fails (before it
//! touched anything, or undone). Otherwise the job carries on without state and
//! `details.restore` says why.

use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::Api;
use sdi_core::checkpoint::{Capability, Verdict};
use sdi_core::error::Category;
use serde_json::Value;

use super::{CheckpointMode, Engine, JobCtx, Plan};
use crate::checkpoint::{ANSWER, Archive, CheckpointImage, ImageAnswer, ImageRequest};
use crate::cluster::retry;
use crate::error::Error;
use crate::jobs::model::{Restore, RestoreStatus};
use crate::migrations::crd::PodMigration;

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

/// The `checkpoint` step: every container being migrated; the archives taken.
/// A node that cannot checkpoint is recorded and the job carries on — unless
/// the request demanded it.
pub async fn take(ctx: &JobCtx, plan: &Plan, containers: &[String]) -> Result<Vec<Archive>, Error> {
    if plan.checkpoint == CheckpointMode::No {
        return Ok(Vec::new());
    }
    let result = ctx
        .step("checkpoint", async {
            let mut archives = Vec::new();
            for c in containers {
                for path in one(ctx, &plan.source, &plan.namespace, &plan.pod_name, c).await? {
                    archives.push(Archive { container: c.clone(), path });
                }
            }
            ctx.note("checkpoint", format!("{} archive(s) on {}", archives.len(), plan.source));
            let paths: Vec<&str> = archives.iter().map(|a| a.path.as_str()).collect();
            ctx.details(|d| d.checkpoint_path = paths.join(","));
            Ok(archives)
        })
        .await;
    match result {
        Err(e) if e.category() == Category::Leadership => Err(e),
        Err(e) if plan.checkpoint == CheckpointMode::IfPossible => {
            tracing::warn!(job = %ctx.id, error = %e, "checkpoint not taken; migrating without it");
            ctx.note("checkpoint", format!("{e}; continuing without a checkpoint"));
            skipped(ctx, &format!("no checkpoint was taken: {e}"));
            Ok(Vec::new())
        }
        Err(e) => {
            // A restore that was on (the pre-check passed) has failed with it.
            let r = Restore { status: RestoreStatus::Failed, reason: format!("no checkpoint was taken: {e}") };
            ctx.details(|d| {
                if d.restore.is_none() {
                    d.restore = Some(r.clone());
                }
            });
            Err(Error::new(Category::Checkpoint, format!("checkpoint required but not taken: {e}")))
        }
        Ok(a) => Ok(a),
    }
}

fn skipped(ctx: &JobCtx, reason: &str) {
    let r = Restore { status: RestoreStatus::Skipped, reason: reason.into() };
    ctx.details(|d| {
        if d.restore.is_none() {
            d.restore = Some(r.clone());
        }
    });
}

/// Record how the restore went.
pub fn outcome(ctx: &JobCtx, status: RestoreStatus, reason: impl Into<String>) {
    let r = Restore { status, reason: reason.into() };
    ctx.details(|d| d.restore = Some(r.clone()));
}

/// A node's `containerRuntimeVersion` (cache first, else the API).
async fn runtime_of(engine: &Engine, node: &str) -> String {
    let nodes: Api<Node> = Api::all(engine.client.clone());
    match retry::transient(|| nodes.get_opt(node)).await {
        Ok(Some(n)) => n.status.and_then(|s| s.node_info).map(|i| i.container_runtime_version).unwrap_or_default(),
        _ => String::new(),
    }
}

/// Whether the node's agent renewed its Lease recently.
async fn agent_alive(engine: &Engine, node: &str) -> Result<(), String> {
    use k8s_openapi::api::coordination::v1::Lease;
    let ns = &engine.settings.images.checkpoint_agent_namespace;
    let name = crate::checkpoint::agent::lease_name(node);
    let api: Api<Lease> = Api::namespaced(engine.client.clone(), ns);
    let missing = |why: String| {
        Err(format!("no checkpoint agent is running there ({why}; deploy the sdi-migration-agent DaemonSet)"))
    };
    let lease = match retry::transient(|| api.get_opt(&name)).await {
        Ok(Some(l)) => l,
        Ok(None) => return missing(format!("no Lease {ns}/{name}")),
        Err(e) => return missing(format!("cannot read Lease {ns}/{name}: {e}")),
    };
    let spec = lease.spec.unwrap_or_default();
    let seconds = i64::from(spec.lease_duration_seconds.unwrap_or(crate::checkpoint::agent::LEASE_SECONDS));
    match spec.renew_time {
        Some(t) if jiff::Timestamp::now().duration_since(t.0) <= jiff::SignedDuration::from_secs(seconds) => Ok(()),
        Some(t) => missing(format!("Lease {ns}/{name} last renewed at {}", t.0)),
        None => missing(format!("Lease {ns}/{name} never renewed")),
    }
}

/// The capability pre-check before a checkpoint is taken (runtimes, registry).
pub async fn verdict(engine: &Engine, source: &str, target: &str) -> Verdict {
    let registry = engine.writer.registry();
    let reachable = match registry {
        Some(r) => Some(r.ping().await.map_err(|e| e.to_string())),
        None => None,
    };
    let (source_runtime, target_runtime) = (runtime_of(engine, source).await, runtime_of(engine, target).await);
    let agent = agent_alive(engine, source).await;
    sdi_core::checkpoint::verdict(&Capability {
        registry_configured: registry.is_some(),
        registry_reachable: reachable.as_ref().map(|r| r.as_ref().map(|_| ()).map_err(String::as_str)),
        source_runtime: &source_runtime,
        target_runtime: &target_runtime,
        agent: Some(agent.as_ref().map(|_| ()).map_err(String::as_str)),
        checkpoint_api: None,
        archive_bytes: None,
        max_bytes: engine.settings.images.checkpoint_max_bytes,
    })
}

/// The pre-check's verdict for one move, as `GET /api/v1/plan` shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RestoreCheck {
    pub namespace: String,
    pub pod: String,
    pub source: String,
    pub target: String,
    /// The pod's state could move with it (checkpoint images restored on the target).
    pub restore: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// At most this many planned moves are checked per request (each costs a few reads).
const MAX_PLAN_CHECKS: usize = 20;

/// The verdict for each (namespace, pod, source, target); none without a registry.
pub async fn checks(engine: &Engine, moves: &[(String, String, String, String)]) -> Vec<RestoreCheck> {
    if engine.writer.registry().is_none() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (namespace, pod, source, target) in moves.iter().take(MAX_PLAN_CHECKS) {
        let v = verdict(engine, source, target).await;
        out.push(RestoreCheck {
            namespace: namespace.clone(),
            pod: pod.clone(),
            source: source.clone(),
            target: target.clone(),
            restore: v.is_restore(),
            reason: v.reason().to_string(),
        });
    }
    out
}

/// Whether this job restores state: the pre-check's verdict (step
/// `restore-check`). Demanded and impossible fails the job here, before it
/// changed anything.
pub async fn precheck(engine: &Engine, ctx: &JobCtx, plan: &Plan) -> Result<bool, Error> {
    if plan.checkpoint == CheckpointMode::No {
        return Ok(false);
    }
    if engine.writer.registry().is_none() {
        skipped(ctx, "no CHECKPOINT_REGISTRY is configured: the checkpoint is kept on the source node only");
        return Ok(false);
    }
    let v = ctx
        .step("restore-check", async {
            let v = verdict(engine, &plan.source, &plan.target).await;
            match &v {
                Verdict::Restore => {
                    ctx.note("restore-check", format!("{} → {}: state can move", plan.source, plan.target))
                }
                Verdict::Impossible(r) => ctx.note("restore-check", r.clone()),
            }
            Ok(v)
        })
        .await?;
    match v {
        Verdict::Restore => Ok(true),
        Verdict::Impossible(reason) if plan.checkpoint == CheckpointMode::Required => {
            outcome(ctx, RestoreStatus::Failed, reason.clone());
            Err(Error::new(Category::Checkpoint, format!("checkpoint restore demanded but impossible: {reason}")))
        }
        Verdict::Impossible(reason) => {
            skipped(ctx, &reason);
            Ok(false)
        }
    }
}

/// The `checkpoint-image` step: ask the source node's agent for images of the
/// archives and wait for its answer.
pub async fn images(
    engine: &Engine,
    ctx: &JobCtx,
    plan: &Plan,
    archives: &[Archive],
) -> Result<Vec<CheckpointImage>, Error> {
    let Some(registry) = engine.writer.registry() else { return Ok(Vec::new()) };
    if archives.is_empty() {
        return Ok(Vec::new());
    }
    let s = &engine.settings.images;
    let request = ImageRequest {
        id: format!("{}-{}", ctx.id, super::unix_now()),
        node: plan.source.clone(),
        repository: registry.config().repository(&plan.namespace, &plan.pod_name),
        tag: ctx.id.clone(),
        max_bytes: s.checkpoint_max_bytes,
        archives: archives.to_vec(),
        withdrawn: false,
    };
    let timeout = Duration::from_secs(s.checkpoint_agent_timeout);
    let result = ctx
        .step("checkpoint-image", async {
            ctx.writer.request_checkpoint_images(&plan.namespace, &ctx.id, &request).await?;
            let answer = wait_answer(engine, &plan.namespace, &ctx.id, &request.id, timeout, &plan.source).await?;
            if let Some(e) = answer.error {
                return Err(Error::new(Category::Checkpoint, format!("agent on {}: {e}", plan.source)));
            }
            let total: u64 = answer.images.iter().map(|i| i.bytes).sum();
            ctx.note(
                "checkpoint-image",
                format!("{} image(s), {total} bytes, pushed by {}", answer.images.len(), plan.source),
            );
            ctx.details(|d| d.checkpoint_images = answer.images.clone());
            Ok(answer.images)
        })
        .await;
    match result {
        Ok(images) => Ok(images),
        Err(e) if matches!(e.category(), Category::Leadership | Category::Cancelled | Category::Timeout) => Err(e),
        Err(e) if plan.checkpoint == CheckpointMode::Required => {
            outcome(ctx, RestoreStatus::Failed, e.to_string());
            Err(Error::new(Category::Checkpoint, format!("checkpoint restore demanded but impossible: {e}")))
        }
        Err(e) => {
            tracing::warn!(job = %ctx.id, error = %e, "no checkpoint images; migrating without state");
            skipped(ctx, &e.to_string());
            if let Err(w) = ctx.writer.withdraw_checkpoint_images(&plan.namespace, &ctx.id, &request).await {
                tracing::warn!(job = %ctx.id, error = %w, "could not withdraw the checkpoint request");
            }
            Ok(Vec::new())
        }
    }
}

/// Wait (watch, bounded) for the agent's answer to `request_id`.
async fn wait_answer(
    engine: &Engine,
    namespace: &str,
    name: &str,
    request_id: &str,
    timeout: Duration,
    node: &str,
) -> Result<ImageAnswer, Error> {
    let api: Api<PodMigration> = Api::namespaced(engine.client.clone(), namespace);
    let answer_of = |m: &PodMigration| {
        m.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANSWER))
            .and_then(|s| serde_json::from_str::<ImageAnswer>(s).ok())
            .filter(|a| a.id == request_id)
    };
    let cond = |m: Option<&PodMigration>| m.is_some_and(|m| answer_of(m).is_some());
    match tokio::time::timeout(timeout, kube::runtime::wait::await_condition(api, name, cond)).await {
        Ok(Ok(Some(m))) => answer_of(&m).ok_or_else(|| Error::new(Category::Internal, "answer vanished")),
        Ok(Ok(None)) => Err(Error::new(Category::NotFound, format!("PodMigration {namespace}/{name} was deleted"))),
        Ok(Err(e)) => {
            Err(Error::new(Category::ApiUnavailable, format!("watching PodMigration {namespace}/{name}: {e}")))
        }
        Err(_) => Err(Error::new(
            Category::Checkpoint,
            format!(
                "no checkpoint agent on {node} answered within {}s (is the sdi-migration-agent DaemonSet running on that node?)",
                timeout.as_secs()
            ),
        )),
    }
}

/// The new pod is Ready (restored) or not (the restore failed, and with it the job).
pub fn after_ready(ctx: &JobCtx, images: &[CheckpointImage], ready: &Result<(), Error>) {
    if images.is_empty() {
        return;
    }
    match ready {
        Ok(()) => {
            let names: Vec<&str> = images.iter().map(|i| i.container.as_str()).collect();
            outcome(ctx, RestoreStatus::Restored, format!("{} started from checkpoint images", names.join(", ")));
        }
        Err(e) => outcome(
            ctx,
            RestoreStatus::Failed,
            format!("the pod running the checkpoint images did not become Ready: {e}"),
        ),
    }
}

/// Waiting reasons that mean a checkpoint image will not run on this node:
/// it cannot be pulled, or the runtime refuses to create (restore) it.
const RESTORE_STUCK: [&str; 5] =
    ["CreateContainerError", "CreateContainerConfigError", "ErrImagePull", "ImagePullBackOff", "InvalidImageName"];

/// Why the new pod's checkpointed containers cannot start, if they cannot.
pub fn stuck(pod: &k8s_openapi::api::core::v1::Pod, images: &[CheckpointImage]) -> Option<String> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    statuses.iter().filter(|c| images.iter().any(|i| i.container == c.name)).find_map(|c| {
        let w = c.state.as_ref()?.waiting.as_ref()?;
        let reason = w.reason.as_deref().filter(|r| RESTORE_STUCK.contains(r))?;
        Some(format!("container {}: {reason}: {}", c.name, w.message.as_deref().unwrap_or("")))
    })
}

/// Wait for the new pod to be Ready; with checkpoint images, fail at once
/// when the target cannot pull or restore them (instead of at the timeout).
pub async fn wait_ready(
    engine: &Engine,
    images: &[CheckpointImage],
    namespace: &str,
    name: &str,
    node: &str,
) -> Result<(), Error> {
    if images.is_empty() {
        return engine.wait_ready_on(namespace, name, node).await;
    }
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(engine.client.clone(), namespace);
    let failed = async {
        let cond = |p: Option<&k8s_openapi::api::core::v1::Pod>| p.is_some_and(|p| stuck(p, images).is_some());
        match kube::runtime::wait::await_condition(pods, name, cond).await {
            Ok(Some(p)) => Error::new(
                Category::Checkpoint,
                format!("the checkpoint images did not start on {node}: {}", stuck(&p, images).unwrap_or_default()),
            ),
            // The watch ended without an answer: leave it to the Ready wait.
            _ => std::future::pending().await,
        }
    };
    tokio::select! {
        r = engine.wait_ready_on(namespace, name, node) => r,
        e = failed => Err(e),
    }
}
