//! Job lifecycle: accept (preflight → record → spawn), run under a timeout,
//! cancel, undo on failure, count, and drain on shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sdi_core::admission::{Reason, Refusal};
use sdi_core::error::Category;
use sdi_core::job::{JobEvent, JobStatus, Summary, TransitionError, Usage, transition};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::model::{Job, MigrationDetails, MigrationRequest, new_id, now_rfc3339};
use super::store::JobStore;
use crate::config::StrategyChoice;
use crate::engine::preflight;
use crate::engine::{Engine, JobCtx, Plan};
use crate::error::Error;

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
    /// Jobs still moving their pod (not yet measuring the result).
    moving: Moving,
    tasks: TaskTracker,
    handles: Mutex<Vec<tokio::task::AbortHandle>>,
    /// Called with every finished job (metrics sinks hook in here).
    on_finish: Mutex<Vec<FinishHook>>,
}

/// Why a cancel was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CancelError {
    #[error("no such migration")]
    NotFound,
    /// The state machine refuses: the job has finished.
    #[error("{1}")]
    AlreadyFinished(Box<Job>, TransitionError),
}

/// The ids of jobs still moving their pod, shared with each job's context.
#[derive(Debug, Clone, Default)]
pub struct Moving(Arc<Mutex<std::collections::HashSet<String>>>);

impl Moving {
    /// The job's pod has moved (or the job ended).
    pub fn done(&self, id: &str) {
        self.0.lock().remove(id);
    }
}

/// The event that ends a job, from how it ended.
fn final_event(outcome: &Result<(), Error>) -> JobEvent {
    match outcome {
        Ok(()) => JobEvent::Succeed,
        Err(Error::Cancelled) => JobEvent::Cancel,
        Err(_) => JobEvent::Fail,
    }
}

impl Runner {
    pub fn new(store: Arc<dyn JobStore>, engine: Arc<Engine>, default_strategy: StrategyChoice) -> Arc<Self> {
        Arc::new(Runner {
            store,
            engine,
            default_strategy,
            summary: Mutex::default(),
            cancels: Mutex::default(),
            moving: Moving::default(),
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

    /// Number of jobs still moving their pod: a job measuring the new pod's
    /// usage after the move holds no slot of `MAX_CONCURRENT_MIGRATIONS`.
    pub fn moving(&self) -> usize {
        self.moving.0.lock().len()
    }

    /// Check the request against the cluster and start a job; returns at once.
    pub async fn submit(self: &Arc<Self>, request: MigrationRequest, origin: &'static str) -> Result<Job, Refusal> {
        if self.tasks.is_closed() {
            return Err(Refusal {
                reason: Reason::ShuttingDown,
                details: "no new migrations are accepted during shutdown".into(),
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
            writes: Vec::new(),
        };
        if let Err(existing) = self.store.insert_unique(job.clone()) {
            return Err(Refusal {
                details: format!("{} is already moving pod {}/{}", existing.0, plan.namespace, plan.pod_name),
                reason: Reason::AlreadyMigrating(existing.0),
            });
        }
        self.summary.lock().started();
        let token = CancellationToken::new();
        self.cancels.lock().insert(job.id.clone(), token.clone());
        self.moving.0.lock().insert(job.id.clone());
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

    /// Ask a job to stop; it undoes what it created and ends `cancelled`. The
    /// job's state machine decides whether it can be cancelled.
    pub fn cancel(&self, id: &str) -> Result<Job, CancelError> {
        let job = self.store.get(id).ok_or(CancelError::NotFound)?;
        if let Err(e) = transition(job.status, JobEvent::Cancel) {
            return Err(CancelError::AlreadyFinished(Box::new(job), e));
        }
        if let Some(t) = self.cancels.lock().get(id) {
            t.cancel();
        }
        Ok(job)
    }

    /// Apply `event` to the job's status. A refused transition is a defect: it
    /// is reported and the status left as it is, never overwritten.
    fn apply(&self, id: &str, event: JobEvent, mut also: impl FnMut(&mut Job)) -> Option<Job> {
        self.store.update(id, &mut |j| {
            match transition(j.status, event) {
                Ok(s) => j.status = s,
                Err(e) => tracing::error!(job = %j.id, error = %e, "job state machine refused a transition"),
            }
            also(j);
        })
    }

    async fn run(self: Arc<Self>, id: String, plan: Plan, token: CancellationToken) {
        let started = Instant::now();
        let ctx = JobCtx {
            id: id.clone(),
            store: self.store.clone(),
            writer: self.engine.writer.job(&id),
            moving: self.moving.clone(),
        };
        self.apply(&id, JobEvent::Start, |_| {});
        let pod_uid = plan.pod_uid.clone();
        let w = &ctx.writer;
        let (ns, pod) = (plan.namespace.as_str(), plan.pod_name.as_str());
        let note = format!("{id}: moving to {} ({} strategy)", plan.target, plan.strategy);
        w.event_pod(ns, pod, pod_uid.as_deref(), false, "MigrationStarted", &note).await;

        let outcome = tokio::select! {
            r = self.engine.execute(&ctx, &plan) => r,
            _ = token.cancelled() => Err(Error::Cancelled),
            _ = tokio::time::sleep(plan.timeout) => Err(Error::Timeout(plan.timeout.as_secs())),
        };

        let failure = match &outcome {
            Ok(()) => None,
            Err(e) => {
                let why = e.to_string();
                ctx.interrupt_steps(&why);
                let message = if !w.has_undo() {
                    why
                } else {
                    let undone = ctx
                        .step("undo", async {
                            match tokio::time::timeout(UNDO_BOUND, w.rollback()).await {
                                Ok(failed) if failed.is_empty() => Ok(()),
                                Ok(failed) => Err(Error::new(Category::ApiUnavailable, failed.join("; "))),
                                Err(_) => Err(Error::Timeout(UNDO_BOUND.as_secs())),
                            }
                        })
                        .await;
                    match undone {
                        Ok(()) => format!("{why}; changes undone"),
                        Err(u) => format!("{why}; undo incomplete: {u}"),
                    }
                };
                Some((message, e.category()))
            }
        };

        let elapsed = started.elapsed();
        let end = now_rfc3339();
        // The closing Events first: when the job shows as finished, all its writes are done.
        let event = final_event(&outcome);
        match &failure {
            None => {
                tracing::info!(job = %id, seconds = elapsed.as_secs_f64(), "migration of {ns}/{pod} completed");
                let details = self.store.get(&id).map(|j| j.details).unwrap_or_default();
                let landed = if details.new_node_name.is_empty() { &plan.target } else { &details.new_node_name };
                let note = format!("{id}: now {} on {landed}", details.new_pod_name);
                w.event_pod(ns, pod, pod_uid.as_deref(), false, "MigrationSucceeded", &note).await;
                let note =
                    format!("{id}: {ns}/{} arrived from {} ({})", details.new_pod_name, plan.source, plan.strategy);
                w.event_node(landed, false, "MigrationSucceeded", &note).await;
            }
            Some((why, category)) => {
                tracing::warn!(job = %id, event = event.as_str(), category = category.as_str(), "migration of {ns}/{pod} ended: {why}");
                let reason = if event == JobEvent::Cancel {
                    "MigrationCancelled".to_string()
                } else {
                    format!("MigrationFailed{}", category.camel())
                };
                w.event_pod(ns, pod, pod_uid.as_deref(), true, &reason, &format!("{id}: {why}")).await;
                let note = format!("{id}: move of {ns}/{pod} here from {} ended: {why}", plan.source);
                w.event_node(&plan.target, true, &reason, &note).await;
            }
        }
        let writes = w.writes();
        let job = self.apply(&id, event, |j| {
            j.details.end_time = Some(end.clone());
            j.details.duration = Some(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
            j.details.error = failure.as_ref().map(|f| f.0.clone());
            j.details.error_category = failure.as_ref().map(|f| f.1);
            j.writes = writes.clone();
        });
        self.cancels.lock().remove(&id);
        self.moving.done(&id);
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
