//! `recreate` — bare pods, the original controller's five steps: capture,
//! checkpoint (PVC and container archives), a copy with only the containers worth
//! moving on the target, delete the original once the copy is Ready, measure.

use sdi_core::error::Category;
use serde_json::json;

use super::{Engine, JobCtx, Plan, checkpoint, copy, marks, unix_now};
use crate::error::Error;

pub async fn run(engine: &Engine, ctx: &JobCtx, plan: &Plan) -> Result<(), Error> {
    let (ns, name, target) = (plan.namespace.as_str(), plan.pod_name.as_str(), plan.target.as_str());
    let w = &ctx.writer;
    let pod = engine.capture(ctx, plan).await?;
    let states = sdi_core::containers::to_migrate(&crate::cluster::facts::container_states(&pod))
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
    if states.is_empty() {
        return Err(Error::new(
            Category::Invalid,
            format!("pod {ns}/{name} has no running or failed container to migrate"),
        ));
    }
    let unix = unix_now();

    // Step 2: checkpoint PVC, container archives.
    let pvc_name = if plan.preserve_pv {
        let pvc_name = copy::derived_name(&format!("checkpoint-{name}"), &format!("-{unix}"));
        ctx.step("create-checkpoint-pvc", async {
            w.create_pvc(&copy::checkpoint_pvc(ns, &pvc_name, &engine.settings.checkpoint_pvc_size, &ctx.id)).await?;
            ctx.details(|d| d.pv_claim_name = pvc_name.clone());
            Ok(())
        })
        .await?;
        Some(pvc_name)
    } else {
        None
    };
    let restore = checkpoint::precheck(engine, ctx, plan).await?;
    let archives = checkpoint::take(ctx, plan, &states).await?;
    let images = if restore { checkpoint::images(engine, ctx, plan, &archives).await? } else { Vec::new() };

    // Step 3: the optimized copy on the target, Ready.
    let new_name = copy::derived_name(name, &format!("-migrated-{unix}"));
    ctx.step("create-pod", async {
        let keep: Vec<&str> = states.iter().map(String::as_str).collect();
        let mut copy = copy::recreate_copy(&pod, &ctx.id, target, &new_name, &keep, pvc_name.as_deref());
        copy::run_images(&mut copy, &images, engine.settings.images.checkpoint_pull_secret.as_deref());
        w.create_pod(&copy).await?;
        ctx.details(|d| {
            d.new_pod_name = new_name.clone();
            d.new_node_name = target.into();
        });
        ctx.note("create-pod", format!("{new_name} on {target} with {}", keep.join(", ")));
        Ok(())
    })
    .await?;
    let ready = ctx.step("wait-ready", checkpoint::wait_ready(engine, &images, ns, &new_name, target)).await;
    checkpoint::after_ready(ctx, &images, &ready);
    ready?;

    // Step 4: only now the original goes. If that fails, the copy is undone.
    ctx.step("delete-original", w.delete_pod(ns, name, 30)).await?;
    w.commit();
    // The copy is the workload now, not a staged copy: drop the role label so a
    // restart's repair does not look at it (the job label stays, as provenance).
    let unmark = json!({"metadata": {"labels": {marks::ROLE: null}}});
    if let Err(e) = w.patch_pod(ns, &new_name, &unmark, None).await {
        tracing::warn!(job = %ctx.id, error = %e, "could not unmark the new pod; repair will leave it be");
    }

    // Step 5: measured usage of the new pod.
    engine.measure(ctx, ns, &new_name).await
}
