//! `evict` — the Eviction API, for StatefulSet and other controller-owned pods.
//!
//! The API server refuses (429) while a PodDisruptionBudget would be violated;
//! the job keeps asking, with backoff, until its timeout. The owner then
//! recreates the pod wherever the scheduler puts it; the job completes when that
//! replacement is Ready and reports where it landed. The replacement is a pod of
//! the same owner that did not exist before the eviction — never a sibling that
//! was already running.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use sdi_core::error::Category;
use sdi_core::strategy::Owner;

use super::{Engine, JobCtx, Plan, checkpoint};
use crate::cluster::{facts, retry};
use crate::error::Error;

/// Post the eviction until the API server accepts it. A 429 (budget) is retried
/// with backoff up to 10 s apart; the job's timeout ends the attempts.
async fn evict(ctx: &JobCtx, ns: &str, name: &str) -> Result<(), Error> {
    let mut delay = Duration::from_millis(250);
    let mut refusals = 0u32;
    loop {
        match ctx.writer.evict(ns, name).await {
            Ok(()) => return Ok(()),
            Err(e) if retry::is_not_found(&e) => {
                return Err(Error::new(Category::NotFound, format!("pod {ns}/{name} disappeared before eviction")));
            }
            Err(e) if retry::is_transient(&e) => {
                refusals += 1;
                ctx.note("evict", format!("refused {refusals} time(s), retrying: {e}"));
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(Error::api(format!("evict pod {ns}/{name}"), e)),
        }
    }
}

/// Labels that select the owner's pods (its selector's matchLabels), or the pod's own.
async fn replacement_selector(engine: &Engine, plan: &Plan) -> String {
    let ns = &plan.namespace;
    let from = |m: Option<BTreeMap<String, String>>| {
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

/// The owner's pods, watched from before the eviction: the ones listed then are
/// known, so the replacement is told apart from siblings.
struct Replacements {
    stream: BoxStream<'static, Result<watcher::Event<Pod>, watcher::Error>>,
    before: HashSet<String>,
    owner_uid: Option<String>,
}

impl Replacements {
    /// Start watching and wait for the first full list.
    async fn watch(pods: Api<Pod>, selector: &str, owner_uid: Option<String>) -> Result<Replacements, Error> {
        let cfg = watcher::Config::default().labels(selector);
        let mut stream = watcher(pods, cfg).default_backoff().boxed();
        let mut before = HashSet::new();
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(watcher::Event::InitApply(p)) => before.extend(p.metadata.uid),
                Ok(watcher::Event::InitDone) => return Ok(Replacements { stream, before, owner_uid }),
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "pod watch interrupted; resuming"),
            }
        }
        Err(Error::new(Category::ApiUnavailable, "the watch on the owner's pods ended before it listed them"))
    }

    /// A Ready pod of the same owner that was not there before the eviction.
    async fn ready(&mut self) -> Result<Pod, Error> {
        while let Some(ev) = self.stream.next().await {
            let p = match ev {
                Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => p,
                Ok(_) => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "pod watch interrupted; resuming");
                    continue;
                }
            };
            let same_owner = p
                .metadata
                .owner_references
                .iter()
                .flatten()
                .any(|r| r.controller == Some(true) && Some(&r.uid) == self.owner_uid.as_ref());
            let new = p.metadata.uid.as_ref().is_some_and(|u| !self.before.contains(u));
            if same_owner && new && facts::pod_ready(&p) {
                return Ok(p);
            }
        }
        Err(Error::new(Category::ApiUnavailable, "watch for the replacement ended"))
    }
}

pub async fn run(engine: &Engine, ctx: &JobCtx, plan: &Plan) -> Result<(), Error> {
    let (ns, name) = (plan.namespace.as_str(), plan.pod_name.as_str());
    let original = engine.capture(ctx, plan).await?;
    let running: Vec<String> =
        facts::container_states(&original).into_iter().filter(|s| s.should_migrate).map(|s| s.name).collect();
    checkpoint::take(ctx, plan, &running).await?;
    let owner_uid =
        original.metadata.owner_references.iter().flatten().find(|r| r.controller == Some(true)).map(|r| r.uid.clone());
    let selector = replacement_selector(engine, plan).await;
    let mut replacements = Replacements::watch(engine.pods(ns), &selector, owner_uid).await?;

    ctx.step("evict", evict(ctx, ns, name)).await?;

    let replacement = ctx
        .step("wait-replacement", async {
            let p = replacements.ready().await?;
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
            Ok(pod_name)
        })
        .await?;
    engine.measure(ctx, ns, &replacement).await
}
