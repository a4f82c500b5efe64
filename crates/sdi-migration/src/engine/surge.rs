//! `surge` — zero-downtime moves of ReplicaSet pods, with the target honoured
//! and the Deployment untouched.
//!
//! 1. A copy of the pod on the target whose labels do not match the ReplicaSet's
//!    selector, so nobody counts it yet; wait until it is Ready.
//! 2. Lower the original's `controller.kubernetes.io/pod-deletion-cost` to the minimum.
//! 3. Give the copy the selector labels: the ReplicaSet adopts it, finds one pod
//!    too many, and — ranking by deletion cost — removes the original.
//!
//! At every instant the ReplicaSet has at least its usual number of Ready pods.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Api;
use sdi_core::error::Category;
use sdi_core::strategy::Owner;
use serde_json::json;

use super::{Engine, JobCtx, Plan, checkpoint, copy, marks, unix_now};
use crate::cluster::cache::uid_number;
use crate::cluster::{retry, wait};
use crate::error::Error;

/// The label keys to hold back so a copy cannot match `selector`. Only keys
/// whose absence makes the selector fail (matchLabels, `In`, `Exists`) count.
pub fn withheld_keys(selector: &LabelSelector) -> Result<BTreeSet<String>, Error> {
    let mut keys: BTreeSet<String> = selector.match_labels.iter().flatten().map(|(k, _)| k.clone()).collect();
    keys.extend(
        selector
            .match_expressions
            .iter()
            .flatten()
            .filter(|e| e.operator == "In" || e.operator == "Exists")
            .map(|e| e.key.clone()),
    );
    if keys.is_empty() {
        return Err(Error::new(
            Category::Invalid,
            "the ReplicaSet's selector has no label whose absence excludes a pod; surge cannot stage a copy",
        ));
    }
    Ok(keys)
}

pub async fn run(engine: &Engine, ctx: &JobCtx, plan: &Plan) -> Result<(), Error> {
    let (ns, name, target) = (plan.namespace.as_str(), plan.pod_name.as_str(), plan.target.as_str());
    let w = &ctx.writer;
    let Owner::ReplicaSet { name: rs_name, .. } = &plan.owner else {
        return Err(Error::new(Category::Invalid, format!("pod {ns}/{name} is not owned by a ReplicaSet")));
    };
    let original = engine.capture(ctx, plan).await?;
    let all: Vec<String> = original.spec.iter().flat_map(|s| s.containers.iter()).map(|c| c.name.clone()).collect();
    let restore = checkpoint::precheck(engine, ctx, plan).await?;
    let archives = checkpoint::take(ctx, plan, &all).await?;
    let images = if restore { checkpoint::images(engine, ctx, plan, &archives).await? } else { Vec::new() };

    let (rs_uid, selector) = match engine.cache.replicaset(ns, rs_name) {
        Some(rs) => (rs.uid, rs.selector),
        // Not in the cache (yet): ask.
        None => {
            let rs_api: Api<ReplicaSet> = Api::namespaced(engine.client.clone(), ns);
            let rs = retry::transient(|| rs_api.get(rs_name))
                .await
                .map_err(|e| Error::api(format!("read ReplicaSet {ns}/{rs_name}"), e))?;
            (rs.metadata.uid.unwrap_or_default(), rs.spec.map(|s| s.selector).unwrap_or_default())
        }
    };
    let keys = withheld_keys(&selector)?;

    let copy_name = copy::derived_name(name, &format!("-migrated-{}", unix_now()));
    let (mut copy_pod, held) = copy::surge_copy(&original, &ctx.id, target, &copy_name, &keys);
    copy::run_images(&mut copy_pod, &images, engine.settings.images.checkpoint_pull_secret.as_deref());

    ctx.step("create-copy", async {
        w.create_pod(&copy_pod).await?;
        ctx.details(|d| {
            d.new_pod_name = copy_name.clone();
            d.new_node_name = target.into();
        });
        ctx.note("create-copy", format!("{copy_name} on {target}, outside ReplicaSet {rs_name} until Ready"));
        Ok(())
    })
    .await?;
    let ready = ctx.step("wait-ready", checkpoint::wait_ready(engine, &images, ns, &copy_name, target)).await;
    checkpoint::after_ready(ctx, &images, &ready);
    ready?;

    ctx.step("lower-deletion-cost", async {
        let annotations = original.metadata.annotations.clone().unwrap_or_default();
        let previous = annotations.get(marks::DELETION_COST).cloned();
        let restore = json!({"metadata": {"annotations": {
            marks::DELETION_COST: previous, marks::COST_JOB: null, marks::PREVIOUS_COST: null}}});
        let patch = json!({"metadata": {"annotations": {
            marks::DELETION_COST: marks::MIN_COST,
            marks::COST_JOB: ctx.id,
            marks::PREVIOUS_COST: previous.unwrap_or_default()}}});
        w.patch_pod(ns, name, &patch, Some(restore)).await
    })
    .await?;

    ctx.step("adopt-copy", async {
        // The role label goes with adoption: an adopted copy is the workload, not a leftover.
        let mut labels = serde_json::to_value(&held).unwrap_or_default();
        labels[marks::ROLE] = serde_json::Value::Null;
        w.patch_pod(ns, &copy_name, &json!({"metadata": {"labels": labels}}), None).await
    })
    .await?;

    // The ReplicaSet now has one pod too many; it must remove the original.
    ctx.step("verify", async {
        let original_uid = original.metadata.uid.as_deref().map(uid_number);
        let workload = |m: String| wait::Check::Fail(Error::new(Category::Workload, m));
        engine
            .cache
            .until(|v| {
                let copy = match v.pod(ns, &copy_name) {
                    None => {
                        return workload(format!(
                            "the ReplicaSet removed the copy {copy_name} instead of the original"
                        ));
                    }
                    Some((p, _)) if p.terminating => {
                        return workload(format!(
                            "the ReplicaSet is deleting the copy {copy_name} instead of the original"
                        ));
                    }
                    Some(c) => c,
                };
                let original_left = match v.pod(ns, name) {
                    None => true,
                    Some((p, m)) => Some(m.uid) != original_uid || p.terminating,
                };
                if !original_left {
                    return wait::Check::Wait;
                }
                let (p, m) = copy;
                if m.owner_uid.as_deref() != Some(rs_uid.as_str()) {
                    return workload(format!("copy {copy_name} was not adopted by ReplicaSet {rs_name}"));
                }
                if !m.ready || p.terminating || m.node_name.as_deref() != Some(target) {
                    return workload(format!("copy {copy_name} is not Ready on {target}"));
                }
                wait::Check::Done(())
            })
            .await?;
        ctx.note("verify", format!("ReplicaSet {rs_name} adopted {copy_name} and removed {name}"));
        Ok(())
    })
    .await?;
    w.commit();
    engine.measure(ctx, ns, &copy_name).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_whose_absence_excludes_a_pod() {
        let sel: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "web", "pod-template-hash": "abc"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]},
                                 {"key": "canary", "operator": "DoesNotExist"}]
        }))
        .unwrap();
        let keys: Vec<_> = withheld_keys(&sel).unwrap().into_iter().collect();
        assert_eq!(keys, ["app", "pod-template-hash", "tier"]);
        let weak: LabelSelector =
            serde_json::from_value(json!({"matchExpressions": [{"key": "x", "operator": "NotIn", "values": ["a"]}]}))
                .unwrap();
        assert!(withheld_keys(&weak).is_err());
    }
}
