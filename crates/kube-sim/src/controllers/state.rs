//! The simulated control plane's shared cache: every object the controllers
//! act on, with the indexes they need (pods by node and namespace, dependents
//! by owner uid, requested resources per node), plus the simulation's own state
//! (usage overrides, failed nodes, recorded checkpoints). Written by the
//! informers' changes and through the controllers' own writes (so a controller
//! never acts twice on a change it made itself), read by the metrics API and the
//! kubelet checkpoint endpoint.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, ResourceQuota};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use parking_lot::RwLock;

use super::informer::Change;
use crate::cached_pod::{CachedPod, MetaView};
use crate::rules::resources::Resources;
use crate::scenario::profile::Profile;

pub type Shared = Arc<RwLock<State>>;

/// The kinds the control plane caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Pod,
    Node,
    ReplicaSet,
    Deployment,
    StatefulSet,
    DaemonSet,
    Pdb,
    Pvc,
    Pv,
    Job,
    CronJob,
    Quota,
}

/// One change delivered by an informer.
#[derive(Debug)]
pub enum Msg {
    Pod(Change<CachedPod>),
    Node(Change<Node>),
    ReplicaSet(Change<ReplicaSet>),
    Deployment(Change<Deployment>),
    StatefulSet(Change<StatefulSet>),
    DaemonSet(Change<DaemonSet>),
    Pdb(Change<PodDisruptionBudget>),
    Pvc(Change<PersistentVolumeClaim>),
    Pv(Change<PersistentVolume>),
    Job(Change<Job>),
    CronJob(Change<CronJob>),
    Quota(Change<ResourceQuota>),
}

/// A runtime override of usage (scenario timeline `setUsage`).
#[derive(Debug, Clone)]
pub struct UsageOverride {
    pub namespace: Option<String>,
    pub selector: crate::selector::LabelSelector,
    pub cpu: Option<Profile>,
    pub memory: Option<Profile>,
}

/// A container checkpoint the simulated kubelet took.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointRecord {
    pub node: String,
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub path: String,
    pub size_bytes: i64,
    pub time: String,
    /// The simulated process state it holds.
    pub counter: i64,
}

/// Scenario-wide simulation settings.
#[derive(Debug, Clone)]
pub struct SimSettings {
    pub seed: u64,
    pub startup_seconds: f64,
    pub shutdown_seconds: f64,
    pub heartbeat_seconds: f64,
    /// Record the Events the control plane's components emit (off for huge benchmark clusters).
    pub record_events: bool,
}

impl Default for SimSettings {
    fn default() -> Self {
        SimSettings {
            seed: 1,
            startup_seconds: 1.0,
            shutdown_seconds: 1.0,
            heartbeat_seconds: 10.0,
            record_events: true,
        }
    }
}

#[derive(Debug, Default)]
pub struct State {
    pub pods: HashMap<String, Arc<CachedPod>>,
    pub nodes: BTreeMap<String, Arc<Node>>,
    pub replicasets: HashMap<String, Arc<ReplicaSet>>,
    pub deployments: HashMap<String, Arc<Deployment>>,
    pub statefulsets: HashMap<String, Arc<StatefulSet>>,
    pub daemonsets: HashMap<String, Arc<DaemonSet>>,
    pub pdbs: HashMap<String, Arc<PodDisruptionBudget>>,
    pub pvcs: HashMap<String, Arc<PersistentVolumeClaim>>,
    pub pvs: HashMap<String, Arc<PersistentVolume>>,
    pub jobs: HashMap<String, Arc<Job>>,
    pub cronjobs: HashMap<String, Arc<CronJob>>,
    pub quotas: HashMap<String, Arc<ResourceQuota>>,
    /// node name → keys of pods bound to it
    pub pods_by_node: HashMap<String, BTreeSet<String>>,
    /// namespace → pod keys
    pub pods_by_ns: HashMap<String, BTreeSet<String>>,
    /// namespace → keys of pods without a controller (candidates for adoption)
    pub orphans_by_ns: HashMap<String, BTreeSet<String>>,
    /// owner uid → dependents
    pub by_owner: HashMap<String, BTreeSet<(Kind, String)>>,
    /// uid → the cached object with it
    pub uids: HashMap<String, (Kind, String)>,
    /// node → sum of the requests of its non-terminal pods (the scheduler's view)
    pub requested: HashMap<String, Resources>,
    /// Nodes ordered by how free they are (`(-least-allocated score, name)`),
    /// so the scheduler looks at the emptiest nodes first.
    pub free: BTreeSet<(i64, String)>,
    /// The same order per kind of node: a pod that only a small pool admits
    /// looks at that pool, not at every node.
    pub free_by_kind: HashMap<u32, BTreeSet<(i64, String)>>,
    /// node → (score, kind) as indexed, to find its entries again.
    free_score: HashMap<String, (i64, u32)>,
    /// namespace → budget key → the budget's selector and the pods it selects,
    /// kept as pods change: a budget's status is recomputed from its own pods,
    /// never from a scan of its namespace (150,000 pods in a few namespaces).
    pub pdb_members: HashMap<String, BTreeMap<String, PdbMembers>>,
    /// node → its kind: nodes of one kind have the same labels, taints,
    /// schedulability and readiness, so they admit the same pods
    /// ([`crate::rules::fit::node_admits`]).
    pub node_kind: HashMap<String, u32>,
    kind_ids: HashMap<String, u32>,
    /// node → its allocatable resources, parsed once per node change.
    pub allocatable: HashMap<String, Resources>,
    pub settings: SimSettings,
    pub usage_overrides: Vec<UsageOverride>,
    pub failed_nodes: BTreeSet<String>,
    pub checkpoints: Vec<CheckpointRecord>,
    /// `<pod uid>/<container>` → the counter value a restore brought back
    /// (see `super::runtime`); absent: the container started from scratch.
    pub restored: HashMap<String, i64>,
}

/// The pods one PodDisruptionBudget selects.
#[derive(Debug, Default)]
pub struct PdbMembers {
    /// The selector as written, to notice when it changes.
    pub raw: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
    pub selector: crate::selector::LabelSelector,
    pub pods: BTreeSet<String>,
}

/// A cached kind besides pods and nodes (which have their own indexes).
pub trait Cached: k8s_openapi::Metadata<Ty = ObjectMeta> + Sized + 'static {
    const CACHE_KIND: Kind;
    fn map(state: &mut State) -> &mut HashMap<String, Arc<Self>>;
    /// What a change of this object makes dirty.
    fn dirty(key: String) -> Dirty;
}

macro_rules! cached {
    ($t:ty, $kind:ident, $field:ident, $dirty:expr) => {
        impl Cached for $t {
            const CACHE_KIND: Kind = Kind::$kind;
            fn map(state: &mut State) -> &mut HashMap<String, Arc<Self>> {
                &mut state.$field
            }
            fn dirty(key: String) -> Dirty {
                ($dirty)(key)
            }
        }
    };
}

cached!(ReplicaSet, ReplicaSet, replicasets, Dirty::ReplicaSet);
cached!(Deployment, Deployment, deployments, Dirty::Deployment);
cached!(StatefulSet, StatefulSet, statefulsets, Dirty::StatefulSet);
cached!(DaemonSet, DaemonSet, daemonsets, Dirty::DaemonSet);
cached!(PodDisruptionBudget, Pdb, pdbs, Dirty::Pdb);
cached!(PersistentVolumeClaim, Pvc, pvcs, Dirty::Pvc);
cached!(PersistentVolume, Pv, pvs, |_| Dirty::Capacity);
cached!(Job, Job, jobs, Dirty::Job);
cached!(CronJob, CronJob, cronjobs, Dirty::CronJob);
cached!(ResourceQuota, Quota, quotas, Dirty::Quota);

/// An object as the API server answered it, decoded for the cache without
/// its field ownership, which no controller reads (pods: see [`CachedPod`],
/// which also skips what only a real container runtime would use).
pub fn for_cache<K: serde::de::DeserializeOwned>(mut v: serde_json::Value) -> Result<Arc<K>, serde_json::Error> {
    if let Some(m) = v.get_mut("metadata").and_then(serde_json::Value::as_object_mut) {
        m.remove("managedFields");
    }
    serde_json::from_value(v).map(Arc::new)
}

/// An object as stored (JSON bytes), decoded for the cache without its field
/// ownership. Pods decode into [`CachedPod`], which skips what no controller
/// reads while parsing; other kinds keep every field but `managedFields`.
pub fn decode_for_cache<K>(body: &[u8]) -> Result<Arc<K>, serde_json::Error>
where
    K: serde::de::DeserializeOwned + k8s_openapi::Metadata<Ty: MetaView>,
{
    let mut k: K = serde_json::from_slice(body)?;
    k.metadata_mut().forget_field_ownership();
    Ok(Arc::new(k))
}

/// What decides whether a node admits a pod, load aside: its labels (but the
/// hostname, which pods that use it are never judged by kind for), taints,
/// `spec.unschedulable` and Ready status (see [`crate::rules::fit::node_admits`]).
fn node_signature(node: &Node) -> String {
    let spec = node.spec.as_ref();
    let labels: Option<BTreeMap<&String, &String>> = node
        .metadata
        .labels
        .as_ref()
        .map(|l| l.iter().filter(|(k, _)| k.as_str() != crate::rules::fit::HOSTNAME_LABEL).collect());
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.as_str());
    serde_json::to_string(&(labels, spec.and_then(|s| s.taints.as_ref()), spec.and_then(|s| s.unschedulable), ready))
        .unwrap_or_default()
}

/// Cache key of an object: `namespace/name` or `name`.
pub fn key_of(meta: &impl MetaView) -> String {
    match meta.namespace().filter(|n| !n.is_empty()) {
        Some(ns) => format!("{ns}/{}", meta.name().unwrap_or_default()),
        None => meta.name().unwrap_or_default().to_string(),
    }
}

/// An object's resourceVersion as a number (0 when absent).
pub fn resource_version(meta: &impl MetaView) -> u64 {
    meta.resource_version().and_then(|r| r.parse().ok()).unwrap_or(0)
}

/// Whether `incoming` is older than what the cache holds (a controller's own
/// write got there first). A change without a resourceVersion (the informer's
/// deletions after a re-list) is never stale.
fn stale<M: MetaView>(cached: &M, incoming: &M) -> bool {
    incoming.resource_version().is_some() && resource_version(cached) > resource_version(incoming)
}

/// Whether a pod still occupies its node's resources (upstream: not terminal).
pub fn occupies(pod: &CachedPod) -> bool {
    !matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

/// What a pod requests of its node (upstream's effective requests).
pub fn requests(pod: &CachedPod) -> Resources {
    pod.spec.as_ref().map(crate::rules::resources::pod_requests).unwrap_or_default()
}

/// Whether a controller owns the object (otherwise it may be adopted).
fn has_controller(meta: &impl MetaView) -> bool {
    meta.owner_references().iter().any(|o| o.controller == Some(true))
}

pub fn node_of(pod: &CachedPod) -> Option<&str> {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty())
}

/// What a change makes someone look at again.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dirty {
    /// A pod (scheduler, kubelet).
    Pod(String),
    /// A node (its kubelet, daemonsets).
    Node(String),
    /// Capacity appeared (node added or changed, pod removed): retry unschedulable pods.
    Capacity,
    /// The owner with this uid has a changed dependent.
    Owner(String),
    ReplicaSet(String),
    Deployment(String),
    StatefulSet(String),
    DaemonSet(String),
    /// A pod of this namespace changed: its ResourceQuotas recount shortly.
    QuotaNamespace(String),
    /// A pod this budget selects (or selected) changed: recompute it shortly.
    PdbMember(String),
    Pdb(String),
    Pvc(String),
    Job(String),
    CronJob(String),
    Quota(String),
    /// Something with this uid was deleted: its dependents may be orphans.
    Gone(String),
}

impl State {
    /// Apply an informer change (ignored if the cache already holds a newer
    /// version, e.g. from the controller's own write) and say what it affects.
    pub fn apply(&mut self, msg: Msg) -> Vec<Dirty> {
        match msg {
            Msg::Pod(c) => self.apply_pod(c),
            Msg::Node(c) => self.apply_node(c),
            Msg::ReplicaSet(c) => self.apply_cached(c),
            Msg::Deployment(c) => self.apply_cached(c),
            Msg::StatefulSet(c) => self.apply_cached(c),
            Msg::DaemonSet(c) => self.apply_cached(c),
            Msg::Pdb(c) => {
                let key = match &c {
                    Change::Upsert(p) | Change::Delete(p) => key_of(&p.metadata),
                };
                let out = self.apply_cached(c);
                self.index_pdb(&key);
                out
            }
            Msg::Pvc(c) => self.apply_cached(c),
            Msg::Pv(c) => self.apply_cached(c),
            Msg::Job(c) => self.apply_cached(c),
            Msg::CronJob(c) => self.apply_cached(c),
            Msg::Quota(c) => self.apply_cached(c),
        }
    }

    fn index_owner(&mut self, kind: Kind, key: &str, meta: &impl MetaView, add: bool) {
        if let Some(uid) = meta.uid() {
            if add {
                self.uids.insert(uid.to_string(), (kind, key.to_string()));
            } else {
                self.uids.remove(uid);
            }
        }
        for o in meta.owner_references() {
            let set = self.by_owner.entry(o.uid.clone()).or_default();
            if add {
                set.insert((kind, key.to_string()));
            } else {
                set.remove(&(kind, key.to_string()));
                if set.is_empty() {
                    self.by_owner.remove(&o.uid);
                }
            }
        }
    }

    fn owner_dirty(meta: &impl MetaView, out: &mut Vec<Dirty>) {
        for o in meta.owner_references() {
            out.push(Dirty::Owner(o.uid.clone()));
        }
    }

    /// Cache a workload-like object (from an informer or a controller's own write).
    pub fn apply_cached<K: Cached>(&mut self, change: Change<K>) -> Vec<Dirty> {
        let mut out = Vec::new();
        let (obj, deleted) = match change {
            Change::Upsert(o) => (o, false),
            Change::Delete(o) => (o, true),
        };
        let key = key_of(obj.metadata());
        if K::map(self).get(&key).is_some_and(|cur| stale(cur.metadata(), obj.metadata())) {
            return out;
        }
        let old = K::map(self).remove(&key);
        if let Some(old) = &old {
            let m = old.metadata().clone();
            self.index_owner(K::CACHE_KIND, &key, &m, false);
            Self::owner_dirty(&m, &mut out);
        }
        if deleted {
            let uid = obj.metadata().uid.clone().or_else(|| old.and_then(|o| o.metadata().uid.clone()));
            if let Some(uid) = uid {
                out.push(Dirty::Gone(uid));
            }
        } else {
            let m = obj.metadata().clone();
            self.index_owner(K::CACHE_KIND, &key, &m, true);
            Self::owner_dirty(&m, &mut out);
            K::map(self).insert(key.clone(), obj);
        }
        out.push(K::dirty(key));
        out
    }

    /// Recompute a node's place in the free-capacity index.
    pub fn rescore(&mut self, node: &str) {
        if let Some((old, kind)) = self.free_score.remove(node) {
            let entry = (-old, node.to_string());
            self.free.remove(&entry);
            if let Some(set) = self.free_by_kind.get_mut(&kind) {
                set.remove(&entry);
                if set.is_empty() {
                    self.free_by_kind.remove(&kind);
                }
            }
        }
        let Some(n) = self.nodes.get(node) else {
            self.allocatable.remove(node);
            return;
        };
        let alloc = crate::rules::resources::node_allocatable(n);
        self.allocatable.insert(node.to_string(), alloc);
        let used = self.requested.get(node).copied().unwrap_or_default();
        let score = crate::rules::fit::least_allocated_score(alloc, used);
        let kind = self.node_kind.get(node).copied().unwrap_or(u32::MAX);
        self.free_score.insert(node.to_string(), (score, kind));
        self.free.insert((-score, node.to_string()));
        self.free_by_kind.entry(kind).or_default().insert((-score, node.to_string()));
    }

    /// Count a pod on its node (or stop counting it): the node's pod set,
    /// its requested resources and its place in the scheduler's order.
    fn index_pod_on_node(&mut self, key: &str, pod: &CachedPod, add: bool) {
        let Some(n) = node_of(pod) else { return };
        if add {
            self.pods_by_node.entry(n.to_string()).or_default().insert(key.to_string());
        } else if let Some(set) = self.pods_by_node.get_mut(n) {
            set.remove(key);
        }
        if occupies(pod) {
            let r = self.requested.entry(n.to_string()).or_default();
            *r = if add { r.saturating_add(requests(pod)) } else { r.saturating_sub(requests(pod)) };
            self.rescore(n);
        }
    }

    /// File a pod under its namespace, and as an orphan when no controller owns it.
    fn index_pod_in_namespace(&mut self, key: &str, pod: &CachedPod, add: bool) {
        let Some(ns) = pod.metadata.namespace.as_deref() else { return };
        if add {
            self.pods_by_ns.entry(ns.to_string()).or_default().insert(key.to_string());
            if !has_controller(&pod.metadata) {
                self.orphans_by_ns.entry(ns.to_string()).or_default().insert(key.to_string());
            }
        } else {
            if let Some(set) = self.pods_by_ns.get_mut(ns) {
                set.remove(key);
            }
            if let Some(set) = self.orphans_by_ns.get_mut(ns) {
                set.remove(key);
            }
        }
    }

    /// Move a pod's index entries from `old` to `new` (either absent), touching
    /// only the indexes whose inputs changed: most pod changes are status
    /// writes that leave node, requests, namespace and owners as they were,
    /// and re-filing 150,000 keys in ordered sets per write is most of the
    /// cache's cost.
    fn reindex_pod(&mut self, key: &str, old: Option<&CachedPod>, new: Option<&CachedPod>) {
        self.refile(key, old, new, |o, n| o.spec == n.spec && occupies(o) == occupies(n), Self::index_pod_on_node);
        self.refile(
            key,
            old,
            new,
            |o, n| {
                o.metadata.namespace == n.metadata.namespace
                    && has_controller(&o.metadata) == has_controller(&n.metadata)
            },
            Self::index_pod_in_namespace,
        );
        self.refile(
            key,
            old,
            new,
            |o, n| o.metadata.uid == n.metadata.uid && o.metadata.owner_references == n.metadata.owner_references,
            |s, key, pod, add| s.index_owner(Kind::Pod, key, &pod.metadata, add),
        );
    }

    /// One index of [`State::reindex_pod`]: unless `same` says the entry
    /// stays as it is, take `old` out with `file` and put `new` in.
    fn refile(
        &mut self,
        key: &str,
        old: Option<&CachedPod>,
        new: Option<&CachedPod>,
        same: fn(&CachedPod, &CachedPod) -> bool,
        file: fn(&mut State, &str, &CachedPod, bool),
    ) {
        if matches!((old, new), (Some(o), Some(n)) if same(o, n)) {
            return;
        }
        if let Some(o) = old {
            file(self, key, o, false);
        }
        if let Some(n) = new {
            file(self, key, n, true);
        }
    }

    /// Cache a pod (from an informer or a controller's own write).
    pub fn apply_pod(&mut self, change: Change<CachedPod>) -> Vec<Dirty> {
        let mut out = Vec::new();
        let (obj, deleted) = match change {
            Change::Upsert(o) => (o, false),
            Change::Delete(o) => (o, true),
        };
        let key = key_of(&obj.metadata);
        if self.pods.get(&key).is_some_and(|cur| stale(&cur.metadata, &obj.metadata)) {
            return out;
        }
        let old = self.pods.remove(&key);
        self.reindex_pod(&key, old.as_deref(), (!deleted).then_some(&*obj));
        if let Some(old) = &old {
            Self::owner_dirty(&old.metadata, &mut out);
        }
        if let Some(ns) = obj.metadata.namespace.as_deref() {
            out.push(Dirty::QuotaNamespace(ns.to_string()));
            let labels = (!deleted).then_some(obj.metadata.labels.as_deref());
            self.track_pdb_members(ns, &key, labels, &mut out);
        }
        if deleted {
            let uid = obj.metadata.uid.clone().or_else(|| old.as_ref().and_then(|o| o.metadata.uid.clone()));
            if let Some(uid) = uid {
                out.push(Dirty::Gone(uid));
            }
            out.push(Dirty::Capacity);
        } else {
            Self::owner_dirty(&obj.metadata, &mut out);
            let freed = old.as_ref().is_some_and(|o| occupies(o) && !occupies(&obj));
            if freed {
                out.push(Dirty::Capacity);
            }
            self.pods.insert(key.clone(), obj);
        }
        out.push(Dirty::Pod(key));
        out
    }

    /// Keep the budgets' pod sets current for a pod that changed (`labels`:
    /// its labels now; `None` once deleted), marking the budgets it enters,
    /// leaves or stays in.
    fn track_pdb_members(
        &mut self,
        ns: &str,
        key: &str,
        labels: Option<Option<&BTreeMap<String, String>>>,
        out: &mut Vec<Dirty>,
    ) {
        let Some(budgets) = self.pdb_members.get_mut(ns) else { return };
        for (pdb, m) in budgets.iter_mut() {
            let selected = labels.is_some_and(|l| m.selector.matches_opt(l));
            let was = if selected { !m.pods.insert(key.to_string()) } else { m.pods.remove(key) };
            if selected || was {
                out.push(Dirty::PdbMember(pdb.clone()));
            }
        }
    }

    /// (Re)build a budget's pod set when it appears or its selector changes.
    fn index_pdb(&mut self, key: &str) {
        let Some((ns, _)) = key.split_once('/') else { return };
        let Some(pdb) = self.pdbs.get(key) else {
            if let Some(budgets) = self.pdb_members.get_mut(ns) {
                budgets.remove(key);
            }
            return;
        };
        let raw = pdb.spec.as_ref().and_then(|s| s.selector.clone());
        if self.pdb_members.get(ns).and_then(|b| b.get(key)).is_some_and(|m| m.raw == raw) {
            return;
        }
        let selector = match &raw {
            Some(sel) => super::replicaset::selector_of(sel),
            None => crate::selector::LabelSelector::nothing(),
        };
        let pods = self
            .pods_by_ns
            .get(ns)
            .into_iter()
            .flatten()
            .filter(|k| self.pods.get(*k).is_some_and(|p| selector.matches_opt(p.metadata.labels.as_deref())))
            .cloned()
            .collect();
        self.pdb_members.entry(ns.to_string()).or_default().insert(key.to_string(), PdbMembers { raw, selector, pods });
    }

    /// The pods a budget selects.
    pub fn pdb_pods(&self, key: &str) -> impl Iterator<Item = &Arc<CachedPod>> {
        let ns = key.split_once('/').map_or("", |(ns, _)| ns);
        self.pdb_members
            .get(ns)
            .and_then(|b| b.get(key))
            .into_iter()
            .flat_map(|m| &m.pods)
            .filter_map(|k| self.pods.get(k))
    }

    fn apply_node(&mut self, change: Change<Node>) -> Vec<Dirty> {
        match change {
            Change::Upsert(n) => {
                let name = n.metadata.name.clone().unwrap_or_default();
                if self.nodes.get(&name).is_some_and(|cur| stale(&cur.metadata, &n.metadata)) {
                    return Vec::new();
                }
                let signature = node_signature(&n);
                let next = u32::try_from(self.kind_ids.len()).unwrap_or(u32::MAX);
                let kind = *self.kind_ids.entry(signature).or_insert(next);
                self.node_kind.insert(name.clone(), kind);
                self.nodes.insert(name.clone(), n);
                self.rescore(&name);
                vec![Dirty::Node(name), Dirty::Capacity]
            }
            Change::Delete(n) => {
                let name = n.metadata.name.clone().unwrap_or_default();
                self.nodes.remove(&name);
                self.node_kind.remove(&name);
                self.rescore(&name);
                vec![Dirty::Node(name)]
            }
        }
    }

    /// Pods bound to `node`.
    pub fn pods_on(&self, node: &str) -> impl Iterator<Item = &Arc<CachedPod>> {
        self.pods_by_node.get(node).into_iter().flatten().filter_map(|k| self.pods.get(k))
    }

    /// Pods of a namespace.
    pub fn pods_in(&self, ns: &str) -> impl Iterator<Item = &Arc<CachedPod>> {
        self.pods_by_ns.get(ns).into_iter().flatten().filter_map(|k| self.pods.get(k))
    }

    /// Pods a controller with `uid` in `ns` may claim: its own and the
    /// namespace's orphans (never a scan of the whole namespace).
    pub fn claimable_pods(&self, ns: &str, uid: &str) -> Vec<Arc<CachedPod>> {
        let own = self.by_owner.get(uid).into_iter().flatten().filter(|(k, _)| *k == Kind::Pod).map(|(_, key)| key);
        let orphans = self.orphans_by_ns.get(ns).into_iter().flatten();
        let keys: BTreeSet<&String> = own.chain(orphans).collect();
        keys.into_iter().filter_map(|k| self.pods.get(k).cloned()).collect()
    }

    /// Cached dependents of the owner with `uid`.
    pub fn dependents(&self, uid: &str) -> Vec<(Kind, String)> {
        self.by_owner.get(uid).map(|s| s.iter().cloned().collect()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, app: &str) -> Change<CachedPod> {
        let v = serde_json::json!({"metadata": {"name": name, "namespace": "ns", "labels": {"app": app}}});
        Change::Upsert(Arc::new(serde_json::from_value(v).expect("a pod")))
    }

    fn pdb(app: &str) -> Change<PodDisruptionBudget> {
        let v = serde_json::json!({"metadata": {"name": "budget", "namespace": "ns"},
            "spec": {"selector": {"matchLabels": {"app": app}}}});
        Change::Upsert(Arc::new(serde_json::from_value(v).expect("a budget")))
    }

    fn members(s: &State) -> Vec<String> {
        s.pdb_pods("ns/budget").map(|p| p.metadata.name.clone().unwrap_or_default()).collect()
    }

    #[test]
    fn nodes_alike_but_for_their_name_are_of_one_kind() {
        let mut s = State::default();
        let node = |name: &str, pool: &str| {
            let v = serde_json::json!({"metadata": {"name": name,
                "labels": {"kubernetes.io/hostname": name, "pool": pool}}});
            Msg::Node(Change::Upsert(Arc::new(serde_json::from_value(v).expect("a node"))))
        };
        s.apply(node("a", "hot"));
        s.apply(node("b", "hot"));
        s.apply(node("c", "cold"));
        assert_eq!(s.node_kind["a"], s.node_kind["b"]);
        assert_ne!(s.node_kind["a"], s.node_kind["c"]);
        s.apply(node("b", "cold"));
        assert_eq!(s.node_kind["b"], s.node_kind["c"], "relabelled");
        // The free-capacity index per kind follows the relabelling.
        let pool =
            |node: &str| -> Vec<&str> { s.free_by_kind[&s.node_kind[node]].iter().map(|(_, n)| n.as_str()).collect() };
        assert_eq!(pool("a"), ["a"]);
        assert_eq!(pool("c"), ["b", "c"]);
        assert_eq!(s.free.len(), 3);
    }

    #[test]
    fn a_budget_knows_its_pods_as_they_come_go_and_change() {
        let mut s = State::default();
        s.apply(Msg::Pod(pod("a", "web")));
        s.apply(Msg::Pod(pod("b", "db")));
        s.apply(Msg::Pdb(pdb("web")));
        assert_eq!(members(&s), ["a"], "pods that were there before the budget");

        let dirty = s.apply(Msg::Pod(pod("c", "web")));
        assert_eq!(members(&s), ["a", "c"]);
        assert!(dirty.contains(&Dirty::PdbMember("ns/budget".into())), "{dirty:?}");
        let dirty = s.apply(Msg::Pod(pod("b", "cache")));
        assert!(!dirty.contains(&Dirty::PdbMember("ns/budget".into())), "a pod it never selected: {dirty:?}");

        let dirty = s.apply(Msg::Pod(pod("a", "db")));
        assert_eq!(members(&s), ["c"], "relabelled out");
        assert!(dirty.contains(&Dirty::PdbMember("ns/budget".into())), "the pod it lost: {dirty:?}");
        let Change::Upsert(c) = pod("c", "web") else { unreachable!() };
        s.apply(Msg::Pod(Change::Delete(c)));
        assert!(members(&s).is_empty(), "deleted");

        s.apply(Msg::Pdb(pdb("db")));
        assert_eq!(members(&s), ["a"], "a changed selector rebuilds the set");
        let Change::Upsert(b) = pdb("db") else { unreachable!() };
        s.apply(Msg::Pdb(Change::Delete(b)));
        assert!(members(&s).is_empty() && s.pdb_members.get("ns").is_some_and(BTreeMap::is_empty));
    }

    /// A pod's index entries follow what they are filed by: binding files it
    /// under its node with its requests, status writes leave the entries as
    /// they were, a terminal phase frees the requests, deletion removes it.
    #[test]
    fn pod_indexes_follow_binding_status_and_deletion() {
        let mut s = State::default();
        let pod = |rv: u64, node: Option<&str>, phase: Option<&str>| {
            let v = serde_json::json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u1", "resourceVersion": rv.to_string(),
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "rs-uid", "controller": true}]},
                "spec": {"nodeName": node, "containers": [{"name": "c", "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}}]},
                "status": {"phase": phase}});
            Arc::new(serde_json::from_value::<CachedPod>(v).expect("a pod"))
        };
        let on = |s: &State, n: &str| s.pods_on(n).count();
        let cpu = |s: &State, n: &str| s.requested.get(n).map_or(0, |r| r.cpu_milli);
        s.apply(Msg::Pod(Change::Upsert(pod(1, None, Some("Pending")))));
        assert_eq!((on(&s, "n1"), cpu(&s, "n1")), (0, 0));
        assert_eq!(s.pods_in("ns").count(), 1);
        assert!(s.by_owner.get("rs-uid").is_some_and(|d| d.contains(&(Kind::Pod, "ns/p".to_string()))));
        assert_eq!(s.uids.get("u1"), Some(&(Kind::Pod, "ns/p".to_string())));
        assert!(s.orphans_by_ns.get("ns").is_none_or(|o| o.is_empty()), "a pod with a controller is no orphan");

        s.apply(Msg::Pod(Change::Upsert(pod(2, Some("n1"), Some("Pending")))));
        assert_eq!((on(&s, "n1"), cpu(&s, "n1")), (1, 250));
        s.apply(Msg::Pod(Change::Upsert(pod(3, Some("n1"), Some("Running")))));
        assert_eq!((on(&s, "n1"), cpu(&s, "n1")), (1, 250), "a status write keeps the node's count and requests");
        assert_eq!(s.pods_in("ns").count(), 1);
        s.apply(Msg::Pod(Change::Upsert(pod(4, Some("n1"), Some("Succeeded")))));
        assert_eq!((on(&s, "n1"), cpu(&s, "n1")), (1, 0), "a finished pod stays on its node but frees its requests");

        s.apply(Msg::Pod(Change::Delete(pod(5, Some("n1"), Some("Succeeded")))));
        assert_eq!((on(&s, "n1"), cpu(&s, "n1")), (0, 0));
        assert_eq!(s.pods_in("ns").count(), 0);
        assert!(!s.by_owner.contains_key("rs-uid"));
        assert!(!s.uids.contains_key("u1"));
    }
}
