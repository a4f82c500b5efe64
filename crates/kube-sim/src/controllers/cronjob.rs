//! The CronJob controller, on the simulated clock: at each activation of the
//! schedule (UTC; the most recent missed one when several were missed, none
//! older than `startingDeadlineSeconds`) it creates a Job named
//! `<cronjob>-<minutes since the epoch>` from the job template, honouring
//! `concurrencyPolicy` (Allow, Forbid, Replace) and `suspend`; it keeps
//! `status.active`, `lastScheduleTime` and `lastSuccessfulTime`, and deletes
//! finished jobs beyond the history limits, oldest first.

use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use super::plane::Plane;
use super::replicaset::controller_ref;
use super::state::{Dirty, Kind, Msg};
use crate::apiserver::Propagation;
use crate::rules::cron::Schedule;

const MANAGER: &str = "cronjob-controller";
const SCHEDULED: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// How many missed activations are looked at (upstream gives up after 100).
const MAX_MISSED: usize = 100;

fn job_state(job: &Job) -> Option<&'static str> {
    job.status.as_ref().and_then(|s| s.conditions.as_ref())?.iter().find_map(|c| {
        match (c.type_.as_str(), c.status.as_str()) {
            ("Complete", "True") => Some("Complete"),
            ("Failed", "True") => Some("Failed"),
            _ => None,
        }
    })
}

fn jobs_of(plane: &Plane, cj: &CronJob) -> Vec<Arc<Job>> {
    let uid = cj.metadata.uid.clone().unwrap_or_default();
    let state = plane.state.read();
    state
        .dependents(&uid)
        .into_iter()
        .filter(|(k, _)| *k == Kind::Job)
        .filter_map(|(_, key)| state.jobs.get(&key).cloned())
        .filter(|j| j.metadata.deletion_timestamp.is_none())
        .collect()
}

pub fn reconcile(plane: &mut Plane, key: &str) {
    let Some(cj) = plane.state.read().cronjobs.get(key).cloned() else { return };
    if cj.metadata.deletion_timestamp.is_some() {
        super::gc::on_owner_deleting(plane, &cj.metadata, "batch/v1", "CronJob");
        return;
    }
    let Some(spec) = cj.spec.clone() else { return };
    let Ok(schedule) = Schedule::parse(&spec.schedule) else { return };
    let now = plane.api.clock.now();
    let mut jobs = jobs_of(plane, &cj);
    jobs.sort_by_key(|j| j.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let old = cj.status.clone().unwrap_or_default();
    let mut status = CronJobStatus {
        last_schedule_time: old.last_schedule_time.clone(),
        last_successful_time: old.last_successful_time.clone(),
        ..CronJobStatus::default()
    };
    for j in &jobs {
        if job_state(j) == Some("Complete") {
            let done = j.status.as_ref().and_then(|s| s.completion_time.clone());
            if done.as_ref().map(|t| t.0) > status.last_successful_time.as_ref().map(|t| t.0) {
                status.last_successful_time = done;
            }
        }
    }
    let mut active: Vec<Arc<Job>> = jobs.iter().filter(|j| job_state(j).is_none()).cloned().collect();

    // The most recent activation due since the last one (or since creation).
    let since = old.last_schedule_time.as_ref().or(cj.metadata.creation_timestamp.as_ref()).map_or(now, |t| t.0);
    let mut due: Option<Timestamp> = None;
    let mut t = since;
    for _ in 0..MAX_MISSED {
        match schedule.next_after(t) {
            Some(n) if n <= now => {
                due = Some(n);
                t = n;
            }
            _ => break,
        }
    }
    if let Some(at) = due
        && spec.suspend != Some(true)
    {
        let too_late = spec.starting_deadline_seconds.is_some_and(|d| now.duration_since(at).as_secs_f64() > d as f64);
        let forbid = spec.concurrency_policy.as_deref() == Some("Forbid") && !active.is_empty();
        if !too_late && !forbid {
            if spec.concurrency_policy.as_deref() == Some("Replace") {
                for j in active.drain(..) {
                    delete_job(plane, &j, "SuccessfulDelete");
                }
            }
            match create_job(plane, &cj, at) {
                Ok(job) => active.push(job),
                Err(()) => {
                    plane.after(1.0, Dirty::CronJob(key.to_string()));
                }
            }
            status.last_schedule_time = Some(Time(at));
        } else if too_late {
            status.last_schedule_time = Some(Time(at));
        }
    }
    status.active = (!active.is_empty()).then(|| active.iter().map(|j| reference(&j.metadata)).collect());
    clean_history(plane, &jobs, spec.successful_jobs_history_limit.unwrap_or(3), "Complete");
    clean_history(plane, &jobs, spec.failed_jobs_history_limit.unwrap_or(1), "Failed");

    // Look again at the next activation.
    if let Some(next) = schedule.next_after(now) {
        plane.after(next.duration_since(now).as_secs_f64(), Dirty::CronJob(key.to_string()));
    }
    if cj.status.as_ref() == Some(&status) {
        return;
    }
    let mut new = (*cj).clone();
    new.status = Some(status);
    if let Err(e) = plane.replace(MANAGER, &new, true, Msg::CronJob) {
        plane.note("cronjob status", key, &e);
        plane.after(1.0, Dirty::CronJob(key.to_string()));
    }
}

fn reference(meta: &ObjectMeta) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        ..ObjectReference::default()
    }
}

fn create_job(plane: &mut Plane, cj: &CronJob, at: Timestamp) -> Result<Arc<Job>, ()> {
    let Some(spec) = cj.spec.as_ref() else { return Err(()) };
    let ns = cj.metadata.namespace.clone().unwrap_or_default();
    let name = format!("{}-{}", cj.metadata.name.as_deref().unwrap_or_default(), at.as_second() / 60);
    let tmeta = spec.job_template.metadata.clone().unwrap_or_default();
    let mut annotations = tmeta.annotations.unwrap_or_default();
    annotations.insert(SCHEDULED.into(), crate::clock::format_time(at));
    let job = Job {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ns.clone()),
            labels: tmeta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![controller_ref("batch/v1", "CronJob", &cj.metadata)]),
            ..ObjectMeta::default()
        },
        spec: spec.job_template.spec.clone(),
        status: None,
    };
    match plane.create(MANAGER, Some(&ns), &job, Some(Msg::Job)) {
        Ok(v) => {
            let msg = format!("Created job {name}");
            plane.event_about(&cj.metadata, "batch/v1", "CronJob", "SuccessfulCreate", &msg, "Normal", MANAGER, "");
            serde_json::from_value::<Job>(v).map(Arc::new).map_err(|_| ())
        }
        Err(e) if e.code == 409 => Err(()),
        Err(e) => {
            plane.note("create job", &name, &e);
            plane.event_about(&cj.metadata, "batch/v1", "CronJob", "FailedCreate", &e.message, "Warning", MANAGER, "");
            Err(())
        }
    }
}

fn delete_job(plane: &mut Plane, job: &Job, reason: &str) {
    let (ns, name) = (job.metadata.namespace.clone(), job.metadata.name.clone().unwrap_or_default());
    let uid = job.metadata.uid.clone();
    match plane.delete::<Job>(ns.as_deref(), &name, uid.as_deref(), None, Some(Propagation::Background)) {
        Ok(()) => {
            let owner = job.metadata.owner_references.iter().flatten().find(|o| o.controller == Some(true)).cloned();
            if let Some(o) = owner {
                let meta = ObjectMeta { name: Some(o.name), namespace: ns, uid: Some(o.uid), ..ObjectMeta::default() };
                let msg = format!("Deleted job {name}");
                plane.event_about(&meta, "batch/v1", "CronJob", reason, &msg, "Normal", MANAGER, "");
            }
        }
        Err(e) => plane.note("delete job", &name, &e),
    }
}

/// Keep the newest `limit` jobs that ended in `state`.
fn clean_history(plane: &mut Plane, jobs: &[Arc<Job>], limit: i32, state: &str) {
    let ended: Vec<&Arc<Job>> = jobs.iter().filter(|j| job_state(j) == Some(state)).collect();
    let excess = ended.len().saturating_sub(limit.max(0) as usize);
    for j in ended.into_iter().take(excess) {
        delete_job(plane, j, "SawCompletedJob");
    }
}
