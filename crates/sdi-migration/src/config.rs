//! Configuration: environment variables, each with a same-named long flag, validated once at
//! start-up (SPEC sections 4, 5, 7 and 8).
//!
//! Every setting is read by clap from its flag, else from its environment variable, else from
//! its default, and goes through a parser of this module that knows the accepted range. A bad
//! value stops start-up with one line naming the variable, the offending value and the range:
//!
//! ```text
//! error: RESOURCE_PRESSURE_THRESHOLD="150": expected a number greater than 0 and at most 100
//! ```
//!
//! [`parse_from`] turns clap's errors into that line ([`ParseOutcome`]) and runs the
//! cross-field checks of [`Settings::validate`].

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use clap::{CommandFactory, Parser};
use serde::{Deserialize, Serialize};

const ABOUT: &str =
    "Moves pods between Kubernetes nodes safely: on request through an HTTP API, or automatically when a node runs hot";

/// Top-level CLI: `sdi-migration <command>`.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "sdi-migration",
    version,
    about = ABOUT,
    long_about = concat!(
        "Moves pods between Kubernetes nodes safely: on request through an HTTP API, or automatically when a node ",
        "runs hot.\n\nEvery setting is an environment variable with a same-named flag (the flag wins). A bad value ",
        "stops start-up with one line naming the variable."
    )
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The settings of whichever command was chosen.
    pub fn settings(&self) -> &Settings {
        self.command.settings()
    }
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Production mode: the HTTP API and (unless disabled) the autonomous rebalancer against a cluster.
    Run(Settings),
    /// Starts the simulated cluster in-process with an SDI edge scenario and runs the service against it.
    Demo(DemoArgs),
    /// The node agent (a DaemonSet): turns checkpoint archives into OCI checkpoint images in CHECKPOINT_REGISTRY.
    Agent(crate::checkpoint::settings::AgentArgs),
}

/// What `Command::settings` answers for the agent, which has its own (the service's defaults).
static DEFAULT_SETTINGS: std::sync::LazyLock<Settings> = std::sync::LazyLock::new(Settings::default);

impl Command {
    /// The settings of this command.
    pub fn settings(&self) -> &Settings {
        match self {
            Command::Run(settings) => settings,
            Command::Demo(demo) => &demo.settings,
            Command::Agent(_) => &DEFAULT_SETTINGS,
        }
    }
}

#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub settings: Settings,
    /// Scenario file (default: the built-in SDI edge cluster)
    #[arg(long, value_name = "FILE", help_heading = "Demo")]
    pub scenario: Option<PathBuf>,
    /// Simulated time speed-up (greater than 0 and at most 1000; default 10)
    #[arg(long, default_value = "10", allow_negative_numbers = true, value_parser = |s: &str| SPEED.parse(s),
          help_heading = "Demo")]
    pub speed: f64,
    /// Stop after this many wall-clock seconds (1 to 31536000; default: until Ctrl-C)
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true,
          value_parser = |s: &str| DEMO_DURATION.parse::<u64>(s), help_heading = "Demo")]
    pub duration: Option<u64>,
    /// Access to the demo's API: none (anyone on this machine; it listens on 127.0.0.1 only) or
    /// kubernetes (the simulated cluster enforces RBAC; a token is printed) (default none)
    #[arg(long = "auth", value_enum, ignore_case = true, default_value = "none", help_heading = "Demo")]
    pub auth: crate::access::AuthMode,
}

impl Default for DemoArgs {
    fn default() -> Self {
        DemoArgs {
            settings: Settings::default(),
            scenario: None,
            speed: 10.0,
            duration: None,
            auth: crate::access::AuthMode::None,
        }
    }
}

/// Every setting of the service. Built by clap from flags and environment variables; the
/// hand-written [`Default`] holds the documented defaults. `Debug` never shows the token.
#[derive(Clone, PartialEq, clap::Args)]
pub struct Settings {
    /// HTTP port of the API, /metrics and the probes (0 to 65535, 0 = any free port; default 8080)
    #[arg(long, env = "PORT", default_value = "8080", allow_negative_numbers = true,
          value_parser = |s: &str| PORT.parse::<u16>(s),
          help_heading = "Service")]
    pub port: u16,

    /// Address the API listens on: an IPv4 or IPv6 address, 0.0.0.0 or :: for every interface (default 0.0.0.0)
    #[arg(long = "listen", env = "LISTEN_ADDR", value_name = "ADDRESS", default_value = "0.0.0.0",
          value_parser = parse_listen, help_heading = "Service")]
    pub listen: std::net::IpAddr,

    /// Who may call the API: kubernetes (bearer tokens checked with TokenReview, permissions with
    /// SubjectAccessReview) or none (anyone who reaches the port; a warning at start) (default kubernetes)
    #[arg(
        long,
        env = "AUTH_MODE",
        value_enum,
        ignore_case = true,
        default_value = "kubernetes",
        help_heading = "Access"
    )]
    pub auth_mode: crate::access::AuthMode,

    /// Seconds a token's review and an access decision are remembered (0 to 300; default 10)
    #[arg(long, env = "AUTH_CACHE_TTL", value_name = "SECONDS", default_value = "10",
          allow_negative_numbers = true,
          value_parser = |s: &str| AUTH_CACHE_TTL.parse::<u64>(s), help_heading = "Access")]
    pub auth_cache_ttl: u64,

    /// PEM certificate chain of the API; with TLS_KEY_FILE it serves HTTPS and reloads both when they
    /// change (default: unset = plain HTTP)
    #[arg(long, env = "TLS_CERT_FILE", value_name = "FILE", default_value = "", hide_default_value = true,
          value_parser = parse_kubeconfig, help_heading = "Access")]
    pub tls_cert_file: std::option::Option<PathBuf>,

    /// PEM private key of TLS_CERT_FILE (default: unset)
    #[arg(long, env = "TLS_KEY_FILE", value_name = "FILE", default_value = "", hide_default_value = true,
          value_parser = parse_kubeconfig, help_heading = "Access")]
    pub tls_key_file: std::option::Option<PathBuf>,

    /// PEM CA bundle; with TLS, a client certificate it signed authenticates its caller (CN = user,
    /// O = groups) instead of a bearer token (default: unset = bearer tokens only)
    #[arg(long, env = "TLS_CLIENT_CA_FILE", value_name = "FILE", default_value = "", hide_default_value = true,
          value_parser = parse_kubeconfig, help_heading = "Access")]
    pub tls_client_ca_file: std::option::Option<PathBuf>,

    /// Kubeconfig file (default: unset = in-cluster configuration; empty = in-cluster)
    #[arg(long, env = "KUBECONFIG", value_name = "FILE", default_value = "", hide_default_value = true,
          value_parser = parse_kubeconfig, help_heading = "Kubernetes")]
    pub kubeconfig: std::option::Option<PathBuf>,

    /// InfluxDB base URL, http:// or https:// with a host; empty disables InfluxDB (default
    /// http://influxdb.tbot-monitoring.svc.cluster.local:8086)
    #[arg(long, env = "INFLUX_URL", value_name = "URL",
          default_value = "http://influxdb.tbot-monitoring.svc.cluster.local:8086",
          value_parser = parse_optional_url, help_heading = "InfluxDB")]
    pub influx_url: std::option::Option<String>,

    /// InfluxDB 2 organisation (any text; default keti)
    #[arg(long, env = "INFLUX_ORG", default_value = "keti", help_heading = "InfluxDB")]
    pub influx_org: String,

    /// InfluxDB 2 bucket (any text; default turtlebot)
    #[arg(long, env = "INFLUX_BUCKET", default_value = "turtlebot", help_heading = "InfluxDB")]
    pub influx_bucket: String,

    /// InfluxDB 2 API token, normally from a Secret (default: unset = no Authorization header)
    #[arg(long, env = "INFLUX_TOKEN", value_name = "TOKEN", hide_env_values = true, default_value = "",
          hide_default_value = true, value_parser = parse_optional_text, help_heading = "InfluxDB")]
    pub influx_token: std::option::Option<String>,

    /// InfluxDB 1.x database; when set, points go to the 1.x write API instead of the 2.x one
    /// (default: unset = InfluxDB 2)
    #[arg(long, env = "INFLUX_DATABASE", value_name = "NAME", default_value = "", hide_default_value = true,
          value_parser = parse_optional_text, help_heading = "InfluxDB")]
    pub influx_database: std::option::Option<String>,

    /// Remote policy engine, http:// or https:// URL with a host; empty = built-in policy only (default
    /// http://policy-engine.orchestration-engines.svc.cluster.local:8080)
    #[arg(long, env = "POLICY_ENGINE_URL", value_name = "URL",
          default_value = "http://policy-engine.orchestration-engines.svc.cluster.local:8080",
          value_parser = parse_optional_url, help_heading = "Engines")]
    pub policy_engine_url: std::option::Option<String>,

    /// Analysis engine, http:// or https:// URL with a host; empty = none (default
    /// http://analysis-engine.orchestration-engines.svc.cluster.local:8080)
    #[arg(long, env = "ANALYSIS_ENGINE_URL", value_name = "URL",
          default_value = "http://analysis-engine.orchestration-engines.svc.cluster.local:8080",
          value_parser = parse_optional_url, help_heading = "Engines")]
    pub analysis_engine_url: std::option::Option<String>,

    /// Seconds between rebalancer cycles (1 to 86400; default 30)
    #[arg(long, env = "MIGRATION_CHECK_INTERVAL", value_name = "SECONDS", default_value = "30",
          allow_negative_numbers = true,
          value_parser = |s: &str| MIGRATION_CHECK_INTERVAL.parse::<u64>(s), help_heading = "Rebalancer")]
    pub migration_check_interval: u64,

    /// A node is pressured when its CPU% or memory% is strictly above this (greater than 0 and at most 100;
    /// default 85)
    #[arg(long, env = "RESOURCE_PRESSURE_THRESHOLD", value_name = "PERCENT", default_value = "85",
          allow_negative_numbers = true,
          value_parser = |s: &str| RESOURCE_PRESSURE_THRESHOLD.parse(s), help_heading = "Rebalancer")]
    pub resource_pressure_threshold: f64,

    /// A target must stay this many percentage points below the threshold after a move (0 to 100 and
    /// smaller than RESOURCE_PRESSURE_THRESHOLD; default 10)
    #[arg(long, env = "HYSTERESIS", value_name = "POINTS", default_value = "10",
          allow_negative_numbers = true,
          value_parser = |s: &str| HYSTERESIS.parse(s), help_heading = "Rebalancer")]
    pub hysteresis: f64,

    /// What node pressure is measured from (usage, requests or auto; default auto)
    #[arg(
        long,
        env = "PRESSURE_BASIS",
        value_enum,
        ignore_case = true,
        default_value = "auto",
        help_heading = "Rebalancer"
    )]
    pub pressure_basis: PressureBasis,

    /// Checkpoint containers before moving them (true/false, 1/0, yes/no; default true)
    #[arg(long, env = "ENABLE_CHECKPOINTING", value_name = "BOOL", default_value = "true",
          action = clap::ArgAction::Set, value_parser = parse_bool, help_heading = "Migrations")]
    pub enable_checkpointing: bool,

    /// Run the autonomous rebalancer (true/false, 1/0, yes/no; default true)
    #[arg(long, env = "ENABLE_AUTO_MIGRATION", value_name = "BOOL", default_value = "true",
          action = clap::ArgAction::Set, value_parser = parse_bool, help_heading = "Rebalancer")]
    pub enable_auto_migration: bool,

    /// Plan and report without moving anything (true/false, 1/0, yes/no; default false)
    #[arg(long, env = "DRY_RUN", value_name = "BOOL", default_value = "false",
          action = clap::ArgAction::Set, value_parser = parse_bool, help_heading = "Rebalancer")]
    pub dry_run: bool,

    /// At most this many pods moved off one node per cycle (1 to 100; default 3)
    #[arg(long, env = "MAX_MIGRATIONS_PER_NODE", value_name = "COUNT", default_value = "3",
          allow_negative_numbers = true,
          value_parser = |s: &str| MAX_MIGRATIONS_PER_NODE.parse::<u32>(s), help_heading = "Rebalancer")]
    pub max_migrations_per_node: u32,

    /// At most this many migrations running cluster-wide (1 to 1000; default 5)
    #[arg(long, env = "MAX_CONCURRENT_MIGRATIONS", value_name = "COUNT", default_value = "5",
          allow_negative_numbers = true,
          value_parser = |s: &str| MAX_CONCURRENT_MIGRATIONS.parse::<u32>(s), help_heading = "Rebalancer")]
    pub max_concurrent_migrations: u32,

    /// Seconds before a moved pod may be moved again (0 to 604800; default 600)
    #[arg(long, env = "MIGRATION_COOLDOWN", value_name = "SECONDS", default_value = "600",
          allow_negative_numbers = true,
          value_parser = |s: &str| MIGRATION_COOLDOWN.parse::<u64>(s), help_heading = "Rebalancer")]
    pub migration_cooldown: u64,

    /// Namespaces the rebalancer never moves pods from: comma-separated DNS-1123 labels, empty = none
    /// (default kube-system)
    #[arg(long, env = "EXCLUDED_NAMESPACES", value_name = "NS[,NS...]", default_value = "kube-system",
          value_parser = parse_namespaces, help_heading = "Rebalancer")]
    pub excluded_namespaces: std::vec::Vec<String>,

    /// What decides when the policy engine cannot be reached or answers badly (builtin, allow or deny;
    /// default builtin)
    #[arg(
        long,
        env = "POLICY_FALLBACK",
        value_enum,
        ignore_case = true,
        default_value = "builtin",
        help_heading = "Engines"
    )]
    pub policy_fallback: PolicyFallback,

    /// Strategy of automatic migrations and of requests that name none (auto, surge, recreate, evict or pin;
    /// default auto)
    #[arg(
        long,
        env = "MIGRATION_STRATEGY",
        value_enum,
        ignore_case = true,
        default_value = "auto",
        help_heading = "Migrations"
    )]
    pub migration_strategy: StrategyChoice,

    /// Size of the volume that holds checkpoint archives, a Kubernetes quantity greater than 0 with an
    /// optional suffix Ki, Mi, Gi, Ti, Pi, Ei, k, M, G, T, P or E (default 1Gi)
    #[arg(long, env = "CHECKPOINT_PVC_SIZE", value_name = "QUANTITY", default_value = "1Gi",
          value_parser = parse_storage_quantity, help_heading = "Migrations")]
    pub checkpoint_pvc_size: String,

    /// Seconds to wait after a migration before its nodes count as settled (0 to 3600; default 30)
    #[arg(long, env = "POST_MIGRATION_SETTLE", value_name = "SECONDS", default_value = "30",
          allow_negative_numbers = true,
          value_parser = |s: &str| POST_MIGRATION_SETTLE.parse::<u64>(s), help_heading = "Migrations")]
    pub post_migration_settle: u64,

    /// Timeout in seconds of a migration job whose request gives none (1 to 86400; default 600)
    #[arg(long, env = "MIGRATION_TIMEOUT", value_name = "SECONDS", default_value = "600",
          allow_negative_numbers = true,
          value_parser = |s: &str| MIGRATION_TIMEOUT.parse::<u64>(s), help_heading = "Migrations")]
    pub migration_timeout: u64,

    /// Seconds running jobs get to finish on SIGTERM before they are cancelled and undone (0 to 3600;
    /// default 30)
    #[arg(long, env = "SHUTDOWN_GRACE", value_name = "SECONDS", default_value = "30",
          allow_negative_numbers = true,
          value_parser = |s: &str| SHUTDOWN_GRACE.parse::<u64>(s), help_heading = "Service")]
    pub shutdown_grace: u64,

    /// Elect a leader among the replicas on a Lease; only the leader runs migrations and the rebalancer
    /// (true/false, 1/0, yes/no; default true)
    #[arg(long, env = "LEADER_ELECTION", value_name = "BOOL", default_value = "true",
          action = clap::ArgAction::Set, value_parser = parse_bool, help_heading = "Replicas")]
    pub leader_election: bool,

    /// This replica's name in the leader election, from the Downward API (default: unset = the host name)
    #[arg(long, env = "POD_NAME", value_name = "NAME", default_value = "", hide_default_value = true,
          value_parser = parse_optional_text, help_heading = "Replicas")]
    pub identity: std::option::Option<String>,

    /// Namespace of the leader election Lease `sdi-migration` (a DNS-1123 label; default kube-system)
    #[arg(long, env = "LEASE_NAMESPACE", value_name = "NS", default_value = "kube-system",
          value_parser = parse_namespace, help_heading = "Replicas")]
    pub lease_namespace: String,

    /// Seconds a leader's Lease is valid after its last renewal; another replica may take it then
    /// (2 to 3600 and greater than RENEW_DEADLINE; default 15)
    #[arg(long, env = "LEASE_DURATION", value_name = "SECONDS", default_value = "15",
          allow_negative_numbers = true,
          value_parser = |s: &str| LEASE_DURATION.parse::<u64>(s), help_heading = "Replicas")]
    pub lease_duration: u64,

    /// Seconds a leader keeps acting without a successful renewal; then it stops writing (1 to 3600 and
    /// smaller than LEASE_DURATION; default 10)
    #[arg(long, env = "RENEW_DEADLINE", value_name = "SECONDS", default_value = "10",
          allow_negative_numbers = true,
          value_parser = |s: &str| RENEW_DEADLINE.parse::<u64>(s), help_heading = "Replicas")]
    pub renew_deadline: u64,

    /// Seconds between attempts to take or renew the Lease (1 to 3600 and smaller than RENEW_DEADLINE;
    /// default 2)
    #[arg(long, env = "RETRY_PERIOD", value_name = "SECONDS", default_value = "2",
          allow_negative_numbers = true,
          value_parser = |s: &str| RETRY_PERIOD.parse::<u64>(s), help_heading = "Replicas")]
    pub retry_period: u64,

    /// Seconds a finished PodMigration is kept before it is deleted (60 to 31536000; default 604800 = 7 days)
    #[arg(long, env = "MIGRATION_HISTORY_TTL", value_name = "SECONDS", default_value = "604800",
          allow_negative_numbers = true,
          value_parser = |s: &str| MIGRATION_HISTORY_TTL.parse::<u64>(s), help_heading = "Migrations")]
    pub migration_history_ttl: u64,

    /// At most this many finished PodMigrations are kept, the oldest deleted first (1 to 100000;
    /// default 1000)
    #[arg(long, env = "MIGRATION_HISTORY_MAX", value_name = "COUNT", default_value = "1000",
          allow_negative_numbers = true,
          value_parser = |s: &str| MIGRATION_HISTORY_MAX.parse::<u64>(s), help_heading = "Migrations")]
    pub migration_history_max: u64,

    /// Log format (text or json; default text)
    #[arg(long, env = "LOG_FORMAT", value_enum, ignore_case = true, default_value = "text", help_heading = "Service")]
    pub log_format: LogFormat,

    #[command(flatten)]
    pub checkpoint: crate::checkpoint::settings::CheckpointSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            port: 8080,
            listen: std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            auth_mode: crate::access::AuthMode::Kubernetes,
            auth_cache_ttl: 10,
            tls_cert_file: None,
            tls_key_file: None,
            tls_client_ca_file: None,
            kubeconfig: None,
            influx_url: Some("http://influxdb.tbot-monitoring.svc.cluster.local:8086".to_owned()),
            influx_org: "keti".to_owned(),
            influx_bucket: "turtlebot".to_owned(),
            influx_token: None,
            influx_database: None,
            policy_engine_url: Some("http://policy-engine.orchestration-engines.svc.cluster.local:8080".to_owned()),
            analysis_engine_url: Some("http://analysis-engine.orchestration-engines.svc.cluster.local:8080".to_owned()),
            migration_check_interval: 30,
            resource_pressure_threshold: 85.0,
            hysteresis: 10.0,
            pressure_basis: PressureBasis::Auto,
            enable_checkpointing: true,
            enable_auto_migration: true,
            dry_run: false,
            max_migrations_per_node: 3,
            max_concurrent_migrations: 5,
            migration_cooldown: 600,
            excluded_namespaces: vec!["kube-system".to_owned()],
            policy_fallback: PolicyFallback::Builtin,
            migration_strategy: StrategyChoice::Auto,
            checkpoint_pvc_size: "1Gi".to_owned(),
            post_migration_settle: 30,
            migration_timeout: 600,
            shutdown_grace: 30,
            leader_election: true,
            identity: None,
            lease_namespace: "kube-system".to_owned(),
            lease_duration: 15,
            renew_deadline: 10,
            retry_period: 2,
            migration_history_ttl: 604_800,
            migration_history_max: 1000,
            log_format: LogFormat::Text,
            checkpoint: Default::default(),
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field cannot be forgotten here.
        let Settings {
            port,
            listen,
            auth_mode,
            auth_cache_ttl,
            tls_cert_file,
            tls_key_file,
            tls_client_ca_file,
            kubeconfig,
            influx_url,
            influx_org,
            influx_bucket,
            influx_token,
            influx_database,
            policy_engine_url,
            analysis_engine_url,
            migration_check_interval,
            resource_pressure_threshold,
            hysteresis,
            pressure_basis,
            enable_checkpointing,
            enable_auto_migration,
            dry_run,
            max_migrations_per_node,
            max_concurrent_migrations,
            migration_cooldown,
            excluded_namespaces,
            policy_fallback,
            migration_strategy,
            checkpoint_pvc_size,
            post_migration_settle,
            migration_timeout,
            shutdown_grace,
            leader_election,
            identity,
            lease_namespace,
            lease_duration,
            renew_deadline,
            retry_period,
            migration_history_ttl,
            migration_history_max,
            log_format,
            checkpoint,
        } = self;
        f.debug_struct("Settings")
            .field("port", port)
            .field("listen", listen)
            .field("auth_mode", auth_mode)
            .field("auth_cache_ttl", auth_cache_ttl)
            .field("tls_cert_file", tls_cert_file)
            .field("tls_key_file", tls_key_file)
            .field("tls_client_ca_file", tls_client_ca_file)
            .field("kubeconfig", kubeconfig)
            .field("influx_url", influx_url)
            .field("influx_org", influx_org)
            .field("influx_bucket", influx_bucket)
            .field("influx_token", &influx_token.as_ref().map(|_| Redacted))
            .field("influx_database", influx_database)
            .field("policy_engine_url", policy_engine_url)
            .field("analysis_engine_url", analysis_engine_url)
            .field("migration_check_interval", migration_check_interval)
            .field("resource_pressure_threshold", resource_pressure_threshold)
            .field("hysteresis", hysteresis)
            .field("pressure_basis", pressure_basis)
            .field("enable_checkpointing", enable_checkpointing)
            .field("enable_auto_migration", enable_auto_migration)
            .field("dry_run", dry_run)
            .field("max_migrations_per_node", max_migrations_per_node)
            .field("max_concurrent_migrations", max_concurrent_migrations)
            .field("migration_cooldown", migration_cooldown)
            .field("excluded_namespaces", excluded_namespaces)
            .field("policy_fallback", policy_fallback)
            .field("migration_strategy", migration_strategy)
            .field("checkpoint_pvc_size", checkpoint_pvc_size)
            .field("post_migration_settle", post_migration_settle)
            .field("migration_timeout", migration_timeout)
            .field("shutdown_grace", shutdown_grace)
            .field("leader_election", leader_election)
            .field("identity", identity)
            .field("lease_namespace", lease_namespace)
            .field("lease_duration", lease_duration)
            .field("renew_deadline", renew_deadline)
            .field("retry_period", retry_period)
            .field("migration_history_ttl", migration_history_ttl)
            .field("migration_history_max", migration_history_max)
            .field("log_format", log_format)
            .field("checkpoint", checkpoint)
            .finish()
    }
}

/// Prints `<redacted>` in place of a secret.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Settings {
    /// Checks every value against its accepted range and the settings against each other
    /// (`HYSTERESIS` < `RESOURCE_PRESSURE_THRESHOLD`). Values parsed by clap already passed the
    /// per-variable checks; they are repeated here for settings built by hand. The error is one
    /// line naming the variable(s).
    pub fn validate(&self) -> Result<(), String> {
        PORT.check("PORT", self.port.into())?;
        AUTH_CACHE_TTL.check("AUTH_CACHE_TTL", self.auth_cache_ttl)?;
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err("TLS_CERT_FILE and TLS_KEY_FILE go together: set both to serve HTTPS, or neither".into());
        }
        if self.tls_client_ca_file.is_some() && self.tls_cert_file.is_none() {
            return Err("TLS_CLIENT_CA_FILE needs TLS: set TLS_CERT_FILE and TLS_KEY_FILE too".into());
        }
        self.checkpoint.registry()?;
        for (name, url) in [
            ("INFLUX_URL", &self.influx_url),
            ("POLICY_ENGINE_URL", &self.policy_engine_url),
            ("ANALYSIS_ENGINE_URL", &self.analysis_engine_url),
        ] {
            if let Some(url) = url {
                match parse_optional_url(url) {
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => return Err(format!("{name}={url:?}: {URL_EXPECTED}")),
                }
            }
        }
        MIGRATION_CHECK_INTERVAL.check("MIGRATION_CHECK_INTERVAL", self.migration_check_interval)?;
        RESOURCE_PRESSURE_THRESHOLD.check("RESOURCE_PRESSURE_THRESHOLD", self.resource_pressure_threshold)?;
        HYSTERESIS.check("HYSTERESIS", self.hysteresis)?;
        MAX_MIGRATIONS_PER_NODE.check("MAX_MIGRATIONS_PER_NODE", self.max_migrations_per_node.into())?;
        MAX_CONCURRENT_MIGRATIONS.check("MAX_CONCURRENT_MIGRATIONS", self.max_concurrent_migrations.into())?;
        MIGRATION_COOLDOWN.check("MIGRATION_COOLDOWN", self.migration_cooldown)?;
        if let Some(bad) = self.excluded_namespaces.iter().find(|ns| !is_dns1123_label(ns)) {
            return Err(format!("EXCLUDED_NAMESPACES={bad:?}: {NAMESPACES_EXPECTED}"));
        }
        if parse_storage_quantity(&self.checkpoint_pvc_size).is_err() {
            return Err(format!("CHECKPOINT_PVC_SIZE={:?}: {QUANTITY_EXPECTED}", self.checkpoint_pvc_size));
        }
        POST_MIGRATION_SETTLE.check("POST_MIGRATION_SETTLE", self.post_migration_settle)?;
        MIGRATION_TIMEOUT.check("MIGRATION_TIMEOUT", self.migration_timeout)?;
        SHUTDOWN_GRACE.check("SHUTDOWN_GRACE", self.shutdown_grace)?;
        LEASE_DURATION.check("LEASE_DURATION", self.lease_duration)?;
        RENEW_DEADLINE.check("RENEW_DEADLINE", self.renew_deadline)?;
        RETRY_PERIOD.check("RETRY_PERIOD", self.retry_period)?;
        MIGRATION_HISTORY_TTL.check("MIGRATION_HISTORY_TTL", self.migration_history_ttl)?;
        MIGRATION_HISTORY_MAX.check("MIGRATION_HISTORY_MAX", self.migration_history_max)?;
        if !is_dns1123_label(&self.lease_namespace) {
            return Err(format!("LEASE_NAMESPACE={:?}: {NAMESPACE_EXPECTED}", self.lease_namespace));
        }
        if !(self.retry_period < self.renew_deadline && self.renew_deadline < self.lease_duration) {
            return Err(format!(
                "RETRY_PERIOD={} < RENEW_DEADLINE={} < LEASE_DURATION={} must hold: a leader renews several times \
                 before it gives up, and gives up before another replica may take over",
                self.retry_period, self.renew_deadline, self.lease_duration
            ));
        }
        if self.hysteresis >= self.resource_pressure_threshold {
            return Err(format!(
                "HYSTERESIS={} must be smaller than RESOURCE_PRESSURE_THRESHOLD={}",
                self.hysteresis, self.resource_pressure_threshold
            ));
        }
        Ok(())
    }
}

/// `PRESSURE_BASIS`: what a node's CPU% and memory% are computed from (SPEC section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PressureBasis {
    /// Measured usage from metrics.k8s.io
    Usage,
    /// Sum of container requests of the node's non-terminated pods
    Requests,
    /// Usage when the metrics API answers, else requests
    Auto,
}

impl PressureBasis {
    pub fn as_str(&self) -> &'static str {
        match self {
            PressureBasis::Usage => "usage",
            PressureBasis::Requests => "requests",
            PressureBasis::Auto => "auto",
        }
    }
}

/// `POLICY_FALLBACK`: what decides when the remote policy engine cannot be reached or answers
/// badly (SPEC section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyFallback {
    /// The built-in MALE policy
    Builtin,
    /// Allow the migration (the original's behaviour)
    Allow,
    /// Deny the migration
    Deny,
}

impl PolicyFallback {
    pub fn as_str(&self) -> &'static str {
        match self {
            PolicyFallback::Builtin => "builtin",
            PolicyFallback::Allow => "allow",
            PolicyFallback::Deny => "deny",
        }
    }
}

/// `MIGRATION_STRATEGY`: `auto` picks the strategy from the pod's owner; the others force one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StrategyChoice {
    /// Chosen from the pod's owner (bare pod: recreate, ReplicaSet: surge, other controllers: evict)
    Auto,
    /// Start a replacement first, retire the original once it is Ready
    Surge,
    /// Copy the pod to the target, delete the original after the copy is Ready
    Recreate,
    /// Evict the pod and let its controller recreate it on the target
    Evict,
    /// Pin the workload's pod template to the target node
    Pin,
}

impl StrategyChoice {
    pub fn as_str(&self) -> &'static str {
        match self {
            StrategyChoice::Auto => "auto",
            StrategyChoice::Surge => "surge",
            StrategyChoice::Recreate => "recreate",
            StrategyChoice::Evict => "evict",
            StrategyChoice::Pin => "pin",
        }
    }

    /// The strategy this choice forces, or `None` for `auto`.
    pub fn forced(&self) -> Option<sdi_core::strategy::Strategy> {
        use sdi_core::strategy::Strategy;
        match self {
            StrategyChoice::Auto => None,
            StrategyChoice::Surge => Some(Strategy::Surge),
            StrategyChoice::Recreate => Some(Strategy::Recreate),
            StrategyChoice::Evict => Some(Strategy::Evict),
            StrategyChoice::Pin => Some(Strategy::Pin),
        }
    }
}

impl From<sdi_core::strategy::Strategy> for StrategyChoice {
    fn from(s: sdi_core::strategy::Strategy) -> Self {
        use sdi_core::strategy::Strategy;
        match s {
            Strategy::Surge => StrategyChoice::Surge,
            Strategy::Recreate => StrategyChoice::Recreate,
            Strategy::Evict => StrategyChoice::Evict,
            Strategy::Pin => StrategyChoice::Pin,
        }
    }
}

/// `LOG_FORMAT`: human-readable or JSON logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines
    Text,
    /// One JSON object per line
    Json,
}

impl LogFormat {
    pub fn as_str(&self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}
display_as_str!(PressureBasis, PolicyFallback, StrategyChoice, LogFormat);

/// What [`parse_from`] returns instead of a [`Cli`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseOutcome {
    /// --help / --version: print this text to stdout and exit 0
    Display(String),
    /// a bad value or usage error: print "error: {0}" as one line to stderr, exit 2
    Invalid(String),
}

impl ParseOutcome {
    /// 0 for [`ParseOutcome::Display`], 2 for [`ParseOutcome::Invalid`].
    pub fn exit_code(&self) -> i32 {
        match self {
            ParseOutcome::Display(_) => 0,
            ParseOutcome::Invalid(_) => 2,
        }
    }

    /// Prints the text where it belongs (stdout, or "error: …" on stderr) and exits.
    pub fn exit(self) -> ! {
        let code = self.exit_code();
        match self {
            ParseOutcome::Display(text) => print!("{text}"),
            ParseOutcome::Invalid(message) => eprintln!("error: {message}"),
        }
        std::process::exit(code)
    }
}

impl fmt::Display for ParseOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseOutcome::Display(text) => f.write_str(text),
            ParseOutcome::Invalid(message) => write!(f, "error: {message}"),
        }
    }
}

/// [`parse_from`] over the process's own arguments.
pub fn parse() -> Result<Cli, ParseOutcome> {
    parse_from(std::env::args_os())
}

/// Parse the command line and environment; on a bad value return the one-line message (without the "error: " prefix).
pub fn parse_from<I, T>(args: I) -> Result<Cli, ParseOutcome>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = Cli::try_parse_from(args).map_err(outcome_of)?;
    cli.settings().validate().map_err(ParseOutcome::Invalid)?;
    if let Command::Agent(agent) = &cli.command {
        agent.validate().map_err(ParseOutcome::Invalid)?;
    }
    Ok(cli)
}

/// Turns a clap error into help/version text or the one-line message.
fn outcome_of(err: clap::Error) -> ParseOutcome {
    use clap::error::{ContextKind, ContextValue, ErrorKind};

    let context_string = |kind| match err.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ParseOutcome::Display(err.render().to_string()),
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let commands: Vec<String> = Cli::command()
                .get_subcommands()
                .map(|c| c.get_name().to_owned())
                .filter(|name| name != "help")
                .collect();
            ParseOutcome::Invalid(format!(
                "a command is required: one of {} (see sdi-migration --help)",
                commands.join(", ")
            ))
        }
        ErrorKind::ValueValidation => {
            let (Some(arg), Some(value)) =
                (context_string(ContextKind::InvalidArg), context_string(ContextKind::InvalidValue))
            else {
                return ParseOutcome::Invalid(first_line(&err));
            };
            let reason = std::error::Error::source(&err)
                .map(|source| one_line(&source.to_string()))
                .unwrap_or_else(|| "invalid value".to_owned());
            ParseOutcome::Invalid(format!("{}={value:?}: {reason}", variable_name(&arg)))
        }
        ErrorKind::InvalidValue => {
            let (Some(arg), Some(value)) =
                (context_string(ContextKind::InvalidArg), context_string(ContextKind::InvalidValue))
            else {
                return ParseOutcome::Invalid(first_line(&err));
            };
            let valid = match err.get(ContextKind::ValidValue) {
                Some(ContextValue::Strings(values)) => values.clone(),
                _ => Vec::new(),
            };
            if valid.is_empty() {
                // A flag given without its value.
                ParseOutcome::Invalid(first_line(&err))
            } else {
                ParseOutcome::Invalid(format!(
                    "{}={value:?}: expected one of {}",
                    variable_name(&arg),
                    valid.join(", ")
                ))
            }
        }
        _ => ParseOutcome::Invalid(first_line(&err)),
    }
}

/// The first line of clap's rendering of `err`, without its "error: " prefix.
fn first_line(err: &clap::Error) -> String {
    let rendered = err.render().to_string();
    let line = rendered.lines().map(str::trim).find(|line| !line.is_empty()).unwrap_or("invalid arguments");
    line.strip_prefix("error:").map(str::trim_start).unwrap_or(line).to_owned()
}

/// Collapses a message to one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The name the user knows an argument by, from clap's rendering of it ("--port <PORT>"): its
/// environment variable when it has one, else its flag.
fn variable_name(arg: &str) -> String {
    let Some(long) = arg.strip_prefix("--") else {
        return arg.to_owned();
    };
    let long = long.split([' ', '=', '<']).next().unwrap_or(long);
    match find_arg(&Cli::command(), long) {
        Some(found) => match found.get_env() {
            Some(env) => env.to_string_lossy().into_owned(),
            None => format!("--{long}"),
        },
        None => long.to_uppercase().replace('-', "_"),
    }
}

/// The argument with this long flag, in `cmd` or any of its subcommands.
fn find_arg(cmd: &clap::Command, long: &str) -> Option<clap::Arg> {
    cmd.get_arguments()
        .find(|a| a.get_long() == Some(long))
        .cloned()
        .or_else(|| cmd.get_subcommands().find_map(|sub| find_arg(sub, long)))
}

// ---------------------------------------------------------------------------------------------
// Accepted ranges and the value parsers built on them.

/// A whole number from `min` to `max`.
#[derive(Clone, Copy)]
struct WholeRange {
    min: u64,
    max: u64,
    /// What the number is, e.g. "a whole number of seconds".
    noun: &'static str,
    /// Appended to the message, e.g. " (0 = any free port)".
    note: &'static str,
}

impl WholeRange {
    fn expected(&self) -> String {
        format!("expected {} from {} to {}{}", self.noun, self.min, self.max, self.note)
    }

    fn parse<T: TryFrom<u64>>(&self, text: &str) -> Result<T, String> {
        match text.trim().parse::<u64>() {
            Ok(v) if (self.min..=self.max).contains(&v) => T::try_from(v).map_err(|_| self.expected()),
            _ => Err(self.expected()),
        }
    }

    fn check(&self, name: &str, value: u64) -> Result<(), String> {
        if (self.min..=self.max).contains(&value) {
            Ok(())
        } else {
            Err(format!("{name}={value}: {}", self.expected()))
        }
    }
}

/// A finite number above (or from) `min` and at most `max`.
#[derive(Clone, Copy)]
struct RealRange {
    min: f64,
    min_inclusive: bool,
    max: f64,
}

impl RealRange {
    fn expected(&self) -> String {
        if self.min_inclusive {
            format!("expected a number from {} to {}", self.min, self.max)
        } else {
            format!("expected a number greater than {} and at most {}", self.min, self.max)
        }
    }

    fn contains(&self, v: f64) -> bool {
        v.is_finite() && (if self.min_inclusive { v >= self.min } else { v > self.min }) && v <= self.max
    }

    fn parse(&self, text: &str) -> Result<f64, String> {
        match text.trim().parse::<f64>() {
            Ok(v) if self.contains(v) => Ok(v),
            _ => Err(self.expected()),
        }
    }

    fn check(&self, name: &str, value: f64) -> Result<(), String> {
        if self.contains(value) { Ok(()) } else { Err(format!("{name}={value}: {}", self.expected())) }
    }
}

const SECONDS: &str = "a whole number of seconds";
const WHOLE: &str = "a whole number";

const PORT: WholeRange = WholeRange { min: 0, max: 65535, noun: "a port number", note: " (0 = any free port)" };
const MIGRATION_CHECK_INTERVAL: WholeRange = WholeRange { min: 1, max: 86_400, noun: SECONDS, note: "" };
const MAX_MIGRATIONS_PER_NODE: WholeRange = WholeRange { min: 1, max: 100, noun: WHOLE, note: "" };
const MAX_CONCURRENT_MIGRATIONS: WholeRange = WholeRange { min: 1, max: 1000, noun: WHOLE, note: "" };
const MIGRATION_COOLDOWN: WholeRange = WholeRange { min: 0, max: 604_800, noun: SECONDS, note: "" };
const POST_MIGRATION_SETTLE: WholeRange = WholeRange { min: 0, max: 3600, noun: SECONDS, note: "" };
const MIGRATION_TIMEOUT: WholeRange = WholeRange { min: 1, max: 86_400, noun: SECONDS, note: "" };
const SHUTDOWN_GRACE: WholeRange = WholeRange { min: 0, max: 3600, noun: SECONDS, note: "" };
const LEASE_DURATION: WholeRange = WholeRange { min: 2, max: 3600, noun: SECONDS, note: "" };
const RENEW_DEADLINE: WholeRange = WholeRange { min: 1, max: 3600, noun: SECONDS, note: "" };
const RETRY_PERIOD: WholeRange = WholeRange { min: 1, max: 3600, noun: SECONDS, note: "" };
const MIGRATION_HISTORY_TTL: WholeRange = WholeRange { min: 60, max: 31_536_000, noun: SECONDS, note: "" };
const MIGRATION_HISTORY_MAX: WholeRange = WholeRange { min: 1, max: 100_000, noun: WHOLE, note: "" };
const AUTH_CACHE_TTL: WholeRange = WholeRange { min: 0, max: 300, noun: SECONDS, note: "" };
const DEMO_DURATION: WholeRange = WholeRange { min: 1, max: 31_536_000, noun: SECONDS, note: "" };

const RESOURCE_PRESSURE_THRESHOLD: RealRange = RealRange { min: 0.0, min_inclusive: false, max: 100.0 };
const HYSTERESIS: RealRange = RealRange { min: 0.0, min_inclusive: true, max: 100.0 };
const SPEED: RealRange = RealRange { min: 0.0, min_inclusive: false, max: 1000.0 };

const NAMESPACE_EXPECTED: &str =
    "expected a namespace name (a DNS-1123 label: at most 63 lowercase letters, digits and '-')";
const URL_EXPECTED: &str = "expected an http:// or https:// URL with a host";
const BOOL_EXPECTED: &str = "expected true or false (also 1/0, yes/no)";
const NAMESPACES_EXPECTED: &str = "expected comma-separated namespace names (DNS-1123 labels: at most 63 lowercase \
letters, digits and '-', starting and ending with a letter or digit)";
const QUANTITY_EXPECTED: &str = "expected a Kubernetes storage quantity greater than 0, e.g. 1Gi or 500Mi \
(digits with an optional decimal part and an optional suffix Ki, Mi, Gi, Ti, Pi, Ei, k, M, G, T, P or E)";

/// true/false, 1/0, yes/no, any case.
fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(BOOL_EXPECTED.to_owned()),
    }
}

/// Empty (or blank) = `None`; anything else is kept as given.
fn parse_optional_text(text: &str) -> Result<Option<String>, String> {
    Ok(if text.trim().is_empty() { None } else { Some(text.to_owned()) })
}

/// An IP address to listen on (`0.0.0.0`, `127.0.0.1`, `::`, `[::1]`).
fn parse_listen(text: &str) -> Result<std::net::IpAddr, String> {
    let t = text.trim();
    let t = t.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(t);
    t.parse().map_err(|_| {
        "expected an IP address such as 0.0.0.0 (every interface), 127.0.0.1 (this host only) or ::".to_owned()
    })
}

/// Empty (or blank) = in-cluster configuration.
fn parse_kubeconfig(text: &str) -> Result<Option<PathBuf>, String> {
    Ok(if text.trim().is_empty() { None } else { Some(PathBuf::from(text)) })
}

/// Empty = `None`; otherwise an http:// or https:// URL with a host, kept without trailing slashes.
fn parse_optional_url(text: &str) -> Result<Option<String>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if is_http_url(text) { Ok(Some(text.trim_end_matches('/').to_owned())) } else { Err(URL_EXPECTED.to_owned()) }
}

fn is_http_url(text: &str) -> bool {
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((scheme, rest)) = text.split_once("://") else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return false;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        // IPv6 literal: [addr] or [addr]:port
        let Some((addr, after)) = bracketed.split_once(']') else {
            return false;
        };
        if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.') {
            return false;
        }
        match after {
            "" => (addr, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (addr, Some(port)),
                None => return false,
            },
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => {
                if !is_host_name(host) {
                    return false;
                }
                (host, Some(port))
            }
            None => {
                if !is_host_name(host_port) {
                    return false;
                }
                (host_port, None)
            }
        }
    };
    if host.is_empty() {
        return false;
    }
    match port {
        None => true,
        Some(port) => !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok(),
    }
}

/// A DNS name or IPv4 address: letters, digits, '-', '_' and '.', not starting or ending with '.'.
fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && !host.starts_with('.')
        && !host.ends_with('.')
        && !host.contains("..")
        && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// Comma-separated DNS-1123 labels; blanks around names and empty items are ignored.
fn parse_namespaces(text: &str) -> Result<Vec<String>, String> {
    let mut namespaces: Vec<String> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        if !is_dns1123_label(item) {
            return Err(format!("{NAMESPACES_EXPECTED}; {item:?} is not one"));
        }
        if !namespaces.iter().any(|ns| ns == item) {
            namespaces.push(item.to_owned());
        }
    }
    Ok(namespaces)
}

/// At most 63 characters of lowercase letters, digits and '-', starting and ending with a
/// letter or digit.
fn parse_namespace(text: &str) -> Result<String, String> {
    let t = text.trim();
    if is_dns1123_label(t) { Ok(t.to_string()) } else { Err(NAMESPACE_EXPECTED.to_string()) }
}

fn is_dns1123_label(text: &str) -> bool {
    let bytes = text.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            bytes.len() <= 63
                && (first.is_ascii_lowercase() || first.is_ascii_digit())
                && (last.is_ascii_lowercase() || last.is_ascii_digit())
                && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        }
        _ => false,
    }
}

/// Digits with an optional decimal part and an optional binary or decimal suffix, above zero.
fn parse_storage_quantity(text: &str) -> Result<String, String> {
    let text = text.trim();
    const SUFFIXES: [&str; 12] = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E"];
    let number = SUFFIXES.iter().find_map(|suffix| text.strip_suffix(suffix)).unwrap_or(text);
    let (whole, fraction) = match number.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (number, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let well_formed = digits(whole) && fraction.is_none_or(digits);
    let positive = number.bytes().any(|b| (b'1'..=b'9').contains(&b));
    if well_formed && positive { Ok(text.to_owned()) } else { Err(QUANTITY_EXPECTED.to_owned()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `sdi-migration run <flags>`.
    fn run(flags: &[&str]) -> Result<Settings, ParseOutcome> {
        let args = ["sdi-migration", "run"].iter().chain(flags.iter()).copied();
        parse_from(args).map(|cli| match cli.command {
            Command::Run(settings) => settings,
            Command::Demo(_) | Command::Agent(_) => panic!("parsed as another command"),
        })
    }

    fn invalid(flags: &[&str]) -> String {
        match run(flags) {
            Err(ParseOutcome::Invalid(message)) => message,
            other => panic!("{flags:?} was not rejected: {other:?}"),
        }
    }

    const ALL_VARIABLES: [&str; 27] = [
        "PORT",
        "KUBECONFIG",
        "INFLUX_URL",
        "INFLUX_ORG",
        "INFLUX_BUCKET",
        "INFLUX_TOKEN",
        "INFLUX_DATABASE",
        "POLICY_ENGINE_URL",
        "ANALYSIS_ENGINE_URL",
        "MIGRATION_CHECK_INTERVAL",
        "RESOURCE_PRESSURE_THRESHOLD",
        "HYSTERESIS",
        "PRESSURE_BASIS",
        "ENABLE_CHECKPOINTING",
        "ENABLE_AUTO_MIGRATION",
        "DRY_RUN",
        "MAX_MIGRATIONS_PER_NODE",
        "MAX_CONCURRENT_MIGRATIONS",
        "MIGRATION_COOLDOWN",
        "EXCLUDED_NAMESPACES",
        "POLICY_FALLBACK",
        "MIGRATION_STRATEGY",
        "CHECKPOINT_PVC_SIZE",
        "POST_MIGRATION_SETTLE",
        "MIGRATION_TIMEOUT",
        "SHUTDOWN_GRACE",
        "LOG_FORMAT",
    ];

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Settings::default().validate(), Ok(()));
        assert_eq!(DemoArgs::default().settings, Settings::default());
    }

    #[test]
    fn parsed_defaults_match_default_impl() {
        // Only meaningful when none of the variables is set in this process's environment.
        if ALL_VARIABLES.iter().any(|name| std::env::var_os(name).is_some()) {
            return;
        }
        assert_eq!(run(&[]).unwrap(), Settings::default());
        let cli = parse_from(["sdi-migration", "demo"]).unwrap();
        match cli.command {
            Command::Demo(demo) => assert_eq!(demo, DemoArgs::default()),
            Command::Run(_) | Command::Agent(_) => panic!("parsed as another command"),
        }
    }

    #[test]
    fn flags_override_defaults() {
        let s = run(&[
            "--port",
            "0",
            "--kubeconfig",
            "/tmp/kc",
            "--influx-token",
            "t0ken",
            "--influx-database",
            "metrics",
            "--migration-check-interval",
            "5",
            "--resource-pressure-threshold",
            "90.5",
            "--hysteresis",
            "0",
            "--pressure-basis",
            "REQUESTS",
            "--max-migrations-per-node",
            "100",
            "--max-concurrent-migrations",
            "1000",
            "--migration-cooldown",
            "0",
            "--policy-fallback",
            "deny",
            "--migration-strategy",
            "pin",
            "--checkpoint-pvc-size",
            "2.5Gi",
            "--post-migration-settle",
            "3600",
            "--migration-timeout",
            "86400",
            "--shutdown-grace",
            "0",
            "--log-format",
            "json",
        ])
        .unwrap();
        assert_eq!(s.port, 0);
        assert_eq!(s.kubeconfig, Some(PathBuf::from("/tmp/kc")));
        assert_eq!(s.influx_token.as_deref(), Some("t0ken"));
        assert_eq!(s.influx_database.as_deref(), Some("metrics"));
        assert_eq!(s.migration_check_interval, 5);
        assert_eq!(s.resource_pressure_threshold, 90.5);
        assert_eq!(s.hysteresis, 0.0);
        assert_eq!(s.pressure_basis, PressureBasis::Requests);
        assert_eq!(s.max_migrations_per_node, 100);
        assert_eq!(s.max_concurrent_migrations, 1000);
        assert_eq!(s.migration_cooldown, 0);
        assert_eq!(s.policy_fallback, PolicyFallback::Deny);
        assert_eq!(s.migration_strategy, StrategyChoice::Pin);
        assert_eq!(s.checkpoint_pvc_size, "2.5Gi");
        assert_eq!(s.post_migration_settle, 3600);
        assert_eq!(s.migration_timeout, 86400);
        assert_eq!(s.shutdown_grace, 0);
        assert_eq!(s.log_format, LogFormat::Json);
    }

    #[test]
    fn whole_numbers_reject_out_of_range_and_garbage() {
        let cases: [(&str, &str, &[&str]); 9] = [
            ("port", "expected a port number from 0 to 65535 (0 = any free port)", &["65536", "-1", "http", "8080.5"]),
            ("migration-check-interval", "expected a whole number of seconds from 1 to 86400", &["0", "86401", "abc"]),
            ("max-migrations-per-node", "expected a whole number from 1 to 100", &["0", "101", "three"]),
            ("max-concurrent-migrations", "expected a whole number from 1 to 1000", &["0", "1001", "5x"]),
            ("migration-cooldown", "expected a whole number of seconds from 0 to 604800", &["604801", "-5", "10m"]),
            ("post-migration-settle", "expected a whole number of seconds from 0 to 3600", &["3601", "abc", ""]),
            ("migration-timeout", "expected a whole number of seconds from 1 to 86400", &["0", "86401", "1h"]),
            ("shutdown-grace", "expected a whole number of seconds from 0 to 3600", &["3601", "x", "1e3"]),
            ("max-concurrent-migrations", "expected a whole number from 1 to 1000", &["99999999999999999999999", " "]),
        ];
        for (flag, expected, bad_values) in cases {
            let variable = flag.to_uppercase().replace('-', "_");
            for bad in bad_values {
                let message = invalid(&[&format!("--{flag}"), bad]);
                assert_eq!(message, format!("{variable}={bad:?}: {expected}"), "--{flag} {bad}");
            }
        }
    }

    #[test]
    fn numbers_accept_their_bounds() {
        for (flag, good) in [
            ("port", "65535"),
            ("migration-check-interval", "1"),
            ("migration-check-interval", "86400"),
            ("max-migrations-per-node", "1"),
            ("migration-cooldown", "604800"),
            ("resource-pressure-threshold", "100"),
            ("resource-pressure-threshold", "0.5"),
            ("post-migration-settle", "0"),
        ] {
            assert!(run(&[&format!("--{flag}"), good, "--hysteresis", "0"]).is_ok(), "--{flag} {good}");
        }
        assert_eq!(run(&["--port", " 9090 "]).unwrap().port, 9090);
    }

    #[test]
    fn threshold_messages() {
        let expected = "expected a number greater than 0 and at most 100";
        for bad in ["abc", "150", "0", "-1", "NaN", "inf", "100.01", ""] {
            assert_eq!(
                invalid(&["--resource-pressure-threshold", bad]),
                format!("RESOURCE_PRESSURE_THRESHOLD={bad:?}: {expected}")
            );
        }
        assert_eq!(
            invalid(&["--resource-pressure-threshold", "abc"]),
            r#"RESOURCE_PRESSURE_THRESHOLD="abc": expected a number greater than 0 and at most 100"#
        );
        assert_eq!(
            invalid(&["--resource-pressure-threshold=150"]),
            r#"RESOURCE_PRESSURE_THRESHOLD="150": expected a number greater than 0 and at most 100"#
        );
    }

    #[test]
    fn hysteresis_range_and_cross_check() {
        for bad in ["-0.1", "100.5", "ten"] {
            assert_eq!(invalid(&["--hysteresis", bad]), format!("HYSTERESIS={bad:?}: expected a number from 0 to 100"));
        }
        assert_eq!(
            invalid(&["--hysteresis", "90"]),
            "HYSTERESIS=90 must be smaller than RESOURCE_PRESSURE_THRESHOLD=85"
        );
        assert_eq!(
            invalid(&["--hysteresis", "50", "--resource-pressure-threshold", "50"]),
            "HYSTERESIS=50 must be smaller than RESOURCE_PRESSURE_THRESHOLD=50"
        );
        assert_eq!(
            invalid(&["--hysteresis", "2.5", "--resource-pressure-threshold", "2"]),
            "HYSTERESIS=2.5 must be smaller than RESOURCE_PRESSURE_THRESHOLD=2"
        );
        assert!(run(&["--hysteresis", "49.9", "--resource-pressure-threshold", "50"]).is_ok());
        // The same check applies under `demo`.
        match parse_from(["sdi-migration", "demo", "--hysteresis", "95"]) {
            Err(ParseOutcome::Invalid(m)) => {
                assert_eq!(m, "HYSTERESIS=95 must be smaller than RESOURCE_PRESSURE_THRESHOLD=85")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn validate_checks_hand_built_settings() {
        let mut s = Settings { hysteresis: 85.0, ..Settings::default() };
        assert_eq!(s.validate(), Err("HYSTERESIS=85 must be smaller than RESOURCE_PRESSURE_THRESHOLD=85".to_owned()));
        s.hysteresis = 10.0;
        s.migration_check_interval = 0;
        assert_eq!(
            s.validate(),
            Err("MIGRATION_CHECK_INTERVAL=0: expected a whole number of seconds from 1 to 86400".to_owned())
        );
        let s = Settings { influx_url: Some("ftp://x".to_owned()), ..Settings::default() };
        assert_eq!(s.validate(), Err(format!("INFLUX_URL=\"ftp://x\": {URL_EXPECTED}")));
        let s = Settings { excluded_namespaces: vec!["Bad".to_owned()], ..Settings::default() };
        assert!(s.validate().unwrap_err().starts_with("EXCLUDED_NAMESPACES=\"Bad\": "));
        let s = Settings { checkpoint_pvc_size: "0Gi".to_owned(), ..Settings::default() };
        assert!(s.validate().unwrap_err().starts_with("CHECKPOINT_PVC_SIZE=\"0Gi\": "));
        let s = Settings { resource_pressure_threshold: f64::NAN, ..Settings::default() };
        assert!(s.validate().unwrap_err().starts_with("RESOURCE_PRESSURE_THRESHOLD=NaN: "));
    }

    #[test]
    fn bools() {
        for (text, value) in [
            ("true", true),
            ("TRUE", true),
            ("1", true),
            ("yes", true),
            ("Yes", true),
            ("false", false),
            ("False", false),
            ("0", false),
            ("no", false),
            ("NO", false),
        ] {
            assert_eq!(parse_bool(text), Ok(value), "{text}");
            let s = run(&["--enable-checkpointing", text, "--enable-auto-migration", text, "--dry-run", text]).unwrap();
            assert_eq!((s.enable_checkpointing, s.enable_auto_migration, s.dry_run), (value, value, value));
        }
        assert!(!run(&["--enable-checkpointing=false"]).unwrap().enable_checkpointing);
        for (flag, variable) in [
            ("--enable-checkpointing", "ENABLE_CHECKPOINTING"),
            ("--enable-auto-migration", "ENABLE_AUTO_MIGRATION"),
            ("--dry-run", "DRY_RUN"),
        ] {
            for bad in ["maybe", "2", "", "y"] {
                assert_eq!(invalid(&[flag, bad]), format!("{variable}={bad:?}: {BOOL_EXPECTED}"));
            }
        }
    }

    #[test]
    fn excluded_namespaces_list() {
        assert_eq!(run(&["--excluded-namespaces", "a,b-2, c "]).unwrap().excluded_namespaces, ["a", "b-2", "c"]);
        assert_eq!(
            run(&["--excluded-namespaces", "kube-system,kube-system"]).unwrap().excluded_namespaces,
            ["kube-system"]
        );
        assert!(run(&["--excluded-namespaces", ""]).unwrap().excluded_namespaces.is_empty());
        assert!(run(&["--excluded-namespaces", " , "]).unwrap().excluded_namespaces.is_empty());
        let long = "a".repeat(64);
        for bad in ["kube-system,Bad_NS", "-a", "a-", "UPPER", "a.b", long.as_str()] {
            let message = invalid(&[&format!("--excluded-namespaces={bad}")]);
            assert!(
                message.starts_with(&format!("EXCLUDED_NAMESPACES={bad:?}: expected comma-separated")),
                "{message}"
            );
            assert!(!message.contains('\n'));
        }
        assert!(
            invalid(&["--excluded-namespaces", "ok,Bad_NS"]).ends_with("; \"Bad_NS\" is not one"),
            "the message names the bad item"
        );
        assert!(run(&["--excluded-namespaces", &"a".repeat(63)]).is_ok());
    }

    #[test]
    fn urls() {
        for (text, stored) in [
            ("http://influx:8086", "http://influx:8086"),
            ("https://influx.example.com/", "https://influx.example.com"),
            ("HTTP://10.0.0.1:8086//", "HTTP://10.0.0.1:8086"),
            ("http://[::1]:8086/base", "http://[::1]:8086/base"),
            ("http://user:pw@host/x?y=1", "http://user:pw@host/x?y=1"),
            (" http://host ", "http://host"),
        ] {
            assert_eq!(parse_optional_url(text), Ok(Some(stored.to_owned())), "{text}");
        }
        for bad in [
            "not a url",
            "influx:8086",
            "ftp://host",
            "http://",
            "http:///path",
            "http://:8086",
            "http://host:port",
            "http://host:99999",
            "http://ho st",
            "http://[::1",
            "http://.host",
        ] {
            assert_eq!(parse_optional_url(bad), Err(URL_EXPECTED.to_owned()), "{bad}");
        }
        assert_eq!(
            invalid(&["--influx-url", "not a url"]),
            r#"INFLUX_URL="not a url": expected an http:// or https:// URL with a host"#
        );
        assert_eq!(invalid(&["--policy-engine-url", "x"]), format!("POLICY_ENGINE_URL=\"x\": {URL_EXPECTED}"));
        assert_eq!(invalid(&["--analysis-engine-url", "x"]), format!("ANALYSIS_ENGINE_URL=\"x\": {URL_EXPECTED}"));
        let s = run(&["--influx-url", "", "--policy-engine-url", "", "--analysis-engine-url", "https://a/"]).unwrap();
        assert_eq!(s.influx_url, None);
        assert_eq!(s.policy_engine_url, None);
        assert_eq!(s.analysis_engine_url.as_deref(), Some("https://a"));
    }

    #[test]
    fn empty_optionals_are_none() {
        let s = run(&["--kubeconfig", "", "--influx-token", "", "--influx-database", ""]).unwrap();
        assert_eq!((s.kubeconfig, s.influx_token, s.influx_database), (None, None, None));
    }

    #[test]
    fn storage_quantities() {
        for good in ["1Gi", "500Mi", "1", "0.5Gi", "10G", "1k", "2Ei", "1.25Ti", "007"] {
            assert_eq!(parse_storage_quantity(good), Ok(good.to_owned()), "{good}");
        }
        for bad in ["", "0", "0Gi", "0.0Mi", "Gi", "1GB", "1gi", "-1Gi", "1.Gi", ".5Gi", "1 Gi", "1e3", "1Ki2", "abc"] {
            assert_eq!(parse_storage_quantity(bad), Err(QUANTITY_EXPECTED.to_owned()), "{bad}");
        }
        assert_eq!(
            invalid(&["--checkpoint-pvc-size", "1GB"]),
            format!("CHECKPOINT_PVC_SIZE=\"1GB\": {QUANTITY_EXPECTED}")
        );
    }

    #[test]
    fn enums() {
        assert_eq!(
            invalid(&["--pressure-basis", "load"]),
            r#"PRESSURE_BASIS="load": expected one of usage, requests, auto"#
        );
        assert_eq!(
            invalid(&["--policy-fallback", "x"]),
            r#"POLICY_FALLBACK="x": expected one of builtin, allow, deny"#
        );
        assert_eq!(
            invalid(&["--migration-strategy", "move"]),
            r#"MIGRATION_STRATEGY="move": expected one of auto, surge, recreate, evict, pin"#
        );
        assert_eq!(invalid(&["--log-format", "xml"]), r#"LOG_FORMAT="xml": expected one of text, json"#);
        assert_eq!(invalid(&["--log-format", ""]), r#"LOG_FORMAT="": expected one of text, json"#);
        assert_eq!(run(&["--log-format", "JSON"]).unwrap().log_format, LogFormat::Json);

        for choice in [
            StrategyChoice::Auto,
            StrategyChoice::Surge,
            StrategyChoice::Recreate,
            StrategyChoice::Evict,
            StrategyChoice::Pin,
        ] {
            let json = serde_json::to_string(&choice).unwrap();
            assert_eq!(json, format!("\"{}\"", choice.as_str()));
            assert_eq!(serde_json::from_str::<StrategyChoice>(&json).unwrap(), choice);
            assert_eq!(choice.to_string(), choice.as_str());
            assert_eq!(choice.forced().map(|s| s.as_str()), (choice != StrategyChoice::Auto).then(|| choice.as_str()));
        }
        assert_eq!(serde_json::to_string(&PressureBasis::Requests).unwrap(), "\"requests\"");
        assert_eq!(serde_json::to_string(&PolicyFallback::Builtin).unwrap(), "\"builtin\"");
        assert_eq!(serde_json::to_string(&LogFormat::Json).unwrap(), "\"json\"");
    }

    #[test]
    fn token_is_redacted() {
        let s = Settings { influx_token: Some("super-secret-token".to_owned()), ..Settings::default() };
        let debug = format!("{s:?}");
        assert!(!debug.contains("super-secret-token"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
        let debug = format!("{:?}", parse_from(["sdi-migration", "demo", "--influx-token", "super-secret-token"]));
        assert!(!debug.contains("super-secret-token"), "{debug}");
        let debug = format!("{:#?}", Settings::default());
        assert!(debug.contains("influx_token: None"), "{debug}");
    }

    #[test]
    fn help_mentions_every_variable() {
        for command in ["run", "demo"] {
            for flag in ["--help", "-h"] {
                let Err(ParseOutcome::Display(help)) = parse_from(["sdi-migration", command, flag]) else {
                    panic!("{command} {flag} did not display help");
                };
                for name in ALL_VARIABLES {
                    assert!(help.contains(&format!("[env: {name}")), "{command} {flag}: {name} missing:\n{help}");
                }
            }
        }
        let Err(ParseOutcome::Display(help)) = parse_from(["sdi-migration", "demo", "--help"]) else { panic!() };
        for flag in ["--scenario", "--speed", "--duration"] {
            assert!(help.contains(flag), "{flag}");
        }
        let Err(ParseOutcome::Display(help)) = parse_from(["sdi-migration", "--help"]) else { panic!() };
        assert!(help.contains("run") && help.contains("demo"));
        let Err(ParseOutcome::Display(version)) = parse_from(["sdi-migration", "--version"]) else { panic!() };
        assert!(version.contains(env!("CARGO_PKG_VERSION")));
    }

    #[test]
    fn demo_args() {
        let cli = parse_from(["sdi-migration", "demo", "--speed", "100", "--duration", "60", "--scenario", "s.yaml"])
            .unwrap();
        let Command::Demo(demo) = cli.command else { panic!("not demo") };
        assert_eq!((demo.speed, demo.duration, demo.scenario), (100.0, Some(60), Some(PathBuf::from("s.yaml"))));
        for bad in ["0", "1001", "-1", "fast"] {
            let Err(ParseOutcome::Invalid(message)) = parse_from(["sdi-migration", "demo", "--speed", bad]) else {
                panic!("--speed {bad} accepted");
            };
            assert_eq!(message, format!("--speed={bad:?}: expected a number greater than 0 and at most 1000"));
        }
        let Err(ParseOutcome::Invalid(message)) = parse_from(["sdi-migration", "demo", "--duration", "0"]) else {
            panic!("--duration 0 accepted");
        };
        assert_eq!(message, "--duration=\"0\": expected a whole number of seconds from 1 to 31536000");
    }

    #[test]
    fn usage_errors_are_one_line() {
        for args in [
            &["sdi-migration"][..],
            &["sdi-migration", "fly"],
            &["sdi-migration", "run", "--no-such-flag"],
            &["sdi-migration", "run", "--port"],
            &["sdi-migration", "run", "--port", "1", "--port", "2"],
        ] {
            let outcome = parse_from(args.iter().copied()).unwrap_err();
            let ParseOutcome::Invalid(message) = &outcome else { panic!("{args:?}: {outcome:?}") };
            assert!(!message.is_empty() && !message.contains('\n'), "{args:?}: {message:?}");
            assert!(!message.starts_with("error"), "{args:?}: {message:?}");
            assert_eq!(outcome.exit_code(), 2);
        }
        assert_eq!(
            parse_from(["sdi-migration"]).unwrap_err(),
            ParseOutcome::Invalid(
                "a command is required: one of run, demo, agent (see sdi-migration --help)".to_owned()
            )
        );
        assert!(matches!(
            parse_from(["sdi-migration", "run", "--no-such-flag"]),
            Err(ParseOutcome::Invalid(m)) if m.contains("--no-such-flag")
        ));
        assert!(matches!(
            parse_from(["sdi-migration", "run", "--port"]),
            Err(ParseOutcome::Invalid(m)) if m.contains("--port")
        ));
    }

    #[test]
    fn value_with_newline_stays_on_one_line() {
        let message = invalid(&["--port", "80\n80"]);
        assert_eq!(message, r#"PORT="80\n80": expected a port number from 0 to 65535 (0 = any free port)"#);
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
