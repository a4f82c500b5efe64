//! `pin` — seed 000's Deployment move: set the pod template's
//! `nodeSelector["kubernetes.io/hostname"]` to the target and wait for the
//! rollout. Moves every replica (the Deployment's rolling update keeps its
//! availability guarantees); opt-in only.

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{Patch, PatchParams};
use sdi_core::strategy::Owner;
use serde_json::json;

use super::undo::Undo;
use super::{Engine, JobCtx, Plan, checkpoint, marks};
use crate::cluster::{FIELD_MANAGER, retry, wait};

/// Rollout finished: the controller saw the new spec, and every replica is updated and ready.
pub fn rolled_out(d: &Deployment) -> bool {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(st) = d.status.as_ref() else { return false };
    st.observed_generation >= d.metadata.generation
        && st.updated_replicas.unwrap_or(0) == want
        && st.ready_replicas.unwrap_or(0) == want
        && st.replicas.unwrap_or(0) == want
}

pub async fn run(engine: &Engine, ctx: &JobCtx, plan: &Plan) -> Result<(), String> {
    let (ns, target) = (plan.namespace.as_str(), plan.target.as_str());
    let Owner::ReplicaSet { deployment: Some(dep_name), .. } = &plan.owner else {
        return Err(format!("pod {ns}/{} is not owned by a Deployment", plan.pod_name));
    };
    let original = engine.capture(ctx, plan).await?;
    let all: Vec<String> = original.spec.iter().flat_map(|s| s.containers.iter()).map(|c| c.name.clone()).collect();
    checkpoint::take(engine, ctx, plan, &all).await?;

    let api: Api<Deployment> = Api::namespaced(engine.client.clone(), ns);
    let pp = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    ctx.step("pin-node-selector", async {
        let dep = retry::transient(|| api.get(dep_name))
            .await
            .map_err(|e| format!("cannot read Deployment {dep_name}: {e}"))?;
        let previous = dep
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|s| s.node_selector.as_ref())
            .and_then(|m| m.get(marks::HOSTNAME))
            .cloned();
        ctx.undo.push(Undo::PatchDeployment {
            namespace: ns.into(),
            name: dep_name.clone(),
            patch: json!({
                "metadata": {"annotations": {marks::PINNED_BY: null, marks::PREVIOUS_SELECTOR: null}},
                "spec": {"template": {"spec": {"nodeSelector": {marks::HOSTNAME: previous}}}}
            }),
        });
        let patch = json!({
            "metadata": {"annotations": {
                marks::PINNED_BY: ctx.id,
                marks::PREVIOUS_SELECTOR: serde_json::to_string(&previous).unwrap_or_default()}},
            "spec": {"template": {"spec": {"nodeSelector": {marks::HOSTNAME: target}}}}
        });
        let patch = Patch::Merge(&patch);
        retry::transient(|| api.patch(dep_name, &pp, &patch))
            .await
            .map_err(|e| format!("cannot patch Deployment {dep_name}: {e}"))?;
        ctx.note("pin-node-selector", format!("Deployment {dep_name}: nodeSelector {}={target}", marks::HOSTNAME));
        Ok(())
    })
    .await?;

    let rolled = wait::until(&api, dep_name, |d: Option<&Deployment>| match d {
        None => wait::Check::Fail(format!("Deployment {dep_name} was deleted")),
        Some(d) if rolled_out(d) => wait::Check::Done(()),
        Some(_) => wait::Check::Wait,
    });
    ctx.step("wait-rollout", engine.while_node_ready(target, rolled)).await?;
    ctx.undo.commit();

    ctx.step("unmark", async {
        let patch = json!({"metadata": {"annotations": {marks::PINNED_BY: null, marks::PREVIOUS_SELECTOR: null}}});
        let patch = Patch::Merge(&patch);
        if let Err(e) = retry::transient(|| api.patch(dep_name, &pp, &patch)).await {
            // The move is done; a leftover marker is repaired on the next start.
            tracing::warn!(job = %ctx.id, error = %e, "could not remove pin markers");
        }
        ctx.details(|d| d.new_node_name = target.into());
        Ok(())
    })
    .await
}
