//! Pod predicates and the ReplicaSet scale-down order (`pkg/controller/controller_utils.go`:
//! `IsPodActive`, `ActivePodsWithRanks.Less` with pod-deletion-cost and LogarithmicScaleDown,
//! both on by default in v1.32), and the `pod-template-hash` label value (`ComputeHash`).

use jiff::Timestamp;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;

use crate::cached_pod::CachedPod;

/// Annotation whose integer value orders scale-down among equally ready pods (lower goes first).
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// A pod with its rank: how many active pods related to the same controller share its node.
/// Upstream counts the pod itself too; only differences between ranks matter.
#[derive(Debug, Clone, Copy)]
pub struct RankedPod<'a> {
    pub pod: &'a CachedPod,
    pub related_on_same_node: usize,
}

fn phase(pod: &CachedPod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

/// Not Succeeded, not Failed, and not being deleted (`IsPodActive`).
pub fn is_pod_active(pod: &CachedPod) -> bool {
    let p = phase(pod);
    p != "Succeeded" && p != "Failed" && pod.metadata.deletion_timestamp.is_none()
}

fn ready_condition(pod: &CachedPod) -> Option<&crate::cached_pod::CachedPodCondition> {
    pod.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready")
}

/// The pod's Ready condition is True (`podutil.IsPodReady`).
pub fn is_pod_ready(pod: &CachedPod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

/// Ready for at least `min_ready_seconds` before `now` (`podutil.IsPodAvailable`): with 0 any
/// ready pod is available; otherwise the Ready transition must be known and old enough.
pub fn is_pod_available(pod: &CachedPod, min_ready_seconds: i32, now: Timestamp) -> bool {
    if !is_pod_ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    let Some(since) = ready_condition(pod).and_then(|c| c.last_transition_time.as_ref()) else {
        return false;
    };
    // Upstream: lastTransitionTime + minReadySeconds is strictly before now.
    since.0.as_nanosecond() + i128::from(min_ready_seconds) * 1_000_000_000 < now.as_nanosecond()
}

/// The pod-deletion-cost annotation (`GetDeletionCostFromPodAnnotations`): a base-10 `int32`
/// without a leading `+` or leading zeros; anything else counts as 0.
pub fn pod_deletion_cost(pod: &CachedPod) -> i32 {
    let Some(value) = pod.metadata.annotations.as_ref().and_then(|a| a.get(POD_DELETION_COST)) else {
        return 0;
    };
    let valid_first = match value.as_bytes() {
        [] => false,
        [b'-', ..] => true,
        [b'0'] => true,
        [b'1'..=b'9', ..] => true,
        _ => false,
    };
    if !valid_first {
        return 0;
    }
    value.parse::<i32>().unwrap_or(0)
}

fn phase_ordinal(pod: &CachedPod) -> u8 {
    match phase(pod) {
        "Unknown" => 1,
        "Running" => 2,
        _ => 0, // Pending, and anything else (a Go map lookup miss) ranks with Pending.
    }
}

fn ready_time(pod: &CachedPod) -> Option<Timestamp> {
    if !is_pod_ready(pod) {
        return None;
    }
    ready_condition(pod).and_then(|c| c.last_transition_time.as_ref()).map(|t| t.0)
}

fn max_restarts(pod: &CachedPod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().map(|c| c.restart_count).max())
        .unwrap_or(0)
        .max(0)
}

fn uid(pod: &CachedPod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or("")
}

fn node_name(pod: &CachedPod) -> &str {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("")
}

/// `afterOrZero`: a missing time counts as later than any present one.
fn after_or_zero(t1: Option<Timestamp>, t2: Option<Timestamp>) -> bool {
    match (t1, t2) {
        (None, _) => true,
        (_, None) => false,
        (Some(a), Some(b)) => a > b,
    }
}

/// `logarithmicRankDiff`: floor(log2) of the age in nanoseconds (-1 when not in the past).
fn log_rank(t: Timestamp, now: Timestamp) -> i64 {
    let d = now.as_nanosecond().saturating_sub(t.as_nanosecond());
    let d = i64::try_from(d).unwrap_or(if d < 0 { i64::MIN } else { i64::MAX });
    if d > 0 { (d as f64).log2() as i64 } else { -1 }
}

/// Compares two timestamps the way steps 6 and 8 of `Less` do once they differ:
/// `Some(true)` when `a`'s pod should go first, `Some(false)` otherwise.
fn newer_first(a: Option<Timestamp>, b: Option<Timestamp>, ua: &str, ub: &str, now: Timestamp) -> bool {
    match (a, b) {
        (Some(ta), Some(tb)) => {
            let diff = log_rank(ta, now) - log_rank(tb, now);
            if diff == 0 { ua < ub } else { diff < 0 }
        }
        _ => after_or_zero(a, b),
    }
}

/// `ActivePodsWithRanks.Less`: whether `a` should be deleted before `b`.
fn less(a: &RankedPod<'_>, b: &RankedPod<'_>, now: Timestamp) -> bool {
    let (pa, pb) = (a.pod, b.pod);
    // 1. Unassigned before assigned.
    let (na, nb) = (node_name(pa), node_name(pb));
    if na != nb && (na.is_empty() || nb.is_empty()) {
        return na.is_empty();
    }
    // 2. Pending < Unknown < Running.
    let (oa, ob) = (phase_ordinal(pa), phase_ordinal(pb));
    if oa != ob {
        return oa < ob;
    }
    // 3. Not ready before ready.
    let (ra, rb) = (is_pod_ready(pa), is_pod_ready(pb));
    if ra != rb {
        return !ra;
    }
    // 4. Lower pod-deletion-cost first.
    let (ca, cb) = (pod_deletion_cost(pa), pod_deletion_cost(pb));
    if ca != cb {
        return ca < cb;
    }
    // 5. More related pods on the same node first.
    if a.related_on_same_node != b.related_on_same_node {
        return a.related_on_same_node > b.related_on_same_node;
    }
    // 6. Ready more recently first (logarithmic buckets, UID breaks ties within a bucket).
    if ra && rb {
        let (ta, tb) = (ready_time(pa), ready_time(pb));
        if ta != tb {
            return newer_first(ta, tb, uid(pa), uid(pb), now);
        }
    }
    // 7. More container restarts first.
    let (xa, xb) = (max_restarts(pa), max_restarts(pb));
    if xa != xb {
        return xa > xb;
    }
    // 8. Created more recently first (logarithmic buckets, UID tie-break).
    let ca = pa.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let cb = pb.metadata.creation_timestamp.as_ref().map(|t| t.0);
    if ca != cb {
        return newer_first(ca, cb, uid(pa), uid(pb), now);
    }
    false
}

/// Stable merge sort driven only by `less`; never panics, even if `less` is not a strict weak
/// order (the logarithmic buckets with UID tie-breaks can be intransitive).
fn merge_sort_by<T: Copy>(items: &mut Vec<T>, less: &impl Fn(&T, &T) -> bool) {
    if items.len() <= 1 {
        return;
    }
    let mut right = items.split_off(items.len() / 2);
    merge_sort_by(items, less);
    merge_sort_by(&mut right, less);
    let left = std::mem::take(items);
    let (mut i, mut j) = (0, 0);
    while i < left.len() && j < right.len() {
        if less(&right[j], &left[i]) {
            items.push(right[j]);
            j += 1;
        } else {
            items.push(left[i]);
            i += 1;
        }
    }
    items.extend_from_slice(&left[i..]);
    items.extend_from_slice(&right[j..]);
}

/// Indices of `pods` in the order a ReplicaSet deletes them when scaling down, with ranks
/// supplied by the caller (upstream counts the active pods of every ReplicaSet of the same
/// Deployment on each node).
pub fn scale_down_order_ranked(pods: &[RankedPod<'_>], now: Timestamp) -> Vec<usize> {
    let mut order: Vec<usize> = (0..pods.len()).collect();
    merge_sort_by(&mut order, &|a: &usize, b: &usize| less(&pods[*a], &pods[*b], now));
    order
}

/// Indices of `pods` (a ReplicaSet's active pods) in the order the ReplicaSet deletes them when
/// scaling down; each pod's rank is the number of active pods in `pods` on its node.
pub fn scale_down_order(pods: &[CachedPod], now: Timestamp) -> Vec<usize> {
    let mut per_node: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for p in pods.iter().filter(|p| is_pod_active(p)) {
        *per_node.entry(node_name(p)).or_default() += 1;
    }
    let ranked: Vec<RankedPod<'_>> = pods
        .iter()
        .map(|p| RankedPod { pod: p, related_on_same_node: per_node.get(node_name(p)).copied().unwrap_or(0) })
        .collect();
    scale_down_order_ranked(&ranked, now)
}

// ---------------------------------------------------------------------------------------------
// pod-template-hash
// ---------------------------------------------------------------------------------------------

/// Characters of upstream's `rand.SafeEncodeString` (no vowels, no 0/1/3: avoids words).
const SAFE_ALPHABET: &[u8; 27] = b"bcdfghjklmnpqrstvwxz2456789";

/// Upstream `rand.SafeEncodeString`: maps each character to `SAFE_ALPHABET[code % 27]`.
pub fn safe_encode_string(s: &str) -> String {
    s.chars().map(|c| char::from(SAFE_ALPHABET[(c as usize) % SAFE_ALPHABET.len()])).collect()
}

/// 32-bit FNV-1a.
pub fn fnv32a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193))
}

/// JSON with object keys sorted at every level, independent of serde_json's map features.
fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(inner) = map.get(k) {
                    write_canonical(inner, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The `pod-template-hash` label value for a Deployment's pod template (`ComputeHash`):
/// FNV-1a over the template, then, when a collision count is given, its 32-bit little-endian
/// value padded to 8 bytes; the decimal hash is rendered with [`safe_encode_string`].
///
/// Deviation: upstream hashes a `go-spew` dump of the Go struct (Go type names, pointer
/// layout, field order), which cannot be reproduced from the JSON object. This hashes a
/// canonical JSON encoding instead (sorted keys, absent fields omitted), so values have
/// upstream's shape (up to 10 characters of the same alphabet, stable for an unchanged
/// template, different for a changed one) but not upstream's exact value.
pub fn pod_template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut canonical = String::new();
    match serde_json::to_value(template) {
        Ok(v) => write_canonical(&v, &mut canonical),
        Err(_) => canonical.push_str("null"),
    }
    let mut bytes = canonical.into_bytes();
    if let Some(count) = collision_count {
        bytes.extend_from_slice(&count.to_le_bytes());
        bytes.extend_from_slice(&[0, 0, 0, 0]);
    }
    safe_encode_string(&fnv32a(&bytes).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn reference(name: &str) -> Value {
        let path = format!("{}/../../testdata/k8s-reference/v1.32/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const NOW: &str = "2026-11-21T09:00:00Z";

    struct P {
        name: &'static str,
        node: &'static str,
        phase: &'static str,
        ready: bool,
        ready_since: &'static str,
        created: &'static str,
        cost: Option<&'static str>,
        restarts: i32,
    }

    impl Default for P {
        fn default() -> Self {
            P {
                name: "p",
                node: "n1",
                phase: "Running",
                ready: true,
                ready_since: "2026-11-21T08:00:00Z",
                created: "2026-11-21T07:59:00Z",
                cost: None,
                restarts: 0,
            }
        }
    }

    fn mk(p: P) -> CachedPod {
        let mut annotations = serde_json::Map::new();
        if let Some(c) = p.cost {
            annotations.insert(POD_DELETION_COST.into(), json!(c));
        }
        serde_json::from_value(json!({
            "metadata": {"name": p.name, "uid": format!("uid-{}", p.name), "creationTimestamp": p.created,
                         "annotations": annotations},
            "spec": {"nodeName": p.node, "containers": [{"name": "c"}]},
            "status": {
                "phase": p.phase,
                "conditions": [{"type": "Ready", "status": if p.ready { "True" } else { "False" },
                                "lastTransitionTime": p.ready_since}],
                "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": p.ready,
                                       "restartCount": p.restarts}]
            }
        }))
        .unwrap()
    }

    fn names(pods: &[CachedPod], order: &[usize]) -> Vec<String> {
        order.iter().map(|i| pods[*i].metadata.name.clone().unwrap_or_default()).collect()
    }

    fn order(pods: &[CachedPod]) -> Vec<String> {
        names(pods, &scale_down_order(pods, ts(NOW)))
    }

    #[test]
    fn predicates() {
        let p = mk(P::default());
        assert!(is_pod_active(&p) && is_pod_ready(&p));
        assert!(!is_pod_active(&mk(P { phase: "Succeeded", ..P::default() })));
        assert!(!is_pod_active(&mk(P { phase: "Failed", ..P::default() })));
        let mut deleting = p.clone();
        deleting.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(ts(NOW)));
        assert!(!is_pod_active(&deleting));
        assert!(!is_pod_ready(&mk(P { ready: false, ..P::default() })));
        assert!(!is_pod_ready(&CachedPod::default()) && is_pod_active(&CachedPod::default()));
    }

    #[test]
    fn availability_honours_min_ready_seconds() {
        let p = mk(P { ready_since: "2026-11-21T08:59:50Z", ..P::default() });
        assert!(is_pod_available(&p, 0, ts(NOW)));
        assert!(is_pod_available(&p, 9, ts(NOW)));
        assert!(!is_pod_available(&p, 10, ts(NOW)), "must be strictly before now");
        assert!(!is_pod_available(&mk(P { ready: false, ..P::default() }), 0, ts(NOW)));
    }

    #[test]
    fn deletion_cost_parsing() {
        let cost = |v: &'static str| pod_deletion_cost(&mk(P { cost: Some(v), ..P::default() }));
        assert_eq!(cost("10"), 10);
        assert_eq!(cost("-5"), -5);
        assert_eq!(cost("0"), 0);
        assert_eq!(cost("-2147483648"), i32::MIN);
        assert_eq!(cost("+1"), 0, "leading plus is invalid");
        assert_eq!(cost("007"), 0, "leading zeros are invalid");
        assert_eq!(cost("2147483648"), 0, "out of int32 range");
        assert_eq!(cost("abc"), 0);
        assert_eq!(cost(""), 0);
        assert_eq!(cost("1.5"), 0);
        assert_eq!(pod_deletion_cost(&mk(P::default())), 0);
    }

    #[test]
    fn reference_recorded_not_ready_goes_first_whatever_its_cost() {
        // Recorded on v1.32: an adopted extra pod that is not Ready is removed first even with
        // the highest deletion cost; cost only orders equally ready pods.
        let pods = vec![
            mk(P { name: "ready-cheap", node: "n1", cost: Some("-100"), ..P::default() }),
            mk(P { name: "not-ready-expensive", node: "n2", ready: false, cost: Some("1000"), ..P::default() }),
            mk(P { name: "ready-dear", node: "n3", cost: Some("50"), ..P::default() }),
        ];
        assert_eq!(order(&pods), ["not-ready-expensive", "ready-cheap", "ready-dear"]);
    }

    #[test]
    fn reference_pods_order() {
        let list = reference("deployment-pods-list.json");
        let pods: Vec<CachedPod> = serde_json::from_value(list["items"].clone()).unwrap();
        assert!(pods.len() >= 2);
        assert!(pods.iter().all(|p| is_pod_active(p) && is_pod_ready(p)));
        let now = ts("2026-11-21T08:12:00Z");
        let base = scale_down_order(&pods, now);
        let mut sorted = base.clone();
        sorted.sort();
        assert_eq!(sorted, (0..pods.len()).collect::<Vec<_>>());
        // Make the last pod unready: it becomes the first to go.
        let mut changed = pods.clone();
        let last = changed.len() - 1;
        if let Some(c) = changed[last].status.as_mut().and_then(|s| s.conditions.as_mut()) {
            for cond in c.iter_mut().filter(|c| c.type_ == "Ready") {
                cond.status = "False".into();
            }
        }
        assert_eq!(scale_down_order(&changed, now)[0], last);
    }

    #[test]
    fn unassigned_then_phase_order() {
        let pods = vec![
            mk(P { name: "running", ..P::default() }),
            mk(P { name: "unknown", phase: "Unknown", ..P::default() }),
            mk(P { name: "pending", phase: "Pending", ready: false, ..P::default() }),
            mk(P { name: "unassigned", node: "", phase: "Running", ..P::default() }),
        ];
        assert_eq!(order(&pods), ["unassigned", "pending", "unknown", "running"]);
    }

    #[test]
    fn cost_then_doubled_up_nodes() {
        let pods = vec![
            mk(P { name: "alone", node: "n1", ..P::default() }),
            mk(P { name: "pair-a", node: "n2", ..P::default() }),
            mk(P { name: "pair-b", node: "n2", ..P::default() }),
            mk(P { name: "cheap-alone", node: "n3", cost: Some("-1"), ..P::default() }),
        ];
        assert_eq!(order(&pods), ["cheap-alone", "pair-a", "pair-b", "alone"]);
        // Ranks supplied by the caller (e.g. counting sibling ReplicaSets' pods).
        let ranked = [
            RankedPod { pod: &pods[0], related_on_same_node: 5 },
            RankedPod { pod: &pods[1], related_on_same_node: 1 },
        ];
        assert_eq!(scale_down_order_ranked(&ranked, ts(NOW)), [0, 1]);
    }

    #[test]
    fn inactive_pods_do_not_count_towards_ranks() {
        let pods = vec![
            mk(P { name: "alone", node: "n1", created: "2026-11-21T08:59:00Z", ..P::default() }),
            mk(P { name: "with-dead", node: "n2", created: "2026-11-21T01:00:00Z", ..P::default() }),
            mk(P { name: "dead", node: "n2", phase: "Failed", ..P::default() }),
        ];
        // Both live pods have rank 1, so the newer one goes first; the Failed pod (phase
        // ordinal like Pending) sorts ahead of them.
        assert_eq!(order(&pods), ["dead", "alone", "with-dead"]);
    }

    #[test]
    fn ready_time_is_compared_in_log2_buckets() {
        let pods = vec![
            mk(P { name: "old", ready_since: "2026-11-21T07:00:00Z", ..P::default() }),
            mk(P { name: "new", ready_since: "2026-11-21T08:59:50Z", ..P::default() }),
        ];
        assert_eq!(order(&pods), ["new", "old"]);
        // 100 s and 101 s ago fall in the same bucket: UID decides.
        let same = vec![
            mk(P { name: "b", ready_since: "2026-11-21T08:58:20Z", ..P::default() }),
            mk(P { name: "a", ready_since: "2026-11-21T08:58:19Z", ..P::default() }),
        ];
        assert_eq!(order(&same), ["a", "b"]);
        // Ready in the future (clock skew) ranks as newest.
        let future = vec![
            mk(P { name: "past", ready_since: "2026-11-21T08:59:59Z", ..P::default() }),
            mk(P { name: "future", ready_since: "2026-11-21T09:30:00Z", ..P::default() }),
        ];
        assert_eq!(order(&future), ["future", "past"]);
    }

    #[test]
    fn restarts_then_creation_time() {
        let pods =
            vec![mk(P { name: "steady", ..P::default() }), mk(P { name: "flappy", restarts: 3, ..P::default() })];
        assert_eq!(order(&pods), ["flappy", "steady"]);
        let pods = vec![
            mk(P { name: "older", created: "2026-11-20T00:00:00Z", ..P::default() }),
            mk(P { name: "newer", created: "2026-11-21T08:30:00Z", ..P::default() }),
        ];
        assert_eq!(order(&pods), ["newer", "older"]);
        let mut no_time = mk(P { name: "no-time", ..P::default() });
        no_time.metadata.creation_timestamp = None;
        let pods = vec![mk(P { name: "timed", created: "2026-11-21T08:59:59Z", ..P::default() }), no_time];
        assert_eq!(order(&pods), ["no-time", "timed"]);
    }

    #[test]
    fn identical_pods_keep_their_order() {
        let pods: Vec<CachedPod> = (0..5).map(|_| mk(P::default())).collect();
        assert_eq!(scale_down_order(&pods, ts(NOW)), [0, 1, 2, 3, 4]);
        assert!(scale_down_order(&[], ts(NOW)).is_empty());
    }

    #[test]
    fn hash_encoding() {
        assert_eq!(fnv32a(b""), 0x811c_9dc5);
        assert_eq!(fnv32a(b"a"), 0xe40c_292c);
        assert_eq!(fnv32a(b"foobar"), 0xbf9c_f968);
        // The reference ReplicaSet web-58fd498598: its hash is SafeEncodeString of 1498054154.
        assert_eq!(safe_encode_string("1498054154"), "58fd498598");
        assert_eq!(safe_encode_string("0123456789"), "456789bcdf");
    }

    #[test]
    fn template_hash_is_stable_and_sensitive() {
        let rs = &reference("replicaset-list.json")["items"][0];
        let mut template: PodTemplateSpec = serde_json::from_value(rs["spec"]["template"].clone()).unwrap();
        if let Some(l) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            l.remove("pod-template-hash");
        }
        let h = pod_template_hash(&template, None);
        assert!(!h.is_empty() && h.len() <= 10);
        assert!(h.bytes().all(|b| SAFE_ALPHABET.contains(&b)));
        assert_eq!(h, pod_template_hash(&template.clone(), None));
        assert_ne!(h, pod_template_hash(&template, Some(1)));
        assert_ne!(pod_template_hash(&template, Some(1)), pod_template_hash(&template, Some(2)));
        let mut changed = template.clone();
        if let Some(spec) = changed.spec.as_mut() {
            spec.containers[0].image = Some("nginx:1.28".into());
        }
        assert_ne!(h, pod_template_hash(&changed, None));
    }

    proptest! {
        #[test]
        fn order_is_a_permutation(
            specs in prop::collection::vec((0usize..4, 0usize..4, any::<bool>(), -3i32..3, 0i64..100_000, 0i64..100_000, 0i32..3), 0..25),
            now_off in -10i64..200_000,
        ) {
            let nodes = ["", "n1", "n2", "n3"];
            let phases = ["Pending", "Running", "Unknown", "Succeeded"];
            let base = ts("2026-11-21T00:00:00Z");
            let pods: Vec<CachedPod> = specs.iter().enumerate().map(|(i, (n, ph, ready, cost, r, c, restarts))| {
                let mut p = mk(P { node: nodes[*n], phase: phases[*ph], ready: *ready, restarts: *restarts, ..P::default() });
                p.metadata.uid = Some(format!("u{i}"));
                let ann = p.metadata.annotations.get_or_insert_with(Default::default);
                std::sync::Arc::make_mut(ann).insert(POD_DELETION_COST.into(), cost.to_string());
                let at = |s: i64| k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    base.checked_add(jiff::SignedDuration::from_secs(s)).unwrap());
                p.metadata.creation_timestamp = Some(at(*c));
                if let Some(conds) = p.status.as_mut().and_then(|s| s.conditions.as_mut()) {
                    conds[0].last_transition_time = Some(at(*r));
                }
                p
            }).collect();
            let now = base.checked_add(jiff::SignedDuration::from_secs(now_off)).unwrap();
            let mut got = scale_down_order(&pods, now);
            // Not-ready pods of a phase always precede ready ones of the same phase and node state.
            for w in got.windows(2) {
                let (a, b) = (&pods[w[0]], &pods[w[1]]);
                if node_name(a).is_empty() == node_name(b).is_empty() && phase_ordinal(a) == phase_ordinal(b) {
                    prop_assert!(!is_pod_ready(a) || is_pod_ready(b));
                }
            }
            got.sort();
            prop_assert_eq!(got, (0..pods.len()).collect::<Vec<_>>());
        }
    }
}
