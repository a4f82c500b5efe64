//! The simulated default scheduler. Binds pods that name `default-scheduler`
//! and have no node, honouring node selectors, required node affinity, taints
//! and tolerations, `spec.unschedulable`, resource requests against
//! allocatable and the pod limit (the filter rules in `crate::rules::fit`),
//! preferring the least allocated node. A pod that fits nowhere gets
//! `PodScheduled=False` with reason `Unschedulable` and upstream's "0/N nodes
//! are available" message, and is retried whenever capacity may have appeared
//! (a node added or changed, a pod gone).
//!
//! Like upstream at scale (which scores only a sample of feasible nodes), it
//! looks at nodes from the most free down and picks the best of the first
//! feasible ones, instead of scoring every node for every pod.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::json;

use super::plane::Plane;
use super::state::{Dirty, Msg, node_of};
use crate::cached_pod::CachedPod;
use crate::rules;
use crate::rules::resources::Resources;

const SCHEDULER: &str = "default-scheduler";
/// Feasible nodes scored per pod before choosing.
const FEASIBLE_SAMPLE: usize = 16;
/// Unschedulable pods are tried again at least this often (simulated seconds),
/// whatever happens: a change that frees capacity can come before the failed
/// attempt is recorded (upstream flushes its unschedulable queue periodically too).
const UNSCHEDULABLE_RETRY: f64 = 15.0;
/// A failed bind is retried after this long (simulated seconds).
const BIND_RETRY: f64 = 1.0;

#[derive(Debug, Default)]
pub struct Queue {
    /// Pods that fit nowhere, retried when capacity may have appeared.
    pub unschedulable: BTreeSet<String>,
}

fn wants_scheduling(pod: &CachedPod) -> bool {
    let spec = pod.spec.as_ref();
    let ours = spec.and_then(|s| s.scheduler_name.as_deref()).is_none_or(|n| n == SCHEDULER);
    let gated = spec.and_then(|s| s.scheduling_gates.as_ref()).is_some_and(|g| !g.is_empty());
    ours && !gated
        && node_of(pod).is_none()
        && pod.metadata.deletion_timestamp.is_none()
        && !matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

pub fn on_pod(plane: &mut Plane, key: &str) {
    let Some(pod) = plane.pod(key) else {
        plane.scheduler.unschedulable.remove(key);
        return;
    };
    if !wants_scheduling(&pod) {
        plane.scheduler.unschedulable.remove(key);
        return;
    }
    if plane.scheduler.unschedulable.contains(key) {
        // Waits for a capacity change; nothing about it is new.
        return;
    }
    schedule(plane, key, &pod);
}

/// Capacity may have appeared: give every unschedulable pod another try.
pub fn retry_unschedulable(plane: &mut Plane) {
    let waiting = std::mem::take(&mut plane.scheduler.unschedulable);
    for k in waiting {
        plane.mark(Dirty::Pod(k));
    }
}

/// The best node for `pod`, or every node's reasons for not fitting.
fn choose(plane: &Plane, pod: &CachedPod) -> Result<String, String> {
    let state = plane.state.read();
    let want = super::state::requests(pod);
    let empty = crate::cached_pod::CachedPodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty);
    let mut feasible: Vec<(i64, String)> = Vec::new();
    let consider = |name: &String, feasible: &mut Vec<(i64, String)>| {
        let used = state.requested.get(name).copied().unwrap_or_default();
        let alloc = match state.allocatable.get(name) {
            Some(a) => *a,
            None => match state.nodes.get(name) {
                Some(node) => rules::resources::node_allocatable(node),
                None => return,
            },
        };
        if rules::fit::resources_fit(alloc, used, want) {
            feasible.push((rules::fit::least_allocated_score(alloc, used.saturating_add(want)), name.clone()));
        }
    };
    if rules::fit::depends_on_node_name(spec) {
        for (_, name) in state.free.iter() {
            if state.nodes.get(name).is_some_and(|node| rules::fit::node_admits(node, spec)) {
                consider(name, &mut feasible);
                if feasible.len() >= FEASIBLE_SAMPLE {
                    break;
                }
            }
        }
    } else {
        // Nodes of one kind admit the same pods: ask once per kind (at 5,000
        // nodes a pod that fits a small pool would otherwise test every node),
        // then sample each admitting kind from its most free node down.
        for set in state.free_by_kind.values() {
            let admits = set
                .first()
                .and_then(|(_, name)| state.nodes.get(name))
                .is_some_and(|node| rules::fit::node_admits(node, spec));
            if !admits {
                continue;
            }
            let before = feasible.len();
            for (_, name) in set {
                consider(name, &mut feasible);
                if feasible.len() - before >= FEASIBLE_SAMPLE {
                    break;
                }
            }
        }
    }
    if let Some((_, best)) = feasible.iter().max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(&a.1))) {
        return Ok(best.clone());
    }
    let reasons: Vec<(String, Vec<rules::fit::Unfit>)> = state
        .nodes
        .iter()
        .map(|(name, node)| {
            let used: Resources = state.requested.get(name).copied().unwrap_or_default();
            (name.clone(), rules::fit::check(node, used, pod))
        })
        .collect();
    Err(rules::fit::fit_error_message(state.nodes.len(), &reasons))
}

fn schedule(plane: &mut Plane, key: &str, pod: &Arc<CachedPod>) {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    match choose(plane, pod) {
        Ok(node) => {
            let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name, "namespace": ns},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
            match plane.api.bind_pod(&ns, &name, &binding, &Plane::opts(SCHEDULER)) {
                Ok(v) => {
                    // Bring the bound pod into the cache now, so the next pod sees the node's new load.
                    plane.write_through(v, Msg::Pod);
                    plane.event(
                        pod,
                        "Scheduled",
                        &format!("Successfully assigned {ns}/{name} to {node}"),
                        "Normal",
                        SCHEDULER,
                        "Binding",
                    );
                }
                Err(e) => {
                    plane.note("bind", key, &e);
                    plane.after(BIND_RETRY, Dirty::Pod(key.to_string()));
                }
            }
        }
        Err(message) => {
            plane.scheduler.unschedulable.insert(key.to_string());
            plane.after(UNSCHEDULABLE_RETRY, Dirty::Capacity);
            let already = pod.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "PodScheduled" && c.status == "False" && c.message.as_deref() == Some(&message))
            });
            if already {
                return;
            }
            let now = plane.now_rfc3339();
            let patch = json!({"status": {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": message, "lastProbeTime": null, "lastTransitionTime": now}]}});
            // Strategic merge keeps the pod's other conditions (conditions merge by type).
            let res = plane.api.res("", "pods");
            let body = serde_json::to_vec(&patch).unwrap_or_default();
            match plane.api.patch(
                &res,
                Some(&ns),
                &name,
                Some("status"),
                crate::apiserver::PatchType::Strategic,
                &body,
                &Plane::opts(SCHEDULER),
            ) {
                Ok(w) => {
                    plane.write_through(w.object, Msg::Pod);
                    plane.event(pod, "FailedScheduling", &message, "Warning", SCHEDULER, "Scheduling");
                }
                Err(e) => plane.note("unschedulable status", key, &e),
            }
        }
    }
}
