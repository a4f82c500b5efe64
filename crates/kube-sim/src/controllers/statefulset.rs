//! The StatefulSet controller, at a basic level: pods named `<set>-<ordinal>`,
//! created in order and one at a time (each waits for the previous to be
//! Running and Ready) under `OrderedReady`, all at once under `Parallel`;
//! scaled down from the highest ordinal; a deleted pod is recreated with the
//! same name; `volumeClaimTemplates` become per-pod claims
//! `<template>-<set>-<ordinal>`. Rolling template updates are not simulated.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::plane::Plane;
use super::replicaset::{controller_ref, pod_from_template};
use super::state::Msg;
use crate::cached_pod::{CachedPod, MetaView};
use crate::rules;

const MANAGER: &str = "statefulset-controller";

fn ordinal(set: &str, pod: &str) -> Option<usize> {
    pod.strip_prefix(set)?.strip_prefix('-')?.parse().ok()
}

pub fn reconcile(plane: &mut Plane, key: &str) {
    let Some(sts) = plane.state.read().statefulsets.get(key).cloned() else { return };
    if sts.metadata.deletion_timestamp.is_some() {
        super::gc::on_owner_deleting(plane, &sts.metadata, "apps/v1", "StatefulSet");
        return;
    }
    let Some(spec) = sts.spec.clone() else { return };
    let ns = sts.metadata.namespace.clone().unwrap_or_default();
    let name = sts.metadata.name.clone().unwrap_or_default();
    let uid = sts.metadata.uid.clone().unwrap_or_default();
    let want = spec.replicas.unwrap_or(1).max(0) as usize;
    let parallel = spec.pod_management_policy.as_deref() == Some("Parallel");
    let mut pods: BTreeMap<usize, Arc<CachedPod>> = BTreeMap::new();
    for p in plane.state.read().claimable_pods(&ns, &uid) {
        let owned = p.metadata.owner_references().iter().any(|o| o.uid == uid && o.controller == Some(true));
        if let (true, Some(i)) = (owned, ordinal(&name, p.metadata.name.as_deref().unwrap_or_default())) {
            pods.insert(i, p);
        }
    }
    let revision = format!("{name}-{}", rules::ranking::pod_template_hash(&spec.template, None));
    // Scale up: the lowest missing ordinal first.
    for i in 0..want {
        if pods.contains_key(&i) {
            let p = &pods[&i];
            let healthy = rules::ranking::is_pod_ready(p) && p.metadata.deletion_timestamp.is_none();
            if !parallel && !healthy {
                break;
            }
            continue;
        }
        create_pod(plane, &sts, i, &revision);
        if !parallel {
            break;
        }
    }
    // Scale down: the highest ordinal first, one at a time unless Parallel.
    let extra: Vec<usize> = pods.keys().rev().copied().filter(|i| *i >= want).collect();
    for i in extra {
        let p = &pods[&i];
        if p.metadata.deletion_timestamp.is_none() {
            let pname = p.metadata.name.clone().unwrap_or_default();
            if let Err(e) = plane.delete::<Pod>(Some(&ns), &pname, p.metadata.uid.as_deref(), None, None) {
                plane.note("scale down statefulset", &pname, &e);
            }
        }
        if !parallel {
            break;
        }
    }
    let active: Vec<&Arc<CachedPod>> = pods.values().filter(|p| rules::ranking::is_pod_active(p)).collect();
    let ready = active.iter().filter(|p| rules::ranking::is_pod_ready(p)).count() as i32;
    let nz = |n: i32| (n != 0).then_some(n);
    let status = StatefulSetStatus {
        replicas: active.len() as i32,
        ready_replicas: nz(ready),
        available_replicas: nz(ready),
        current_replicas: nz(active.len() as i32),
        updated_replicas: nz(active.len() as i32),
        current_revision: Some(revision.clone()),
        update_revision: Some(revision),
        observed_generation: sts.metadata.generation,
        collision_count: Some(0),
        ..StatefulSetStatus::default()
    };
    if sts.status.as_ref() != Some(&status) {
        let mut n = (*sts).clone();
        n.status = Some(status);
        if let Err(e) = plane.replace(MANAGER, &n, true, Msg::StatefulSet) {
            plane.note("statefulset status", key, &e);
        }
    }
}

fn create_pod(plane: &mut Plane, sts: &StatefulSet, i: usize, revision: &str) {
    let Some(spec) = sts.spec.as_ref() else { return };
    let ns = sts.metadata.namespace.clone().unwrap_or_default();
    let set = sts.metadata.name.clone().unwrap_or_default();
    let pod_name = format!("{set}-{i}");
    let mut pod = pod_from_template(&spec.template, &ns, "", controller_ref("apps/v1", "StatefulSet", &sts.metadata));
    pod.metadata.generate_name = None;
    pod.metadata.name = Some(pod_name.clone());
    let labels = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert("statefulset.kubernetes.io/pod-name".into(), pod_name.clone());
    labels.insert("apps.kubernetes.io/pod-index".into(), i.to_string());
    labels.insert("controller-revision-hash".into(), revision.to_string());
    if let Some(ps) = pod.spec.as_mut() {
        ps.hostname = Some(pod_name.clone());
        if !spec.service_name.as_deref().unwrap_or_default().is_empty() {
            ps.subdomain = spec.service_name.clone();
        }
        for tpl in spec.volume_claim_templates.iter().flatten() {
            let tname = tpl.metadata.name.clone().unwrap_or_default();
            let claim = format!("{tname}-{pod_name}");
            ensure_claim(plane, tpl, &ns, &claim, &set);
            let vols = ps.volumes.get_or_insert_with(Vec::new);
            vols.retain(|v| v.name != tname);
            vols.push(Volume {
                name: tname,
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource { claim_name: claim, read_only: None }),
                ..Volume::default()
            });
        }
    }
    match plane.create(MANAGER, Some(&ns), &pod, Some(Msg::Pod)) {
        Ok(_) => plane.event_about(
            &sts.metadata,
            "apps/v1",
            "StatefulSet",
            "SuccessfulCreate",
            &format!("create Pod {pod_name} in StatefulSet {set} successful"),
            "Normal",
            MANAGER,
            "Create",
        ),
        Err(e) if e.code == 409 => {}
        Err(e) => plane.note("create statefulset pod", &pod_name, &e),
    }
}

fn ensure_claim(plane: &mut Plane, tpl: &PersistentVolumeClaim, ns: &str, claim: &str, set: &str) {
    if plane.state.read().pvcs.contains_key(&format!("{ns}/{claim}")) {
        return;
    }
    let pvc = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(claim.to_string()),
            namespace: Some(ns.to_string()),
            labels: tpl.metadata.labels.clone(),
            ..ObjectMeta::default()
        },
        spec: tpl.spec.clone(),
        status: None,
    };
    match plane.create(MANAGER, Some(ns), &pvc, Some(Msg::Pvc)) {
        Ok(_) | Err(crate::error::ApiError { code: 409, .. }) => {}
        Err(e) => plane.note("create statefulset claim", &format!("{set}/{claim}"), &e),
    }
}
