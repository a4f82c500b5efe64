//! The reconcile loop that runs PodMigrations — on the leader only, and the
//! only thing that does (a kube-runtime `Controller`, driven by the objects'
//! watch). What it does with one object:
//!
//! | the object | this replica | action |
//! |---|---|---|
//! | any phase, cancellation asked | runs it | cancel: the job stops and undoes |
//! | pending (no status yet) | — | cancellation asked: end it `cancelled`; else admit it and run it, or end it `failed` with the refusal |
//! | running | does not run it | take it over: finish it or end it with its changes undone (`sdi_core::repair::takeover`) |
//! | finished, finalizer left | — | remove the finalizer |
//!
//! Finished objects are deleted after `MIGRATION_HISTORY_TTL`, and beyond
//! `MIGRATION_HISTORY_MAX` the oldest first (`collect_history`).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use parking_lot::Mutex;
use sdi_core::error::Category;
use sdi_core::job::JobStatus;
use sdi_core::repair::{self, Takeover, TakeoverEnd};
use tokio_util::sync::CancellationToken;

use super::Migrations;
use super::crd::PodMigration;
use crate::cluster::cache::uid_number;
use crate::engine::preflight;
use crate::engine::repair::Report;
use crate::error::Error;
use crate::jobs::model::now_rfc3339;

/// What the controller works with.
pub struct Ctl {
    pub migrations: Arc<Migrations>,
    /// Restart repair's findings when this replica became leader.
    pub repaired: Mutex<Report>,
}

/// Run the loop until `stop` (leadership lost, or shutdown).
pub async fn run(ctl: Arc<Ctl>, stop: CancellationToken) {
    let api: Api<PodMigration> = Api::all(ctl.migrations.client.clone());
    Controller::new(api, watcher::Config::default())
        .graceful_shutdown_on(async move { stop.cancelled().await })
        .run(reconcile, error_policy, ctl)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "reconcile");
            }
        })
        .await;
}

fn error_policy(_: Arc<PodMigration>, e: &Error, _: Arc<Ctl>) -> Action {
    tracing::warn!(error = %e, "a PodMigration could not be reconciled; retrying");
    Action::requeue(Duration::from_secs(5))
}

/// How long the watch may take to show this replica's own final status write.
const STALE_GRACE: Duration = Duration::from_secs(3);

async fn reconcile(pm: Arc<PodMigration>, ctl: Arc<Ctl>) -> Result<Action, Error> {
    let runner = &ctl.migrations.runner;
    let id = pm.id();
    if runner.is_live(id) {
        if pm.cancel_requested() {
            runner.cancel(id);
        }
        return Ok(Action::await_change());
    }
    if !pm.phase().is_terminal()
        && let Some((job, at)) = runner.ended(id)
    {
        // This replica ended it, but the copy at hand predates the end.
        if at.elapsed() < STALE_GRACE {
            return Ok(Action::requeue(STALE_GRACE));
        }
        // Still not terminal after the grace: the end's write did not land.
        runner.rewrite_end(&job).await?;
        return Ok(Action::await_change());
    }
    match pm.phase() {
        JobStatus::Pending => start(&ctl, &pm).await?,
        JobStatus::Running => {
            if let Some(again) = take_over(&ctl, &pm).await? {
                return Ok(Action::requeue(again));
            }
        }
        _ => {
            if pm.has_finalizer() {
                runner.engine.writer.release_migration(pm.namespace(), id).await?;
            }
        }
    }
    Ok(Action::await_change())
}

/// A new migration: admit and run it (or refuse it, or end it cancelled).
async fn start(ctl: &Ctl, pm: &PodMigration) -> Result<(), Error> {
    let runner = &ctl.migrations.runner;
    let mut job = pm.job();
    if pm.cancel_requested() {
        job.status = JobStatus::Cancelled;
        job.details.error = Some("cancelled before it started".into());
        job.details.error_category = Some(Category::Cancelled);
        return conclude(ctl, job).await;
    }
    if !pm.has_finalizer() {
        runner.engine.writer.protect_migration(pm.namespace(), pm.id()).await?;
    }
    match preflight::check(&runner.engine, runner.store.as_ref(), &pm.request(), runner.default_strategy, Some(pm.id()))
        .await
    {
        Ok(plan) => runner.start(job, plan),
        Err(refusal) => runner.refuse(job, &refusal).await,
    }
    Ok(())
}

/// A migration whose runner is gone: finish it or end it undone; or look
/// again after the returned delay (a replacement still starting).
async fn take_over(ctl: &Ctl, pm: &PodMigration) -> Result<Option<Duration>, Error> {
    let mut job = pm.job();
    let (undone, finished) = {
        let r = ctl.repaired.lock();
        (r.jobs_undone.contains(&job.id), r.jobs_finished.contains(&job.id))
    };
    let cache = &ctl.migrations.runner.engine.cache;
    let uid = job.pod_uid.as_deref().map(uid_number);
    let (ns, pod, new) =
        (job.request.pod_namespace.clone(), job.request.pod_name.clone(), job.details.new_pod_name.clone());
    let (original_serves, replacement_ready) = cache.read(|v| {
        let same = v.pod(&ns, &pod);
        let original = same.is_some_and(|(p, m)| Some(m.uid) == uid.or(Some(m.uid)) && !p.terminating);
        // Its copy, or its controller's replacement under the same name (a StatefulSet's).
        let renamed = !new.is_empty() && v.pod(&ns, &new).is_some_and(|(p, m)| m.ready && !p.terminating);
        let renewed = uid.is_some() && same.is_some_and(|(p, m)| Some(m.uid) != uid && m.ready && !p.terminating);
        (original, renamed || renewed)
    });
    let timeout = Duration::from_secs(
        u64::try_from(job.request.timeout)
            .ok()
            .filter(|t| *t > 0)
            .unwrap_or(ctl.migrations.runner.engine.settings.default_timeout.as_secs()),
    );
    let started: Option<jiff::Timestamp> = job.details.start_time.parse().ok();
    let timed_out = started.is_none_or(|s| {
        jiff::Timestamp::now().duration_since(s).as_secs() > i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX)
    });
    let end = repair::takeover(Takeover { undone, finished, original_serves, replacement_ready }, timed_out);
    tracing::info!(job = %job.id, "taking over a migration its replica left running: {end:?}");
    match end {
        TakeoverEnd::Wait => return Ok(Some(Duration::from_secs(2))),
        TakeoverEnd::Completed(note) => {
            job.status = JobStatus::Completed;
            job.details.error = None;
            job.details.error_category = None;
            push_step(&mut job, &note);
        }
        TakeoverEnd::Failed(why) => {
            job.status = JobStatus::Failed;
            job.details.error = Some(why.clone());
            job.details.error_category = Some(Category::Leadership);
            push_step(&mut job, &why);
        }
    }
    conclude(ctl, job).await.map(|()| None)
}

fn push_step(job: &mut crate::jobs::Job, message: &str) {
    let now = now_rfc3339();
    for s in job.details.steps.iter_mut().filter(|s| s.status == sdi_core::job::StepStatus::Running) {
        s.status = sdi_core::job::StepStatus::Failed;
        s.end_time = Some(now.clone());
        s.message = "interrupted".into();
    }
    job.details.steps.push(crate::jobs::model::Step {
        name: "takeover".into(),
        status: sdi_core::job::StepStatus::Completed,
        start_time: now.clone(),
        end_time: Some(now),
        message: message.into(),
    });
}

/// End a migration this replica did not run: its final status, the finalizer, the record.
async fn conclude(ctl: &Ctl, mut job: crate::jobs::Job) -> Result<(), Error> {
    let now = now_rfc3339();
    job.details.end_time.get_or_insert(now);
    if job.details.duration.is_none() {
        let start: Option<jiff::Timestamp> = job.details.start_time.parse().ok();
        let end: Option<jiff::Timestamp> = job.details.end_time.as_deref().and_then(|t| t.parse().ok());
        job.details.duration = match (start, end) {
            (Some(s), Some(e)) => u64::try_from(e.duration_since(s).as_nanos()).ok(),
            _ => Some(0),
        };
    }
    ctl.migrations.runner.conclude(job).await
}

/// Delete finished PodMigrations past `ttl`, and the oldest beyond `max`.
pub async fn collect_history(migrations: &Migrations, ttl: Duration, max: usize) {
    let store = &migrations.runner.store;
    let mut finished: Vec<(jiff::Timestamp, String, String)> = store
        .list(&Default::default())
        .into_iter()
        .filter(|j| j.status.is_terminal())
        .filter_map(|j| {
            let end = j.details.end_time.as_deref().and_then(|t| t.parse::<jiff::Timestamp>().ok())?;
            Some((end, j.request.pod_namespace.clone(), j.id.clone()))
        })
        .collect();
    finished.sort();
    let now = jiff::Timestamp::now();
    let excess = finished.len().saturating_sub(max);
    for (i, (end, ns, id)) in finished.iter().enumerate() {
        let expired = now.duration_since(*end).as_secs() > i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        if i < excess || expired {
            if let Err(e) = migrations.runner.engine.writer.delete_migration(ns, id).await {
                tracing::warn!(migration = %id, error = %e, "could not delete a finished PodMigration");
            } else {
                tracing::debug!(migration = %id, "history: deleted");
            }
        }
    }
}
