//! Node pressure for people: thousands of nodes reduced to what a page can show
//! (counts above the threshold, a histogram of pressure bands, the hottest nodes
//! matching a filter). Pure: a snapshot and a query in, a summary out.

use sdi_core::planner::{Basis, BasisUsed};
use sdi_core::snapshot::Snapshot;
use serde::Serialize;
use utoipa::ToSchema;

/// Nodes shown when the query does not say.
pub const DEFAULT_LIMIT: usize = 50;
/// Most nodes one answer lists.
pub const MAX_LIMIT: usize = 5000;
/// Width of a histogram band, percentage points.
const BAND: f64 = 10.0;
/// Bands: 0–10 … 80–90, and 90 and above (usage can exceed allocatable).
const BANDS: usize = 10;
/// Longest name filter accepted (a node name is at most 253 characters).
const MAX_NAME_FILTER: usize = 253;

/// One worker node's load, percent of allocatable.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeLoad {
    pub name: String,
    pub cpu_requests: f64,
    pub mem_requests: f64,
    /// Measured by metrics.k8s.io; `None` when it had no figure for the node.
    pub cpu_usage: Option<f64>,
    pub mem_usage: Option<f64>,
    pub ready: bool,
    pub unschedulable: bool,
}

fn pct(v: u64, of: u64) -> f64 {
    if of == 0 { if v == 0 { 0.0 } else { 100.0 } } else { v as f64 * 100.0 / of as f64 }
}

/// The basis the planner would use for this snapshot (its rule, `PRESSURE_BASIS`).
pub fn basis_used(basis: Basis, snapshot: &Snapshot) -> BasisUsed {
    match basis {
        Basis::Usage => BasisUsed::Usage,
        Basis::Requests => BasisUsed::Requests,
        Basis::Auto if snapshot.metrics_available => BasisUsed::Usage,
        Basis::Auto => BasisUsed::Requests,
    }
}

/// Every node the rebalancer considers (control-plane nodes are left out, as
/// the planner leaves them out), in snapshot order.
pub fn loads(snapshot: &Snapshot) -> Vec<NodeLoad> {
    snapshot
        .nodes
        .iter()
        .filter(|n| !n.control_plane)
        .map(|n| {
            let f = &n.facts;
            let (ac, am) = (f.allocatable.cpu_m, f.allocatable.mem_b);
            NodeLoad {
                name: f.name.clone(),
                cpu_requests: pct(f.requested.cpu_m, ac),
                mem_requests: pct(f.requested.mem_b, am),
                cpu_usage: n.usage.map(|u| pct(u.cpu_m, ac)),
                mem_usage: n.usage.map(|u| pct(u.mem_b, am)),
                ready: f.ready,
                unschedulable: f.unschedulable,
            }
        })
        .collect()
}

/// How to order the listed nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NodeSort {
    /// The higher of CPU and memory, highest first.
    #[default]
    Pressure,
    /// CPU, highest first.
    Cpu,
    /// Memory, highest first.
    Memory,
    /// Name, A to Z.
    Name,
}

impl NodeSort {
    fn parse(s: &str) -> Option<NodeSort> {
        match s {
            "pressure" => Some(NodeSort::Pressure),
            "cpu" => Some(NodeSort::Cpu),
            "memory" => Some(NodeSort::Memory),
            "name" => Some(NodeSort::Name),
            _ => None,
        }
    }
}

/// Which nodes to list: `GET /api/v1/nodes` and `GET /api/v1/stream` take the same parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeQuery {
    /// Case-insensitive part of the name; empty matches all.
    pub name: String,
    /// Only nodes above the threshold.
    pub pressured: bool,
    pub sort: NodeSort,
    pub limit: usize,
}

impl Default for NodeQuery {
    fn default() -> Self {
        NodeQuery { name: String::new(), pressured: false, sort: NodeSort::Pressure, limit: DEFAULT_LIMIT }
    }
}

impl NodeQuery {
    /// Set one query parameter; the error names it and says what is expected.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "name" if value.chars().count() > MAX_NAME_FILTER => {
                Err(format!("name filter is longer than {MAX_NAME_FILTER} characters"))
            }
            "name" => {
                self.name = value.to_lowercase();
                Ok(())
            }
            "pressured" => {
                self.pressured = match value {
                    "true" => true,
                    "false" => false,
                    _ => return Err(format!("pressured {value:?} must be true or false")),
                };
                Ok(())
            }
            "sort" => {
                self.sort = NodeSort::parse(value)
                    .ok_or_else(|| format!("sort {value:?} is not one of pressure, cpu, memory, name"))?;
                Ok(())
            }
            "limit" => match value.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => {
                    self.limit = n;
                    Ok(())
                }
                _ => Err(format!("limit {value:?} must be between 1 and {MAX_LIMIT}")),
            },
            other => Err(format!("unknown query parameter {other:?}; expected name, pressured, sort or limit")),
        }
    }
}

/// One listed node.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct NodeRow {
    pub name: String,
    /// CPU on the basis in use, percent of allocatable.
    pub cpu_pct: f64,
    /// Memory on the basis in use, percent of allocatable.
    pub mem_pct: f64,
    pub cpu_requests_pct: f64,
    pub mem_requests_pct: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_usage_pct: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_usage_pct: Option<f64>,
    /// Above the threshold by CPU or memory.
    pub pressured: bool,
    pub ready: bool,
    pub unschedulable: bool,
}

/// How many matching nodes fall in one pressure band.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Band {
    /// Lower bound, percent (inclusive).
    pub from_pct: f64,
    /// Upper bound, percent (exclusive); absent for the last band, which has no upper bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_pct: Option<f64>,
    pub cpu: usize,
    pub memory: usize,
}

/// Node pressure, aggregated: `GET /api/v1/nodes` and the stream's `nodes` event.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct NodeSummary {
    /// `usage` (metrics.k8s.io) or `requests` (sum of pod requests).
    #[schema(value_type = String, example = "usage")]
    pub basis: BasisUsed,
    pub threshold_pct: f64,
    /// Worker nodes (control-plane nodes are never sources or targets).
    pub total: usize,
    /// Nodes above the threshold by CPU or memory, and by each.
    pub pressured: usize,
    pub pressured_cpu: usize,
    pub pressured_memory: usize,
    /// Nodes matching the query's name filter (and `pressured`, when asked).
    pub matching: usize,
    /// Matching nodes per pressure band, by CPU and by memory.
    pub histogram: Vec<Band>,
    /// The first `limit` matching nodes in the query's order.
    pub nodes: Vec<NodeRow>,
}

fn row(n: &NodeLoad, basis: BasisUsed, threshold: f64) -> NodeRow {
    // As the planner: a node without usage figures counts by its requests.
    let (cpu, mem) = match basis {
        BasisUsed::Usage => (n.cpu_usage.unwrap_or(n.cpu_requests), n.mem_usage.unwrap_or(n.mem_requests)),
        BasisUsed::Requests => (n.cpu_requests, n.mem_requests),
    };
    NodeRow {
        name: n.name.clone(),
        cpu_pct: cpu,
        mem_pct: mem,
        cpu_requests_pct: n.cpu_requests,
        mem_requests_pct: n.mem_requests,
        cpu_usage_pct: n.cpu_usage,
        mem_usage_pct: n.mem_usage,
        pressured: cpu > threshold || mem > threshold,
        ready: n.ready,
        unschedulable: n.unschedulable,
    }
}

fn band_of(pct: f64) -> usize {
    if pct.is_nan() || pct <= 0.0 { 0 } else { ((pct / BAND) as usize).min(BANDS - 1) }
}

/// Summarise `nodes` for `query`: counts over all nodes, the histogram over the
/// matching ones, and the first `query.limit` matching nodes, sorted (ties by name).
pub fn summarize(nodes: &[NodeLoad], basis: BasisUsed, threshold: f64, query: &NodeQuery) -> NodeSummary {
    let mut histogram: Vec<Band> = (0..BANDS)
        .map(|i| Band {
            from_pct: i as f64 * BAND,
            to_pct: (i + 1 < BANDS).then_some((i + 1) as f64 * BAND),
            cpu: 0,
            memory: 0,
        })
        .collect();
    let (mut pressured, mut pressured_cpu, mut pressured_memory) = (0, 0, 0);
    let mut matching = Vec::new();
    for n in nodes {
        let r = row(n, basis, threshold);
        pressured += usize::from(r.pressured);
        pressured_cpu += usize::from(r.cpu_pct > threshold);
        pressured_memory += usize::from(r.mem_pct > threshold);
        if (query.pressured && !r.pressured) || (!query.name.is_empty() && !r.name.to_lowercase().contains(&query.name))
        {
            continue;
        }
        histogram[band_of(r.cpu_pct)].cpu += 1;
        histogram[band_of(r.mem_pct)].memory += 1;
        matching.push(r);
    }
    let key = |r: &NodeRow| match query.sort {
        NodeSort::Pressure => r.cpu_pct.max(r.mem_pct),
        NodeSort::Cpu => r.cpu_pct,
        NodeSort::Memory => r.mem_pct,
        NodeSort::Name => 0.0,
    };
    let total_matching = matching.len();
    let order = |a: &NodeRow, b: &NodeRow| key(b).total_cmp(&key(a)).then_with(|| a.name.cmp(&b.name));
    if let Some(last) = query.limit.checked_sub(1)
        && matching.len() > query.limit
    {
        // Only the first `limit` need sorting.
        matching.select_nth_unstable_by(last, order);
    }
    matching.truncate(query.limit);
    matching.sort_unstable_by(order);
    NodeSummary {
        basis,
        threshold_pct: threshold,
        total: nodes.len(),
        pressured,
        pressured_cpu,
        pressured_memory,
        matching: total_matching,
        histogram,
        nodes: matching,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdi_core::fit::{NodeFacts, Resources};
    use sdi_core::snapshot::{NodeView, Usage};

    fn load(name: &str, cpu: f64, mem: f64) -> NodeLoad {
        NodeLoad {
            name: name.into(),
            cpu_requests: cpu / 2.0,
            mem_requests: mem / 2.0,
            cpu_usage: Some(cpu),
            mem_usage: Some(mem),
            ready: true,
            unschedulable: false,
        }
    }

    fn names(s: &NodeSummary) -> Vec<&str> {
        s.nodes.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn five_thousand_nodes_become_counts_bands_and_the_hottest() {
        let nodes: Vec<NodeLoad> =
            (0..5000).map(|i| load(&format!("n{i:04}"), (i % 100) as f64, if i == 7 { 99.5 } else { 10.0 })).collect();
        let s = summarize(&nodes, BasisUsed::Usage, 85.0, &NodeQuery::default());
        assert_eq!((s.total, s.matching, s.nodes.len()), (5000, 5000, DEFAULT_LIMIT));
        // CPU 86..=99 on 14 of every 100 nodes; memory only on n0007 (whose CPU is 7%).
        assert_eq!((s.pressured_cpu, s.pressured_memory, s.pressured), (14 * 50, 1, 14 * 50 + 1));
        assert_eq!(s.nodes[0].name, "n0007", "memory 99.5% is the highest pressure");
        assert!(s.nodes[1..].windows(2).all(|w| w[0].cpu_pct >= w[1].cpu_pct), "sorted by pressure");
        assert_eq!(&names(&s)[1..4], ["n0099", "n0199", "n0299"], "ties by name");
        assert_eq!(s.histogram.len(), 10);
        assert_eq!(s.histogram.iter().map(|b| b.cpu).sum::<usize>(), 5000);
        assert_eq!(s.histogram[9].cpu, 500);
        assert_eq!((s.histogram[1].memory, s.histogram[9].memory), (4999, 1));
        assert_eq!(s.histogram[9].to_pct, None);
    }

    #[test]
    fn filters_by_name_and_pressure_and_sorts_as_asked() {
        let nodes = vec![
            load("edge-b", 90.0, 20.0),
            load("Edge-a", 30.0, 95.0),
            load("robot-1", 99.0, 99.0),
            load("x", 1.0, 1.0),
        ];
        let q = |f: &dyn Fn(&mut NodeQuery)| {
            let mut q = NodeQuery::default();
            f(&mut q);
            summarize(&nodes, BasisUsed::Usage, 85.0, &q)
        };
        let s = q(&|q| q.set("name", "EDGE").unwrap());
        assert_eq!((names(&s), s.matching, s.total, s.pressured), (vec!["Edge-a", "edge-b"], 2, 4, 3));
        assert_eq!(s.histogram.iter().map(|b| b.cpu).sum::<usize>(), 2, "the histogram counts matching nodes");
        assert_eq!(names(&q(&|q| q.sort = NodeSort::Cpu)), ["robot-1", "edge-b", "Edge-a", "x"]);
        assert_eq!(names(&q(&|q| q.sort = NodeSort::Memory)), ["robot-1", "Edge-a", "edge-b", "x"]);
        assert_eq!(names(&q(&|q| q.sort = NodeSort::Name)), ["Edge-a", "edge-b", "robot-1", "x"]);
        assert_eq!(names(&q(&|q| q.pressured = true)), ["robot-1", "Edge-a", "edge-b"]);
        let s = q(&|q| q.limit = 1);
        assert_eq!((names(&s), s.matching), (vec!["robot-1"], 4));
        let s = q(&|q| q.limit = 0);
        assert_eq!((s.nodes.len(), s.matching), (0, 4));
    }

    #[test]
    fn the_basis_decides_the_pressure_and_missing_usage_counts_by_requests() {
        let mut n = load("a", 90.0, 10.0);
        let s = summarize(std::slice::from_ref(&n), BasisUsed::Requests, 85.0, &NodeQuery::default());
        assert_eq!((s.nodes[0].cpu_pct, s.pressured), (45.0, 0));
        n.cpu_usage = None;
        n.cpu_requests = 88.0;
        let s = summarize(&[n], BasisUsed::Usage, 85.0, &NodeQuery::default());
        assert_eq!((s.nodes[0].cpu_pct, s.nodes[0].pressured), (88.0, true));
    }

    #[test]
    fn loads_leave_out_control_planes_and_handle_empty_allocatable() {
        let node = |name: &str, cp: bool, usage: Option<Usage>| NodeView {
            facts: NodeFacts {
                name: name.into(),
                ready: true,
                allocatable: Resources { cpu_m: 2000, mem_b: 1000, pods: 10 },
                requested: Resources { cpu_m: 500, mem_b: 0, pods: 1 },
                ..Default::default()
            },
            control_plane: cp,
            usage,
        };
        let mut empty = node("empty", false, None);
        empty.facts.allocatable = Resources::default();
        let snap = Snapshot {
            nodes: vec![node("cp", true, None), node("w", false, Some(Usage { cpu_m: 1800, mem_b: 900 })), empty],
            pods: vec![],
            metrics_available: true,
        };
        let l = loads(&snap);
        assert_eq!(l.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["w", "empty"]);
        assert_eq!((l[0].cpu_requests, l[0].cpu_usage, l[0].mem_usage), (25.0, Some(90.0), Some(90.0)));
        assert_eq!((l[1].cpu_requests, l[1].mem_requests), (100.0, 0.0), "requests on nothing allocatable");
        assert_eq!(basis_used(Basis::Auto, &snap), BasisUsed::Usage);
        assert_eq!(basis_used(Basis::Auto, &Snapshot::default()), BasisUsed::Requests);
        assert_eq!(basis_used(Basis::Requests, &snap), BasisUsed::Requests);
    }

    #[test]
    fn query_parameters_are_checked_and_errors_name_them() {
        let mut q = NodeQuery::default();
        q.set("limit", "5000").unwrap();
        q.set("pressured", "true").unwrap();
        q.set("sort", "memory").unwrap();
        assert_eq!((q.limit, q.pressured, q.sort), (5000, true, NodeSort::Memory));
        for (k, v, says) in [
            ("limit", "0", "between 1 and 5000"),
            ("limit", "5001", "between 1 and 5000"),
            ("limit", "x", "between 1 and 5000"),
            ("pressured", "yes", "true or false"),
            ("sort", "heat", "pressure, cpu, memory, name"),
            ("colour", "red", "unknown query parameter \"colour\""),
        ] {
            let e = q.set(k, v).unwrap_err();
            assert!(e.contains(says), "{k}={v}: {e}");
        }
        assert!(q.set("name", &"a".repeat(254)).is_err());
    }

    #[test]
    fn band_edges() {
        assert_eq!([band_of(-1.0), band_of(0.0), band_of(9.99), band_of(10.0), band_of(85.0)], [0, 0, 0, 1, 8]);
        assert_eq!([band_of(90.0), band_of(250.0), band_of(f64::NAN)], [9, 9, 0]);
    }
}
