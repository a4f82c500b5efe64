//! The DaemonSet controller, at a basic level: one pod on every node the
//! template may run on (node selector, required affinity, taints — with the
//! tolerations upstream adds to daemon pods), none elsewhere. Pods are placed
//! directly (`nodeName`) rather than through the scheduler's node-affinity
//! binding; rolling template updates are not simulated.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::DaemonSetStatus;
use k8s_openapi::api::core::v1::{Pod, Toleration};

use super::plane::Plane;
use super::replicaset::{controller_ref, pod_from_template};
use super::state::{Msg, node_of};
use crate::cached_pod::{CachedPod, MetaView};
use crate::rules;
use crate::rules::fit::Unfit;

const MANAGER: &str = "daemonset-controller";

/// Tolerations upstream's DaemonSet controller adds to every daemon pod.
fn daemon_tolerations() -> Vec<Toleration> {
    let t = |key: &str, effect: &str| Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(effect.into()),
        ..Toleration::default()
    };
    vec![
        t("node.kubernetes.io/not-ready", "NoExecute"),
        t("node.kubernetes.io/unreachable", "NoExecute"),
        t("node.kubernetes.io/disk-pressure", "NoSchedule"),
        t("node.kubernetes.io/memory-pressure", "NoSchedule"),
        t("node.kubernetes.io/pid-pressure", "NoSchedule"),
        t("node.kubernetes.io/unschedulable", "NoSchedule"),
    ]
}

pub fn reconcile(plane: &mut Plane, key: &str) {
    let Some(ds) = plane.state.read().daemonsets.get(key).cloned() else { return };
    if ds.metadata.deletion_timestamp.is_some() {
        super::gc::on_owner_deleting(plane, &ds.metadata, "apps/v1", "DaemonSet");
        return;
    }
    let Some(spec) = ds.spec.clone() else { return };
    let ns = ds.metadata.namespace.clone().unwrap_or_default();
    let uid = ds.metadata.uid.clone().unwrap_or_default();
    let mut template = spec.template.clone();
    if let Some(ps) = template.spec.as_mut() {
        let tol = ps.tolerations.get_or_insert_with(Vec::new);
        for t in daemon_tolerations() {
            if !tol.contains(&t) {
                tol.push(t);
            }
        }
    }
    let probe = pod_from_template(&template, &ns, "", controller_ref("apps/v1", "DaemonSet", &ds.metadata));
    let judged = match CachedPod::of(&probe) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(daemonset = %key, error = %e, "cannot judge the daemon set's pod template");
            return;
        }
    };
    let (eligible, mine): (BTreeSet<String>, BTreeMap<String, Vec<Arc<CachedPod>>>) = {
        let state = plane.state.read();
        let eligible = state
            .nodes
            .iter()
            .filter(|(_, n)| {
                rules::fit::check(n, Default::default(), &judged).iter().all(|u| {
                    matches!(
                        u,
                        Unfit::InsufficientCpu | Unfit::InsufficientMemory | Unfit::TooManyPods | Unfit::Unschedulable
                    )
                })
            })
            .map(|(name, _)| name.clone())
            .collect();
        let mut mine: BTreeMap<String, Vec<Arc<CachedPod>>> = BTreeMap::new();
        for p in state.claimable_pods(&ns, &uid) {
            if p.metadata.owner_references().iter().any(|o| o.uid == uid && o.controller == Some(true))
                && let Some(n) = node_of(&p)
            {
                mine.entry(n.to_string()).or_default().push(p.clone());
            }
        }
        (eligible, mine)
    };
    let dsname = ds.metadata.name.clone().unwrap_or_default();
    for node in &eligible {
        let live = mine.get(node).is_some_and(|ps| ps.iter().any(|p| rules::ranking::is_pod_active(p)));
        if !live {
            let mut pod = probe.clone();
            pod.metadata.generate_name = Some(format!("{dsname}-"));
            if let Some(ps) = pod.spec.as_mut() {
                ps.node_name = Some(node.clone());
            }
            if let Err(e) = plane.create(MANAGER, Some(&ns), &pod, Some(Msg::Pod)) {
                plane.note("create daemon pod", node, &e);
            }
        }
    }
    for (node, pods) in &mine {
        if !eligible.contains(node) {
            for p in pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
                let pname = p.metadata.name.clone().unwrap_or_default();
                if let Err(e) = plane.delete::<Pod>(Some(&ns), &pname, p.metadata.uid.as_deref(), None, None) {
                    plane.note("delete misplaced daemon pod", &pname, &e);
                }
            }
        }
    }
    let scheduled = mine
        .iter()
        .filter(|(n, ps)| eligible.contains(*n) && ps.iter().any(|p| rules::ranking::is_pod_active(p)))
        .count() as i32;
    let ready = mine
        .iter()
        .filter(|(n, ps)| eligible.contains(*n) && ps.iter().any(|p| rules::ranking::is_pod_ready(p)))
        .count() as i32;
    let status = DaemonSetStatus {
        desired_number_scheduled: eligible.len() as i32,
        current_number_scheduled: scheduled,
        number_ready: ready,
        number_available: (ready != 0).then_some(ready),
        number_unavailable: (eligible.len() as i32 - ready > 0).then_some(eligible.len() as i32 - ready),
        updated_number_scheduled: (scheduled != 0).then_some(scheduled),
        number_misscheduled: mine.keys().filter(|n| !eligible.contains(*n)).count() as i32,
        observed_generation: ds.metadata.generation,
        ..DaemonSetStatus::default()
    };
    if ds.status.as_ref() != Some(&status) {
        let mut n = (*ds).clone();
        n.status = Some(status);
        if let Err(e) = plane.replace(MANAGER, &n, true, Msg::DaemonSet) {
            plane.note("daemonset status", key, &e);
        }
    }
}
