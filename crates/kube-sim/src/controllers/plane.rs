//! The simulated control plane's event loop: informers feed one shared cache;
//! each change marks what it affects dirty; the loop runs the controllers
//! (scheduler, kubelets, workload controllers, garbage collector, disruption
//! controller, volume binder) on dirty keys and on timers kept in simulated
//! time. One loop for all controllers keeps the simulation deterministic for a
//! given sequence of events and cheap at 150,000 pods.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod, PodStatus};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::mpsc;

use super::informer::Change;
use super::state::{Dirty, Kind, Msg, Shared};
use super::{
    cronjob, daemonset, deployment, disruption, gc, job, kubelet, nodes, quota, replicaset, scheduler, statefulset,
    volumes,
};
use crate::apiserver::{ApiServer, DeleteOptions, WriteOptions};
use crate::cached_pod::{CachedPod, MetaView};
use crate::cluster::Cluster;
use crate::error::{ApiError, ApiResult};

/// Most dirty keys handled before the loop looks at new events again.
const BATCH: usize = 2_000;
/// Delay of debounced recomputations (simulated seconds).
const SOON: f64 = 0.5;

/// The control plane: its cache, queues and timers.
pub struct Plane {
    pub cluster: Cluster,
    pub api: Arc<ApiServer>,
    pub state: Shared,
    /// Work queues, served in turn so that no component's backlog blocks
    /// another's (as upstream's controllers each have their own workers):
    /// controllers, scheduling, kubelets.
    queues: [VecDeque<Dirty>; 3],
    queued: HashSet<Dirty>,
    turn: usize,
    timers: BinaryHeap<Reverse<(Duration, u64, Dirty)>>,
    timer_seq: u64,
    pub kubelet: kubelet::Runtime,
    pub scheduler: scheduler::Queue,
    /// Last Lease renewal per node (simulated time).
    pub heartbeats: std::collections::HashMap<String, Duration>,
    /// Recomputations already scheduled by [`Plane::soon`].
    soon: HashSet<Dirty>,
    /// Writes handed to helper threads ([`super::offload`]).
    pub(super) offload: super::offload::Offload,
}

impl std::fmt::Debug for Plane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plane").field("queued", &self.queued.len()).field("timers", &self.timers.len()).finish()
    }
}

impl Plane {
    pub fn new(cluster: Cluster, state: Shared, unanswered: Arc<super::offload::Unanswered>) -> Self {
        let api = cluster.api().clone();
        let cluster_stop = cluster.stopping();
        Plane {
            api: api.clone(),
            cluster,
            state,
            queues: Default::default(),
            queued: HashSet::new(),
            turn: 0,
            timers: BinaryHeap::new(),
            timer_seq: 0,
            kubelet: kubelet::Runtime::default(),
            scheduler: scheduler::Queue::default(),
            heartbeats: std::collections::HashMap::new(),
            soon: HashSet::new(),
            offload: super::offload::Offload::new(api, cluster_stop, unanswered),
        }
    }

    /// Simulated time since the cluster started.
    pub fn now(&self) -> Duration {
        self.api.clock.elapsed()
    }

    pub fn now_rfc3339(&self) -> String {
        self.api.clock.now_rfc3339()
    }

    pub fn mark(&mut self, d: Dirty) {
        if self.queued.insert(d.clone()) {
            let lane = self.lane(&d);
            self.queues[lane].push_back(d);
        }
    }

    /// Which queue a piece of work belongs to.
    fn lane(&self, d: &Dirty) -> usize {
        match d {
            Dirty::Pod(key) => match self.state.read().pods.get(key) {
                Some(p) if super::state::node_of(p).is_some() => 2,
                _ => 1,
            },
            _ => 0,
        }
    }

    pub fn mark_all(&mut self, ds: Vec<Dirty>) {
        for d in ds {
            self.mark(d);
        }
    }

    /// Look at `d` shortly, once however often it is asked for meanwhile: for
    /// recomputations that depend on many objects (a budget's pods, a daemon
    /// set's nodes), which a burst of changes would otherwise repeat per change.
    pub fn soon(&mut self, d: Dirty) {
        if self.soon.insert(d.clone()) {
            self.after(SOON, d);
        }
    }

    /// Look at `d` again once simulated time reaches `at`.
    pub fn at(&mut self, at: Duration, d: Dirty) {
        self.timer_seq += 1;
        self.timers.push(Reverse((at, self.timer_seq, d)));
    }

    /// Look at `d` again after `secs` simulated seconds.
    pub fn after(&mut self, secs: f64, d: Dirty) {
        let at = self.now() + Duration::from_secs_f64(secs.max(0.0));
        self.at(at, d);
    }

    pub async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let stop = self.cluster.stopping();
        loop {
            let next_timer = self.timers.peek().map(|Reverse((t, _, _))| *t);
            let wait = match next_timer {
                Some(t) => self.api.clock.real(t.saturating_sub(self.now())),
                None => Duration::from_secs(3600),
            };
            let busy = !self.queued.is_empty();
            tokio::select! {
                biased;
                _ = stop.cancelled() => return,
                m = rx.recv() => match m {
                    Some(m) => self.on_msg(m),
                    None => return,
                },
                _ = tokio::time::sleep(wait) => {}
                _ = std::future::ready(()), if busy => {}
            }
            let mut drained = 0;
            while drained < 20_000 {
                match rx.try_recv() {
                    Ok(m) => self.on_msg(m),
                    Err(_) => break,
                }
                drained += 1;
            }
            self.fire_timers();
            self.work();
            tokio::task::yield_now().await;
        }
    }

    /// Bring a change into the cache and mark what it affects.
    pub(super) fn on_msg(&mut self, m: Msg) {
        let dirty = self.state.write().apply(m);
        self.mark_all(dirty);
    }

    fn fire_timers(&mut self) {
        let now = self.now();
        while let Some(Reverse((t, _, _))) = self.timers.peek() {
            if *t > now {
                break;
            }
            if let Some(Reverse((_, _, d))) = self.timers.pop() {
                self.mark(d);
            }
        }
    }

    fn work(&mut self) {
        for _ in 0..BATCH {
            let Some(lane) = (0..3).map(|i| (self.turn + i) % 3).find(|l| !self.queues[*l].is_empty()) else { break };
            self.turn = (lane + 1) % 3;
            let Some(d) = self.queues[lane].pop_front() else { break };
            self.queued.remove(&d);
            self.dispatch(d);
        }
        self.await_writes();
    }

    fn dispatch(&mut self, d: Dirty) {
        self.soon.remove(&d);
        match d {
            Dirty::Pod(key) => {
                if let Some(pod) = self.pod(&key) {
                    if gc::has_gc_finalizer(&pod.metadata) {
                        gc::on_owner_deleting(self, &pod.metadata.to_object_meta(), "v1", "Pod");
                    }
                    self.wake_matching_replicasets(&pod);
                }
                scheduler::on_pod(self, &key);
                kubelet::reconcile(self, &key);
            }
            Dirty::Node(name) => {
                nodes::reconcile(self, &name);
                // Pods bound here that the kubelet does not run yet: their events may
                // have come before the node's (separate watches), or while it was down.
                let waiting: Vec<String> = self
                    .state
                    .read()
                    .pods_by_node
                    .get(&name)
                    .into_iter()
                    .flatten()
                    .filter(|k| !self.kubelet.tracks(k))
                    .cloned()
                    .collect();
                for k in waiting {
                    self.mark(Dirty::Pod(k));
                }
                let ds: Vec<String> = self.state.read().daemonsets.keys().cloned().collect();
                for k in ds {
                    self.soon(Dirty::DaemonSet(k));
                }
            }
            Dirty::Capacity => scheduler::retry_unschedulable(self),
            Dirty::Owner(uid) => {
                let target = self.state.read().uids.get(&uid).cloned();
                match target {
                    // A ReplicaSet looks at its pods once per burst of their
                    // changes (upstream's controllers batch through their work
                    // queues): per change, it would be quadratic in its size.
                    Some((Kind::ReplicaSet, k)) => self.soon(Dirty::ReplicaSet(k)),
                    Some((Kind::Deployment, k)) => self.mark(Dirty::Deployment(k)),
                    Some((Kind::StatefulSet, k)) => self.mark(Dirty::StatefulSet(k)),
                    Some((Kind::DaemonSet, k)) => self.soon(Dirty::DaemonSet(k)),
                    Some((Kind::Job, k)) => self.mark(Dirty::Job(k)),
                    Some((Kind::CronJob, k)) => self.mark(Dirty::CronJob(k)),
                    Some(_) => {}
                    // The owner is not (or no longer) cached: maybe an orphan.
                    None => self.mark(Dirty::Gone(uid)),
                }
            }
            Dirty::ReplicaSet(k) => replicaset::reconcile(self, &k),
            Dirty::Deployment(k) => deployment::reconcile(self, &k),
            Dirty::StatefulSet(k) => statefulset::reconcile(self, &k),
            Dirty::DaemonSet(k) => daemonset::reconcile(self, &k),
            Dirty::Job(k) => job::reconcile(self, &k),
            Dirty::CronJob(k) => cronjob::reconcile(self, &k),
            Dirty::Quota(k) => quota::reconcile(self, &k),
            Dirty::PdbMember(k) => self.soon(Dirty::Pdb(k)),
            Dirty::QuotaNamespace(ns) => {
                let prefix = format!("{ns}/");
                let quotas: Vec<String> =
                    self.state.read().quotas.keys().filter(|k| k.starts_with(&prefix)).cloned().collect();
                for k in quotas {
                    self.soon(Dirty::Quota(k));
                }
            }
            Dirty::Pdb(k) => disruption::reconcile(self, &k),
            Dirty::Pvc(k) => {
                let meta = self.state.read().pvcs.get(&k).map(|p| p.metadata.clone());
                if let Some(m) = meta.filter(gc::has_gc_finalizer) {
                    gc::on_owner_deleting(self, &m, "v1", "PersistentVolumeClaim");
                }
                volumes::reconcile(self, &k)
            }
            Dirty::Gone(uid) => gc::reconcile(self, &uid),
        }
    }

    /// A pod without a controller may be adopted: let the ReplicaSets of its
    /// namespace whose selector matches it look (upstream's pod handlers do).
    fn wake_matching_replicasets(&mut self, pod: &CachedPod) {
        let has_controller = pod.metadata.owner_references().iter().any(|o| o.controller == Some(true));
        if has_controller || pod.metadata.deletion_timestamp.is_some() {
            return;
        }
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        let prefix = format!("{ns}/");
        let matching: Vec<String> = self
            .state
            .read()
            .replicasets
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .filter(|(_, rs)| rs.spec.as_ref().is_some_and(|s| replicaset::selector_of(&s.selector).matches(&labels)))
            .map(|(k, _)| k.clone())
            .collect();
        for k in matching {
            self.mark(Dirty::ReplicaSet(k));
        }
    }

    // ----- writes (through the API, then into the cache) -----------------------

    /// Write options of the simulator's own components (typed, trusted objects).
    pub fn opts(manager: &str) -> WriteOptions {
        WriteOptions { trusted: true, ..WriteOptions::manager(manager) }
    }

    /// Decode a written object and put it in the cache at once, so the next
    /// reconcile sees it even before the informer delivers it.
    pub(super) fn write_through<K: DeserializeOwned>(
        &mut self,
        v: Value,
        wrap: impl Fn(Change<K>) -> Msg,
    ) -> Option<Arc<K>> {
        let k: Arc<K> = super::state::for_cache(v).ok()?;
        self.on_msg(wrap(Change::Upsert(k.clone())));
        Some(k)
    }

    /// Create an object of kind `K`; cached when `wrap` is given.
    pub fn create<K: CachedAs + Serialize>(
        &mut self,
        manager: &str,
        ns: Option<&str>,
        obj: &K,
        wrap: Option<Wrap<K>>,
    ) -> ApiResult<Value> {
        let object = create_on(&self.api, manager, ns, obj)?;
        if let Some(wrap) = wrap {
            self.write_through(object.clone(), wrap);
        }
        Ok(object)
    }

    /// Replace an object (or its status) of kind `K`, caching the result.
    pub fn replace<K: k8s_openapi::Resource + Serialize + DeserializeOwned>(
        &mut self,
        manager: &str,
        obj: &K,
        status: bool,
        wrap: fn(Change<K>) -> Msg,
    ) -> ApiResult<Arc<K>> {
        let res = self.api.res(K::GROUP, K::URL_PATH_SEGMENT);
        let v = serde_json::to_value(obj).map_err(|e| ApiError::internal(e.to_string()))?;
        let name = crate::meta::name(&v).to_string();
        let ns = crate::meta::namespace(&v).map(str::to_string);
        let sub = status.then_some("status");
        let w = self.api.update(&res, ns.as_deref(), &name, sub, v, &Self::opts(manager))?;
        self.write_through(w.object, wrap).ok_or_else(|| ApiError::internal("decoding a written object"))
    }

    /// Merge-patch an object of kind `K`, caching the result when `wrap` is given.
    pub fn patch<K: CachedAs>(
        &mut self,
        manager: &str,
        ns: Option<&str>,
        name: &str,
        status: bool,
        patch: &Value,
        wrap: Option<Wrap<K>>,
    ) -> ApiResult<Value> {
        let res = self.api.res(K::GROUP, K::URL_PATH_SEGMENT);
        let body = serde_json::to_vec(patch).map_err(|e| ApiError::internal(e.to_string()))?;
        let sub = status.then_some("status");
        let w = self.api.patch(&res, ns, name, sub, crate::apiserver::PatchType::Merge, &body, &Self::opts(manager))?;
        if let Some(wrap) = wrap {
            self.write_through(w.object.clone(), wrap);
        }
        Ok(w.object)
    }

    /// Write the fields `status` has of a cached pod's status, keeping the
    /// others ([`crate::apiserver::ApiServer::merge_status`]; conditional on
    /// the version cached), and cache the result.
    pub fn merge_pod_status(
        &mut self,
        manager: &str,
        pod: &CachedPod,
        status: &PodStatus,
    ) -> ApiResult<Arc<CachedPod>> {
        let m = &pod.metadata;
        let (ns, name) = (m.namespace.clone().unwrap_or_default(), m.name.clone().unwrap_or_default());
        let res = self.api.res("", "pods");
        let body = pod_status_body(pod_status_ident(m), status)?;
        let w = self.api.merge_status(&res, Some(&ns), &name, body, &Self::opts(manager))?;
        self.write_through(w.object, Msg::Pod).ok_or_else(|| ApiError::internal("decoding a written pod"))
    }

    /// Delete an object of kind `K` (uid precondition when given).
    pub fn delete<K: k8s_openapi::Resource>(
        &mut self,
        ns: Option<&str>,
        name: &str,
        uid: Option<&str>,
        grace: Option<i64>,
        propagation: Option<crate::apiserver::Propagation>,
    ) -> ApiResult<()> {
        let res = self.api.res(K::GROUP, K::URL_PATH_SEGMENT);
        let opts = DeleteOptions {
            grace_period: grace,
            precondition_uid: uid.map(str::to_string),
            propagation,
            ..Default::default()
        };
        self.api.delete(&res, ns, name, &opts).map(|_| ())
    }

    /// Record an Event about an object, as the named component would (core/v1
    /// form, with the events.k8s.io fields filled, like upstream's recorders).
    #[allow(clippy::too_many_arguments)]
    pub fn event_about(
        &mut self,
        meta: &impl MetaView,
        api_version: &str,
        kind: &str,
        reason: &str,
        message: &str,
        type_: &str,
        component: &str,
        action: &str,
    ) {
        if !self.state.read().settings.record_events {
            return;
        }
        let ns = meta.namespace().unwrap_or("default").to_string();
        let name = meta.name().unwrap_or_default().to_string();
        let nanos = self.api.clock.now().as_nanosecond();
        let ev = serde_json::json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("{name}.{:x}", nanos as u64), "namespace": ns},
            "involvedObject": {"apiVersion": api_version, "kind": kind, "name": name, "namespace": meta.namespace(),
                "uid": meta.uid(), "resourceVersion": meta.resource_version()},
            "reason": reason, "message": message, "type": type_, "action": action,
            "eventTime": self.api.clock.now_micro(),
            "reportingComponent": component, "reportingInstance": format!("{component}-kube-sim"),
            "source": {"component": component},
        });
        let res = self.api.res("", "events");
        if let Err(e) = self.api.create(&res, Some(&ns), ev, &Self::opts(component)) {
            self.note("event", &name, &e);
        }
    }

    /// An Event about a pod.
    pub fn event(&mut self, pod: &CachedPod, reason: &str, message: &str, type_: &str, component: &str, action: &str) {
        self.event_about(&pod.metadata, "v1", "Pod", reason, message, type_, component, action);
    }

    /// Cached pod by key.
    pub fn pod(&self, key: &str) -> Option<Arc<CachedPod>> {
        self.state.read().pods.get(key).cloned()
    }

    pub fn node(&self, name: &str) -> Option<Arc<Node>> {
        self.state.read().nodes.get(name).cloned()
    }

    /// Log a failed write at debug level: conflicts and not-founds are the
    /// normal result of acting on a cache a step behind, and are retried when
    /// the newer version arrives.
    pub fn note(&self, what: &str, key: &str, e: &ApiError) {
        if matches!(e.code, 404 | 409) {
            tracing::debug!(what, key, error = %e, "control plane write raced a newer version");
        } else {
            tracing::warn!(what, key, error = %e, "control plane write failed");
        }
    }
}

/// Create an object of kind `K` through `api`: the loop's own creates and
/// the ones it hands to a helper ([`Plane::send_create`]) go the same way.
pub fn create_on<K: k8s_openapi::Resource + Serialize>(
    api: &ApiServer,
    manager: &str,
    ns: Option<&str>,
    obj: &K,
) -> ApiResult<Value> {
    let res = api.res(K::GROUP, K::URL_PATH_SEGMENT);
    let v = serde_json::to_value(obj).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(api.create(&res, ns, v, &Plane::opts(manager))?.object)
}

/// What a pod status write names of its pod (the status subresource reads
/// nothing else of the metadata; the version makes it conditional).
pub fn pod_status_ident(meta: &impl MetaView) -> Value {
    serde_json::json!({"name": meta.name(), "namespace": meta.namespace(), "uid": meta.uid(),
        "resourceVersion": meta.resource_version()})
}

/// The body of a pod status write: its [`pod_status_ident`] and the status.
pub fn pod_status_body(ident: Value, status: &PodStatus) -> ApiResult<Value> {
    let status = serde_json::to_value(status).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(serde_json::json!({"metadata": ident, "status": status}))
}

/// How a written object of kind `K` enters the control plane's cache.
pub type Wrap<K> = fn(Change<<K as CachedAs>::Cached>) -> Msg;

/// How the control plane caches the objects of a kind it writes: pods in their
/// lean form ([`CachedPod`]), everything else as it is.
pub trait CachedAs: k8s_openapi::Resource + DeserializeOwned {
    type Cached: DeserializeOwned;
}

impl CachedAs for Pod {
    type Cached = CachedPod;
}

macro_rules! cached_as_itself {
    ($($t:ty),* $(,)?) => { $(impl CachedAs for $t { type Cached = $t; })* };
}

cached_as_itself!(
    Node,
    k8s_openapi::api::coordination::v1::Lease,
    k8s_openapi::api::core::v1::PersistentVolume,
    k8s_openapi::api::core::v1::PersistentVolumeClaim,
    k8s_openapi::api::core::v1::ResourceQuota,
    k8s_openapi::api::apps::v1::ReplicaSet,
    k8s_openapi::api::apps::v1::Deployment,
    k8s_openapi::api::apps::v1::StatefulSet,
    k8s_openapi::api::apps::v1::DaemonSet,
    k8s_openapi::api::batch::v1::Job,
    k8s_openapi::api::batch::v1::CronJob,
    k8s_openapi::api::policy::v1::PodDisruptionBudget,
);
