//! Building the objects a migration creates — pure functions, no client.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, Pod, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::marks;

pub const CHECKPOINT_VOLUME: &str = "checkpoint-volume";
pub const CHECKPOINT_MOUNT: &str = "/migration-checkpoint";

/// Annotations that must not follow a pod to its copy.
const DROPPED_ANNOTATIONS: [&str; 4] =
    [marks::DELETION_COST, marks::COST_JOB, marks::PREVIOUS_COST, "kubectl.kubernetes.io/last-applied-configuration"];

/// A clean copy of `original` named `name`, bound to `node`: same spec, no
/// identity (uid, owner, finalizers, status), so the API server treats it as new.
fn base_copy(original: &Pod, name: &str, node: &str, job_id: &str) -> Pod {
    let meta = &original.metadata;
    let mut annotations = meta.annotations.clone().unwrap_or_default();
    for a in DROPPED_ANNOTATIONS {
        annotations.remove(a);
    }
    annotations.insert(marks::ORIGINAL_POD.into(), meta.name.clone().unwrap_or_default());
    annotations.insert(marks::ORIGINAL_UID.into(), meta.uid.clone().unwrap_or_default());
    let mut labels = meta.labels.clone().unwrap_or_default();
    labels.insert(marks::JOB.into(), job_id.into());
    labels.insert(marks::ROLE.into(), marks::ROLE_COPY.into());
    let mut spec = original.spec.clone().unwrap_or_default();
    spec.node_name = Some(node.into());
    spec.ephemeral_containers = None;
    spec.scheduling_gates = None;
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: meta.namespace.clone(),
            labels: Some(labels),
            annotations: Some(annotations),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// The `recreate` copy (seed 002 step 3): only the containers to migrate, the
/// original's labels plus `migration.sdi/original-pod` and `migration.sdi/target-node`,
/// and the checkpoint PVC mounted at `/migration-checkpoint` when there is one.
pub fn recreate_copy(original: &Pod, job_id: &str, node: &str, name: &str, keep: &[&str], pvc: Option<&str>) -> Pod {
    let mut pod = base_copy(original, name, node, job_id);
    let original_name = original.metadata.name.clone().unwrap_or_default();
    if let Some(labels) = pod.metadata.labels.as_mut() {
        // Label values are at most 63 characters; the annotation always has the full name.
        if marks::valid_label_value(&original_name) {
            labels.insert(marks::LEGACY_ORIGINAL_POD.into(), original_name);
        }
        if marks::valid_label_value(node) {
            labels.insert(marks::LEGACY_TARGET_NODE.into(), node.into());
        }
    }
    if let Some(spec) = pod.spec.as_mut() {
        spec.containers.retain(|c| keep.contains(&c.name.as_str()));
        if let Some(claim) = pvc {
            spec.volumes.get_or_insert_with(Vec::new).push(Volume {
                name: CHECKPOINT_VOLUME.into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim.into(),
                    read_only: None,
                }),
                ..Default::default()
            });
            for c in &mut spec.containers {
                c.volume_mounts.get_or_insert_with(Vec::new).push(VolumeMount {
                    name: CHECKPOINT_VOLUME.into(),
                    mount_path: CHECKPOINT_MOUNT.into(),
                    ..Default::default()
                });
            }
        }
    }
    pod
}

/// Run each checkpointed container from its checkpoint image (the runtime
/// restores it), pulled with `pull_secret` when the registry needs credentials.
pub fn run_images(pod: &mut Pod, images: &[crate::checkpoint::CheckpointImage], pull_secret: Option<&str>) {
    if images.is_empty() {
        return;
    }
    let Some(spec) = pod.spec.as_mut() else { return };
    for c in &mut spec.containers {
        if let Some(i) = images.iter().find(|i| i.container == c.name) {
            c.image = Some(i.image.clone());
            c.image_pull_policy = Some("IfNotPresent".into());
        }
    }
    if let Some(secret) = pull_secret.filter(|s| !s.is_empty()) {
        let secrets = spec.image_pull_secrets.get_or_insert_with(Vec::new);
        if !secrets.iter().any(|s| s.name == secret) {
            secrets.push(k8s_openapi::api::core::v1::LocalObjectReference { name: secret.into() });
        }
    }
}

/// The `surge` copy: every container, but without the labels in `selector_keys`,
/// so no ReplicaSet counts it until it is Ready. Returns the copy and the labels
/// held back (given to it at adoption).
pub fn surge_copy(
    original: &Pod,
    job_id: &str,
    node: &str,
    name: &str,
    selector_keys: &BTreeSet<String>,
) -> (Pod, BTreeMap<String, String>) {
    let mut pod = base_copy(original, name, node, job_id);
    let mut held = BTreeMap::new();
    if let Some(labels) = pod.metadata.labels.as_mut() {
        for key in selector_keys {
            if let Some(v) = labels.remove(key) {
                held.insert(key.clone(), v);
            }
        }
    }
    let held_json = serde_json::to_string(&held).unwrap_or_default();
    pod.metadata.annotations.get_or_insert_with(BTreeMap::new).insert(marks::HELD_LABELS.into(), held_json);
    (pod, held)
}

/// The checkpoint PVC (seed 002 step 2): ReadWriteOnce, labelled as the original
/// with `app=sdi-migration`, `component=migration-checkpoint`, and the job.
pub fn checkpoint_pvc(namespace: &str, name: &str, size: &str, job_id: &str) -> PersistentVolumeClaim {
    let labels = [
        ("app", "sdi-migration"),
        ("component", "migration-checkpoint"),
        (marks::JOB, job_id),
        (marks::ROLE, marks::ROLE_CHECKPOINT),
    ];
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some([("storage".to_string(), Quantity(size.into()))].into()),
                limits: None,
            }),
            ..Default::default()
        }),
        status: None,
    }
}

/// A name of at most 253 characters ending in `suffix` (pod names are DNS subdomains).
pub fn derived_name(base: &str, suffix: &str) -> String {
    let room = 253usize.saturating_sub(suffix.len());
    let mut head: String = base.chars().take(room).collect();
    while head.ends_with(['-', '.']) {
        head.pop();
    }
    format!("{head}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn original() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web-abc-x1", "namespace": "default", "uid": "u1", "resourceVersion": "9",
                "labels": {"app": "web", "pod-template-hash": "abc", "tier": "front"},
                "annotations": {"controller.kubernetes.io/pod-deletion-cost": "5", "keep": "me"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": "r", "controller": true}],
                "finalizers": ["x/y"]},
            "spec": {"nodeName": "w1", "containers": [{"name": "app"}, {"name": "done"}],
                     "volumes": [{"name": "data", "emptyDir": {}}]},
            "status": {"phase": "Running"}
        }))
        .unwrap()
    }

    #[test]
    fn recreate_copy_keeps_only_migrated_containers_and_mounts_the_pvc() {
        let p = recreate_copy(&original(), "migration-1", "w2", "web-migrated-1", &["app"], Some("checkpoint-web-1"));
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["spec"]["nodeName"], "w2");
        assert_eq!(v["spec"]["containers"].as_array().unwrap().len(), 1);
        assert_eq!(v["spec"]["containers"][0]["volumeMounts"][0]["mountPath"], "/migration-checkpoint");
        assert_eq!(v["spec"]["volumes"][1]["persistentVolumeClaim"]["claimName"], "checkpoint-web-1");
        assert_eq!(v["metadata"]["labels"]["migration.sdi/original-pod"], "web-abc-x1");
        assert_eq!(v["metadata"]["labels"]["migration.sdi/target-node"], "w2");
        assert_eq!(v["metadata"]["labels"]["sdi-migration/job"], "migration-1");
        assert_eq!(v["metadata"]["labels"]["app"], "web");
        for gone in ["uid", "resourceVersion", "ownerReferences", "finalizers"] {
            assert!(v["metadata"].get(gone).is_none(), "{gone} must not be copied");
        }
        assert!(v.get("status").is_none());
        assert!(v["metadata"]["annotations"].get("controller.kubernetes.io/pod-deletion-cost").is_none());
        assert_eq!(v["metadata"]["annotations"]["keep"], "me");
    }

    #[test]
    fn surge_copy_holds_back_selector_labels() {
        let keys: BTreeSet<String> = ["app".to_string(), "pod-template-hash".to_string()].into();
        let (p, held) = surge_copy(&original(), "migration-1", "w2", "c", &keys);
        let labels = p.metadata.labels.unwrap();
        assert!(!labels.contains_key("app") && !labels.contains_key("pod-template-hash"));
        assert_eq!(labels["tier"], "front");
        assert_eq!(held, [("app".into(), "web".into()), ("pod-template-hash".into(), "abc".into())].into());
        assert_eq!(p.spec.unwrap().containers.len(), 2, "surge copies every container");
    }

    #[test]
    fn derived_names_stay_within_limits() {
        assert_eq!(derived_name("web", "-migrated-1"), "web-migrated-1");
        let long = "a".repeat(300);
        assert_eq!(derived_name(&long, "-m").len(), 253);
    }
}
