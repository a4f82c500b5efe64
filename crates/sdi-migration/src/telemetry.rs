//! Prometheus metrics (`GET /metrics`): one registry, bounded labels only — no
//! pod names (node names, a bounded set in any cluster, label pressure gauges).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use crate::cluster::ApiStats;
use crate::jobs::Job;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
    pub strategy: String,
    pub origin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub category: String,
    pub strategy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StrategyLabels {
    pub strategy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLabels {
    pub node: String,
    pub resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    pub source: String,
    pub allowed: String,
}

/// Counts kept elsewhere (the API client, the InfluxDB writer), read at scrape time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SinkStats {
    pub written: u64,
    pub dropped: u64,
    pub errors: u64,
    pub buffered: u64,
    pub healthy: bool,
}

type SinkProbe = Box<dyn Fn() -> SinkStats + Send + Sync>;

struct External {
    api: Arc<ApiStats>,
    influx: parking_lot::RwLock<Option<SinkProbe>>,
}

impl std::fmt::Debug for External {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("External").finish_non_exhaustive()
    }
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for External {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let a = &self.api;
        counter(
            &mut encoder,
            "sdi_kubernetes_api_reads",
            "Kubernetes API read requests (GET, incl. watches)",
            a.reads.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "sdi_kubernetes_api_writes",
            "Kubernetes API write requests",
            a.writes.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "sdi_kubernetes_api_errors",
            "Kubernetes API answers with a 4xx/5xx status",
            a.errors.load(Ordering::Relaxed),
        )?;
        if let Some(probe) = self.influx.read().as_ref() {
            let s = probe();
            counter(
                &mut encoder,
                "sdi_influxdb_points_written",
                "pod_migration points written to InfluxDB",
                s.written,
            )?;
            counter(
                &mut encoder,
                "sdi_influxdb_points_dropped",
                "points dropped (buffer full or refused by InfluxDB)",
                s.dropped,
            )?;
            counter(&mut encoder, "sdi_influxdb_write_errors", "failed InfluxDB write attempts", s.errors)?;
            gauge(&mut encoder, "sdi_influxdb_points_buffered", "points waiting to be written", s.buffered as i64)?;
            gauge(
                &mut encoder,
                "sdi_influxdb_healthy",
                "1 when the last InfluxDB write succeeded",
                i64::from(s.healthy),
            )?;
        }
        Ok(())
    }
}

pub struct Telemetry {
    registry: Registry,
    external: Arc<External>,
    pub migrations: Family<ResultLabels, Counter>,
    pub failures: Family<FailureLabels, Counter>,
    pub repair: Family<OutcomeLabels, Counter>,
    pub durations: Family<StrategyLabels, Histogram>,
    pub active: Gauge,
    pub pressure: Family<NodeLabels, Gauge<f64, AtomicU64>>,
    pub policy: Family<PolicyLabels, Counter>,
    pub cycles: Histogram,
    pub planned: Counter,
    /// 1 while this replica holds the leader lease.
    pub leader: Gauge,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

/// OpenMetrics → Prometheus text 0.0.4: counters are declared under their
/// `_total` sample name, and the `# EOF` / `# UNIT` lines go.
pub fn to_text_format(om: &str) -> String {
    let counters: std::collections::HashSet<&str> =
        om.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.strip_suffix(" counter")).collect();
    let mut out = String::with_capacity(om.len() + 64);
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(name).then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

impl Telemetry {
    pub fn new(api: Arc<ApiStats>) -> Arc<Telemetry> {
        let mut registry = Registry::default();
        let migrations = Family::<ResultLabels, Counter>::default();
        registry.register("sdi_migrations", "Finished migrations by result, strategy and origin", migrations.clone());
        let failures = Family::<FailureLabels, Counter>::default();
        registry.register(
            "sdi_migration_failures",
            "Migrations that failed or were cancelled, by failure category and strategy",
            failures.clone(),
        );
        let repair = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "sdi_repair_objects",
            "Objects left by interrupted migrations, by what restart repair did with them",
            repair.clone(),
        );
        let durations = Family::<StrategyLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0])
        });
        registry.register("sdi_migration_duration_seconds", "Duration of finished migrations", durations.clone());
        let active = Gauge::default();
        registry.register("sdi_migrations_active", "Migrations pending or running", active.clone());
        let pressure = Family::<NodeLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "sdi_node_pressure_percent",
            "Node CPU/memory use against allocatable, as the rebalancer sees it",
            pressure.clone(),
        );
        let policy = Family::<PolicyLabels, Counter>::default();
        registry.register("sdi_policy_decisions", "Policy decisions by source and outcome", policy.clone());
        let cycles = Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0]);
        registry.register(
            "sdi_rebalancer_cycle_duration_seconds",
            "Rebalancer cycle duration (snapshot, plan, policy, submit)",
            cycles.clone(),
        );
        let planned = Counter::default();
        registry.register("sdi_rebalancer_planned_moves", "Moves the planner proposed", planned.clone());
        let leader = Gauge::default();
        registry.register(
            "sdi_leader",
            "1 while this replica holds the leader lease (runs migrations and the rebalancer)",
            leader.clone(),
        );
        let external = Arc::new(External { api, influx: parking_lot::RwLock::new(None) });
        registry.register_collector(Box::new(external.clone()));
        Arc::new(Telemetry {
            registry,
            external,
            migrations,
            failures,
            repair,
            durations,
            active,
            pressure,
            policy,
            cycles,
            planned,
            leader,
        })
    }

    /// Report the InfluxDB writer's counters at every scrape.
    pub fn attach_influx(&self, probe: impl Fn() -> SinkStats + Send + Sync + 'static) {
        *self.external.influx.write() = Some(Box::new(probe));
    }

    pub fn job_finished(&self, job: &Job) {
        let strategy = job.details.strategy.map_or("none", |s| s.as_str()).to_string();
        self.migrations
            .get_or_create(&ResultLabels {
                result: job.status.as_str().into(),
                strategy: strategy.clone(),
                origin: job.origin.into(),
            })
            .inc();
        if let Some(category) = job.details.error_category {
            self.failures
                .get_or_create(&FailureLabels { category: category.as_str().into(), strategy: strategy.clone() })
                .inc();
        }
        if let Some(ns) = job.details.duration {
            self.durations.get_or_create(&StrategyLabels { strategy }).observe(ns as f64 / 1e9);
        }
    }

    /// Count what restart repair did.
    pub fn repaired(&self, report: &crate::engine::repair::Report) {
        for (outcome, n) in report.counts() {
            self.repair.get_or_create(&OutcomeLabels { outcome: outcome.into() }).inc_by(n as u64);
        }
    }

    /// The classic Prometheus text format (0.0.4), for clients that do not ask
    /// for OpenMetrics (curl, promtool, older scrapers).
    pub fn encode_text(&self) -> String {
        to_text_format(&self.encode())
    }

    /// OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}
