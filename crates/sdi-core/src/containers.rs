//! Which containers a `recreate` migration copies (seed 002, step 1).
//!
//! Running containers are copied; waiting ones are not; a container that ran to
//! completion (exit 0) is done and is not restarted on the target; one that
//! failed (non-zero exit) is copied so it gets another chance there.

use serde::{Deserialize, Serialize};

/// What the kubelet reports for one container, reduced to what the rule needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    Waiting,
    Running,
    Terminated {
        exit_code: i32,
    },
    /// No status yet (the kubelet has not reported the container).
    Unknown,
}

/// The original controller's `container_states[]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ContainerState {
    pub name: String,
    /// `running`, `waiting`, `completed`, `failed` or `unknown`.
    pub state: String,
    pub restart_count: i32,
    pub should_migrate: bool,
}

/// Classify one container.
pub fn classify(name: &str, observed: Observed, restart_count: i32) -> ContainerState {
    let (state, should_migrate) = match observed {
        Observed::Running => ("running", true),
        Observed::Waiting => ("waiting", false),
        Observed::Terminated { exit_code: 0 } => ("completed", false),
        Observed::Terminated { .. } => ("failed", true),
        Observed::Unknown => ("unknown", false),
    };
    ContainerState { name: name.to_string(), state: state.to_string(), restart_count, should_migrate }
}

/// Names of the containers to copy, in pod order.
pub fn to_migrate(states: &[ContainerState]) -> Vec<&str> {
    states.iter().filter(|s| s.should_migrate).map(|s| s.name.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_original_rule() {
        let s = [
            classify("app", Observed::Running, 0),
            classify("sidecar", Observed::Waiting, 2),
            classify("init-like", Observed::Terminated { exit_code: 0 }, 0),
            classify("crashed", Observed::Terminated { exit_code: 137 }, 5),
            classify("new", Observed::Unknown, 0),
        ];
        assert_eq!(to_migrate(&s), ["app", "crashed"]);
        assert_eq!(s[2].state, "completed");
        assert_eq!(s[3].state, "failed");
        assert_eq!(s[3].restart_count, 5);
        assert_eq!(s[1].state, "waiting");
    }
}
