//! `kube-sim`: run a simulated Kubernetes API server.
//!
//! ```text
//! kube-sim serve --addr 127.0.0.1:6443 --kubeconfig /tmp/kube-sim.yaml --scenario scenarios/sdi-edge.yaml --speed 10
//! KUBECONFIG=/tmp/kube-sim.yaml kubectl get pods -A
//! kube-sim scenario check scenarios/pressure.yaml
//! kube-sim scenario generate --nodes 5000 --pods 150000 > /tmp/big.yaml
//! ```

/// mimalloc: the simulator allocates and frees small objects at a high rate
/// (decoding, encoding, caching); glibc's allocator spent over half of the
/// large benchmark's time in malloc/free and fragments at 150,000 pods.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        /// Load this scenario (nodes, workloads, usage, timeline); see docs/scenarios.md.
        #[arg(long, env = "KUBE_SIM_SCENARIO")]
        scenario: Option<PathBuf>,
        /// Run simulated time this many times faster than real time (demos).
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Serve the API only: no scheduler, kubelets or controllers.
        #[arg(long)]
        no_simulation: bool,
        /// How requests are authorized: `always-allow` (everything, the
        /// default) or `rbac` (Roles, ClusterRoles and their bindings decide).
        #[arg(long, default_value = "always-allow", env = "KUBE_SIM_AUTHORIZATION")]
        authorization: kube_sim::AuthorizationMode,
        /// Requests without credentials act as system:anonymous (true) or get 401 (false).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        anonymous_auth: bool,
        /// Serve HTTPS with a CA generated at start; the kubeconfig carries the CA
        /// and an administrator's client certificate. Default: on when requests
        /// are authorized or anonymous ones refused (kubectl sends credentials
        /// over HTTPS only), off otherwise.
        #[arg(long, env = "KUBE_SIM_TLS", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
        tls: Option<bool>,
        /// Static bearer-token users, one `token,user,uid,"group1,group2"` per line
        /// (upstream's --token-auth-file format).
        #[arg(long)]
        token_auth_file: Option<PathBuf>,
        /// The issuer (`iss`) of the ServiceAccount tokens the server signs.
        #[arg(long, default_value = kube_sim::auth::DEFAULT_ISSUER)]
        service_account_issuer: String,
        /// Audiences the API accepts in tokens, comma-separated (default: the issuer).
        #[arg(long, value_delimiter = ',')]
        api_audiences: Vec<String>,
    },
    /// Work with scenario files.
    Scenario {
        #[command(subcommand)]
        command: ScenarioCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ScenarioCommand {
    /// Validate a scenario file; prints every error with its line, or a summary.
    Check { file: PathBuf },
    /// Print a generated benchmark scenario (nodes in groups, pods in Deployments).
    Generate {
        #[arg(long, default_value_t = 5000)]
        nodes: usize,
        #[arg(long, default_value_t = 150_000)]
        pods: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// Read and parse a scenario file, with every error on its own line.
fn read_scenario(path: &std::path::Path) -> Result<kube_sim::scenario::Scenario, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read scenario {}: {e}", path.display()))?;
    kube_sim::scenario::parse(&path.display().to_string(), &text).map_err(|errs| {
        let lines: Vec<String> = errs.iter().map(ToString::to_string).collect();
        format!("invalid scenario:\n{}", lines.join("\n"))
    })
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
        Command::Scenario { command: ScenarioCommand::Check { file } } => {
            let s = read_scenario(&file)?;
            let objects = s.objects();
            println!("{}: ok — {} objects, {} timeline actions", file.display(), objects.len(), s.timeline().len());
            Ok(())
        }
        Command::Scenario { command: ScenarioCommand::Generate { nodes, pods, seed } } => {
            print!("{}", kube_sim::scenario::generate::generate(nodes, pods, seed));
            Ok(())
        }
        Command::Serve {
            addr,
            kubeconfig,
            history,
            bookmark_interval,
            scenario,
            speed,
            no_simulation,
            authorization,
            anonymous_auth,
            tls,
            token_auth_file,
            service_account_issuer,
            api_audiences,
        } => {
            if bookmark_interval == 0 {
                return Err("--bookmark-interval: must be at least 1 second".into());
            }
            if !(speed.is_finite() && speed > 0.0 && speed <= 1000.0) {
                return Err(format!("--speed: must be a number in (0, 1000], got {speed}"));
            }
            let scenario = scenario.as_deref().map(read_scenario).transpose()?;
            if scenario.is_some() && no_simulation {
                return Err("--scenario needs the simulation; drop --no-simulation".into());
            }
            let tokens = match &token_auth_file {
                None => Vec::new(),
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .map_err(|e| format!("cannot read --token-auth-file {}: {e}", path.display()))?;
                    kube_sim::auth::StaticToken::parse_file(&text)
                        .map_err(|e| format!("--token-auth-file {}: {e}", path.display()))?
                }
            };
            let tls = tls.unwrap_or(authorization == kube_sim::AuthorizationMode::Rbac || !anonymous_auth);
            let auth = kube_sim::AuthConfig {
                authorization,
                anonymous: anonymous_auth,
                tls,
                tokens,
                issuer: service_account_issuer,
                audiences: api_audiences.into_iter().filter(|a| !a.is_empty()).collect(),
            };
            let config = ServerConfig {
                history,
                bookmark_interval: std::time::Duration::from_secs(bookmark_interval),
                simulate: !no_simulation,
                auth,
                ..ServerConfig::default()
            };
            let cluster = Cluster::with(config, kube_sim::Clock::new(speed));
            if let Some(s) = &scenario {
                cluster.load_scenario(s)?;
            }
            let server = cluster.serve(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            if let Some(path) = &kubeconfig {
                std::fs::write(path, server.kubeconfig())
                    .map_err(|e| format!("cannot write kubeconfig {}: {e}", path.display()))?;
                // It may hold the administrator's credentials: owner only, as kubeadm's admin.conf.
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                        .map_err(|e| format!("cannot restrict kubeconfig {}: {e}", path.display()))?;
                }
            }
            let where_kc = kubeconfig.as_ref().map(|p| format!(", kubeconfig {}", p.display())).unwrap_or_default();
            let mode = match authorization {
                kube_sim::AuthorizationMode::Rbac => "RBAC",
                kube_sim::AuthorizationMode::AlwaysAllow => "every request allowed",
            };
            tracing::info!("kube-sim listening on {}{where_kc} (authorization: {mode})", server.url());
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
