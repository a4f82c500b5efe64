//! The job record and its wire shapes — field for field those of the original
//! Migration Controller, plus `strategy`, `steps` and `error`.

use sdi_core::containers::ContainerState;
use sdi_core::error::Category;
use sdi_core::job::{JobStatus, StepStatus};
use sdi_core::strategy::Strategy;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::cluster::writer::Write;
use crate::config::StrategyChoice;

/// `POST /api/v1/migrations` body. The schema carries every rule the API
/// enforces but one it cannot express: `source_node` and `target_node` must differ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MigrationRequest {
    /// Pod to move (required).
    #[serde(default)]
    #[schema(
        required = true,
        min_length = 1,
        max_length = 253,
        pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
    )]
    pub pod_name: String,
    /// Its namespace (required).
    #[serde(default)]
    #[schema(required = true, min_length = 1, max_length = 63, pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    pub pod_namespace: String,
    /// The node it runs on now (required; checked).
    #[serde(default)]
    #[schema(
        required = true,
        min_length = 1,
        max_length = 253,
        pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
    )]
    pub source_node: String,
    /// Where it should go (required; must differ from `source_node`, exist, be Ready and schedulable, and fit).
    #[serde(default)]
    #[schema(
        required = true,
        min_length = 1,
        max_length = 253,
        pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
    )]
    pub target_node: String,
    /// Create a checkpoint PVC and mount it in the new pod at `/migration-checkpoint`.
    #[serde(default)]
    pub preserve_pv: bool,
    /// Accepted for compatibility with the original controller; has no effect.
    #[serde(default)]
    pub force_restart: bool,
    /// Job timeout in seconds; 0 or absent means the default (600, `MIGRATION_TIMEOUT`); at most a week.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(minimum = 0, maximum = 604800)]
    pub timeout: i64,
    /// `auto` (default: by owner), `recreate`, `surge`, `pin` or `evict`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<StrategyChoice>, example = "auto")]
    pub strategy: Option<StrategyChoice>,
    /// Take container checkpoints: `true` demands one (the job fails without it),
    /// `false` forbids, absent follows `preserve_pv` and `ENABLE_CHECKPOINTING`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<bool>,
}

/// An integer as JSON Schema has it: `947` and `947.0` are the same integer.
/// Anything else is refused with serde's own words for an `i64`.
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct Whole;
    impl serde::de::Visitor<'_> for Whole {
        type Value = i64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("i64")
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<i64, E> {
            if v.fract() == 0.0 && v >= i64::MIN as f64 && v < i64::MAX as f64 {
                Ok(v as i64)
            } else {
                Err(E::invalid_value(serde::de::Unexpected::Float(v), &"a whole number of seconds"))
            }
        }
    }
    d.deserialize_any(Whole)
}

/// Measured pod usage (`original_resources`, `optimized_resources`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResourceUsage {
    /// CPU in cores.
    pub cpu_usage: f64,
    /// Memory in bytes.
    pub memory_usage: u64,
    /// When the metrics API measured it (RFC 3339).
    pub timestamp: String,
}

/// One step of a job, so a client can follow progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Step {
    pub name: String,
    pub status: StepStatus,
    pub start_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct MigrationDetails {
    /// The pod moved, as requested (new: lists need it). Filled from the job's
    /// request when the response is built, not stored twice.
    #[serde(default)]
    pub pod_name: String,
    #[serde(default)]
    pub pod_namespace: String,
    #[serde(default)]
    pub source_node: String,
    #[serde(default)]
    pub target_node: String,
    /// Who asked: `api` or `rebalancer`.
    #[serde(default)]
    pub origin: String,
    pub start_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// Nanoseconds (Go `time.Duration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
    /// Usage measured before the move; absent when the metrics API had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_resources: Option<ResourceUsage>,
    /// Usage measured `POST_MIGRATION_SETTLE` seconds after the move; absent when not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimized_resources: Option<ResourceUsage>,
    pub container_states: Vec<ContainerState>,
    /// Checkpoint archive path(s) on the source node, comma-separated.
    pub checkpoint_path: String,
    pub pv_claim_name: String,
    pub new_pod_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    /// Node the replacement runs on (for `evict` the scheduler chooses it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub new_node_name: String,
    pub steps: Vec<Step>,
    /// Checkpoint images the source node's agent pushed, one per checkpointed container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checkpoint_images: Vec<CheckpointImage>,
    /// Whether the new pod restores the checkpointed state, and if not why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<Restore>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What kind of failure `error` is (`timeout`, `budget`, `target`, …): a
    /// bounded vocabulary for dashboards and alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_category: Option<Category>,
}

/// A container's checkpoint image in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointImage {
    pub container: String,
    /// `registry/repository@sha256:…`: what the new pod's container runs.
    pub image: String,
    /// Size of the checkpoint archive (the image's layer).
    pub bytes: u64,
    /// Deleted from the registry (after `CHECKPOINT_RETENTION`, or on undo).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

/// Whether the migrated containers continue from their checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RestoreStatus {
    /// The new pod runs the checkpoint images and is Ready.
    Restored,
    /// Not attempted (not asked for, or not possible and not demanded): the pod starts fresh.
    Skipped,
    /// Demanded and impossible, or the restored pod did not come up.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Restore {
    pub status: RestoreStatus,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// The job as the service keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: String,
    pub request: MigrationRequest,
    pub status: JobStatus,
    pub details: MigrationDetails,
    /// Who asked: `api` or `rebalancer`.
    pub origin: &'static str,
    /// Every write the job made to the cluster, in order (set when it ends).
    pub writes: Vec<Write>,
    /// The uid of the pod being moved (a later pod may reuse its name).
    pub pod_uid: Option<String>,
}

/// `GET /api/v1/migrations/{id}` (and the list's items, and the 202 of a POST).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MigrationResponse {
    pub migration_id: String,
    pub status: JobStatus,
    pub message: String,
    pub details: MigrationDetails,
}

/// `GET /api/v1/migrations/{id}/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MigrationStatus {
    pub migration_id: String,
    pub status: JobStatus,
    pub message: String,
    pub start_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
}

impl Job {
    pub fn message(&self) -> String {
        self.status.message(self.details.error.as_deref())
    }

    /// The wire view; the request's pod and nodes are echoed in `details` from
    /// the one copy the job keeps (`request`).
    pub fn response(&self) -> MigrationResponse {
        let r = &self.request;
        MigrationResponse {
            migration_id: self.id.clone(),
            status: self.status,
            message: self.message(),
            details: MigrationDetails {
                pod_name: r.pod_name.clone(),
                pod_namespace: r.pod_namespace.clone(),
                source_node: r.source_node.clone(),
                target_node: r.target_node.clone(),
                origin: self.origin.into(),
                ..self.details.clone()
            },
        }
    }

    pub fn status_view(&self) -> MigrationStatus {
        MigrationStatus {
            migration_id: self.id.clone(),
            status: self.status,
            message: self.message(),
            start_time: self.details.start_time.clone(),
            end_time: self.details.end_time.clone(),
            duration_seconds: self.details.duration.map(|ns| ns as f64 / 1e9),
        }
    }

    /// Does this job concern `node` (as source, target, or where the pod landed)?
    pub fn touches_node(&self, node: &str) -> bool {
        self.request.source_node == node || self.request.target_node == node || self.details.new_node_name == node
    }
}

/// `migration-` + 8 lowercase hex digits, as the original.
pub fn new_id() -> String {
    let u = uuid::Uuid::new_v4().simple().to_string();
    format!("migration-{}", &u[..8])
}

/// RFC 3339 with nanoseconds, UTC (Go's `time.Time` JSON shape).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_original_shape() {
        for _ in 0..100 {
            let id = new_id();
            assert_eq!(id.len(), "migration-".len() + 8);
            assert!(id["migration-".len()..].chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{id}");
        }
    }

    #[test]
    fn timeouts_are_whole_numbers_however_written() {
        let r =
            |t: &str| serde_json::from_str::<MigrationRequest>(&format!(r#"{{"timeout": {t}}}"#)).map(|r| r.timeout);
        assert_eq!(r("947").unwrap(), 947);
        assert_eq!(r("947.0").unwrap(), 947);
        assert_eq!(r("-3").unwrap(), -3);
        assert!(r("1.5").unwrap_err().to_string().contains("whole number"));
        assert!(r("\"60\"").is_err());
        assert!(r("1e400").is_err());
        assert_eq!(serde_json::from_str::<MigrationRequest>("{}").unwrap().timeout, 0);
    }

    #[test]
    fn optional_details_are_omitted_not_null() {
        let d = MigrationDetails { start_time: "t".into(), ..Default::default() };
        let v = serde_json::to_value(&d).unwrap();
        for absent in
            ["end_time", "duration", "original_resources", "optimized_resources", "error", "error_category", "strategy"]
        {
            assert!(v.get(absent).is_none(), "{absent} should be omitted: {v}");
        }
        for present in ["container_states", "checkpoint_path", "pv_claim_name", "new_pod_name", "steps"] {
            assert!(v.get(present).is_some(), "{present} should be present: {v}");
        }
    }
}
