//! `pin` — seed 000's Deployment move: set the pod template's
//! `nodeSelector["kubernetes.io/hostname"]` to the target and wait for the
//! rollout. Moves every replica (the Deployment's rolling update keeps its
//! availability guarantees); opt-in only.

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use sdi_core::error::Category;
use sdi_core::strategy::Owner;
use serde_json::json;

use super::{Engine, JobCtx, Plan, checkpoint, marks};
use crate::cluster::retry;
use crate::error::Error;

pub async fn run(engine: &Engine, ctx: &JobCtx, plan: &Plan) -> Result<(), Error> {
    let (ns, target) = (plan.namespace.as_str(), plan.target.as_str());
    let w = &ctx.writer;
    let Owner::ReplicaSet { deployment: Some(dep_name), .. } = &plan.owner else {
        return Err(Error::new(Category::Invalid, format!("pod {ns}/{} is not owned by a Deployment", plan.pod_name)));
    };
    let original = engine.capture(ctx, plan).await?;
    let all: Vec<String> = original.spec.iter().flat_map(|s| s.containers.iter()).map(|c| c.name.clone()).collect();
    checkpoint::take(ctx, plan, &all).await?;

    // Whether the cache knew the Deployment: if it did not, its absence there
    // later means "not seen yet", not "deleted".
    let cached = engine.cache.deployment(ns, dep_name).is_some();
    ctx.step("pin-node-selector", async {
        let previous = match engine.cache.deployment(ns, dep_name) {
            Some(d) => d.hostname,
            // Not in the cache (yet): ask.
            None => {
                let api: Api<Deployment> = Api::namespaced(engine.client.clone(), ns);
                let dep = retry::transient(|| api.get(dep_name))
                    .await
                    .map_err(|e| Error::api(format!("read Deployment {ns}/{dep_name}"), e))?;
                dep.spec
                    .and_then(|s| s.template.spec)
                    .and_then(|s| s.node_selector)
                    .and_then(|m| m.get(marks::HOSTNAME).cloned())
            }
        };
        let restore = json!({
            "metadata": {"annotations": {marks::PINNED_BY: null, marks::PREVIOUS_SELECTOR: null}},
            "spec": {"template": {"spec": {"nodeSelector": {marks::HOSTNAME: previous}}}}
        });
        let patch = json!({
            "metadata": {"annotations": {
                marks::PINNED_BY: ctx.id,
                marks::PREVIOUS_SELECTOR: serde_json::to_string(&previous).unwrap_or_default()}},
            "spec": {"template": {"spec": {"nodeSelector": {marks::HOSTNAME: target}}}}
        });
        w.patch_deployment(ns, dep_name, &patch, Some(restore)).await?;
        ctx.note("pin-node-selector", format!("Deployment {dep_name}: nodeSelector {}={target}", marks::HOSTNAME));
        Ok(())
    })
    .await?;

    ctx.step("wait-rollout", engine.wait_rollout(ns, dep_name, target, cached)).await?;
    w.commit();

    ctx.step("unmark", async {
        let patch = json!({"metadata": {"annotations": {marks::PINNED_BY: null, marks::PREVIOUS_SELECTOR: null}}});
        if let Err(e) = w.patch_deployment(ns, dep_name, &patch, None).await {
            // The move is done; a leftover marker is repaired on the next start.
            tracing::warn!(job = %ctx.id, error = %e, "could not remove pin markers");
        }
        ctx.details(|d| d.new_node_name = target.into());
        Ok(())
    })
    .await
}
