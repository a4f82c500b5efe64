//! Wiring: the cache, the engine, the job runner, the PodMigration view and
//! the HTTP API on every replica; the leader's work — restart repair, the
//! controller that runs migrations, the rebalancer, history retention — on the
//! replica holding the Lease, started when it wins it and stopped when it
//! loses it; a graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::access::{Access, AuthMode};
use crate::api::{AppState, router};
use crate::cluster::ApiStats;
use crate::cluster::cache::ClusterCache;
use crate::cluster::lease::{self, Leadership, LeaseConfig};
use crate::cluster::writer::Writer;
use crate::config::Settings;
use crate::engine::{Engine, EngineSettings, repair};
use crate::error::StartError;
use crate::jobs::runner::Runner;
use crate::jobs::{JobStore, MemoryStore};
use crate::migrations::Migrations;
use crate::migrations::controller::{self, Ctl};
use crate::rebalancer::Rebalancer;
use crate::sinks::influx::{self, InfluxConfig, InfluxHandle, MigrationPoint};
use crate::telemetry::{SinkStats, Telemetry};
use crate::tls::{Peer, TlsFiles, TlsListener};

/// The `pod_migration` point of a finished job (SPEC §7). Its time is the
/// migration's end: writing it again (a new leader re-records what it finds)
/// overwrites the same point, so each migration is exactly one point.
fn point(job: &crate::jobs::Job) -> MigrationPoint {
    let r = &job.request;
    MigrationPoint {
        pod_name: r.pod_name.clone(),
        namespace: r.pod_namespace.clone(),
        source_node: r.source_node.clone(),
        target_node: if job.details.new_node_name.is_empty() {
            r.target_node.clone()
        } else {
            job.details.new_node_name.clone()
        },
        success: job.status == sdi_core::job::JobStatus::Completed,
        strategy: job.details.strategy.map_or("none", |s| s.as_str()).to_string(),
        duration_seconds: job.details.duration.map_or(0.0, |ns| ns as f64 / 1e9),
        time: job.details.end_time.as_deref().and_then(|t| t.parse().ok()).unwrap_or_else(jiff::Timestamp::now),
    }
}

/// A running service.
pub struct Service {
    pub addr: SocketAddr,
    /// The API is served over HTTPS (`TLS_CERT_FILE`).
    pub tls: bool,
    pub runner: Arc<Runner>,
    pub migrations: Arc<Migrations>,
    pub stats: Arc<ApiStats>,
    /// What restart repair did when this replica first led (empty if it did not).
    pub repair: repair::Report,
    pub telemetry: Arc<Telemetry>,
    pub rebalancer: Arc<Rebalancer>,
    pub leadership: Leadership,
    influx: Option<InfluxHandle>,
    /// Stops the HTTP server, the caches and the leader's work.
    stop: CancellationToken,
    /// Stops the election (releasing the Lease): last, after running jobs are drained.
    election: CancellationToken,
    /// Stops the election without releasing the Lease (a simulated crash).
    abandon: CancellationToken,
    server: tokio::task::JoinHandle<()>,
}

pub fn engine_settings(s: &Settings) -> EngineSettings {
    EngineSettings {
        checkpointing: s.enable_checkpointing,
        checkpoint_pvc_size: s.checkpoint_pvc_size.clone(),
        post_migration_settle: Duration::from_secs(s.post_migration_settle),
        default_timeout: Duration::from_secs(s.migration_timeout),
        images: s.checkpoint.clone(),
    }
}

/// What the leader runs, and what it needs.
struct LeaderWork {
    client: kube::Client,
    writer: Writer,
    migrations: Arc<Migrations>,
    rebalancer: Arc<Rebalancer>,
    telemetry: Arc<Telemetry>,
    influx: Option<InfluxHandle>,
    auto_migration: bool,
    history_ttl: Duration,
    history_max: usize,
    /// `CHECKPOINT_RETENTION`.
    checkpoint_retention: Duration,
}

/// Run `work` at each tick of `tick` until `stop`: the leader's periodic chores.
fn every<F, Fut>(mut tick: tokio::time::Interval, stop: &CancellationToken, mut work: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let stop = stop.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => work().await,
            }
        }
    });
}

impl LeaderWork {
    /// Lead while `leadership` holds; again whenever it is won back; until `stop`.
    async fn run(self, leadership: Leadership, mut first: Option<repair::Report>, stop: CancellationToken) {
        let mut changes = leadership.subscribe();
        loop {
            while !*changes.borrow_and_update() {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    r = changes.changed() => if r.is_err() { return },
                }
            }
            self.telemetry.leader.set(1);
            let term = stop.child_token();
            let report = match first.take() {
                Some(r) => r,
                None => repair::run(&self.client, &self.writer).await,
            };
            self.telemetry.repaired(&report);
            self.rerecord().await;
            let ctl = Arc::new(Ctl { migrations: self.migrations.clone(), repaired: Mutex::new(report) });
            tokio::spawn(controller::run(ctl, term.clone()));
            if self.auto_migration {
                let (r, t) = (self.rebalancer.clone(), term.clone());
                tokio::spawn(async move { r.run(t).await });
            }
            let (m, ttl, max) = (self.migrations.clone(), self.history_ttl, self.history_max);
            every(tokio::time::interval(Duration::from_secs(60)), &term, move || {
                let m = m.clone();
                async move { controller::collect_history(&m, ttl, max).await }
            });
            let (c, w, m, tm) =
                (self.client.clone(), self.writer.clone(), self.migrations.clone(), self.telemetry.clone());
            let first = tokio::time::Instant::now() + repair::SWEEP;
            every(tokio::time::interval_at(first, repair::SWEEP), &term, move || {
                let (c, w, m, tm) = (c.clone(), w.clone(), m.clone(), tm.clone());
                async move {
                    // From the cache: a sweep that finds nothing costs no request.
                    let live = |job: &str| m.runner.is_live(job);
                    let stray = m
                        .runner
                        .engine
                        .cache
                        .read(|v| v.jobs_with_copies_and_originals().into_iter().any(|j| !live(j)));
                    if stray {
                        tm.repaired(&repair::stray_copies(&c, &w, &live).await);
                    }
                }
            });
            if self.writer.registry().is_some() {
                let (store, w, retention) =
                    (self.migrations.runner.store.clone(), self.writer.clone(), self.checkpoint_retention);
                every(tokio::time::interval(crate::checkpoint::retention::interval(retention)), &term, move || {
                    let (store, w) = (store.clone(), w.clone());
                    async move {
                        crate::checkpoint::retention::sweep(&store, &w, retention).await;
                    }
                });
            }
            loop {
                tokio::select! {
                    _ = stop.cancelled() => {
                        term.cancel();
                        return;
                    }
                    r = changes.changed() => {
                        if r.is_err() || !*changes.borrow_and_update() {
                            break;
                        }
                    }
                }
            }
            term.cancel();
            self.migrations.runner.abandon_all();
            self.telemetry.leader.set(0);
        }
    }

    /// Write every finished migration's point again: a leader that died between
    /// finishing a migration and flushing its point leaves it to the next one,
    /// and InfluxDB keeps one point per migration (same series, same time).
    async fn rerecord(&self) {
        let Some(influx) = &self.influx else { return };
        for _ in 0..100 {
            if self.migrations.synced() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let store = &self.migrations.runner.store;
        for job in store.list(&Default::default()).into_iter().filter(|j| j.status.is_terminal()) {
            influx.record(point(&job));
        }
    }
}

impl Service {
    /// Serve the API on `addr`; lead when elected.
    pub async fn start(
        settings: &Settings,
        client: kube::Client,
        stats: Arc<ApiStats>,
        addr: SocketAddr,
    ) -> Result<Service, StartError> {
        Self::start_with_clock(settings, client, stats, addr, None).await
    }

    /// [`Service::start`], measuring cooldowns on `clock` (a simulated cluster's).
    pub async fn start_with_clock(
        settings: &Settings,
        client: kube::Client,
        stats: Arc<ApiStats>,
        addr: SocketAddr,
        clock: Option<crate::rebalancer::Clock>,
    ) -> Result<Service, StartError> {
        let tls = match (&settings.tls_cert_file, &settings.tls_key_file) {
            (Some(cert), Some(key)) => {
                Some(TlsFiles { cert: cert.clone(), key: key.clone(), client_ca: settings.tls_client_ca_file.clone() })
            }
            _ => None,
        };
        // A certificate that cannot be served stops start-up before anything is led or written.
        if let Some(files) = &tls {
            TlsListener::check(files)?;
        }
        Migrations::check_installed(&client).await?;
        let identity = settings.identity.clone().unwrap_or_else(lease::identity);
        let leadership =
            if settings.leader_election { Leadership::candidate(&identity) } else { Leadership::always(&identity) };
        let registry = settings.checkpoint.registry().map_err(StartError::Config)?;
        let writer = Writer::new(client.clone(), leadership.clone()).with_registry(registry);
        let cache = ClusterCache::new(settings.resource_pressure_threshold);
        let engine = Arc::new(Engine::new(client.clone(), cache.clone(), writer.clone(), engine_settings(settings)));
        let stop = CancellationToken::new();
        // Every change of a job record is published to the live stream (GET /api/v1/stream).
        let hub = crate::stream::Hub::new(stop.clone());
        let history = usize::try_from(settings.migration_history_max).unwrap_or(1000) + 100;
        let store: Arc<dyn JobStore> = Arc::new(crate::stream::Publishing::new(MemoryStore::new(history), hub.clone()));
        let runner = Runner::new(store, engine, settings.migration_strategy);
        let telemetry = Telemetry::new(stats.clone());
        {
            let t = telemetry.clone();
            runner.on_finish(move |job| t.job_finished(job));
        }
        let influx = match settings.influx_url.as_deref() {
            Some(url) if !url.is_empty() => {
                let config = InfluxConfig {
                    url: url.to_string(),
                    org: settings.influx_org.clone(),
                    bucket: settings.influx_bucket.clone(),
                    token: settings.influx_token.clone(),
                    database: settings.influx_database.clone(),
                    ..InfluxConfig::default()
                };
                let handle = influx::spawn(config).map_err(|e| StartError::Sink(e.to_string()))?;
                let h = handle.clone();
                runner.on_finish(move |job| h.record(point(job)));
                let h = handle.clone();
                telemetry.attach_influx(move || {
                    let s = h.stats();
                    SinkStats {
                        written: s.written,
                        dropped: s.dropped,
                        errors: s.errors,
                        buffered: s.buffered as u64,
                        healthy: s.healthy,
                    }
                });
                Some(handle)
            }
            _ => None,
        };
        let listener = TcpListener::bind(addr).await.map_err(|source| StartError::Listen { addr, source })?;
        let addr = listener.local_addr().map_err(|source| StartError::Listen { addr, source })?;
        let election = CancellationToken::new();
        let abandon = CancellationToken::new();
        let migrations = Migrations::new(client.clone(), runner.clone());
        tokio::spawn(migrations.clone().watch(stop.clone()));
        let poll_metrics = settings.pressure_basis != crate::config::PressureBasis::Requests;
        cache.spawn(
            client.clone(),
            poll_metrics,
            Duration::from_secs(settings.migration_check_interval.clamp(1, 10)),
            stop.clone(),
        );
        let mut rebalancer = Rebalancer::new(settings, cache, migrations.clone(), telemetry.clone())?;
        if let (Some(c), Some(r)) = (clock, Arc::get_mut(&mut rebalancer)) {
            r.set_clock(c);
        }
        rebalancer.track_moves();
        {
            let h = hub.clone();
            rebalancer.on_cycle(move |report, recent| h.cycle(report, recent));
        }
        if !settings.enable_auto_migration {
            tracing::info!("ENABLE_AUTO_MIGRATION=false: the rebalancer only plans on request (GET /api/v1/plan)");
        }

        if settings.leader_election {
            let config = LeaseConfig {
                namespace: settings.lease_namespace.clone(),
                identity,
                duration: Duration::from_secs(settings.lease_duration),
                renew_deadline: Duration::from_secs(settings.renew_deadline),
                retry_period: Duration::from_secs(settings.retry_period),
            };
            lease::spawn(client.clone(), writer.clone(), config, &leadership, election.clone(), abandon.clone());
            // A replica alone wins at once; one that finds another leader goes on serving.
            let mut changes = leadership.subscribe();
            let _ = tokio::time::timeout(Duration::from_secs(2), changes.wait_for(|l| *l)).await;
        } else {
            tracing::warn!("LEADER_ELECTION=false: this replica acts as the leader; run exactly one");
        }
        // Restart repair before anything else writes: what interrupted jobs left behind.
        let report =
            if leadership.is_leader() { repair::run(&client, &writer).await } else { repair::Report::default() };
        let work = LeaderWork {
            client: client.clone(),
            writer,
            migrations: migrations.clone(),
            rebalancer: rebalancer.clone(),
            telemetry: telemetry.clone(),
            influx: influx.clone(),
            auto_migration: settings.enable_auto_migration,
            history_ttl: Duration::from_secs(settings.migration_history_ttl),
            history_max: usize::try_from(settings.migration_history_max).unwrap_or(1000),
            checkpoint_retention: Duration::from_secs(settings.checkpoint.checkpoint_retention),
        };
        let first = Some(report.clone()).filter(|_| leadership.is_leader());
        tokio::spawn(work.run(leadership.clone(), first, stop.clone()));

        let access = match settings.auth_mode {
            AuthMode::Kubernetes => Access::kubernetes(client.clone(), Duration::from_secs(settings.auth_cache_ttl)),
            AuthMode::None => {
                tracing::warn!(
                    "AUTH_MODE=none: the API does not check who calls it; anyone who reaches {addr} can move and \
                     cancel migrations of any namespace with this service's rights"
                );
                Access::open()
            }
        };
        let app = router(AppState {
            runner: runner.clone(),
            migrations: migrations.clone(),
            telemetry: telemetry.clone(),
            rebalancer: rebalancer.clone(),
            auto_migration: settings.enable_auto_migration,
            hub,
            access: Arc::new(access),
        });
        let stopped = stop.clone();
        let https = tls.is_some();
        let server = match tls {
            Some(files) => {
                let listener = TlsListener::new(listener, files, stop.clone())?;
                tokio::spawn(async move {
                    let app = app.into_make_service_with_connect_info::<Peer>();
                    let serve =
                        axum::serve(listener, app).with_graceful_shutdown(async move { stopped.cancelled().await });
                    if let Err(e) = serve.await {
                        tracing::error!(error = %e, "HTTPS server failed");
                    }
                })
            }
            None => tokio::spawn(async move {
                let app = app.into_make_service_with_connect_info::<Peer>();
                let serve = axum::serve(listener, app).with_graceful_shutdown(async move { stopped.cancelled().await });
                if let Err(e) = serve.await {
                    tracing::error!(error = %e, "HTTP server failed");
                }
            }),
        };
        tracing::info!(%addr, https, auth = ?settings.auth_mode, leader = leadership.is_leader(), "sdi-migration API listening");
        Ok(Service {
            addr,
            tls: https,
            runner,
            migrations,
            stats,
            repair: report,
            telemetry,
            rebalancer,
            leadership,
            influx,
            stop,
            election,
            abandon,
            server,
        })
    }

    pub fn url(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr)
    }

    /// Stop accepting requests, give running jobs `grace` to finish, undo the
    /// rest (still as leader), then release the Lease.
    pub async fn shutdown(self, grace: Duration) {
        self.runner.drain(grace).await;
        self.stop.cancel();
        let _ = self.server.await;
        self.election.cancel();
        if let Some(influx) = self.influx {
            influx.shutdown(Duration::from_secs(5)).await;
        }
        tracing::info!("sdi-migration stopped");
    }

    /// Stop abruptly, as a crash would: running jobs are dropped mid-step,
    /// nothing is undone and the Lease is not released (the next leader must
    /// cope). For tests.
    pub fn abort(self) {
        self.runner.abort_all();
        self.stop.cancel();
        self.server.abort();
        // Like a dead process: no release; the Lease expires on its own.
        self.abandon.cancel();
    }
}
