//! Labels and annotations that make a job's work visible on the objects it
//! touched — so `kubectl` shows what happened, and a restarted service can find
//! and repair what an interrupted job left behind (see `repair`).

/// On every object a job created (copies, checkpoint PVCs): the job's id.
pub const JOB: &str = "sdi-migration/job";
/// On objects a job created: `copy` or `checkpoint`.
pub const ROLE: &str = "sdi-migration/role";
pub const ROLE_COPY: &str = "copy";
pub const ROLE_CHECKPOINT: &str = "checkpoint";
/// On a copy: the pod it replaces (annotation: names may exceed a label's 63 characters).
pub const ORIGINAL_POD: &str = "sdi-migration/original-pod";
/// On a copy: the uid of the pod it replaces (a later pod may reuse the name).
pub const ORIGINAL_UID: &str = "sdi-migration/original-uid";
/// On a surge copy: the labels held back until adoption (JSON object).
pub const HELD_LABELS: &str = "sdi-migration/held-labels";

/// On an original whose pod-deletion-cost a surge job lowered: the job's id…
pub const COST_JOB: &str = "sdi-migration/deletion-cost-job";
/// …and the cost it had before (empty: none).
pub const PREVIOUS_COST: &str = "sdi-migration/previous-deletion-cost";
pub const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";
/// The lowest cost: the ReplicaSet removes this pod first.
pub const MIN_COST: &str = "-2147483648";

/// On a Deployment a pin job edited: the job's id…
pub const PINNED_BY: &str = "sdi-migration/pinned-by";
/// …and the `kubernetes.io/hostname` node selector before (JSON: a string or null).
pub const PREVIOUS_SELECTOR: &str = "sdi-migration/previous-hostname-selector";
pub const HOSTNAME: &str = "kubernetes.io/hostname";

/// The original controller's labels on a recreated pod (kept for compatibility).
pub const LEGACY_ORIGINAL_POD: &str = "migration.sdi/original-pod";
pub const LEGACY_TARGET_NODE: &str = "migration.sdi/target-node";

/// Is `v` a valid label value (≤ 63, alphanumerics with `-_.` inside)?
pub fn valid_label_value(v: &str) -> bool {
    v.len() <= 63
        && (v.is_empty()
            || (v.starts_with(|c: char| c.is_ascii_alphanumeric())
                && v.ends_with(|c: char| c.is_ascii_alphanumeric())
                && v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))))
}

#[cfg(test)]
mod tests {
    #[test]
    fn label_values() {
        assert!(super::valid_label_value("nav2-7c9f8-x2kq9"));
        assert!(!super::valid_label_value(&"a".repeat(64)));
        assert!(!super::valid_label_value("-a"));
    }
}
