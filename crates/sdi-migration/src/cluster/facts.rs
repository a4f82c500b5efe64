//! Kubernetes objects reduced to the plain data `sdi-core` decides on.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use sdi_core::containers::{ContainerState, Observed, classify};
use sdi_core::fit::{NodeFacts, PodNeeds, Requirement, Resources, Taint, Toleration};
use sdi_core::quantity;
use sdi_core::strategy::Owner;

fn qty(
    map: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
    key: &str,
) -> Option<String> {
    map.and_then(|m| m.get(key)).map(|q| q.0.clone())
}

/// A pod's effective requests, as the scheduler counts them: the sum over
/// containers, or the largest init container if that is larger, plus overhead.
pub fn pod_requests(pod: &Pod) -> Resources {
    let Some(spec) = pod.spec.as_ref() else { return Resources { pods: 1, ..Default::default() } };
    let req = |c: &k8s_openapi::api::core::v1::Container| {
        let r = c.resources.as_ref().and_then(|r| r.requests.as_ref());
        (
            qty(r, "cpu").and_then(|q| quantity::cpu_millis(&q).ok()).unwrap_or(0),
            qty(r, "memory").and_then(|q| quantity::bytes(&q).ok()).unwrap_or(0),
        )
    };
    let (mut cpu, mut mem) = spec.containers.iter().map(req).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    for (c, m) in spec.init_containers.iter().flatten().map(req) {
        cpu = cpu.max(c);
        mem = mem.max(m);
    }
    let overhead = spec.overhead.as_ref();
    cpu += qty(overhead, "cpu").and_then(|q| quantity::cpu_millis(&q).ok()).unwrap_or(0);
    mem += qty(overhead, "memory").and_then(|q| quantity::bytes(&q).ok()).unwrap_or(0);
    Resources { cpu_m: cpu, mem_b: mem, pods: 1 }
}

/// Whether a pod still holds its node's resources (not Succeeded/Failed).
pub fn holds_resources(pod: &Pod) -> bool {
    !matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

pub fn pod_needs(pod: &Pod) -> PodNeeds {
    let spec = pod.spec.as_ref();
    let affinity_terms = spec
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| na.required_during_scheduling_ignored_during_execution.as_ref())
        .map(|sel| {
            sel.node_selector_terms
                .iter()
                .map(|t| {
                    let exprs = t.match_expressions.iter().flatten().map(|e| Requirement {
                        key: e.key.clone(),
                        operator: e.operator.clone(),
                        values: e.values.clone().unwrap_or_default(),
                        field: false,
                    });
                    let fields = t.match_fields.iter().flatten().map(|e| Requirement {
                        key: e.key.clone(),
                        operator: e.operator.clone(),
                        values: e.values.clone().unwrap_or_default(),
                        field: true,
                    });
                    exprs.chain(fields).collect()
                })
                .collect()
        })
        .unwrap_or_default();
    PodNeeds {
        requests: pod_requests(pod),
        node_selector: spec.and_then(|s| s.node_selector.clone()).unwrap_or_default(),
        affinity_terms,
        tolerations: spec
            .and_then(|s| s.tolerations.as_ref())
            .into_iter()
            .flatten()
            .map(|t| Toleration {
                key: t.key.clone().unwrap_or_default(),
                operator: t.operator.clone().unwrap_or_else(|| "Equal".into()),
                value: t.value.clone().unwrap_or_default(),
                effect: t.effect.clone().unwrap_or_default(),
            })
            .collect(),
    }
}

pub fn node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

/// A node as the fit check sees it; `requested` is filled by the caller from the pods bound to it.
pub fn node_facts(node: &Node, requested: Resources) -> NodeFacts {
    let alloc = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
    NodeFacts {
        name: node.metadata.name.clone().unwrap_or_default(),
        labels: node.metadata.labels.clone().unwrap_or_default(),
        ready: node_ready(node),
        unschedulable: node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false),
        taints: node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .into_iter()
            .flatten()
            .map(|t| Taint { key: t.key.clone(), value: t.value.clone().unwrap_or_default(), effect: t.effect.clone() })
            .collect(),
        allocatable: Resources {
            cpu_m: qty(alloc, "cpu").and_then(|q| quantity::cpu_millis(&q).ok()).unwrap_or(0),
            mem_b: qty(alloc, "memory").and_then(|q| quantity::bytes(&q).ok()).unwrap_or(0),
            pods: qty(alloc, "pods").and_then(|q| quantity::count(&q).ok()).unwrap_or(110),
        },
        requested,
    }
}

/// The pod's controller, from its `controller: true` ownerReference. The
/// ReplicaSet's own owner (a Deployment) is filled in by the caller when needed.
pub fn owner(pod: &Pod) -> Owner {
    let Some(r) = pod.metadata.owner_references.iter().flatten().find(|r| r.controller == Some(true)) else {
        return Owner::None;
    };
    match r.kind.as_str() {
        "ReplicaSet" => Owner::ReplicaSet { name: r.name.clone(), deployment: None },
        "StatefulSet" => Owner::StatefulSet { name: r.name.clone() },
        "DaemonSet" => Owner::DaemonSet { name: r.name.clone() },
        kind => Owner::Other { kind: kind.to_string(), name: r.name.clone() },
    }
}

/// Container states in spec order (seed 002 step 1).
pub fn container_states(pod: &Pod) -> Vec<ContainerState> {
    let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.as_ref());
    pod.spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| {
            let st = statuses.and_then(|ss| ss.iter().find(|s| s.name == c.name));
            let observed = match st.and_then(|s| s.state.as_ref()) {
                Some(s) if s.running.is_some() => Observed::Running,
                Some(s) if s.terminated.is_some() => {
                    Observed::Terminated { exit_code: s.terminated.as_ref().map(|t| t.exit_code).unwrap_or(0) }
                }
                Some(s) if s.waiting.is_some() => Observed::Waiting,
                _ => Observed::Unknown,
            };
            classify(&c.name, observed, st.map(|s| s.restart_count).unwrap_or(0))
        })
        .collect()
}

/// Ready condition True, not terminating.
pub fn pod_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .is_some_and(|c| c.status == "True")
}

pub fn pod_phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("Pending")
}

pub fn pod_node(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref())
}

/// Rollout finished: the controller saw the newest spec, and every replica is updated and ready.
pub fn rolled_out(d: &Deployment) -> bool {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(st) = d.status.as_ref() else { return false };
    st.observed_generation >= d.metadata.generation
        && st.updated_replicas.unwrap_or(0) == want
        && st.ready_replicas.unwrap_or(0) == want
        && st.replicas.unwrap_or(0) == want
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn requests_count_init_containers_and_overhead_as_upstream() {
        let p = pod(json!({"metadata":{"name":"p"},"spec":{
            "containers":[{"name":"a","resources":{"requests":{"cpu":"200m","memory":"100Mi"}}},
                          {"name":"b","resources":{"requests":{"cpu":"300m"}}}],
            "initContainers":[{"name":"i","resources":{"requests":{"cpu":"1","memory":"50Mi"}}}],
            "overhead":{"cpu":"10m"}}}));
        assert_eq!(pod_requests(&p), Resources { cpu_m: 1010, mem_b: 100 << 20, pods: 1 });
    }

    #[test]
    fn owners_and_states() {
        let p = pod(json!({"metadata":{"name":"p","ownerReferences":[
                {"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-1","uid":"u","controller":true}]},
            "spec":{"containers":[{"name":"a"},{"name":"b"},{"name":"c"}]},
            "status":{"containerStatuses":[
                {"name":"a","ready":true,"restartCount":1,"image":"i","imageID":"","state":{"running":{}}},
                {"name":"b","ready":false,"restartCount":0,"image":"i","imageID":"","state":{"terminated":{"exitCode":0}}}]}}));
        assert_eq!(owner(&p), Owner::ReplicaSet { name: "web-1".into(), deployment: None });
        let s = container_states(&p);
        assert_eq!(s.iter().map(|c| c.state.as_str()).collect::<Vec<_>>(), ["running", "completed", "unknown"]);
        assert_eq!(s[0].restart_count, 1);
    }
}
