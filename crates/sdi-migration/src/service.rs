//! Wiring: the engine, the job runner and the HTTP API on one address, started
//! after restart repair and stopped gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{AppState, router};
use crate::cluster::ApiStats;
use crate::cluster::cache::ClusterCache;
use crate::config::Settings;
use crate::engine::{Engine, EngineSettings, repair};
use crate::error::StartError;
use crate::jobs::runner::Runner;
use crate::jobs::{JobStore, MemoryStore};
use crate::rebalancer::Rebalancer;
use crate::sinks::influx::{self, InfluxConfig, InfluxHandle, MigrationPoint};
use crate::telemetry::{SinkStats, Telemetry};

/// The `pod_migration` point of a finished job (SPEC §7).
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
        time: jiff::Timestamp::now(),
    }
}

/// A running service.
pub struct Service {
    pub addr: SocketAddr,
    pub runner: Arc<Runner>,
    pub stats: Arc<ApiStats>,
    pub repair: repair::Report,
    pub telemetry: Arc<Telemetry>,
    pub rebalancer: Arc<Rebalancer>,
    influx: Option<InfluxHandle>,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<()>,
}

pub fn engine_settings(s: &Settings) -> EngineSettings {
    EngineSettings {
        checkpointing: s.enable_checkpointing,
        checkpoint_pvc_size: s.checkpoint_pvc_size.clone(),
        post_migration_settle: Duration::from_secs(s.post_migration_settle),
        default_timeout: Duration::from_secs(s.migration_timeout),
    }
}

impl Service {
    /// Repair leftovers of interrupted jobs, then serve the API on `addr`.
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
        let engine_client = client.clone();
        let cache = ClusterCache::new(settings.resource_pressure_threshold);
        let engine = Arc::new(Engine::new(client, cache.clone(), engine_settings(settings)));
        // Whatever repair finds, the service starts: what it could not repair is
        // reported (log, Event, metric) and looked at again on the next start.
        let report = repair::run(&engine.client, &engine.writer).await;
        let stop = CancellationToken::new();
        // Every change of a job record is published to the live stream (GET /api/v1/stream).
        let hub = crate::stream::Hub::new(stop.clone());
        let store: Arc<dyn JobStore> = Arc::new(crate::stream::Publishing::new(MemoryStore::default(), hub.clone()));
        let runner = Runner::new(store, engine, settings.migration_strategy);
        let telemetry = Telemetry::new(stats.clone());
        telemetry.repaired(&report);
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
        let poll_metrics = settings.pressure_basis != crate::config::PressureBasis::Requests;
        cache.spawn(
            engine_client,
            poll_metrics,
            Duration::from_secs(settings.migration_check_interval.clamp(1, 10)),
            stop.clone(),
        );
        let mut rebalancer = Rebalancer::new(settings, cache, runner.clone(), telemetry.clone())?;
        if let (Some(c), Some(r)) = (clock, Arc::get_mut(&mut rebalancer)) {
            r.set_clock(c);
        }
        rebalancer.track_moves();
        {
            let h = hub.clone();
            rebalancer.on_cycle(move |report, recent| h.cycle(report, recent));
        }
        if settings.enable_auto_migration {
            let (r, s) = (rebalancer.clone(), stop.clone());
            tokio::spawn(async move { r.run(s).await });
        } else {
            tracing::info!("ENABLE_AUTO_MIGRATION=false: the rebalancer only plans on request (GET /api/v1/plan)");
        }
        let app = router(AppState {
            runner: runner.clone(),
            telemetry: telemetry.clone(),
            rebalancer: rebalancer.clone(),
            auto_migration: settings.enable_auto_migration,
            hub,
        });
        let stopped = stop.clone();
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move { stopped.cancelled().await });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "HTTP server failed");
            }
        });
        tracing::info!(%addr, "sdi-migration API listening");
        Ok(Service { addr, runner, stats, repair: report, telemetry, rebalancer, influx, stop, server })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop accepting requests, give running jobs `grace` to finish, undo the rest.
    pub async fn shutdown(self, grace: Duration) {
        self.stop.cancel();
        self.runner.drain(grace).await;
        let _ = self.server.await;
        if let Some(influx) = self.influx {
            influx.shutdown(Duration::from_secs(5)).await;
        }
        tracing::info!("sdi-migration stopped");
    }

    /// Stop abruptly, as a crash would: running jobs are dropped mid-step and
    /// nothing is undone (the next start's repair must cope). For tests.
    pub fn abort(self) {
        self.stop.cancel();
        self.server.abort();
        self.runner.abort_all();
    }
}
