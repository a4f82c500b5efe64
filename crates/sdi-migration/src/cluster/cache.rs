//! The cluster as the rebalancer sees it, kept current from watches (pods,
//! nodes, PodDisruptionBudgets) and a periodic read of metrics.k8s.io (which
//! cannot be watched). Objects are projected on arrival into `sdi-core`'s
//! compact views — names, requests, constraints interned per workload — never
//! kept whole (a client-go informer holds ~40 KiB per pod; this, well under 1 KiB).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use parking_lot::RwLock;
use sdi_core::fit::Resources;
use sdi_core::male;
use sdi_core::snapshot::{Constraints, NodeView, OwnerKind, Phase, PodView, Snapshot, Usage};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::facts;

/// A pod as cached: its view plus what the snapshot build and policy need.
#[derive(Debug, Clone)]
pub struct CachedPod {
    pub view: PodView,
    pub node_name: Option<Arc<str>>,
    pub labels: Arc<BTreeMap<String, String>>,
    pub containers: Arc<[Box<str>]>,
    pub owner_uid: Option<Arc<str>>,
    pub ready: bool,
}

#[derive(Debug, Clone)]
struct CachedPdb {
    selector: LabelSelector,
    disruptions_allowed: u32,
}

#[derive(Default)]
struct Inner {
    nodes: BTreeMap<String, NodeView>,
    /// By `namespace/name`.
    pods: HashMap<String, CachedPod>,
    /// By namespace, then name.
    pdbs: HashMap<String, HashMap<String, CachedPdb>>,
    pod_usage: HashMap<String, Usage>,
    interned_constraints: HashSet<Arc<Constraints>>,
    interned_labels: HashSet<Arc<BTreeMap<String, String>>>,
    interned_str: HashSet<Arc<str>>,
    interned_containers: HashSet<Arc<[Box<str>]>>,
}

fn intern<T: std::hash::Hash + Eq + ?Sized>(set: &mut HashSet<Arc<T>>, value: Arc<T>) -> Arc<T> {
    if let Some(v) = set.get(&value) {
        return v.clone();
    }
    set.insert(value.clone());
    value
}

pub struct ClusterCache {
    /// `RESOURCE_PRESSURE_THRESHOLD`: crossing it wakes the rebalancer early.
    threshold_pct: f64,
    inner: RwLock<Inner>,
    metrics_available: AtomicBool,
    /// Each watch has delivered its first full list.
    synced: [AtomicBool; 3],
    /// Signalled when a node newly crosses the pressure threshold.
    pub pressure_rose: tokio::sync::Notify,
}

impl std::fmt::Debug for ClusterCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCache").finish_non_exhaustive()
    }
}

fn annotation<'a>(p: &'a Pod, key: &str) -> Option<&'a str> {
    p.metadata.annotations.as_ref().and_then(|a| a.get(key)).map(String::as_str)
}

impl Inner {
    fn project(&mut self, p: &Pod) -> Option<(String, CachedPod)> {
        let ns = p.metadata.namespace.as_deref()?;
        let name = p.metadata.name.as_deref()?;
        let key = format!("{ns}/{name}");
        let needs = facts::pod_needs(p);
        let constraints = intern(
            &mut self.interned_constraints,
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
        let owner_name = controller.map(|r| intern(&mut self.interned_str, Arc::from(r.name.as_str())));
        let owner_uid = controller.map(|r| intern(&mut self.interned_str, Arc::from(r.uid.as_str())));
        let labels = intern(&mut self.interned_labels, Arc::new(p.metadata.labels.clone().unwrap_or_default()));
        let containers: Arc<[Box<str>]> =
            p.spec.iter().flat_map(|s| s.containers.iter()).map(|c| Box::from(c.name.as_str())).collect();
        let containers = intern(&mut self.interned_containers, containers);
        let label_or_annotation = |k: &str| annotation(p, k).or_else(|| labels.get(k).map(String::as_str));
        let male = male::parse_male(label_or_annotation);
        let view = PodView {
            namespace: intern(&mut self.interned_str, Arc::from(ns)),
            name: Box::from(name),
            node: None,
            phase: Phase::parse(facts::pod_phase(p)),
            requests: facts::pod_requests(p),
            usage: self.pod_usage.get(&key).copied(),
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
        let node_name = facts::pod_node(p).map(|n| intern(&mut self.interned_str, Arc::from(n)));
        Some((key, CachedPod { view, node_name, labels, containers, owner_uid, ready: facts::pod_ready(p) }))
    }
}

fn selector_matches(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = sel.match_labels.iter().flatten().all(|(k, v)| labels.get(k) == Some(v));
    let exprs_ok = sel.match_expressions.iter().flatten().all(|e| {
        let have = labels.get(&e.key);
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" => have.is_some_and(|h| values.contains(h)),
            "NotIn" => have.is_none_or(|h| !values.contains(h)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        }
    });
    labels_ok && exprs_ok
}

impl ClusterCache {
    pub fn new(threshold_pct: f64) -> Arc<ClusterCache> {
        Arc::new(ClusterCache {
            threshold_pct,
            inner: RwLock::default(),
            metrics_available: AtomicBool::default(),
            synced: Default::default(),
            pressure_rose: tokio::sync::Notify::new(),
        })
    }

    pub fn synced(&self) -> bool {
        self.synced.iter().all(|s| s.load(Ordering::Relaxed))
    }

    pub fn pod(&self, namespace: &str, name: &str) -> Option<CachedPod> {
        self.inner.read().pods.get(&format!("{namespace}/{name}")).cloned()
    }

    /// Other Ready pods of the same controller as `pod`.
    pub fn ready_siblings(&self, pod: &CachedPod) -> usize {
        let Some(owner) = pod.owner_uid.as_deref() else { return 0 };
        let g = self.inner.read();
        let ready =
            g.pods.values().filter(|p| p.owner_uid.as_deref() == Some(owner) && p.ready && !p.view.terminating).count();
        ready.saturating_sub(usize::from(pod.ready))
    }

    /// Project pods straight into the cache (benchmarks and tests; the watches
    /// do this in service).
    pub fn ingest(&self, pods: impl IntoIterator<Item = Pod>) {
        let mut g = self.inner.write();
        for p in pods {
            if let Some((k, v)) = g.project(&p) {
                g.pods.insert(k, v);
            }
        }
    }

    pub fn pods_cached(&self) -> usize {
        self.inner.read().pods.len()
    }

    /// Keep the cache current until `stop`: three watches and a metrics poll.
    pub fn spawn(self: &Arc<Self>, client: kube::Client, metrics_every: Duration, stop: CancellationToken) {
        let (c, cl, s) = (self.clone(), client.clone(), stop.clone());
        tokio::spawn(async move { c.watch_pods(Api::all(cl), s).await });
        let (c, cl, s) = (self.clone(), client.clone(), stop.clone());
        tokio::spawn(async move { c.watch_nodes(Api::all(cl), s).await });
        let (c, cl, s) = (self.clone(), client.clone(), stop.clone());
        tokio::spawn(async move { c.watch_pdbs(Api::all(cl), s).await });
        let c = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(metrics_every);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => c.poll_metrics(&client).await,
                }
            }
        });
    }

    async fn watch_pods(&self, api: Api<Pod>, stop: CancellationToken) {
        let mut stream = watcher(api, watcher::Config::default()).default_backoff().boxed();
        let mut relist: Option<HashMap<String, CachedPod>> = None;
        loop {
            let ev = tokio::select! {
                _ = stop.cancelled() => return,
                ev = stream.next() => match ev { Some(ev) => ev, None => return },
            };
            let mut g = self.inner.write();
            match ev {
                Ok(watcher::Event::Init) => relist = Some(HashMap::new()),
                Ok(watcher::Event::InitApply(p)) => {
                    if let (Some((k, v)), Some(r)) = (g.project(&p), relist.as_mut()) {
                        r.insert(k, v);
                    }
                }
                Ok(watcher::Event::InitDone) => {
                    if let Some(r) = relist.take() {
                        g.pods = r;
                    }
                    self.synced[0].store(true, Ordering::Relaxed);
                }
                Ok(watcher::Event::Apply(p)) => {
                    if let Some((k, v)) = g.project(&p) {
                        g.pods.insert(k, v);
                    }
                }
                Ok(watcher::Event::Delete(p)) => {
                    if let (Some(ns), Some(n)) = (p.metadata.namespace.as_deref(), p.metadata.name.as_deref()) {
                        g.pods.remove(&format!("{ns}/{n}"));
                    }
                }
                Err(e) => tracing::debug!(error = %e, "pod watch interrupted; resuming"),
            }
        }
    }

    async fn watch_nodes(&self, api: Api<Node>, stop: CancellationToken) {
        let mut stream = watcher(api, watcher::Config::default()).default_backoff().boxed();
        let mut relist: Option<BTreeMap<String, NodeView>> = None;
        loop {
            let ev = tokio::select! {
                _ = stop.cancelled() => return,
                ev = stream.next() => match ev { Some(ev) => ev, None => return },
            };
            let view = |n: &Node, old: Option<&NodeView>| NodeView {
                facts: facts::node_facts(n, Resources::default()),
                control_plane: n
                    .metadata
                    .labels
                    .as_ref()
                    .is_some_and(|l| l.contains_key("node-role.kubernetes.io/control-plane")),
                usage: old.and_then(|o| o.usage),
            };
            let mut g = self.inner.write();
            match ev {
                Ok(watcher::Event::Init) => relist = Some(BTreeMap::new()),
                Ok(watcher::Event::InitApply(n)) => {
                    let name = n.metadata.name.clone().unwrap_or_default();
                    let v = view(&n, g.nodes.get(&name));
                    if let Some(r) = relist.as_mut() {
                        r.insert(name, v);
                    }
                }
                Ok(watcher::Event::InitDone) => {
                    if let Some(r) = relist.take() {
                        g.nodes = r;
                    }
                    self.synced[1].store(true, Ordering::Relaxed);
                }
                Ok(watcher::Event::Apply(n)) => {
                    let name = n.metadata.name.clone().unwrap_or_default();
                    let v = view(&n, g.nodes.get(&name));
                    g.nodes.insert(name, v);
                }
                Ok(watcher::Event::Delete(n)) => {
                    g.nodes.remove(n.metadata.name.as_deref().unwrap_or_default());
                }
                Err(e) => tracing::debug!(error = %e, "node watch interrupted; resuming"),
            }
        }
    }

    async fn watch_pdbs(&self, api: Api<PodDisruptionBudget>, stop: CancellationToken) {
        let mut stream = watcher(api, watcher::Config::default()).default_backoff().boxed();
        let mut relist: Option<HashMap<String, HashMap<String, CachedPdb>>> = None;
        loop {
            let ev = tokio::select! {
                _ = stop.cancelled() => return,
                ev = stream.next() => match ev { Some(ev) => ev, None => return },
            };
            let project = |p: &PodDisruptionBudget| {
                let ns = p.metadata.namespace.clone().unwrap_or_default();
                let name = p.metadata.name.clone().unwrap_or_default();
                let pdb = CachedPdb {
                    selector: p.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default(),
                    disruptions_allowed: p
                        .status
                        .as_ref()
                        .map(|s| u32::try_from(s.disruptions_allowed).unwrap_or(0))
                        .unwrap_or(0),
                };
                (ns, name, pdb)
            };
            let mut g = self.inner.write();
            match ev {
                Ok(watcher::Event::Init) => relist = Some(HashMap::new()),
                Ok(watcher::Event::InitApply(p)) => {
                    let (ns, name, pdb) = project(&p);
                    if let Some(r) = relist.as_mut() {
                        r.entry(ns).or_default().insert(name, pdb);
                    }
                }
                Ok(watcher::Event::InitDone) => {
                    if let Some(r) = relist.take() {
                        g.pdbs = r;
                    }
                    self.synced[2].store(true, Ordering::Relaxed);
                }
                Ok(watcher::Event::Apply(p)) => {
                    let (ns, name, pdb) = project(&p);
                    g.pdbs.entry(ns).or_default().insert(name, pdb);
                }
                Ok(watcher::Event::Delete(p)) => {
                    let (ns, name, _) = project(&p);
                    if let Some(m) = g.pdbs.get_mut(&ns) {
                        m.remove(&name);
                    }
                }
                Err(e) => tracing::debug!(error = %e, "PDB watch interrupted; resuming"),
            }
        }
    }

    /// Node and pod usage from metrics.k8s.io (two LISTs: it cannot be watched).
    async fn poll_metrics(&self, client: &kube::Client) {
        let get = |path: &'static str| async move {
            let req = http::Request::get(path).body(Vec::new()).ok()?;
            client.request::<Value>(req).await.ok()
        };
        let (Some(nodes), Some(pods)) =
            (get("/apis/metrics.k8s.io/v1beta1/nodes").await, get("/apis/metrics.k8s.io/v1beta1/pods").await)
        else {
            if self.metrics_available.swap(false, Ordering::Relaxed) {
                tracing::warn!("metrics.k8s.io does not answer; pressure falls back to requests (PRESSURE_BASIS=auto)");
            }
            return;
        };
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
        for n in nodes["items"].as_array().into_iter().flatten() {
            let Some(name) = n["metadata"]["name"].as_str() else { continue };
            let u = usage(&n["usage"]);
            if let (Some(view), Some(u)) = (g.nodes.get_mut(name), u) {
                let before = view.usage;
                view.usage = Some(u);
                let t = self.threshold_pct;
                let over = |u: Option<Usage>, a: Resources| {
                    u.is_some_and(|u| {
                        (a.cpu_m > 0 && u.cpu_m as f64 * 100.0 > a.cpu_m as f64 * t)
                            || (a.mem_b > 0 && u.mem_b as f64 * 100.0 > a.mem_b as f64 * t)
                    })
                };
                if !view.control_plane && over(Some(u), view.facts.allocatable) && !over(before, view.facts.allocatable)
                {
                    newly_pressured = true;
                }
            }
        }
        for (k, p) in g.pods.iter_mut() {
            p.view.usage = pod_usage.get(k).copied();
        }
        g.pod_usage = pod_usage;
        drop(g);
        if !self.metrics_available.swap(true, Ordering::Relaxed) {
            tracing::info!("metrics.k8s.io answers; usage is measured");
        }
        if newly_pressured {
            self.pressure_rose.notify_one();
        }
    }

    /// A consistent snapshot for one planning cycle: nodes by name, pods by key,
    /// requested sums, Ready siblings per controller and PDB allowances.
    pub fn snapshot(&self) -> Snapshot {
        let g = self.inner.read();
        let nodes: Vec<NodeView> = g.nodes.values().cloned().collect();
        let index: HashMap<&str, u32> =
            g.nodes.keys().enumerate().map(|(i, k)| (k.as_str(), u32::try_from(i).unwrap_or(u32::MAX))).collect();
        let mut ready_by_owner: HashMap<&str, u16> = HashMap::new();
        for p in g.pods.values() {
            if let (Some(o), true) = (p.owner_uid.as_deref(), p.ready && !p.view.terminating) {
                *ready_by_owner.entry(o).or_default() += 1;
            }
        }
        // Sorted by (namespace, name): deterministic, and binary-searchable.
        let mut keys: Vec<(&str, &str, &String)> =
            g.pods.iter().map(|(k, p)| (&*p.view.namespace, &*p.view.name, k)).collect();
        keys.sort_unstable();
        let mut pods = Vec::with_capacity(keys.len());
        for (_, _, k) in keys {
            let Some(c) = g.pods.get(k) else { continue };
            let mut v = c.view.clone();
            v.node = c.node_name.as_deref().and_then(|n| index.get(n).copied());
            v.ready_siblings = c
                .owner_uid
                .as_deref()
                .and_then(|o| ready_by_owner.get(o))
                .map_or(0, |n| n.saturating_sub(u16::from(c.ready)));
            v.disruptions_allowed = g
                .pdbs
                .get(&*v.namespace)
                .into_iter()
                .flat_map(|m| m.values())
                .filter(|pdb| selector_matches(&pdb.selector, &c.labels))
                .map(|pdb| pdb.disruptions_allowed)
                .min();
            pods.push(v);
        }
        let mut s = Snapshot { nodes, pods, metrics_available: self.metrics_available.load(Ordering::Relaxed) };
        s.recompute_requested();
        s
    }
}
