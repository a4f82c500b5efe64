//! The cluster as the service sees it, kept current from watches (pods, nodes,
//! PodDisruptionBudgets, ReplicaSets, Deployments) and, when the pressure basis
//! needs it, a periodic read of metrics.k8s.io (which cannot be watched). One
//! generic watch loop feeds every kind; pods, nodes and budgets go into
//! `sdi-core`'s [`Index`], which maintains the planner's [`Snapshot`] in place:
//! a cycle settles what changed and plans, it never rebuilds. Objects are
//! projected on arrival into compact views — names, requests, constraints
//! interned per workload — never kept whole (a client-go informer holds ~40 KiB
//! per pod; this, well under 1 KiB).
//!
//! Everything else reads here too: pre-flight, the strategies' owners, and
//! every wait ([`ClusterCache::until`]) — a move costs no watch of its own and
//! an idle cycle no request at all.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use parking_lot::{RwLock, RwLockWriteGuard};
use sdi_core::fit::{Requirement, Resources};
use sdi_core::index::{Budget, Index, Labels, PodMeta, Selector};
use sdi_core::male;
use sdi_core::snapshot::{Constraints, NodeView, OwnerKind, Phase, PodView, Snapshot, Usage};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{facts, wait};
use crate::error::Error;
use sdi_core::error::Category;

/// A pod as cached: its view (derived fields as of the last cycle), what else
/// is known of it, and its Ready siblings now.
#[derive(Debug, Clone)]
pub struct CachedPod {
    pub view: PodView,
    pub meta: PodMeta,
    pub ready_siblings: u16,
}

/// Shared values, so every pod of a workload points at one copy.
#[derive(Default)]
struct Interned {
    constraints: HashSet<Arc<Constraints>>,
    labels: HashSet<Arc<Labels>>,
    strs: HashSet<Arc<str>>,
    containers: HashSet<Arc<[Box<str>]>>,
}

fn intern<T: Hash + Eq + ?Sized>(set: &mut HashSet<Arc<T>>, value: Arc<T>) -> Arc<T> {
    if let Some(v) = set.get(&value) {
        return v.clone();
    }
    set.insert(value.clone());
    value
}

impl Interned {
    /// Forget values no pod uses any more (workloads come and go; rollouts
    /// change labels): only the set itself still holds them.
    fn prune(&mut self) {
        self.constraints.retain(|a| Arc::strong_count(a) > 1);
        self.labels.retain(|a| Arc::strong_count(a) > 1);
        self.strs.retain(|a| Arc::strong_count(a) > 1);
        self.containers.retain(|a| Arc::strong_count(a) > 1);
    }
}

/// A ReplicaSet as the strategies need it.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedReplicaSet {
    pub uid: String,
    /// The Deployment that controls it, if any.
    pub deployment: Option<String>,
    pub selector: LabelSelector,
}

/// A Deployment's rollout state (and the hostname selector `pin` changes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CachedDeployment {
    pub generation: Option<i64>,
    pub observed_generation: Option<i64>,
    /// `spec.replicas` (1 when unset).
    pub want: i32,
    pub replicas: i32,
    pub updated: i32,
    pub ready: i32,
    /// `spec.template.spec.nodeSelector["kubernetes.io/hostname"]`.
    pub hostname: Option<String>,
}

impl CachedDeployment {
    /// The controller saw the newest spec, and every replica is updated and ready.
    pub fn rolled_out(&self) -> bool {
        self.observed_generation >= self.generation
            && self.updated == self.want
            && self.ready == self.want
            && self.replicas == self.want
    }
}

#[derive(Default)]
struct Inner {
    index: Index,
    interned: Interned,
    replicasets: HashMap<String, CachedReplicaSet>,
    deployments: HashMap<String, CachedDeployment>,
}

/// What a wait looks at: the cache as of one change.
pub struct View<'a> {
    inner: &'a Inner,
}

impl View<'_> {
    pub fn pod(&self, namespace: &str, name: &str) -> Option<(&PodView, &PodMeta)> {
        self.inner.index.pod(namespace, name)
    }

    pub fn node(&self, name: &str) -> Option<&NodeView> {
        self.inner.index.node(name)
    }

    pub fn deployment(&self, namespace: &str, name: &str) -> Option<&CachedDeployment> {
        self.inner.deployments.get(&format!("{namespace}/{name}"))
    }

    pub fn replicaset(&self, namespace: &str, name: &str) -> Option<&CachedReplicaSet> {
        self.inner.replicasets.get(&format!("{namespace}/{name}"))
    }

    /// The jobs with a staged copy (a pod labelled with its job and the copy
    /// role) whose original may still run: the original its label names is
    /// here, or the label is missing (a name too long for a label value).
    pub fn jobs_with_copies_and_originals(&self) -> std::collections::BTreeSet<&str> {
        use crate::engine::marks;
        self.inner
            .index
            .metas()
            .filter(|(_, m)| m.labels.get(marks::ROLE).is_some_and(|r| r == marks::ROLE_COPY))
            .filter(|(key, m)| {
                let namespace = key.split_once('/').map_or("", |(ns, _)| ns);
                m.labels.get(marks::LEGACY_ORIGINAL_POD).is_none_or(|o| self.inner.index.pod(namespace, o).is_some())
            })
            .filter_map(|(_, m)| m.labels.get(marks::JOB).map(String::as_str))
            .collect()
    }

    /// The pods of the controller with this uid.
    pub fn owned_by<'b>(&'b self, owner_uid: &str) -> impl Iterator<Item = (&'b PodView, &'b PodMeta)> + 'b {
        self.inner.index.owned_by(owner_uid)
    }
}

/// A uid as the number it is (UUIDs are 128 bits); anything else, hashed.
pub fn uid_number(uid: &str) -> u128 {
    let hex: String = uid.chars().filter(|c| *c != '-').collect();
    if hex.len() == 32
        && let Ok(n) = u128::from_str_radix(&hex, 16)
    {
        return n;
    }
    // Not a UUID (a simulator's or a test's uid): FNV-1a, 128-bit.
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for b in uid.bytes() {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000000001000000000000000000013B);
    }
    h
}

/// A 404 for the API group itself (not for one object): the API is not served.
pub fn api_not_served(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404 && s.message.contains("could not find the requested resource"))
}

fn annotation<'a>(p: &'a Pod, key: &str) -> Option<&'a str> {
    p.metadata.annotations.as_ref().and_then(|a| a.get(key)).map(String::as_str)
}

impl Interned {
    fn project(&mut self, p: &Pod) -> Option<(PodView, PodMeta)> {
        let ns = p.metadata.namespace.as_deref()?;
        let name = p.metadata.name.as_deref()?;
        let needs = facts::pod_needs(p);
        let constraints = intern(
            &mut self.constraints,
            Arc::new(Constraints {
                node_selector: needs.node_selector,
                affinity_terms: needs.affinity_terms,
                tolerations: needs.tolerations,
            }),
        );
        let controller = p.metadata.owner_references.iter().flatten().find(|r| r.controller == Some(true));
        let owner = match controller.map(|r| r.kind.as_str()) {
            None => OwnerKind::None,
            Some("ReplicaSet") => OwnerKind::ReplicaSet,
            Some("StatefulSet") => OwnerKind::StatefulSet,
            Some("DaemonSet") => OwnerKind::DaemonSet,
            Some(_) => OwnerKind::Other,
        };
        let owner_name = controller.map(|r| intern(&mut self.strs, Arc::from(r.name.as_str())));
        let owner_uid = controller.map(|r| intern(&mut self.strs, Arc::from(r.uid.as_str())));
        let labels = intern(&mut self.labels, Arc::new(p.metadata.labels.clone().unwrap_or_default()));
        let containers: Arc<[Box<str>]> =
            p.spec.iter().flat_map(|s| s.containers.iter()).map(|c| Box::from(c.name.as_str())).collect();
        let containers = intern(&mut self.containers, containers);
        let label_or_annotation = |k: &str| annotation(p, k).or_else(|| labels.get(k).map(String::as_str));
        let male = male::parse_male(label_or_annotation);
        let view = PodView {
            namespace: intern(&mut self.strs, Arc::from(ns)),
            name: Box::from(name),
            node: None,
            phase: Phase::parse(facts::pod_phase(p)),
            requests: facts::pod_requests(p),
            usage: None,
            needs: constraints,
            owner,
            owner_name,
            mirror: annotation(p, "kubernetes.io/config.mirror").is_some(),
            excluded: annotation(p, "sdi-migration/exclude") == Some("true"),
            terminating: p.metadata.deletion_timestamp.is_some(),
            male,
            priority: p.spec.as_ref().and_then(|s| s.priority).unwrap_or(0),
            ready_siblings: 0,
            disruptions_allowed: None,
        };
        let failure = (view.phase == Phase::Failed).then(|| {
            let st = p.status.as_ref();
            let reason = st.and_then(|s| s.reason.as_deref()).unwrap_or("");
            let message = st.and_then(|s| s.message.as_deref()).unwrap_or("");
            Arc::from(format!("{reason} {message}").trim())
        });
        let meta = PodMeta {
            node_name: facts::pod_node(p).map(|n| intern(&mut self.strs, Arc::from(n))),
            owner_uid,
            labels,
            containers,
            ready: facts::pod_ready(p),
            uid: p.metadata.uid.as_deref().map_or(0, uid_number),
            failure,
        };
        Some((view, meta))
    }
}

/// A kind the cache follows: how its objects enter and leave the index. The
/// watch loop ([`ClusterCache::follow`]) is the same for all of them.
trait Followed: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + 'static {
    /// Position in [`ClusterCache::synced`].
    const SYNC: usize;
    /// The index key of an object (`namespace/name` or a node's name).
    fn key(&self) -> String;
    fn apply(&self, inner: &mut Inner);
    fn forget(key: &str, inner: &mut Inner);
    fn keys(inner: &Inner) -> Vec<String>;
}

fn ns_key(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    format!("{}/{}", meta.namespace.as_deref().unwrap_or_default(), meta.name.as_deref().unwrap_or_default())
}

impl Followed for Pod {
    const SYNC: usize = 0;
    fn key(&self) -> String {
        ns_key(&self.metadata)
    }
    fn apply(&self, inner: &mut Inner) {
        if let Some((view, meta)) = inner.interned.project(self) {
            inner.index.upsert_pod(view, meta);
        }
    }
    fn forget(key: &str, inner: &mut Inner) {
        if let Some((ns, name)) = key.split_once('/') {
            inner.index.remove_pod(ns, name);
        }
    }
    fn keys(inner: &Inner) -> Vec<String> {
        inner.index.pod_keys().into_iter().map(|(ns, n)| format!("{ns}/{n}")).collect()
    }
}

impl Followed for Node {
    const SYNC: usize = 1;
    fn key(&self) -> String {
        self.metadata.name.clone().unwrap_or_default()
    }
    fn apply(&self, inner: &mut Inner) {
        inner.index.upsert_node(NodeView {
            facts: facts::node_facts(self, Resources::default()),
            control_plane: self
                .metadata
                .labels
                .as_ref()
                .is_some_and(|l| l.contains_key("node-role.kubernetes.io/control-plane")),
            usage: None,
        });
    }
    fn forget(key: &str, inner: &mut Inner) {
        inner.index.remove_node(key);
    }
    fn keys(inner: &Inner) -> Vec<String> {
        inner.index.node_names()
    }
}

impl Followed for PodDisruptionBudget {
    const SYNC: usize = 2;
    fn key(&self) -> String {
        ns_key(&self.metadata)
    }
    fn apply(&self, inner: &mut Inner) {
        let selector = self.spec.as_ref().and_then(|s| s.selector.as_ref()).map(|s| Selector {
            match_labels: s.match_labels.clone().unwrap_or_default(),
            match_expressions: s
                .match_expressions
                .iter()
                .flatten()
                .map(|e| Requirement {
                    key: e.key.clone(),
                    operator: e.operator.clone(),
                    values: e.values.clone().unwrap_or_default(),
                    field: false,
                })
                .collect(),
        });
        let allowed = self.status.as_ref().map_or(0, |s| u32::try_from(s.disruptions_allowed).unwrap_or(0));
        let (ns, name) = (self.metadata.namespace.as_deref().unwrap_or_default(), self.metadata.name.as_deref());
        inner.index.upsert_budget(ns, name.unwrap_or_default(), Budget { selector, allowed });
    }
    fn forget(key: &str, inner: &mut Inner) {
        if let Some((ns, name)) = key.split_once('/') {
            inner.index.remove_budget(ns, name);
        }
    }
    fn keys(inner: &Inner) -> Vec<String> {
        inner.index.budget_keys().into_iter().map(|(ns, n)| format!("{ns}/{n}")).collect()
    }
}

impl Followed for ReplicaSet {
    const SYNC: usize = 3;
    fn key(&self) -> String {
        ns_key(&self.metadata)
    }
    fn apply(&self, inner: &mut Inner) {
        let deployment = self
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|r| r.controller == Some(true) && r.kind == "Deployment")
            .map(|r| r.name.clone());
        let rs = CachedReplicaSet {
            uid: self.metadata.uid.clone().unwrap_or_default(),
            deployment,
            selector: self.spec.as_ref().map(|s| s.selector.clone()).unwrap_or_default(),
        };
        inner.replicasets.insert(self.key(), rs);
    }
    fn forget(key: &str, inner: &mut Inner) {
        inner.replicasets.remove(key);
    }
    fn keys(inner: &Inner) -> Vec<String> {
        inner.replicasets.keys().cloned().collect()
    }
}

impl Followed for Deployment {
    const SYNC: usize = 4;
    fn key(&self) -> String {
        ns_key(&self.metadata)
    }
    fn apply(&self, inner: &mut Inner) {
        let st = self.status.as_ref();
        let d = CachedDeployment {
            generation: self.metadata.generation,
            observed_generation: st.and_then(|s| s.observed_generation),
            want: self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
            replicas: st.and_then(|s| s.replicas).unwrap_or(0),
            updated: st.and_then(|s| s.updated_replicas).unwrap_or(0),
            ready: st.and_then(|s| s.ready_replicas).unwrap_or(0),
            hostname: self
                .spec
                .as_ref()
                .and_then(|s| s.template.spec.as_ref())
                .and_then(|s| s.node_selector.as_ref())
                .and_then(|m| m.get(sdi_core::admission::HOSTNAME_LABEL))
                .cloned(),
        };
        inner.deployments.insert(self.key(), d);
    }
    fn forget(key: &str, inner: &mut Inner) {
        inner.deployments.remove(key);
    }
    fn keys(inner: &Inner) -> Vec<String> {
        inner.deployments.keys().cloned().collect()
    }
}

pub struct ClusterCache {
    /// `RESOURCE_PRESSURE_THRESHOLD`: crossing it wakes the rebalancer early.
    threshold_pct: f64,
    inner: RwLock<Inner>,
    metrics_available: AtomicBool,
    /// metrics.k8s.io is not served at all (the API answered 404 for the group).
    metrics_absent: AtomicBool,
    /// Each watch has delivered its first full list.
    synced: [AtomicBool; 5],
    /// Bumped at every change, so waits re-check.
    changed: tokio::sync::watch::Sender<u64>,
    /// Signalled when a node newly crosses the pressure threshold.
    pub pressure_rose: tokio::sync::Notify,
}

impl std::fmt::Debug for ClusterCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCache").finish_non_exhaustive()
    }
}

impl ClusterCache {
    pub fn new(threshold_pct: f64) -> Arc<ClusterCache> {
        Arc::new(ClusterCache {
            threshold_pct,
            inner: RwLock::default(),
            metrics_available: AtomicBool::default(),
            metrics_absent: AtomicBool::default(),
            synced: Default::default(),
            changed: tokio::sync::watch::Sender::new(0),
            pressure_rose: tokio::sync::Notify::new(),
        })
    }

    pub fn synced(&self) -> bool {
        self.synced.iter().all(|s| s.load(Ordering::Relaxed))
    }

    /// Wait (at most `within`) until every watch has listed the cluster once.
    pub async fn wait_synced(&self, within: Duration) -> bool {
        let mut rx = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + within;
        while !self.synced() {
            if tokio::time::timeout_at(deadline, rx.changed()).await.is_err() {
                return self.synced();
            }
        }
        true
    }

    /// Wait until `check` says `Done` or `Fail`, re-checking after every change
    /// the watches bring. Bounded by the caller (jobs run under a timeout).
    pub async fn until<T>(&self, mut check: impl FnMut(&View<'_>) -> wait::Check<T>) -> Result<T, Error> {
        let mut rx = self.changed.subscribe();
        loop {
            rx.borrow_and_update();
            let verdict = {
                let g = self.inner.read();
                check(&View { inner: &g })
            };
            match verdict {
                wait::Check::Wait => {}
                wait::Check::Done(t) => return Ok(t),
                wait::Check::Fail(e) => return Err(e),
            }
            if rx.changed().await.is_err() {
                return Err(Error::new(Category::Internal, "the cluster cache stopped"));
            }
        }
    }

    /// Read the cache once.
    pub fn read<R>(&self, f: impl FnOnce(&View<'_>) -> R) -> R {
        let g = self.inner.read();
        f(&View { inner: &g })
    }

    pub fn replicaset(&self, namespace: &str, name: &str) -> Option<CachedReplicaSet> {
        self.inner.read().replicasets.get(&format!("{namespace}/{name}")).cloned()
    }

    pub fn deployment(&self, namespace: &str, name: &str) -> Option<CachedDeployment> {
        self.inner.read().deployments.get(&format!("{namespace}/{name}")).cloned()
    }

    /// The pod's usage from the last metrics poll, when the poll runs and has it.
    pub fn pod_usage(&self, namespace: &str, name: &str) -> Option<Usage> {
        if !self.metrics_available.load(Ordering::Relaxed) {
            return None;
        }
        self.inner.read().index.pod(namespace, name).and_then(|(v, _)| v.usage)
    }

    /// metrics.k8s.io answered that it is not served: per-pod reads are pointless.
    pub fn metrics_absent(&self) -> bool {
        self.metrics_absent.load(Ordering::Relaxed)
    }

    /// Remember what a metrics.k8s.io read found out about the API itself.
    pub fn metrics_answered(&self, absent: bool) {
        self.metrics_absent.store(absent, Ordering::Relaxed);
    }

    pub fn pod(&self, namespace: &str, name: &str) -> Option<CachedPod> {
        let g = self.inner.read();
        let (view, meta) = g.index.pod(namespace, name)?;
        Some(CachedPod {
            view: view.clone(),
            meta: meta.clone(),
            ready_siblings: g.index.ready_siblings(namespace, name),
        })
    }

    /// Project pods straight into the cache (benchmarks and tests; the watches
    /// do this in service).
    pub fn ingest(&self, pods: impl IntoIterator<Item = Pod>) {
        let mut g = self.inner.write();
        for p in pods {
            p.apply(&mut g);
        }
    }

    /// Nodes straight into the cache (benchmarks and tests).
    pub fn ingest_nodes(&self, nodes: impl IntoIterator<Item = Node>) {
        let mut g = self.inner.write();
        for n in nodes {
            n.apply(&mut g);
        }
    }

    pub fn pods_cached(&self) -> usize {
        self.inner.read().index.pods()
    }

    /// Run `f` on the current snapshot: the changes since the last cycle are
    /// settled, then `f` reads the maintained snapshot in place (watch updates
    /// wait until it returns).
    pub fn with_snapshot<R>(&self, f: impl FnOnce(&Snapshot) -> R) -> R {
        self.with_index(|ix| f(ix.snapshot()))
    }

    /// Run `f` on the settled index (its snapshot, and pods by name).
    pub fn with_index<R>(&self, f: impl FnOnce(&Index) -> R) -> R {
        let mut g = self.inner.write();
        g.index.set_metrics_available(self.metrics_available.load(Ordering::Relaxed));
        g.index.settle();
        g.interned.prune();
        let g = RwLockWriteGuard::downgrade(g);
        f(&g.index)
    }

    /// A copy of the current snapshot (tests, and callers that must keep it).
    pub fn snapshot(&self) -> Snapshot {
        self.with_snapshot(Snapshot::clone)
    }

    /// Keep the cache current until `stop`: a watch per kind, and a metrics
    /// poll every `metrics_every` when `poll_metrics` (the pressure basis needs
    /// usage) — backed off, up to five minutes, while the API is not served.
    pub fn spawn(
        self: &Arc<Self>,
        client: kube::Client,
        poll_metrics: bool,
        metrics_every: Duration,
        stop: CancellationToken,
    ) {
        self.clone().spawn_follow::<Pod>(Api::all(client.clone()), stop.clone());
        self.clone().spawn_follow::<Node>(Api::all(client.clone()), stop.clone());
        self.clone().spawn_follow::<PodDisruptionBudget>(Api::all(client.clone()), stop.clone());
        self.clone().spawn_follow::<ReplicaSet>(Api::all(client.clone()), stop.clone());
        self.clone().spawn_follow::<Deployment>(Api::all(client.clone()), stop.clone());
        if !poll_metrics {
            return;
        }
        let c = self.clone();
        tokio::spawn(async move {
            let mut wait = Duration::ZERO;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = if c.poll_metrics(&client).await || !c.metrics_absent() {
                    metrics_every
                } else {
                    (wait * 2).clamp(metrics_every, Duration::from_secs(300))
                };
            }
        });
    }

    fn spawn_follow<K: Followed>(self: Arc<Self>, api: Api<K>, stop: CancellationToken) {
        tokio::spawn(async move { self.follow(api, stop).await });
    }

    /// The one watch loop: apply what arrives; after a (re-)list, forget what
    /// the list no longer has.
    async fn follow<K: Followed>(&self, api: Api<K>, stop: CancellationToken) {
        let mut stream = watcher(api, watcher::Config::default()).default_backoff().boxed();
        let mut listed: Option<HashSet<String>> = None;
        loop {
            let ev = tokio::select! {
                _ = stop.cancelled() => return,
                ev = stream.next() => match ev { Some(ev) => ev, None => return },
            };
            let mut g = self.inner.write();
            match ev {
                Ok(watcher::Event::Init) => listed = Some(HashSet::new()),
                Ok(watcher::Event::InitApply(o)) => {
                    if let Some(l) = listed.as_mut() {
                        l.insert(o.key());
                    }
                    o.apply(&mut g);
                }
                Ok(watcher::Event::InitDone) => {
                    if let Some(l) = listed.take() {
                        for gone in K::keys(&g).into_iter().filter(|k| !l.contains(k)) {
                            K::forget(&gone, &mut g);
                        }
                    }
                    self.synced[K::SYNC].store(true, Ordering::Relaxed);
                }
                Ok(watcher::Event::Apply(o)) => o.apply(&mut g),
                Ok(watcher::Event::Delete(o)) => K::forget(&o.key(), &mut g),
                Err(e) => {
                    tracing::debug!(kind = %K::kind(&()), error = %e, "watch interrupted; resuming");
                    continue;
                }
            }
            drop(g);
            self.changed.send_modify(|v| *v = v.wrapping_add(1));
        }
    }

    /// Node and pod usage from metrics.k8s.io (two LISTs: it cannot be watched).
    /// Whether it answered.
    async fn poll_metrics(&self, client: &kube::Client) -> bool {
        let get = |path: &'static str| async move {
            let req = http::Request::get(path).body(Vec::new()).map_err(kube::Error::HttpError)?;
            client.request::<Value>(req).await
        };
        let answers = match get("/apis/metrics.k8s.io/v1beta1/nodes").await {
            Ok(nodes) => get("/apis/metrics.k8s.io/v1beta1/pods").await.map(|pods| (nodes, pods)),
            Err(e) => Err(e),
        };
        let (nodes, pods) = match answers {
            Ok(a) => a,
            Err(e) => {
                self.metrics_answered(api_not_served(&e));
                if self.metrics_available.swap(false, Ordering::Relaxed) {
                    tracing::warn!(
                        "metrics.k8s.io does not answer ({e}); pressure falls back to requests (PRESSURE_BASIS=auto)"
                    );
                }
                return false;
            }
        };
        self.metrics_answered(false);
        let usage = |u: &Value| -> Option<Usage> {
            Some(Usage {
                cpu_m: sdi_core::quantity::cpu_millis(u.get("cpu")?.as_str()?).ok()?,
                mem_b: sdi_core::quantity::bytes(u.get("memory")?.as_str()?).ok()?,
            })
        };
        let mut pod_usage = HashMap::new();
        for p in pods["items"].as_array().into_iter().flatten() {
            let (Some(ns), Some(name)) = (p["metadata"]["namespace"].as_str(), p["metadata"]["name"].as_str()) else {
                continue;
            };
            let mut total = Usage::default();
            for c in p["containers"].as_array().into_iter().flatten() {
                if let Some(u) = usage(&c["usage"]) {
                    total.cpu_m += u.cpu_m;
                    total.mem_b += u.mem_b;
                }
            }
            pod_usage.insert(format!("{ns}/{name}"), total);
        }
        let mut g = self.inner.write();
        let mut newly_pressured = false;
        let t = self.threshold_pct;
        let over = |u: Option<Usage>, a: Resources| {
            u.is_some_and(|u| {
                (a.cpu_m > 0 && u.cpu_m as f64 * 100.0 > a.cpu_m as f64 * t)
                    || (a.mem_b > 0 && u.mem_b as f64 * 100.0 > a.mem_b as f64 * t)
            })
        };
        for n in nodes["items"].as_array().into_iter().flatten() {
            let Some(name) = n["metadata"]["name"].as_str() else { continue };
            let Some(u) = usage(&n["usage"]) else { continue };
            let Some(view) = g.index.node(name) else { continue };
            let before = view.usage;
            if !view.control_plane && over(Some(u), view.facts.allocatable) && !over(before, view.facts.allocatable) {
                newly_pressured = true;
            }
            g.index.set_node_usage(name, Some(u));
        }
        g.index.set_pod_usage(&pod_usage);
        drop(g);
        if !self.metrics_available.swap(true, Ordering::Relaxed) {
            tracing::info!("metrics.k8s.io answers; usage is measured");
        }
        if newly_pressured {
            self.pressure_rose.notify_one();
        }
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
        true
    }
}
