//! Checks made before a job exists, so a request that cannot succeed gets a
//! clear 4xx instead of a job that fails later: the pod exists (404) and runs on
//! `source_node` (409), no job is active for it (409), the target exists, is
//! Ready and schedulable and the pod fits there (422, with the numbers), and the
//! strategy can move this pod without losing it (422).

use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::ListParams;
use sdi_core::fit::{self, Resources};
use sdi_core::strategy::{self, Owner, Strategy};

use super::{CheckpointMode, Engine, Plan};
use crate::cluster::{facts, retry};
use crate::config::StrategyChoice;
use crate::jobs::{JobStore, MigrationRequest};

/// Why a request was refused: HTTP status and the `{error, details}` body.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub status: u16,
    pub error: &'static str,
    pub details: String,
    /// The job already running for this pod (409).
    pub migration_id: Option<String>,
}

fn reject(status: u16, error: &'static str, details: String) -> Rejection {
    Rejection { status, error, details, migration_id: None }
}

fn unavailable(what: &str, e: kube::Error) -> Rejection {
    reject(503, "Kubernetes API unavailable", format!("cannot read {what}: {e}"))
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

pub async fn check(
    engine: &Engine,
    store: &dyn JobStore,
    req: &MigrationRequest,
    default_strategy: StrategyChoice,
) -> Result<Plan, Rejection> {
    let (ns, name) = (req.pod_namespace.as_str(), req.pod_name.as_str());
    let pods: Api<Pod> = Api::namespaced(engine.client.clone(), ns);
    let pod = match retry::transient(|| pods.get_opt(name)).await {
        Ok(Some(p)) => p,
        Ok(None) => return Err(reject(404, "Pod not found", format!("pod {ns}/{name} does not exist"))),
        Err(e) => return Err(unavailable(&format!("pod {ns}/{name}"), e)),
    };
    if let Some(id) = store.active_for(ns, name) {
        return Err(Rejection {
            status: 409,
            error: "Migration already in progress",
            details: format!("{id} is already moving pod {ns}/{name}"),
            migration_id: Some(id),
        });
    }
    let on = facts::pod_node(&pod);
    if on != Some(req.source_node.as_str()) {
        let now = on.map_or("no node (not scheduled yet)".to_string(), |n| format!("node {n}"));
        return Err(reject(
            409,
            "Pod is not on the source node",
            format!("pod {ns}/{name} runs on {now}, not on source_node {}", req.source_node),
        ));
    }
    if pod.metadata.deletion_timestamp.is_some() {
        return Err(reject(409, "Pod is being deleted", format!("pod {ns}/{name} is terminating")));
    }
    if matches!(facts::pod_phase(&pod), "Succeeded" | "Failed") {
        return Err(reject(
            409,
            "Pod has finished",
            format!("pod {ns}/{name} is {}; there is nothing left to run elsewhere", facts::pod_phase(&pod)),
        ));
    }

    // Owner, with the Deployment behind a ReplicaSet (pin needs it).
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
    let wanted = requested_strategy(req.strategy.unwrap_or(default_strategy));
    let strategy = strategy::choose(wanted, &owner).map_err(|e| reject(422, "Strategy not applicable", e))?;
    if req.preserve_pv && !matches!(strategy, Strategy::Recreate) {
        return Err(reject(
            422,
            "Strategy not applicable",
            format!(
                "preserve_pv mounts a checkpoint volume in a recreated pod; strategy {strategy} does not create one"
            ),
        ));
    }
    if req.checkpoint == Some(true) && !engine.settings.checkpointing {
        return Err(reject(
            422,
            "Checkpointing disabled",
            "the request demands a checkpoint but ENABLE_CHECKPOINTING=false on this service".into(),
        ));
    }

    // The target.
    let nodes: Api<Node> = Api::all(engine.client.clone());
    let target = match retry::transient(|| nodes.get_opt(&req.target_node)).await {
        Ok(Some(n)) => n,
        Ok(None) => {
            return Err(reject(
                422,
                "Target node unavailable",
                format!("target node {} does not exist", req.target_node),
            ));
        }
        Err(e) => return Err(unavailable(&format!("node {}", req.target_node), e)),
    };
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
    let mut needs = facts::pod_needs(&pod);
    if strategy == Strategy::Pin {
        // Pin replaces the template's hostname selector; the old one no longer applies.
        needs.node_selector.remove(super::marks::HOSTNAME);
    }
    let problems = fit::misfits(&needs, &facts::node_facts(&target, requested));
    if !problems.is_empty() {
        let details = problems.iter().map(|m| m.describe(&req.target_node)).collect::<Vec<_>>().join("; ");
        return Err(reject(422, "Target node unavailable", details));
    }

    let checkpoint = match req.checkpoint {
        Some(true) => CheckpointMode::Required,
        Some(false) => CheckpointMode::No,
        None if engine.settings.checkpointing && req.preserve_pv => CheckpointMode::IfPossible,
        None => CheckpointMode::No,
    };
    let timeout = match req.timeout {
        t if t > 0 => Duration::from_secs(t as u64),
        _ => engine.settings.default_timeout,
    };
    Ok(Plan {
        strategy,
        owner,
        namespace: ns.into(),
        pod_name: name.into(),
        source: req.source_node.clone(),
        target: req.target_node.clone(),
        preserve_pv: req.preserve_pv,
        checkpoint,
        timeout,
        pod,
    })
}
