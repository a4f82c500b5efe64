//! `evict` — the Eviction API, for StatefulSet and other controller-owned pods.
//!
//! The API server refuses (429) while a PodDisruptionBudget would be violated;
//! the job keeps asking, with backoff, until its timeout. The owner then
//! recreates the pod wherever the scheduler puts it; the job completes when that
//! replacement is Ready and reports where it landed.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use kube::Api;
use kube::api::EvictParams;
use kube::runtime::{WatchStreamExt, watcher};
use sdi_core::strategy::Owner;

use super::{Engine, JobCtx, Plan, checkpoint};
use crate::cluster::{facts, retry};

/// Post the eviction until the API server accepts it. A 429 (budget) is retried
/// with backoff up to 10 s apart; the job's timeout ends the attempts.
async fn evict(engine: &Engine, ctx: &JobCtx, ns: &str, name: &str) -> Result<(), String> {
    let pods = engine.pods(ns);
    let mut delay = Duration::from_millis(250);
    let mut refusals = 0u32;
    loop {
        match pods.evict(name, &EvictParams::default()).await {
            Ok(_) => return Ok(()),
            Err(e) if retry::is_not_found(&e) => return Err(format!("pod {ns}/{name} disappeared before eviction")),
            Err(e) if retry::is_transient(&e) => {
                refusals += 1;
                ctx.note("evict", format!("refused {refusals} time(s), retrying: {e}"));
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(format!("eviction of {ns}/{name} refused: {e}")),
        }
    }
}

/// Labels that select the owner's pods (its selector's matchLabels), or the pod's own.
async fn replacement_selector(engine: &Engine, plan: &Plan) -> String {
    let ns = &plan.namespace;
    let from = |m: Option<std::collections::BTreeMap<String, String>>| {
        m.map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","))
    };
    let owner_labels = match &plan.owner {
        Owner::StatefulSet { name } => {
            let api: Api<StatefulSet> = Api::namespaced(engine.client.clone(), ns);
            retry::transient(|| api.get(name)).await.ok().and_then(|s| s.spec.and_then(|s| s.selector.match_labels))
        }
        Owner::ReplicaSet { name, .. } => {
            let api: Api<ReplicaSet> = Api::namespaced(engine.client.clone(), ns);
            retry::transient(|| api.get(name)).await.ok().and_then(|s| s.spec.and_then(|s| s.selector.match_labels))
        }
        _ => None,
    };
    from(owner_labels).filter(|s| !s.is_empty()).or_else(|| from(plan.pod.metadata.labels.clone())).unwrap_or_default()
}

pub async fn run(engine: &Engine, ctx: &JobCtx, plan: &Plan) -> Result<(), String> {
    let (ns, name) = (plan.namespace.as_str(), plan.pod_name.as_str());
    let original = engine.capture(ctx, plan).await?;
    let running: Vec<String> =
        facts::container_states(&original).into_iter().filter(|s| s.should_migrate).map(|s| s.name).collect();
    checkpoint::take(engine, ctx, plan, &running).await?;
    let original_uid = original.metadata.uid.clone();
    let owner_uid =
        original.metadata.owner_references.iter().flatten().find(|r| r.controller == Some(true)).map(|r| r.uid.clone());
    let selector = replacement_selector(engine, plan).await;

    ctx.step("evict", evict(engine, ctx, ns, name)).await?;

    ctx.step("wait-replacement", async {
        let pods = engine.pods(ns);
        let cfg = watcher::Config::default().labels(&selector);
        let mut stream = watcher(pods, cfg).default_backoff().applied_objects().boxed();
        while let Some(ev) = stream.next().await {
            let Ok(p) = ev else { continue };
            let same_owner = p
                .metadata
                .owner_references
                .iter()
                .flatten()
                .any(|r| r.controller == Some(true) && Some(&r.uid) == owner_uid.as_ref());
            if same_owner && p.metadata.uid != original_uid && facts::pod_ready(&p) {
                let pod_name = p.metadata.name.clone().unwrap_or_default();
                let node = facts::pod_node(&p).unwrap_or_default().to_string();
                ctx.note(
                    "wait-replacement",
                    if node == plan.target {
                        format!("{pod_name} Ready on {node}")
                    } else {
                        format!("{pod_name} Ready on {node} (the scheduler chose it; requested {})", plan.target)
                    },
                );
                ctx.details(|d| {
                    d.new_pod_name = pod_name.clone();
                    d.new_node_name = node.clone();
                });
                return Ok(pod_name);
            }
        }
        Err("watch for the replacement ended".to_string())
    })
    .await
    .map(|_| ())?;
    let new_name = plan_new_name(ctx);
    engine.measure(ctx, ns, &new_name).await
}

fn plan_new_name(ctx: &JobCtx) -> String {
    ctx.store.get(&ctx.id).map(|j| j.details.new_pod_name).unwrap_or_default()
}
