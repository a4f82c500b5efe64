//! Job lifecycle: accept (preflight → record → spawn), run under a timeout,
//! cancel, undo on failure, count, and drain on shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sdi_core::job::{JobEvent, JobStatus, Summary, Usage, transition};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::model::{Job, MigrationDetails, MigrationRequest, new_id, now_rfc3339};
use super::store::JobStore;
use crate::config::StrategyChoice;
use crate::engine::preflight::{self, Rejection};
use crate::engine::undo::UndoLog;
use crate::engine::{Engine, JobCtx, Plan};

/// Undoing gets its own bound, after the job's: cleanup must finish even when
/// the job ran out of time.
const UNDO_BOUND: Duration = Duration::from_secs(120);

/// Called with every finished job.
type FinishHook = Box<dyn Fn(&Job) + Send + Sync>;

pub struct Runner {
    pub store: Arc<dyn JobStore>,
    pub engine: Arc<Engine>,
    pub default_strategy: StrategyChoice,
    summary: Mutex<Summary>,
    cancels: Mutex<HashMap<String, CancellationToken>>,
    tasks: TaskTracker,
    handles: Mutex<Vec<tokio::task::AbortHandle>>,
    /// Called with every finished job (metrics sinks hook in here).
    on_finish: Mutex<Vec<FinishHook>>,
}

/// Why a cancel was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum CancelError {
    NotFound,
    AlreadyFinished(Box<Job>),
}

enum Interrupt {
    Failed(String),
    TimedOut(Duration),
    Cancelled,
}

impl Runner {
    pub fn new(store: Arc<dyn JobStore>, engine: Arc<Engine>, default_strategy: StrategyChoice) -> Arc<Self> {
        Arc::new(Runner {
            store,
            engine,
            default_strategy,
            summary: Mutex::default(),
            cancels: Mutex::default(),
            tasks: TaskTracker::new(),
            handles: Mutex::default(),
            on_finish: Mutex::default(),
        })
    }

    pub fn on_finish(&self, f: impl Fn(&Job) + Send + Sync + 'static) {
        self.on_finish.lock().push(Box::new(f));
    }

    pub fn summary(&self) -> Summary {
        self.summary.lock().clone()
    }

    /// Number of jobs not yet finished.
    pub fn active(&self) -> usize {
        self.cancels.lock().len()
    }

    /// Check the request against the cluster and start a job; returns at once.
    pub async fn submit(self: &Arc<Self>, request: MigrationRequest, origin: &'static str) -> Result<Job, Rejection> {
        if self.tasks.is_closed() {
            return Err(Rejection {
                status: 503,
                error: "Service is shutting down",
                details: "no new migrations are accepted during shutdown".into(),
                migration_id: None,
            });
        }
        let plan = preflight::check(&self.engine, self.store.as_ref(), &request, self.default_strategy).await?;
        let job = Job {
            id: new_id(),
            request,
            status: JobStatus::Pending,
            details: MigrationDetails {
                start_time: now_rfc3339(),
                strategy: Some(plan.strategy),
                ..Default::default()
            },
            origin,
        };
        if let Err(existing) = self.store.insert_unique(job.clone()) {
            return Err(Rejection {
                status: 409,
                error: "Migration already in progress",
                details: format!("{existing} is already moving pod {}/{}", plan.namespace, plan.pod_name),
                migration_id: Some(existing),
            });
        }
        self.summary.lock().started();
        let token = CancellationToken::new();
        self.cancels.lock().insert(job.id.clone(), token.clone());
        tracing::info!(
            job = %job.id, origin, strategy = %plan.strategy,
            "migrating {}/{} from {} to {}", plan.namespace, plan.pod_name, plan.source, plan.target
        );
        let this = self.clone();
        let id = job.id.clone();
        let handle = self.tasks.spawn(async move { this.run(id, plan, token).await });
        let mut handles = self.handles.lock();
        handles.retain(|h| !h.is_finished());
        handles.push(handle.abort_handle());
        Ok(job)
    }

    /// Ask a job to stop; it undoes what it created and ends `cancelled`.
    pub fn cancel(&self, id: &str) -> Result<Job, CancelError> {
        let job = self.store.get(id).ok_or(CancelError::NotFound)?;
        if job.status.is_terminal() {
            return Err(CancelError::AlreadyFinished(Box::new(job)));
        }
        if let Some(t) = self.cancels.lock().get(id) {
            t.cancel();
        }
        Ok(job)
    }

    async fn run(self: Arc<Self>, id: String, plan: Plan, token: CancellationToken) {
        let started = Instant::now();
        let ctx = JobCtx { id: id.clone(), store: self.store.clone(), undo: UndoLog::default() };
        self.store.update(&id, &mut |j| {
            if let Some(s) = transition(j.status, JobEvent::Start) {
                j.status = s;
            }
        });
        let pod_uid = plan.pod.metadata.uid.clone();
        let events = &self.engine.events;
        let (ns, pod) = (plan.namespace.as_str(), plan.pod_name.as_str());
        events
            .pod(
                ns,
                pod,
                pod_uid.as_deref(),
                false,
                "MigrationStarted",
                format!("{id}: moving to {} ({} strategy)", plan.target, plan.strategy),
            )
            .await;

        let outcome = tokio::select! {
            r = self.engine.execute(&ctx, &plan) => r.map_err(Interrupt::Failed),
            _ = token.cancelled() => Err(Interrupt::Cancelled),
            _ = tokio::time::sleep(plan.timeout) => Err(Interrupt::TimedOut(plan.timeout)),
        };

        let (status, error) = match outcome {
            Ok(()) => (JobStatus::Completed, None),
            Err(interrupt) => {
                let (status, why) = match interrupt {
                    Interrupt::Failed(e) => (JobStatus::Failed, e),
                    Interrupt::TimedOut(t) => (JobStatus::Failed, format!("timed out after {}s", t.as_secs())),
                    Interrupt::Cancelled => (JobStatus::Cancelled, "cancelled".to_string()),
                };
                ctx.interrupt_steps(&why);
                let undone = if ctx.undo.is_empty() {
                    why
                } else {
                    let failed = ctx
                        .step("undo", async {
                            match tokio::time::timeout(UNDO_BOUND, ctx.undo.rollback(&self.engine.client)).await {
                                Ok(failed) if failed.is_empty() => Ok(()),
                                Ok(failed) => Err(failed.join("; ")),
                                Err(_) => Err(format!("undo did not finish within {}s", UNDO_BOUND.as_secs())),
                            }
                        })
                        .await;
                    match failed {
                        Ok(()) => format!("{why}; changes undone"),
                        Err(e) => format!("{why}; undo incomplete: {e}"),
                    }
                };
                (status, Some(undone))
            }
        };

        let elapsed = started.elapsed();
        let end = now_rfc3339();
        let job = self.store.update(&id, &mut |j| {
            let event = match status {
                JobStatus::Completed => JobEvent::Succeed,
                JobStatus::Cancelled => JobEvent::Cancel,
                _ => JobEvent::Fail,
            };
            if let Some(s) = transition(j.status, event) {
                j.status = s;
            }
            j.details.end_time = Some(end.clone());
            j.details.duration = Some(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
            j.details.error = error.clone();
        });
        self.cancels.lock().remove(&id);
        let Some(job) = job else { return };
        let usage = |r: &Option<super::model::ResourceUsage>| {
            r.as_ref().map(|u| Usage { cpu_cores: u.cpu_usage, memory_bytes: u.memory_usage as f64 })
        };
        self.summary.lock().finished(
            job.status,
            elapsed.as_nanos(),
            usage(&job.details.original_resources),
            usage(&job.details.optimized_resources),
        );
        match job.status {
            JobStatus::Completed => {
                tracing::info!(job = %id, seconds = elapsed.as_secs_f64(), "migration of {ns}/{pod} completed");
                let landed =
                    if job.details.new_node_name.is_empty() { &plan.target } else { &job.details.new_node_name };
                let note = format!("{id}: now {} on {landed}", job.details.new_pod_name);
                events.pod(ns, pod, pod_uid.as_deref(), false, "MigrationSucceeded", note).await;
                let note =
                    format!("{id}: {ns}/{} arrived from {} ({})", job.details.new_pod_name, plan.source, plan.strategy);
                events.node(landed, false, "MigrationSucceeded", note).await;
            }
            _ => {
                let why = job.details.error.clone().unwrap_or_default();
                tracing::warn!(job = %id, status = job.status.as_str(), "migration of {ns}/{pod} ended: {why}");
                let reason = if job.status == JobStatus::Cancelled { "MigrationCancelled" } else { "MigrationFailed" };
                events.pod(ns, pod, pod_uid.as_deref(), true, reason, format!("{id}: {why}")).await;
                let note = format!("{id}: move of {ns}/{pod} here from {} ended: {why}", plan.source);
                events.node(&plan.target, true, reason, note).await;
            }
        }
        for f in self.on_finish.lock().iter() {
            f(&job);
        }
    }

    /// Drop every running job where it stands, without undo — a simulated crash.
    pub fn abort_all(&self) {
        self.tasks.close();
        for h in self.handles.lock().drain(..) {
            h.abort();
        }
    }

    /// Shutdown: refuse new jobs, give running ones `grace` to finish, then
    /// cancel (and so undo) the rest, and wait for that too.
    pub async fn drain(&self, grace: Duration) {
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait()).await.is_ok() {
            return;
        }
        let ids: Vec<String> = self.cancels.lock().keys().cloned().collect();
        tracing::warn!(jobs = ids.len(), "shutdown: cancelling running migrations after {}s", grace.as_secs());
        for t in self.cancels.lock().values() {
            t.cancel();
        }
        if tokio::time::timeout(UNDO_BOUND + Duration::from_secs(5), self.tasks.wait()).await.is_err() {
            tracing::error!("shutdown: some migrations did not finish undoing; the next start repairs them");
        }
    }
}
