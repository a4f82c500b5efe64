//! Volume binding: a pending PersistentVolumeClaim gets a PersistentVolume
//! provisioned for it (capacity = the requested size, its access modes and
//! storage class), and both are bound — `Pending` → `Bound`, as a dynamic
//! provisioner and the PV controller would do. A deleted claim's volume is
//! deleted with it (reclaim policy `Delete`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    HostPathVolumeSource, ObjectReference, PersistentVolume, PersistentVolumeClaim, PersistentVolumeSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::json;

use super::plane::Plane;
use super::state::Msg;

const MANAGER: &str = "persistentvolume-binder-controller";

pub fn reconcile(plane: &mut Plane, key: &str) {
    let Some(pvc) = plane.state.read().pvcs.get(key).cloned() else {
        release(plane, key);
        return;
    };
    if pvc.metadata.deletion_timestamp.is_some() {
        return;
    }
    let bound = pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    if bound {
        return;
    }
    let ns = pvc.metadata.namespace.clone().unwrap_or_default();
    let name = pvc.metadata.name.clone().unwrap_or_default();
    let uid = pvc.metadata.uid.clone().unwrap_or_default();
    let spec = pvc.spec.clone().unwrap_or_default();
    let size = spec.resources.as_ref().and_then(|r| r.requests.as_ref()).and_then(|r| r.get("storage")).cloned();
    let Some(size) = size else { return };
    let pv_name = spec.volume_name.clone().filter(|v| !v.is_empty()).unwrap_or_else(|| format!("pvc-{uid}"));
    if !plane.state.read().pvs.contains_key(&pv_name) {
        let pv = PersistentVolume {
            metadata: ObjectMeta {
                name: Some(pv_name.clone()),
                annotations: Some(BTreeMap::from([(
                    "pv.kubernetes.io/provisioned-by".into(),
                    "kube-sim.io/hostpath".into(),
                )])),
                ..ObjectMeta::default()
            },
            spec: Some(PersistentVolumeSpec {
                access_modes: spec.access_modes.clone(),
                capacity: Some(BTreeMap::from([("storage".into(), size.clone())])),
                claim_ref: Some(ObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("PersistentVolumeClaim".into()),
                    name: Some(name.clone()),
                    namespace: Some(ns.clone()),
                    uid: Some(uid.clone()),
                    ..ObjectReference::default()
                }),
                host_path: Some(HostPathVolumeSource {
                    path: format!("/var/lib/kube-sim/volumes/{pv_name}"),
                    type_: None,
                }),
                persistent_volume_reclaim_policy: Some("Delete".into()),
                storage_class_name: spec.storage_class_name.clone(),
                volume_mode: spec.volume_mode.clone(),
                ..PersistentVolumeSpec::default()
            }),
            status: None,
        };
        if let Err(e) = plane.create(MANAGER, None, &pv, Some(Msg::Pv)) {
            plane.note("provision volume", &pv_name, &e);
            return;
        }
    }
    let steps: [(bool, &str, serde_json::Value, bool); 3] = [
        (
            false,
            "PersistentVolumeClaim",
            json!({"metadata": {"annotations": {"pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes"}}, "spec": {"volumeName": pv_name}}),
            true,
        ),
        (
            true,
            "PersistentVolumeClaim",
            json!({"status": {"phase": "Bound", "accessModes": spec.access_modes, "capacity": {"storage": size}}}),
            true,
        ),
        (true, "PersistentVolume", json!({"status": {"phase": "Bound"}}), false),
    ];
    for (status, kind, patch, is_claim) in steps {
        let r = if is_claim {
            plane.patch::<PersistentVolumeClaim>(MANAGER, Some(&ns), &name, status, &patch, Some(Msg::Pvc))
        } else {
            plane.patch::<PersistentVolume>(MANAGER, None, &pv_name, status, &patch, Some(Msg::Pv))
        };
        if let Err(e) = r {
            plane.note(kind, key, &e);
            return;
        }
    }
}

/// A claim is gone: delete the volume provisioned for it.
fn release(plane: &mut Plane, key: &str) {
    let Some((ns, name)) = key.split_once('/') else { return };
    let pv = plane
        .state
        .read()
        .pvs
        .values()
        .find(|pv| {
            pv.spec
                .as_ref()
                .and_then(|s| s.claim_ref.as_ref())
                .is_some_and(|c| c.namespace.as_deref() == Some(ns) && c.name.as_deref() == Some(name))
        })
        .cloned();
    if let Some(pv) = pv
        && pv.spec.as_ref().and_then(|s| s.persistent_volume_reclaim_policy.as_deref()) == Some("Delete")
    {
        let pvn = pv.metadata.name.clone().unwrap_or_default();
        if let Err(e) = plane.delete::<PersistentVolume>(None, &pvn, pv.metadata.uid.as_deref(), None, None) {
            plane.note("delete released volume", &pvn, &e);
        }
    }
}
