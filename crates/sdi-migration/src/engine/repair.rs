//! Restart repair: finish or undo what interrupted jobs left behind.
//!
//! It runs when a replica becomes the leader, before it runs anything: the
//! previous leader has stopped writing by then (fencing), so every marker (see
//! `marks`) belongs to a job that no longer runs. This module finds the marked
//! objects and carries out what `sdi_core::repair::action` decides for each (the
//! table is there); the takeover of each running PodMigration then goes by what
//! it did. One object it cannot read or repair is reported — log, Event, metric —
//! and the rest are repaired anyway: repair never stops the service from starting.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::ListParams;
use kube::{Api, Resource};
use sdi_core::repair::{self, Action, Leftover, Original, Previous};
use serde_json::json;

use super::marks;
use super::undo::Undo;
use crate::cluster::facts;
use crate::cluster::retry;
use crate::cluster::writer::Writer;

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref().and_then(|a| a.get(key)).map(String::as_str)
}

fn label<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.labels.as_ref().and_then(|a| a.get(key)).map(String::as_str)
}

/// What one repair pass found and did, one line per object.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    pub undone: Vec<String>,
    pub finished: Vec<String>,
    pub left: Vec<String>,
    /// Objects whose markers cannot be trusted: reported, not touched.
    pub malformed: Vec<String>,
    /// What could not be read or repaired (API errors): the next start tries again.
    pub failed: Vec<String>,
    /// Jobs whose changes were undone, and jobs found complete (for taking their objects over).
    pub jobs_undone: std::collections::BTreeSet<String>,
    pub jobs_finished: std::collections::BTreeSet<String>,
}

impl Report {
    /// How many objects ended in each outcome, for the metric.
    pub fn counts(&self) -> [(&'static str, usize); 5] {
        [
            ("undone", self.undone.len()),
            ("finished", self.finished.len()),
            ("left", self.left.len()),
            ("malformed", self.malformed.len()),
            ("failed", self.failed.len()),
        ]
    }
}

fn reference<K: Resource<DynamicType = ()>>(meta: &ObjectMeta) -> ObjectReference {
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        namespace: meta.namespace.clone(),
        name: meta.name.clone(),
        uid: meta.uid.clone(),
        ..Default::default()
    }
}

struct Pass<'a> {
    client: &'a kube::Client,
    writer: &'a Writer,
    report: Report,
}

impl Pass<'_> {
    /// Undo staged copies whose original still serves, except those of jobs
    /// `live` here; the jobs undone. `report_malformed`: also report copies
    /// whose markers cannot be trusted (once, at takeover, not every sweep).
    async fn copies(&mut self, live: &(dyn Fn(&str) -> bool + Sync), report_malformed: bool) -> BTreeSet<String> {
        let copies: Vec<Pod> =
            self.list(&ListParams::default().labels(&format!("{}={}", marks::ROLE, marks::ROLE_COPY)), "copies").await;
        // Jobs whose staged copy is being undone now: their PVCs go with it.
        let mut undone_jobs = BTreeSet::new();
        for copy in &copies {
            let meta = &copy.metadata;
            let (Some(ns), Some(name)) = (meta.namespace.as_deref(), meta.name.as_deref()) else { continue };
            let job = label(meta, marks::JOB).unwrap_or("?").to_string();
            if live(&job) {
                continue;
            }
            let original_name = annotation(meta, marks::ORIGINAL_POD);
            let original_uid = annotation(meta, marks::ORIGINAL_UID);
            // Look the original up only when the reference is readable.
            let found = match original_name.filter(|n| !n.is_empty()) {
                Some(original) => {
                    let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
                    match retry::transient(|| api.get_opt(original)).await {
                        Ok(p) => p,
                        Err(e) => {
                            self.report
                                .failed
                                .push(format!("{job}: read original {ns}/{original} of copy {name}: {e}"));
                            continue;
                        }
                    }
                }
                None => None,
            };
            let original = found.as_ref().map(|p| Original {
                uid: p.metadata.uid.as_deref(),
                terminating: p.metadata.deletion_timestamp.is_some(),
            });
            match repair::action(Leftover::Copy { original_name, original_uid, original }) {
                Action::UndoCopy => {
                    let pvcs: Vec<PersistentVolumeClaim> = self
                        .list(
                            &ListParams::default().labels(&format!(
                                "{}={job},{}={}",
                                marks::JOB,
                                marks::ROLE,
                                marks::ROLE_CHECKPOINT
                            )),
                            "checkpoint PVCs",
                        )
                        .await;
                    let mut actions: Vec<Undo> = pvcs
                        .into_iter()
                        .filter(|p| p.metadata.namespace.as_deref() == Some(ns))
                        .filter_map(|p| p.metadata.name)
                        .map(|n| Undo::DeletePvc { namespace: ns.into(), name: n })
                        .collect();
                    actions.push(Undo::DeletePod { namespace: ns.into(), name: name.into() });
                    let line = format!(
                        "{job}: deleted copy {ns}/{name}; original {} still serves",
                        original_name.unwrap_or_default()
                    );
                    self.undo(&job, actions, line, false).await;
                    undone_jobs.insert(job);
                }
                Action::Malformed(why) if report_malformed => self.malformed::<Pod>(meta, &job, why).await,
                _ => tracing::debug!(pod = %format!("{ns}/{name}"), job, "copy of a finished migration"),
            }
        }

        undone_jobs
    }

    /// List what carries a marker; a failed list is reported and yields nothing.
    async fn list<K>(&mut self, lp: &ListParams, what: &str) -> Vec<K>
    where
        K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let api: Api<K> = Api::all(self.client.clone());
        match retry::transient(|| api.list(lp)).await {
            Ok(list) => list.items,
            Err(e) => {
                self.report.failed.push(format!("list {what}: {e}"));
                Vec::new()
            }
        }
    }

    /// Report an object whose markers cannot be trusted, on the object itself too.
    async fn malformed<K: Resource<DynamicType = ()>>(&mut self, meta: &ObjectMeta, job: &str, why: String) {
        let (ns, name) = (meta.namespace.as_deref().unwrap_or_default(), meta.name.as_deref().unwrap_or_default());
        let line = format!("{job}: {} {ns}/{name}: {why}", K::kind(&()));
        self.writer.event_on(&reference::<K>(meta), true, "MigrationRepairSkipped", &why).await;
        self.report.malformed.push(line);
    }

    /// Run `actions` as the job's undo; the outcome goes to `ok` or to `failed`.
    async fn undo(&mut self, job: &str, actions: Vec<Undo>, line: String, finished: bool) {
        let w = self.writer.job(job);
        for a in actions {
            w.will_undo(a);
        }
        let failed = w.rollback().await;
        if !failed.is_empty() {
            self.report.failed.extend(failed);
        } else if finished {
            self.report.finished.push(line);
            self.report.jobs_finished.insert(job.to_string());
        } else {
            self.report.undone.push(line);
            self.report.jobs_undone.insert(job.to_string());
        }
    }
}

/// How often the leader looks for stray copies.
pub const SWEEP: std::time::Duration = std::time::Duration::from_secs(10);

/// Copies no running job owns: a deposed leader's create that passed its
/// fence, then stalled (a paused process, a slow network) and landed after the
/// takeover already repaired and undid its job. The leader sweeps for them
/// every [`SWEEP`]; copies of jobs `live` on this replica are theirs.
pub async fn stray_copies(client: &kube::Client, writer: &Writer, live: &(dyn Fn(&str) -> bool + Sync)) -> Report {
    let mut pass = Pass { client, writer, report: Report::default() };
    pass.copies(live, false).await;
    for l in &pass.report.undone {
        tracing::warn!("repair: undone a copy written after its job ended: {l}");
    }
    for l in &pass.report.failed {
        tracing::error!("repair: could not {l}");
    }
    pass.report
}

pub async fn run(client: &kube::Client, writer: &Writer) -> Report {
    let mut pass = Pass { client, writer, report: Report::default() };
    let everything = ListParams::default();

    // Staged copies; jobs whose staged copy is being undone now (their PVCs go with it).
    let undone_jobs = pass.copies(&|_| false, true).await;

    // Originals whose deletion cost a surge job lowered.
    let lowered: Vec<Pod> = pass.list(&everything, "pods").await;
    for p in lowered.iter().filter(|p| annotation(&p.metadata, marks::COST_JOB).is_some()) {
        let meta = &p.metadata;
        let (Some(ns), Some(name)) = (meta.namespace.as_deref(), meta.name.as_deref()) else { continue };
        let job = annotation(meta, marks::COST_JOB).unwrap_or_default().to_string();
        if repair::action(Leftover::LoweredCost { terminating: meta.deletion_timestamp.is_some() })
            == Action::RestoreCost
        {
            let previous = annotation(meta, marks::PREVIOUS_COST).filter(|v| !v.is_empty());
            let restore = Undo::PatchPod {
                namespace: ns.into(),
                name: name.into(),
                patch: json!({"metadata": {"annotations": {
                    marks::DELETION_COST: previous, marks::COST_JOB: null, marks::PREVIOUS_COST: null}}}),
            };
            let line = format!("{job}: restored pod-deletion-cost of {ns}/{name}");
            pass.undo(&job, vec![restore], line, false).await;
        }
    }

    // Deployments a pin job edited.
    let deployments: Vec<Deployment> = pass.list(&everything, "deployments").await;
    for d in &deployments {
        let meta = &d.metadata;
        let Some(job) = annotation(meta, marks::PINNED_BY).map(str::to_string) else { continue };
        let (Some(ns), Some(name)) = (meta.namespace.as_deref(), meta.name.as_deref()) else { continue };
        let previous = match annotation(meta, marks::PREVIOUS_SELECTOR).map(serde_json::from_str::<Option<String>>) {
            Some(Ok(v)) => Some(v),
            _ => None,
        };
        let leftover = Leftover::Pinned {
            rolled_out: facts::rolled_out(d),
            previous: match &previous {
                Some(v) => Previous::Value(v.as_deref()),
                None => Previous::Unreadable,
            },
        };
        let markers = json!({marks::PINNED_BY: null, marks::PREVIOUS_SELECTOR: null});
        let patch = |patch| Undo::PatchDeployment { namespace: ns.into(), name: name.into(), patch };
        match repair::action(leftover) {
            Action::RemovePinMarkers => {
                let line =
                    format!("{job}: Deployment {ns}/{name} finished rolling out to its pinned node; markers removed");
                pass.undo(&job, vec![patch(json!({"metadata": {"annotations": markers}}))], line, true).await;
            }
            Action::RestoreSelector(previous) => {
                let line = format!("{job}: Deployment {ns}/{name} had not rolled out; node selector restored");
                let restore = patch(json!({"metadata": {"annotations": markers},
                    "spec": {"template": {"spec": {"nodeSelector": {marks::HOSTNAME: previous}}}}}));
                pass.undo(&job, vec![restore], line, false).await;
            }
            Action::Malformed(why) => pass.malformed::<Deployment>(meta, &job, why).await,
            _ => {}
        }
    }

    // Checkpoint PVCs of jobs that never created their copy: kept (they may hold data), reported.
    let checkpoints: Vec<PersistentVolumeClaim> = pass
        .list(&ListParams::default().labels(&format!("{}={}", marks::ROLE, marks::ROLE_CHECKPOINT)), "checkpoint PVCs")
        .await;
    let job_pods: Vec<Pod> = pass.list(&ListParams::default().labels(marks::JOB), "pods of jobs").await;
    let jobs_with_pods: BTreeSet<&str> = job_pods.iter().filter_map(|p| label(&p.metadata, marks::JOB)).collect();
    for pvc in &checkpoints {
        let job = label(&pvc.metadata, marks::JOB).unwrap_or_default();
        let leftover = Leftover::CheckpointPvc {
            job_has_pods: jobs_with_pods.contains(job),
            job_undone: undone_jobs.contains(job),
        };
        if let Action::Report(why) = repair::action(leftover) {
            pass.report.left.push(format!(
                "{job}: checkpoint PVC {}/{}: {why}",
                pvc.metadata.namespace.as_deref().unwrap_or_default(),
                pvc.metadata.name.as_deref().unwrap_or_default()
            ));
        }
    }

    let report = pass.report;
    for l in &report.undone {
        tracing::info!("repair: undone {l}");
    }
    for l in &report.finished {
        tracing::info!("repair: finished {l}");
    }
    for l in &report.left {
        tracing::warn!("repair: {l}");
    }
    for l in &report.malformed {
        tracing::warn!("repair: left as it is: {l}");
    }
    for l in &report.failed {
        tracing::error!("repair: could not {l}");
    }
    report
}
