//! The disruption controller: keeps each PodDisruptionBudget's status
//! (`expectedPods`, `desiredHealthy`, `currentHealthy`, `disruptionsAllowed`,
//! `disruptedPods`, the `DisruptionAllowed` condition) current from the pods it
//! selects and, for percentages and `maxUnavailable`, the scale of their
//! controllers — which is what the Eviction subresource checks.

use std::sync::Arc;

use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use super::plane::Plane;
use super::state::{Dirty, Msg, State};
use crate::cached_pod::{CachedPod, MetaView};
use crate::rules;

const MANAGER: &str = "disruption-controller";

/// Sum of the scales of the controllers of `pods` (a ReplicaSet owned by a
/// Deployment counts as the Deployment, as upstream's finders do).
fn controller_scale(state: &State, pods: &[&Arc<CachedPod>]) -> i32 {
    let mut seen = std::collections::BTreeSet::new();
    let mut total = 0;
    for p in pods {
        let Some(r) = p.metadata.owner_references().iter().find(|r| r.controller == Some(true)) else {
            continue;
        };
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        let key = format!("{ns}/{}", r.name);
        let (uid, scale) = match r.kind.as_str() {
            "ReplicaSet" => match state.replicasets.get(&key) {
                Some(rs) => {
                    let parent = rs
                        .metadata
                        .owner_references
                        .iter()
                        .flatten()
                        .find(|o| o.controller == Some(true) && o.kind == "Deployment");
                    match parent.and_then(|o| state.deployments.get(&format!("{ns}/{}", o.name))) {
                        Some(d) => (d.metadata.uid.clone(), d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)),
                        None => (rs.metadata.uid.clone(), rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)),
                    }
                }
                None => continue,
            },
            "StatefulSet" => match state.statefulsets.get(&key) {
                Some(s) => (s.metadata.uid.clone(), s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)),
                None => continue,
            },
            _ => continue,
        };
        if seen.insert(uid) {
            total += scale;
        }
    }
    total
}

pub fn reconcile(plane: &mut Plane, key: &str) {
    let Some(pdb) = plane.state.read().pdbs.get(key).cloned() else { return };
    let now = plane.api.clock.now();
    let status = {
        let state = plane.state.read();
        let pods: Vec<&Arc<CachedPod>> = state.pdb_pods(key).collect();
        let scale = rules::disruption::needs_controller_scale(&pdb).then(|| controller_scale(&state, &pods));
        rules::disruption::pdb_status(&rules::disruption::PdbInput {
            pdb: &pdb,
            pods: pods.iter().map(|p| p.as_ref()).collect(),
            controller_scale: scale,
            now,
        })
    };
    if !status.disrupted_pods.as_ref().is_none_or(|d| d.is_empty()) {
        // Recorded evictions expire; look again then.
        plane.after(30.0, Dirty::Pdb(key.to_string()));
    }
    let strip = |s: &k8s_openapi::api::policy::v1::PodDisruptionBudgetStatus| {
        let mut s = s.clone();
        for c in s.conditions.iter_mut().flatten() {
            c.last_transition_time = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH);
        }
        s
    };
    if pdb.status.as_ref().is_some_and(|old| strip(old) == strip(&status)) {
        return;
    }
    let mut new: PodDisruptionBudget = (*pdb).clone();
    new.status = Some(status);
    if let Err(e) = plane.replace(MANAGER, &new, true, Msg::Pdb) {
        plane.note("pdb status", key, &e);
    }
}
