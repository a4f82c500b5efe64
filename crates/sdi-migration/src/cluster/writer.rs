//! The one writer: the only code that creates, patches, deletes or evicts
//! (model: linkerd2 policy-controller's `k8s/status`). Everything a write needs
//! done the same way every time is done here once: the field manager, retries of
//! transient failures, create-once (a retry that finds its own earlier attempt),
//! undo registered *before* the write it compensates, a per-job record of every
//! write, and Events.
//!
//! Strategies get a [`JobWriter`] for their job; restart repair and the service
//! use the [`Writer`] directly.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolumeClaim, Pod};
use kube::Api;
use kube::api::{DeleteParams, EvictParams, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use parking_lot::Mutex;
use serde_json::Value;

use k8s_openapi::api::coordination::v1::Lease;
use sdi_core::error::Category;

use super::lease::{LEASE_NAME, Leadership};
use super::retry;
use crate::engine::undo::{Undo, UndoLog};
use crate::error::Error;
use crate::migrations::crd::{self, PodMigration, PodMigrationStatus};

/// The field manager every write carries.
pub const FIELD_MANAGER: &str = "sdi-migration";

/// One write, as recorded for its job (and asserted by the strategy tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// `create`, `patch`, `delete`, `evict`, `checkpoint` or `event`.
    pub verb: &'static str,
    /// The resource (`pods`, `persistentvolumeclaims`, `deployments`, `nodes`, `events`).
    pub resource: &'static str,
    /// `namespace/name`, a node's name, or an event's reason.
    pub object: String,
}

impl std::fmt::Display for Write {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.verb, self.resource, self.object)
    }
}

/// Writes to the cluster. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    client: kube::Client,
    recorder: Recorder,
    /// A migration's writes are made only while this replica leads.
    leadership: Leadership,
    /// `CHECKPOINT_REGISTRY`: where undo and retention delete checkpoint images.
    registry: Option<crate::checkpoint::registry::Registry>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

fn patch_params() -> PatchParams {
    PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() }
}

fn post_params() -> PostParams {
    PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() }
}

impl Writer {
    pub fn new(client: kube::Client, leadership: Leadership) -> Writer {
        let instance = Some(leadership.identity().to_string());
        let recorder = Recorder::new(client.clone(), Reporter { controller: "sdi-migration".into(), instance });
        Writer { client, recorder, leadership, registry: None }
    }

    /// Delete checkpoint images from this registry on undo and after retention.
    pub fn with_registry(mut self, registry: Option<crate::checkpoint::registry::Registry>) -> Writer {
        self.registry = registry;
        self
    }

    pub fn registry(&self) -> Option<&crate::checkpoint::registry::Registry> {
        self.registry.as_ref()
    }

    /// Withdraw a checkpoint image request (marked, so the agent deletes its
    /// archives even if it never started on it) and delete the images answered.
    async fn withdraw_checkpoint(
        &self,
        namespace: &str,
        migration: &str,
        request: &crate::checkpoint::ImageRequest,
    ) -> Result<(), Error> {
        let api: Api<PodMigration> = Api::namespaced(self.client.clone(), namespace);
        let m = retry::transient(|| api.get_opt(migration))
            .await
            .map_err(|e| Error::api(format!("read podmigration {namespace}/{migration}"), e))?;
        let answer = m
            .as_ref()
            .and_then(|m| m.metadata.annotations.as_ref())
            .and_then(|a| a.get(crate::checkpoint::ANSWER))
            .and_then(|s| serde_json::from_str::<crate::checkpoint::ImageAnswer>(s).ok())
            .filter(|a| a.id == request.id);
        if m.is_some() {
            self.merge::<PodMigration>(namespace, migration, &request_patch(&request.withdrawn())?).await?;
        }
        if let (Some(answer), Some(registry)) = (answer, &self.registry) {
            for i in &answer.images {
                registry.delete_image(&i.image).await.map_err(|e| Error::new(Category::Checkpoint, e.to_string()))?;
            }
        }
        Ok(())
    }

    pub fn leadership(&self) -> &Leadership {
        &self.leadership
    }

    /// Fencing: a replica that is not (or no longer) the leader writes nothing for a migration.
    fn fence(&self) -> Result<(), Error> {
        if self.leadership.is_leader() {
            Ok(())
        } else {
            Err(Error::new(
                Category::Leadership,
                "this replica is not the leader (any more); the leader takes the migration over",
            ))
        }
    }

    // ----- Leases (leader election; conditional on resourceVersion) -----

    pub async fn lease_create(&self, namespace: &str, lease: &Lease) -> Result<Lease, kube::Error> {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), namespace);
        api.create(&post_params(), lease).await
    }

    pub async fn lease_replace(&self, namespace: &str, lease: &Lease) -> Result<Lease, kube::Error> {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), namespace);
        api.replace(LEASE_NAME, &post_params(), lease).await
    }

    // ----- PodMigrations: what any replica writes for a user -----

    /// Create a PodMigration (the REST API's POST, the rebalancer's moves).
    pub async fn create_migration(&self, m: &PodMigration) -> Result<PodMigration, kube::Error> {
        let api: Api<PodMigration> = Api::namespaced(self.client.clone(), m.namespace());
        let pp = post_params();
        retry::transient(|| api.create(&pp, m)).await
    }

    /// Ask for a migration's cancellation, keeping its record (the REST API's DELETE).
    pub async fn request_cancel(&self, namespace: &str, name: &str) -> Result<(), kube::Error> {
        let api: Api<PodMigration> = Api::namespaced(self.client.clone(), namespace);
        let patch = serde_json::json!({"metadata": {"annotations": {crd::CANCEL: "true"}}});
        let (pp, patch) = (patch_params(), Patch::Merge(&patch));
        retry::transient(|| api.patch(name, &pp, &patch)).await.map(|_| ())
    }

    // ----- PodMigrations: what the leader writes while it runs them -----

    /// Write a migration's status (one write per step), as the leader.
    pub async fn migration_status(
        &self,
        namespace: &str,
        name: &str,
        status: &PodMigrationStatus,
    ) -> Result<(), Error> {
        self.fence()?;
        let api: Api<PodMigration> = Api::namespaced(self.client.clone(), namespace);
        let patch = serde_json::json!({"status": status});
        let (pp, patch) = (patch_params(), Patch::Merge(&patch));
        retry::transient(|| api.patch_status(name, &pp, &patch))
            .await
            .map(|_| ())
            .map_err(|e| Error::api(format!("write the status of podmigration {namespace}/{name}"), e))
    }

    /// Let a finished (or deleted) migration's object go: remove the undo finalizer.
    /// Ours is almost always the first (the service creates objects with it, or
    /// adds it to a kubectl one that had none), so that is tried without a read;
    /// the patch tests the value first, and only when it is elsewhere is the
    /// object read to find it.
    pub async fn release_migration(&self, namespace: &str, name: &str) -> Result<(), Error> {
        self.fence()?;
        let api: Api<PodMigration> = Api::namespaced(self.client.clone(), namespace);
        let what = || format!("remove the finalizer of podmigration {namespace}/{name}");
        match remove_finalizer_at(&api, name, 0).await {
            Ok(_) => return Ok(()),
            Err(e) if retry::is_not_found(&e) => return Ok(()),
            // The test failed: it is not first, or already gone.
            Err(e) if retry::code(&e) == Some(422) => {}
            Err(e) => return Err(Error::api(what(), e)),
        }
        let Some(m) = retry::transient(|| api.get_opt(name))
            .await
            .map_err(|e| Error::api(format!("read podmigration {namespace}/{name}"), e))?
        else {
            return Ok(());
        };
        let Some(i) = m.metadata.finalizers.iter().flatten().position(|f| f == crd::FINALIZER) else { return Ok(()) };
        match remove_finalizer_at(&api, name, i).await {
            Ok(_) => Ok(()),
            Err(e) if retry::is_not_found(&e) => Ok(()),
            Err(e) => Err(Error::api(what(), e)),
        }
    }

    /// Hold a migration created without the undo finalizer (by kubectl) before running it.
    pub async fn protect_migration(&self, namespace: &str, name: &str) -> Result<(), Error> {
        self.fence()?;
        let api: Api<PodMigration> = Api::namespaced(self.client.clone(), namespace);
        let m = retry::transient(|| api.get(name))
            .await
            .map_err(|e| Error::api(format!("read podmigration {namespace}/{name}"), e))?;
        let patch = if m.metadata.finalizers.as_ref().is_some_and(|f| !f.is_empty()) {
            json_patch::PatchOperation::Add(json_patch::AddOperation {
                path: "/metadata/finalizers/-".try_into().unwrap_or_default(),
                value: serde_json::json!(crd::FINALIZER),
            })
        } else {
            json_patch::PatchOperation::Add(json_patch::AddOperation {
                path: "/metadata/finalizers".try_into().unwrap_or_default(),
                value: serde_json::json!([crd::FINALIZER]),
            })
        };
        let (pp, patch) = (patch_params(), Patch::<()>::Json(json_patch::Patch(vec![patch])));
        api.patch(name, &pp, &patch)
            .await
            .map(|_| ())
            .map_err(|e| Error::api(format!("add the finalizer of podmigration {namespace}/{name}"), e))
    }

    /// Delete a finished migration's object (history retention), as the leader.
    pub async fn delete_migration(&self, namespace: &str, name: &str) -> Result<(), Error> {
        self.fence()?;
        let api: Api<PodMigration> = Api::namespaced(self.client.clone(), namespace);
        let dp = DeleteParams::default();
        match retry::transient(|| api.delete(name, &dp)).await {
            Ok(_) => Ok(()),
            Err(e) if retry::is_not_found(&e) => Ok(()),
            Err(e) => Err(Error::api(format!("delete podmigration {namespace}/{name}"), e)),
        }
    }

    /// A writer for one job: it records the job's writes and keeps its undo log.
    pub fn job(&self, id: &str) -> JobWriter {
        JobWriter {
            writer: self.clone(),
            job: Arc::from(id),
            undo: UndoLog::default(),
            log: Arc::default(),
            status_writes: Arc::default(),
        }
    }

    fn pods(&self, namespace: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Create, tolerating a retry that finds its own earlier attempt (409 after a
    /// lost answer): the names we create are unique to their job.
    async fn create<K>(&self, namespace: &str, obj: &K) -> Result<(), Error>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::Serialize
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
        let name = obj.meta().name.clone().unwrap_or_default();
        let pp = post_params();
        match retry::transient(|| api.create(&pp, obj)).await {
            Ok(_) => Ok(()),
            Err(e) if retry::code(&e) == Some(409) => {
                tracing::debug!(name, "already created by an earlier attempt");
                Ok(())
            }
            Err(e) => {
                let kind = K::kind(&K::DynamicType::default()).to_lowercase();
                Err(Error::api(format!("create {kind} {namespace}/{name}"), e))
            }
        }
    }

    async fn merge<K>(&self, namespace: &str, name: &str, patch: &Value) -> Result<(), Error>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
        let patch = Patch::Merge(patch);
        let pp = patch_params();
        retry::transient(|| api.patch(name, &pp, &patch)).await.map(|_| ()).map_err(|e| {
            let kind = K::kind(&K::DynamicType::default()).to_lowercase();
            Error::api(format!("patch {kind} {namespace}/{name}"), e)
        })
    }

    /// Delete a pod; one already gone is fine.
    async fn delete_pod(&self, namespace: &str, name: &str, grace_seconds: u32) -> Result<(), Error> {
        let pods = self.pods(namespace);
        let dp = DeleteParams::default().grace_period(grace_seconds);
        match retry::transient(|| pods.delete(name, &dp)).await {
            Ok(_) => Ok(()),
            Err(e) if retry::is_not_found(&e) => Ok(()),
            Err(e) => Err(Error::api(format!("delete pod {namespace}/{name}"), e)),
        }
    }

    async fn delete_pvc(&self, namespace: &str, name: &str) -> Result<(), Error> {
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), namespace);
        let dp = DeleteParams::default();
        match retry::transient(|| api.delete(name, &dp)).await {
            Ok(_) => Ok(()),
            Err(e) if retry::is_not_found(&e) => Ok(()),
            Err(e) => Err(Error::api(format!("delete persistentvolumeclaim {namespace}/{name}"), e)),
        }
    }

    /// Carry out one compensating action. Undoing what never happened is a
    /// harmless 404.
    pub async fn undo(&self, action: &Undo) -> Result<(), Error> {
        let result = match action {
            // A copy never served traffic: no grace needed.
            Undo::DeletePod { namespace, name } => self.delete_pod(namespace, name, 0).await,
            Undo::DeletePvc { namespace, name } => self.delete_pvc(namespace, name).await,
            Undo::PatchPod { namespace, name, patch } => self.merge::<Pod>(namespace, name, patch).await,
            Undo::PatchDeployment { namespace, name, patch } => self.merge::<Deployment>(namespace, name, patch).await,
            Undo::WithdrawCheckpoint { namespace, migration, request } => {
                self.withdraw_checkpoint(namespace, migration, request).await
            }
        };
        match result {
            Err(Error::Api { source, .. }) if retry::is_not_found(&source) => Ok(()),
            other => other,
        }
    }

    /// Record an Event on a pod, so `kubectl describe pod` tells the story.
    pub async fn event_pod(
        &self,
        namespace: &str,
        pod: &str,
        uid: Option<&str>,
        warning: bool,
        reason: &str,
        note: &str,
    ) {
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(pod.into()),
            namespace: Some(namespace.into()),
            uid: uid.map(str::to_string),
            ..Default::default()
        };
        self.publish(&reference, warning, reason, note).await;
    }

    /// Record an Event on a node (what arrived, for `kubectl describe node`).
    pub async fn event_node(&self, node: &str, warning: bool, reason: &str, note: &str) {
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node.into()),
            ..Default::default()
        };
        self.publish(&reference, warning, reason, note).await;
    }

    /// Record an Event on any object (repair reports on the objects it finds).
    pub async fn event_on(&self, reference: &ObjectReference, warning: bool, reason: &str, note: &str) {
        self.publish(reference, warning, reason, note).await;
    }

    /// Failures are logged, never fatal: an Event is a courtesy, and a migration
    /// must not fail because one could not be written.
    async fn publish(&self, reference: &ObjectReference, warning: bool, reason: &str, note: &str) {
        let event = Event {
            type_: if warning { EventType::Warning } else { EventType::Normal },
            reason: reason.into(),
            note: Some(note.chars().take(1000).collect()),
            action: "Migrate".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, reference).await {
            let kind = reference.kind.as_deref().unwrap_or_default();
            let name = reference.name.as_deref().unwrap_or_default();
            tracing::warn!(kind, name, reason, error = %e, "could not record event");
        }
    }
}

/// The writer of one job: every write is recorded, and each write that changes
/// something the job must be able to take back registers its undo first.
#[derive(Clone)]
pub struct JobWriter {
    writer: Writer,
    job: Arc<str>,
    undo: UndoLog,
    log: Arc<Mutex<Vec<Write>>>,
    status_writes: Arc<std::sync::atomic::AtomicU32>,
}

impl std::fmt::Debug for JobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobWriter").field("job", &self.job).finish_non_exhaustive()
    }
}

impl JobWriter {
    pub fn job(&self) -> &str {
        &self.job
    }

    fn record(&self, verb: &'static str, resource: &'static str, object: String) {
        self.log.lock().push(Write { verb, resource, object });
    }

    /// Every write this job made so far, in order (undo included); its own
    /// status writes are counted apart ([`JobWriter::status_writes`]).
    pub fn writes(&self) -> Vec<Write> {
        self.log.lock().clone()
    }

    /// How many times this job wrote its PodMigration's status.
    pub fn status_writes(&self) -> u32 {
        self.status_writes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Write the job's record to its PodMigration's status.
    pub async fn persist(&self, job: &crate::jobs::Job) -> Result<(), Error> {
        self.status_writes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let status = crd::status_of(job, Some(self.writer.leadership.identity()));
        self.writer.migration_status(&job.request.pod_namespace, &job.id, &status).await
    }

    /// The migration is over: its object no longer needs the undo finalizer.
    pub async fn release(&self, job: &crate::jobs::Job) -> Result<(), Error> {
        self.writer.release_migration(&job.request.pod_namespace, &job.id).await
    }

    /// Create `pod`; undo deletes it.
    pub async fn create_pod(&self, pod: &Pod) -> Result<(), Error> {
        self.writer.fence()?;
        let (ns, name) = names(&pod.metadata);
        self.undo.push(Undo::DeletePod { namespace: ns.clone(), name: name.clone() });
        self.record("create", "pods", format!("{ns}/{name}"));
        self.writer.create(&ns, pod).await
    }

    /// Create `pvc`; undo deletes it.
    pub async fn create_pvc(&self, pvc: &PersistentVolumeClaim) -> Result<(), Error> {
        self.writer.fence()?;
        let (ns, name) = names(&pvc.metadata);
        self.undo.push(Undo::DeletePvc { namespace: ns.clone(), name: name.clone() });
        self.record("create", "persistentvolumeclaims", format!("{ns}/{name}"));
        self.writer.create(&ns, pvc).await
    }

    /// Merge-patch a pod; `restore` (a merge patch) undoes it, when given.
    pub async fn patch_pod(
        &self,
        namespace: &str,
        name: &str,
        patch: &Value,
        restore: Option<Value>,
    ) -> Result<(), Error> {
        self.writer.fence()?;
        if let Some(patch) = restore {
            self.undo.push(Undo::PatchPod { namespace: namespace.into(), name: name.into(), patch });
        }
        self.record("patch", "pods", format!("{namespace}/{name}"));
        self.writer.merge::<Pod>(namespace, name, patch).await
    }

    /// Merge-patch a Deployment; `restore` (a merge patch) undoes it, when given.
    pub async fn patch_deployment(
        &self,
        namespace: &str,
        name: &str,
        patch: &Value,
        restore: Option<Value>,
    ) -> Result<(), Error> {
        self.writer.fence()?;
        if let Some(patch) = restore {
            self.undo.push(Undo::PatchDeployment { namespace: namespace.into(), name: name.into(), patch });
        }
        self.record("patch", "deployments", format!("{namespace}/{name}"));
        self.writer.merge::<Deployment>(namespace, name, patch).await
    }

    /// Delete a pod after `grace_seconds`; one already gone is fine. Not undoable:
    /// strategies delete only what has been replaced.
    pub async fn delete_pod(&self, namespace: &str, name: &str, grace_seconds: u32) -> Result<(), Error> {
        self.writer.fence()?;
        self.record("delete", "pods", format!("{namespace}/{name}"));
        self.writer.delete_pod(namespace, name, grace_seconds).await
    }

    /// Ask the Eviction API once; the caller decides what a refusal (429) means.
    pub async fn evict(&self, namespace: &str, name: &str) -> Result<(), Error> {
        self.writer.fence()?;
        self.record("evict", "pods", format!("{namespace}/{name}"));
        self.writer
            .pods(namespace)
            .evict(name, &EvictParams::default())
            .await
            .map(|_| ())
            .map_err(|e| Error::api(format!("evict pod {namespace}/{name}"), e))
    }

    /// Ask the source node's agent for checkpoint images (an annotation on the
    /// migration's PodMigration); undo withdraws it and deletes what was pushed.
    pub async fn request_checkpoint_images(
        &self,
        namespace: &str,
        migration: &str,
        request: &crate::checkpoint::ImageRequest,
    ) -> Result<(), Error> {
        self.writer.fence()?;
        self.undo.push(Undo::WithdrawCheckpoint {
            namespace: namespace.into(),
            migration: migration.into(),
            request: Box::new(request.clone()),
        });
        self.record("patch", "podmigrations", format!("{namespace}/{migration}"));
        self.writer.merge::<PodMigration>(namespace, migration, &request_patch(request)?).await
    }

    /// Withdraw a request the job no longer waits for (it carries on without
    /// state): an agent that answers late, or never started, deletes the
    /// archives instead of pushing images nobody would read.
    pub async fn withdraw_checkpoint_images(
        &self,
        namespace: &str,
        migration: &str,
        request: &crate::checkpoint::ImageRequest,
    ) -> Result<(), Error> {
        self.writer.fence()?;
        self.record("patch", "podmigrations", format!("{namespace}/{migration}"));
        self.writer.withdraw_checkpoint(namespace, migration, request).await
    }

    /// The kubelet checkpoint API through the node proxy; the kubelet's answer.
    /// A 500 is the kubelet's permanent answer, not retried.
    pub async fn checkpoint(&self, node: &str, namespace: &str, pod: &str, container: &str) -> Result<Value, Error> {
        self.writer.fence()?;
        self.record("checkpoint", "nodes", format!("{node} {namespace}/{pod}/{container}"));
        let path = format!("/api/v1/nodes/{node}/proxy/checkpoint/{namespace}/{pod}/{container}");
        let req = http::Request::post(path)
            .body(Vec::new())
            .map_err(|e| Error::api(format!("checkpoint {container} on {node}"), kube::Error::HttpError(e)))?;
        let client = &self.writer.client;
        retry::unavailable_only(|| client.request::<Value>(req.clone()))
            .await
            .map_err(|e| Error::api(format!("checkpoint {container} on {node}"), e))
    }

    pub async fn event_pod(
        &self,
        namespace: &str,
        pod: &str,
        uid: Option<&str>,
        warning: bool,
        reason: &str,
        note: &str,
    ) {
        if self.writer.fence().is_err() {
            return;
        }
        self.record("event", "events", reason.to_string());
        self.writer.event_pod(namespace, pod, uid, warning, reason, note).await;
    }

    pub async fn event_node(&self, node: &str, warning: bool, reason: &str, note: &str) {
        if self.writer.fence().is_err() {
            return;
        }
        self.record("event", "events", reason.to_string());
        self.writer.event_node(node, warning, reason, note).await;
    }

    /// Register a compensating action without writing (repair re-creates the
    /// undo of an interrupted job from the markers it left).
    pub fn will_undo(&self, action: Undo) {
        self.undo.push(action);
    }

    /// The job reached the point of no return (the replacement serves): forget the undo log.
    pub fn commit(&self) {
        self.undo.commit();
    }

    pub fn has_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    /// Run every registered undo, newest first; what could not be undone.
    pub async fn rollback(&self) -> Vec<String> {
        let mut failed = Vec::new();
        for action in self.undo.take().iter().rev() {
            let (verb, resource, object) = action.target();
            self.record(verb, resource, object);
            let done = match self.writer.fence() {
                Ok(()) => self.writer.undo(action).await,
                Err(e) => Err(e),
            };
            match done {
                Ok(()) => tracing::info!(job = %self.job, action = %action.describe(), "undone"),
                Err(e) => {
                    tracing::error!(job = %self.job, action = %action.describe(), error = %e, "could not undo");
                    failed.push(format!("{}: {e}", action.describe()));
                }
            }
        }
        failed
    }
}

/// The merge patch that puts `request` on a PodMigration (and clears any answer).
fn request_patch(request: &crate::checkpoint::ImageRequest) -> Result<Value, Error> {
    let text = serde_json::to_string(request).map_err(|e| Error::new(Category::Internal, e.to_string()))?;
    Ok(serde_json::json!({"metadata": {"annotations": {
        crate::checkpoint::REQUEST: text, crate::checkpoint::ANSWER: null}}}))
}

/// The node agent's one write: its answer on the PodMigration, made only if
/// the object still carries the request answered (conditional on its
/// resourceVersion, so a request withdrawn meanwhile is not answered).
pub async fn answer_checkpoint_request(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    request_id: &str,
    answer: &crate::checkpoint::ImageAnswer,
) -> Result<(), Error> {
    let api: Api<PodMigration> = Api::namespaced(client.clone(), namespace);
    let m = retry::transient(|| api.get(name))
        .await
        .map_err(|e| Error::api(format!("read podmigration {namespace}/{name}"), e))?;
    let current = m
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(crate::checkpoint::REQUEST))
        .and_then(|s| serde_json::from_str::<crate::checkpoint::ImageRequest>(s).ok());
    if current.is_none_or(|r| r.id != request_id || r.withdrawn) {
        return Err(Error::new(
            Category::Conflict,
            format!("the checkpoint request on {namespace}/{name} was withdrawn"),
        ));
    }
    let text = serde_json::to_string(answer).map_err(|e| Error::new(Category::Internal, e.to_string()))?;
    let patch = serde_json::json!({"metadata": {
        "resourceVersion": m.metadata.resource_version,
        "annotations": {crate::checkpoint::ANSWER: text}}});
    let pp = PatchParams { field_manager: Some(crate::checkpoint::AGENT_MANAGER.into()), ..Default::default() };
    api.patch(name, &pp, &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(|e| Error::api(format!("answer the checkpoint request on {namespace}/{name}"), e))
}

/// The node agent's presence: create or renew its Lease.
pub async fn agent_heartbeat(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    node: &str,
    seconds: i32,
) -> Result<(), kube::Error> {
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    let api: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let pp = PostParams { field_manager: Some(crate::checkpoint::AGENT_MANAGER.into()), ..Default::default() };
    let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
    let spec = LeaseSpec {
        holder_identity: Some(node.into()),
        lease_duration_seconds: Some(seconds),
        renew_time: Some(now),
        ..Default::default()
    };
    match api.get_opt(name).await? {
        Some(mut lease) => {
            lease.spec = Some(spec);
            api.replace(name, &pp, &lease).await.map(|_| ())
        }
        None => {
            let lease = Lease {
                metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                    name: Some(name.into()),
                    namespace: Some(namespace.into()),
                    labels: Some([("app".to_string(), "sdi-migration-agent".to_string())].into()),
                    ..Default::default()
                },
                spec: Some(spec),
            };
            api.create(&pp, &lease).await.map(|_| ())
        }
    }
}

fn names(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> (String, String) {
    (meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default())
}

/// Test-and-remove our finalizer at `i`, so a finalizer added meanwhile is never lost.
async fn remove_finalizer_at(api: &Api<PodMigration>, name: &str, i: usize) -> kube::Result<PodMigration> {
    let at = format!("/metadata/finalizers/{i}");
    let patch = json_patch::Patch(vec![
        json_patch::PatchOperation::Test(json_patch::TestOperation {
            path: at.clone().try_into().unwrap_or_default(),
            value: serde_json::json!(crd::FINALIZER),
        }),
        json_patch::PatchOperation::Remove(json_patch::RemoveOperation { path: at.try_into().unwrap_or_default() }),
    ]);
    api.patch(name, &patch_params(), &Patch::<()>::Json(patch)).await
}
