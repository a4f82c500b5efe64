//! The ReplicaSet controller: keeps `spec.replicas` active pods. It adopts
//! orphan pods that match its selector, releases pods whose labels stop
//! matching, creates pods from its template, and scales down in upstream's
//! order (unscheduled, pending, not ready, lower `pod-deletion-cost`, doubled
//! up on a node, recently ready, restarted, newer first — `crate::rules::ranking`).
//! Its status counts replicas, fully labeled, ready and available pods.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde_json::json;

use super::plane::Plane;
use super::state::{Dirty, Msg};
use crate::cached_pod::{CachedPod, MetaView};
use crate::rules;
use crate::selector::LabelSelector;

const MANAGER: &str = "replicaset-controller";

pub fn controller_ref(api_version: &str, kind: &str, meta: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: api_version.into(),
        kind: kind.into(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn controller_uid(meta: &impl crate::cached_pod::MetaView) -> Option<&str> {
    meta.owner_references().iter().find(|o| o.controller == Some(true)).map(|o| o.uid.as_str())
}

pub fn selector_of(sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector) -> LabelSelector {
    serde_json::to_value(sel)
        .ok()
        .and_then(|v| LabelSelector::from_object(&v).ok())
        .unwrap_or_else(LabelSelector::nothing)
}

/// A new pod for a controller, from its template.
pub fn pod_from_template(template: &PodTemplateSpec, ns: &str, generate_name: &str, owner: OwnerReference) -> Pod {
    let tmeta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name.to_string()),
            namespace: Some(ns.to_string()),
            labels: tmeta.labels,
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// Claim (adopt) or release one pod so that ownership follows the selector.
fn claim(plane: &mut Plane, rs: &ReplicaSet, sel: &LabelSelector, pod: &CachedPod) -> Option<bool> {
    let uid = rs.metadata.uid.as_deref()?;
    static NONE: std::sync::LazyLock<std::collections::BTreeMap<String, String>> =
        std::sync::LazyLock::new(Default::default);
    let matches = sel.matches(pod.metadata.labels.as_deref().unwrap_or(&NONE));
    let owner = controller_uid(&pod.metadata);
    let (ns, name) = (pod.metadata.namespace.clone(), pod.metadata.name.clone().unwrap_or_default());
    match (owner, matches) {
        (Some(o), true) if o == uid => Some(true),
        (Some(o), false) if o == uid => {
            // Release: labels no longer match.
            let refs: Vec<OwnerReference> =
                pod.metadata.owner_references().iter().filter(|r| r.uid != uid).cloned().collect();
            let patch = json!({"metadata": {"ownerReferences": refs, "uid": pod.metadata.uid}});
            if let Err(e) = plane.patch::<Pod>(MANAGER, ns.as_deref(), &name, false, &patch, Some(Msg::Pod)) {
                plane.note("release pod", &name, &e);
            }
            Some(false)
        }
        (None, true) if pod.metadata.deletion_timestamp.is_none() && rs.metadata.deletion_timestamp.is_none() => {
            // Adopt an orphan that matches.
            let mut refs: Vec<OwnerReference> = pod.metadata.owner_references().to_vec();
            refs.push(controller_ref("apps/v1", "ReplicaSet", &rs.metadata));
            let patch = json!({"metadata": {"ownerReferences": refs, "uid": pod.metadata.uid}});
            match plane.patch::<Pod>(MANAGER, ns.as_deref(), &name, false, &patch, Some(Msg::Pod)) {
                Ok(_) => Some(true),
                Err(e) => {
                    plane.note("adopt pod", &name, &e);
                    None
                }
            }
        }
        _ => None,
    }
}

pub fn reconcile(plane: &mut Plane, key: &str) {
    let Some(rs) = plane.state.read().replicasets.get(key).cloned() else {
        plane.forget_creator(key);
        return;
    };
    if rs.metadata.deletion_timestamp.is_some() {
        super::gc::on_owner_deleting(plane, &rs.metadata, "apps/v1", "ReplicaSet");
        return;
    }
    let Some(spec) = rs.spec.clone() else { return };
    let ns = rs.metadata.namespace.clone().unwrap_or_default();
    let sel = selector_of(&spec.selector);
    let uid = rs.metadata.uid.clone().unwrap_or_default();
    let candidates: Vec<Arc<CachedPod>> = plane.state.read().claimable_pods(&ns, &uid);
    let mut owned: Vec<Arc<CachedPod>> = Vec::new();
    for pod in candidates {
        if claim(plane, &rs, &sel, &pod) == Some(true) {
            owned.push(plane.pod(&super::state::key_of(&pod.metadata)).unwrap_or(pod));
        }
    }
    // Shared, not copied: a ReplicaSet is reconciled on every change of one of
    // its pods, so a copy here would be quadratic in its size.
    let active: Vec<&Arc<CachedPod>> = owned.iter().filter(|p| rules::ranking::is_pod_active(p)).collect();
    let want = spec.replicas.unwrap_or(1).max(0) as usize;
    let creating = plane.creates_in_flight(key);
    if active.len() + creating < want {
        let template = spec.template.clone().unwrap_or_default();
        let owner = controller_ref("apps/v1", "ReplicaSet", &rs.metadata);
        let name = rs.metadata.name.clone().unwrap_or_default();
        for _ in 0..plane.creates_allowed(key, want - active.len() - creating) {
            let pod = pod_from_template(&template, &ns, &format!("{name}-"), owner.clone());
            create(plane, key, &ns, pod);
        }
    } else if active.len() > want
        && (creating > 0 || active.iter().any(|p| plane.status_in_flight(&super::state::key_of(&p.metadata))))
    {
        // Which pod goes depends on their states: rank them once their
        // kubelets' writes are in.
        plane.soon(Dirty::ReplicaSet(key.to_string()));
    } else if active.len() > want {
        let active: Vec<CachedPod> = active.iter().map(|p| (***p).clone()).collect();
        let order = rules::ranking::scale_down_order(&active, plane.api.clock.now());
        for i in order.into_iter().take(active.len() - want) {
            let Some(p) = active.get(i) else { continue };
            let pname = p.metadata.name.clone().unwrap_or_default();
            match plane.delete::<Pod>(Some(&ns), &pname, p.metadata.uid.as_deref(), None, None) {
                Ok(()) => plane.event_about(
                    &rs.metadata,
                    "apps/v1",
                    "ReplicaSet",
                    "SuccessfulDelete",
                    &format!("Deleted pod: {pname}"),
                    "Normal",
                    MANAGER,
                    "Delete",
                ),
                Err(e) => plane.note("delete pod", &pname, &e),
            }
        }
    }
    update_status(plane, &rs, &owned);
}

/// Create one of the ReplicaSet `key`'s pods on a helper ([`super::offload`]);
/// the answer caches it, or retries shortly.
fn create(plane: &mut Plane, key: &str, ns: &str, pod: Pod) {
    let ns = ns.to_string();
    let write = Box::new(move |api: &crate::apiserver::ApiServer| {
        let created = super::plane::create_on(api, MANAGER, Some(&ns), &pod)?;
        super::state::for_cache(created)
            .map_err(|e| crate::error::ApiError::internal(format!("decoding a created pod: {e}")))
    });
    plane.send_create(key, write);
}

/// The Event a ReplicaSet's pod create records, as upstream's controller
/// does: `SuccessfulCreate` naming the pod, or `FailedCreate` with the error.
pub(super) fn create_event(plane: &mut Plane, key: &str, outcome: Result<&CachedPod, &crate::error::ApiError>) {
    let Some(rs) = plane.state.read().replicasets.get(key).cloned() else { return };
    let (reason, message, type_) = match outcome {
        Ok(pod) => {
            ("SuccessfulCreate", format!("Created pod: {}", pod.metadata.name.as_deref().unwrap_or_default()), "Normal")
        }
        Err(e) => ("FailedCreate", format!("Error creating: {e}"), "Warning"),
    };
    plane.event_about(&rs.metadata, "apps/v1", "ReplicaSet", reason, &message, type_, MANAGER, "Create");
}

fn update_status(plane: &mut Plane, rs: &ReplicaSet, owned: &[Arc<CachedPod>]) {
    let template_labels = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.as_ref());
    let active: Vec<&Arc<CachedPod>> = owned.iter().filter(|p| rules::ranking::is_pod_active(p)).collect();
    let fully = active
        .iter()
        .filter(|p| {
            let l = p.metadata.labels.as_ref();
            template_labels.into_iter().flatten().all(|(k, v)| l.and_then(|l| l.get(k)) == Some(v))
        })
        .count() as i32;
    let ready = active.iter().filter(|p| rules::ranking::is_pod_ready(p)).count() as i32;
    // Zero counts are omitted, as Go's `omitempty` does.
    let nz = |n: i32| (n != 0).then_some(n);
    let status = ReplicaSetStatus {
        replicas: active.len() as i32,
        fully_labeled_replicas: nz(fully),
        ready_replicas: nz(ready),
        available_replicas: nz(ready),
        observed_generation: rs.metadata.generation,
        conditions: rs.status.as_ref().and_then(|s| s.conditions.clone()),
        ..ReplicaSetStatus::default()
    };
    if rs.status.as_ref() == Some(&status) {
        return;
    }
    let mut new = rs.clone();
    new.status = Some(status);
    if let Err(e) = plane.replace(MANAGER, &new, true, Msg::ReplicaSet) {
        plane.note("replicaset status", rs.metadata.name.as_deref().unwrap_or_default(), &e);
    }
}
