//! Live changes for `GET /api/v1/stream` (server-sent events): every change of
//! a job record and every rebalancer cycle is published once, rendered once,
//! and fanned out to each connected client. Node pressure is not published
//! here: each connection samples it on its own throttle, with its own filter.
//!
//! Integration is two hooks: the job store is wrapped in [`Publishing`], and
//! the rebalancer's `on_cycle` calls [`Hub::cycle`].

use std::sync::Arc;

use parking_lot::Mutex;
use sdi_core::planner::{BasisUsed, Move, Plan, Skip};
use serde::Serialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::jobs::Job;
use crate::jobs::model::MigrationResponse;
use crate::jobs::store::{ActiveJob, JobStore, ListFilter};
use crate::rebalancer::{CycleReport, Decision};
use crate::web::nodes::NodeSummary;

/// Messages a slow client may fall behind by before it is sent a fresh snapshot instead.
const BACKLOG: usize = 1024;
/// Skipped candidates sent with a plan; the rest are counted (`GET /api/v1/plan` has them all).
pub const MAX_SKIPPED: usize = 500;

/// One published change, rendered once for every subscriber.
#[derive(Debug)]
pub struct Message {
    /// The SSE event name: `job` or `plan`.
    pub event: &'static str,
    /// JSON.
    pub data: Arc<str>,
}

/// Where changes are published.
pub struct Hub {
    tx: broadcast::Sender<Arc<Message>>,
    closed: CancellationToken,
}

impl Hub {
    /// Streams end when `closed` is cancelled (the service stopping), so a
    /// graceful shutdown does not wait on clients that never hang up.
    pub fn new(closed: CancellationToken) -> Arc<Hub> {
        Arc::new(Hub { tx: broadcast::channel(BACKLOG).0, closed })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Message>> {
        self.tx.subscribe()
    }

    pub fn closed(&self) -> &CancellationToken {
        &self.closed
    }

    /// Connected subscribers.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    fn publish(&self, event: &'static str, data: &impl Serialize) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        match serde_json::to_string(data) {
            // Sending fails only when nobody listens.
            Ok(json) => drop(self.tx.send(Arc::new(Message { event, data: json.into() }))),
            Err(e) => tracing::error!(error = %e, event, "cannot render a stream event"),
        }
    }

    /// A job record changed.
    pub fn job(&self, job: &Job) {
        self.publish("job", &job.response());
    }

    /// The rebalancer finished a cycle.
    pub fn cycle(&self, report: &CycleReport, recent: Vec<Decision>) {
        self.publish("plan", &PlanView::of_cycle(report, recent));
    }
}

/// The rebalancer's plan as the page shows it: every move and decision with its
/// reason; node pressure travels separately (`nodes`), aggregated.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PlanView {
    /// When the plan was made (RFC 3339).
    pub at: String,
    /// `cycle`: the loop's newest cycle; `preview`: planned on request, nothing
    /// started (the loop is off or has not run yet).
    pub source: String,
    pub dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    #[schema(value_type = String, example = "usage")]
    pub basis_used: BasisUsed,
    /// Nodes above the threshold when the plan was made, most pressured first.
    pub pressured: Vec<String>,
    /// Moves planned, in order, each with its reason.
    #[schema(value_type = Vec<Object>)]
    pub moves: Vec<Move>,
    /// Candidates left where they are, each with its reason (the first [`MAX_SKIPPED`]).
    #[schema(value_type = Vec<Object>)]
    pub skipped: Vec<Skip>,
    /// All candidates left where they are.
    pub skipped_total: usize,
    pub notes: Vec<String>,
    /// What became of this cycle's moves: started, denied by the policy, refused.
    pub decisions: Vec<Decision>,
    /// The newest decisions across cycles, oldest first.
    pub recent: Vec<Decision>,
}

impl PlanView {
    /// The view of a plan (pure): node rows dropped, skipped candidates capped.
    pub fn new(plan: &Plan, at: String, source: &str, dry_run: bool, decisions: Vec<Decision>) -> PlanView {
        let mut pressured: Vec<&sdi_core::planner::NodePressure> = plan.nodes.iter().filter(|n| n.pressured).collect();
        pressured
            .sort_by(|a, b| b.cpu_pct.max(b.mem_pct).total_cmp(&a.cpu_pct.max(a.mem_pct)).then(a.name.cmp(&b.name)));
        PlanView {
            at,
            source: source.to_string(),
            dry_run,
            duration_ms: None,
            basis_used: plan.basis_used,
            pressured: pressured.into_iter().map(|n| n.name.clone()).collect(),
            moves: plan.moves.clone(),
            skipped: plan.skipped.iter().take(MAX_SKIPPED).cloned().collect(),
            skipped_total: plan.skipped.len(),
            notes: plan.notes.clone(),
            decisions,
            recent: Vec::new(),
        }
    }

    pub fn of_cycle(report: &CycleReport, recent: Vec<Decision>) -> PlanView {
        let mut v = PlanView::new(&report.plan, report.at.clone(), "cycle", report.dry_run, report.decisions.clone());
        v.duration_ms = Some(report.duration_ms);
        v.recent = recent;
        v
    }
}

/// The stream's first event (and the one a client that fell behind gets again).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StreamSnapshot {
    pub version: String,
    /// Whether the autonomous loop runs (`ENABLE_AUTO_MIGRATION`).
    pub auto_migration: bool,
    pub dry_run: bool,
    pub threshold_pct: f64,
    /// The newest jobs, newest first (at most [`SNAPSHOT_JOBS`]).
    pub jobs: Vec<MigrationResponse>,
    pub plan: Option<PlanView>,
    /// Absent until the cluster view has listed the cluster.
    pub nodes: Option<NodeSummary>,
}

/// Jobs a snapshot carries.
pub const SNAPSHOT_JOBS: usize = 200;

/// A job store that publishes every change it stores.
pub struct Publishing<S> {
    inner: S,
    hub: Arc<Hub>,
    /// Changes are published in the order they were stored.
    order: Mutex<()>,
}

impl<S: JobStore> Publishing<S> {
    pub fn new(inner: S, hub: Arc<Hub>) -> Self {
        Publishing { inner, hub, order: Mutex::new(()) }
    }
}

impl<S: JobStore> JobStore for Publishing<S> {
    fn insert_unique(&self, job: Job) -> Result<(), ActiveJob> {
        let _order = self.order.lock();
        let published = (self.hub.subscribers() > 0).then(|| job.clone());
        self.inner.insert_unique(job)?;
        if let Some(job) = published {
            self.hub.job(&job);
        }
        Ok(())
    }

    fn get(&self, id: &str) -> Option<Job> {
        self.inner.get(id)
    }

    fn update(&self, id: &str, f: &mut dyn FnMut(&mut Job)) -> Option<Job> {
        let _order = self.order.lock();
        let job = self.inner.update(id, f)?;
        self.hub.job(&job);
        Some(job)
    }

    fn list(&self, filter: &ListFilter) -> Vec<Job> {
        self.inner.list(filter)
    }

    fn active_for(&self, namespace: &str, pod: &str) -> Option<String> {
        self.inner.active_for(namespace, pod)
    }

    fn rendered(&self, id: &str) -> Option<bytes::Bytes> {
        self.inner.rendered(id)
    }

    fn upsert(&self, job: Job) {
        let _order = self.order.lock();
        let published = (self.hub.subscribers() > 0).then(|| job.clone());
        self.inner.upsert(job);
        if let Some(job) = published {
            self.hub.job(&job);
        }
    }

    fn remove(&self, id: &str) {
        self.inner.remove(id);
    }

    fn own(&self, job: Job) {
        let _order = self.order.lock();
        let published = (self.hub.subscribers() > 0).then(|| job.clone());
        self.inner.own(job);
        if let Some(job) = published {
            self.hub.job(&job);
        }
    }

    fn hold(&self, id: &str) {
        self.inner.hold(id);
    }

    fn disown(&self, id: &str) {
        self.inner.disown(id);
    }

    fn ids(&self) -> Vec<String> {
        self.inner.ids()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::MemoryStore;
    use crate::jobs::model::{MigrationDetails, MigrationRequest};
    use sdi_core::job::JobStatus;
    use sdi_core::planner::NodePressure;

    fn job(id: &str) -> Job {
        Job {
            id: id.into(),
            request: MigrationRequest {
                pod_name: "p".into(),
                pod_namespace: "ns".into(),
                source_node: "a".into(),
                target_node: "b".into(),
                preserve_pv: false,
                force_restart: false,
                timeout: 0,
                strategy: None,
                checkpoint: None,
            },
            status: JobStatus::Pending,
            details: MigrationDetails::default(),
            origin: "api",
            writes: Vec::new(),
            pod_uid: None,
        }
    }

    fn next(rx: &mut broadcast::Receiver<Arc<Message>>) -> (String, serde_json::Value) {
        let m = rx.try_recv().unwrap();
        (m.event.to_string(), serde_json::from_str(&m.data).unwrap())
    }

    #[test]
    fn every_stored_change_is_published_in_order_and_nothing_else() {
        let hub = Hub::new(CancellationToken::new());
        let store = Publishing::new(MemoryStore::default(), hub.clone());
        store.insert_unique(job("m1")).unwrap(); // nobody listens: not even rendered
        let mut rx = hub.subscribe();
        store.update("m1", &mut |j| j.status = JobStatus::Running).unwrap();
        store.update("m1", &mut |j| j.status = JobStatus::Completed).unwrap();
        assert!(store.update("nope", &mut |_| {}).is_none());
        store.insert_unique(job("m2")).unwrap();
        assert!(store.insert_unique(job("m3")).is_err(), "m2 is moving the pod");
        let seen: Vec<_> = (0..3).map(|_| next(&mut rx)).collect();
        let brief: Vec<_> =
            seen.iter().map(|(e, v)| (e.as_str(), v["migration_id"].as_str(), v["status"].as_str())).collect();
        assert_eq!(
            brief,
            [
                ("job", Some("m1"), Some("running")),
                ("job", Some("m1"), Some("completed")),
                ("job", Some("m2"), Some("pending"))
            ]
        );
        assert_eq!(seen[0].1["details"]["origin"], "api", "the wire shape of GET /api/v1/migrations/{{id}}");
        assert!(rx.try_recv().is_err(), "a refused insert and a missing job publish nothing");
        assert_eq!(store.get("m1").map(|j| j.status), Some(JobStatus::Completed));
    }

    #[test]
    fn a_plan_view_keeps_every_reason_but_not_the_node_rows() {
        let node = |name: &str, c: f64, m: f64| NodePressure {
            name: name.into(),
            cpu_pct: c,
            mem_pct: m,
            pressured: c > 85.0 || m > 85.0,
        };
        let skip =
            |i: usize| Skip { namespace: "ns".into(), pod: format!("p{i}"), node: "a".into(), reason: format!("r{i}") };
        let plan = Plan {
            basis_used: BasisUsed::Usage,
            nodes: vec![node("a", 90.0, 10.0), node("b", 10.0, 99.0), node("c", 10.0, 10.0)],
            moves: vec![],
            skipped: (0..MAX_SKIPPED + 7).map(skip).collect(),
            notes: vec!["n".into()],
        };
        let v = PlanView::new(&plan, "t".into(), "preview", true, vec![]);
        assert_eq!(v.pressured, ["b", "a"]);
        assert_eq!((v.skipped.len(), v.skipped_total), (MAX_SKIPPED, MAX_SKIPPED + 7));
        assert_eq!(v.skipped[3].reason, "r3");
        let json = serde_json::to_value(&v).unwrap();
        assert!(json.get("nodes").is_none() && json.get("duration_ms").is_none(), "{json}");
        assert_eq!(json["basis_used"], "usage");
    }
}
