//! Which migration strategy moves a pod, decided from who owns it.
//!
//! The rule that matters: a strategy must never lose the workload. A bare pod has
//! nobody to recreate it, so only `recreate` (copy first, delete after) is safe;
//! a ReplicaSet pod would be adopted or replaced behind a bare copy's back, so it
//! moves by `surge`; other controllers recreate their pods themselves, so `evict`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    Recreate,
    Surge,
    Pin,
    Evict,
}

impl Strategy {
    pub const ALL: [Strategy; 4] = [Strategy::Recreate, Strategy::Surge, Strategy::Pin, Strategy::Evict];

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Recreate => "recreate",
            Strategy::Surge => "surge",
            Strategy::Pin => "pin",
            Strategy::Evict => "evict",
        }
    }

    pub fn parse(s: &str) -> Option<Strategy> {
        Strategy::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The pod's controller, from its controller ownerReference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// No controller: a bare pod.
    None,
    /// A ReplicaSet, and the Deployment that owns it, if any.
    ReplicaSet {
        name: String,
        deployment: Option<String>,
    },
    StatefulSet {
        name: String,
    },
    DaemonSet {
        name: String,
    },
    /// Any other controller (Job, a custom resource, …).
    Other {
        kind: String,
        name: String,
    },
}

impl Owner {
    fn describe(&self) -> String {
        match self {
            Owner::None => "no controller".to_string(),
            Owner::ReplicaSet { name, .. } => format!("ReplicaSet {name}"),
            Owner::StatefulSet { name } => format!("StatefulSet {name}"),
            Owner::DaemonSet { name } => format!("DaemonSet {name}"),
            Owner::Other { kind, name } => format!("{kind} {name}"),
        }
    }
}

/// Pick the strategy: the requested one if it is safe for this owner, else
/// the owner's natural one (`requested == None` means `auto`). The error says
/// why the request cannot be honoured and what would work.
pub fn choose(requested: Option<Strategy>, owner: &Owner) -> Result<Strategy, String> {
    if let Owner::DaemonSet { name } = owner {
        return Err(format!(
            "the pod belongs to DaemonSet {name}, which runs one pod per node; it cannot be moved to another node"
        ));
    }
    let natural = match owner {
        Owner::None => Strategy::Recreate,
        Owner::ReplicaSet { .. } => Strategy::Surge,
        _ => Strategy::Evict,
    };
    let Some(wanted) = requested else { return Ok(natural) };
    let ok = match wanted {
        Strategy::Recreate => matches!(owner, Owner::None),
        Strategy::Surge => matches!(owner, Owner::ReplicaSet { .. }),
        Strategy::Pin => matches!(owner, Owner::ReplicaSet { deployment: Some(_), .. }),
        Strategy::Evict => !matches!(owner, Owner::None),
    };
    if ok {
        return Ok(wanted);
    }
    let why = match wanted {
        Strategy::Recreate => "recreate copies bare pods; the controller would adopt or replace the copy",
        Strategy::Surge => "surge needs a pod owned by a ReplicaSet",
        Strategy::Pin => "pin edits a Deployment and needs a pod owned by one (through its ReplicaSet)",
        Strategy::Evict => "evict needs a controller to recreate the pod; a bare pod would be lost",
    };
    Err(format!("strategy {wanted} cannot move this pod ({}): {why}; use {natural} (or auto)", owner.describe()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(dep: Option<&str>) -> Owner {
        Owner::ReplicaSet { name: "web-abc".into(), deployment: dep.map(str::to_string) }
    }

    #[test]
    fn auto_follows_the_owner() {
        assert_eq!(choose(None, &Owner::None), Ok(Strategy::Recreate));
        assert_eq!(choose(None, &rs(Some("web"))), Ok(Strategy::Surge));
        assert_eq!(choose(None, &Owner::StatefulSet { name: "db".into() }), Ok(Strategy::Evict));
        assert_eq!(choose(None, &Owner::Other { kind: "Job".into(), name: "j".into() }), Ok(Strategy::Evict));
    }

    #[test]
    fn unsafe_requests_are_refused_with_the_alternative() {
        let e = choose(Some(Strategy::Evict), &Owner::None).unwrap_err();
        assert!(e.contains("bare pod would be lost") && e.contains("use recreate"), "{e}");
        let e = choose(Some(Strategy::Pin), &rs(None)).unwrap_err();
        assert!(e.contains("Deployment"), "{e}");
        let e = choose(Some(Strategy::Recreate), &rs(Some("web"))).unwrap_err();
        assert!(e.contains("ReplicaSet web-abc") && e.contains("use surge"), "{e}");
        assert!(choose(None, &Owner::DaemonSet { name: "ds".into() }).unwrap_err().contains("one pod per node"));
        assert_eq!(choose(Some(Strategy::Pin), &rs(Some("web"))), Ok(Strategy::Pin));
        assert_eq!(choose(Some(Strategy::Evict), &rs(Some("web"))), Ok(Strategy::Evict));
    }

    #[test]
    fn names_round_trip() {
        for s in Strategy::ALL {
            assert_eq!(Strategy::parse(s.as_str()), Some(s));
        }
        assert_eq!(Strategy::parse("auto"), None);
    }
}
