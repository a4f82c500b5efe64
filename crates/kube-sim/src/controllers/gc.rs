//! The garbage collector. When an owner is gone, its dependents go too
//! (background propagation); a dependent with another live owner only loses the
//! dangling reference. An owner being deleted with the `foregroundDeletion`
//! finalizer has its dependents deleted first, then the finalizer removed; with
//! the `orphan` finalizer its dependents are released (their ownerReferences
//! to it removed), then the finalizer removed.
//!
//! It follows the dependents the control plane caches (pods, ReplicaSets,
//! StatefulSets, DaemonSets, Deployments, claims); dependents of other kinds
//! are not collected.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde_json::{Value, json};

use super::plane::Plane;
use super::state::Kind;
use crate::apiserver::Propagation;
use crate::store::object_key;

const MANAGER: &str = "generic-garbage-collector";

/// The (api version, kind) of a cached kind, for API calls.
fn gvk(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::Pod => ("v1", "Pod"),
        Kind::Node => ("v1", "Node"),
        Kind::ReplicaSet => ("apps/v1", "ReplicaSet"),
        Kind::Deployment => ("apps/v1", "Deployment"),
        Kind::StatefulSet => ("apps/v1", "StatefulSet"),
        Kind::DaemonSet => ("apps/v1", "DaemonSet"),
        Kind::Pdb => ("policy/v1", "PodDisruptionBudget"),
        Kind::Pvc => ("v1", "PersistentVolumeClaim"),
        Kind::Pv => ("v1", "PersistentVolume"),
        Kind::Job => ("batch/v1", "Job"),
        Kind::CronJob => ("batch/v1", "CronJob"),
        Kind::Quota => ("v1", "ResourceQuota"),
    }
}

/// The metadata of a cached object.
fn meta_of(plane: &Plane, kind: Kind, key: &str) -> Option<ObjectMeta> {
    let s = plane.state.read();
    match kind {
        Kind::Pod => s.pods.get(key).map(|o| o.metadata.to_object_meta()),
        Kind::Node => s.nodes.get(key).map(|o| o.metadata.clone()),
        Kind::ReplicaSet => s.replicasets.get(key).map(|o| o.metadata.clone()),
        Kind::Deployment => s.deployments.get(key).map(|o| o.metadata.clone()),
        Kind::StatefulSet => s.statefulsets.get(key).map(|o| o.metadata.clone()),
        Kind::DaemonSet => s.daemonsets.get(key).map(|o| o.metadata.clone()),
        Kind::Pdb => s.pdbs.get(key).map(|o| o.metadata.clone()),
        Kind::Pvc => s.pvcs.get(key).map(|o| o.metadata.clone()),
        Kind::Pv => s.pvs.get(key).map(|o| o.metadata.clone()),
        Kind::Job => s.jobs.get(key).map(|o| o.metadata.clone()),
        Kind::CronJob => s.cronjobs.get(key).map(|o| o.metadata.clone()),
        Kind::Quota => s.quotas.get(key).map(|o| o.metadata.clone()),
    }
}

/// Whether the owner a reference points at still exists (with that uid).
/// Unknown kinds count as existing: never collect what we cannot check.
fn owner_exists(plane: &Plane, ns: Option<&str>, r: &OwnerReference) -> bool {
    if plane.state.read().uids.contains_key(&r.uid) {
        return true;
    }
    let Some(res) = plane.api.registry.by_kind(&r.api_version, &r.kind) else { return true };
    let ns = if res.namespaced { ns } else { None };
    match plane.api.store.get(&res.storage, &object_key(ns, &r.name)) {
        Some(o) => o.uid == r.uid,
        None => false,
    }
}

fn patch_meta(plane: &mut Plane, api_version: &str, kind: &str, meta: &ObjectMeta, patch: &Value) {
    let Some(res) = plane.api.registry.by_kind(api_version, kind) else { return };
    let name = meta.name.clone().unwrap_or_default();
    let body = serde_json::to_vec(patch).unwrap_or_default();
    let opts = Plane::opts(MANAGER);
    if let Err(e) =
        plane.api.patch(&res, meta.namespace.as_deref(), &name, None, crate::apiserver::PatchType::Merge, &body, &opts)
    {
        plane.note("garbage collector patch", &name, &e);
    }
}

fn delete_obj(plane: &mut Plane, api_version: &str, kind: &str, meta: &ObjectMeta, propagation: Propagation) {
    let Some(res) = plane.api.registry.by_kind(api_version, kind) else { return };
    let name = meta.name.clone().unwrap_or_default();
    let opts = crate::apiserver::DeleteOptions {
        precondition_uid: meta.uid.clone(),
        propagation: Some(propagation),
        ..Default::default()
    };
    if let Err(e) = plane.api.delete(&res, meta.namespace.as_deref(), &name, &opts) {
        plane.note("garbage collector delete", &name, &e);
    }
}

/// Something with `uid` went away (or is not cached): collect its orphans.
pub fn reconcile(plane: &mut Plane, uid: &str) {
    let deps = plane.state.read().dependents(uid);
    for (kind, key) in deps {
        let Some(meta) = meta_of(plane, kind, &key) else { continue };
        if meta.deletion_timestamp.is_some() {
            continue;
        }
        let refs: Vec<OwnerReference> = meta.owner_references.clone().unwrap_or_default();
        let (alive, dead): (Vec<&OwnerReference>, Vec<&OwnerReference>) =
            refs.iter().partition(|r| owner_exists(plane, meta.namespace.as_deref(), r));
        if dead.is_empty() {
            continue;
        }
        let (av, k) = gvk(kind);
        if alive.is_empty() {
            delete_obj(plane, av, k, &meta, Propagation::Background);
        } else {
            let keep: Vec<&OwnerReference> = alive;
            patch_meta(plane, av, k, &meta, &json!({"metadata": {"ownerReferences": keep, "uid": meta.uid}}));
        }
    }
}

/// Whether an object carries a finalizer the garbage collector acts on.
pub fn has_gc_finalizer(meta: &impl crate::cached_pod::MetaView) -> bool {
    meta.deleting() && meta.finalizers().iter().any(|f| f == "orphan" || f == "foregroundDeletion")
}

/// An owner is being deleted: act on its garbage collector finalizers.
pub fn on_owner_deleting(plane: &mut Plane, owner: &ObjectMeta, api_version: &str, kind: &str) {
    let finalizers = owner.finalizers.clone().unwrap_or_default();
    let uid = owner.uid.clone().unwrap_or_default();
    let deps = plane.state.read().dependents(&uid);
    if finalizers.iter().any(|f| f == "orphan") {
        for (dkind, key) in &deps {
            let Some(meta) = meta_of(plane, *dkind, key) else { continue };
            let keep: Vec<OwnerReference> =
                meta.owner_references.iter().flatten().filter(|r| r.uid != uid).cloned().collect();
            let (av, k) = gvk(*dkind);
            patch_meta(plane, av, k, &meta, &json!({"metadata": {"ownerReferences": keep, "uid": meta.uid}}));
        }
        let rest: Vec<&String> = finalizers.iter().filter(|f| *f != "orphan").collect();
        patch_meta(plane, api_version, kind, owner, &json!({"metadata": {"finalizers": rest}}));
    } else if finalizers.iter().any(|f| f == "foregroundDeletion") {
        let mut blocking = 0;
        for (dkind, key) in &deps {
            let Some(meta) = meta_of(plane, *dkind, key) else { continue };
            let blocks =
                meta.owner_references.iter().flatten().any(|r| r.uid == uid && r.block_owner_deletion == Some(true));
            if blocks {
                blocking += 1;
            }
            if meta.deletion_timestamp.is_none() {
                // Upstream deletes a dependent that has dependents of its own in the
                // foreground too, and a leaf in the background.
                let has_dependents = meta.uid.as_deref().is_some_and(|u| !plane.state.read().dependents(u).is_empty());
                let policy = if has_dependents { Propagation::Foreground } else { Propagation::Background };
                let (av, k) = gvk(*dkind);
                delete_obj(plane, av, k, &meta, policy);
            }
        }
        if blocking == 0 {
            let rest: Vec<&String> = finalizers.iter().filter(|f| *f != "foregroundDeletion").collect();
            patch_meta(plane, api_version, kind, owner, &json!({"metadata": {"finalizers": rest}}));
        }
    }
}
