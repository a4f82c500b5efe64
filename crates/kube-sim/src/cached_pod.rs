//! A pod as the simulated control plane caches it: the fields its controllers
//! and rules read, and nothing else. `k8s-openapi`'s `Pod` carries every field
//! of the API (one `Container` is 2,120 bytes before any of its strings); at
//! 150,000 pods the cache of full pods was the simulator's largest cost in
//! memory, and decoding every pod change into one a large part of its time.
//!
//! The field names and shapes follow `k8s-openapi`'s, so code reads a cached
//! pod as it would read a `Pod`. The cache is read-only: a controller writes a
//! pod through the API (a patch, the status subresource, a binding), never by
//! sending a cached pod back, which is why nothing here serializes.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Affinity, PodSchedulingGate, Toleration};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use serde::{Deserialize, Deserializer};

/// A cached pod. Decodes from the API's JSON of a pod; unknown fields and
/// `metadata.managedFields` are skipped while decoding, not built and dropped.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct CachedPod {
    #[serde(default)]
    pub metadata: PodMeta,
    #[serde(default)]
    pub spec: Option<CachedPodSpec>,
    #[serde(default)]
    pub status: Option<CachedPodStatus>,
}

/// What the controllers read of a pod's status. The kubelet, the node
/// lifecycle controller and the scheduler write the fields they own and the
/// API server keeps the rest ([`crate::apiserver::ApiServer::merge_status`]),
/// so nothing written by others needs to be cached to survive their writes.
/// (`PodStatus` with one `ContainerStatus` took 1.9 KiB of every cached pod.)
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CachedPodStatus {
    pub phase: Option<Word>,
    #[serde(deserialize_with = "some_exact")]
    pub conditions: Option<Vec<CachedPodCondition>>,
    #[serde(deserialize_with = "some_exact")]
    pub container_statuses: Option<Vec<CachedContainerStatus>>,
    pub start_time: Option<Time>,
    #[serde(rename = "podIP")]
    pub pod_ip: Option<String>,
}

/// A pod condition: `PodCondition` without `lastProbeTime` and `observedGeneration`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CachedPodCondition {
    #[serde(rename = "type")]
    pub type_: Word,
    pub status: Word,
    pub last_transition_time: Option<Time>,
    pub reason: Option<Box<str>>,
    pub message: Option<Box<str>>,
}

impl CachedPodCondition {
    /// The condition to write back.
    pub fn to_full(&self) -> k8s_openapi::api::core::v1::PodCondition {
        k8s_openapi::api::core::v1::PodCondition {
            type_: self.type_.to_string(),
            status: self.status.to_string(),
            last_transition_time: self.last_transition_time.clone(),
            reason: self.reason.as_deref().map(str::to_string),
            message: self.message.as_deref().map(str::to_string),
            ..Default::default()
        }
    }
}

/// A container's status as far as the controllers read it: its restarts,
/// readiness, and since when it runs (`state.running.startedAt`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(from = "ContainerStatusWire")]
pub struct CachedContainerStatus {
    pub name: Box<str>,
    pub ready: bool,
    pub restart_count: i32,
    /// Whether it runs (`state.running` is set).
    pub running: bool,
    /// When it started running (`state.running.startedAt`).
    pub started_at: Option<Time>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ContainerStatusWire {
    name: String,
    ready: bool,
    restart_count: i32,
    state: Option<StateWire>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StateWire {
    running: Option<RunningWire>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RunningWire {
    started_at: Option<Time>,
}

impl From<ContainerStatusWire> for CachedContainerStatus {
    fn from(w: ContainerStatusWire) -> Self {
        let running = w.state.and_then(|s| s.running);
        CachedContainerStatus {
            name: w.name.into(),
            ready: w.ready,
            restart_count: w.restart_count,
            running: running.is_some(),
            started_at: running.and_then(|r| r.started_at),
        }
    }
}

/// A string of a small vocabulary (phases, condition types and statuses):
/// the words the API defines are static, so most cost no allocation.
#[derive(Clone, PartialEq, Eq)]
pub enum Word {
    Known(&'static str),
    Other(Box<str>),
}

impl Word {
    const KNOWN: &'static [&'static str] = &[
        "True",
        "False",
        "Unknown",
        "Ready",
        "ContainersReady",
        "Initialized",
        "PodScheduled",
        "PodReadyToStartContainers",
        "DisruptionTarget",
        "Pending",
        "Running",
        "Succeeded",
        "Failed",
    ];

    pub fn as_str(&self) -> &str {
        match self {
            Word::Known(s) => s,
            Word::Other(s) => s,
        }
    }
}

impl Default for Word {
    fn default() -> Self {
        Word::Known("")
    }
}

impl std::ops::Deref for Word {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for Word {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

impl std::fmt::Display for Word {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for Word {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Word {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl From<&str> for Word {
    fn from(s: &str) -> Self {
        match Word::KNOWN.iter().find(|k| **k == s) {
            Some(k) => Word::Known(k),
            None => Word::Other(s.into()),
        }
    }
}

impl<'de> Deserialize<'de> for Word {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Word;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Word, E> {
                Ok(Word::from(s))
            }
        }
        d.deserialize_str(Visit)
    }
}

/// What the scheduler, the kubelets and the workload controllers read of a pod's spec.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CachedPodSpec {
    pub node_name: Option<String>,
    pub node_selector: Option<SortedMap<String>>,
    pub affinity: Option<Box<Affinity>>,
    /// Shared with the pods that have equal ones (see [`shared_tolerations`]).
    #[serde(deserialize_with = "shared_tolerations")]
    pub tolerations: Option<Arc<[Toleration]>>,
    /// Shared with the pods that have equal ones, as tolerations are.
    #[serde(deserialize_with = "shared_containers")]
    pub containers: Arc<[CachedContainer]>,
    #[serde(deserialize_with = "some_exact")]
    pub init_containers: Option<Vec<CachedContainer>>,
    pub overhead: Option<BTreeMap<String, Quantity>>,
    pub priority: Option<i32>,
    /// Pod-level requests and limits (`PodLevelResources`).
    pub resources: Option<CachedResources>,
    pub restart_policy: Option<String>,
    pub scheduler_name: Option<String>,
    pub scheduling_gates: Option<Vec<PodSchedulingGate>>,
}

/// What the control plane reads of a container: its identity, image and resources.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CachedContainer {
    pub name: String,
    pub image: Option<String>,
    pub resources: Option<CachedResources>,
    /// `Always` on an init container: a sidecar.
    pub restart_policy: Option<String>,
}

/// Requests and limits, as `ResourceRequirements` has them (its `claims` are
/// not read here).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct CachedResources {
    pub requests: Option<SortedMap<Quantity>>,
    pub limits: Option<SortedMap<Quantity>>,
}

/// A small string-keyed map in one exact-size allocation, sorted by key: a
/// container's requests and limits, a pod's node selector (a few entries
/// each). A `BTreeMap` node holds room for eleven: 544 bytes for `{cpu,
/// memory}`, in every cached pod.
#[derive(Debug, Clone, PartialEq)]
pub struct SortedMap<V>(Box<[(Box<str>, V)]>);

impl<V> Default for SortedMap<V> {
    fn default() -> Self {
        SortedMap(Box::default())
    }
}

impl<V> SortedMap<V> {
    pub fn get(&self, key: &str) -> Option<&V> {
        self.0.binary_search_by(|(k, _)| (**k).cmp(key)).ok().map(|i| &self.0[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.0.iter().map(|(k, v)| (&**k, v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Into<Box<str>>, V> FromIterator<(K, V)> for SortedMap<V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let mut v: Vec<(Box<str>, V)> = pairs.into_iter().map(|(k, v)| (k.into(), v)).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.dedup_by(|a, b| a.0 == b.0);
        SortedMap(v.into_boxed_slice())
    }
}

impl<V> From<BTreeMap<String, V>> for SortedMap<V> {
    fn from(m: BTreeMap<String, V>) -> Self {
        m.into_iter().collect()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for SortedMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        BTreeMap::<String, V>::deserialize(d).map(SortedMap::from)
    }
}

impl CachedPod {
    /// The cached form of a full pod (a pod not written yet, e.g. a daemon
    /// set's template judged against nodes).
    pub fn of(pod: &k8s_openapi::api::core::v1::Pod) -> Result<CachedPod, serde_json::Error> {
        serde_json::to_value(pod).and_then(serde_json::from_value)
    }
}

impl k8s_openapi::Resource for CachedPod {
    const API_VERSION: &'static str = <k8s_openapi::api::core::v1::Pod as k8s_openapi::Resource>::API_VERSION;
    const GROUP: &'static str = <k8s_openapi::api::core::v1::Pod as k8s_openapi::Resource>::GROUP;
    const KIND: &'static str = <k8s_openapi::api::core::v1::Pod as k8s_openapi::Resource>::KIND;
    const VERSION: &'static str = <k8s_openapi::api::core::v1::Pod as k8s_openapi::Resource>::VERSION;
    const URL_PATH_SEGMENT: &'static str = <k8s_openapi::api::core::v1::Pod as k8s_openapi::Resource>::URL_PATH_SEGMENT;
    type Scope = k8s_openapi::NamespaceResourceScope;
}

impl k8s_openapi::Metadata for CachedPod {
    type Ty = PodMeta;
    fn metadata(&self) -> &PodMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut PodMeta {
        &mut self.metadata
    }
}

/// A cached pod's metadata: `ObjectMeta`'s fields the controllers read, with
/// the same names, without `managedFields` (a third of a stored pod, read by
/// no controller). Labels, annotations and owner references are shared
/// between the pods that have equal ones ([`Interner`]): a ReplicaSet's pods
/// differ in name and uid, not in these, and as maps in every pod they took
/// 1.5 KiB of each.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodMeta {
    #[serde(deserialize_with = "shared_map")]
    pub annotations: Option<Arc<BTreeMap<String, String>>>,
    pub creation_timestamp: Option<Time>,
    pub deletion_grace_period_seconds: Option<i64>,
    pub deletion_timestamp: Option<Time>,
    pub finalizers: Option<Vec<String>>,
    pub generate_name: Option<String>,
    pub generation: Option<i64>,
    #[serde(deserialize_with = "shared_map")]
    pub labels: Option<Arc<BTreeMap<String, String>>>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    #[serde(deserialize_with = "shared_owner_references")]
    pub owner_references: Option<Arc<[OwnerReference]>>,
    pub resource_version: Option<String>,
    pub uid: Option<String>,
}

impl PodMeta {
    /// The `ObjectMeta` of these fields (for code shared with other kinds).
    pub fn to_object_meta(&self) -> ObjectMeta {
        ObjectMeta {
            annotations: self.annotations.as_deref().cloned(),
            creation_timestamp: self.creation_timestamp.clone(),
            deletion_grace_period_seconds: self.deletion_grace_period_seconds,
            deletion_timestamp: self.deletion_timestamp.clone(),
            finalizers: self.finalizers.clone(),
            generate_name: self.generate_name.clone(),
            generation: self.generation,
            labels: self.labels.as_deref().cloned(),
            managed_fields: None,
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            owner_references: self.owner_references.as_deref().map(<[_]>::to_vec),
            resource_version: self.resource_version.clone(),
            self_link: None,
            uid: self.uid.clone(),
        }
    }
}

/// What the control plane's cache reads of an object's metadata, whether the
/// full `ObjectMeta` (most kinds) or a cached pod's [`PodMeta`].
pub trait MetaView {
    fn name(&self) -> Option<&str>;
    fn namespace(&self) -> Option<&str>;
    fn uid(&self) -> Option<&str>;
    fn resource_version(&self) -> Option<&str>;
    fn owner_references(&self) -> &[OwnerReference];
    fn labels(&self) -> Option<&BTreeMap<String, String>>;
    fn finalizers(&self) -> &[String];
    fn deleting(&self) -> bool;
    /// Drop the field ownership records, which no controller reads.
    fn forget_field_ownership(&mut self);
}

/// The accessors `ObjectMeta` and [`PodMeta`] share: their fields have the
/// same names and read the same way.
macro_rules! shared_meta_accessors {
    () => {
        fn name(&self) -> Option<&str> {
            self.name.as_deref()
        }
        fn namespace(&self) -> Option<&str> {
            self.namespace.as_deref()
        }
        fn uid(&self) -> Option<&str> {
            self.uid.as_deref()
        }
        fn resource_version(&self) -> Option<&str> {
            self.resource_version.as_deref()
        }
        fn owner_references(&self) -> &[OwnerReference] {
            self.owner_references.as_deref().unwrap_or_default()
        }
        fn finalizers(&self) -> &[String] {
            self.finalizers.as_deref().unwrap_or_default()
        }
        fn deleting(&self) -> bool {
            self.deletion_timestamp.is_some()
        }
    };
}

impl MetaView for ObjectMeta {
    shared_meta_accessors!();
    fn labels(&self) -> Option<&BTreeMap<String, String>> {
        self.labels.as_ref()
    }
    fn forget_field_ownership(&mut self) {
        self.managed_fields = None;
    }
}

impl MetaView for PodMeta {
    shared_meta_accessors!();
    fn labels(&self) -> Option<&BTreeMap<String, String>> {
        self.labels.as_deref()
    }
    /// Never decoded (see [`PodMeta`]).
    fn forget_field_ownership(&mut self) {}
}

/// Values many cached pods hold equal (a template's labels, its containers),
/// kept once: the first decoded is handed out again for every equal one after
/// it. A value no pod holds any more is forgotten when the table has doubled
/// since it was last pruned, so the table stays bounded by what is in use.
struct Interner<T: ?Sized> {
    by_hash: std::collections::HashMap<u64, Arc<T>>,
    pruned_at: usize,
}

impl<T: ?Sized + PartialEq> Interner<T> {
    fn new() -> Self {
        Interner { by_hash: std::collections::HashMap::new(), pruned_at: 0 }
    }

    /// The kept value equal to `value` (whose hash is `hash`), or `value` kept.
    fn share<V: std::borrow::Borrow<T> + Into<Arc<T>>>(&mut self, hash: u64, value: V) -> Arc<T> {
        if let Some(kept) = self.by_hash.get(&hash).filter(|k| ***k == *value.borrow()) {
            return kept.clone();
        }
        if self.by_hash.len() >= 2 * self.pruned_at.max(512) {
            self.by_hash.retain(|_, v| Arc::strong_count(v) > 1);
            self.pruned_at = self.by_hash.len();
        }
        // An unequal value of the same hash is replaced: it is only unshared.
        let kept = value.into();
        self.by_hash.insert(hash, kept.clone());
        kept
    }
}

fn hash_of(parts: impl IntoIterator<Item = impl std::hash::Hash>) -> u64 {
    use std::hash::Hasher;
    let mut h = std::hash::DefaultHasher::new();
    for p in parts {
        p.hash(&mut h);
    }
    h.finish()
}

/// A list in an allocation of its length. A decoded list grows by doubling
/// from four: one container status (752 bytes) would sit in room for four, in
/// every cached pod.
fn fit<T>(v: Vec<T>) -> Vec<T> {
    if v.capacity() == v.len() {
        return v;
    }
    let mut exact = Vec::with_capacity(v.len());
    exact.extend(v);
    exact
}

fn some_exact<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Vec<T>>, D::Error> {
    Option::<Vec<T>>::deserialize(d).map(|v| v.map(fit))
}

thread_local! {
    static MAPS: std::cell::RefCell<Interner<BTreeMap<String, String>>> = std::cell::RefCell::new(Interner::new());
    static OWNERS: std::cell::RefCell<Interner<[OwnerReference]>> = std::cell::RefCell::new(Interner::new());
    static TOLERATIONS: std::cell::RefCell<Interner<[Toleration]>> = std::cell::RefCell::new(Interner::new());
    static CONTAINERS: std::cell::RefCell<Interner<[CachedContainer]>> = std::cell::RefCell::new(Interner::new());
}

/// Labels or annotations, shared with every pod this thread decoded with equal ones.
fn shared_map<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Arc<BTreeMap<String, String>>>, D::Error> {
    let Some(m) = Option::<BTreeMap<String, String>>::deserialize(d)? else { return Ok(None) };
    Ok(Some(MAPS.with_borrow_mut(|i| i.share(hash_of([&m]), m))))
}

/// Owner references, shared like labels (a ReplicaSet's pods have one owner).
fn shared_owner_references<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Arc<[OwnerReference]>>, D::Error> {
    let Some(v) = Option::<Vec<OwnerReference>>::deserialize(d)? else { return Ok(None) };
    let hash = hash_of(v.iter().map(|o| (&o.uid, &o.name, &o.kind)));
    Ok(Some(OWNERS.with_borrow_mut(|i| i.share(hash, v))))
}

/// A pod's containers, shared like labels: a ReplicaSet's pods have the same
/// names, images and resources.
fn shared_containers<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<[CachedContainer]>, D::Error> {
    let v = Vec::<CachedContainer>::deserialize(d)?;
    let hash = hash_of(v.iter().map(|c| (&c.name, &c.image)));
    Ok(CONTAINERS.with_borrow_mut(|i| i.share(hash, v)))
}

/// Tolerations, shared like labels (nearly every pod has the default
/// `not-ready`/`unreachable` pair, about 380 bytes).
fn shared_tolerations<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Arc<[Toleration]>>, D::Error> {
    let Some(v) = Option::<Vec<Toleration>>::deserialize(d)? else { return Ok(None) };
    let hash = hash_of(v.iter().map(|t| (&t.key, &t.operator, &t.value, &t.effect)));
    Ok(Some(TOLERATIONS.with_borrow_mut(|i| i.share(hash, v))))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recorded pod decodes with what the controllers read, without field ownership.
    #[test]
    fn a_recorded_pod_keeps_what_the_controllers_read() {
        let path =
            format!("{}/../../testdata/k8s-reference/v1.32/deployment-pods-list.json", env!("CARGO_MANIFEST_DIR"));
        let list: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut item = list["items"][0].clone();
        item["metadata"]["annotations"] = serde_json::json!({"example.com/note": "kept"});
        item["metadata"]["managedFields"] = serde_json::json!([{"manager": "kube-controller-manager",
            "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {}}}}]);
        let pod: CachedPod = serde_json::from_value(item.clone()).unwrap();
        assert_eq!(pod.metadata.name.as_deref(), item["metadata"]["name"].as_str());
        assert_eq!(pod.metadata.uid.as_deref(), item["metadata"]["uid"].as_str());
        assert_eq!(pod.metadata.owner_references().len(), 1);
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), item["spec"]["nodeName"].as_str());
        assert_eq!(spec.containers[0].name, item["spec"]["containers"][0]["name"].as_str().unwrap());
        assert_eq!(spec.containers[0].image.as_deref(), item["spec"]["containers"][0]["image"].as_str());
        assert_eq!(spec.tolerations.as_deref().map(<[_]>::len), item["spec"]["tolerations"].as_array().map(Vec::len));
        assert_eq!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), item["status"]["phase"].as_str());
        // Lists sit in allocations of their length (decoding grows them by doubling).
        let status = pod.status.as_ref().unwrap();
        let statuses = status.container_statuses.as_ref().unwrap();
        assert_eq!(statuses.capacity(), statuses.len());
        let conditions = status.conditions.as_ref().unwrap();
        assert!(conditions.len() > 1 && conditions.capacity() == conditions.len());
        // Equal tolerations decoded one after the other are one allocation.
        let again: CachedPod = serde_json::from_value(item.clone()).unwrap();
        let shared = |p: &CachedPod| p.spec.as_ref().and_then(|s| s.tolerations.clone()).unwrap();
        assert!(Arc::ptr_eq(&shared(&pod), &shared(&again)));
        let mut other = item.clone();
        other["spec"]["tolerations"] = serde_json::json!([{"key": "gpu", "operator": "Exists"}]);
        let other: CachedPod = serde_json::from_value(other).unwrap();
        assert!(!Arc::ptr_eq(&shared(&pod), &shared(&other)));
        assert_eq!(shared(&other)[0].key.as_deref(), Some("gpu"));
        // So are equal containers.
        let containers = |p: &CachedPod| p.spec.as_ref().map(|s| s.containers.clone()).unwrap();
        assert!(Arc::ptr_eq(&containers(&pod), &containers(&again)));
        let mut renamed = item.clone();
        renamed["spec"]["containers"][0]["image"] = serde_json::json!("example.com/other:1");
        let renamed: CachedPod = serde_json::from_value(renamed).unwrap();
        assert!(!Arc::ptr_eq(&containers(&pod), &containers(&renamed)));
        assert_eq!(containers(&renamed)[0].image.as_deref(), Some("example.com/other:1"));
        // Labels, annotations and owners are shared between pods with equal ones,
        // also when pods of other templates come between them.
        let mut stranger = item.clone();
        stranger["metadata"]["labels"] = serde_json::json!({"app": "other"});
        stranger["metadata"]["annotations"] = serde_json::json!({"note": "other"});
        stranger["metadata"]["ownerReferences"][0]["uid"] = serde_json::json!("another-owner");
        let stranger: CachedPod = serde_json::from_value(stranger).unwrap();
        let third: CachedPod = serde_json::from_value(item.clone()).unwrap();
        let labels = |p: &CachedPod| p.metadata.labels.clone().unwrap();
        let annotations = |p: &CachedPod| p.metadata.annotations.clone().unwrap();
        let owners = |p: &CachedPod| p.metadata.owner_references.clone().unwrap();
        assert!(Arc::ptr_eq(&labels(&pod), &labels(&third)));
        assert!(Arc::ptr_eq(&annotations(&pod), &annotations(&third)));
        assert!(Arc::ptr_eq(&owners(&pod), &owners(&third)));
        assert_eq!(labels(&stranger).get("app").map(String::as_str), Some("other"));
        assert_eq!(annotations(&stranger).get("note").map(String::as_str), Some("other"));
        assert_eq!(owners(&stranger)[0].uid, "another-owner");
        assert_eq!(labels(&third).get("app"), item["metadata"]["labels"]["app"].as_str().map(str::to_string).as_ref());
        // The same bytes decode to the same pod (the informer decodes from the stored bytes).
        let bytes = serde_json::to_vec(&item).unwrap();
        assert_eq!(serde_json::from_slice::<CachedPod>(&bytes).unwrap(), pod);
    }

    /// Requests, limits and node selectors read as the maps they were, from
    /// one exact-size allocation each.
    #[test]
    fn small_maps_keep_their_entries_sorted() {
        let pod: CachedPod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"nodeSelector": {"zone": "b", "disk": "ssd"},
                     "containers": [{"name": "c", "resources": {"requests": {"memory": "64Mi", "cpu": "100m"},
                                                                 "limits": {"cpu": "1"}}}]}}))
        .unwrap();
        let spec = pod.spec.unwrap();
        let r = spec.containers[0].resources.as_ref().unwrap();
        let requests = r.requests.as_ref().unwrap();
        assert_eq!(requests.get("cpu").map(|q| q.0.as_str()), Some("100m"));
        assert_eq!(requests.get("memory").map(|q| q.0.as_str()), Some("64Mi"));
        assert!(!requests.contains_key("storage"));
        assert_eq!(requests.len(), 2);
        assert_eq!(r.limits.as_ref().and_then(|l| l.get("cpu")).map(|q| q.0.as_str()), Some("1"));
        let selector = spec.node_selector.unwrap();
        assert_eq!(selector.iter().collect::<Vec<_>>(), [("disk", &"ssd".to_string()), ("zone", &"b".to_string())]);
        let dup: SortedMap<u8> = [("b", 1), ("a", 2), ("b", 3)].into_iter().collect();
        assert_eq!(dup.iter().collect::<Vec<_>>(), [("a", &2), ("b", &1)], "sorted, the first of a key kept");
    }

    /// A cached pod is several times smaller than the full type.
    #[test]
    fn a_cached_pod_is_smaller_than_the_full_type() {
        assert!(std::mem::size_of::<CachedPodSpec>() * 3 < std::mem::size_of::<k8s_openapi::api::core::v1::PodSpec>());
        assert!(
            std::mem::size_of::<CachedContainer>() * 8 < std::mem::size_of::<k8s_openapi::api::core::v1::Container>()
        );
    }
}
