//! The ClusterRole aggregation controller (kube-controller-manager's
//! `clusterrole-aggregation`): a ClusterRole with an `aggregationRule` gets
//! the union of the rules of the ClusterRoles its selectors match (in name
//! order, without duplicates, never its own), rewritten whenever one of them
//! changes. This is what fills `admin`, `edit` and `view`.

use serde_json::{Value, json};

use super::rbac::{GROUP, Rule};
use crate::Cluster;
use crate::apiserver::{ApiServer, PatchType, WriteOptions};
use crate::selector::LabelSelector;

const MANAGER: &str = "clusterrole-aggregation-controller";

/// The rules an aggregated role should have, given every ClusterRole.
pub fn aggregated_rules(role: &Value, all: &[Value]) -> Option<Vec<Rule>> {
    let selectors = role.pointer("/aggregationRule/clusterRoleSelectors")?.as_array()?;
    let name = crate::meta::name(role);
    let mut rules: Vec<Rule> = Vec::new();
    for sel in selectors {
        let Ok(selector) = LabelSelector::from_object(sel) else { continue };
        for other in all {
            if crate::meta::name(other) == name {
                continue;
            }
            let labels: std::collections::BTreeMap<String, String> = other
                .pointer("/metadata/labels")
                .and_then(|l| serde_json::from_value(l.clone()).ok())
                .unwrap_or_default();
            if !selector.matches(&labels) {
                continue;
            }
            for r in other.get("rules").and_then(Value::as_array).into_iter().flatten() {
                if let Ok(rule) = serde_json::from_value::<Rule>(r.clone())
                    && !rules.contains(&rule)
                {
                    rules.push(rule);
                }
            }
        }
    }
    Some(rules)
}

/// Bring every aggregated ClusterRole up to date (until nothing changes, so a
/// chain — view into edit into admin — settles in one call).
pub fn reconcile(server: &ApiServer) {
    let res = server.res(GROUP, "clusterroles");
    for _ in 0..8 {
        let all: Vec<Value> = server
            .store
            .snapshot(&res.storage)
            .iter_from(None)
            .filter_map(|o| serde_json::from_slice(&o.body()).ok())
            .collect();
        let mut changed = false;
        for role in &all {
            let Some(rules) = aggregated_rules(role, &all) else { continue };
            let current: Vec<Rule> = role
                .get("rules")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|r| serde_json::from_value(r.clone()).ok()).collect())
                .unwrap_or_default();
            if current == rules {
                continue;
            }
            let patch = serde_json::to_vec(&json!({"rules": rules})).unwrap_or_default();
            let name = crate::meta::name(role);
            match server.patch(&res, None, name, None, PatchType::Merge, &patch, &WriteOptions::manager(MANAGER)) {
                Ok(_) => changed = true,
                Err(e) => tracing::debug!(role = name, error = %e, "aggregating a ClusterRole failed"),
            }
        }
        if !changed {
            return;
        }
    }
}

/// Run the controller until the cluster stops.
pub async fn run(cluster: Cluster) {
    let api = cluster.api().clone();
    let stop = cluster.stopping();
    let mut changes = api.store.subscribe(&api.res(GROUP, "clusterroles").storage);
    // What changed before we subscribed.
    reconcile(&api);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            r = changes.changed() => if r.is_err() { return },
        }
        // Our own writes notify us again: the next pass finds nothing to do.
        reconcile(&api);
    }
}
