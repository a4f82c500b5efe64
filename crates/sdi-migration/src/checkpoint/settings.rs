//! The settings of checkpoint images (engine and agent alike).

use std::fmt;
use std::path::PathBuf;

use super::registry::{Registry, RegistryConfig};

/// `CHECKPOINT_*`: where checkpoint images go and how long they stay.
#[derive(Clone, PartialEq, clap::Args)]
pub struct CheckpointSettings {
    /// Registry for checkpoint images, host[:port][/prefix] (default: unset = state does not move with pods)
    #[arg(long, env = "CHECKPOINT_REGISTRY", value_name = "HOST[/PREFIX]", help_heading = "Checkpoint images")]
    pub checkpoint_registry: Option<String>,

    /// Talk to the registry over plain HTTP (a loopback or otherwise insecure registry; default false)
    #[arg(long, env = "CHECKPOINT_REGISTRY_INSECURE", value_name = "BOOL", default_value = "false",
          action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new(),
          help_heading = "Checkpoint images")]
    pub checkpoint_registry_insecure: bool,

    /// Registry user (basic authentication; from a Secret)
    #[arg(long, env = "CHECKPOINT_REGISTRY_USERNAME", value_name = "USER", help_heading = "Checkpoint images")]
    pub checkpoint_registry_username: Option<String>,

    /// Registry password (from a Secret)
    #[arg(
        long,
        env = "CHECKPOINT_REGISTRY_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true,
        help_heading = "Checkpoint images"
    )]
    pub checkpoint_registry_password: Option<String>,

    /// Largest checkpoint archive turned into an image, bytes (default 4294967296)
    #[arg(
        long,
        env = "CHECKPOINT_MAX_BYTES",
        value_name = "BYTES",
        default_value = "4294967296",
        help_heading = "Checkpoint images"
    )]
    pub checkpoint_max_bytes: u64,

    /// Seconds checkpoint images are kept after their migration ends (default 3600)
    #[arg(
        long,
        env = "CHECKPOINT_RETENTION",
        value_name = "SECONDS",
        default_value = "3600",
        help_heading = "Checkpoint images"
    )]
    pub checkpoint_retention: u64,

    /// Seconds to wait for the source node's agent to push the images (default 300)
    #[arg(
        long,
        env = "CHECKPOINT_AGENT_TIMEOUT",
        value_name = "SECONDS",
        default_value = "300",
        help_heading = "Checkpoint images"
    )]
    pub checkpoint_agent_timeout: u64,

    /// Namespace of the node agents' Leases (their presence; default kube-system)
    #[arg(
        long,
        env = "CHECKPOINT_AGENT_NAMESPACE",
        value_name = "NAMESPACE",
        default_value = "kube-system",
        help_heading = "Checkpoint images"
    )]
    pub checkpoint_agent_namespace: String,

    /// imagePullSecret the new pod gets to pull its checkpoint images (default: none)
    #[arg(long, env = "CHECKPOINT_PULL_SECRET", value_name = "SECRET", help_heading = "Checkpoint images")]
    pub checkpoint_pull_secret: Option<String>,
}

impl Default for CheckpointSettings {
    fn default() -> Self {
        CheckpointSettings {
            checkpoint_registry: None,
            checkpoint_registry_insecure: false,
            checkpoint_registry_username: None,
            checkpoint_registry_password: None,
            checkpoint_max_bytes: 4 << 30,
            checkpoint_retention: 3600,
            checkpoint_agent_timeout: 300,
            checkpoint_agent_namespace: "kube-system".into(),
            checkpoint_pull_secret: None,
        }
    }
}

impl fmt::Debug for CheckpointSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointSettings")
            .field("checkpoint_registry", &self.checkpoint_registry)
            .field("checkpoint_registry_insecure", &self.checkpoint_registry_insecure)
            .field("checkpoint_registry_username", &self.checkpoint_registry_username)
            .field("checkpoint_registry_password", &self.checkpoint_registry_password.as_ref().map(|_| "<redacted>"))
            .field("checkpoint_max_bytes", &self.checkpoint_max_bytes)
            .field("checkpoint_retention", &self.checkpoint_retention)
            .field("checkpoint_agent_timeout", &self.checkpoint_agent_timeout)
            .field("checkpoint_agent_namespace", &self.checkpoint_agent_namespace)
            .field("checkpoint_pull_secret", &self.checkpoint_pull_secret)
            .finish()
    }
}

impl CheckpointSettings {
    /// The registry client, if a registry is configured; a bad value names the variable.
    pub fn registry(&self) -> Result<Option<Registry>, String> {
        let Some(text) = self.checkpoint_registry.as_deref().filter(|t| !t.trim().is_empty()) else { return Ok(None) };
        let mut config = RegistryConfig::parse(text, self.checkpoint_registry_insecure)
            .map_err(|e| format!("CHECKPOINT_REGISTRY={text:?}: {e}"))?;
        config.username = self.checkpoint_registry_username.clone();
        config.password = self.checkpoint_registry_password.clone();
        Registry::new(config).map(Some)
    }
}

/// `sdi-migration agent`: the node agent's settings.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct AgentArgs {
    /// The node this agent serves (from the downward API: spec.nodeName)
    #[arg(long, env = "NODE_NAME", value_name = "NODE")]
    pub node_name: String,

    /// The kubelet's checkpoint directory as mounted in the agent (read-only is enough to read; the
    /// agent deletes archives once pushed, so mount it writable for cleanup)
    #[arg(long, env = "CHECKPOINT_DIR", value_name = "DIR", default_value = "/var/lib/kubelet/checkpoints")]
    pub checkpoint_dir: PathBuf,

    /// Kubeconfig file (default: unset = in-cluster configuration)
    #[arg(long, env = "KUBECONFIG", value_name = "FILE", default_value = "", hide_default_value = true)]
    pub kubeconfig: String,

    /// Log format (text or json; default text)
    #[arg(long, env = "LOG_FORMAT", value_enum, ignore_case = true, default_value = "text")]
    pub log_format: crate::config::LogFormat,

    #[command(flatten)]
    pub checkpoint: CheckpointSettings,
}

impl AgentArgs {
    pub fn validate(&self) -> Result<(), String> {
        if self.node_name.trim().is_empty() {
            return Err("NODE_NAME is required: the node this agent serves".into());
        }
        match self.checkpoint.registry()? {
            Some(_) => Ok(()),
            None => Err("CHECKPOINT_REGISTRY is required: where the agent pushes checkpoint images".into()),
        }
    }
}
