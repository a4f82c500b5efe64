//! Deployment controller rules (`pkg/controller/deployment/util/deployment_util.go`,
//! `rolling.go`, `recreate.go`, `sync.go`, `progress.go`): surge/unavailability fenceposts,
//! new and old ReplicaSet sizes during a rollout, the Deployment status with its Available and
//! Progressing conditions, and the annotations put on a new ReplicaSet.
//!
//! Absent fields read as the API server's defaults: `spec.replicas` 1, strategy RollingUpdate
//! with maxSurge and maxUnavailable 25%, `progressDeadlineSeconds` 600; a ReplicaSet's
//! `spec.replicas` 1.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY_ANNOTATION: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/max-replicas";
const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";
const OVERLAP_ANNOTATION: &str = "deployment.kubernetes.io/error-selector-overlapping-with";
const SELECTOR_UPDATE_ANNOTATION: &str = "deployment.kubernetes.io/selector-updated-at";

/// Condition reasons (upstream `deploymentutil` constants).
pub const REASON_RS_UPDATED: &str = "ReplicaSetUpdated";
pub const REASON_NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const REASON_FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const REASON_NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const REASON_TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const REASON_PAUSED: &str = "DeploymentPaused";
pub const REASON_RESUMED: &str = "DeploymentResumed";
pub const REASON_MIN_AVAILABLE: &str = "MinimumReplicasAvailable";
pub const REASON_MIN_UNAVAILABLE: &str = "MinimumReplicasUnavailable";

const DEFAULT_PERCENT: &str = "25%";
const DEFAULT_PROGRESS_DEADLINE: i32 = 600;

// ---------------------------------------------------------------------------------------------
// Int-or-percent values and fenceposts
// ---------------------------------------------------------------------------------------------

/// Upstream `intstr.GetScaledValueFromIntOrPercent`: an int is taken as is; `"N%"` is
/// `N * total / 100` rounded up or down; any other string is an error (`None`).
pub fn scaled_value(value: &IntOrString, total: i32, round_up: bool) -> Option<i32> {
    match value {
        IntOrString::Int(i) => Some(*i),
        IntOrString::String(s) => {
            let n: i64 = s.strip_suffix('%')?.parse().ok()?;
            let product = n.checked_mul(i64::from(total))?;
            let v = if round_up {
                product.div_euclid(100) + i64::from(product.rem_euclid(100) != 0)
            } else {
                product.div_euclid(100)
            };
            i32::try_from(v).ok()
        }
    }
}

/// Upstream `ResolveFenceposts`: maxSurge rounds up, maxUnavailable rounds down (absent means 0);
/// when both resolve to 0, maxUnavailable becomes 1. An invalid value yields `(0, 0)`, which
/// is what upstream's callers use when they ignore its error.
pub fn resolve_fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> (i32, i32) {
    let zero = IntOrString::Int(0);
    let surge = scaled_value(max_surge.unwrap_or(&zero), desired, true);
    let unavailable = scaled_value(max_unavailable.unwrap_or(&zero), desired, false);
    match (surge, unavailable) {
        (Some(0), Some(0)) => (0, 1),
        (Some(s), Some(u)) => (s, u),
        _ => (0, 0),
    }
}

/// `spec.replicas`, defaulting to 1.
pub fn desired_replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// A ReplicaSet's `spec.replicas`, defaulting to 1.
pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn rs_status(rs: &ReplicaSet) -> (i32, i32, i32) {
    let st = rs.status.as_ref();
    (
        st.map_or(0, |s| s.replicas),
        st.and_then(|s| s.ready_replicas).unwrap_or(0),
        st.and_then(|s| s.available_replicas).unwrap_or(0),
    )
}

/// The strategy type, defaulting to `RollingUpdate`.
pub fn strategy_type(d: &Deployment) -> &str {
    d.spec.as_ref().and_then(|s| s.strategy.as_ref()).and_then(|s| s.type_.as_deref()).unwrap_or("RollingUpdate")
}

/// Whether the strategy is `RollingUpdate`.
pub fn is_rolling_update(d: &Deployment) -> bool {
    strategy_type(d) == "RollingUpdate"
}

fn rolling_params(d: &Deployment) -> (IntOrString, IntOrString) {
    let ru = d.spec.as_ref().and_then(|s| s.strategy.as_ref()).and_then(|s| s.rolling_update.as_ref());
    let default = || IntOrString::String(DEFAULT_PERCENT.to_string());
    (
        ru.and_then(|r| r.max_surge.clone()).unwrap_or_else(default),
        ru.and_then(|r| r.max_unavailable.clone()).unwrap_or_else(default),
    )
}

/// Upstream `MaxSurge`: 0 unless rolling.
pub fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling_update(d) {
        return 0;
    }
    let (s, u) = rolling_params(d);
    resolve_fenceposts(Some(&s), Some(&u), desired_replicas(d)).0
}

/// Upstream `MaxUnavailable`: 0 unless rolling or with 0 replicas; at most `spec.replicas`.
pub fn max_unavailable(d: &Deployment) -> i32 {
    let desired = desired_replicas(d);
    if !is_rolling_update(d) || desired == 0 {
        return 0;
    }
    let (s, u) = rolling_params(d);
    resolve_fenceposts(Some(&s), Some(&u), desired).1.min(desired)
}

/// `spec.replicas - MaxUnavailable` for rolling updates, else 0 (upstream `MinAvailable`).
pub fn min_available(d: &Deployment) -> i32 {
    if !is_rolling_update(d) {
        return 0;
    }
    desired_replicas(d).saturating_sub(max_unavailable(d))
}

fn same_rs(a: &ReplicaSet, b: &ReplicaSet) -> bool {
    match (a.metadata.uid.as_deref(), b.metadata.uid.as_deref()) {
        (Some(x), Some(y)) => x == y,
        _ => a.metadata.name == b.metadata.name,
    }
}

/// `all_rss` plus `new_rs` when it is not already among them (upstream appends it).
fn with_new<'a>(all_rss: &'a [ReplicaSet], new_rs: Option<&'a ReplicaSet>) -> Vec<&'a ReplicaSet> {
    let mut v: Vec<&ReplicaSet> = all_rss.iter().collect();
    if let Some(n) = new_rs
        && !all_rss.iter().any(|r| same_rs(r, n))
    {
        v.push(n);
    }
    v
}

fn sum_replicas(rss: &[&ReplicaSet]) -> i32 {
    rss.iter().fold(0i32, |acc, rs| acc.saturating_add(rs_replicas(rs)))
}

// ---------------------------------------------------------------------------------------------
// Rollout sizing
// ---------------------------------------------------------------------------------------------

/// The size the new ReplicaSet should get now (`reconcileNewReplicaSet` + `NewRSNewReplicas`).
/// RollingUpdate: scale up by what maxSurge leaves room for across all ReplicaSets (`all_rss`,
/// which should contain `new_rs`), never past `spec.replicas`; an oversized new ReplicaSet
/// goes straight down to `spec.replicas`. Recreate: `spec.replicas` (the caller scales the
/// new ReplicaSet up only once the old pods are gone). Unknown strategies keep the size.
pub fn new_rs_new_replicas(deployment: &Deployment, all_rss: &[ReplicaSet], new_rs: &ReplicaSet) -> i32 {
    let desired = desired_replicas(deployment);
    let current_new = rs_replicas(new_rs);
    match strategy_type(deployment) {
        "RollingUpdate" => {
            if current_new >= desired {
                return desired;
            }
            let (surge, _) = rolling_params(deployment);
            let Some(surge) = scaled_value(&surge, desired, true) else {
                return current_new;
            };
            let current_total = sum_replicas(&with_new(all_rss, Some(new_rs)));
            let max_total = desired.saturating_add(surge);
            if current_total >= max_total {
                return current_new;
            }
            let scale_up = max_total.saturating_sub(current_total).min(desired.saturating_sub(current_new));
            current_new.saturating_add(scale_up)
        }
        "Recreate" => desired,
        _ => current_new,
    }
}

fn creation_key(rs: &ReplicaSet) -> (Option<Timestamp>, String) {
    (rs.metadata.creation_timestamp.as_ref().map(|t| t.0), rs.metadata.name.clone().unwrap_or_default())
}

/// New sizes for old ReplicaSets, oldest first, for those that change.
///
/// Recreate: every old ReplicaSet with replicas goes to 0.
/// RollingUpdate (`reconcileOldReplicaSets`): with
/// `maxScaledDown = allReplicas - minAvailable - newRSUnavailable` > 0, first
/// `cleanupUnhealthyReplicas` removes old replicas that are not available (up to
/// maxScaledDown), then `scaleDownOldReplicaSetsForRollingUpdate` removes available ones while
/// the total available count (from the ReplicaSets' status) stays above minAvailable.
/// `all_rss` should contain the old ReplicaSets and `new_rs`.
pub fn old_rs_scale_down(
    deployment: &Deployment,
    all_rss: &[ReplicaSet],
    old_rss: &[ReplicaSet],
    new_rs: &ReplicaSet,
) -> Vec<(String, i32)> {
    let mut olds: Vec<&ReplicaSet> = old_rss.iter().filter(|r| !same_rs(r, new_rs)).collect();
    olds.sort_by_key(|r| creation_key(r));
    let name = |rs: &ReplicaSet| rs.metadata.name.clone().unwrap_or_default();

    if strategy_type(deployment) == "Recreate" {
        return olds.iter().filter(|r| rs_replicas(r) != 0).map(|r| (name(r), 0)).collect();
    }
    if !is_rolling_update(deployment) {
        return Vec::new();
    }

    let mut sizes: Vec<i32> = olds.iter().map(|r| rs_replicas(r)).collect();
    let old_total = sizes.iter().fold(0i32, |a, s| a.saturating_add(*s));
    if old_total == 0 {
        return Vec::new();
    }
    let all_total = sum_replicas(&with_new(all_rss, Some(new_rs)));
    let min_avail = desired_replicas(deployment).saturating_sub(max_unavailable(deployment));
    let new_unavailable = rs_replicas(new_rs).saturating_sub(rs_status(new_rs).2);
    let max_scaled_down = all_total.saturating_sub(min_avail).saturating_sub(new_unavailable);
    if max_scaled_down <= 0 {
        return Vec::new();
    }

    // cleanupUnhealthyReplicas
    let mut cleaned = 0i32;
    let mut aborted = false;
    for (i, rs) in olds.iter().enumerate() {
        if cleaned >= max_scaled_down {
            break;
        }
        let available = rs_status(rs).2;
        if sizes[i] == 0 || sizes[i] == available {
            continue;
        }
        let down = max_scaled_down.saturating_sub(cleaned).min(sizes[i].saturating_sub(available));
        if down <= 0 {
            // More available than desired (stale status): upstream errors out here, keeping the
            // cleanups already made and skipping the scale-down step.
            aborted = true;
            break;
        }
        sizes[i] = sizes[i].saturating_sub(down);
        cleaned = cleaned.saturating_add(down);
    }

    // scaleDownOldReplicaSetsForRollingUpdate (availability from status, unchanged by cleanup)
    let available_total = with_new(old_rss, Some(new_rs)).iter().fold(0i32, |a, rs| a.saturating_add(rs_status(rs).2));
    if !aborted && available_total > min_avail {
        let budget = available_total.saturating_sub(min_avail);
        let mut scaled = 0i32;
        for size in sizes.iter_mut() {
            if scaled >= budget {
                break;
            }
            if *size == 0 {
                continue;
            }
            let down = (*size).min(budget.saturating_sub(scaled));
            *size = size.saturating_sub(down);
            scaled = scaled.saturating_add(down);
        }
    }

    olds.iter().zip(sizes).filter(|(rs, size)| rs_replicas(rs) != *size).map(|(rs, size)| (name(rs), size)).collect()
}

// ---------------------------------------------------------------------------------------------
// Conditions and status
// ---------------------------------------------------------------------------------------------

fn parse_now(now: &str) -> Timestamp {
    now.parse().unwrap_or(Timestamp::UNIX_EPOCH)
}

/// A condition stamped `now` for both times (`NewDeploymentCondition`).
pub fn new_condition(type_: &str, status: &str, reason: &str, message: &str, now: Timestamp) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// The condition of that type, if present.
pub fn get_condition<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

/// Removes the condition of that type.
pub fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(c) = status.conditions.as_mut() {
        c.retain(|x| x.type_ != type_);
    }
}

/// Upstream `SetDeploymentCondition`: nothing changes when a condition of that type already
/// has the same status and reason; otherwise it replaces it (moved to the end), keeping the
/// old `lastTransitionTime` when the status is unchanged.
pub fn set_condition(status: &mut DeploymentStatus, mut cond: DeploymentCondition) {
    if let Some(cur) = get_condition(status, &cond.type_) {
        if cur.status == cond.status && cur.reason == cond.reason {
            return;
        }
        if cur.status == cond.status {
            cond.last_transition_time = cur.last_transition_time.clone();
        }
    }
    remove_condition(status, &cond.type_);
    status.conditions.get_or_insert_with(Vec::new).push(cond);
}

/// `progressDeadlineSeconds` is set and not `MaxInt32` (absent reads as the default 600).
pub fn has_progress_deadline(d: &Deployment) -> bool {
    progress_deadline(d) != i32::MAX
}

fn progress_deadline(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.progress_deadline_seconds).unwrap_or(DEFAULT_PROGRESS_DEADLINE)
}

fn paused(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
}

fn non_zero(v: i32) -> Option<i32> {
    (v != 0).then_some(v)
}

fn rs_name(rs: &ReplicaSet) -> &str {
    rs.metadata.name.as_deref().unwrap_or("")
}

/// The Progressing condition the controller records when it creates the new ReplicaSet
/// (`created`, reason NewReplicaSetCreated) or first notices an existing one without any
/// Progressing condition (reason FoundNewReplicaSet). Returns the updated status, or `None`
/// when upstream would not touch it.
pub fn new_replica_set_status(
    deployment: &Deployment,
    rs_name: &str,
    created: bool,
    now: &str,
) -> Option<DeploymentStatus> {
    if !has_progress_deadline(deployment) {
        return None;
    }
    let mut status = deployment.status.clone().unwrap_or_default();
    let now = parse_now(now);
    let cond = if created {
        new_condition(
            "Progressing",
            "True",
            REASON_NEW_RS_CREATED,
            &format!("Created new replica set {rs_name:?}"),
            now,
        )
    } else if get_condition(&status, "Progressing").is_none() {
        new_condition("Progressing", "True", REASON_FOUND_NEW_RS, &format!("Found new replica set {rs_name:?}"), now)
    } else {
        return None;
    };
    set_condition(&mut status, cond);
    Some(status)
}

/// `checkPausedConditions`: a Progressing Unknown condition with reason DeploymentPaused /
/// DeploymentResumed when `spec.paused` flips (never over a ProgressDeadlineExceeded one).
fn apply_paused_condition(d: &Deployment, status: &mut DeploymentStatus, now: Timestamp) {
    if !has_progress_deadline(d) {
        return;
    }
    let cond = get_condition(status, "Progressing");
    if cond.is_some_and(|c| c.reason.as_deref() == Some(REASON_TIMED_OUT)) {
        return;
    }
    let paused_cond_exists = cond.is_some_and(|c| c.reason.as_deref() == Some(REASON_PAUSED));
    if paused(d) && !paused_cond_exists {
        set_condition(status, new_condition("Progressing", "Unknown", REASON_PAUSED, "Deployment is paused", now));
    } else if !paused(d) && paused_cond_exists {
        set_condition(status, new_condition("Progressing", "Unknown", REASON_RESUMED, "Deployment is resumed", now));
    }
}

/// The Deployment's new status (`calculateStatus`, plus `syncRolloutStatus` unless paused),
/// computed from its current status, its ReplicaSets (`all_rss`, old and new) and `now`
/// (RFC 3339; unparseable reads as the Unix epoch):
/// counts summed from the ReplicaSets (zeros omitted, as upstream's `omitempty`), the
/// Available condition (MinimumReplicasAvailable / MinimumReplicasUnavailable), the
/// Progressing condition (ReplicaSetUpdated, NewReplicaSetAvailable, ProgressDeadlineExceeded,
/// DeploymentPaused/Resumed) and ReplicaFailure copied from a ReplicaSet.
pub fn deployment_status(
    deployment: &Deployment,
    all_rss: &[ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    now: &str,
) -> DeploymentStatus {
    let now = parse_now(now);
    let mut old_status = deployment.status.clone().unwrap_or_default();
    apply_paused_condition(deployment, &mut old_status, now);

    let rss = with_new(all_rss, new_rs);
    let (mut replicas, mut ready, mut available) = (0i32, 0i32, 0i32);
    for rs in &rss {
        let (r, rd, av) = rs_status(rs);
        replicas = replicas.saturating_add(r);
        ready = ready.saturating_add(rd);
        available = available.saturating_add(av);
    }
    let total = sum_replicas(&rss);
    let unavailable = total.saturating_sub(available).max(0);
    let updated = new_rs.map_or(0, |rs| rs_status(rs).0);
    let generation = deployment.metadata.generation.unwrap_or(0);
    let desired = desired_replicas(deployment);

    let mut status = DeploymentStatus {
        observed_generation: (generation != 0).then_some(generation),
        replicas: non_zero(replicas),
        updated_replicas: non_zero(updated),
        ready_replicas: non_zero(ready),
        available_replicas: non_zero(available),
        unavailable_replicas: non_zero(unavailable),
        collision_count: old_status.collision_count,
        conditions: old_status.conditions.clone(),
        terminating_replicas: None,
    };
    if available >= desired.saturating_sub(max_unavailable(deployment)) {
        let c = new_condition("Available", "True", REASON_MIN_AVAILABLE, "Deployment has minimum availability.", now);
        set_condition(&mut status, c);
    } else {
        let c = new_condition(
            "Available",
            "False",
            REASON_MIN_UNAVAILABLE,
            "Deployment does not have minimum availability.",
            now,
        );
        set_condition(&mut status, c);
    }
    if paused(deployment) {
        return status;
    }

    // syncRolloutStatus
    if !has_progress_deadline(deployment) {
        remove_condition(&mut status, "Progressing");
    }
    let current = get_condition(&old_status, "Progressing").cloned();
    let complete_before =
        replicas == updated && current.as_ref().is_some_and(|c| c.reason.as_deref() == Some(REASON_NEW_RS_AVAILABLE));
    if has_progress_deadline(deployment) && !complete_before {
        let subject = match new_rs {
            Some(rs) => format!("ReplicaSet {:?}", rs_name(rs)),
            None => format!("Deployment {:?}", deployment.metadata.name.as_deref().unwrap_or("")),
        };
        // DeploymentComplete (observedGeneration is this generation, so that check always holds).
        let complete = updated == desired && replicas == desired && available == desired;
        let old_old = old_status.replicas.unwrap_or(0).saturating_sub(old_status.updated_replicas.unwrap_or(0));
        let progressing = updated > old_status.updated_replicas.unwrap_or(0)
            || replicas.saturating_sub(updated) < old_old
            || ready > old_status.ready_replicas.unwrap_or(0)
            || available > old_status.available_replicas.unwrap_or(0);
        if complete {
            let msg = format!("{subject} has successfully progressed.");
            set_condition(&mut status, new_condition("Progressing", "True", REASON_NEW_RS_AVAILABLE, &msg, now));
        } else if progressing {
            let msg = format!("{subject} is progressing.");
            let mut cond = new_condition("Progressing", "True", REASON_RS_UPDATED, &msg, now);
            if let Some(cur) = current.as_ref() {
                if cur.status == "True" {
                    cond.last_transition_time = cur.last_transition_time.clone();
                }
                remove_condition(&mut status, "Progressing");
            }
            set_condition(&mut status, cond);
        } else if timed_out(deployment, &status, now) {
            let msg = format!("{subject} has timed out progressing.");
            set_condition(&mut status, new_condition("Progressing", "False", REASON_TIMED_OUT, &msg, now));
        }
    }

    match replica_failure(&rss, new_rs) {
        Some(c) => set_condition(&mut status, c),
        None => remove_condition(&mut status, "ReplicaFailure"),
    }
    if status.conditions.as_ref().is_some_and(Vec::is_empty) {
        status.conditions = None;
    }
    status
}

/// `DeploymentTimedOut`: the Progressing condition was last updated more than
/// `progressDeadlineSeconds` ago (a missing time counts as long ago).
fn timed_out(d: &Deployment, status: &DeploymentStatus, now: Timestamp) -> bool {
    let Some(cond) = get_condition(status, "Progressing") else {
        return false;
    };
    match cond.reason.as_deref() {
        Some(REASON_NEW_RS_AVAILABLE) => return false,
        Some(REASON_TIMED_OUT) => return true,
        _ => {}
    }
    let Some(from) = cond.last_update_time.as_ref() else {
        return true;
    };
    from.0.as_nanosecond() + i128::from(progress_deadline(d)) * 1_000_000_000 < now.as_nanosecond()
}

/// `getReplicaFailures`: the new ReplicaSet's ReplicaFailure condition, else any other's.
fn replica_failure(rss: &[&ReplicaSet], new_rs: Option<&ReplicaSet>) -> Option<DeploymentCondition> {
    let failure = |rs: &ReplicaSet| {
        rs.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "ReplicaFailure").map(|c| {
            DeploymentCondition {
                type_: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
                last_update_time: c.last_transition_time.clone(),
                last_transition_time: c.last_transition_time.clone(),
            }
        })
    };
    new_rs.and_then(failure).or_else(|| rss.iter().find_map(|rs| failure(rs)))
}

// ---------------------------------------------------------------------------------------------
// ReplicaSet annotations and revisions
// ---------------------------------------------------------------------------------------------

const SKIPPED_ANNOTATIONS: [&str; 7] = [
    LAST_APPLIED_ANNOTATION,
    REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
    DESIRED_REPLICAS_ANNOTATION,
    MAX_REPLICAS_ANNOTATION,
    OVERLAP_ANNOTATION,
    SELECTOR_UPDATE_ANNOTATION,
];

/// Annotations of a new ReplicaSet (`SetNewReplicaSetAnnotations` on creation): the
/// Deployment's own annotations except kubectl's last-applied configuration and the
/// controller's bookkeeping ones, plus `revision`, `desired-replicas` (`spec.replicas`) and
/// `max-replicas` (`spec.replicas + MaxSurge`).
pub fn replicaset_annotations(deployment: &Deployment, revision: i64) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = deployment
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| !SKIPPED_ANNOTATIONS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let desired = desired_replicas(deployment);
    out.insert(REVISION_ANNOTATION.to_string(), revision.to_string());
    out.insert(DESIRED_REPLICAS_ANNOTATION.to_string(), desired.to_string());
    out.insert(MAX_REPLICAS_ANNOTATION.to_string(), desired.saturating_add(max_surge(deployment)).to_string());
    out
}

/// A ReplicaSet's revision annotation (0 when absent or not a number).
pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata.annotations.as_ref().and_then(|a| a.get(REVISION_ANNOTATION)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The revision for a new ReplicaSet: one more than the highest among the old ones.
pub fn next_revision(old_rss: &[ReplicaSet]) -> i64 {
    old_rss.iter().map(revision).max().unwrap_or(0).saturating_add(1)
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

    fn ref_deployment() -> Deployment {
        serde_json::from_value(reference("deployment-available.json")).unwrap()
    }

    fn ref_rs() -> ReplicaSet {
        serde_json::from_value(reference("replicaset-list.json")["items"][0].clone()).unwrap()
    }

    fn pct(s: &str) -> IntOrString {
        IntOrString::String(s.into())
    }

    fn deployment(replicas: i32, strategy: Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "generation": 1},
            "spec": {"replicas": replicas, "strategy": strategy, "selector": {},
                     "template": {"spec": {"containers": []}}}
        }))
        .unwrap()
    }

    fn rolling(surge: Value, unavailable: Value) -> Value {
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}})
    }

    fn rs(name: &str, created: &str, replicas: i32, available: i32) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": name, "uid": format!("uid-{name}"), "creationTimestamp": created},
            "spec": {"replicas": replicas, "selector": {}},
            "status": {"replicas": replicas, "readyReplicas": available, "availableReplicas": available}
        }))
        .unwrap()
    }

    #[test]
    fn scaled_values() {
        assert_eq!(scaled_value(&pct("25%"), 2, true), Some(1));
        assert_eq!(scaled_value(&pct("25%"), 2, false), Some(0));
        assert_eq!(scaled_value(&pct("50%"), 5, true), Some(3));
        assert_eq!(scaled_value(&pct("50%"), 5, false), Some(2));
        assert_eq!(scaled_value(&pct("100%"), 7, false), Some(7));
        assert_eq!(scaled_value(&IntOrString::Int(3), 100, true), Some(3));
        assert_eq!(scaled_value(&pct("-10%"), 5, true), Some(0));
        assert_eq!(scaled_value(&pct("-10%"), 5, false), Some(-1));
        for bad in ["abc", "25", "%", "x%", "1.5%", ""] {
            assert_eq!(scaled_value(&pct(bad), 5, true), None, "{bad}");
        }
    }

    #[test]
    fn fenceposts_match_upstream_table() {
        assert_eq!(resolve_fenceposts(Some(&pct("0%")), Some(&pct("0%")), 0), (0, 1));
        assert_eq!(resolve_fenceposts(Some(&pct("39%")), Some(&pct("39%")), 10), (4, 3));
        assert_eq!(resolve_fenceposts(Some(&pct("oops")), Some(&pct("1%")), 10), (0, 0));
        assert_eq!(resolve_fenceposts(Some(&pct("55%")), Some(&pct("urg")), 10), (0, 0));
        assert_eq!(resolve_fenceposts(Some(&pct("5")), Some(&pct("1")), 10), (0, 0));
        assert_eq!(resolve_fenceposts(None, Some(&pct("39%")), 10), (0, 3));
        assert_eq!(resolve_fenceposts(Some(&pct("39%")), None, 10), (4, 0));
        assert_eq!(resolve_fenceposts(None, None, 10), (0, 1));
        assert_eq!(resolve_fenceposts(Some(&pct("25%")), Some(&pct("25%")), 2), (1, 0));
        assert_eq!(resolve_fenceposts(Some(&pct("0%")), Some(&pct("1%")), 2), (0, 1));
        assert_eq!(resolve_fenceposts(Some(&IntOrString::Int(3)), Some(&IntOrString::Int(2)), 10), (3, 2));
    }

    #[test]
    fn reference_deployment_limits() {
        let d = ref_deployment();
        assert_eq!((max_surge(&d), max_unavailable(&d), min_available(&d)), (1, 0, 2));
        let recreate = deployment(4, json!({"type": "Recreate"}));
        assert_eq!((max_surge(&recreate), max_unavailable(&recreate), min_available(&recreate)), (0, 0, 0));
        // Absent strategy reads as RollingUpdate 25%/25%; maxUnavailable is capped at replicas.
        let defaulted: Deployment =
            serde_json::from_value(json!({"spec": {"replicas": 8, "selector": {}, "template": {}}})).unwrap();
        assert_eq!((max_surge(&defaulted), max_unavailable(&defaulted)), (2, 2));
        let capped = deployment(2, rolling(json!(0), json!(5)));
        assert_eq!(max_unavailable(&capped), 2);
        assert_eq!(max_unavailable(&deployment(0, rolling(json!(1), json!(1)))), 0);
    }

    #[test]
    fn reference_replicaset_annotations() {
        let d = ref_deployment();
        let got = replicaset_annotations(&d, 1);
        let want: BTreeMap<String, String> =
            serde_json::from_value(reference("replicaset-list.json")["items"][0]["metadata"]["annotations"].clone())
                .unwrap();
        assert_eq!(got, want);
        // Other annotations are copied; bookkeeping ones are not.
        let mut d2 = d.clone();
        let ann = d2.metadata.annotations.get_or_insert_with(Default::default);
        ann.insert("kubernetes.io/change-cause".into(), "v2".into());
        ann.insert(REVISION_HISTORY_ANNOTATION.into(), "1,2".into());
        let got = replicaset_annotations(&d2, 7);
        assert_eq!(got.get("kubernetes.io/change-cause").map(String::as_str), Some("v2"));
        assert_eq!(got.get(REVISION_ANNOTATION).map(String::as_str), Some("7"));
        assert!(!got.contains_key(REVISION_HISTORY_ANNOTATION));
        assert!(!got.contains_key(LAST_APPLIED_ANNOTATION));
    }

    #[test]
    fn revisions() {
        let mut a = rs("a", "2026-11-21T08:00:00Z", 1, 1);
        a.metadata.annotations = Some([(REVISION_ANNOTATION.to_string(), "3".to_string())].into());
        let b = rs("b", "2026-11-21T08:00:00Z", 1, 1);
        assert_eq!(revision(&a), 3);
        assert_eq!(revision(&b), 0);
        assert_eq!(revision(&ref_rs()), 1);
        assert_eq!(next_revision(&[a, b]), 4);
        assert_eq!(next_revision(&[]), 1);
    }

    #[test]
    fn new_rs_scale_up() {
        // The reference rollout: 2 replicas, 25% surge, brand new ReplicaSet: straight to 2.
        let d = ref_deployment();
        let new = rs("web-new", "2026-11-21T08:11:30Z", 0, 0);
        assert_eq!(new_rs_new_replicas(&d, std::slice::from_ref(&new), &new), 2);
        // 10 replicas, surge 3: old 10 → new may take 3; then 2 more once old is at 8.
        let d = deployment(10, rolling(json!(3), json!(2)));
        let old = rs("old", "2026-11-21T08:00:00Z", 10, 10);
        let new = rs("new", "2026-11-21T09:00:00Z", 0, 0);
        assert_eq!(new_rs_new_replicas(&d, &[old, new.clone()], &new), 3);
        let old = rs("old", "2026-11-21T08:00:00Z", 8, 8);
        let new = rs("new", "2026-11-21T09:00:00Z", 3, 0);
        assert_eq!(new_rs_new_replicas(&d, &[old.clone(), new.clone()], &new), 5);
        // new_rs missing from all_rss is still counted.
        assert_eq!(new_rs_new_replicas(&d, &[old], &new), 5);
        // At the surge limit nothing happens; oversized goes down to spec.replicas.
        let full = rs("old", "2026-11-21T08:00:00Z", 10, 10);
        assert_eq!(new_rs_new_replicas(&d, &[full, new.clone()], &new), 3);
        assert_eq!(new_rs_new_replicas(&d, &[], &rs("new", "2026-11-21T09:00:00Z", 12, 12)), 10);
        // Recreate wants everything; a broken surge keeps the size.
        assert_eq!(new_rs_new_replicas(&deployment(4, json!({"type": "Recreate"})), &[], &new), 4);
        assert_eq!(new_rs_new_replicas(&deployment(10, rolling(json!("x"), json!(1))), &[], &new), 3);
    }

    #[test]
    fn old_rs_blocked_while_new_pods_unavailable() {
        // Upstream's "case 1": 10 replicas, maxUnavailable 2, maxSurge 3, old 8, new 5 unavailable.
        let d = deployment(10, rolling(json!(3), json!(2)));
        let old = rs("old", "2026-11-21T08:00:00Z", 8, 8);
        let new = rs("new", "2026-11-21T09:00:00Z", 5, 0);
        assert!(old_rs_scale_down(&d, &[old.clone(), new.clone()], &[old], &new).is_empty());
    }

    #[test]
    fn old_rs_scaled_down_within_max_unavailable() {
        let d = deployment(10, rolling(json!(3), json!(2)));
        let old = rs("old", "2026-11-21T08:00:00Z", 10, 10);
        let new = rs("new", "2026-11-21T09:00:00Z", 3, 0);
        assert_eq!(old_rs_scale_down(&d, &[old.clone(), new.clone()], &[old], &new), vec![("old".to_string(), 8)]);
    }

    #[test]
    fn unhealthy_old_replicas_are_cleaned_first() {
        let d = deployment(10, json!({"type": "RollingUpdate"}));
        let old1 = rs("old1", "2026-11-21T07:00:00Z", 5, 2);
        let old2 = rs("old2", "2026-11-21T08:00:00Z", 5, 5);
        let new = rs("new", "2026-11-21T09:00:00Z", 0, 0);
        let all = [old2.clone(), new.clone(), old1.clone()];
        // maxScaledDown = 10 - 8 - 0 = 2 → old1 loses 2 unavailable; then 7 available ≤ 8.
        assert_eq!(old_rs_scale_down(&d, &all, &[old2, old1], &new), vec![("old1".to_string(), 3)]);
    }

    #[test]
    fn scale_down_spans_old_replicasets_oldest_first() {
        let d = deployment(4, rolling(json!(0), json!(4)));
        let a = rs("a", "2026-11-21T07:00:00Z", 2, 2);
        let b = rs("b", "2026-11-21T08:00:00Z", 2, 2);
        let new = rs("new", "2026-11-21T09:00:00Z", 0, 0);
        let all = [b.clone(), a.clone(), new.clone()];
        assert_eq!(old_rs_scale_down(&d, &all, &[b, a], &new), vec![("a".to_string(), 0), ("b".to_string(), 0)]);
    }

    #[test]
    fn recreate_scales_all_old_to_zero() {
        let d = deployment(3, json!({"type": "Recreate"}));
        let a = rs("a", "2026-11-21T07:00:00Z", 3, 3);
        let z = rs("z", "2026-11-21T06:00:00Z", 0, 0);
        let b = rs("b", "2026-11-21T08:00:00Z", 1, 0);
        let new = rs("new", "2026-11-21T09:00:00Z", 0, 0);
        let got = old_rs_scale_down(&d, &[], &[b, z, a], &new);
        assert_eq!(got, vec![("a".to_string(), 0), ("b".to_string(), 0)]);
    }

    fn cond(type_: &str, status: &str, reason: &str, message: &str, update: &str, transition: &str) -> Value {
        json!({"type": type_, "status": status, "reason": reason, "message": message,
               "lastUpdateTime": update, "lastTransitionTime": transition})
    }

    #[test]
    fn reference_status_after_pods_become_available() {
        // Just before: pods created, not yet available (conditions as upstream leaves them).
        let mut d = ref_deployment();
        d.status = Some(
            serde_json::from_value(json!({
                "observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "unavailableReplicas": 2,
                "conditions": [
                    cond("Available", "False", REASON_MIN_UNAVAILABLE, "Deployment does not have minimum availability.",
                         "2026-11-21T08:11:30Z", "2026-11-21T08:11:30Z"),
                    cond("Progressing", "True", REASON_RS_UPDATED, "ReplicaSet \"web-58fd498598\" is progressing.",
                         "2026-11-21T08:11:30Z", "2026-11-21T08:11:30Z")
                ]
            }))
            .unwrap(),
        );
        let rs = ref_rs();
        let got = deployment_status(&d, std::slice::from_ref(&rs), Some(&rs), "2026-11-21T08:11:31Z");
        assert_eq!(serde_json::to_value(&got).unwrap(), reference("deployment-available.json")["status"]);
        // And it is a fixed point.
        let mut done = ref_deployment();
        done.status = Some(got.clone());
        let again = deployment_status(&done, std::slice::from_ref(&rs), Some(&rs), "2026-11-21T09:00:00Z");
        assert_eq!(again, got);
    }

    #[test]
    fn reference_status_right_after_replicaset_creation() {
        let mut d0 = ref_deployment();
        d0.status = None;
        let created = new_replica_set_status(&d0, "web-58fd498598", true, "2026-11-21T08:11:30Z").unwrap();
        assert_eq!(
            serde_json::to_value(&created).unwrap()["conditions"],
            json!([cond(
                "Progressing",
                "True",
                REASON_NEW_RS_CREATED,
                "Created new replica set \"web-58fd498598\"",
                "2026-11-21T08:11:30Z",
                "2026-11-21T08:11:30Z"
            )])
        );
        let mut d = d0.clone();
        d.status = Some(created);
        let mut rs = ref_rs();
        rs.status = None;
        let got = deployment_status(&d, std::slice::from_ref(&rs), Some(&rs), "2026-11-21T08:11:30Z");
        assert_eq!(
            serde_json::to_value(&got).unwrap(),
            json!({"observedGeneration": 1, "unavailableReplicas": 2, "conditions": [
                cond("Progressing", "True", REASON_NEW_RS_CREATED, "Created new replica set \"web-58fd498598\"",
                     "2026-11-21T08:11:30Z", "2026-11-21T08:11:30Z"),
                cond("Available", "False", REASON_MIN_UNAVAILABLE, "Deployment does not have minimum availability.",
                     "2026-11-21T08:11:30Z", "2026-11-21T08:11:30Z")
            ]})
        );
        // An existing ReplicaSet found with no Progressing condition at all.
        let found = new_replica_set_status(&d0, "web-58fd498598", false, "2026-11-21T08:11:30Z").unwrap();
        assert_eq!(get_condition(&found, "Progressing").and_then(|c| c.reason.as_deref()), Some(REASON_FOUND_NEW_RS));
        assert!(new_replica_set_status(&d, "web-58fd498598", false, "2026-11-21T08:11:30Z").is_none());
    }

    fn status_with_progressing(reason: &str, update: &str) -> DeploymentStatus {
        serde_json::from_value(json!({
            "observedGeneration": 1, "replicas": 3, "updatedReplicas": 1, "readyReplicas": 2, "availableReplicas": 2,
            "conditions": [cond("Progressing", "True", reason, "m", update, "2026-11-21T08:00:00Z")]
        }))
        .unwrap()
    }

    #[test]
    fn progress_deadline_exceeded() {
        let mut d = deployment(2, json!({"type": "RollingUpdate"}));
        d.status = Some(status_with_progressing(REASON_RS_UPDATED, "2026-11-21T08:00:00Z"));
        let old = rs("old", "2026-11-21T07:00:00Z", 2, 2);
        let mut new = rs("new", "2026-11-21T08:00:00Z", 1, 0);
        if let Some(s) = new.status.as_mut() {
            s.replicas = 1;
        }
        let all = [old, new.clone()];
        let before = deployment_status(&d, &all, Some(&new), "2026-11-21T08:10:00Z");
        assert_eq!(get_condition(&before, "Progressing").and_then(|c| c.reason.as_deref()), Some(REASON_RS_UPDATED));
        let after = deployment_status(&d, &all, Some(&new), "2026-11-21T08:10:01Z");
        let c = get_condition(&after, "Progressing").unwrap();
        assert_eq!((c.status.as_str(), c.reason.as_deref()), ("False", Some(REASON_TIMED_OUT)));
        assert_eq!(c.message.as_deref(), Some("ReplicaSet \"new\" has timed out progressing."));
    }

    #[test]
    fn progressing_updates_last_update_time_only() {
        let mut d = deployment(2, json!({"type": "RollingUpdate"}));
        d.status = Some(status_with_progressing(REASON_RS_UPDATED, "2026-11-21T08:00:00Z"));
        let old = rs("old", "2026-11-21T07:00:00Z", 1, 1);
        let new = rs("new", "2026-11-21T08:00:00Z", 2, 1);
        let got = deployment_status(&d, &[old, new.clone()], Some(&new), "2026-11-21T08:05:00Z");
        let c = get_condition(&got, "Progressing").unwrap();
        assert_eq!(c.reason.as_deref(), Some(REASON_RS_UPDATED));
        assert_eq!(c.message.as_deref(), Some("ReplicaSet \"new\" is progressing."));
        assert_eq!(c.last_update_time.as_ref().map(|t| t.0.to_string()), Some("2026-11-21T08:05:00Z".into()));
        assert_eq!(c.last_transition_time.as_ref().map(|t| t.0.to_string()), Some("2026-11-21T08:00:00Z".into()));
        assert_eq!(
            (got.replicas, got.updated_replicas, got.available_replicas, got.unavailable_replicas),
            (Some(3), Some(2), Some(2), Some(1))
        );
    }

    #[test]
    fn paused_and_no_deadline() {
        let mut d = deployment(2, json!({"type": "RollingUpdate"}));
        if let Some(s) = d.spec.as_mut() {
            s.paused = Some(true);
        }
        d.status = Some(status_with_progressing(REASON_RS_UPDATED, "2026-11-21T08:00:00Z"));
        let got = deployment_status(&d, &[], None, "2026-11-21T08:05:00Z");
        let c = get_condition(&got, "Progressing").unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref(), c.message.as_deref()),
            ("Unknown", Some(REASON_PAUSED), Some("Deployment is paused"))
        );
        let mut resumed = d.clone();
        if let Some(s) = resumed.spec.as_mut() {
            s.paused = Some(false);
        }
        resumed.status = Some(got);
        let got = deployment_status(&resumed, &[], None, "2026-11-21T08:06:00Z");
        assert_eq!(get_condition(&got, "Progressing").and_then(|c| c.reason.as_deref()), Some(REASON_RESUMED));
        let mut no_deadline = deployment(2, json!({"type": "RollingUpdate"}));
        if let Some(s) = no_deadline.spec.as_mut() {
            s.progress_deadline_seconds = Some(i32::MAX);
        }
        no_deadline.status = Some(status_with_progressing(REASON_RS_UPDATED, "2026-11-21T08:00:00Z"));
        let got = deployment_status(&no_deadline, &[], None, "2026-11-21T08:05:00Z");
        assert!(get_condition(&got, "Progressing").is_none());
        assert_eq!(get_condition(&got, "Available").map(|c| c.status.as_str()), Some("False"));
    }

    #[test]
    fn replica_failure_is_surfaced_and_cleared() {
        let d = deployment(1, json!({"type": "RollingUpdate"}));
        let mut new = rs("new", "2026-11-21T08:00:00Z", 1, 0);
        if let Some(s) = new.status.as_mut() {
            s.conditions = Some(vec![
                serde_json::from_value(json!({"type": "ReplicaFailure", "status": "True",
                "reason": "FailedCreate", "message": "quota", "lastTransitionTime": "2026-11-21T08:00:01Z"}))
                .unwrap(),
            ]);
        }
        let got = deployment_status(&d, std::slice::from_ref(&new), Some(&new), "2026-11-21T08:00:02Z");
        let c = get_condition(&got, "ReplicaFailure").unwrap();
        assert_eq!((c.reason.as_deref(), c.message.as_deref()), (Some("FailedCreate"), Some("quota")));
        let mut d2 = d.clone();
        d2.status = Some(got);
        let healthy = rs("new", "2026-11-21T08:00:00Z", 1, 1);
        let got = deployment_status(&d2, std::slice::from_ref(&healthy), Some(&healthy), "2026-11-21T08:00:03Z");
        assert!(get_condition(&got, "ReplicaFailure").is_none());
    }

    #[test]
    fn set_condition_semantics() {
        let t0 = parse_now("2026-11-21T08:00:00Z");
        let t1 = parse_now("2026-11-21T09:00:00Z");
        let mut s = DeploymentStatus::default();
        set_condition(&mut s, new_condition("Available", "True", "A", "m1", t0));
        set_condition(&mut s, new_condition("Available", "True", "A", "m2", t1));
        assert_eq!(
            get_condition(&s, "Available").and_then(|c| c.message.as_deref()),
            Some("m1"),
            "same status+reason: no-op"
        );
        set_condition(&mut s, new_condition("Available", "True", "B", "m3", t1));
        let c = get_condition(&s, "Available").unwrap();
        assert_eq!(
            (c.last_transition_time.as_ref().map(|t| t.0), c.last_update_time.as_ref().map(|t| t.0)),
            (Some(t0), Some(t1))
        );
        set_condition(&mut s, new_condition("Available", "False", "B", "m4", t1));
        assert_eq!(get_condition(&s, "Available").and_then(|c| c.last_transition_time.as_ref()).map(|t| t.0), Some(t1));
        assert_eq!(parse_now("garbage"), Timestamp::UNIX_EPOCH);
    }

    proptest! {
        #[test]
        fn extreme_values_do_not_panic(
            desired in any::<i32>(), surge in any::<i32>(), unavail in any::<i32>(),
            old_n in any::<i32>(), old_avail in any::<i32>(), new_n in any::<i32>(), new_avail in any::<i32>(),
            pct in any::<bool>(),
        ) {
            let strategy = if pct {
                rolling(json!(format!("{surge}%")), json!(format!("{unavail}%")))
            } else {
                rolling(json!(surge), json!(unavail))
            };
            let d = deployment(desired, strategy);
            let old = rs("old", "2026-11-21T07:00:00Z", old_n, old_avail);
            let new = rs("new", "2026-11-21T08:00:00Z", new_n, new_avail);
            let all = [old.clone(), new.clone()];
            let _ = new_rs_new_replicas(&d, &all, &new);
            let _ = old_rs_scale_down(&d, &all, std::slice::from_ref(&old), &new);
            let _ = deployment_status(&d, &all, Some(&new), "2026-11-21T08:00:00Z");
            let _ = replicaset_annotations(&d, i64::MAX);
        }
    }

    proptest! {
        #[test]
        fn rolling_update_respects_bounds(
            desired in 0i32..30, surge in 0i32..5, unavail in 0i32..5,
            old_n in 0i32..40, old_avail in 0i32..40, new_n in 0i32..40, new_avail in 0i32..40,
        ) {
            let d = deployment(desired, rolling(json!(surge), json!(unavail)));
            let old = rs("old", "2026-11-21T07:00:00Z", old_n, old_avail.min(old_n));
            let new = rs("new", "2026-11-21T08:00:00Z", new_n, new_avail.min(new_n));
            let all = [old.clone(), new.clone()];
            let n = new_rs_new_replicas(&d, &all, &new);
            prop_assert!(n >= 0 && n <= desired.max(new_n));
            if new_n <= desired && old_n + new_n < desired + resolve_fenceposts(Some(&IntOrString::Int(surge)), Some(&IntOrString::Int(unavail)), desired).0 {
                prop_assert!(n > new_n || new_n == desired);
            }
            let downs = old_rs_scale_down(&d, &all, std::slice::from_ref(&old), &new);
            for (name, size) in &downs {
                prop_assert_eq!(name.as_str(), "old");
                prop_assert!(*size >= 0 && *size < old_n);
            }
            let _ = deployment_status(&d, &all, Some(&new), "2026-11-21T08:00:00Z");
        }
    }
}
