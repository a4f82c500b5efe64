//! The autonomous loop (SPEC §4): every `MIGRATION_CHECK_INTERVAL` seconds — and
//! as soon as a node newly crosses the threshold — snapshot → plan → policy →
//! jobs, through the same engine as the API. One log line per decision.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use sdi_core::index::Index;
use sdi_core::male::{self, PolicyInput};
use sdi_core::planner::{self, Basis, InFlight, Plan, PlanConfig, PlanState};
use sdi_core::strategy::Strategy;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::cluster::cache::ClusterCache;
use crate::config::{PressureBasis, Settings, StrategyChoice};
use crate::error::StartError;
use crate::jobs::MigrationRequest;
use crate::jobs::runner::Runner;
use crate::policy::{Policy, PolicyAnswer, PolicyPod, PolicyRequest, Verdict};
use crate::telemetry::{NodeLabels, PolicyLabels, Telemetry};

/// What became of one planned move.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Decision {
    pub namespace: String,
    pub pod: String,
    pub source: String,
    pub target: String,
    /// The strategy planned, approved by the policy, and run.
    pub strategy: Strategy,
    /// `migrating`, `would-migrate` (dry run), `denied` (policy) or `refused` (pre-flight).
    pub action: String,
    pub reason: String,
    /// Who decided: remote, builtin, fallback-builtin, fallback-allow, fallback-deny.
    pub policy: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration_id: Option<String>,
}

/// One cycle's outcome: `GET /api/v1/plan` shows the newest.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CycleReport {
    pub at: String,
    pub dry_run: bool,
    pub duration_ms: f64,
    #[schema(value_type = Object)]
    pub plan: Plan,
    pub decisions: Vec<Decision>,
}

/// Called after every cycle with its report and the newest decisions.
type CycleHook = Box<dyn Fn(&CycleReport, Vec<Decision>) + Send + Sync>;

/// Seconds on the clock cooldowns are measured with.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The process's monotonic clock (production).
pub fn monotonic() -> Clock {
    let start = Instant::now();
    Arc::new(move || start.elapsed().as_secs())
}

pub struct Rebalancer {
    pub cache: Arc<ClusterCache>,
    runner: Arc<Runner>,
    migrations: Arc<crate::migrations::Migrations>,
    policy: Policy,
    pub config: PlanConfig,
    pub dry_run: bool,
    interval: Duration,
    checkpointing: bool,
    telemetry: Arc<Telemetry>,
    clock: Clock,
    last_moved: Mutex<HashMap<String, u64>>,
    /// Moved pod → the node it left and when: it does not go straight back.
    came_from: Mutex<HashMap<String, (String, u64)>>,
    latest: RwLock<Option<CycleReport>>,
    /// The newest decisions across cycles (bounded), for people watching.
    recent: Mutex<std::collections::VecDeque<Decision>>,
    /// Cycles run so far.
    cycles: std::sync::atomic::AtomicU64,
    /// Called after every cycle (the live stream hooks in here).
    on_cycle: Mutex<Vec<CycleHook>>,
    /// Skip reasons logged, so each is logged once until it changes (figures aside).
    skips_said: Mutex<crate::said::Said>,
}

/// Decisions kept by [`Rebalancer::recent`].
const RECENT: usize = 20;

pub fn plan_config(s: &Settings) -> PlanConfig {
    PlanConfig {
        threshold_pct: s.resource_pressure_threshold,
        hysteresis_pct: s.hysteresis,
        basis: match s.pressure_basis {
            PressureBasis::Usage => Basis::Usage,
            PressureBasis::Requests => Basis::Requests,
            PressureBasis::Auto => Basis::Auto,
        },
        max_per_node: s.max_migrations_per_node,
        max_concurrent: s.max_concurrent_migrations,
        cooldown_secs: s.migration_cooldown,
        excluded_namespaces: s.excluded_namespaces.clone(),
        strategy: s.migration_strategy.forced(),
    }
}

impl Rebalancer {
    pub fn new(
        settings: &Settings,
        cache: Arc<ClusterCache>,
        migrations: Arc<crate::migrations::Migrations>,
        telemetry: Arc<Telemetry>,
    ) -> Result<Arc<Rebalancer>, StartError> {
        let runner = migrations.runner.clone();
        let policy = Policy::new(settings.policy_engine_url.as_deref(), settings.policy_fallback)?;
        Ok(Arc::new(Rebalancer {
            cache,
            runner,
            migrations,
            policy,
            config: plan_config(settings),
            dry_run: settings.dry_run,
            interval: Duration::from_secs(settings.migration_check_interval),
            checkpointing: settings.enable_checkpointing,
            telemetry,
            clock: monotonic(),
            last_moved: Mutex::default(),
            came_from: Mutex::default(),
            latest: RwLock::default(),
            recent: Mutex::default(),
            cycles: Default::default(),
            on_cycle: Mutex::default(),
            skips_said: Mutex::new(crate::said::Said::reasons()),
        }))
    }

    /// Measure cooldowns on another clock (a simulated cluster's, in demos and tests).
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// What the planner needs besides the cluster, with the moves under way
    /// resolved against the index it plans on.
    fn state(&self, index: &Index) -> PlanState {
        let jobs = self.runner.store.list(&crate::jobs::ListFilter::default());
        let active: Vec<_> = jobs.iter().filter(|j| !j.status.is_terminal()).collect();
        let in_flight = active
            .iter()
            .map(|j| {
                let r = &j.request;
                let target = if j.details.new_node_name.is_empty() { &r.target_node } else { &j.details.new_node_name };
                InFlight {
                    original: index.slot(&r.pod_namespace, &r.pod_name),
                    replacement: Some(&j.details.new_pod_name)
                        .filter(|n| !n.is_empty())
                        .and_then(|n| index.slot(&r.pod_namespace, n)),
                    source: r.source_node.clone(),
                    target: target.clone(),
                }
            })
            .collect();
        PlanState {
            now_secs: (self.clock)(),
            last_moved: self.last_moved.lock().clone(),
            came_from: {
                let now = (self.clock)();
                let window = self.config.cooldown_secs.saturating_mul(planner::RETURN_WINDOW_COOLDOWNS);
                let mut c = self.came_from.lock();
                c.retain(|_, (_, at)| now.saturating_sub(*at) < window);
                c.clone()
            },
            // A job's pod, and the pod replacing it: neither moves while the job runs.
            active_pods: active
                .iter()
                .flat_map(|j| {
                    let ns = &j.request.pod_namespace;
                    std::iter::once(format!("{ns}/{}", j.request.pod_name))
                        .chain(Some(&j.details.new_pod_name).filter(|n| !n.is_empty()).map(|n| format!("{ns}/{n}")))
                })
                .collect(),
            active_jobs: u32::try_from(self.runner.moving()).unwrap_or(u32::MAX),
            in_flight,
        }
    }

    /// Start cooldowns of the pods our moves create (a recreated or surged pod
    /// has a new name): without this, a moved pod could be moved straight back.
    pub fn track_moves(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        self.runner.on_finish(move |job| {
            let Some(this) = weak.upgrade() else { return };
            if job.status != sdi_core::job::JobStatus::Completed || job.details.new_pod_name.is_empty() {
                return;
            }
            let key = format!("{}/{}", job.request.pod_namespace, job.details.new_pod_name);
            let now = (this.clock)();
            // Whoever asked, the moved pod does not go straight back where it came from.
            this.came_from.lock().insert(key.clone(), (job.request.source_node.clone(), now));
            if job.origin == "rebalancer" {
                this.last_moved.lock().insert(key, now);
            }
        });
    }

    pub fn on_cycle(&self, f: impl Fn(&CycleReport, Vec<Decision>) + Send + Sync + 'static) {
        self.on_cycle.lock().push(Box::new(f));
    }

    /// A plan of the cluster as it is now (no policy calls, nothing submitted).
    pub fn plan_now(&self) -> Plan {
        self.cache.with_index(|index| planner::plan(index.snapshot(), &self.config, &self.state(index)))
    }

    /// The newest decisions (moves started, denied, refused), oldest first.
    pub fn recent(&self) -> Vec<Decision> {
        self.recent.lock().iter().cloned().collect()
    }

    /// How many cycles have run.
    pub fn cycles(&self) -> u64 {
        self.cycles.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn latest(&self) -> Option<CycleReport> {
        self.latest.read().clone()
    }

    /// The built-in MALE policy for a pod, as the rebalancer would apply it.
    pub fn builtin(
        &self,
        namespace: &str,
        pod: &str,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> PolicyAnswer {
        let cached = self.cache.pod(namespace, pod);
        let m = match &cached {
            Some(c) => c.view.male,
            None => male::parse_male(|k| labels.get(k).map(String::as_str)),
        };
        let input = PolicyInput {
            criticality: male::criticality(&m),
            automatic: true,
            strategy: cached.as_ref().and_then(|c| c.view.owner.auto_strategy()),
            keeps_replica: cached.as_ref().is_some_and(|c| c.ready_siblings > 0),
            checkpoint: false,
        };
        let d = male::decide(&input);
        PolicyAnswer { allowed: d.allowed, reason: d.reason }
    }

    /// Run cycles until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        // Let the watches fill the cache first (bounded).
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.cache.synced() && Instant::now() < deadline && !stop.is_cancelled() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tracing::info!(
            interval_s = self.interval.as_secs(),
            dry_run = self.dry_run,
            threshold = self.config.threshold_pct,
            "rebalancer started"
        );
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
                _ = self.cache.pressure_rose.notified() => tracing::info!("a node crossed the threshold; planning now"),
            }
            self.cycle().await;
        }
    }

    /// One cycle: plan, ask the policy about each move, start the allowed ones.
    pub async fn cycle(&self) -> CycleReport {
        let t0 = Instant::now();
        let plan = self.plan_now();
        for n in &plan.nodes {
            for (resource, v) in [("cpu", n.cpu_pct), ("memory", n.mem_pct)] {
                self.telemetry
                    .pressure
                    .get_or_create(&NodeLabels { node: n.name.clone(), resource: resource.into() })
                    .set(v);
            }
        }
        for note in &plan.notes {
            tracing::debug!("plan: {note}");
        }
        {
            // Each skip reason is logged once until it changes (every cycle finds them again).
            let keyed: Vec<(String, String)> = plan
                .skipped
                .iter()
                .map(|s| (format!("{}/{}", s.namespace, s.pod), format!("on {}: {}", s.node, s.reason)))
                .collect();
            let mut said = self.skips_said.lock();
            let fresh = said.fresh(keyed.iter().map(|(k, t)| (k.as_str(), t.as_str())));
            for (pod, why) in &fresh {
                tracing::info!("skip {pod} {why}");
            }
            tracing::debug!(unchanged = keyed.len() - fresh.len(), "skip reasons not repeated");
        }
        let mut decisions = Vec::new();
        for m in &plan.moves {
            self.telemetry.planned.inc();
            let cached = self.cache.pod(&m.namespace, &m.pod);
            let request = PolicyRequest {
                pod: PolicyPod {
                    name: m.pod.clone(),
                    namespace: m.namespace.clone(),
                    node_name: m.source.clone(),
                    labels: cached.as_ref().map(|c| (*c.meta.labels).clone()).unwrap_or_default(),
                    status: cached.as_ref().map(|c| c.view.phase.as_str().to_string()).unwrap_or_default(),
                    containers: cached
                        .as_ref()
                        .map(|c| c.meta.containers.iter().map(|s| s.to_string()).collect())
                        .unwrap_or_default(),
                },
                source_node: m.source.clone(),
                target_node: m.target.clone(),
            };
            let siblings = cached.as_ref().filter(|c| c.view.owner_name.is_some()).map(|c| c.ready_siblings);
            let builtin = male::decide(&PolicyInput {
                criticality: m.criticality,
                automatic: true,
                strategy: Some(m.strategy),
                keeps_replica: siblings.unwrap_or(0) > 0,
                checkpoint: false,
            });
            let verdict: Verdict = self.policy.decide(&request, &builtin).await;
            self.telemetry
                .policy
                .get_or_create(&PolicyLabels {
                    source: verdict.source.as_str().into(),
                    allowed: verdict.allowed.to_string(),
                })
                .inc();
            let mut d = Decision {
                namespace: m.namespace.clone(),
                pod: m.pod.clone(),
                source: m.source.clone(),
                target: m.target.clone(),
                strategy: m.strategy,
                action: String::new(),
                reason: String::new(),
                policy: verdict.source.as_str().into(),
                migration_id: None,
            };
            let why = format!(
                "{} (class {}, {} → {:.0}%/{:.0}% on {}, target then {:.0}%/{:.0}%); policy: {}",
                m.reason,
                m.criticality.as_str(),
                m.source,
                m.source_after.0,
                m.source_after.1,
                m.source,
                m.target_after.0,
                m.target_after.1,
                verdict.reason
            );
            if !verdict.allowed {
                d.action = "denied".into();
                d.reason = verdict.reason.clone();
                tracing::info!("deny {}/{} {} → {}: {}", m.namespace, m.pod, m.source, m.target, verdict.reason);
            } else if self.dry_run {
                d.action = "would-migrate".into();
                d.reason = why.clone();
                tracing::info!("dry-run: would move {}/{} {} → {}: {why}", m.namespace, m.pod, m.source, m.target);
            } else {
                let req = MigrationRequest {
                    pod_name: m.pod.clone(),
                    pod_namespace: m.namespace.clone(),
                    source_node: m.source.clone(),
                    target_node: m.target.clone(),
                    preserve_pv: false,
                    force_restart: false,
                    timeout: 0,
                    // The strategy the plan and the policy approved, not one pre-flight re-derives.
                    strategy: Some(StrategyChoice::from(m.strategy)),
                    checkpoint: Some(false).filter(|_| !self.checkpointing),
                };
                match self.migrations.create(req, "rebalancer").await {
                    Ok(job) => {
                        self.last_moved.lock().insert(format!("{}/{}", m.namespace, m.pod), (self.clock)());
                        d.action = "migrating".into();
                        d.reason = why.clone();
                        d.migration_id = Some(job.id.clone());
                        tracing::info!(
                            "move {}/{} {} → {} ({}): {why}",
                            m.namespace,
                            m.pod,
                            m.source,
                            m.target,
                            job.id
                        );
                    }
                    Err(r) => {
                        d.action = "refused".into();
                        d.reason = format!("{}: {}", r.reason.title(), r.details);
                        tracing::info!("refused {}/{} {} → {}: {}", m.namespace, m.pod, m.source, m.target, d.reason);
                    }
                }
            }
            {
                let mut recent = self.recent.lock();
                recent.push_back(d.clone());
                while recent.len() > RECENT {
                    recent.pop_front();
                }
            }
            decisions.push(d);
        }
        let elapsed = t0.elapsed();
        self.telemetry.cycles.observe(elapsed.as_secs_f64());
        let report = CycleReport {
            at: crate::jobs::model::now_rfc3339(),
            dry_run: self.dry_run,
            duration_ms: elapsed.as_secs_f64() * 1e3,
            plan,
            decisions,
        };
        *self.latest.write() = Some(report.clone());
        self.cycles.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for f in self.on_cycle.lock().iter() {
            f(&report, self.recent());
        }
        report
    }
}
