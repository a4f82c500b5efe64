//! The migration engine: one job, one strategy, run step by step.
//!
//! `preflight` gathers the facts `sdi-core`'s admission rules decide on; the
//! strategies (`recreate`, `surge`, `pin`, `evict`) carry a job out, writing only
//! through their [`JobWriter`] (which registers an undo before every write), and
//! mark what they touch (`marks`) so `repair` can finish or undo a job
//! interrupted by a crash. Shared pieces every strategy uses are here, not in
//! each other: capturing the original, waiting for Ready, measuring usage.

pub mod checkpoint;
pub(crate) mod copy;
pub(crate) mod evict;
pub mod marks;
pub(crate) mod pin;
pub(crate) mod preflight;
pub(crate) mod recreate;
pub mod repair;
pub(crate) mod surge;
pub mod undo;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
pub use sdi_core::admission::CheckpointMode;
use sdi_core::error::Category;
use sdi_core::job::StepStatus;
use sdi_core::snapshot::Phase;
use sdi_core::strategy::{Owner, Strategy};
use serde_json::Value;

use crate::cluster::cache::{ClusterCache, View};
use crate::cluster::writer::{JobWriter, Writer};
use crate::cluster::{facts, retry, wait};
use crate::error::Error;
use crate::jobs::JobStore;
use crate::jobs::model::{MigrationDetails, ResourceUsage, Step, now_rfc3339};
use crate::jobs::runner::Moving;

/// Engine-wide settings (from the service configuration).
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub checkpointing: bool,
    pub checkpoint_pvc_size: String,
    pub post_migration_settle: Duration,
    pub default_timeout: Duration,
    /// Checkpoint images: registry, size limit, agent timeout, pull secret.
    pub images: crate::checkpoint::settings::CheckpointSettings,
}

pub struct Engine {
    /// The few reads the cache cannot answer (a whole pod to copy, usage).
    pub client: kube::Client,
    /// Every other read, and every wait.
    pub cache: Arc<ClusterCache>,
    /// Every write.
    pub writer: Writer,
    pub settings: EngineSettings,
}

/// Everything preflight learned and decided: the job's input.
#[derive(Debug, Clone)]
pub struct Plan {
    pub strategy: Strategy,
    /// The pod's uid (Events refer to it).
    pub pod_uid: Option<String>,
    pub owner: Owner,
    pub namespace: String,
    pub pod_name: String,
    pub source: String,
    pub target: String,
    pub preserve_pv: bool,
    pub checkpoint: CheckpointMode,
    pub timeout: Duration,
}

/// A running job's handle on its own record and its writer.
#[derive(Clone)]
pub struct JobCtx {
    pub id: String,
    pub store: Arc<dyn JobStore>,
    pub writer: JobWriter,
    pub moving: Moving,
}

impl JobCtx {
    pub fn details(&self, mut f: impl FnMut(&mut MigrationDetails)) {
        self.store.update(&self.id, &mut |j| f(&mut j.details));
    }

    fn begin(&self, name: &str) {
        let step = Step {
            name: name.into(),
            status: StepStatus::Running,
            start_time: now_rfc3339(),
            end_time: None,
            message: String::new(),
        };
        self.details(|d| d.steps.push(step.clone()));
    }

    fn end(&self, name: &str, status: StepStatus, message: Option<String>) {
        let now = now_rfc3339();
        self.details(|d| {
            if let Some(s) = d.steps.iter_mut().rev().find(|s| s.name == name && s.status == StepStatus::Running) {
                s.status = status;
                s.end_time = Some(now.clone());
                if let Some(m) = &message {
                    s.message = m.clone();
                }
            }
        });
    }

    /// Write the job's record to its PodMigration: once per step, as it begins
    /// (the record then shows every earlier step's end too). Only a lost lease
    /// stops the job; another failure to write is logged and the next step retries.
    pub async fn persist(&self) -> Result<(), Error> {
        let Some(job) = self.store.get(&self.id) else { return Ok(()) };
        match self.writer.persist(&job).await {
            Err(e) if e.category() == Category::Leadership => Err(e),
            Err(e) => {
                tracing::warn!(job = %self.id, error = %e, "could not write the migration's status; going on");
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }

    /// Run one named step, recording its start, end, status and message.
    pub async fn step<T>(&self, name: &str, fut: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
        self.begin(name);
        self.persist().await?;
        let r = fut.await;
        match &r {
            Ok(_) => self.end(name, StepStatus::Completed, None),
            Err(e) => self.end(name, StepStatus::Failed, Some(e.to_string())),
        }
        r
    }

    /// Set the message of the newest step named `name`.
    pub fn note(&self, name: &str, message: impl Into<String>) {
        let m = message.into();
        self.details(|d| {
            if let Some(s) = d.steps.iter_mut().rev().find(|s| s.name == name) {
                s.message = m.clone();
            }
        });
    }

    pub fn skip(&self, name: &str, message: impl Into<String>) {
        self.begin(name);
        self.end(name, StepStatus::Skipped, Some(message.into()));
    }

    /// Mark steps still running (interrupted by timeout or cancellation) as failed.
    pub fn interrupt_steps(&self, why: &str) {
        let now = now_rfc3339();
        self.details(|d| {
            for s in d.steps.iter_mut().filter(|s| s.status == StepStatus::Running) {
                s.status = StepStatus::Failed;
                s.end_time = Some(now.clone());
                s.message = why.to_string();
            }
        });
    }
}

impl Engine {
    pub fn new(client: kube::Client, cache: Arc<ClusterCache>, writer: Writer, settings: EngineSettings) -> Engine {
        Engine { writer, client, cache, settings }
    }

    /// Run the plan's strategy to completion (or the first error).
    pub async fn execute(&self, ctx: &JobCtx, plan: &Plan) -> Result<(), Error> {
        match plan.strategy {
            Strategy::Recreate => recreate::run(self, ctx, plan).await,
            Strategy::Surge => surge::run(self, ctx, plan).await,
            Strategy::Pin => pin::run(self, ctx, plan).await,
            Strategy::Evict => evict::run(self, ctx, plan).await,
        }
    }

    /// The pod's usage from metrics.k8s.io, or `None` when the API has none
    /// (no metrics server, pod too new): unknown is not zero. `cached` takes the
    /// last poll's figure when there is one, instead of asking.
    pub async fn pod_usage(&self, namespace: &str, pod: &str, cached: bool) -> Option<ResourceUsage> {
        if cached && let Some(u) = self.cache.pod_usage(namespace, pod) {
            return Some(ResourceUsage {
                cpu_usage: u.cpu_m as f64 / 1000.0,
                memory_usage: u.mem_b,
                timestamp: now_rfc3339(),
            });
        }
        if self.cache.metrics_absent() {
            return None;
        }
        let path = format!("/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods/{pod}");
        let req = http::Request::get(path).body(Vec::new()).ok()?;
        let v: Value = match retry::transient(|| self.client.request::<Value>(req.clone())).await {
            Ok(v) => v,
            Err(e) => {
                self.cache.metrics_answered(crate::cluster::cache::api_not_served(&e));
                tracing::debug!(namespace, pod, error = %e, "no metrics for pod");
                return None;
            }
        };
        let containers = v.get("containers")?.as_array()?;
        let mut cpu = 0.0;
        let mut mem = 0u64;
        for c in containers {
            let usage = c.get("usage")?;
            cpu += sdi_core::quantity::cpu_cores(usage.get("cpu")?.as_str()?).ok()?;
            mem += sdi_core::quantity::bytes(usage.get("memory")?.as_str()?).ok()?;
        }
        Some(ResourceUsage {
            cpu_usage: cpu,
            memory_usage: mem,
            timestamp: v.get("timestamp").and_then(Value::as_str).map(str::to_string).unwrap_or_else(now_rfc3339),
        })
    }

    /// Step 1 of every strategy: the whole pod (the one read a move makes: a
    /// copy needs its spec), its container states and its measured usage.
    pub async fn capture(&self, ctx: &JobCtx, plan: &Plan) -> Result<Pod, Error> {
        ctx.step("capture-state", async {
            let (ns, name) = (plan.namespace.as_str(), plan.pod_name.as_str());
            let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
            let pod = retry::transient(|| pods.get(name))
                .await
                .map_err(|e| Error::api(format!("read pod {ns}/{name}"), e))?;
            if facts::pod_node(&pod) != Some(plan.source.as_str()) {
                return Err(Error::new(
                    Category::Conflict,
                    format!(
                        "pod {ns}/{name} is no longer on {} (now: {})",
                        plan.source,
                        facts::pod_node(&pod).unwrap_or("unscheduled")
                    ),
                ));
            }
            let states = facts::container_states(&pod);
            let usage = self.pod_usage(ns, name, true).await;
            let migrating = states.iter().filter(|s| s.should_migrate).count();
            let note = format!(
                "{migrating} of {} containers to migrate; usage {}",
                states.len(),
                usage.as_ref().map_or("unknown (metrics.k8s.io has none)".to_string(), |u| format!(
                    "{:.3} cores, {} bytes",
                    u.cpu_usage, u.memory_usage
                ))
            );
            ctx.details(|d| {
                d.container_states = states.clone();
                d.original_resources = usage.clone();
            });
            ctx.note("capture-state", note);
            Ok(pod)
        })
        .await
    }

    /// Wait until `name` is Ready on `node`; fail fast if it fails, vanishes,
    /// lands elsewhere, or the node stops being Ready.
    pub async fn wait_ready_on(&self, namespace: &str, name: &str, node: &str) -> Result<(), Error> {
        let workload = |m: String| wait::Check::Fail(Error::new(Category::Workload, m));
        // A pod just created may not have reached the cache yet; once seen, gone is gone.
        let mut seen = false;
        self.cache
            .until(|v| {
                if let Some(lost) = node_lost(v, node) {
                    return lost;
                }
                match v.pod(namespace, name) {
                    None if seen => workload(format!("pod {namespace}/{name} disappeared before it was Ready")),
                    None => wait::Check::Wait,
                    Some((p, m)) => {
                        seen = true;
                        match m.node_name.as_deref() {
                            _ if p.phase == Phase::Failed => workload(format!(
                                "pod {namespace}/{name} failed on {node}: {}",
                                m.failure.as_deref().unwrap_or("")
                            )),
                            Some(n) if n != node => {
                                workload(format!("pod {namespace}/{name} landed on {n:?}, not {node}"))
                            }
                            _ if m.ready && !p.terminating => wait::Check::Done(()),
                            _ => wait::Check::Wait,
                        }
                    }
                }
            })
            .await
    }

    /// Wait until the Deployment, pinned to `node`, has rolled out there while
    /// `node` stays Ready. (The pin in the cached template tells that the cache
    /// has seen the change, not the Deployment as it was before.)
    /// `known`: the cache had the Deployment when the move began; if not, it
    /// is waited for (the job's timeout bounds it) rather than taken for deleted.
    pub async fn wait_rollout(&self, namespace: &str, name: &str, node: &str, known: bool) -> Result<(), Error> {
        let mut seen = known;
        self.cache
            .until(|v| {
                if let Some(lost) = node_lost(v, node) {
                    return lost;
                }
                match v.deployment(namespace, name) {
                    None if seen => {
                        wait::Check::Fail(Error::new(Category::NotFound, format!("Deployment {name} was deleted")))
                    }
                    None => wait::Check::Wait,
                    Some(d) => {
                        seen = true;
                        if d.hostname.as_deref() == Some(node) && d.rolled_out() {
                            wait::Check::Done(())
                        } else {
                            wait::Check::Wait
                        }
                    }
                }
            })
            .await
    }

    /// Last step: usage of the new pod after `POST_MIGRATION_SETTLE`, measured,
    /// never estimated. The move itself is over: the job stops counting as a
    /// running move (for `MAX_CONCURRENT_MIGRATIONS`) while it waits to measure.
    pub async fn measure(&self, ctx: &JobCtx, namespace: &str, pod: &str) -> Result<(), Error> {
        ctx.moving.done(&ctx.id);
        ctx.step("measure", async {
            tokio::time::sleep(self.settings.post_migration_settle).await;
            match self.pod_usage(namespace, pod, false).await {
                Some(u) => {
                    ctx.note(
                        "measure",
                        format!(
                            "{:.3} cores, {} bytes after {:?}",
                            u.cpu_usage, u.memory_usage, self.settings.post_migration_settle
                        ),
                    );
                    ctx.details(|d| d.optimized_resources = Some(u.clone()));
                }
                None => ctx.note("measure", format!("metrics.k8s.io has no usage for {namespace}/{pod}; not recorded")),
            }
            Ok(())
        })
        .await
    }
}

/// The target node is gone or NotReady: whatever is bound for it will never be Ready.
fn node_lost<T>(v: &View<'_>, node: &str) -> Option<wait::Check<T>> {
    let lost = |m: String| Some(wait::Check::Fail(Error::new(Category::Target, m)));
    match v.node(node) {
        None => lost(format!("target node {node} was deleted")),
        Some(n) if !n.facts.ready => lost(format!("target node {node} became NotReady")),
        Some(_) => None,
    }
}

/// Unix seconds, for the original's `<pod>-migrated-<unix>` names.
pub fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}
