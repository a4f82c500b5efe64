//! Can a container's state move with it? The capability pre-check, decided
//! before a checkpoint is restored: the nodes' container runtimes (from
//! `Node.status.nodeInfo.containerRuntimeVersion`), the kubelet checkpoint
//! API's answer, the archive's size against `CHECKPOINT_MAX_BYTES`, and the
//! registry. Every "no" has a reason a user can act on.

/// What the shell found out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Capability<'a> {
    /// `CHECKPOINT_REGISTRY` is set.
    pub registry_configured: bool,
    /// The registry answered its API check (`None`: not asked yet).
    pub registry_reachable: Option<Result<(), &'a str>>,
    /// `containerRuntimeVersion` of the source and the target node.
    pub source_runtime: &'a str,
    pub target_runtime: &'a str,
    /// The source node's agent is alive (its Lease is fresh); `None`: not looked at.
    pub agent: Option<Result<(), &'a str>>,
    /// The kubelet checkpoint API's answer (`None`: not asked yet).
    pub checkpoint_api: Option<Result<(), &'a str>>,
    /// Size of the largest archive and the limit (`None`: no archive yet).
    pub archive_bytes: Option<u64>,
    pub max_bytes: u64,
}

/// The verdict: restore, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Restore,
    Impossible(String),
}

impl Verdict {
    pub fn is_restore(&self) -> bool {
        matches!(self, Verdict::Restore)
    }

    pub fn reason(&self) -> &str {
        match self {
            Verdict::Restore => "",
            Verdict::Impossible(r) => r,
        }
    }
}

/// A runtime version as `(name, major, minor)`: `cri-o://1.31.0` → ("cri-o", 1, 31).
pub fn parse_runtime(runtime: &str) -> Option<(&str, u64, u64)> {
    let (name, version) = runtime.split_once("://")?;
    let mut parts = version.trim_start_matches('v').split(['.', '-', '+']).map(|p| p.parse::<u64>().ok());
    let major = parts.next().flatten()?;
    let minor = parts.next().flatten().unwrap_or(0);
    Some((name, major, minor))
}

/// Whether the runtime writes checkpoints through the kubelet API (CRI-O with
/// CRIU support, containerd ≥ 2.0); `Err` says why not.
pub fn can_checkpoint(runtime: &str) -> Result<(), String> {
    match parse_runtime(runtime) {
        Some(("cri-o", _, _)) => Ok(()),
        Some(("containerd", major, _)) if major >= 2 => Ok(()),
        Some((name, major, minor)) => Err(format!(
            "{name} {major}.{minor} cannot checkpoint containers (CRI-O, or containerd 2.0 or later, is needed)"
        )),
        None => Err(format!("unknown container runtime {runtime:?}")),
    }
}

/// Whether the runtime restores a container from a checkpoint image (CRI-O
/// with `enable_criu_support`, containerd ≥ 2.1); `Err` says why not.
pub fn can_restore(runtime: &str) -> Result<(), String> {
    match parse_runtime(runtime) {
        Some(("cri-o", _, _)) => Ok(()),
        Some(("containerd", major, minor)) if (major, minor) >= (2, 1) => Ok(()),
        Some((name, major, minor)) => Err(format!(
            "{name} {major}.{minor} cannot restore checkpoint images (CRI-O, or containerd 2.1 or later, is needed)"
        )),
        None => Err(format!("unknown container runtime {runtime:?}")),
    }
}

/// The pre-check, in the order a user would fix things.
pub fn verdict(c: &Capability<'_>) -> Verdict {
    let no = |r: String| Verdict::Impossible(r);
    if !c.registry_configured {
        return no("no CHECKPOINT_REGISTRY is configured to carry checkpoint images".into());
    }
    if let Err(e) = can_checkpoint(c.source_runtime) {
        return no(format!("source node: {e}"));
    }
    if let Err(e) = can_restore(c.target_runtime) {
        return no(format!("target node: {e}"));
    }
    if let Some(Err(e)) = c.agent {
        return no(format!("source node: {e}"));
    }
    if let Some(Err(e)) = c.checkpoint_api {
        return no(format!("the kubelet checkpoint API refused: {e}"));
    }
    if let Some(bytes) = c.archive_bytes
        && bytes > c.max_bytes
    {
        return no(format!("checkpoint archive of {bytes} bytes is over CHECKPOINT_MAX_BYTES ({})", c.max_bytes));
    }
    if let Some(Err(e)) = c.registry_reachable {
        return no(format!("checkpoint registry: {e}"));
    }
    Verdict::Restore
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Capability<'static> {
        Capability {
            registry_configured: true,
            registry_reachable: Some(Ok(())),
            source_runtime: "cri-o://1.31.0",
            target_runtime: "containerd://2.1.0",
            agent: Some(Ok(())),
            checkpoint_api: Some(Ok(())),
            archive_bytes: Some(10),
            max_bytes: 100,
        }
    }

    #[test]
    fn runtimes() {
        assert_eq!(parse_runtime("containerd://v2.1.3"), Some(("containerd", 2, 1)));
        assert!(can_restore("cri-o://1.28.1").is_ok());
        assert!(can_restore("containerd://2.1.0").is_ok());
        assert!(can_restore("containerd://2.0.4").unwrap_err().contains("2.1 or later"));
        assert!(can_restore("containerd://1.7.22").is_err());
        assert!(can_checkpoint("containerd://2.0.0").is_ok());
        assert!(can_checkpoint("docker://27.0.1").is_err());
        assert!(can_restore("nonsense").unwrap_err().contains("unknown"));
    }

    #[test]
    fn everything_in_place_restores() {
        assert_eq!(verdict(&ok()), Verdict::Restore);
        let unknown_yet =
            Capability { registry_reachable: None, agent: None, checkpoint_api: None, archive_bytes: None, ..ok() };
        assert_eq!(verdict(&unknown_yet), Verdict::Restore);
    }

    #[test]
    fn each_obstacle_has_its_reason() {
        let cases = [
            (Capability { registry_configured: false, ..ok() }, "CHECKPOINT_REGISTRY"),
            (Capability { source_runtime: "containerd://1.7.22", ..ok() }, "source node: containerd 1.7"),
            (Capability { target_runtime: "containerd://2.0.0", ..ok() }, "target node: containerd 2.0"),
            (
                Capability { checkpoint_api: Some(Err("Unimplemented")), ..ok() },
                "checkpoint API refused: Unimplemented",
            ),
            (Capability { archive_bytes: Some(101), ..ok() }, "over CHECKPOINT_MAX_BYTES (100)"),
            (
                Capability { registry_reachable: Some(Err("connection refused")), ..ok() },
                "registry: connection refused",
            ),
        ];
        for (c, want) in cases {
            let v = verdict(&c);
            assert!(!v.is_restore());
            assert!(v.reason().contains(want), "{:?} should say {want}", v.reason());
        }
    }
}
