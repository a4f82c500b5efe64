//! Nodes: what each node's kubelet posts (conditions, addresses, node info,
//! capacity defaults, a Lease heartbeat in `kube-node-lease`), and what the
//! node lifecycle controller does when a kubelet stops posting: conditions go
//! `Unknown`, the `node.kubernetes.io/unreachable` taints are added, the
//! node's pods are marked not Ready, and pods that do not tolerate the
//! NoExecute taint (for longer than their `tolerationSeconds`) are deleted.
//!
//! A node's kubelet is "down" while the node carries the annotation
//! `sim.kube-sim.io/ready: "false"` (set by a scenario's `nodeFailure`, or by
//! hand with `kubectl annotate node N sim.kube-sim.io/ready=false`).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeAddress, NodeCondition, NodeSystemInfo, Pod, Taint};

use crate::cached_pod::CachedPod;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use serde_json::json;

use super::kubelet::node_up;
use super::plane::Plane;
use super::state::{Dirty, Msg};

const MANAGER: &str = "kubelet";
const LIFECYCLE: &str = "node-lifecycle-controller";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const KUBELET_VERSION: &str = "v1.32.13";

/// Internal IP of a node, stable for its name (10.0.x.y).
fn internal_ip(name: &str) -> String {
    let h = name.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    format!("10.0.{}.{}", (h >> 8) % 250, (h % 250) + 2)
}

fn conditions(up: bool, now: &str, old: Option<&Vec<NodeCondition>>) -> Vec<NodeCondition> {
    let t = crate::clock::parse_time(now).map(Time);
    let list: [(&str, &str, &str, &str); 4] = if up {
        [
            ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ]
    } else {
        let m = "Kubelet stopped posting node status.";
        [
            ("MemoryPressure", "Unknown", "NodeStatusUnknown", m),
            ("DiskPressure", "Unknown", "NodeStatusUnknown", m),
            ("PIDPressure", "Unknown", "NodeStatusUnknown", m),
            ("Ready", "Unknown", "NodeStatusUnknown", m),
        ]
    };
    list.iter()
        .map(|(ty, status, reason, message)| {
            let prev = old.and_then(|cs| cs.iter().find(|c| c.type_ == *ty));
            let same = prev.is_some_and(|c| c.status == *status);
            NodeCondition {
                type_: ty.to_string(),
                status: status.to_string(),
                reason: Some(reason.to_string()),
                message: Some(message.to_string()),
                last_heartbeat_time: if same && !up {
                    prev.and_then(|c| c.last_heartbeat_time.clone())
                } else {
                    t.clone()
                },
                last_transition_time: if same { prev.and_then(|c| c.last_transition_time.clone()) } else { t.clone() },
            }
        })
        .collect()
}

/// The node status this node's kubelet (or, when it is down, the lifecycle
/// controller) would post; `None` when the current one is already right.
fn desired(node: &Node, up: bool, now: &str) -> Option<Node> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let mut n = node.clone();
    let status = n.status.get_or_insert_with(Default::default);
    let old_conditions = status.conditions.clone();
    let same_conditions = old_conditions.as_ref().is_some_and(|cs| {
        let want = if up { [("Ready", "True")] } else { [("Ready", "Unknown")] };
        want.iter().all(|(t, s)| cs.iter().any(|c| c.type_ == *t && c.status == *s)) && cs.len() >= 4
    });
    let mut changed = false;
    if !same_conditions {
        status.conditions = Some(conditions(up, now, old_conditions.as_ref()));
        changed = true;
    }
    if status.addresses.as_ref().is_none_or(Vec::is_empty) {
        status.addresses = Some(vec![
            NodeAddress { type_: "InternalIP".into(), address: internal_ip(&name) },
            NodeAddress { type_: "Hostname".into(), address: name.clone() },
        ]);
        changed = true;
    }
    let info = status.node_info.get_or_insert_with(NodeSystemInfo::default);
    if info.kubelet_version.is_empty() {
        let uid = node.metadata.uid.clone().unwrap_or_default().replace('-', "");
        *info = NodeSystemInfo {
            architecture: "amd64".into(),
            boot_id: uid.clone(),
            container_runtime_version: "containerd://1.7.22".into(),
            kernel_version: "6.1.0-kube-sim".into(),
            kube_proxy_version: String::new(),
            kubelet_version: KUBELET_VERSION.into(),
            machine_id: uid.clone(),
            operating_system: "linux".into(),
            os_image: "kube-sim simulated node".into(),
            system_uuid: uid,
            ..NodeSystemInfo::default()
        };
        changed = true;
    }
    let cap = status.capacity.get_or_insert_with(BTreeMap::new);
    for (k, v) in [("cpu", "4"), ("memory", "8Gi"), ("pods", "110"), ("ephemeral-storage", "100Gi")] {
        if !cap.contains_key(k) {
            cap.insert(k.into(), Quantity(v.into()));
            changed = true;
        }
    }
    if status.allocatable.is_none() {
        status.allocatable = status.capacity.clone();
        changed = true;
    }
    if let Some(de) = status.daemon_endpoints.as_mut()
        && de.kubelet_endpoint.as_ref().is_none_or(|e| e.port == 0)
    {
        de.kubelet_endpoint = Some(k8s_openapi::api::core::v1::DaemonEndpoint { port: 10250 });
        changed = true;
    }
    changed.then_some(n)
}

pub fn reconcile(plane: &mut Plane, name: &str) {
    let Some(node) = plane.node(name) else {
        plane.heartbeats.remove(name);
        return;
    };
    let up = node_up(&node);
    let now = plane.now_rfc3339();
    if let Some(n) = desired(&node, up, &now)
        && let Err(e) = plane.replace(if up { MANAGER } else { LIFECYCLE }, &n, true, Msg::Node)
    {
        plane.note("node status", name, &e);
        return;
    }
    set_unreachable_taints(plane, name, !up);
    if up {
        heartbeat(plane, name);
    } else {
        lifecycle_for_down_node(plane, name);
    }
}

fn set_unreachable_taints(plane: &mut Plane, name: &str, want: bool) {
    let Some(node) = plane.node(name) else { return };
    let taints: Vec<Taint> = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    let has = taints.iter().any(|t| t.key == UNREACHABLE);
    if has == want {
        return;
    }
    let mut new: Vec<Taint> = taints.into_iter().filter(|t| t.key != UNREACHABLE).collect();
    if want {
        let now = Some(Time(plane.api.clock.now()));
        for effect in ["NoSchedule", "NoExecute"] {
            new.push(Taint { key: UNREACHABLE.into(), effect: effect.into(), time_added: now.clone(), value: None });
        }
    }
    let patch = json!({"spec": {"taints": new}});
    if let Err(e) = plane.patch::<Node>(LIFECYCLE, None, name, false, &patch, Some(Msg::Node)) {
        plane.note("node taints", name, &e);
    }
}

/// Renew the node's Lease every heartbeat period (simulated time).
fn heartbeat(plane: &mut Plane, name: &str) {
    let period = plane.state.read().settings.heartbeat_seconds;
    let now = plane.now();
    let due = plane.heartbeats.get(name).is_none_or(|last| now >= *last + Duration::from_secs_f64(period));
    if !due {
        return;
    }
    plane.heartbeats.insert(name.to_string(), now);
    plane.after(period, Dirty::Node(name.to_string()));
    let renew = MicroTime(plane.api.clock.now());
    let leases = plane.api.res("coordination.k8s.io", "leases");
    let exists = plane.api.get(&leases, Some("kube-node-lease"), name).is_ok();
    let result = if exists {
        let patch = json!({"spec": {"renewTime": renew, "holderIdentity": name}});
        plane.patch::<Lease>(MANAGER, Some("kube-node-lease"), name, false, &patch, None).map(|_| ())
    } else {
        let lease: Lease =
            match serde_json::from_value(json!({"metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": renew}}))
            {
                Ok(l) => l,
                Err(_) => return,
            };
        plane.create(MANAGER, Some("kube-node-lease"), &lease, None).map(|_| ())
    };
    if let Err(e) = result {
        plane.note("node lease", name, &e);
    }
}

/// Pods on a node whose kubelet is down: mark them not Ready, and delete those
/// whose toleration of the NoExecute unreachable taint has run out.
fn lifecycle_for_down_node(plane: &mut Plane, name: &str) {
    let Some(node) = plane.node(name) else { return };
    let since = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .and_then(|ts| ts.iter().find(|t| t.key == UNREACHABLE && t.effect == "NoExecute"))
        .and_then(|t| t.time_added.clone())
        .map(|t| t.0)
        .unwrap_or_else(|| plane.api.clock.now());
    let pods: Vec<std::sync::Arc<CachedPod>> = plane.state.read().pods_on(name).cloned().collect();
    let now_wall = plane.api.clock.now();
    let now_str = plane.now_rfc3339();
    for pod in pods {
        let key = super::state::key_of(&pod.metadata);
        let ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if ready {
            let mut conditions: Vec<_> =
                pod.status.iter().flat_map(|s| s.conditions.iter().flatten()).map(|c| c.to_full()).collect();
            for c in conditions.iter_mut().filter(|c| c.type_ == "Ready" || c.type_ == "ContainersReady") {
                c.status = "False".into();
                c.reason = Some("NodeNotReady".into());
                c.last_transition_time = crate::clock::parse_time(&now_str).map(Time);
            }
            let status = k8s_openapi::api::core::v1::PodStatus { conditions: Some(conditions), ..Default::default() };
            if let Err(e) = plane.merge_pod_status(LIFECYCLE, &pod, &status) {
                plane.note("mark pod not ready", &key, &e);
            }
        }
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let evict_after = match unreachable_toleration(&pod) {
            Toleration::Forever => continue,
            Toleration::For(s) => s,
            Toleration::No => 0,
        };
        let due = since.checked_add(jiff::SignedDuration::from_secs(evict_after)).unwrap_or(since);
        if now_wall >= due {
            let (ns, pname) = (pod.metadata.namespace.clone(), pod.metadata.name.clone().unwrap_or_default());
            if let Err(e) = plane.delete::<Pod>(ns.as_deref(), &pname, pod.metadata.uid.as_deref(), None, None) {
                plane.note("taint eviction", &key, &e);
            }
        } else {
            let wait = due.duration_since(now_wall).as_secs_f64().max(0.0);
            plane.after(wait, Dirty::Node(name.to_string()));
        }
    }
}

enum Toleration {
    No,
    For(i64),
    Forever,
}

/// How long a pod tolerates the NoExecute unreachable taint (the longest of
/// its matching tolerations; one without `tolerationSeconds` is forever).
fn unreachable_toleration(pod: &CachedPod) -> Toleration {
    let mut best = Toleration::No;
    for t in pod.spec.iter().flat_map(|s| s.tolerations.as_deref().unwrap_or_default()) {
        let effect_ok = t.effect.as_deref().is_none_or(|e| e.is_empty() || e == "NoExecute");
        let key_ok = t.key.as_deref() == Some(UNREACHABLE)
            || (t.key.as_deref().is_none_or(str::is_empty) && t.operator.as_deref() == Some("Exists"));
        if !(effect_ok && key_ok) {
            continue;
        }
        best = match (best, t.toleration_seconds) {
            (_, None) => return Toleration::Forever,
            (Toleration::For(a), Some(b)) => Toleration::For(a.max(b)),
            (_, Some(b)) => Toleration::For(b),
        };
    }
    best
}
