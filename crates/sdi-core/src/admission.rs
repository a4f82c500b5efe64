//! Admission of a requested migration (SPEC §2, "checked before the job
//! starts"): every rule a request must pass before a job exists, so a request
//! that cannot succeed is refused with a reason instead of failing later. The
//! shell gathers the facts (from its caches or the API) and maps each refusal
//! reason to an HTTP status; the rules and their order live here.

use crate::error::Category;
use crate::fit::{self, NodeFacts, PodNeeds};
use crate::snapshot::Phase;
use crate::strategy::{self, Owner, Strategy};

/// The node label `pin` rewrites in the pod template.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// What was asked (already validated for shape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    pub namespace: &'a str,
    pub pod: &'a str,
    pub source: &'a str,
    pub target: &'a str,
    /// `None` = `auto`: the owner's natural strategy.
    pub strategy: Option<Strategy>,
    pub preserve_pv: bool,
    /// `Some(true)` demands a checkpoint, `Some(false)` forbids one.
    pub checkpoint: Option<bool>,
    /// Seconds; 0 (or less) means the default.
    pub timeout_secs: i64,
}

/// The service's settings that admission depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// `ENABLE_CHECKPOINTING`.
    pub checkpointing: bool,
    /// `MIGRATION_TIMEOUT`, seconds.
    pub default_timeout_secs: u64,
}

/// The pod, as found in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodFacts {
    /// `spec.nodeName`.
    pub node: Option<String>,
    pub terminating: bool,
    pub phase: Phase,
    /// Its controller, with the Deployment behind a ReplicaSet when there is one.
    pub owner: Owner,
    pub needs: PodNeeds,
}

/// Everything admission looks at. `pod: None` means the pod does not exist;
/// `target: None` that the target node does not (its `requested` counts the
/// pods bound to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts<'a> {
    pub pod: Option<&'a PodFacts>,
    /// The job already moving this pod, if any.
    pub active_job: Option<&'a str>,
    pub target: Option<&'a NodeFacts>,
}

/// Whether to take container checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointMode {
    No,
    /// Take them if the node can; carry on without.
    IfPossible,
    /// The request demanded one: no checkpoint, no migration.
    Required,
}

/// An admitted request: how the job will run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub strategy: Strategy,
    pub checkpoint: CheckpointMode,
    pub timeout_secs: u64,
}

/// Why a request is refused. The shell maps each to its answer (HTTP status);
/// [`Reason::title`] is the `error` of the answer's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    PodNotFound,
    /// Another job is moving the pod (its id).
    AlreadyMigrating(String),
    NotOnSource,
    PodTerminating,
    PodFinished,
    StrategyNotApplicable,
    CheckpointingDisabled,
    TargetUnavailable,
    /// The facts could not be gathered (the shell's own refusal).
    ApiUnavailable,
    /// The service is stopping and takes no new jobs (the shell's own refusal).
    ShuttingDown,
}

impl Reason {
    pub fn title(&self) -> &'static str {
        match self {
            Reason::PodNotFound => "Pod not found",
            Reason::AlreadyMigrating(_) => "Migration already in progress",
            Reason::NotOnSource => "Pod is not on the source node",
            Reason::PodTerminating => "Pod is being deleted",
            Reason::PodFinished => "Pod has finished",
            Reason::StrategyNotApplicable => "Strategy not applicable",
            Reason::CheckpointingDisabled => "Checkpointing disabled",
            Reason::TargetUnavailable => "Target node unavailable",
            Reason::ApiUnavailable => "Kubernetes API unavailable",
            Reason::ShuttingDown => "Service is shutting down",
        }
    }

    pub fn category(&self) -> Category {
        match self {
            Reason::PodNotFound => Category::NotFound,
            Reason::AlreadyMigrating(_) | Reason::NotOnSource | Reason::PodTerminating | Reason::PodFinished => {
                Category::Conflict
            }
            Reason::StrategyNotApplicable | Reason::CheckpointingDisabled => Category::Invalid,
            Reason::TargetUnavailable => Category::Target,
            Reason::ApiUnavailable | Reason::ShuttingDown => Category::ApiUnavailable,
        }
    }
}

/// A refusal: the reason and a sentence naming what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {details}", reason.title())]
pub struct Refusal {
    pub reason: Reason,
    pub details: String,
}

fn refuse(reason: Reason, details: String) -> Result<Admitted, Refusal> {
    Err(Refusal { reason, details })
}

/// The rules, in order: the pod exists, no job is moving it, it runs on the
/// source, is not terminating or finished; the strategy can move it without
/// losing it and supports the options asked for; the target exists, is Ready
/// and schedulable, and the pod fits there.
pub fn admit(req: &Request<'_>, facts: Facts<'_>, settings: Settings) -> Result<Admitted, Refusal> {
    let (ns, name) = (req.namespace, req.pod);
    let Some(pod) = facts.pod else {
        return refuse(Reason::PodNotFound, format!("pod {ns}/{name} does not exist"));
    };
    if let Some(id) = facts.active_job {
        return refuse(Reason::AlreadyMigrating(id.to_string()), format!("{id} is already moving pod {ns}/{name}"));
    }
    if pod.node.as_deref() != Some(req.source) {
        let now = pod.node.as_deref().map_or("no node (not scheduled yet)".to_string(), |n| format!("node {n}"));
        return refuse(
            Reason::NotOnSource,
            format!("pod {ns}/{name} runs on {now}, not on source_node {}", req.source),
        );
    }
    if pod.terminating {
        return refuse(Reason::PodTerminating, format!("pod {ns}/{name} is terminating"));
    }
    if pod.phase.is_terminated() {
        return refuse(
            Reason::PodFinished,
            format!("pod {ns}/{name} is {}; there is nothing left to run elsewhere", pod.phase.as_str()),
        );
    }
    let strategy = strategy::choose(req.strategy, &pod.owner)
        .map_err(|e| Refusal { reason: Reason::StrategyNotApplicable, details: e })?;
    if req.preserve_pv && strategy != Strategy::Recreate {
        return refuse(
            Reason::StrategyNotApplicable,
            format!(
                "preserve_pv mounts a checkpoint volume in a recreated pod; strategy {strategy} does not create one"
            ),
        );
    }
    if req.checkpoint == Some(true) && !settings.checkpointing {
        return refuse(
            Reason::CheckpointingDisabled,
            "the request demands a checkpoint but ENABLE_CHECKPOINTING=false on this service".into(),
        );
    }
    let Some(target) = facts.target else {
        return refuse(Reason::TargetUnavailable, format!("target node {} does not exist", req.target));
    };
    let misfits = if strategy == Strategy::Pin {
        // Pin replaces the template's hostname selector; the old one no longer applies.
        let mut needs = pod.needs.clone();
        needs.node_selector.remove(HOSTNAME_LABEL);
        fit::misfits(&needs, target)
    } else {
        fit::misfits(&pod.needs, target)
    };
    if !misfits.is_empty() {
        let details = misfits.iter().map(|m| m.describe(req.target)).collect::<Vec<_>>().join("; ");
        return refuse(Reason::TargetUnavailable, details);
    }
    let checkpoint = match req.checkpoint {
        Some(true) => CheckpointMode::Required,
        Some(false) => CheckpointMode::No,
        None if settings.checkpointing && req.preserve_pv => CheckpointMode::IfPossible,
        None => CheckpointMode::No,
    };
    let timeout_secs = u64::try_from(req.timeout_secs).ok().filter(|&t| t > 0).unwrap_or(settings.default_timeout_secs);
    Ok(Admitted { strategy, checkpoint, timeout_secs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::Resources;

    const SETTINGS: Settings = Settings { checkpointing: true, default_timeout_secs: 600 };

    fn req() -> Request<'static> {
        Request {
            namespace: "default",
            pod: "web",
            source: "w1",
            target: "w2",
            strategy: None,
            preserve_pv: false,
            checkpoint: None,
            timeout_secs: 0,
        }
    }

    fn pod() -> PodFacts {
        PodFacts {
            node: Some("w1".into()),
            terminating: false,
            phase: Phase::Running,
            owner: Owner::None,
            needs: PodNeeds { requests: Resources { cpu_m: 500, mem_b: 1 << 30, pods: 1 }, ..Default::default() },
        }
    }

    fn node() -> NodeFacts {
        NodeFacts {
            name: "w2".into(),
            ready: true,
            allocatable: Resources { cpu_m: 4000, mem_b: 8 << 30, pods: 110 },
            ..Default::default()
        }
    }

    fn check(
        r: &Request<'_>,
        p: Option<&PodFacts>,
        active: Option<&str>,
        t: Option<&NodeFacts>,
    ) -> Result<Admitted, Refusal> {
        admit(r, Facts { pod: p, active_job: active, target: t }, SETTINGS)
    }

    #[test]
    fn a_bare_pod_that_fits_is_admitted_with_defaults() {
        let a = check(&req(), Some(&pod()), None, Some(&node())).unwrap();
        assert_eq!(a, Admitted { strategy: Strategy::Recreate, checkpoint: CheckpointMode::No, timeout_secs: 600 });
        let r = Request { timeout_secs: 30, preserve_pv: true, ..req() };
        let a = check(&r, Some(&pod()), None, Some(&node())).unwrap();
        assert_eq!((a.timeout_secs, a.checkpoint), (30, CheckpointMode::IfPossible));
        let r = Request { checkpoint: Some(true), ..req() };
        assert_eq!(check(&r, Some(&pod()), None, Some(&node())).unwrap().checkpoint, CheckpointMode::Required);
    }

    #[test]
    fn every_refusal_with_its_reason_and_sentence() {
        let (p, n) = (pod(), node());
        let refused = |r: Result<Admitted, Refusal>| r.unwrap_err();
        let e = refused(check(&req(), None, None, Some(&n)));
        assert_eq!((e.reason, e.details.as_str()), (Reason::PodNotFound, "pod default/web does not exist"));
        let e = refused(check(&req(), Some(&p), Some("migration-1"), Some(&n)));
        assert_eq!(e.reason, Reason::AlreadyMigrating("migration-1".into()));
        assert_eq!(e.details, "migration-1 is already moving pod default/web");
        let elsewhere = PodFacts { node: Some("w3".into()), ..pod() };
        let e = refused(check(&req(), Some(&elsewhere), None, Some(&n)));
        assert_eq!(
            (e.reason, e.details.as_str()),
            (Reason::NotOnSource, "pod default/web runs on node w3, not on source_node w1")
        );
        let pending = PodFacts { node: None, ..pod() };
        assert!(refused(check(&req(), Some(&pending), None, Some(&n))).details.contains("no node (not scheduled yet)"));
        let going = PodFacts { terminating: true, ..pod() };
        assert_eq!(refused(check(&req(), Some(&going), None, Some(&n))).reason, Reason::PodTerminating);
        let done = PodFacts { phase: Phase::Succeeded, ..pod() };
        let e = refused(check(&req(), Some(&done), None, Some(&n)));
        assert_eq!(e.reason, Reason::PodFinished);
        assert!(e.details.contains("is Succeeded"), "{}", e.details);
        let r = Request { strategy: Some(Strategy::Evict), ..req() };
        let e = refused(check(&r, Some(&p), None, Some(&n)));
        assert_eq!(e.reason, Reason::StrategyNotApplicable);
        assert!(e.details.contains("bare pod would be lost"), "{}", e.details);
        let rs = PodFacts { owner: Owner::ReplicaSet { name: "web-1".into(), deployment: None }, ..pod() };
        let r = Request { preserve_pv: true, ..req() };
        let e = refused(check(&r, Some(&rs), None, Some(&n)));
        assert_eq!(
            e.details,
            "preserve_pv mounts a checkpoint volume in a recreated pod; strategy surge does not create one"
        );
        let r = Request { checkpoint: Some(true), ..req() };
        let e = admit(
            &r,
            Facts { pod: Some(&p), active_job: None, target: Some(&n) },
            Settings { checkpointing: false, ..SETTINGS },
        )
        .unwrap_err();
        assert_eq!(e.reason, Reason::CheckpointingDisabled);
        let e = refused(check(&req(), Some(&p), None, None));
        assert_eq!((e.reason, e.details.as_str()), (Reason::TargetUnavailable, "target node w2 does not exist"));
        let small = NodeFacts { allocatable: Resources { cpu_m: 100, mem_b: 8 << 30, pods: 110 }, ..node() };
        let e = refused(check(&req(), Some(&p), None, Some(&small)));
        assert_eq!(e.reason, Reason::TargetUnavailable);
        assert!(e.details.starts_with("pod does not fit on target node w2: cpu requested"), "{}", e.details);
        let down = NodeFacts { ready: false, unschedulable: true, ..node() };
        let e = refused(check(&req(), Some(&p), None, Some(&down)));
        assert_eq!(e.details, "target node w2 is not Ready; target node w2 is cordoned (spec.unschedulable=true)");
    }

    #[test]
    fn rules_apply_in_order() {
        // A missing pod is reported before a missing target; a running job before the wrong node.
        assert_eq!(check(&req(), None, Some("m"), None).unwrap_err().reason, Reason::PodNotFound);
        let elsewhere = PodFacts { node: Some("w3".into()), ..pod() };
        assert!(matches!(
            check(&req(), Some(&elsewhere), Some("m"), None).unwrap_err().reason,
            Reason::AlreadyMigrating(_)
        ));
    }

    #[test]
    fn pin_ignores_the_hostname_selector_it_replaces() {
        let mut p = pod();
        p.owner = Owner::ReplicaSet { name: "web-1".into(), deployment: Some("web".into()) };
        p.needs.node_selector.insert(HOSTNAME_LABEL.into(), "w1".into());
        let n = NodeFacts { labels: [(HOSTNAME_LABEL.to_string(), "w2".to_string())].into(), ..node() };
        let r = Request { strategy: Some(Strategy::Pin), ..req() };
        assert_eq!(check(&r, Some(&p), None, Some(&n)).unwrap().strategy, Strategy::Pin);
        let e = check(&req(), Some(&p), None, Some(&n)).unwrap_err();
        assert_eq!(e.reason, Reason::TargetUnavailable, "surge keeps the pod's selector");
    }

    #[test]
    fn refusals_have_bounded_categories() {
        assert_eq!(Reason::PodNotFound.category(), Category::NotFound);
        assert_eq!(Reason::NotOnSource.category(), Category::Conflict);
        assert_eq!(Reason::TargetUnavailable.category(), Category::Target);
        assert_eq!(Reason::ApiUnavailable.category(), Category::ApiUnavailable);
    }
}
