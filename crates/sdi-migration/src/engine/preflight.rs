//! Pre-flight: gather the facts `sdi-core`'s admission rules decide on (the pod,
//! its owner, any job already moving it, the target node and what is bound to
//! it), and turn an admitted request into the job's [`Plan`]. The rules and their
//! order are in `sdi_core::admission`; HTTP statuses are the API's business.

use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::ListParams;
use sdi_core::admission::{self, Facts, PodFacts, Reason, Refusal, Request};
use sdi_core::fit::Resources;
use sdi_core::snapshot::Phase;
use sdi_core::strategy::{Owner, Strategy};

use super::{Engine, Plan};
use crate::cluster::{facts, retry};
use crate::config::StrategyChoice;
use crate::jobs::{JobStore, MigrationRequest};

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

/// The pod's owner, with the Deployment behind a ReplicaSet (pin needs it).
async fn owner(engine: &Engine, ns: &str, pod: &Pod) -> Owner {
    let mut owner = facts::owner(pod);
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
    owner
}

pub async fn check(
    engine: &Engine,
    store: &dyn JobStore,
    req: &MigrationRequest,
    default_strategy: StrategyChoice,
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
    let pods: Api<Pod> = Api::namespaced(engine.client.clone(), ns);
    let pod = retry::transient(|| pods.get_opt(name)).await.map_err(|e| unavailable(&format!("pod {ns}/{name}"), e))?;
    let active = store.active_for(ns, name);
    let not_found = || Refusal { reason: Reason::PodNotFound, details: format!("pod {ns}/{name} does not exist") };
    let Some(pod) = pod else {
        let facts = Facts { pod: None, active_job: active.as_deref(), target: None };
        return Err(admission::admit(&request, facts, settings).err().unwrap_or_else(not_found));
    };
    let pod_facts = PodFacts {
        node: facts::pod_node(&pod).map(str::to_string),
        terminating: pod.metadata.deletion_timestamp.is_some(),
        phase: Phase::parse(facts::pod_phase(&pod)),
        owner: owner(engine, ns, &pod).await,
        needs: facts::pod_needs(&pod),
    };

    // The target, with the requests of what is bound to it.
    let nodes: Api<Node> = Api::all(engine.client.clone());
    let target = retry::transient(|| nodes.get_opt(&req.target_node))
        .await
        .map_err(|e| unavailable(&format!("node {}", req.target_node), e))?;
    let target = match target {
        Some(node) => {
            let lp = ListParams::default().fields(&format!("spec.nodeName={}", req.target_node));
            let all_pods: Api<Pod> = Api::all(engine.client.clone());
            let on_target = retry::transient(|| all_pods.list(&lp))
                .await
                .map_err(|e| unavailable(&format!("pods on {}", req.target_node), e))?;
            let requested = on_target
                .items
                .iter()
                .filter(|p| facts::holds_resources(p))
                .map(facts::pod_requests)
                .fold(Resources::default(), |a, b| a + b);
            Some(facts::node_facts(&node, requested))
        }
        None => None,
    };
    let facts = Facts { pod: Some(&pod_facts), active_job: active.as_deref(), target: target.as_ref() };
    let admitted = admission::admit(&request, facts, settings)?;
    Ok(Plan {
        strategy: admitted.strategy,
        owner: pod_facts.owner,
        namespace: ns.into(),
        pod_name: name.into(),
        source: req.source_node.clone(),
        target: req.target_node.clone(),
        preserve_pv: req.preserve_pv,
        checkpoint: admitted.checkpoint,
        timeout: Duration::from_secs(admitted.timeout_secs),
        pod,
    })
}
