//! Restart repair: what to do with each object an interrupted job left behind.
//! The shell finds the leftovers by their markers and reports what it did; the
//! decision per leftover is here, so every case is a table test.
//!
//! | leftover | state | action |
//! |---|---|---|
//! | staged copy | its original (same uid) still serves | undo: delete the copy and its checkpoint PVCs |
//! | staged copy | original gone or terminating | nothing: the move finished |
//! | staged copy | no readable reference to its original | report it, touch nothing |
//! | original with a lowered deletion cost | not terminating | restore the cost |
//! | Deployment pinned by a job | rolled out | remove the markers |
//! | Deployment pinned by a job | not rolled out | restore the previous selector |
//! | Deployment pinned by a job | previous selector unreadable | report it, touch nothing |
//! | checkpoint PVC | no pod of its job, job not being undone | keep it (it may hold data), report it |

/// An object carrying a job's markers, with what the shell found about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leftover<'a> {
    /// A pod labelled as a job's staged copy. `original` is what the shell found
    /// under the copy's reference (`None`: no such pod); it is consulted only when
    /// the reference is readable.
    Copy { original_name: Option<&'a str>, original_uid: Option<&'a str>, original: Option<Original<'a>> },
    /// A pod whose `pod-deletion-cost` a surge job lowered.
    LoweredCost { terminating: bool },
    /// A Deployment whose node selector a pin job set.
    Pinned { rolled_out: bool, previous: Previous<'a> },
    /// A checkpoint PVC: whether any pod of its job exists, and whether its job's copy is being undone now.
    CheckpointPvc { job_has_pods: bool, job_undone: bool },
}

/// The pod a copy names as its original.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Original<'a> {
    pub uid: Option<&'a str>,
    pub terminating: bool,
}

/// The `kubernetes.io/hostname` selector a pin job recorded before changing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Previous<'a> {
    /// It was this value, or absent (`None`).
    Value(Option<&'a str>),
    /// The record is missing or cannot be read.
    Unreadable,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Delete the copy and its job's checkpoint PVCs: the original still serves.
    UndoCopy,
    /// Restore the pod's previous deletion cost and remove the markers.
    RestoreCost,
    /// Remove the pin markers: the rollout finished.
    RemovePinMarkers,
    /// Put the previous hostname selector back (`None`: remove it) and remove the markers.
    RestoreSelector(Option<String>),
    /// Keep it and tell the operator why.
    Report(String),
    /// Nothing to do (the job finished, or the object is on its way out).
    Nothing,
    /// The markers cannot be trusted: touch nothing, report what is wrong.
    Malformed(String),
}

pub fn action(leftover: Leftover<'_>) -> Action {
    match leftover {
        Leftover::Copy { original_name, original_uid, original } => {
            let Some(name) = original_name.filter(|n| !n.is_empty()) else {
                return Action::Malformed(
                    "copy has no sdi-migration/original-pod annotation; cannot tell whether its original still \
                     serves, so it is left as it is"
                        .into(),
                );
            };
            let Some(uid) = original_uid.filter(|u| !u.is_empty()) else {
                return Action::Malformed(format!(
                    "copy of {name} has no sdi-migration/original-uid annotation; cannot tell whether {name} is its \
                     original, so it is left as it is"
                ));
            };
            match original {
                Some(o) if o.uid == Some(uid) && !o.terminating => Action::UndoCopy,
                _ => Action::Nothing,
            }
        }
        Leftover::LoweredCost { terminating: true } => Action::Nothing,
        Leftover::LoweredCost { terminating: false } => Action::RestoreCost,
        Leftover::Pinned { rolled_out: true, .. } => Action::RemovePinMarkers,
        Leftover::Pinned { rolled_out: false, previous: Previous::Value(v) } => {
            Action::RestoreSelector(v.map(str::to_string))
        }
        Leftover::Pinned { rolled_out: false, previous: Previous::Unreadable } => Action::Malformed(
            "Deployment is pinned by an interrupted job but its previous node selector \
             (sdi-migration/previous-hostname-selector) cannot be read; left pinned"
                .into(),
        ),
        Leftover::CheckpointPvc { job_has_pods: false, job_undone: false } => Action::Report(
            "checkpoint PVC has no pod; kept in case it holds data (delete it with kubectl if not)".into(),
        ),
        Leftover::CheckpointPvc { .. } => Action::Nothing,
    }
}

/// What the new leader found of a migration whose object says `running` but
/// that no replica runs any more (its leader stopped or lost the lease).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Takeover {
    /// Restart repair undid what the migration had changed (its copy, a lowered
    /// deletion cost, a pinned selector).
    pub undone: bool,
    /// Restart repair found the migration's change complete (a pin rolled out).
    pub finished: bool,
    /// The pod being moved still runs, the same pod (uid), not terminating.
    pub original_serves: bool,
    /// The pod that replaces it exists and is Ready.
    pub replacement_ready: bool,
}

/// How a taken-over migration ends: completed when its move is done, else
/// failed — its changes undone — never half-way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TakeoverEnd {
    Completed(String),
    Failed(String),
}

pub fn takeover(t: Takeover) -> TakeoverEnd {
    const WHY: &str = "interrupted: the replica running it stopped or lost the leader lease";
    if t.finished || (!t.original_serves && t.replacement_ready) {
        return TakeoverEnd::Completed("finished by the new leader: the move had completed".into());
    }
    if t.undone {
        return TakeoverEnd::Failed(format!("{WHY}; changes undone by the new leader"));
    }
    if t.original_serves {
        return TakeoverEnd::Failed(format!("{WHY}; the pod still runs where it was, nothing to undo"));
    }
    TakeoverEnd::Failed(format!("{WHY}; the pod is gone and no Ready replacement was found"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy<'a>(name: Option<&'a str>, uid: Option<&'a str>, original: Option<Original<'a>>) -> Leftover<'a> {
        Leftover::Copy { original_name: name, original_uid: uid, original }
    }

    #[test]
    fn copies() {
        let alive = Original { uid: Some("u1"), terminating: false };
        assert_eq!(action(copy(Some("web"), Some("u1"), Some(alive))), Action::UndoCopy);
        let replaced = Original { uid: Some("u2"), terminating: false };
        assert_eq!(action(copy(Some("web"), Some("u1"), Some(replaced))), Action::Nothing, "a later pod of that name");
        let going = Original { uid: Some("u1"), terminating: true };
        assert_eq!(action(copy(Some("web"), Some("u1"), Some(going))), Action::Nothing);
        assert_eq!(action(copy(Some("web"), Some("u1"), None)), Action::Nothing, "the move finished");
    }

    #[test]
    fn copies_without_a_readable_reference_are_reported_not_touched() {
        for (name, uid) in [(None, Some("u1")), (Some(""), Some("u1")), (Some("web"), None), (Some("web"), Some(""))] {
            let alive = Original { uid: Some("u1"), terminating: false };
            match action(copy(name, uid, Some(alive))) {
                Action::Malformed(why) => assert!(why.contains("left as it is"), "{why}"),
                other => panic!("{name:?}/{uid:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn takeovers_finish_or_undo() {
        let t = |undone, finished, original_serves, replacement_ready| {
            takeover(Takeover { undone, finished, original_serves, replacement_ready })
        };
        assert!(matches!(t(false, true, false, false), TakeoverEnd::Completed(_)));
        assert!(matches!(t(false, false, false, true), TakeoverEnd::Completed(_)), "copy serves, original gone");
        match t(true, false, true, false) {
            TakeoverEnd::Failed(m) => assert!(m.ends_with("changes undone by the new leader"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(t(false, false, true, true), TakeoverEnd::Failed(_)), "the original still serves: not done");
        assert!(matches!(t(false, false, false, false), TakeoverEnd::Failed(_)));
    }

    #[test]
    fn costs_pins_and_checkpoints() {
        assert_eq!(action(Leftover::LoweredCost { terminating: false }), Action::RestoreCost);
        assert_eq!(action(Leftover::LoweredCost { terminating: true }), Action::Nothing);
        let pinned = |rolled_out, previous| Leftover::Pinned { rolled_out, previous };
        assert_eq!(action(pinned(true, Previous::Unreadable)), Action::RemovePinMarkers);
        assert_eq!(action(pinned(false, Previous::Value(Some("w1")))), Action::RestoreSelector(Some("w1".into())));
        assert_eq!(action(pinned(false, Previous::Value(None))), Action::RestoreSelector(None));
        assert!(matches!(action(pinned(false, Previous::Unreadable)), Action::Malformed(_)));
        let pvc = |job_has_pods, job_undone| Leftover::CheckpointPvc { job_has_pods, job_undone };
        assert!(matches!(action(pvc(false, false)), Action::Report(_)));
        assert_eq!(action(pvc(true, false)), Action::Nothing);
        assert_eq!(action(pvc(false, true)), Action::Nothing);
    }
}
