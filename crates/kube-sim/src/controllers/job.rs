//! The Job controller: runs a job's pods to completion. It starts up to
//! `parallelism` pods until `completions` have succeeded (or, without
//! `completions`, until one succeeded and none runs), counts failures against
//! `backoffLimit` (restarts of `OnFailure` pods too), enforces
//! `activeDeadlineSeconds`, honours `suspend`, keeps the status (active,
//! ready, succeeded, failed, start and completion times, the
//! `SuccessCriteriaMet`/`Complete` and `FailureTarget`/`Failed` conditions)
//! and, as the TTL-after-finished controller, deletes finished jobs after
//! `ttlSecondsAfterFinished`. The arithmetic is `crate::rules::job`.

use std::sync::Arc;

use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::plane::Plane;
use super::replicaset::{controller_ref, pod_from_template};
use super::state::{Dirty, Kind, Msg};
use crate::apiserver::Propagation;
use crate::cached_pod::CachedPod;
use crate::rules::job::{Counts, Decision, decide};
use crate::rules::ranking::is_pod_ready;

const MANAGER: &str = "job-controller";

fn phase(p: &CachedPod) -> &str {
    p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or_default()
}

fn finished(job: &Job) -> Option<(&'static str, Option<Time>)> {
    let conds = job.status.as_ref().and_then(|s| s.conditions.as_ref())?;
    conds.iter().find_map(|c| match (c.type_.as_str(), c.status.as_str()) {
        ("Complete", "True") => Some(("Complete", c.last_transition_time.clone())),
        ("Failed", "True") => Some(("Failed", c.last_transition_time.clone())),
        _ => None,
    })
}

/// The pods a job owns (by controller reference).
fn owned_pods(plane: &Plane, job: &Job) -> Vec<Arc<CachedPod>> {
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let state = plane.state.read();
    state
        .dependents(&uid)
        .into_iter()
        .filter(|(k, _)| *k == Kind::Pod)
        .filter_map(|(_, key)| state.pods.get(&key).cloned())
        .collect()
}

pub fn reconcile(plane: &mut Plane, key: &str) {
    let Some(job) = plane.state.read().jobs.get(key).cloned() else { return };
    if job.metadata.deletion_timestamp.is_some() {
        super::gc::on_owner_deleting(plane, &job.metadata, "batch/v1", "Job");
        return;
    }
    if let Some((_, at)) = finished(&job) {
        expire(plane, key, &job, at);
        return;
    }
    let Some(spec) = job.spec.clone() else { return };
    let pods = owned_pods(plane, &job);
    let on_failure = spec.template.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) == Some("OnFailure");
    let active: Vec<&Arc<CachedPod>> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && !matches!(phase(p), "Succeeded" | "Failed"))
        .collect();
    let restarts: i32 = if on_failure {
        active
            .iter()
            .flat_map(|p| p.status.iter().flat_map(|s| s.container_statuses.iter().flatten()))
            .map(|c| c.restart_count)
            .sum()
    } else {
        0
    };
    let old = job.status.clone().unwrap_or_default();
    // Counts only grow: a finished pod deleted later (by a user, by TTL) was counted.
    let succeeded = (pods.iter().filter(|p| phase(p) == "Succeeded").count() as i32).max(old.succeeded.unwrap_or(0));
    let failed = (pods.iter().filter(|p| phase(p) == "Failed").count() as i32).max(old.failed.unwrap_or(0));
    let counts = Counts {
        active: active.len() as i32,
        ready: active.iter().filter(|p| is_pod_ready(p)).count() as i32,
        succeeded,
        failed: failed + restarts,
    };
    let now = plane.api.clock.now();
    let start = old.start_time.clone().map(|t| t.0);
    let past_deadline = match (spec.active_deadline_seconds, start) {
        (Some(d), Some(s)) => now.duration_since(s).as_secs_f64() >= d as f64,
        _ => false,
    };
    if let (Some(d), Some(s), false) = (spec.active_deadline_seconds, start, past_deadline) {
        plane.after(d as f64 - now.duration_since(s).as_secs_f64(), Dirty::Job(key.to_string()));
    }
    let decision = decide(&spec, counts, past_deadline);
    let mut status = JobStatus {
        active: Some(counts.active).filter(|n| *n != 0),
        ready: Some(counts.ready),
        terminating: Some(pods.iter().filter(|p| p.metadata.deletion_timestamp.is_some()).count() as i32),
        succeeded: Some(succeeded).filter(|n| *n != 0),
        failed: Some(failed).filter(|n| *n != 0),
        start_time: old.start_time.clone(),
        completion_time: None,
        conditions: old.conditions.clone(),
        uncounted_terminated_pods: Some(UncountedTerminatedPods::default()),
        ..JobStatus::default()
    };
    let now_t = Time(now);
    match decision {
        Decision::Suspended => {
            delete_pods(plane, &job, &active);
            status.active = None;
            set_condition(&mut status, "Suspended", "JobSuspended", "Job suspended", &now_t);
        }
        Decision::Run { create } => {
            status.start_time.get_or_insert_with(|| now_t.clone());
            clear_condition(&mut status, "Suspended");
            if let (Some(d), None) = (spec.active_deadline_seconds, start) {
                plane.after(d as f64, Dirty::Job(key.to_string()));
            }
            if create > 0 {
                let made = create_pods(plane, key, &job, create);
                status.active = Some(counts.active + made).filter(|n| *n != 0);
            } else if create < 0 {
                let excess: Vec<&Arc<CachedPod>> = active.iter().rev().take((-create) as usize).copied().collect();
                delete_pods(plane, &job, &excess);
            }
        }
        Decision::Complete => {
            set_condition(
                &mut status,
                "SuccessCriteriaMet",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                &now_t,
            );
            set_condition(
                &mut status,
                "Complete",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                &now_t,
            );
            status.completion_time = Some(now_t.clone());
            plane.event_about(&job.metadata, "batch/v1", "Job", "Completed", "Job completed", "Normal", MANAGER, "");
        }
        Decision::Fail { reason, message } => {
            delete_pods(plane, &job, &active);
            status.active = None;
            set_condition(&mut status, "FailureTarget", reason, message, &now_t);
            set_condition(&mut status, "Failed", reason, message, &now_t);
            plane.event_about(&job.metadata, "batch/v1", "Job", reason, message, "Warning", MANAGER, "");
        }
    }
    if job.status.as_ref() == Some(&status) {
        return;
    }
    let mut new = (*job).clone();
    new.status = Some(status);
    match plane.replace(MANAGER, &new, true, Msg::Job) {
        Ok(written) => {
            if let Some((_, at)) = finished(&written) {
                expire(plane, key, &written, at);
            }
        }
        Err(e) => {
            plane.note("job status", key, &e);
            plane.after(1.0, Dirty::Job(key.to_string()));
        }
    }
}

fn set_condition(status: &mut JobStatus, ty: &str, reason: &str, message: &str, now: &Time) {
    let conds = status.conditions.get_or_insert_with(Vec::new);
    if conds.iter().any(|c| c.type_ == ty && c.status == "True") {
        return;
    }
    conds.retain(|c| c.type_ != ty);
    conds.push(JobCondition {
        type_: ty.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(now.clone()),
        last_transition_time: Some(now.clone()),
    });
}

fn clear_condition(status: &mut JobStatus, ty: &str) {
    if let Some(conds) = status.conditions.as_mut() {
        conds.retain(|c| c.type_ != ty);
        if conds.is_empty() {
            status.conditions = None;
        }
    }
}

fn create_pods(plane: &mut Plane, key: &str, job: &Job, n: i32) -> i32 {
    let Some(spec) = job.spec.as_ref() else { return 0 };
    let ns = job.metadata.namespace.clone().unwrap_or_default();
    let name = job.metadata.name.clone().unwrap_or_default();
    let owner = controller_ref("batch/v1", "Job", &job.metadata);
    let mut made = 0;
    for _ in 0..n {
        let pod = pod_from_template(&spec.template, &ns, &format!("{name}-"), owner.clone());
        match plane.create("job-controller", Some(&ns), &pod, Some(Msg::Pod)) {
            Ok(created) => {
                made += 1;
                let pname = crate::meta::name(&created).to_string();
                let msg = format!("Created pod: {pname}");
                plane.event_about(&job.metadata, "batch/v1", "Job", "SuccessfulCreate", &msg, "Normal", MANAGER, "");
            }
            Err(e) => {
                plane.note("create job pod", key, &e);
                plane.after(1.0, Dirty::Job(key.to_string()));
                break;
            }
        }
    }
    made
}

fn delete_pods(plane: &mut Plane, job: &Job, pods: &[&Arc<CachedPod>]) {
    for p in pods {
        let (ns, name) = (p.metadata.namespace.clone(), p.metadata.name.clone().unwrap_or_default());
        match plane.delete::<Pod>(ns.as_deref(), &name, p.metadata.uid.as_deref(), None, None) {
            Ok(()) => {
                let msg = format!("Deleted pod: {name}");
                plane.event_about(&job.metadata, "batch/v1", "Job", "SuccessfulDelete", &msg, "Normal", MANAGER, "");
            }
            Err(e) => plane.note("delete job pod", &name, &e),
        }
    }
}

/// The TTL-after-finished controller: delete a finished job (and, in the
/// background, its pods) `ttlSecondsAfterFinished` after it finished.
fn expire(plane: &mut Plane, key: &str, job: &Job, finished_at: Option<Time>) {
    let Some(ttl) = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished) else { return };
    let Some(at) = finished_at.map(|t| t.0) else { return };
    let left = ttl as f64 - plane.api.clock.now().duration_since(at).as_secs_f64();
    if left > 0.0 {
        plane.after(left, Dirty::Job(key.to_string()));
        return;
    }
    let ns = job.metadata.namespace.clone();
    let name = job.metadata.name.clone().unwrap_or_default();
    let uid = job.metadata.uid.clone();
    if let Err(e) = plane.delete::<Job>(ns.as_deref(), &name, uid.as_deref(), None, Some(Propagation::Background)) {
        plane.note("delete expired job", key, &e);
    }
}
