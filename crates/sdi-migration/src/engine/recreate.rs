//! `recreate` — bare pods, the original controller's five steps: capture,
//! checkpoint (PVC and container archives), a copy with only the containers worth
//! moving on the target, delete the original once the copy is Ready, measure.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::undo::Undo;
use super::{Engine, JobCtx, Plan, checkpoint, copy, marks, unix_now};
use crate::cluster::{FIELD_MANAGER, retry};

pub async fn run(engine: &Engine, ctx: &JobCtx, plan: &Plan) -> Result<(), String> {
    let (ns, name, target) = (plan.namespace.as_str(), plan.pod_name.as_str(), plan.target.as_str());
    let pod = engine.capture(ctx, plan).await?;
    let states = sdi_core::containers::to_migrate(&crate::cluster::facts::container_states(&pod))
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
    if states.is_empty() {
        return Err(format!("pod {ns}/{name} has no running or failed container to migrate"));
    }
    let pp = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    let unix = unix_now();

    // Step 2: checkpoint PVC, container archives.
    let pvc_name = if plan.preserve_pv {
        let pvc_name = copy::derived_name(&format!("checkpoint-{name}"), &format!("-{unix}"));
        ctx.step("create-checkpoint-pvc", async {
            let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(engine.client.clone(), ns);
            let pvc = copy::checkpoint_pvc(ns, &pvc_name, &engine.settings.checkpoint_pvc_size, &ctx.id);
            ctx.undo.push(Undo::DeletePvc { namespace: ns.into(), name: pvc_name.clone() });
            create_once(|| pvcs.create(&pp, &pvc), &pvc_name, "PVC").await?;
            ctx.details(|d| d.pv_claim_name = pvc_name.clone());
            Ok(())
        })
        .await?;
        Some(pvc_name)
    } else {
        None
    };
    checkpoint::take(engine, ctx, plan, &states).await?;

    // Step 3: the optimized copy on the target, Ready.
    let new_name = copy::derived_name(name, &format!("-migrated-{unix}"));
    ctx.step("create-pod", async {
        let keep: Vec<&str> = states.iter().map(String::as_str).collect();
        let copy = copy::recreate_copy(&pod, &ctx.id, target, &new_name, &keep, pvc_name.as_deref());
        ctx.undo.push(Undo::DeletePod { namespace: ns.into(), name: new_name.clone() });
        let pods = engine.pods(ns);
        create_once(|| pods.create(&pp, &copy), &new_name, "pod").await?;
        ctx.details(|d| {
            d.new_pod_name = new_name.clone();
            d.new_node_name = target.into();
        });
        ctx.note("create-pod", format!("{new_name} on {target} with {}", keep.join(", ")));
        Ok(())
    })
    .await?;
    ctx.step("wait-ready", engine.wait_ready_on(ns, &new_name, target)).await?;

    // Step 4: only now the original goes. If that fails, the copy is undone.
    ctx.step("delete-original", async {
        let dp = DeleteParams::default().grace_period(30);
        let pods = engine.pods(ns);
        match retry::transient(|| pods.delete(name, &dp)).await {
            Ok(_) => Ok(()),
            Err(e) if retry::is_not_found(&e) => Ok(()),
            Err(e) => Err(format!("cannot delete original {ns}/{name}: {e}")),
        }
    })
    .await?;
    ctx.undo.commit();
    // The copy is the workload now, not a staged copy: drop the role label so a
    // restart's repair does not look at it (the job label stays, as provenance).
    let pods = engine.pods(ns);
    let patch = json!({"metadata": {"labels": {marks::ROLE: null}}});
    let patch = Patch::Merge(&patch);
    let pp = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    if let Err(e) = retry::transient(|| pods.patch(&new_name, &pp, &patch)).await {
        tracing::warn!(job = %ctx.id, error = %e, "could not unmark the new pod; repair will leave it be");
    }

    // Step 5: measured usage of the new pod.
    engine.measure(ctx, ns, &new_name).await
}

/// Create, tolerating a retry that finds its own earlier attempt (409 AlreadyExists
/// after a lost answer): the name is unique to this job, so it is ours.
pub async fn create_once<T, F, Fut>(f: F, name: &str, what: &str) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    match retry::transient(f).await {
        Ok(_) => Ok(()),
        Err(e) if retry::code(&e) == Some(409) => {
            tracing::debug!(name, "already created by an earlier attempt");
            Ok(())
        }
        Err(e) => Err(format!("cannot create {what} {name}: {e}")),
    }
}
