//! Wiring: the engine, the job runner and the HTTP API on one address, started
//! after restart repair and stopped gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{AppState, router};
use crate::cluster::ApiStats;
use crate::cluster::events::Events;
use crate::config::Settings;
use crate::engine::{Engine, EngineSettings, repair};
use crate::jobs::runner::Runner;
use crate::jobs::{JobStore, MemoryStore};
use crate::telemetry::Telemetry;

/// A running service.
pub struct Service {
    pub addr: SocketAddr,
    pub runner: Arc<Runner>,
    pub stats: Arc<ApiStats>,
    pub repair: repair::Report,
    pub telemetry: Arc<Telemetry>,
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
    ) -> Result<Service, String> {
        let report =
            repair::run(&client).await.map_err(|e| format!("restart repair could not read the cluster: {e}"))?;
        let engine =
            Arc::new(Engine { events: Events::new(client.clone()), client, settings: engine_settings(settings) });
        let store: Arc<dyn JobStore> = Arc::new(MemoryStore::default());
        let runner = Runner::new(store, engine, settings.migration_strategy);
        let telemetry = Telemetry::new(stats.clone());
        {
            let t = telemetry.clone();
            runner.on_finish(move |job| t.job_finished(job));
        }
        let listener = TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let stop = CancellationToken::new();
        let app = router(AppState { runner: runner.clone(), telemetry: telemetry.clone() });
        let stopped = stop.clone();
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move { stopped.cancelled().await });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "HTTP server failed");
            }
        });
        tracing::info!(%addr, "sdi-migration API listening");
        Ok(Service { addr, runner, stats, repair: report, telemetry, stop, server })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop accepting requests, give running jobs `grace` to finish, undo the rest.
    pub async fn shutdown(self, grace: Duration) {
        self.stop.cancel();
        self.runner.drain(grace).await;
        let _ = self.server.await;
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
