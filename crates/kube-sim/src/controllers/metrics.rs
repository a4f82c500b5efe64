//! metrics.k8s.io, computed at read time from each pod's usage profile — what
//! metrics-server would have scraped from the kubelets now. A container's usage
//! comes from (first that applies): a scenario timeline override for the pod
//! (a pod total, split across containers by their requests), the container's
//! own profile (`sim.kube-sim.io/cpu.<container>`), the pod's profile
//! (`sim.kube-sim.io/cpu`, split by requests), or else its requests. Only
//! running containers use anything. A node uses what its running pods use plus
//! its system overhead (`sim.kube-sim.io/system-cpu`/`-memory`). Nodes whose
//! kubelet is down report nothing, as an unreachable kubelet cannot be scraped.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;
use parking_lot::Mutex;
use serde_json::{Value, json};

use super::kubelet::{Behaviour, node_up};
use super::state::{Shared, State, node_of};
use crate::apiserver::ComputedResources;
use crate::cached_pod::CachedPod;
use crate::clock::Clock;
use crate::resources::ResourceInfo;
use crate::scenario::profile::Profile;

/// Usage in milli-units (millicores; milli-bytes for memory).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub cpu: i128,
    pub memory: i128,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, o: Usage) {
        self.cpu += o.cpu;
        self.memory += o.memory;
    }
}

#[derive(Debug)]
pub struct Metrics {
    state: Shared,
    clock: Clock,
    /// Parsed profiles by their text (annotations repeat across replicas).
    parsed: Mutex<HashMap<String, Option<Profile>>>,
}

const DEFAULT_SYSTEM_CPU: &str = "100m";
const DEFAULT_SYSTEM_MEMORY: &str = "256Mi";

fn request_milli(c: &crate::cached_pod::CachedContainer, resource: &str) -> i128 {
    c.resources
        .as_ref()
        .and_then(|r| {
            r.requests
                .as_ref()
                .and_then(|m| m.get(resource))
                .or_else(|| r.limits.as_ref().and_then(|m| m.get(resource)))
        })
        .and_then(|q| crate::quantity::parse_milli(&q.0).ok())
        .unwrap_or(0)
}

impl Metrics {
    pub fn new(state: Shared, clock: Clock) -> Self {
        Metrics { state, clock, parsed: Mutex::new(HashMap::new()) }
    }

    fn profile(&self, text: &str) -> Option<Profile> {
        let mut cache = self.parsed.lock();
        cache.entry(text.to_string()).or_insert_with(|| text.parse::<Profile>().ok()).clone()
    }

    fn annotation_profile(&self, pod: &CachedPod, key: &str) -> Option<Profile> {
        pod.metadata.annotations.as_ref().and_then(|a| a.get(key)).and_then(|t| self.profile(t))
    }

    /// The timeline override of a pod's total usage of `resource`, if any (the latest wins).
    fn override_profile(&self, state: &State, pod: &CachedPod, resource: &str) -> Option<Profile> {
        let ns = pod.metadata.namespace.as_deref();
        state.usage_overrides.iter().rev().find_map(|o| {
            let applies = o.namespace.as_deref().is_none_or(|n| Some(n) == ns)
                && o.selector.matches_opt(pod.metadata.labels.as_deref());
            match (applies, resource) {
                (false, _) => None,
                (true, "cpu") => o.cpu.clone(),
                (true, _) => o.memory.clone(),
            }
        })
    }

    /// Usage of every container of a pod (milli-units), by name.
    pub fn pod_usage(&self, state: &State, pod: &CachedPod, t: f64) -> Vec<(String, Usage)> {
        let Some(spec) = pod.spec.as_ref() else { return Vec::new() };
        let seed = state.settings.seed;
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        let mut out: Vec<(String, Usage)> =
            spec.containers.iter().map(|c| (c.name.clone(), Usage::default())).collect();
        for resource in ["cpu", "memory"] {
            let overridden = self.override_profile(state, pod, resource);
            let pod_level = self.annotation_profile(pod, &format!("sim.kube-sim.io/{resource}"));
            let requests: Vec<i128> = spec.containers.iter().map(|c| request_milli(c, resource)).collect();
            let sum: i128 = requests.iter().sum();
            // A pod total is shared by requests (equally when nothing is requested).
            let share = |p: &Profile, i: usize| {
                let whole = p.value_milli(t, seed, &format!("{uid}/{resource}"));
                if sum > 0 { whole * requests[i] / sum } else { whole / spec.containers.len().max(1) as i128 }
            };
            for (i, c) in spec.containers.iter().enumerate() {
                let active = running && Behaviour::of(pod, &c.name) == Behaviour::Run;
                let own = self.annotation_profile(pod, &format!("sim.kube-sim.io/{resource}.{}", c.name));
                let v = if !active {
                    0
                } else if let Some(p) = &overridden {
                    share(p, i)
                } else if let Some(p) = own {
                    p.value_milli(t, seed, &format!("{uid}/{}/{resource}", c.name))
                } else if let Some(p) = &pod_level {
                    share(p, i)
                } else {
                    requests[i]
                };
                match resource {
                    "cpu" => out[i].1.cpu = v.max(0),
                    _ => out[i].1.memory = v.max(0),
                }
            }
        }
        out
    }

    fn node_system(&self, node: &Node, state: &State, t: f64) -> Usage {
        let ann = |k: &str, d: &str| {
            node.metadata.annotations.as_ref().and_then(|a| a.get(k)).cloned().unwrap_or_else(|| d.to_string())
        };
        let name = node.metadata.name.clone().unwrap_or_default();
        let seed = state.settings.seed;
        let v = |text: String, what: &str| {
            self.profile(&text).map_or(0, |p| p.value_milli(t, seed, &format!("node/{name}/{what}")))
        };
        Usage {
            cpu: v(ann("sim.kube-sim.io/system-cpu", DEFAULT_SYSTEM_CPU), "cpu"),
            memory: v(ann("sim.kube-sim.io/system-memory", DEFAULT_SYSTEM_MEMORY), "memory"),
        }
    }

    fn t(&self) -> f64 {
        self.clock.elapsed().as_secs_f64()
    }
}

fn cpu_str(milli: i128) -> String {
    format!("{}n", milli.max(0) * 1_000_000)
}

fn mem_str(milli_bytes: i128) -> String {
    format!("{}Ki", milli_bytes.max(0) / 1000 / 1024)
}

impl ComputedResources for Metrics {
    fn list(&self, res: &ResourceInfo) -> Vec<Value> {
        let state = self.state.read();
        let t = self.t();
        let now = self.clock.now_rfc3339();
        match res.plural.as_str() {
            "pods" => state
                .pods
                .values()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .filter(|p| node_of(p).and_then(|n| state.nodes.get(n)).is_some_and(|n| node_up(n)))
                .map(|p| {
                    let containers: Vec<Value> = self
                        .pod_usage(&state, p, t)
                        .into_iter()
                        .map(|(name, u)| json!({"name": name, "usage": {"cpu": cpu_str(u.cpu), "memory": mem_str(u.memory)}}))
                        .collect();
                    json!({"kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
                        "metadata": {"name": p.metadata.name, "namespace": p.metadata.namespace, "labels": p.metadata.labels.as_deref(),
                                     "creationTimestamp": now},
                        "timestamp": now, "window": "15s", "containers": containers})
                })
                .collect(),
            "nodes" => state
                .nodes
                .values()
                .filter(|n| node_up(n))
                .map(|n| {
                    let name = n.metadata.name.clone().unwrap_or_default();
                    let mut u = self.node_system(n, &state, t);
                    for p in state.pods_on(&name) {
                        for (_, cu) in self.pod_usage(&state, p, t) {
                            u += cu;
                        }
                    }
                    json!({"kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
                        "metadata": {"name": name, "labels": n.metadata.labels, "creationTimestamp": now},
                        "timestamp": now, "window": "15s", "usage": {"cpu": cpu_str(u.cpu), "memory": mem_str(u.memory)}})
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// A container's memory usage in bytes now (for checkpoint archive sizes).
pub fn container_memory_bytes(metrics: &Arc<Metrics>, pod: &CachedPod, container: &str) -> i64 {
    let state = metrics.state.read();
    metrics
        .pod_usage(&state, pod, metrics.t())
        .into_iter()
        .find(|(n, _)| n == container)
        .map_or(0, |(_, u)| (u.memory / 1000).clamp(0, i64::MAX as i128) as i64)
}
