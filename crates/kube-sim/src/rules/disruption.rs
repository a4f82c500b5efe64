//! PodDisruptionBudget status (`pkg/controller/disruption/disruption.go`: `getExpectedPodCount`,
//! `buildDisruptedPodMap`, `countHealthyPods`, `updatePdbStatus`, `failSafe`, and
//! `pkg/apis/policy/helper`'s DisruptionAllowed condition).

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::ranking::is_pod_ready;
use crate::cached_pod::{CachedPod, MetaView};

/// How long an entry of `status.disruptedPods` (an eviction the API server approved) keeps the
/// pod out of `currentHealthy` while waiting for the pod to be deleted.
pub const DELETION_TIMEOUT_SECONDS: i64 = 120;

pub const CONDITION_DISRUPTION_ALLOWED: &str = "DisruptionAllowed";
pub const REASON_SUFFICIENT_PODS: &str = "SufficientPods";
pub const REASON_INSUFFICIENT_PODS: &str = "InsufficientPods";
pub const REASON_SYNC_FAILED: &str = "SyncFailed";

/// Inputs of one disruption-controller sync of a budget.
#[derive(Debug, Clone)]
pub struct PdbInput<'a> {
    pub pdb: &'a PodDisruptionBudget,
    /// Pods of the budget's namespace matching its selector.
    pub pods: Vec<&'a CachedPod>,
    /// Sum of `spec.replicas` of the distinct controllers owning `pods` (a Deployment's for pods
    /// of its ReplicaSets), needed when [`needs_controller_scale`]. `None` counts as no
    /// controller found: upstream then sees only unmanaged pods and expects 0.
    pub controller_scale: Option<i32>,
    pub now: Timestamp,
}

/// Whether the budget's arithmetic needs the controllers' scale: `maxUnavailable` is set, or
/// `minAvailable` is a percentage. An integer `minAvailable` counts the matching pods instead.
pub fn needs_controller_scale(pdb: &PodDisruptionBudget) -> bool {
    let spec = pdb.spec.as_ref();
    spec.is_some_and(|s| s.max_unavailable.is_some())
        || matches!(spec.and_then(|s| s.min_available.as_ref()), Some(IntOrString::String(_)))
}

/// `intstr.GetScaledValueFromIntOrPercent`, with upstream's error text.
fn scaled(value: &IntOrString, total: i32, round_up: bool) -> Result<i32, String> {
    let s = match value {
        IntOrString::Int(i) => return Ok(*i),
        IntOrString::String(s) => s,
    };
    let Some(digits) = s.strip_suffix('%') else {
        return Err("invalid value for IntOrString: invalid type: string is not a percentage".to_string());
    };
    let n: i64 = digits.parse().map_err(|e: std::num::ParseIntError| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => "value out of range",
            _ => "invalid syntax",
        };
        format!("invalid value for IntOrString: invalid value {s:?}: strconv.Atoi: parsing {digits:?}: {why}")
    })?;
    let product = n.saturating_mul(i64::from(total));
    let v = if round_up {
        product.div_euclid(100) + i64::from(product.rem_euclid(100) != 0)
    } else {
        product.div_euclid(100)
    };
    Ok(i32::try_from(v).unwrap_or(if v < 0 { i32::MIN } else { i32::MAX }))
}

fn has_controller(pod: &CachedPod) -> bool {
    pod.metadata.owner_references().iter().any(|r| r.controller == Some(true))
}

/// `(expectedPods, desiredHealthy)` as `getExpectedPodCount` computes them.
fn expected_and_desired(input: &PdbInput<'_>) -> Result<(i32, i32), String> {
    let spec = input.pdb.spec.as_ref();
    let scale = || {
        if input.pods.iter().any(|p| has_controller(p)) { input.controller_scale.unwrap_or(0) } else { 0 }
    };
    if let Some(max_unavailable) = spec.and_then(|s| s.max_unavailable.as_ref()) {
        let expected = scale();
        let mu = scaled(max_unavailable, expected, true)?;
        Ok((expected, expected.saturating_sub(mu).max(0)))
    } else {
        match spec.and_then(|s| s.min_available.as_ref()) {
            Some(IntOrString::Int(v)) => Ok((i32::try_from(input.pods.len()).unwrap_or(i32::MAX), *v)),
            Some(pct @ IntOrString::String(_)) => {
                let expected = scale();
                Ok((expected, scaled(pct, expected, true)?))
            }
            None => Ok((0, 0)),
        }
    }
}

fn plus_timeout(t: &Time) -> i128 {
    t.0.as_nanosecond() + i128::from(DELETION_TIMEOUT_SECONDS) * 1_000_000_000
}

/// `buildDisruptedPodMap`: keeps entries for pods still present, not being deleted, whose
/// deletion is not overdue (disruption time + 2 min is not before now).
fn disrupted_pods(input: &PdbInput<'_>) -> BTreeMap<String, Time> {
    let Some(previous) = input.pdb.status.as_ref().and_then(|s| s.disrupted_pods.as_ref()) else {
        return BTreeMap::new();
    };
    let now = input.now.as_nanosecond();
    input
        .pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| {
            let name = p.metadata.name.as_deref()?;
            let at = previous.get(name)?;
            (plus_timeout(at) >= now).then(|| (name.to_string(), at.clone()))
        })
        .collect()
}

/// `countHealthyPods`: Ready pods that are not being deleted and not awaiting a deletion
/// recorded in `disrupted`.
fn count_healthy(input: &PdbInput<'_>, disrupted: &BTreeMap<String, Time>) -> i32 {
    let now = input.now.as_nanosecond();
    let healthy = input
        .pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            let name = p.metadata.name.as_deref().unwrap_or("");
            disrupted.get(name).is_none_or(|at| plus_timeout(at) <= now)
        })
        .filter(|p| is_pod_ready(p))
        .count();
    i32::try_from(healthy).unwrap_or(i32::MAX)
}

/// `meta.SetStatusCondition`: updates in place (the transition time only moves when the
/// status changes) or appends with `lastTransitionTime = now`.
fn set_status_condition(conditions: &mut Vec<Condition>, mut new: Condition, now: Timestamp) {
    if let Some(cur) = conditions.iter_mut().find(|c| c.type_ == new.type_) {
        if cur.status != new.status {
            cur.status = new.status;
            cur.last_transition_time = Time(now);
        }
        cur.reason = new.reason;
        cur.message = new.message;
        cur.observed_generation = new.observed_generation;
    } else {
        new.last_transition_time = Time(now);
        conditions.push(new);
    }
}

fn disruption_condition(
    status: &str,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    Condition {
        type_: CONDITION_DISRUPTION_ALLOWED.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message,
        observed_generation: generation,
        last_transition_time: Time(now),
    }
}

/// `ConditionsAreUpToDate`.
fn conditions_up_to_date(status: &PodDisruptionBudgetStatus, generation: Option<i64>) -> bool {
    let Some(c) = status.conditions.iter().flatten().find(|c| c.type_ == CONDITION_DISRUPTION_ALLOWED) else {
        return false;
    };
    if status.observed_generation.unwrap_or(0) != generation.unwrap_or(0) {
        return false;
    }
    if status.disruptions_allowed > 0 {
        c.status == "True" && c.reason == REASON_SUFFICIENT_PODS
    } else {
        c.status == "False" && c.reason == REASON_INSUFFICIENT_PODS
    }
}

/// The budget's new status, as one disruption-controller sync writes it: `expectedPods`,
/// `desiredHealthy`, `currentHealthy` (Ready pods, minus those being deleted or recently
/// evicted), `disruptionsAllowed = max(0, currentHealthy - desiredHealthy)` (0 while
/// `expectedPods` is 0), the pruned `disruptedPods` (`None` when empty), `observedGeneration`,
/// and the DisruptionAllowed condition (True/SufficientPods or False/InsufficientPods, empty
/// message). When nothing changed the current status is returned as is. An invalid
/// int-or-percent makes it fail safe: disruptionsAllowed 0 and condition False/SyncFailed.
pub fn pdb_status(input: &PdbInput<'_>) -> PodDisruptionBudgetStatus {
    let generation = input.pdb.metadata.generation;
    let old = input.pdb.status.clone().unwrap_or_default();
    let (expected, desired) = match expected_and_desired(input) {
        Ok(v) => v,
        Err(message) => {
            let mut status = old;
            status.disruptions_allowed = 0;
            let gen_seen = status.observed_generation;
            let conditions = status.conditions.get_or_insert_with(Vec::new);
            let cond = disruption_condition("False", REASON_SYNC_FAILED, message, gen_seen, input.now);
            set_status_condition(conditions, cond, input.now);
            return status;
        }
    };
    let disrupted = disrupted_pods(input);
    let current = count_healthy(input, &disrupted);
    let mut allowed = current.saturating_sub(desired);
    if expected <= 0 || allowed <= 0 {
        allowed = 0;
    }

    let old_disrupted = old.disrupted_pods.clone().unwrap_or_default();
    if old.current_healthy == current
        && old.desired_healthy == desired
        && old.expected_pods == expected
        && old.disruptions_allowed == allowed
        && old_disrupted == disrupted
        && conditions_up_to_date(&old, generation)
    {
        return old;
    }

    let mut conditions = old.conditions.unwrap_or_default();
    let cond = if allowed > 0 {
        disruption_condition("True", REASON_SUFFICIENT_PODS, String::new(), generation, input.now)
    } else {
        disruption_condition("False", REASON_INSUFFICIENT_PODS, String::new(), generation, input.now)
    };
    set_status_condition(&mut conditions, cond, input.now);
    PodDisruptionBudgetStatus {
        current_healthy: current,
        desired_healthy: desired,
        expected_pods: expected,
        disruptions_allowed: allowed,
        disrupted_pods: (!disrupted.is_empty()).then_some(disrupted),
        observed_generation: generation,
        conditions: Some(conditions),
    }
}

/// When the controller should look again because a `disruptedPods` entry expires
/// (the earliest disruption time + 2 min among the kept entries), if any.
pub fn recheck_time(input: &PdbInput<'_>) -> Option<Timestamp> {
    disrupted_pods(input)
        .values()
        .filter_map(|t| t.0.checked_add(jiff::SignedDuration::from_secs(DELETION_TIMEOUT_SECONDS)).ok())
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn reference(name: &str) -> Value {
        let path = format!("{}/../../testdata/k8s-reference/v1.32/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn pdb(spec: Value, status: Value) -> PodDisruptionBudget {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ref", "generation": 1},
            "spec": spec, "status": status
        }))
        .unwrap()
    }

    fn pod(name: &str, ready: bool, deleting: bool, owned: bool) -> CachedPod {
        let mut meta = json!({"name": name, "namespace": "ref", "labels": {"app": "web"}});
        if deleting {
            meta["deletionTimestamp"] = json!("2026-11-21T08:59:00Z");
        }
        if owned {
            meta["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "rs-uid", "controller": true}]);
        }
        serde_json::from_value(json!({
            "metadata": meta,
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
        }))
        .unwrap()
    }

    fn input<'a>(pdb: &'a PodDisruptionBudget, pods: &'a [CachedPod], scale: Option<i32>, now: &str) -> PdbInput<'a> {
        PdbInput { pdb, pods: pods.iter().collect(), controller_scale: scale, now: ts(now) }
    }

    #[test]
    fn reference_pdb_status() {
        let recorded = reference("pdb-status.json");
        let mut budget: PodDisruptionBudget = serde_json::from_value(recorded.clone()).unwrap();
        assert!(!needs_controller_scale(&budget));
        // First sync, before the Deployment's pods exist (the recorded "NoPods" event).
        budget.status = None;
        let first = pdb_status(&input(&budget, &[], None, "2026-11-21T08:11:30Z"));
        assert_eq!(
            (first.expected_pods, first.desired_healthy, first.current_healthy, first.disruptions_allowed),
            (0, 2, 0, 0)
        );
        // Then the two Ready pods of deployment-pods-list.json.
        budget.status = Some(first);
        let pods: Vec<CachedPod> =
            serde_json::from_value(reference("deployment-pods-list.json")["items"].clone()).unwrap();
        let got = pdb_status(&input(&budget, &pods, None, "2026-11-21T08:11:40Z"));
        assert_eq!(serde_json::to_value(&got).unwrap(), recorded["status"]);
        // Re-syncing changes nothing.
        budget.status = Some(got.clone());
        assert_eq!(pdb_status(&input(&budget, &pods, None, "2026-11-21T08:20:00Z")), got);
    }

    #[test]
    fn disruptions_allowed_flips_condition() {
        let mut budget = pdb(json!({"minAvailable": 1}), json!(null));
        let pods = [pod("a", true, false, true), pod("b", true, false, true)];
        let got = pdb_status(&input(&budget, &pods, None, "2026-11-21T09:00:00Z"));
        assert_eq!((got.current_healthy, got.desired_healthy, got.disruptions_allowed), (2, 1, 1));
        let c = &got.conditions.as_ref().unwrap()[0];
        assert_eq!((c.status.as_str(), c.reason.as_str(), c.message.as_str()), ("True", REASON_SUFFICIENT_PODS, ""));
        assert_eq!(c.observed_generation, Some(1));
        budget.status = Some(got);
        let one_ready = [pod("a", true, false, true), pod("b", false, false, true)];
        let got = pdb_status(&input(&budget, &one_ready, None, "2026-11-21T09:05:00Z"));
        let c = &got.conditions.as_ref().unwrap()[0];
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", REASON_INSUFFICIENT_PODS));
        assert_eq!(c.last_transition_time.0, ts("2026-11-21T09:05:00Z"));
    }

    #[test]
    fn percentages_and_max_unavailable_use_controller_scale() {
        let pods = [pod("a", true, false, true), pod("b", true, false, true), pod("c", true, false, true)];
        let by_pct = pdb(json!({"minAvailable": "50%"}), json!(null));
        assert!(needs_controller_scale(&by_pct));
        let got = pdb_status(&input(&by_pct, &pods, Some(3), "2026-11-21T09:00:00Z"));
        assert_eq!((got.expected_pods, got.desired_healthy, got.disruptions_allowed), (3, 2, 1));
        // The controller wants 4 replicas (one pod missing): 25% unavailable rounds up to 1.
        let by_max = pdb(json!({"maxUnavailable": "25%"}), json!(null));
        assert!(needs_controller_scale(&by_max));
        let got = pdb_status(&input(&by_max, &pods, Some(4), "2026-11-21T09:00:00Z"));
        assert_eq!((got.expected_pods, got.desired_healthy, got.disruptions_allowed), (4, 3, 0));
        let by_int = pdb(json!({"maxUnavailable": 5}), json!(null));
        let got = pdb_status(&input(&by_int, &pods, Some(3), "2026-11-21T09:00:00Z"));
        assert_eq!((got.expected_pods, got.desired_healthy, got.disruptions_allowed), (3, 0, 3));
        // No known scale, or only unmanaged pods: nothing may be disrupted.
        let got = pdb_status(&input(&by_max, &pods, None, "2026-11-21T09:00:00Z"));
        assert_eq!((got.expected_pods, got.disruptions_allowed), (0, 0));
        let bare = [pod("x", true, false, false), pod("y", true, false, false)];
        let got = pdb_status(&input(&by_max, &bare, Some(9), "2026-11-21T09:00:00Z"));
        assert_eq!(
            (got.expected_pods, got.desired_healthy, got.current_healthy, got.disruptions_allowed),
            (0, 0, 2, 0)
        );
        // An integer minAvailable counts the matching pods instead.
        let int = pdb(json!({"minAvailable": 1}), json!(null));
        assert!(!needs_controller_scale(&int));
        assert_eq!(pdb_status(&input(&int, &pods, Some(99), "2026-11-21T09:00:00Z")).expected_pods, 3);
    }

    #[test]
    fn unhealthy_and_terminating_pods_do_not_count() {
        let budget = pdb(json!({"minAvailable": 0}), json!(null));
        let pods =
            [pod("ready", true, false, true), pod("unready", false, false, true), pod("leaving", true, true, true)];
        let got = pdb_status(&input(&budget, &pods, None, "2026-11-21T09:00:00Z"));
        assert_eq!((got.current_healthy, got.expected_pods, got.disruptions_allowed), (1, 3, 1));
    }

    #[test]
    fn disrupted_pods_expire_after_two_minutes() {
        let budget = pdb(
            json!({"minAvailable": 0}),
            json!({"disruptedPods": {
                "recent": "2026-11-21T08:59:30Z",
                "overdue": "2026-11-21T08:57:59Z",
                "boundary": "2026-11-21T08:58:00Z",
                "gone": "2026-11-21T08:59:50Z",
                "leaving": "2026-11-21T08:59:50Z"
            }, "currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0}),
        );
        let pods = [
            pod("recent", true, false, true),
            pod("overdue", true, false, true),
            pod("boundary", true, false, true),
            pod("leaving", true, true, true),
            pod("other", true, false, true),
        ];
        let inp = input(&budget, &pods, None, "2026-11-21T09:00:00Z");
        let got = pdb_status(&inp);
        let kept: Vec<&String> = got.disrupted_pods.as_ref().unwrap().keys().collect();
        // "boundary" expires exactly now: kept in the map but already counted healthy again.
        assert_eq!(kept, ["boundary", "recent"]);
        assert_eq!(got.current_healthy, 3, "overdue, boundary and other");
        assert_eq!(recheck_time(&inp), Some(ts("2026-11-21T09:00:00Z")));
        let later = input(&budget, &pods, None, "2026-11-21T09:05:00Z");
        assert_eq!(pdb_status(&later).disrupted_pods, None);
        assert_eq!(recheck_time(&later), None);
    }

    #[test]
    fn invalid_values_fail_safe() {
        let budget = pdb(
            json!({"maxUnavailable": "lots"}),
            json!({"currentHealthy": 3, "desiredHealthy": 1, "disruptionsAllowed": 2, "expectedPods": 3, "observedGeneration": 1}),
        );
        let pods = [pod("a", true, false, true)];
        let got = pdb_status(&input(&budget, &pods, Some(3), "2026-11-21T09:00:00Z"));
        assert_eq!((got.disruptions_allowed, got.current_healthy), (0, 3));
        let c = &got.conditions.as_ref().unwrap()[0];
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", REASON_SYNC_FAILED));
        assert_eq!(c.message, "invalid value for IntOrString: invalid type: string is not a percentage");
        let bad_pct = pdb(json!({"minAvailable": "x%"}), json!(null));
        let got = pdb_status(&input(&bad_pct, &pods, Some(3), "2026-11-21T09:00:00Z"));
        assert_eq!(
            got.conditions.as_ref().unwrap()[0].message,
            "invalid value for IntOrString: invalid value \"x%\": strconv.Atoi: parsing \"x\": invalid syntax"
        );
    }

    #[test]
    fn no_budget_fields_means_nothing_expected() {
        let budget = pdb(json!({}), json!(null));
        let pods = [pod("a", true, false, true)];
        let got = pdb_status(&input(&budget, &pods, None, "2026-11-21T09:00:00Z"));
        assert_eq!(
            (got.expected_pods, got.desired_healthy, got.current_healthy, got.disruptions_allowed),
            (0, 0, 1, 0)
        );
        assert!(!needs_controller_scale(&budget));
        let empty = PodDisruptionBudget::default();
        let got = pdb_status(&PdbInput {
            pdb: &empty,
            pods: vec![],
            controller_scale: None,
            now: ts("2026-11-21T09:00:00Z"),
        });
        assert_eq!(got.observed_generation, None);
    }

    proptest! {
        #[test]
        fn allowed_is_bounded(
            readiness in prop::collection::vec((any::<bool>(), any::<bool>()), 0..20),
            min in 0i32..25, scale in prop::option::of(0i32..30), pct in 0i32..150, use_pct in any::<bool>(),
        ) {
            let spec = if use_pct { json!({"maxUnavailable": format!("{pct}%")}) } else { json!({"minAvailable": min}) };
            let budget = pdb(spec, json!(null));
            let pods: Vec<CachedPod> = readiness.iter().enumerate().map(|(i, (r, d))| pod(&format!("p{i}"), *r, *d, true)).collect();
            let got = pdb_status(&input(&budget, &pods, scale, "2026-11-21T09:00:00Z"));
            prop_assert!(got.disruptions_allowed >= 0);
            prop_assert!(got.disruptions_allowed <= got.current_healthy.max(0));
            let healthy = readiness.iter().filter(|(r, d)| *r && !*d).count();
            prop_assert_eq!(got.current_healthy as usize, healthy);
            if got.expected_pods <= 0 { prop_assert_eq!(got.disruptions_allowed, 0); }
        }
    }
}
