//! The Deployment controller: one ReplicaSet per pod template (named and
//! labelled with the template's `pod-template-hash`), rolled forward within
//! `maxSurge`/`maxUnavailable` (or Recreate), with revision annotations, status
//! and conditions as upstream computes them (`crate::rules::deployment`).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde_json::json;

use super::plane::Plane;
use super::replicaset::controller_ref;
use super::state::Msg;
use crate::rules;

const MANAGER: &str = "deployment-controller";
pub const HASH_LABEL: &str = "pod-template-hash";
const REVISION: &str = "deployment.kubernetes.io/revision";

fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata.annotations.as_ref().and_then(|a| a.get(REVISION)).and_then(|r| r.parse().ok()).unwrap_or(0)
}

fn replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

/// ReplicaSets this deployment controls.
fn owned(plane: &Plane, d: &Deployment) -> Vec<ReplicaSet> {
    let uid = d.metadata.uid.clone().unwrap_or_default();
    let state = plane.state.read();
    let mut v: Vec<ReplicaSet> = state
        .dependents(&uid)
        .into_iter()
        .filter(|(k, _)| *k == super::state::Kind::ReplicaSet)
        .filter_map(|(_, key)| state.replicasets.get(&key).map(|r| (**r).clone()))
        .filter(|rs| rs.metadata.owner_references.iter().flatten().any(|o| o.uid == uid && o.controller == Some(true)))
        .collect();
    v.sort_by_key(|rs| (revision(rs), rs.metadata.name.clone()));
    v
}

fn scale(plane: &mut Plane, d: &Deployment, rs: &ReplicaSet, to: i32) {
    let from = replicas(rs);
    if from == to {
        return;
    }
    let ns = rs.metadata.namespace.clone();
    let name = rs.metadata.name.clone().unwrap_or_default();
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let (surge, _) = rules::deployment::resolve_fenceposts(
        d.spec
            .as_ref()
            .and_then(|s| s.strategy.as_ref())
            .and_then(|s| s.rolling_update.as_ref())
            .and_then(|r| r.max_surge.as_ref()),
        d.spec
            .as_ref()
            .and_then(|s| s.strategy.as_ref())
            .and_then(|s| s.rolling_update.as_ref())
            .and_then(|r| r.max_unavailable.as_ref()),
        desired,
    );
    let patch = json!({"metadata": {"annotations": {
            "deployment.kubernetes.io/desired-replicas": desired.to_string(),
            "deployment.kubernetes.io/max-replicas": (desired + surge).to_string()}},
        "spec": {"replicas": to}});
    match plane.patch::<ReplicaSet>(MANAGER, ns.as_deref(), &name, false, &patch, Some(Msg::ReplicaSet)) {
        Ok(_) => {
            let verb = if to > from { "up" } else { "down" };
            plane.event_about(
                &d.metadata,
                "apps/v1",
                "Deployment",
                "ScalingReplicaSet",
                &format!("Scaled {verb} replica set {name} from {from} to {to}"),
                "Normal",
                MANAGER,
                "Scaling",
            );
        }
        Err(e) => plane.note("scale replicaset", &name, &e),
    }
}

pub fn reconcile(plane: &mut Plane, key: &str) {
    let Some(d) = plane.state.read().deployments.get(key).cloned() else { return };
    if d.metadata.deletion_timestamp.is_some() {
        super::gc::on_owner_deleting(plane, &d.metadata, "apps/v1", "Deployment");
        return;
    }
    let Some(spec) = d.spec.clone() else { return };
    let mut all = owned(plane, &d);
    let collision = d.status.as_ref().and_then(|s| s.collision_count);
    let hash = rules::ranking::pod_template_hash(&spec.template, collision);
    let is_new = |rs: &ReplicaSet| rs.metadata.labels.as_ref().and_then(|l| l.get(HASH_LABEL)) == Some(&hash);
    let paused = spec.paused == Some(true);
    if !paused && !all.iter().any(is_new) {
        match create_new_rs(plane, &d, &all, &hash) {
            Some(rs) => all.push(rs),
            None => return,
        }
    }
    let new_rs = all.iter().find(|rs| is_new(rs)).cloned();
    if let Some(rs) = &new_rs {
        sync_revision(plane, &d, revision(rs));
    }
    let olds: Vec<ReplicaSet> = all.iter().filter(|rs| !is_new(rs)).cloned().collect();
    if let (Some(new_rs), false) = (&new_rs, paused) {
        let recreate = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
        if recreate {
            rollout_recreate(plane, &d, &olds, new_rs);
        } else {
            let target = rules::deployment::new_rs_new_replicas(&d, &all, new_rs);
            scale(plane, &d, new_rs, target);
            for (name, to) in rules::deployment::old_rs_scale_down(&d, &all, &olds, new_rs) {
                if let Some(rs) = olds.iter().find(|r| r.metadata.name.as_deref() == Some(&name)) {
                    scale(plane, &d, rs, to);
                }
            }
        }
    }
    let all = owned(plane, &d);
    let new_rs = all.iter().find(|rs| is_new(rs)).cloned();
    cleanup(plane, &d, &all, new_rs.as_ref());
    let now = plane.now_rfc3339();
    let status = rules::deployment::deployment_status(&d, &all, new_rs.as_ref(), &now);
    if same_ignoring_times(d.status.as_ref(), &status) {
        return;
    }
    let mut nd = (*d).clone();
    nd.status = Some(status);
    if let Err(e) = plane.replace(MANAGER, &nd, true, Msg::Deployment) {
        plane.note("deployment status", key, &e);
    }
}

/// The Deployment carries the revision of its current ReplicaSet.
fn sync_revision(plane: &mut Plane, d: &Deployment, rev: i64) {
    let current = d.metadata.annotations.as_ref().and_then(|a| a.get(REVISION)).cloned();
    if rev == 0 || current.as_deref() == Some(rev.to_string().as_str()) {
        return;
    }
    let name = d.metadata.name.clone().unwrap_or_default();
    let patch = json!({"metadata": {"annotations": {REVISION: rev.to_string()}}});
    if let Err(e) =
        plane.patch::<Deployment>(MANAGER, d.metadata.namespace.as_deref(), &name, false, &patch, Some(Msg::Deployment))
    {
        plane.note("deployment revision", &name, &e);
    }
}

/// Status equality without the condition timestamps (which would otherwise
/// make every reconcile a write).
fn same_ignoring_times(
    old: Option<&k8s_openapi::api::apps::v1::DeploymentStatus>,
    new: &k8s_openapi::api::apps::v1::DeploymentStatus,
) -> bool {
    let Some(old) = old else { return false };
    let strip = |s: &k8s_openapi::api::apps::v1::DeploymentStatus| {
        let mut s = s.clone();
        for c in s.conditions.iter_mut().flatten() {
            c.last_update_time = None;
            c.last_transition_time = None;
        }
        s
    };
    strip(old) == strip(new)
}

fn create_new_rs(plane: &mut Plane, d: &Deployment, all: &[ReplicaSet], hash: &str) -> Option<ReplicaSet> {
    let spec = d.spec.as_ref()?;
    let ns = d.metadata.namespace.clone().unwrap_or_default();
    let name = format!("{}-{hash}", d.metadata.name.as_deref().unwrap_or_default());
    let mut template = spec.template.clone();
    let mut tmeta = template.metadata.clone().unwrap_or_default();
    tmeta.labels.get_or_insert_with(BTreeMap::new).insert(HASH_LABEL.into(), hash.into());
    template.metadata = Some(tmeta.clone());
    let mut selector: LabelSelector = spec.selector.clone();
    selector.match_labels.get_or_insert_with(BTreeMap::new).insert(HASH_LABEL.into(), hash.into());
    let rev = all.iter().map(revision).max().unwrap_or(0) + 1;
    let mut rs = ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ns.clone()),
            labels: tmeta.labels.clone(),
            annotations: Some(rules::deployment::replicaset_annotations(d, rev)),
            owner_references: Some(vec![controller_ref("apps/v1", "Deployment", &d.metadata)]),
            ..ObjectMeta::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(0),
            min_ready_seconds: spec.min_ready_seconds,
            selector,
            template: Some(template),
        }),
        status: None,
    };
    let mut with_new: Vec<ReplicaSet> = all.to_vec();
    with_new.push(rs.clone());
    let target = rules::deployment::new_rs_new_replicas(d, &with_new, &rs);
    if let Some(s) = rs.spec.as_mut() {
        s.replicas = Some(target);
    }
    match plane.create(MANAGER, Some(&ns), &rs, Some(Msg::ReplicaSet)) {
        Ok(v) => {
            plane.event_about(
                &d.metadata,
                "apps/v1",
                "Deployment",
                "ScalingReplicaSet",
                &format!("Scaled up replica set {name} from 0 to {target}"),
                "Normal",
                MANAGER,
                "Scaling",
            );
            serde_json::from_value(v).ok()
        }
        Err(e) if e.code == 409 => {
            // A ReplicaSet of that name exists but is not ours (hash collision):
            // upstream bumps collisionCount and retries with a new hash.
            let count = d.status.as_ref().and_then(|s| s.collision_count).unwrap_or(0) + 1;
            let patch = json!({"status": {"collisionCount": count}});
            let dname = d.metadata.name.clone().unwrap_or_default();
            if let Err(e) = plane.patch::<Deployment>(MANAGER, Some(&ns), &dname, true, &patch, Some(Msg::Deployment)) {
                plane.note("collision count", &dname, &e);
            }
            None
        }
        Err(e) => {
            plane.note("create replicaset", &name, &e);
            None
        }
    }
}

fn rollout_recreate(plane: &mut Plane, d: &Deployment, olds: &[ReplicaSet], new_rs: &ReplicaSet) {
    let mut old_pods_left = false;
    for rs in olds {
        if replicas(rs) > 0 {
            scale(plane, d, rs, 0);
        }
        if rs.status.as_ref().is_some_and(|s| s.replicas > 0) {
            old_pods_left = true;
        }
    }
    if !old_pods_left {
        let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        scale(plane, d, new_rs, desired);
    }
}

/// Delete old, empty ReplicaSets beyond `revisionHistoryLimit` (oldest first).
fn cleanup(plane: &mut Plane, d: &Deployment, all: &[ReplicaSet], new_rs: Option<&ReplicaSet>) {
    let limit = d.spec.as_ref().and_then(|s| s.revision_history_limit).unwrap_or(10).max(0) as usize;
    let empty: Vec<&ReplicaSet> = all
        .iter()
        .filter(|rs| Some(rs.metadata.name.as_ref()) != new_rs.map(|n| n.metadata.name.as_ref()))
        .filter(|rs| replicas(rs) == 0 && rs.status.as_ref().is_none_or(|s| s.replicas == 0))
        .collect();
    if empty.len() <= limit {
        return;
    }
    for rs in empty.iter().take(empty.len() - limit) {
        let name = rs.metadata.name.clone().unwrap_or_default();
        if let Err(e) =
            plane.delete::<ReplicaSet>(rs.metadata.namespace.as_deref(), &name, rs.metadata.uid.as_deref(), None, None)
        {
            plane.note("clean up old replicaset", &name, &e);
        }
    }
}
