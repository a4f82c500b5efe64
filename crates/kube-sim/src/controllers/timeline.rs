//! Loading a scenario into a running cluster and playing its timeline in
//! simulated time: usage changes, node failures and recoveries, API faults,
//! scaling, objects created and deleted, nodes cordoned.

use serde_json::{Value, json};

use super::state::UsageOverride;
use crate::Cluster;
use crate::apiserver::{DeleteOptions, PatchType, ScaleChange, WriteOptions};
use crate::faults::FaultConfig;
use crate::resources::ResourceInfo;
use crate::scenario::{Action, Scenario};
use crate::selector::LabelSelector;

const MANAGER: &str = "kube-sim-scenario";

fn opts() -> WriteOptions {
    WriteOptions::manager(MANAGER)
}

/// The resource serving objects of `kind` (and `api_version` when known).
fn resource_for(cluster: &Cluster, api_version: Option<&str>, kind: &str) -> Option<std::sync::Arc<ResourceInfo>> {
    match api_version {
        Some(av) => cluster.api().registry.by_kind(av, kind),
        None => cluster
            .api()
            .registry
            .all()
            .into_iter()
            .find(|r| r.kind == kind && r.conversion == crate::resources::Conversion::None && !r.read_only),
    }
}

/// Create one object of any served kind.
pub fn create_object(cluster: &Cluster, obj: Value) -> Result<(), String> {
    let av = obj.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_string();
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
    let name = crate::meta::name(&obj).to_string();
    let res =
        resource_for(cluster, Some(&av), &kind).ok_or_else(|| format!("{kind} {name}: {av} {kind} is not served"))?;
    let ns = if res.namespaced { Some(crate::meta::namespace(&obj).unwrap_or("default").to_string()) } else { None };
    cluster
        .api()
        .create(&res, ns.as_deref(), obj, &opts())
        .map(|_| ())
        .map_err(|e| format!("{kind} {name}: {}", e.message))
}

/// Create a scenario's objects and start playing its timeline.
pub fn load(cluster: &Cluster, scenario: &Scenario) -> Result<(), String> {
    {
        let mut state = cluster.sim().write();
        state.settings.seed = scenario.seed;
        state.settings.startup_seconds = scenario.defaults.startup_seconds;
        state.settings.shutdown_seconds = scenario.defaults.shutdown_seconds;
        state.settings.heartbeat_seconds = scenario.defaults.heartbeat_seconds;
        state.settings.record_events = scenario.defaults.record_events;
    }
    for obj in scenario.objects() {
        create_object(cluster, obj)?;
    }
    let actions = scenario.timeline();
    if !actions.is_empty() {
        tokio::spawn(play(cluster.clone(), actions));
    }
    Ok(())
}

async fn play(cluster: Cluster, actions: Vec<(f64, Action)>) {
    let stop = cluster.stopping();
    for (at, action) in actions {
        let wait = at - cluster.clock().elapsed().as_secs_f64();
        if wait > 0.0 {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = cluster.clock().sleep(std::time::Duration::from_secs_f64(wait)) => {}
            }
        }
        let what = format!("{action:?}");
        match apply(&cluster, action) {
            Ok(()) => tracing::info!(at, action = %what, "scenario timeline"),
            Err(e) => tracing::warn!(at, action = %what, error = %e, "scenario timeline action failed"),
        }
    }
}

fn patch(cluster: &Cluster, res: &ResourceInfo, ns: Option<&str>, name: &str, p: Value) -> Result<(), String> {
    let body = serde_json::to_vec(&p).map_err(|e| e.to_string())?;
    cluster.api().patch(res, ns, name, None, PatchType::Merge, &body, &opts()).map(|_| ()).map_err(|e| e.message)
}

/// Carry out one timeline action now.
pub fn apply(cluster: &Cluster, action: Action) -> Result<(), String> {
    let nodes = cluster.api().res("", "nodes");
    match action {
        Action::SetUsage { namespace, selector, cpu, memory } => {
            let selector = LabelSelector::parse(&selector)?;
            cluster.sim().write().usage_overrides.push(UsageOverride { namespace, selector, cpu, memory });
            Ok(())
        }
        Action::NodeFailure(n) => {
            patch(cluster, &nodes, None, &n, json!({"metadata": {"annotations": {"sim.kube-sim.io/ready": "false"}}}))
        }
        Action::NodeRecovery(n) => {
            patch(cluster, &nodes, None, &n, json!({"metadata": {"annotations": {"sim.kube-sim.io/ready": "true"}}}))
        }
        Action::Cordon(n) => patch(cluster, &nodes, None, &n, json!({"spec": {"unschedulable": true}})),
        Action::Uncordon(n) => patch(cluster, &nodes, None, &n, json!({"spec": {"unschedulable": null}})),
        Action::Faults(v) => {
            let cfg: FaultConfig = serde_json::from_value(v).map_err(|e| format!("faults: {e}"))?;
            cluster.api().faults.set(cfg)
        }
        Action::ClearFaults => {
            cluster.api().faults.clear();
            Ok(())
        }
        Action::Scale { kind, namespace, name, replicas } => {
            let res = resource_for(cluster, None, &kind).ok_or_else(|| format!("{kind} is not served"))?;
            let scale = json!({"spec": {"replicas": replicas}});
            cluster
                .api()
                .update_scale(&res, Some(&namespace), &name, ScaleChange::Replace(&scale), &opts())
                .map(|_| ())
                .map_err(|e| e.message)
        }
        Action::Create(objs) => objs.into_iter().try_for_each(|o| create_object(cluster, o)),
        Action::Delete { kind, namespace, name } => {
            let res = resource_for(cluster, None, &kind).ok_or_else(|| format!("{kind} is not served"))?;
            let ns = if res.namespaced { namespace.or(Some("default".into())) } else { None };
            cluster
                .api()
                .delete(&res, ns.as_deref(), &name, &DeleteOptions::default())
                .map(|_| ())
                .map_err(|e| e.message)
        }
    }
}
