//! Resource arithmetic shared by the scheduler, kubelet admission and scoring rules.
//!
//! Mirrors upstream `k8s.io/apimachinery/pkg/api/resource` (quantity parsing) and
//! `pkg/api/v1/resource` (`PodRequests`: the sum of app containers, the max of init
//! containers with restartable sidecars accumulated, plus pod overhead).
//!
//! Quantities are parsed exactly into nano-units (10^-9) and summed exactly before they are
//! rounded up, the way upstream adds `resource.Quantity` values and only then asks for
//! `MilliValue()` (CPU) or `Value()` (memory, pods).

use std::ops::{Add, AddAssign, Sub, SubAssign};

use k8s_openapi::api::core::v1::Node;

use crate::cached_pod::{CachedContainer, CachedPodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// CPU (millicores), memory (bytes) and a pod count, as the scheduler's `framework.Resource`
/// tracks them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu_milli: i64,
    pub memory: i64,
    pub pods: i64,
}

impl Resources {
    pub const ZERO: Resources = Resources { cpu_milli: 0, memory: 0, pods: 0 };

    pub const fn new(cpu_milli: i64, memory: i64, pods: i64) -> Self {
        Resources { cpu_milli, memory, pods }
    }

    /// Field-wise saturating sum.
    pub fn saturating_add(self, other: Resources) -> Resources {
        Resources {
            cpu_milli: self.cpu_milli.saturating_add(other.cpu_milli),
            memory: self.memory.saturating_add(other.memory),
            pods: self.pods.saturating_add(other.pods),
        }
    }

    /// Field-wise saturating difference (may go negative; never overflows).
    pub fn saturating_sub(self, other: Resources) -> Resources {
        Resources {
            cpu_milli: self.cpu_milli.saturating_sub(other.cpu_milli),
            memory: self.memory.saturating_sub(other.memory),
            pods: self.pods.saturating_sub(other.pods),
        }
    }

    /// Field-wise maximum.
    pub fn max(self, other: Resources) -> Resources {
        Resources {
            cpu_milli: self.cpu_milli.max(other.cpu_milli),
            memory: self.memory.max(other.memory),
            pods: self.pods.max(other.pods),
        }
    }

    /// Sum of many values (saturating).
    pub fn sum<I: IntoIterator<Item = Resources>>(items: I) -> Resources {
        items.into_iter().fold(Resources::ZERO, Resources::saturating_add)
    }
}

impl Add for Resources {
    type Output = Resources;
    fn add(self, rhs: Resources) -> Resources {
        self.saturating_add(rhs)
    }
}

impl Sub for Resources {
    type Output = Resources;
    fn sub(self, rhs: Resources) -> Resources {
        self.saturating_sub(rhs)
    }
}

impl AddAssign for Resources {
    fn add_assign(&mut self, rhs: Resources) {
        *self = self.saturating_add(rhs);
    }
}

impl SubAssign for Resources {
    fn sub_assign(&mut self, rhs: Resources) {
        *self = self.saturating_sub(rhs);
    }
}

impl std::iter::Sum for Resources {
    fn sum<I: Iterator<Item = Resources>>(iter: I) -> Resources {
        Resources::sum(iter)
    }
}

// ---------------------------------------------------------------------------------------------
// Quantity parsing
// ---------------------------------------------------------------------------------------------

const NANOS_PER_UNIT: i128 = 1_000_000_000;
/// Upstream's scheduler default CPU request for containers without one (scoring only).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Upstream's scheduler default memory request for containers without one (scoring only): 200 MiB.
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Parses a Kubernetes quantity (`"250m"`, `"1.5"`, `"128Mi"`, `"1e3"`, `"2k"`...) exactly into
/// nano-units (value × 10^9). Precision finer than a nano-unit is rounded up (away from zero),
/// as upstream rounds to its smallest scale. Returns `None` for malformed input or values that
/// do not fit in an `i128`.
pub fn parse_quantity_nanos(s: &str) -> Option<i128> {
    let bytes = s.as_bytes();
    let mut pos = 0;
    let negative = match bytes.first() {
        Some(b'-') => {
            pos = 1;
            true
        }
        Some(b'+') => {
            pos = 1;
            false
        }
        _ => false,
    };
    let int_start = pos;
    while pos < bytes.len() && bytes[pos].is_ascii_digit() {
        pos += 1;
    }
    let int_digits = &s[int_start..pos];
    let mut frac_digits = "";
    if pos < bytes.len() && bytes[pos] == b'.' {
        pos += 1;
        let frac_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        frac_digits = &s[frac_start..pos];
    }
    if int_digits.is_empty() && frac_digits.is_empty() {
        return None;
    }
    let suffix = &s[pos..];
    let (base2, exponent): (bool, i32) = match suffix {
        "" => (false, 0),
        "n" => (false, -9),
        "u" => (false, -6),
        "m" => (false, -3),
        "k" => (false, 3),
        "M" => (false, 6),
        "G" => (false, 9),
        "T" => (false, 12),
        "P" => (false, 15),
        "E" => (false, 18),
        "Ki" => (true, 10),
        "Mi" => (true, 20),
        "Gi" => (true, 30),
        "Ti" => (true, 40),
        "Pi" => (true, 50),
        "Ei" => (true, 60),
        other => {
            let rest = other.strip_prefix('e').or_else(|| other.strip_prefix('E'))?;
            let digits = rest.strip_prefix('+').or_else(|| rest.strip_prefix('-')).unwrap_or(rest);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 6 {
                return None;
            }
            let value: i32 = digits.parse().ok()?;
            (false, if rest.starts_with('-') { -value } else { value })
        }
    };

    // Mantissa: every digit, integer then fraction, without leading zeros.
    let all_digits: String = int_digits.chars().chain(frac_digits.chars()).collect();
    let significant = all_digits.trim_start_matches('0');
    if significant.len() > 37 {
        return None;
    }
    let mantissa: i128 = if significant.is_empty() { 0 } else { significant.parse().ok()? };
    let frac_len = i32::try_from(frac_digits.len()).ok()?;

    let magnitude = if base2 {
        let scaled = mantissa.checked_mul(1i128.checked_shl(u32::try_from(exponent).ok()?)?)?;
        scale_pow10(scaled, 9 - frac_len)?
    } else {
        scale_pow10(mantissa, exponent.checked_add(9)?.checked_sub(frac_len)?)?
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// `value × 10^exp`, rounding a fractional result up (away from zero; `value` is non-negative).
fn scale_pow10(value: i128, exp: i32) -> Option<i128> {
    if exp >= 0 {
        let factor = 10i128.checked_pow(u32::try_from(exp).ok()?)?;
        value.checked_mul(factor)
    } else {
        let Some(divisor) = 10i128.checked_pow(exp.unsigned_abs()) else {
            return Some(i128::from(value > 0));
        };
        Some(ceil_div(value, divisor))
    }
}

/// Division rounding away from zero (upstream rounds quantities "up" when it loses precision).
fn ceil_div(value: i128, divisor: i128) -> i128 {
    if divisor == 0 {
        return 0;
    }
    let q = value / divisor;
    if value % divisor != 0 { if (value < 0) == (divisor < 0) { q + 1 } else { q - 1 } } else { q }
}

fn clamp_i64(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// Millicores of a CPU quantity, rounded up (`Quantity.MilliValue()`): `"0.1"` → 100, `"1"` → 1000.
pub fn parse_cpu_milli(s: &str) -> Option<i64> {
    parse_quantity_nanos(s).map(nanos_to_milli)
}

/// Bytes of a memory quantity, rounded up (`Quantity.Value()`): `"128Mi"` → 134217728.
pub fn parse_memory_bytes(s: &str) -> Option<i64> {
    parse_quantity_nanos(s).map(nanos_to_units)
}

/// Whole units of a count quantity (pods), rounded up (`Quantity.Value()`).
pub fn parse_count(s: &str) -> Option<i64> {
    parse_quantity_nanos(s).map(nanos_to_units)
}

fn nanos_to_milli(n: i128) -> i64 {
    clamp_i64(ceil_div(n, 1_000_000))
}

fn nanos_to_units(n: i128) -> i64 {
    clamp_i64(ceil_div(n, NANOS_PER_UNIT))
}

// ---------------------------------------------------------------------------------------------
// Pod requests
// ---------------------------------------------------------------------------------------------

/// Exact CPU and memory amounts in nano-units, summed before rounding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Exact {
    cpu: i128,
    memory: i128,
}

impl Exact {
    fn add(self, o: Exact) -> Exact {
        Exact { cpu: self.cpu.saturating_add(o.cpu), memory: self.memory.saturating_add(o.memory) }
    }
    fn max(self, o: Exact) -> Exact {
        Exact { cpu: self.cpu.max(o.cpu), memory: self.memory.max(o.memory) }
    }
    fn into_resources(self) -> Resources {
        Resources { cpu_milli: nanos_to_milli(self.cpu), memory: nanos_to_units(self.memory), pods: 1 }
    }
}

fn quantity_nanos(q: Option<&Quantity>) -> Option<i128> {
    q.and_then(|q| parse_quantity_nanos(&q.0))
}

/// Requests of one container. A resource without a request but with a limit uses the limit,
/// as the API server's defaulting (`SetDefaults_ResourceRequirements`) would have stored it.
/// With `non_zero`, a resource still missing gets the scheduler's scoring defaults (100m CPU,
/// 200Mi memory), like upstream's `NonMissingContainerRequests`.
fn container_requests(c: &CachedContainer, non_zero: bool) -> Exact {
    let reqs = c.resources.as_ref().and_then(|r| r.requests.as_ref());
    let limits = c.resources.as_ref().and_then(|r| r.limits.as_ref());
    let pick = |name: &str, default_nanos: i128| -> i128 {
        let present = reqs.is_some_and(|r| r.contains_key(name)) || limits.is_some_and(|l| l.contains_key(name));
        if !present && non_zero {
            return default_nanos;
        }
        quantity_nanos(reqs.and_then(|r| r.get(name)))
            .or_else(|| quantity_nanos(limits.and_then(|l| l.get(name))))
            .unwrap_or(0)
    };
    Exact {
        cpu: pick("cpu", i128::from(DEFAULT_MILLI_CPU_REQUEST) * 1_000_000),
        memory: pick("memory", i128::from(DEFAULT_MEMORY_REQUEST) * NANOS_PER_UNIT),
    }
}

fn aggregate_requests(spec: &CachedPodSpec, non_zero: bool) -> Exact {
    // App containers run together: their requests add up.
    let mut reqs = spec.containers.iter().fold(Exact::default(), |acc, c| acc.add(container_requests(c, non_zero)));

    // Init containers run one at a time, each alongside the restartable (sidecar) init
    // containers started before it; sidecars also keep running next to the app containers.
    let mut sidecars = Exact::default();
    let mut init_peak = Exact::default();
    for c in spec.init_containers.iter().flatten() {
        let r = container_requests(c, non_zero);
        let in_use = if c.restart_policy.as_deref() == Some("Always") {
            reqs = reqs.add(r);
            sidecars = sidecars.add(r);
            sidecars
        } else {
            r.add(sidecars)
        };
        init_peak = init_peak.max(in_use);
    }
    reqs = reqs.max(init_peak);

    // Pod overhead (RuntimeClass) is added on top.
    if let Some(overhead) = spec.overhead.as_ref() {
        reqs = reqs.add(Exact {
            cpu: quantity_nanos(overhead.get("cpu")).unwrap_or(0),
            memory: quantity_nanos(overhead.get("memory")).unwrap_or(0),
        });
    }
    reqs
}

/// The pod's effective requests, as the scheduler's NodeResourcesFit filter and the kubelet's
/// admission see them: sum of containers, max'd with each init container's peak (sidecars
/// included), plus overhead; `pods` is 1. Unparseable quantities count as 0.
pub fn pod_requests(spec: &CachedPodSpec) -> Resources {
    aggregate_requests(spec, false).into_resources()
}

/// The requests the scheduler's scoring plugins use (`LeastAllocated`): like [`pod_requests`]
/// but a container without a CPU or memory request counts as 100m / 200Mi.
pub fn pod_requests_non_zero(spec: &CachedPodSpec) -> Resources {
    aggregate_requests(spec, true).into_resources()
}

/// The node's allocatable CPU, memory and pod count. Falls back to `status.capacity` when
/// `status.allocatable` is absent (the API server defaults allocatable to capacity).
pub fn node_allocatable(node: &Node) -> Resources {
    let Some(status) = node.status.as_ref() else {
        return Resources::ZERO;
    };
    let list = status.allocatable.as_ref().or(status.capacity.as_ref());
    let get = |name: &str| quantity_nanos(list.and_then(|l| l.get(name))).unwrap_or(0);
    Resources {
        cpu_milli: nanos_to_milli(get("cpu")),
        memory: nanos_to_units(get("memory")),
        pods: nanos_to_units(get("pods")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cached_pod::{CachedResources, SortedMap};
    use k8s_openapi::api::core::v1::NodeStatus;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn q(s: &str) -> Quantity {
        Quantity(s.to_string())
    }

    fn list(cpu: Option<&str>, mem: Option<&str>) -> Option<BTreeMap<String, Quantity>> {
        let mut m = BTreeMap::new();
        if let Some(c) = cpu {
            m.insert("cpu".to_string(), q(c));
        }
        if let Some(x) = mem {
            m.insert("memory".to_string(), q(x));
        }
        Some(m)
    }

    fn container(name: &str, cpu: Option<&str>, mem: Option<&str>) -> CachedContainer {
        CachedContainer {
            name: name.into(),
            resources: Some(CachedResources { requests: list(cpu, mem).map(SortedMap::from), ..Default::default() }),
            ..Default::default()
        }
    }

    fn sidecar(name: &str, cpu: Option<&str>, mem: Option<&str>) -> CachedContainer {
        CachedContainer { restart_policy: Some("Always".into()), ..container(name, cpu, mem) }
    }

    const MI: i64 = 1024 * 1024;

    #[test]
    fn parses_cpu_quantities() {
        assert_eq!(parse_cpu_milli("200m"), Some(200));
        assert_eq!(parse_cpu_milli("1"), Some(1000));
        assert_eq!(parse_cpu_milli("0.1"), Some(100));
        assert_eq!(parse_cpu_milli("1.5"), Some(1500));
        assert_eq!(parse_cpu_milli("4"), Some(4000));
        assert_eq!(parse_cpu_milli("100u"), Some(1), "sub-milli rounds up");
        assert_eq!(parse_cpu_milli("1n"), Some(1));
        assert_eq!(parse_cpu_milli("0"), Some(0));
        assert_eq!(parse_cpu_milli("1e3"), Some(1_000_000));
        assert_eq!(parse_cpu_milli("1E-3"), Some(1));
        assert_eq!(parse_cpu_milli("2k"), Some(2_000_000));
        assert_eq!(parse_cpu_milli(".5"), Some(500));
        assert_eq!(parse_cpu_milli("5."), Some(5000));
    }

    #[test]
    fn parses_memory_quantities() {
        assert_eq!(parse_memory_bytes("128Mi"), Some(128 * MI));
        assert_eq!(parse_memory_bytes("8Gi"), Some(8 * 1024 * MI));
        assert_eq!(parse_memory_bytes("1.5Ki"), Some(1536));
        assert_eq!(parse_memory_bytes("1M"), Some(1_000_000));
        assert_eq!(parse_memory_bytes("1G"), Some(1_000_000_000));
        assert_eq!(parse_memory_bytes("129e6"), Some(129_000_000));
        assert_eq!(parse_memory_bytes("1500m"), Some(2), "fractional bytes round up");
        assert_eq!(parse_memory_bytes("1E"), Some(1_000_000_000_000_000_000));
        assert_eq!(parse_memory_bytes("1Ei"), Some(1 << 60));
        assert_eq!(parse_memory_bytes("0.5Mi"), Some(512 * 1024));
    }

    #[test]
    fn rejects_malformed_quantities() {
        for bad in ["", "m", "abc", "1x", "1 Mi", " 1", "1..2", "1Mi2", "e3", "1e", "1e+", "--1", "1ee3"] {
            assert_eq!(parse_quantity_nanos(bad), None, "{bad:?}");
        }
        assert_eq!(parse_quantity_nanos("1e999999"), None);
        assert_eq!(parse_quantity_nanos("99999999999999999999999999999999999999999"), None);
        assert_eq!(parse_quantity_nanos("-1"), Some(-1_000_000_000));
        assert_eq!(parse_quantity_nanos("+1m"), Some(1_000_000));
    }

    #[test]
    fn huge_values_saturate_instead_of_overflowing() {
        assert_eq!(parse_memory_bytes("100Ei"), Some(i64::MAX));
        assert_eq!(parse_cpu_milli("1e20"), Some(i64::MAX));
    }

    #[test]
    fn reference_pod_requests() {
        // deployment-available.json's container: cpu 200m, memory 128Mi.
        let spec = CachedPodSpec {
            containers: vec![container("c", Some("200m"), Some("128Mi"))].into(),
            ..Default::default()
        };
        assert_eq!(pod_requests(&spec), Resources::new(200, 128 * MI, 1));
    }

    #[test]
    fn containers_sum_and_init_containers_max() {
        let spec = CachedPodSpec {
            containers: vec![container("a", Some("100m"), Some("64Mi")), container("b", Some("300m"), None)].into(),
            init_containers: Some(vec![
                container("i1", Some("1"), Some("10Mi")),
                container("i2", Some("50m"), Some("512Mi")),
            ]),
            ..Default::default()
        };
        // cpu: max(400m, 1000m) = 1000m; memory: max(64Mi, 512Mi) = 512Mi.
        assert_eq!(pod_requests(&spec), Resources::new(1000, 512 * MI, 1));
    }

    #[test]
    fn sidecars_add_to_app_containers_and_to_later_init_containers() {
        let spec = CachedPodSpec {
            containers: vec![container("app", Some("100m"), Some("100Mi"))].into(),
            init_containers: Some(vec![
                container("before", Some("150m"), None),
                sidecar("proxy", Some("50m"), Some("50Mi")),
                container("after", Some("200m"), Some("10Mi")),
            ]),
            ..Default::default()
        };
        // app + sidecar = 150m/150Mi; "before" peaks at 150m; "after" runs beside the sidecar:
        // 250m / 60Mi. Result: max(150m, 250m) = 250m, max(150Mi, 60Mi) = 150Mi.
        assert_eq!(pod_requests(&spec), Resources::new(250, 150 * MI, 1));
    }

    #[test]
    fn overhead_is_added() {
        let spec = CachedPodSpec {
            containers: vec![container("a", Some("100m"), Some("64Mi"))].into(),
            overhead: list(Some("250m"), Some("120Mi")),
            ..Default::default()
        };
        assert_eq!(pod_requests(&spec), Resources::new(350, 184 * MI, 1));
    }

    #[test]
    fn quantities_are_summed_exactly_before_rounding() {
        let spec = CachedPodSpec {
            containers: vec![container("a", Some("0.5m"), None), container("b", Some("0.5m"), None)].into(),
            ..Default::default()
        };
        assert_eq!(pod_requests(&spec).cpu_milli, 1);
    }

    #[test]
    fn limits_stand_in_for_missing_requests() {
        let c = CachedContainer {
            name: "c".into(),
            resources: Some(CachedResources {
                limits: list(Some("2"), Some("1Gi")).map(SortedMap::from),
                ..Default::default()
            }),
            ..Default::default()
        };
        let spec = CachedPodSpec { containers: vec![c].into(), ..Default::default() };
        assert_eq!(pod_requests(&spec), Resources::new(2000, 1024 * MI, 1));
    }

    #[test]
    fn non_zero_requests_for_scoring() {
        let spec = CachedPodSpec {
            containers: vec![container("a", None, None), container("b", Some("0"), Some("1Mi"))].into(),
            ..Default::default()
        };
        assert_eq!(pod_requests(&spec), Resources::new(0, MI, 1));
        // Missing gets the default; explicit zero stays zero.
        assert_eq!(pod_requests_non_zero(&spec), Resources::new(100, 200 * MI + MI, 1));
    }

    #[test]
    fn empty_pod_requests_one_pod_slot() {
        assert_eq!(pod_requests(&CachedPodSpec::default()), Resources::new(0, 0, 1));
    }

    #[test]
    fn reference_node_allocatable() {
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "ref-n1"},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                       "capacity": {"cpu": "8", "memory": "16Gi", "pods": "220"}}
        }))
        .unwrap();
        assert_eq!(node_allocatable(&node), Resources::new(4000, 8 * 1024 * MI, 110));
        let cap_only = Node {
            status: Some(NodeStatus { capacity: list(Some("2"), Some("1Gi")), ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(node_allocatable(&cap_only), Resources::new(2000, 1024 * MI, 0));
        assert_eq!(node_allocatable(&Node::default()), Resources::ZERO);
    }

    #[test]
    fn arithmetic_saturates() {
        let a = Resources::new(i64::MAX, 1, 1);
        assert_eq!((a + a).cpu_milli, i64::MAX);
        assert_eq!(Resources::new(1, 2, 3) - Resources::new(2, 2, 2), Resources::new(-1, 0, 1));
        let mut b = Resources::ZERO;
        b += Resources::new(1, 2, 3);
        b -= Resources::new(1, 1, 1);
        assert_eq!(b, Resources::new(0, 1, 2));
        assert_eq!(Resources::new(1, 5, 0).max(Resources::new(3, 2, 1)), Resources::new(3, 5, 1));
        let total: Resources = [Resources::new(1, 1, 1), Resources::new(2, 2, 2)].into_iter().sum();
        assert_eq!(total, Resources::new(3, 3, 3));
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,40}") {
            let _ = parse_quantity_nanos(&s);
        }

        #[test]
        fn milli_roundtrip(m in 0i64..10_000_000) {
            prop_assert_eq!(parse_cpu_milli(&format!("{m}m")), Some(m));
            prop_assert_eq!(parse_memory_bytes(&format!("{m}Ki")), Some(m * 1024));
        }

        #[test]
        fn decimal_fraction_rounds_up(int in 0u32..1000, frac in 0u32..1_000_000) {
            let got = parse_cpu_milli(&format!("{int}.{frac:06}")).unwrap_or(-1);
            let exact_micro = i64::from(int) * 1_000_000 + i64::from(frac);
            prop_assert_eq!(got, (exact_micro + 999) / 1000);
        }
    }
}
