//! Restart repair: finish or undo what interrupted jobs left behind.
//!
//! Jobs live in memory, so after a restart every marker (see `marks`) belongs to
//! a job that no longer runs. The objects say how far each got:
//!
//! | found | meaning | action |
//! |---|---|---|
//! | copy (role=copy), original (same uid) still there | moved half-way | undo: delete the copy (and its checkpoint PVC) |
//! | recreate copy, original gone | finished before the crash | nothing |
//! | original with a lowered deletion cost, no unadopted copy | surge adopted, or copy undone | restore the cost |
//! | Deployment pinned by a job, rolled out | finished | remove the markers |
//! | Deployment pinned by a job, not rolled out | half-way | undo: restore the selector |
//!
//! Run one replica of the service: a second instance's live jobs would look interrupted.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::Api;
use kube::api::ListParams;
use serde_json::json;

use super::undo::{Undo, UndoLog};
use super::{marks, pin};
use crate::cluster::retry;

fn annotation<'a>(meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref().and_then(|a| a.get(key)).map(String::as_str)
}

fn label<'a>(meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, key: &str) -> Option<&'a str> {
    meta.labels.as_ref().and_then(|a| a.get(key)).map(String::as_str)
}

/// What one repair pass found and did, one line per object.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    pub undone: Vec<String>,
    pub finished: Vec<String>,
    pub left: Vec<String>,
    pub failed: Vec<String>,
}

pub async fn run(client: &kube::Client) -> Result<Report, kube::Error> {
    let mut report = Report::default();
    let pods: Api<Pod> = Api::all(client.clone());
    let lp = ListParams::default().labels(&format!("{}={}", marks::ROLE, marks::ROLE_COPY));
    let copies = retry::transient(|| pods.list(&lp)).await?;
    // Jobs whose staged copy is being undone now: their originals' costs are restored below.
    let mut undone_jobs = BTreeSet::new();
    for copy in &copies.items {
        let meta = &copy.metadata;
        let (Some(ns), Some(name)) = (meta.namespace.as_deref(), meta.name.as_deref()) else { continue };
        let job = label(meta, marks::JOB).unwrap_or("?").to_string();
        let original = annotation(meta, marks::ORIGINAL_POD).unwrap_or_default();
        let original_uid = annotation(meta, marks::ORIGINAL_UID).unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        let original_alive = match retry::transient(|| api.get_opt(original)).await? {
            Some(p) => p.metadata.uid.as_deref() == Some(original_uid) && p.metadata.deletion_timestamp.is_none(),
            None => false,
        };
        if !original_alive {
            tracing::debug!(pod = %format!("{ns}/{name}"), job, "copy of a finished migration");
            continue;
        }
        let log = UndoLog::default();
        let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
        let lp =
            ListParams::default().labels(&format!("{}={job},{}={}", marks::JOB, marks::ROLE, marks::ROLE_CHECKPOINT));
        let job_pvcs = retry::transient(|| pvcs.list(&lp)).await?;
        for pvc in job_pvcs.items {
            if let Some(n) = pvc.metadata.name {
                log.push(Undo::DeletePvc { namespace: ns.into(), name: n });
            }
        }
        log.push(Undo::DeletePod { namespace: ns.into(), name: name.into() });
        let failed = log.rollback(client).await;
        let line = format!("{job}: deleted copy {ns}/{name}; original {original} still serves");
        if failed.is_empty() {
            report.undone.push(line)
        } else {
            report.failed.extend(failed)
        }
        undone_jobs.insert(job);
    }

    // Originals whose deletion cost a surge job lowered.
    let everything = ListParams::default();
    let lowered = retry::transient(|| pods.list(&everything)).await?;
    for p in lowered.items.iter().filter(|p| annotation(&p.metadata, marks::COST_JOB).is_some()) {
        let meta = &p.metadata;
        let (Some(ns), Some(name)) = (meta.namespace.as_deref(), meta.name.as_deref()) else { continue };
        if meta.deletion_timestamp.is_some() {
            continue;
        }
        let job = annotation(meta, marks::COST_JOB).unwrap_or_default();
        let previous = annotation(meta, marks::PREVIOUS_COST).filter(|v| !v.is_empty());
        let log = UndoLog::default();
        log.push(Undo::PatchPod {
            namespace: ns.into(),
            name: name.into(),
            patch: json!({"metadata": {"annotations": {
                marks::DELETION_COST: previous, marks::COST_JOB: null, marks::PREVIOUS_COST: null}}}),
        });
        let failed = log.rollback(client).await;
        let line = format!("{job}: restored pod-deletion-cost of {ns}/{name}");
        if failed.is_empty() { report.undone.push(line) } else { report.failed.extend(failed) }
    }

    // Deployments a pin job edited.
    let deployments: Api<Deployment> = Api::all(client.clone());
    for d in retry::transient(|| deployments.list(&everything)).await?.items {
        let meta = &d.metadata;
        let Some(job) = annotation(meta, marks::PINNED_BY) else { continue };
        let (Some(ns), Some(name)) = (meta.namespace.as_deref(), meta.name.as_deref()) else { continue };
        let markers = json!({marks::PINNED_BY: null, marks::PREVIOUS_SELECTOR: null});
        let log = UndoLog::default();
        let line = if pin::rolled_out(&d) {
            log.push(Undo::PatchDeployment {
                namespace: ns.into(),
                name: name.into(),
                patch: json!({"metadata": {"annotations": markers}}),
            });
            format!("{job}: Deployment {ns}/{name} finished rolling out to its pinned node; markers removed")
        } else {
            let previous: Option<String> =
                annotation(meta, marks::PREVIOUS_SELECTOR).and_then(|s| serde_json::from_str(s).ok()).flatten();
            log.push(Undo::PatchDeployment {
                namespace: ns.into(),
                name: name.into(),
                patch: json!({"metadata": {"annotations": markers},
                              "spec": {"template": {"spec": {"nodeSelector": {marks::HOSTNAME: previous}}}}}),
            });
            format!("{job}: Deployment {ns}/{name} had not rolled out; node selector restored")
        };
        let failed = log.rollback(client).await;
        let finished = pin::rolled_out(&d);
        match (failed.is_empty(), finished) {
            (true, true) => report.finished.push(line),
            (true, false) => report.undone.push(line),
            (false, _) => report.failed.extend(failed),
        }
    }

    // Checkpoint PVCs of jobs that never created their copy: kept (they may hold data), reported.
    let pvcs: Api<PersistentVolumeClaim> = Api::all(client.clone());
    let lp = ListParams::default().labels(&format!("{}={}", marks::ROLE, marks::ROLE_CHECKPOINT));
    let checkpoints = retry::transient(|| pvcs.list(&lp)).await?;
    let lp = ListParams::default().labels(marks::JOB);
    let all_pods = retry::transient(|| pods.list(&lp)).await?;
    let jobs_with_pods: BTreeSet<&str> = all_pods.items.iter().filter_map(|p| label(&p.metadata, marks::JOB)).collect();
    for pvc in &checkpoints.items {
        let job = label(&pvc.metadata, marks::JOB).unwrap_or_default();
        if !jobs_with_pods.contains(job) && !undone_jobs.contains(job) {
            report.left.push(format!(
                "{job}: checkpoint PVC {}/{} has no pod; kept in case it holds data (delete it with kubectl if not)",
                pvc.metadata.namespace.as_deref().unwrap_or_default(),
                pvc.metadata.name.as_deref().unwrap_or_default()
            ));
        }
    }

    for l in &report.undone {
        tracing::info!("repair: undone {l}");
    }
    for l in &report.finished {
        tracing::info!("repair: finished {l}");
    }
    for l in &report.left {
        tracing::warn!("repair: {l}");
    }
    for l in &report.failed {
        tracing::error!("repair: could not {l}");
    }
    Ok(report)
}
