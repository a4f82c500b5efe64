//! Job lifecycle on the leader: run a PodMigration's migration under its
//! timeout, persist its status once per step, cancel, undo on failure, record
//! the outcome, and drain on shutdown. Which migrations run, and when, is the
//! controller's business (`migrations::controller`); a replica that loses the
//! lease abandons its jobs to the new leader without writing another byte.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sdi_core::admission::Refusal;
use sdi_core::error::Category;
use sdi_core::job::{JobEvent, JobStatus, TransitionError, transition};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::model::{Job, now_rfc3339};
use super::store::JobStore;
use crate::config::StrategyChoice;
use crate::engine::{Engine, JobCtx, Plan};
use crate::error::Error;

/// Undoing gets its own bound, after the job's: cleanup must finish even when
/// the job ran out of time.
const UNDO_BOUND: Duration = Duration::from_secs(120);

/// Called with every finished job.
type FinishHook = Box<dyn Fn(&Job) + Send + Sync>;

pub struct Runner {
    /// Every migration this replica knows (watched objects, and its own live jobs).
    pub store: Arc<dyn JobStore>,
    pub engine: Arc<Engine>,
    pub default_strategy: StrategyChoice,
    cancels: Mutex<HashMap<String, CancellationToken>>,
    /// Jobs still moving their pod (not yet measuring the result).
    moving: Moving,
    tasks: Mutex<TaskTracker>,
    handles: Mutex<Vec<tokio::task::AbortHandle>>,
    /// Called with every finished job (metrics sinks hook in here).
    on_finish: Mutex<Vec<FinishHook>>,
    /// The jobs this replica ended lately, newest last: a reconcile that still
    /// sees one of them pending or running holds a copy older than its end.
    ended: Mutex<VecDeque<(Job, Instant)>>,
}

/// How many ended jobs [`Runner::ended`] remembers.
const ENDED_KEPT: usize = 256;

/// Why a cancel was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CancelError {
    #[error("no such migration")]
    NotFound,
    /// The state machine refuses: the job has finished.
    #[error("{1}")]
    AlreadyFinished(Box<Job>, TransitionError),
    #[error("{0}")]
    Unavailable(String),
}

/// The ids of jobs still moving their pod, shared with each job's context.
#[derive(Debug, Clone, Default)]
pub struct Moving(Arc<Mutex<HashSet<String>>>);

impl Moving {
    /// The job's pod has moved (or the job ended).
    pub fn done(&self, id: &str) {
        self.0.lock().remove(id);
    }
}

/// Move the job's status by `event`. A refused transition is a defect: it is
/// reported and the status left as it is, never overwritten.
fn advance(job: &mut Job, event: JobEvent) {
    match transition(job.status, event) {
        Ok(s) => job.status = s,
        Err(e) => tracing::error!(job = %job.id, error = %e, "job state machine refused a transition"),
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
            cancels: Mutex::default(),
            moving: Moving::default(),
            tasks: Mutex::new(TaskTracker::new()),
            handles: Mutex::default(),
            on_finish: Mutex::default(),
            ended: Mutex::default(),
        })
    }

    pub fn on_finish(&self, f: impl Fn(&Job) + Send + Sync + 'static) {
        self.on_finish.lock().push(Box::new(f));
    }

    /// Number of jobs this replica runs now.
    pub fn active(&self) -> usize {
        self.cancels.lock().len()
    }

    /// Number of jobs still moving their pod: a job measuring the new pod's
    /// usage after the move holds no slot of `MAX_CONCURRENT_MIGRATIONS`.
    pub fn moving(&self) -> usize {
        self.moving.0.lock().len()
    }

    /// The job as this replica ended it, and when, if it did so lately.
    pub fn ended(&self, id: &str) -> Option<(Job, Instant)> {
        self.ended.lock().iter().rev().find(|(j, _)| j.id == id).cloned()
    }

    fn remember_end(&self, job: &Job) {
        let mut ended = self.ended.lock();
        if ended.len() == ENDED_KEPT {
            ended.pop_front();
        }
        ended.push_back((job.clone(), Instant::now()));
    }

    /// Write a job's end to its object again (its first write did not land);
    /// it is not recorded again.
    pub async fn rewrite_end(&self, job: &Job) -> Result<(), Error> {
        let w = self.engine.writer.job(&job.id);
        w.persist(job).await?;
        w.release(job).await
    }

    /// Whether this replica runs the migration now.
    pub fn is_live(&self, id: &str) -> bool {
        self.cancels.lock().contains_key(id)
    }

    pub fn closed(&self) -> bool {
        self.tasks.lock().is_closed()
    }

    /// Run the migration recorded as `job` per `plan`. `job.steps` may hold the
    /// steps of an earlier leader (a takeover): the job goes on from its record.
    pub fn start(self: &Arc<Self>, mut job: Job, plan: Plan) {
        let tasks = self.tasks.lock().clone();
        if tasks.is_closed() || self.is_live(&job.id) {
            return;
        }
        // A fresh start begins now (the object's creation time is the API
        // server's clock, not ours, and the end is measured on ours); a
        // takeover keeps the time its first leader started.
        if job.details.start_time.is_empty() || job.details.steps.is_empty() {
            job.details.start_time = now_rfc3339();
        }
        job.details.strategy = Some(plan.strategy);
        job.pod_uid = job.pod_uid.or_else(|| plan.pod_uid.clone());
        let id = job.id.clone();
        self.store.own(job);
        let token = CancellationToken::new();
        self.cancels.lock().insert(id.clone(), token.clone());
        self.moving.0.lock().insert(id.clone());
        tracing::info!(
            job = %id, strategy = %plan.strategy,
            "migrating {}/{} from {} to {}", plan.namespace, plan.pod_name, plan.source, plan.target
        );
        let this = self.clone();
        let handle = tasks.spawn(async move { this.run(id, plan, token).await });
        let mut handles = self.handles.lock();
        handles.retain(|h| !h.is_finished());
        handles.push(handle.abort_handle());
    }

    /// End a migration this replica did not run (cancelled before it started,
    /// or taken over from a replica that stopped): its status, its finalizer,
    /// and the record every finished migration gets.
    pub async fn conclude(&self, job: Job) -> Result<(), Error> {
        // What the watch shows of it stays as it is until the end is counted.
        self.store.hold(&job.id);
        self.record_end(job).await
    }

    /// Record a job's end in the order its readers rely on: remember it (a
    /// reconcile holding an older copy knows it ended), write its status and
    /// release its finalizer, give up its slot, count it (the finish hooks:
    /// metrics, InfluxDB), and only then show it ended. So a client that sees
    /// a migration finished sees it counted, and `active` no longer counts it.
    /// A lost lease leaves the end, and its count, to the new leader.
    async fn record_end(&self, job: Job) -> Result<(), Error> {
        let w = self.engine.writer.job(&job.id);
        self.remember_end(&job);
        let recorded = match w.persist(&job).await {
            Ok(()) => w.release(&job).await,
            Err(e) => Err(e),
        };
        self.cancels.lock().remove(&job.id);
        self.moving.done(&job.id);
        let lease_lost = matches!(&recorded, Err(e) if e.category() == Category::Leadership);
        if !lease_lost {
            for f in self.on_finish.lock().iter() {
                f(&job);
            }
            self.store.own(job.clone());
        }
        self.store.disown(&job.id);
        recorded
    }

    /// A migration that admission refused before it ran (one created with
    /// kubectl, or whose pod changed since the request): it ends `failed` with
    /// the refusal's category and words.
    pub async fn refuse(&self, mut job: Job, refusal: &Refusal) {
        let now = now_rfc3339();
        if job.details.start_time.is_empty() {
            job.details.start_time = now.clone();
        }
        job.status = JobStatus::Failed;
        job.details.end_time = Some(now);
        job.details.duration = Some(0);
        job.details.error = Some(format!("{}: {}", refusal.reason.title(), refusal.details));
        job.details.error_category = Some(refusal.reason.category());
        tracing::warn!(job = %job.id, category = %refusal.reason.category(), "migration refused: {refusal}");
        if let Err(e) = self.conclude(job).await {
            tracing::warn!(error = %e, "could not record the refusal");
        }
    }

    /// Ask a running job to stop; it undoes what it created and ends `cancelled`.
    pub fn cancel(&self, id: &str) {
        if let Some(t) = self.cancels.lock().get(id) {
            t.cancel();
        }
    }

    /// Apply `event` to the job's status in the store.
    fn apply(&self, id: &str, event: JobEvent) -> Option<Job> {
        self.store.update(id, &mut |j| advance(j, event))
    }

    fn forget(&self, id: &str) {
        self.cancels.lock().remove(id);
        self.moving.done(id);
        self.store.disown(id);
    }

    async fn run(self: Arc<Self>, id: String, plan: Plan, token: CancellationToken) {
        let started = Instant::now();
        let ctx = JobCtx {
            id: id.clone(),
            store: self.store.clone(),
            writer: self.engine.writer.job(&id),
            moving: self.moving.clone(),
        };
        let w = &ctx.writer;
        if self.store.get(&id).is_some_and(|j| j.status == JobStatus::Pending) {
            self.apply(&id, JobEvent::Start);
        }
        let pod_uid = plan.pod_uid.clone();
        let (ns, pod) = (plan.namespace.as_str(), plan.pod_name.as_str());
        let note = format!("{id}: moving to {} ({} strategy)", plan.target, plan.strategy);
        w.event_pod(ns, pod, pod_uid.as_deref(), false, "MigrationStarted", &note).await;

        let outcome = tokio::select! {
            r = self.engine.execute(&ctx, &plan) => r,
            _ = token.cancelled() => Err(Error::Cancelled),
            _ = tokio::time::sleep(plan.timeout) => Err(Error::Timeout(plan.timeout.as_secs())),
        };
        if let Err(e) = &outcome
            && e.category() == Category::Leadership
        {
            // Another replica leads now: it takes the migration over from its object.
            tracing::warn!(job = %id, "lost the lease mid-migration; leaving it to the new leader");
            self.forget(&id);
            return;
        }

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
        // The end is shown only once it is recorded and counted (`record_end`).
        let Some(mut job) = self.store.get(&id) else {
            self.forget(&id);
            return;
        };
        advance(&mut job, event);
        job.details.end_time = Some(end);
        job.details.duration = Some(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
        job.details.error = failure.as_ref().map(|f| f.0.clone());
        job.details.error_category = failure.as_ref().map(|f| f.1);
        job.writes = w.writes();
        match self.record_end(job).await {
            Ok(()) => {}
            Err(e) if e.category() == Category::Leadership => {
                tracing::warn!(job = %id, "lost the lease as the migration ended; the new leader records it");
            }
            Err(e) => tracing::error!(job = %id, error = %e, "could not record the end of the migration on its object"),
        }
    }

    /// Drop every running job where it stands, without undo: the lease is lost
    /// (the new leader takes them over) or a crash is simulated.
    pub fn abandon_all(&self) {
        for h in self.handles.lock().drain(..) {
            h.abort();
        }
        let ids: Vec<String> = self.cancels.lock().drain().map(|(k, _)| k).collect();
        for id in ids {
            self.moving.done(&id);
            self.store.disown(&id);
        }
    }

    /// Drop every running job and take no more (a simulated crash).
    pub fn abort_all(&self) {
        self.tasks.lock().close();
        self.abandon_all();
    }

    /// Shutdown: refuse new jobs, give running ones `grace` to finish, then
    /// cancel (and so undo) the rest, and wait for that too.
    pub async fn drain(&self, grace: Duration) {
        let tasks = {
            let t = self.tasks.lock();
            t.close();
            t.clone()
        };
        if tokio::time::timeout(grace, tasks.wait()).await.is_ok() {
            return;
        }
        let ids: Vec<String> = self.cancels.lock().keys().cloned().collect();
        tracing::warn!(jobs = ids.len(), "shutdown: cancelling running migrations after {}s", grace.as_secs());
        for t in self.cancels.lock().values() {
            t.cancel();
        }
        if tokio::time::timeout(UNDO_BOUND + Duration::from_secs(5), tasks.wait()).await.is_err() {
            tracing::error!("shutdown: some migrations did not finish undoing; the next leader repairs them");
        }
    }
}
