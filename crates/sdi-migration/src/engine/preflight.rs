//! Pre-flight: gather the facts `sdi-core`'s admission rules decide on (the pod,
//! its owner, any job already moving it, the target node and what is bound to
//! it), and turn an admitted request into the job's [`Plan`]. The rules and their
//! order are in `sdi_core::admission`; HTTP statuses are the API's business.
//!
//! The facts come from the watch-fed cache: a request costs no API call. Only
//! what the cache cannot confirm — a pod it does not know (yet), or knows on
//! another node, a target it does not know — is read from the API before the
//! request is refused, so a cache a moment behind never refuses wrongly.

use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::ListParams;
use sdi_core::admission::{self, Facts, PodFacts, Reason, Refusal, Request};
use sdi_core::fit::{NodeFacts, PodNeeds, Resources};
use sdi_core::snapshot::Phase;
use sdi_core::strategy::{Owner, Strategy};

use super::{Engine, Plan};
use crate::cluster::cache::View;
use crate::cluster::{facts, retry};
use crate::config::StrategyChoice;
use crate::jobs::{JobStore, MigrationRequest};

/// How long a request waits for the cache's first list after start-up.
const SYNC_WAIT: Duration = Duration::from_secs(10);

fn unavailable(what: &str, e: kube::Error) -> Refusal {
    Refusal { reason: Reason::ApiUnavailable, details: format!("cannot read {what}: {e}") }
}

/// Map the request's strategy (`auto` = none) to the engine's.
pub fn requested_strategy(choice: StrategyChoice) -> Option<Strategy> {
    match choice {
        StrategyChoice::Auto => None,
        StrategyChoice::Recreate => Some(Strategy::Recreate),
        StrategyChoice::Surge => Some(Strategy::Surge),
        StrategyChoice::Pin => Some(Strategy::Pin),
        StrategyChoice::Evict => Some(Strategy::Evict),
    }
}

/// The pod as the cache knows it, with its uid.
fn cached_pod(v: &View<'_>, ns: &str, name: &str) -> Option<(PodFacts, String)> {
    let (p, m) = v.pod(ns, name)?;
    let owner_name = p.owner_name.as_deref().unwrap_or_default().to_string();
    let owner = match p.owner() {
        Owner::ReplicaSet { name, .. } => {
            Owner::ReplicaSet { deployment: v.replicaset(ns, &owner_name).and_then(|rs| rs.deployment.clone()), name }
        }
        other => other,
    };
    let facts = PodFacts {
        node: m.node_name.as_deref().map(str::to_string),
        terminating: p.terminating,
        phase: p.phase,
        owner,
        needs: PodNeeds {
            requests: p.requests,
            node_selector: p.needs.node_selector.clone(),
            affinity_terms: p.needs.affinity_terms.clone(),
            tolerations: p.needs.tolerations.clone(),
        },
    };
    Some((facts, uuid::Uuid::from_u128(m.uid).hyphenated().to_string()))
}

/// The pod as the API server has it (when the cache cannot confirm it).
async fn read_pod(engine: &Engine, ns: &str, name: &str) -> Result<Option<(PodFacts, String)>, Refusal> {
    let pods: Api<Pod> = Api::namespaced(engine.client.clone(), ns);
    let Some(pod) =
        retry::transient(|| pods.get_opt(name)).await.map_err(|e| unavailable(&format!("pod {ns}/{name}"), e))?
    else {
        return Ok(None);
    };
    let mut owner = facts::owner(&pod);
    if let Owner::ReplicaSet { name: rs_name, deployment } = &mut owner {
        let rs_api: Api<ReplicaSet> = Api::namespaced(engine.client.clone(), ns);
        if let Ok(Some(rs)) = retry::transient(|| rs_api.get_opt(rs_name)).await {
            *deployment = rs
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|r| r.controller == Some(true) && r.kind == "Deployment")
                .map(|r| r.name.clone());
        }
    }
    let facts = PodFacts {
        node: facts::pod_node(&pod).map(str::to_string),
        terminating: pod.metadata.deletion_timestamp.is_some(),
        phase: Phase::parse(facts::pod_phase(&pod)),
        owner,
        needs: facts::pod_needs(&pod),
    };
    Ok(Some((facts, pod.metadata.uid.unwrap_or_default())))
}

/// The target node as the API server has it, with the requests of what is bound to it.
async fn read_node(engine: &Engine, name: &str) -> Result<Option<NodeFacts>, Refusal> {
    let nodes: Api<Node> = Api::all(engine.client.clone());
    let Some(node) =
        retry::transient(|| nodes.get_opt(name)).await.map_err(|e| unavailable(&format!("node {name}"), e))?
    else {
        return Ok(None);
    };
    let lp = ListParams::default().fields(&format!("spec.nodeName={name}"));
    let all_pods: Api<Pod> = Api::all(engine.client.clone());
    let on_node =
        retry::transient(|| all_pods.list(&lp)).await.map_err(|e| unavailable(&format!("pods on {name}"), e))?;
    let requested = on_node
        .items
        .iter()
        .filter(|p| facts::holds_resources(p) && p.metadata.deletion_timestamp.is_none())
        .map(facts::pod_requests)
        .fold(Resources::default(), |a, b| a + b);
    Ok(Some(facts::node_facts(&node, requested)))
}

pub async fn check(
    engine: &Engine,
    store: &dyn JobStore,
    req: &MigrationRequest,
    default_strategy: StrategyChoice,
    this: Option<&str>,
) -> Result<Plan, Refusal> {
    let (ns, name) = (req.pod_namespace.as_str(), req.pod_name.as_str());
    let request = Request {
        namespace: ns,
        pod: name,
        source: &req.source_node,
        target: &req.target_node,
        strategy: requested_strategy(req.strategy.unwrap_or(default_strategy)),
        preserve_pv: req.preserve_pv,
        checkpoint: req.checkpoint,
        timeout_secs: req.timeout,
    };
    let settings = admission::Settings {
        checkpointing: engine.settings.checkpointing,
        default_timeout_secs: engine.settings.default_timeout.as_secs(),
    };
    let synced = engine.cache.wait_synced(SYNC_WAIT).await;
    let (pod, target) = if synced {
        engine.cache.read(|v| (cached_pod(v, ns, name), v.node(&req.target_node).map(|n| n.facts.clone())))
    } else {
        (None, None)
    };
    let pod = match pod {
        Some(p) if p.0.node.as_deref() == Some(req.source_node.as_str()) => Some(p),
        _ => read_pod(engine, ns, name).await?,
    };
    let target = match (target, &pod) {
        (Some(t), _) => Some(t),
        // Only worth asking when the pod passed its own checks.
        (None, Some(_)) => read_node(engine, &req.target_node).await?,
        (None, None) => None,
    };
    // The migration being started is not "another job moving the pod".
    let active = store.active_for(ns, name).filter(|id| Some(id.as_str()) != this);
    let facts = Facts { pod: pod.as_ref().map(|p| &p.0), active_job: active.as_deref(), target: target.as_ref() };
    let admitted = admission::admit(&request, facts, settings)?;
    let Some((pod, uid)) = pod else {
        // Admission refuses a missing pod; this is only for the type.
        return Err(Refusal { reason: Reason::PodNotFound, details: format!("pod {ns}/{name} does not exist") });
    };
    Ok(Plan {
        strategy: admitted.strategy,
        pod_uid: Some(uid).filter(|u| !u.is_empty()),
        owner: pod.owner,
        namespace: ns.into(),
        pod_name: name.into(),
        source: req.source_node.clone(),
        target: req.target_node.clone(),
        preserve_pv: req.preserve_pv,
        checkpoint: admitted.checkpoint,
        timeout: Duration::from_secs(admitted.timeout_secs),
    })
}
