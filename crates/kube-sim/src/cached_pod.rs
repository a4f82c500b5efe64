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

use k8s_openapi::api::core::v1::{Affinity, PodSchedulingGate, PodStatus, Toleration};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use serde::{Deserialize, Deserializer};

/// A cached pod. Decodes from the API's JSON of a pod; unknown fields and
/// `metadata.managedFields` are skipped while decoding, not built and dropped.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct CachedPod {
    #[serde(default, deserialize_with = "meta_without_field_ownership")]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Option<CachedPodSpec>,
    #[serde(default, deserialize_with = "status_exact")]
    pub status: Option<PodStatus>,
}

/// What the scheduler, the kubelets and the workload controllers read of a pod's spec.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CachedPodSpec {
    pub node_name: Option<String>,
    pub node_selector: Option<SortedMap<String>>,
    pub affinity: Option<Box<Affinity>>,
    /// Shared with the pod decoded before it when equal (see [`shared_tolerations`]).
    #[serde(deserialize_with = "shared_tolerations")]
    pub tolerations: Option<Arc<[Toleration]>>,
    /// Shared with the pod decoded before it when equal, as tolerations are.
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
    type Ty = ObjectMeta;
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// `ObjectMeta` without `managedFields` (and the long-gone `selfLink`): the
/// ownership record is a third of a stored pod and no controller reads it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[derive(Default)]
struct MetaWire {
    annotations: Option<BTreeMap<String, String>>,
    creation_timestamp: Option<Time>,
    deletion_grace_period_seconds: Option<i64>,
    deletion_timestamp: Option<Time>,
    finalizers: Option<Vec<String>>,
    generate_name: Option<String>,
    generation: Option<i64>,
    labels: Option<BTreeMap<String, String>>,
    name: Option<String>,
    namespace: Option<String>,
    #[serde(deserialize_with = "some_exact")]
    owner_references: Option<Vec<OwnerReference>>,
    resource_version: Option<String>,
    uid: Option<String>,
}

fn meta_without_field_ownership<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    let m = MetaWire::deserialize(d)?;
    Ok(ObjectMeta {
        annotations: m.annotations,
        creation_timestamp: m.creation_timestamp,
        deletion_grace_period_seconds: m.deletion_grace_period_seconds,
        deletion_timestamp: m.deletion_timestamp,
        finalizers: m.finalizers,
        generate_name: m.generate_name,
        generation: m.generation,
        labels: m.labels,
        managed_fields: None,
        name: m.name,
        namespace: m.namespace,
        owner_references: m.owner_references,
        resource_version: m.resource_version,
        self_link: None,
        uid: m.uid,
    })
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
    static LAST_TOLERATIONS: std::cell::RefCell<Option<Arc<[Toleration]>>> = const { std::cell::RefCell::new(None) };
    static LAST_CONTAINERS: std::cell::RefCell<Option<Arc<[CachedContainer]>>> = const { std::cell::RefCell::new(None) };
}

/// `value`, or the equal one `last` holds (which then holds `value` otherwise).
fn share_last<T: PartialEq>(last: &mut Option<Arc<[T]>>, value: Vec<T>) -> Arc<[T]> {
    match last {
        Some(l) if **l == *value => l.clone(),
        _ => last.insert(Arc::from(value)).clone(),
    }
}

/// A pod's containers, shared like its tolerations: a ReplicaSet's pods
/// have the same names, images and resources.
fn shared_containers<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<[CachedContainer]>, D::Error> {
    let v = Vec::<CachedContainer>::deserialize(d)?;
    Ok(LAST_CONTAINERS.with_borrow_mut(|last| share_last(last, v)))
}

/// Tolerations shared with the last pod this thread decoded when they are
/// equal. Pods arrive in runs of one template (a ReplicaSet's, every pod's
/// default `not-ready`/`unreachable` pair), so one remembered value shares
/// nearly all of them (two tolerations take about 380 bytes), and the memory
/// for it stays bounded.
fn shared_tolerations<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Arc<[Toleration]>>, D::Error> {
    let Some(v) = Option::<Vec<Toleration>>::deserialize(d)? else { return Ok(None) };
    Ok(Some(LAST_TOLERATIONS.with_borrow_mut(|last| share_last(last, v))))
}

fn status_exact<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PodStatus>, D::Error> {
    let Some(mut s) = Option::<PodStatus>::deserialize(d)? else { return Ok(None) };
    s.conditions = s.conditions.map(fit);
    s.container_statuses = s.container_statuses.map(fit);
    s.init_container_statuses = s.init_container_statuses.map(fit);
    s.host_ips = s.host_ips.map(fit);
    s.pod_ips = s.pod_ips.map(fit);
    Ok(Some(s))
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
        item["metadata"]["managedFields"] = serde_json::json!([{"manager": "kube-controller-manager",
            "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {}}}}]);
        let pod: CachedPod = serde_json::from_value(item.clone()).unwrap();
        assert_eq!(pod.metadata.name.as_deref(), item["metadata"]["name"].as_str());
        assert_eq!(pod.metadata.uid.as_deref(), item["metadata"]["uid"].as_str());
        assert!(pod.metadata.managed_fields.is_none());
        assert_eq!(pod.metadata.owner_references.as_ref().map(Vec::len), Some(1));
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
