//! `sdi-migration` — thin: parse the configuration, wire, run, shut down.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sdi_migration::cluster::{self, ApiStats};
use sdi_migration::config::{self, Command, LogFormat, ParseOutcome, Settings};
use sdi_migration::service::Service;

/// Logs to stderr; with `file` (the demo), to the file, and only warnings to
/// the terminal, which shows the demo's live view.
fn init_logs(format: LogFormat, file: Option<std::fs::File>) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| "info,kube_client=warn,kube_runtime=warn,kube_sim=warn".into());
    if let Some(file) = file {
        let to_file = tracing_subscriber::fmt::layer().with_ansi(false).with_writer(std::sync::Mutex::new(file));
        let to_file = match format {
            LogFormat::Json => to_file.json().boxed(),
            LogFormat::Text => to_file.boxed(),
        };
        let to_terminal = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(tracing_subscriber::filter::LevelFilter::WARN);
        tracing_subscriber::registry().with(to_file.with_filter(filter)).with(to_terminal).init();
        return;
    }
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Installs the SIGTERM and SIGINT handlers now — before anything is served,
/// so a signal during start-up is a graceful stop, not the default action
/// (death) — and returns what completes on the first of them.
fn signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {},
                        _ = int.recv() => {},
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn listen_addr(settings: &Settings) -> SocketAddr {
    SocketAddr::new(settings.listen, settings.port)
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let stopped = signal();
    let stats = Arc::new(ApiStats::default());
    let client = cluster::connect(settings.kubeconfig.as_deref(), stats.clone()).await?;
    let service = Service::start(&settings, client, stats, listen_addr(&settings)).await?;
    stopped.await;
    tracing::info!("shutting down: no new migrations; {} running", service.runner.active());
    service.shutdown(Duration::from_secs(settings.shutdown_grace)).await;
    Ok(())
}

#[cfg(feature = "demo")]
async fn demo(args: config::DemoArgs) -> anyhow::Result<()> {
    Ok(sdi_migration::demo::run(args, signal()).await?)
}

#[cfg(feature = "demo")]
fn demo_log_file() -> Option<std::fs::File> {
    match sdi_migration::demo::open_log() {
        Ok((_, file)) => Some(file),
        Err(e) => {
            let path = sdi_migration::demo::log_path();
            eprintln!("warning: cannot write the demo's log file {}: {e}; logging to the terminal", path.display());
            None
        }
    }
}

#[cfg(not(feature = "demo"))]
fn demo_log_file() -> Option<std::fs::File> {
    None
}

/// Production images are built without the simulator.
#[cfg(not(feature = "demo"))]
async fn demo(_: config::DemoArgs) -> anyhow::Result<()> {
    anyhow::bail!(
        "this build of sdi-migration has no demo (the simulated cluster is left out of production images); \
         run it from a checkout: cargo run --release -p sdi-migration -- demo"
    )
}

fn main() -> std::process::ExitCode {
    let cli = match config::parse() {
        Ok(cli) => cli,
        Err(ParseOutcome::Display(text)) => {
            print!("{text}");
            return std::process::ExitCode::SUCCESS;
        }
        Err(ParseOutcome::Invalid(line)) => {
            eprintln!("error: {line}");
            return std::process::ExitCode::from(2);
        }
    };
    let format = match &cli.command {
        Command::Run(s) => s.log_format,
        Command::Demo(d) => d.settings.log_format,
        Command::Agent(a) => a.log_format,
    };
    let log_file = match &cli.command {
        Command::Run(_) | Command::Agent(_) => None,
        Command::Demo(_) => demo_log_file(),
    };
    init_logs(format, log_file);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(settings) => run(settings).await,
            Command::Demo(args) => demo(args).await,
            Command::Agent(args) => Ok(sdi_migration::checkpoint::agent::main(args, signal()).await?),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
