//! Migrations as Kubernetes objects (`PodMigration`, see `crd`): the three
//! doors — the REST API, `kubectl`, the rebalancer — all create or annotate
//! objects; the leader's controller (`controller`) is the only thing that runs
//! them. Every replica keeps a watch-fed view of them for the API's reads.

pub mod controller;
pub mod crd;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use kube::Api;
use kube::api::ListParams;
use kube::runtime::{WatchStreamExt, watcher};
use sdi_core::admission::{Reason, Refusal};
use sdi_core::job::{JobEvent, transition};
use tokio_util::sync::CancellationToken;

use crate::engine::preflight;
use crate::error::StartError;
use crate::jobs::model::new_id;
use crate::jobs::runner::{CancelError, Runner};
use crate::jobs::{Job, MigrationRequest};
use crd::PodMigration;

/// The doors' side of migrations: create, cancel, and the view of all of them.
pub struct Migrations {
    pub client: kube::Client,
    pub runner: Arc<Runner>,
    /// The view of every PodMigration has been listed once.
    synced: AtomicBool,
}

impl std::fmt::Debug for Migrations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Migrations").finish_non_exhaustive()
    }
}

impl Migrations {
    pub fn new(client: kube::Client, runner: Arc<Runner>) -> Arc<Migrations> {
        Arc::new(Migrations { client, runner, synced: AtomicBool::new(false) })
    }

    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Relaxed)
    }

    /// Is the CRD installed? Start-up asks once and says what to do if not.
    pub async fn check_installed(client: &kube::Client) -> Result<(), StartError> {
        let api: Api<PodMigration> = Api::all(client.clone());
        match api.list(&ListParams::default().limit(1)).await {
            Ok(_) => Ok(()),
            Err(e) if crate::cluster::retry::is_not_found(&e) => Err(StartError::Kubernetes(format!(
                "the PodMigration resource ({}) is not installed in this cluster; install it with \
                 `kubectl apply -f deploy/crd.yaml` (or `kubectl apply -k deploy/`)",
                crd::CRD_NAME
            ))),
            Err(e) => Err(StartError::Kubernetes(format!("cannot list PodMigrations: {e}"))),
        }
    }

    /// A migration asked through the REST API or by the rebalancer: checked
    /// against the cluster (the refusals of the original contract), then
    /// created as a PodMigration for the leader to run.
    pub async fn create(&self, request: MigrationRequest, origin: &'static str) -> Result<Job, Refusal> {
        if self.runner.closed() {
            return Err(Refusal {
                reason: Reason::ShuttingDown,
                details: "no new migrations are accepted during shutdown".into(),
            });
        }
        let engine = &self.runner.engine;
        let plan =
            preflight::check(engine, self.runner.store.as_ref(), &request, self.runner.default_strategy, None).await?;
        let object = PodMigration::new(&new_id(), &request, origin);
        let created = engine.writer.create_migration(&object).await.map_err(|e| Refusal {
            reason: Reason::ApiUnavailable,
            details: format!("cannot create the PodMigration for pod {}/{}: {e}", plan.namespace, plan.pod_name),
        })?;
        let mut job = created.job();
        job.details.strategy = Some(plan.strategy);
        job.pod_uid = plan.pod_uid;
        if !self.runner.is_live(&job.id) {
            self.runner.store.upsert(job.clone());
        }
        Ok(job)
    }

    /// Cancel a migration and keep its record (the REST API's DELETE): the
    /// state machine says whether it can be; the leader stops and undoes it.
    pub async fn cancel(&self, id: &str) -> Result<Job, CancelError> {
        let job = self.runner.store.get(id).ok_or(CancelError::NotFound)?;
        if let Err(e) = transition(job.status, JobEvent::Cancel) {
            return Err(CancelError::AlreadyFinished(Box::new(job), e));
        }
        self.runner
            .engine
            .writer
            .request_cancel(&job.request.pod_namespace, id)
            .await
            .map_err(|e| CancelError::Unavailable(format!("cannot ask for the cancellation of {id}: {e}")))?;
        self.runner.cancel(id);
        Ok(job)
    }

    /// Keep the view current until `stop`: every PodMigration, as its job
    /// record. The jobs this replica runs are its own to show.
    pub async fn watch(self: Arc<Self>, stop: CancellationToken) {
        let api: Api<PodMigration> = Api::all(self.client.clone());
        let mut stream = watcher(api, watcher::Config::default()).default_backoff().boxed();
        let mut listed: Option<Vec<String>> = None;
        let store = self.runner.store.clone();
        loop {
            let ev = tokio::select! {
                _ = stop.cancelled() => return,
                ev = stream.next() => match ev { Some(ev) => ev, None => return },
            };
            match ev {
                Ok(watcher::Event::Init) => listed = Some(Vec::new()),
                Ok(watcher::Event::InitApply(m)) => {
                    if let Some(l) = listed.as_mut() {
                        l.push(m.id().to_string());
                    }
                    self.show(&m);
                }
                Ok(watcher::Event::InitDone) => {
                    if let Some(l) = listed.take() {
                        for id in store.ids().into_iter().filter(|id| !l.contains(id) && !self.runner.is_live(id)) {
                            store.remove(&id);
                        }
                    }
                    self.synced.store(true, Ordering::Relaxed);
                }
                Ok(watcher::Event::Apply(m)) => self.show(&m),
                Ok(watcher::Event::Delete(m)) => {
                    if !self.runner.is_live(m.id()) {
                        store.remove(m.id());
                    }
                }
                Err(e) => tracing::debug!(error = %e, "PodMigration watch interrupted; resuming"),
            }
        }
    }

    fn show(&self, m: &PodMigration) {
        if !self.runner.is_live(m.id()) {
            self.runner.store.upsert(m.job());
        }
    }
}
