//! Can this pod run on that node? The checks a kubelet's admission and the
//! scheduler's filters make, over plain data, with answers that carry numbers.
//!
//! Used before a requested migration starts (a 422 that says exactly what does
//! not fit) and by the planner when it filters targets.

use std::collections::BTreeMap;

/// CPU (millicores), memory (bytes) and pod count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu_m: u64,
    pub mem_b: u64,
    pub pods: u64,
}

impl std::ops::Add for Resources {
    type Output = Resources;
    fn add(self, o: Resources) -> Resources {
        Resources { cpu_m: self.cpu_m + o.cpu_m, mem_b: self.mem_b + o.mem_b, pods: self.pods + o.pods }
    }
}

/// A node-selector requirement (`matchExpressions` / `matchFields`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    pub key: String,
    pub operator: String,
    pub values: Vec<String>,
    /// `matchFields` (only `metadata.name` exists upstream) rather than labels.
    pub field: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Taint {
    pub key: String,
    pub value: String,
    pub effect: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Toleration {
    pub key: String,
    /// `Exists` or `Equal` (empty means Equal).
    pub operator: String,
    pub value: String,
    /// Empty matches every effect.
    pub effect: String,
}

/// What a pod asks of a node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodNeeds {
    /// Sum of container requests (max with init containers), plus one pod.
    pub requests: Resources,
    pub node_selector: BTreeMap<String, String>,
    /// Required node affinity: OR of terms, each an AND of requirements. Empty = none.
    pub affinity_terms: Vec<Vec<Requirement>>,
    pub tolerations: Vec<Toleration>,
}

/// What the node offers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeFacts {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub ready: bool,
    pub unschedulable: bool,
    pub taints: Vec<Taint>,
    pub allocatable: Resources,
    /// Requests of the pods already bound to it (not finished).
    pub requested: Resources,
}

/// Why the pod cannot go there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Misfit {
    NotReady,
    Unschedulable,
    Insufficient { resource: &'static str, requested: u64, free: u64, allocatable: u64 },
    NodeSelector { key: String, want: String, have: Option<String> },
    Affinity,
    Taint(Taint),
}

impl Misfit {
    /// One sentence about `node`, with the numbers.
    pub fn describe(&self, node: &str) -> String {
        match self {
            Misfit::NotReady => format!("target node {node} is not Ready"),
            Misfit::Unschedulable => format!("target node {node} is cordoned (spec.unschedulable=true)"),
            Misfit::Insufficient { resource, requested, free, allocatable } => {
                let f = |v: u64| match *resource {
                    "cpu" => crate::quantity::format_cpu(v),
                    "memory" => crate::quantity::format_bytes(v),
                    _ => v.to_string(),
                };
                format!(
                    "pod does not fit on target node {node}: {resource} requested {} but only {} of {} allocatable is free",
                    f(*requested),
                    f(*free),
                    f(*allocatable)
                )
            }
            Misfit::NodeSelector { key, want, have } => match have {
                Some(h) => {
                    format!("target node {node} has label {key}={h} but the pod's nodeSelector wants {key}={want}")
                }
                None => format!("target node {node} lacks label {key}={want} required by the pod's nodeSelector"),
            },
            Misfit::Affinity => format!("target node {node} does not match the pod's required node affinity"),
            Misfit::Taint(t) => {
                format!(
                    "target node {node} has taint {}={}:{} that the pod does not tolerate",
                    t.key, t.value, t.effect
                )
            }
        }
    }
}

fn tolerates(tols: &[Toleration], t: &Taint) -> bool {
    tols.iter().any(|tol| {
        let effect_ok = tol.effect.is_empty() || tol.effect == t.effect;
        let key_ok = tol.key.is_empty() && tol.operator == "Exists" || tol.key == t.key;
        let value_ok = tol.operator == "Exists" || tol.value == t.value;
        effect_ok && key_ok && value_ok
    })
}

fn requirement_holds(r: &Requirement, node: &NodeFacts) -> bool {
    let have: Option<&str> = if r.field {
        (r.key == "metadata.name").then_some(node.name.as_str())
    } else {
        node.labels.get(&r.key).map(String::as_str)
    };
    match r.operator.as_str() {
        "In" => have.is_some_and(|h| r.values.iter().any(|v| v == h)),
        "NotIn" => have.is_none_or(|h| r.values.iter().all(|v| v != h)),
        "Exists" => have.is_some(),
        "DoesNotExist" => have.is_none(),
        "Gt" | "Lt" => {
            let (Some(h), Some(v)) =
                (have.and_then(|h| h.parse::<i64>().ok()), r.values.first().and_then(|v| v.parse::<i64>().ok()))
            else {
                return false;
            };
            if r.operator == "Gt" { h > v } else { h < v }
        }
        _ => false,
    }
}

/// The scheduling constraints of a pod (everything in [`PodNeeds`] but the
/// requests), borrowed: callers that keep them elsewhere — the planner's
/// snapshot shares one set between the pods of a workload — check them without
/// building a `PodNeeds`.
#[derive(Debug, Clone, Copy)]
pub struct Placement<'a> {
    pub node_selector: &'a BTreeMap<String, String>,
    /// Required node affinity: OR of terms, each an AND of requirements. Empty = none.
    pub affinity_terms: &'a [Vec<Requirement>],
    pub tolerations: &'a [Toleration],
}

impl PodNeeds {
    pub fn placement(&self) -> Placement<'_> {
        Placement {
            node_selector: &self.node_selector,
            affinity_terms: &self.affinity_terms,
            tolerations: &self.tolerations,
        }
    }
}

/// Every reason the pod cannot run on `node`, in the order a person would fix them.
/// Empty means it fits. `NoSchedule` taints count: a migration places the pod itself,
/// but a node tainted against it is a node its owner did not want it on.
pub fn misfits(pod: &PodNeeds, node: &NodeFacts) -> Vec<Misfit> {
    misfits_parts(&pod.requests, pod.placement(), node)
}

/// [`misfits`] over the parts of a pod's needs: same checks, same order, same answers.
pub fn misfits_parts(requests: &Resources, placement: Placement<'_>, node: &NodeFacts) -> Vec<Misfit> {
    let mut out = Vec::new();
    if !node.ready {
        out.push(Misfit::NotReady);
    }
    if node.unschedulable {
        out.push(Misfit::Unschedulable);
    }
    push_insufficient(&mut out, requests, &node.allocatable, &node.requested);
    push_placement_misfits(&mut out, placement, node);
    out
}

/// The resources that do not fit when `requested` of `allocatable` is already
/// taken (the planner passes its projected `requested`). Empty means it fits.
pub fn insufficient(requests: &Resources, allocatable: &Resources, requested: &Resources) -> Vec<Misfit> {
    let mut out = Vec::new();
    push_insufficient(&mut out, requests, allocatable, requested);
    out
}

/// `insufficient(..).is_empty()`, without allocating.
pub fn has_room(requests: &Resources, allocatable: &Resources, requested: &Resources) -> bool {
    let ok = |want: u64, alloc: u64, used: u64| want == 0 || want <= alloc.saturating_sub(used);
    ok(requests.cpu_m, allocatable.cpu_m, requested.cpu_m)
        && ok(requests.mem_b, allocatable.mem_b, requested.mem_b)
        && ok(requests.pods, allocatable.pods, requested.pods)
}

/// nodeSelector, required node affinity and taints: the checks that do not
/// depend on how full the node is. Empty means the pod may go there.
pub fn placement_misfits(placement: Placement<'_>, node: &NodeFacts) -> Vec<Misfit> {
    let mut out = Vec::new();
    push_placement_misfits(&mut out, placement, node);
    out
}

/// `placement_misfits(..).is_empty()`, without allocating.
pub fn placement_allowed(placement: Placement<'_>, node: &NodeFacts) -> bool {
    placement.node_selector.iter().all(|(key, want)| node.labels.get(key) == Some(want))
        && affinity_holds(placement.affinity_terms, node)
        && node.taints.iter().all(|t| !taint_repels(t) || tolerates(placement.tolerations, t))
}

fn push_insufficient(out: &mut Vec<Misfit>, requests: &Resources, allocatable: &Resources, used: &Resources) {
    let free = |alloc: u64, used: u64| alloc.saturating_sub(used);
    let checks = [
        ("cpu", requests.cpu_m, allocatable.cpu_m, used.cpu_m),
        ("memory", requests.mem_b, allocatable.mem_b, used.mem_b),
        ("pods", requests.pods, allocatable.pods, used.pods),
    ];
    for (resource, requested, allocatable, used) in checks {
        if requested > 0 && requested > free(allocatable, used) {
            out.push(Misfit::Insufficient { resource, requested, free: free(allocatable, used), allocatable });
        }
    }
}

fn affinity_holds(terms: &[Vec<Requirement>], node: &NodeFacts) -> bool {
    terms.is_empty() || terms.iter().any(|term| !term.is_empty() && term.iter().all(|r| requirement_holds(r, node)))
}

fn taint_repels(t: &Taint) -> bool {
    t.effect == "NoSchedule" || t.effect == "NoExecute"
}

fn push_placement_misfits(out: &mut Vec<Misfit>, placement: Placement<'_>, node: &NodeFacts) {
    for (key, want) in placement.node_selector {
        let have = node.labels.get(key);
        if have != Some(want) {
            out.push(Misfit::NodeSelector { key: key.clone(), want: want.clone(), have: have.cloned() });
        }
    }
    if !affinity_holds(placement.affinity_terms, node) {
        out.push(Misfit::Affinity);
    }
    for t in &node.taints {
        if taint_repels(t) && !tolerates(placement.tolerations, t) {
            out.push(Misfit::Taint(t.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> NodeFacts {
        NodeFacts {
            name: "w1".into(),
            labels: [("kubernetes.io/hostname".to_string(), "w1".to_string()), ("zone".into(), "a".into())].into(),
            ready: true,
            unschedulable: false,
            taints: vec![],
            allocatable: Resources { cpu_m: 4000, mem_b: 8 << 30, pods: 110 },
            requested: Resources { cpu_m: 3500, mem_b: 1 << 30, pods: 10 },
        }
    }

    fn pod(cpu_m: u64) -> PodNeeds {
        PodNeeds { requests: Resources { cpu_m, mem_b: 1 << 20, pods: 1 }, ..Default::default() }
    }

    #[test]
    fn fits_when_everything_is_free() {
        assert_eq!(misfits(&pod(500), &node()), vec![]);
    }

    #[test]
    fn insufficient_cpu_names_the_numbers() {
        let m = misfits(&pod(600), &node());
        assert_eq!(m, vec![Misfit::Insufficient { resource: "cpu", requested: 600, free: 500, allocatable: 4000 }]);
        assert_eq!(
            m[0].describe("w1"),
            "pod does not fit on target node w1: cpu requested 600m but only 500m of 4 allocatable is free"
        );
    }

    #[test]
    fn not_ready_cordoned_selector_affinity_and_taints() {
        let mut n = node();
        n.ready = false;
        n.unschedulable = true;
        n.taints.push(Taint { key: "dedicated".into(), value: "gpu".into(), effect: "NoSchedule".into() });
        let mut p = pod(100);
        p.node_selector.insert("zone".into(), "b".into());
        p.affinity_terms = vec![vec![Requirement {
            key: "metadata.name".into(),
            operator: "In".into(),
            values: vec!["w2".into()],
            field: true,
        }]];
        let m = misfits(&p, &n);
        assert_eq!(m.len(), 5, "{m:?}");
        assert!(m[3] == Misfit::Affinity);
        assert!(m[2].describe("w1").contains("zone=a") && m[2].describe("w1").contains("zone=b"));
        // A matching toleration and affinity clear those two.
        p.tolerations.push(Toleration {
            key: "dedicated".into(),
            operator: "Equal".into(),
            value: "gpu".into(),
            effect: String::new(),
        });
        p.affinity_terms[0][0].values = vec!["w1".into()];
        p.node_selector.clear();
        assert_eq!(misfits(&p, &n), vec![Misfit::NotReady, Misfit::Unschedulable]);
    }

    #[test]
    fn affinity_operators() {
        let n = node();
        let req = |op: &str, key: &str, vals: &[&str]| Requirement {
            key: key.into(),
            operator: op.into(),
            values: vals.iter().map(|s| s.to_string()).collect(),
            field: false,
        };
        assert!(requirement_holds(&req("In", "zone", &["a", "b"]), &n));
        assert!(!requirement_holds(&req("NotIn", "zone", &["a"]), &n));
        assert!(requirement_holds(&req("NotIn", "missing", &["a"]), &n));
        assert!(requirement_holds(&req("Exists", "zone", &[]), &n));
        assert!(requirement_holds(&req("DoesNotExist", "gpu", &[]), &n));
        let mut n2 = n.clone();
        n2.labels.insert("cores".into(), "8".into());
        assert!(requirement_holds(&req("Gt", "cores", &["4"]), &n2));
        assert!(!requirement_holds(&req("Lt", "cores", &["4"]), &n2));
        assert!(!requirement_holds(&req("Bogus", "zone", &["a"]), &n));
    }

    #[test]
    fn fast_checks_agree_with_the_detailed_ones() {
        let mut n = node();
        n.taints.push(Taint { key: "dedicated".into(), value: "gpu".into(), effect: "NoExecute".into() });
        let mut p = pod(600);
        assert!(!has_room(&p.requests, &n.allocatable, &n.requested));
        assert_eq!(insufficient(&p.requests, &n.allocatable, &n.requested).len(), 1);
        assert!(!placement_allowed(p.placement(), &n));
        assert_eq!(placement_misfits(p.placement(), &n), vec![Misfit::Taint(n.taints[0].clone())]);
        p.tolerations.push(Toleration {
            key: "dedicated".into(),
            operator: "Exists".into(),
            value: String::new(),
            effect: String::new(),
        });
        p.requests.cpu_m = 500;
        assert!(has_room(&p.requests, &n.allocatable, &n.requested));
        assert!(placement_allowed(p.placement(), &n));
        assert_eq!(misfits(&p, &n), misfits_parts(&p.requests, p.placement(), &n));
        assert!(misfits(&p, &n).is_empty());
    }

    #[test]
    fn wildcard_toleration() {
        let t = Taint { key: "x".into(), value: "y".into(), effect: "NoExecute".into() };
        let all =
            Toleration { key: String::new(), operator: "Exists".into(), value: String::new(), effect: String::new() };
        assert!(tolerates(&[all], &t));
        assert!(!tolerates(&[], &t));
    }
}
