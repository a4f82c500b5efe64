//! `kube-sim`: run a simulated Kubernetes API server.
//!
//! ```text
//! kube-sim serve --addr 127.0.0.1:6443 --kubeconfig /tmp/kube-sim.yaml
//! KUBECONFIG=/tmp/kube-sim.yaml kubectl get namespaces
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kube_sim::{Cluster, ServerConfig};

#[derive(Debug, Parser)]
#[command(
    name = "kube-sim",
    version,
    about = "A simulated Kubernetes API server that kubectl and kube clients can talk to"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start an empty cluster and serve its API until SIGINT/SIGTERM.
    Serve {
        /// Address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:6443", env = "KUBE_SIM_ADDR")]
        addr: SocketAddr,
        /// Write a kubeconfig for the server to this file.
        #[arg(long, env = "KUBE_SIM_KUBECONFIG")]
        kubeconfig: Option<PathBuf>,
        /// Events kept per resource for watch resumption (older resourceVersions get 410 Expired).
        #[arg(long, default_value_t = kube_sim::store::DEFAULT_HISTORY)]
        history: usize,
        /// Seconds between BOOKMARK events on watches that allow them.
        #[arg(long, default_value_t = 60)]
        bookmark_interval: u64,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kube-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve { addr, kubeconfig, history, bookmark_interval } => {
            if bookmark_interval == 0 {
                return Err("--bookmark-interval: must be at least 1 second".into());
            }
            let config = ServerConfig {
                history,
                bookmark_interval: std::time::Duration::from_secs(bookmark_interval),
                ..ServerConfig::default()
            };
            let cluster = Cluster::with(config, kube_sim::Clock::default());
            let server = cluster.serve(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            if let Some(path) = &kubeconfig {
                std::fs::write(path, server.kubeconfig())
                    .map_err(|e| format!("cannot write kubeconfig {}: {e}", path.display()))?;
            }
            let where_kc = kubeconfig.as_ref().map(|p| format!(", kubeconfig {}", p.display())).unwrap_or_default();
            tracing::info!("kube-sim listening on {}{where_kc}", server.url());
            shutdown_signal().await;
            tracing::info!("kube-sim shutting down");
            cluster.stop();
            server.shutdown().await;
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
