//! Where job records live. A trait, so a durable store can replace the
//! in-memory one without touching the lifecycle code.

use std::collections::{HashMap, HashSet, VecDeque};

use bytes::Bytes;
use parking_lot::RwLock;
use sdi_core::job::JobStatus;

use super::Job;

/// Filters of `GET /api/v1/migrations`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListFilter {
    pub status: Option<JobStatus>,
    pub namespace: Option<String>,
    /// Source, target or landing node.
    pub node: Option<String>,
    pub limit: usize,
}

/// The job already moving the pod (its id).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is already moving this pod")]
pub struct ActiveJob(pub String);

pub trait JobStore: Send + Sync + 'static {
    /// Insert a new job unless another non-terminal job exists for the same pod;
    /// then return that job's id. Atomic, so two racing requests cannot both win.
    fn insert_unique(&self, job: Job) -> Result<(), ActiveJob>;
    fn get(&self, id: &str) -> Option<Job>;
    /// Apply `f` to the job and return the result.
    fn update(&self, id: &str, f: &mut dyn FnMut(&mut Job)) -> Option<Job>;
    /// Newest first.
    fn list(&self, filter: &ListFilter) -> Vec<Job>;
    /// The active (non-terminal) job for a pod, if any.
    fn active_for(&self, namespace: &str, pod: &str) -> Option<String>;
    /// Insert or replace a job as its PodMigration says (the watch of the
    /// objects). Ignored for a job this replica runs (see [`JobStore::own`]).
    fn upsert(&self, job: Job);
    /// Forget a job whose object is gone, unless this replica runs it.
    fn remove(&self, id: &str);
    /// Record a job this replica runs: from now on its record here is the
    /// truth, and what the watch shows of it (older by nature) is ignored.
    fn own(&self, job: Job);
    /// Keep the job's record as it stands against the watch, as [`JobStore::own`]
    /// does, without replacing it: the replica is about to record the job's end
    /// and shows it only once it is counted.
    fn hold(&self, id: &str);
    /// The replica no longer runs the job: the watch may update it again.
    fn disown(&self, id: &str);
    /// Every job id the store holds.
    fn ids(&self) -> Vec<String>;
    /// The job's `MigrationResponse` as JSON. Stores may keep it rendered: it is
    /// read far more often (clients poll) than it changes (once per step).
    fn rendered(&self, id: &str) -> Option<Bytes> {
        self.get(id).and_then(|j| serde_json::to_vec(&j.response()).ok()).map(Bytes::from)
    }
}

fn render(job: &Job) -> Bytes {
    Bytes::from(serde_json::to_vec(&job.response()).unwrap_or_default())
}

/// In-memory store. Keeps every active job and the newest `retain` finished ones,
/// so a long-running service does not grow without bound.
pub struct MemoryStore {
    inner: RwLock<Inner>,
    retain: usize,
}

#[derive(Default)]
struct Inner {
    jobs: HashMap<String, Job>,
    /// Each job's response, rendered at every change.
    rendered: HashMap<String, Bytes>,
    /// Insertion order, oldest first.
    order: VecDeque<String>,
    active: HashMap<(String, String), String>,
    /// Jobs this replica runs (see [`JobStore::own`]).
    owned: HashSet<String>,
}

impl MemoryStore {
    pub fn new(retain: usize) -> Self {
        MemoryStore { inner: RwLock::default(), retain: retain.max(1) }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(10_000)
    }
}

fn pod_key(job: &Job) -> (String, String) {
    (job.request.pod_namespace.clone(), job.request.pod_name.clone())
}

impl Inner {
    /// A job as its object shows it. A migration never leaves a terminal
    /// phase, so an older copy arriving late is ignored; what only this
    /// replica knew of it (its write log, the pod's uid) is kept.
    fn put(&mut self, mut job: Job) {
        if let Some(old) = self.jobs.get(&job.id) {
            if old.status.is_terminal() && !job.status.is_terminal() {
                return;
            }
            if job.writes.is_empty() {
                job.writes = old.writes.clone();
            }
            if job.pod_uid.is_none() {
                job.pod_uid = old.pod_uid.clone();
            }
        }
        self.set(job);
    }

    /// Insert or replace, as is.
    fn set(&mut self, job: Job) {
        let key = pod_key(&job);
        let id = job.id.clone();
        if job.status.is_terminal() {
            if self.active.get(&key) == Some(&id) {
                self.active.remove(&key);
            }
        } else {
            self.active.entry(key).or_insert_with(|| id.clone());
        }
        self.rendered.insert(id.clone(), render(&job));
        if self.jobs.insert(id.clone(), job).is_none() {
            self.order.push_back(id);
        }
    }
}

impl JobStore for MemoryStore {
    fn insert_unique(&self, job: Job) -> Result<(), ActiveJob> {
        let mut g = self.inner.write();
        let key = pod_key(&job);
        if let Some(existing) = g.active.get(&key) {
            return Err(ActiveJob(existing.clone()));
        }
        if !job.status.is_terminal() {
            g.active.insert(key, job.id.clone());
        }
        g.order.push_back(job.id.clone());
        g.rendered.insert(job.id.clone(), render(&job));
        g.jobs.insert(job.id.clone(), job);
        // Forget the oldest finished jobs beyond the retention bound.
        let finished = g.jobs.values().filter(|j| j.status.is_terminal()).count();
        let mut excess = finished.saturating_sub(self.retain);
        let mut i = 0;
        while excess > 0 && i < g.order.len() {
            let id = g.order[i].clone();
            if g.jobs.get(&id).is_some_and(|j| j.status.is_terminal()) {
                g.jobs.remove(&id);
                g.rendered.remove(&id);
                g.order.remove(i);
                excess -= 1;
            } else {
                i += 1;
            }
        }
        Ok(())
    }

    fn get(&self, id: &str) -> Option<Job> {
        self.inner.read().jobs.get(id).cloned()
    }

    fn update(&self, id: &str, f: &mut dyn FnMut(&mut Job)) -> Option<Job> {
        let mut g = self.inner.write();
        let job = g.jobs.get_mut(id)?;
        f(job);
        let job = job.clone();
        g.rendered.insert(job.id.clone(), render(&job));
        if job.status.is_terminal() {
            let key = pod_key(&job);
            if g.active.get(&key) == Some(&job.id) {
                g.active.remove(&key);
            }
        }
        Some(job)
    }

    fn list(&self, filter: &ListFilter) -> Vec<Job> {
        let g = self.inner.read();
        g.order
            .iter()
            .rev()
            .filter_map(|id| g.jobs.get(id))
            .filter(|j| filter.status.is_none_or(|s| j.status == s))
            .filter(|j| filter.namespace.as_deref().is_none_or(|ns| j.request.pod_namespace == ns))
            .filter(|j| filter.node.as_deref().is_none_or(|n| j.touches_node(n)))
            .take(if filter.limit == 0 { usize::MAX } else { filter.limit })
            .cloned()
            .collect()
    }

    fn active_for(&self, namespace: &str, pod: &str) -> Option<String> {
        self.inner.read().active.get(&(namespace.to_string(), pod.to_string())).cloned()
    }

    fn rendered(&self, id: &str) -> Option<Bytes> {
        self.inner.read().rendered.get(id).cloned()
    }

    /// What only this replica knew of a job (its write log, the pod's uid) is kept.
    fn upsert(&self, job: Job) {
        let mut g = self.inner.write();
        if !g.owned.contains(&job.id) {
            g.put(job);
        }
    }

    fn own(&self, job: Job) {
        let mut g = self.inner.write();
        g.owned.insert(job.id.clone());
        g.set(job);
    }

    fn hold(&self, id: &str) {
        let mut g = self.inner.write();
        if g.jobs.contains_key(id) {
            g.owned.insert(id.to_string());
        }
    }

    fn disown(&self, id: &str) {
        self.inner.write().owned.remove(id);
    }

    fn remove(&self, id: &str) {
        let mut g = self.inner.write();
        if g.owned.contains(id) {
            return;
        }
        if let Some(job) = g.jobs.remove(id) {
            let key = pod_key(&job);
            if g.active.get(&key).map(String::as_str) == Some(id) {
                g.active.remove(&key);
            }
        }
        g.rendered.remove(id);
        g.order.retain(|i| i != id);
    }

    fn ids(&self) -> Vec<String> {
        self.inner.read().jobs.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::model::{MigrationDetails, MigrationRequest};

    fn job(id: &str, pod: &str, status: JobStatus) -> Job {
        Job {
            id: id.into(),
            request: MigrationRequest {
                pod_name: pod.into(),
                pod_namespace: "default".into(),
                source_node: "a".into(),
                target_node: "b".into(),
                preserve_pv: false,
                force_restart: false,
                timeout: 0,
                strategy: None,
                checkpoint: None,
            },
            status,
            details: MigrationDetails::default(),
            origin: "api",
            writes: Vec::new(),
            pod_uid: None,
        }
    }

    #[test]
    fn one_active_job_per_pod() {
        let s = MemoryStore::default();
        s.insert_unique(job("m1", "p", JobStatus::Pending)).unwrap();
        assert_eq!(s.insert_unique(job("m2", "p", JobStatus::Pending)), Err(ActiveJob("m1".to_string())));
        assert!(String::from_utf8(s.rendered("m1").unwrap().to_vec()).unwrap().contains(r#""status":"pending""#));
        s.update("m1", &mut |j| j.status = JobStatus::Completed).unwrap();
        let rendered = String::from_utf8(s.rendered("m1").unwrap().to_vec()).unwrap();
        assert!(rendered.contains(r#""status":"completed""#), "rendered view follows updates: {rendered}");
        assert_eq!(s.active_for("default", "p"), None);
        s.insert_unique(job("m2", "p", JobStatus::Pending)).unwrap();
        assert_eq!(s.active_for("default", "p").as_deref(), Some("m2"));
    }

    #[test]
    fn list_is_newest_first_filtered_and_limited() {
        let s = MemoryStore::default();
        for i in 0..5 {
            s.insert_unique(job(&format!("m{i}"), &format!("p{i}"), JobStatus::Pending)).unwrap();
        }
        s.update("m3", &mut |j| j.status = JobStatus::Failed);
        let ids = |f: &ListFilter| s.list(f).into_iter().map(|j| j.id).collect::<Vec<_>>();
        assert_eq!(ids(&ListFilter::default()), ["m4", "m3", "m2", "m1", "m0"]);
        assert_eq!(ids(&ListFilter { limit: 2, ..Default::default() }), ["m4", "m3"]);
        assert_eq!(ids(&ListFilter { status: Some(JobStatus::Failed), ..Default::default() }), ["m3"]);
        assert!(ids(&ListFilter { namespace: Some("x".into()), ..Default::default() }).is_empty());
        assert_eq!(ids(&ListFilter { node: Some("b".into()), limit: 1, ..Default::default() }), ["m4"]);
    }

    #[test]
    fn finished_jobs_beyond_retention_are_forgotten_oldest_first() {
        let s = MemoryStore::new(2);
        s.insert_unique(job("active", "q", JobStatus::Running)).unwrap();
        for i in 0..4 {
            s.insert_unique(job(&format!("d{i}"), &format!("p{i}"), JobStatus::Completed)).unwrap();
        }
        let ids: Vec<_> = s.list(&ListFilter::default()).into_iter().map(|j| j.id).collect();
        assert_eq!(ids, ["d3", "d2", "active"]);
    }

    /// What the watch shows of a job this replica runs is older than its own
    /// record; a finished job is never reopened by a late event.
    #[test]
    fn the_watch_never_overwrites_a_running_job_nor_reopens_a_finished_one() {
        let s = MemoryStore::default();
        let mut mine = job("m1", "p", JobStatus::Running);
        mine.details.new_pod_name = "copy".into();
        s.own(mine);
        s.upsert(job("m1", "p", JobStatus::Pending));
        s.remove("m1");
        assert_eq!(s.get("m1").map(|j| (j.status, j.details.new_pod_name)), Some((JobStatus::Running, "copy".into())));
        s.update("m1", &mut |j| j.status = JobStatus::Completed);
        s.disown("m1");
        s.upsert(job("m1", "p", JobStatus::Running));
        assert_eq!(s.get("m1").unwrap().status, JobStatus::Completed);
        assert_eq!(s.active_for("default", "p"), None, "a finished job holds no pod");
        s.remove("m1");
        assert!(s.get("m1").is_none(), "once disowned, a deleted object's job goes");
    }
}
