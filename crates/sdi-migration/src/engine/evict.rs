//! `evict` — the Eviction API, for StatefulSet and other controller-owned pods.
//!
//! The API server refuses (429) while a PodDisruptionBudget would be violated;
//! the job keeps asking, with backoff, until its timeout. The owner then
//! recreates the pod wherever the scheduler puts it; the job completes when that
//! replacement is Ready and reports where it landed. The replacement is a pod of
//! the same owner that did not exist before the eviction — never a sibling that
//! was already running, and never the original under a reused name.

use std::collections::HashSet;
use std::time::Duration;

use sdi_core::error::Category;

use super::{Engine, JobCtx, Plan, checkpoint};
use crate::cluster::cache::uid_number;
use crate::cluster::{facts, retry, wait};
use crate::error::Error;

/// Post the eviction until the API server accepts it. A 429 (budget) is retried
/// with backoff up to 10 s apart; the job's timeout ends the attempts.
async fn evict(ctx: &JobCtx, ns: &str, name: &str) -> Result<(), Error> {
    let mut delay = Duration::from_millis(250);
    let mut refusals = 0u32;
    loop {
        match ctx.writer.evict(ns, name).await {
            Ok(()) => return Ok(()),
            Err(Error::Api { source, .. }) if retry::is_not_found(&source) => {
                return Err(Error::new(Category::NotFound, format!("pod {ns}/{name} disappeared before eviction")));
            }
            Err(Error::Api { source, .. }) if retry::is_transient(&source) => {
                refusals += 1;
                ctx.note("evict", format!("refused {refusals} time(s), retrying: {source}"));
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e),
        }
    }
}

pub async fn run(engine: &Engine, ctx: &JobCtx, plan: &Plan) -> Result<(), Error> {
    let (ns, name) = (plan.namespace.as_str(), plan.pod_name.as_str());
    let original = engine.capture(ctx, plan).await?;
    let running: Vec<String> =
        facts::container_states(&original).into_iter().filter(|s| s.should_migrate).map(|s| s.name).collect();
    checkpoint::take(ctx, plan, &running).await?;
    let Some(owner) =
        original.metadata.owner_references.iter().flatten().find(|r| r.controller == Some(true)).map(|r| r.uid.clone())
    else {
        return Err(Error::new(Category::Invalid, format!("pod {ns}/{name} has no controller to recreate it")));
    };
    // The owner's pods now, the original among them: the replacement is none of these.
    let mut before: HashSet<u128> = engine.cache.read(|v| v.owned_by(&owner).map(|(_, m)| m.uid).collect());
    before.extend(original.metadata.uid.as_deref().map(uid_number));

    ctx.step("evict", evict(ctx, ns, name)).await?;

    let (pod_name, node) = ctx
        .step("wait-replacement", async {
            let found = engine
                .cache
                .until(|v| {
                    let ready = v
                        .owned_by(&owner)
                        .find(|(p, m)| !before.contains(&m.uid) && m.ready && !p.terminating && &*p.namespace == ns);
                    match ready {
                        Some((p, m)) => {
                            wait::Check::Done((p.name.to_string(), m.node_name.as_deref().map(str::to_string)))
                        }
                        None => wait::Check::Wait,
                    }
                })
                .await?;
            let (pod_name, node) = (found.0, found.1.unwrap_or_default());
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
            Ok((pod_name, node))
        })
        .await?;
    tracing::debug!(job = %ctx.id, pod = %pod_name, node, "replacement Ready");
    engine.measure(ctx, ns, &pod_name).await
}
