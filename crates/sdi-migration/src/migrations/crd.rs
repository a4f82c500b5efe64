//! The `PodMigration` custom resource (`migration.sdi.keti.dev/v1alpha1`): a
//! migration as a Kubernetes object, and its translation to and from the job
//! record the REST API has always shown. `deploy/crd.yaml` holds its schema; a
//! test keeps the two in step.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sdi_core::containers::ContainerState;
use sdi_core::error::Category;
use sdi_core::job::{JobStatus, StepStatus};
use sdi_core::strategy::Strategy;
use serde::{Deserialize, Serialize};

use crate::config::StrategyChoice;
use crate::jobs::model::{Job, MigrationDetails, MigrationRequest, ResourceUsage, Step};

pub const GROUP: &str = "migration.sdi.keti.dev";
pub const VERSION: &str = "v1alpha1";
pub const KIND: &str = "PodMigration";
pub const PLURAL: &str = "podmigrations";
pub const API_VERSION: &str = "migration.sdi.keti.dev/v1alpha1";
pub const CRD_NAME: &str = "podmigrations.migration.sdi.keti.dev";
/// Holds a deleted PodMigration until what its migration changed is undone.
pub const FINALIZER: &str = "migration.sdi.keti.dev/undo";
/// Set (to "true") to cancel a migration and keep its record (the REST API's DELETE).
pub const CANCEL: &str = "migration.sdi.keti.dev/cancel";
/// The pod being moved, as a label, so active migrations of a pod are found by selector.
pub const POD_LABEL: &str = "migration.sdi.keti.dev/pod";

/// The CustomResourceDefinition, as `deploy/` installs it (YAML).
pub const DEFINITION: &str = include_str!("../../../../deploy/crd.yaml");

/// Who asked for the migration.
pub const ORIGINS: [&str; 3] = ["api", "rebalancer", "kubectl"];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodMigration {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: PodMigrationSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PodMigrationStatus>,
}

impl kube::Resource for PodMigration {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        KIND.into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        GROUP.into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        VERSION.into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        PLURAL.into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// What to move where: the REST API's `MigrationRequest`, in Kubernetes' casing.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodMigrationSpec {
    pub pod_name: String,
    pub source_node: String,
    pub target_node: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<StrategyChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<bool>,
    #[serde(default, rename = "preservePV", skip_serializing_if = "Option::is_none")]
    pub preserve_pv: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_restart: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodMigrationStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<JobStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    #[serde(default)]
    pub steps: Vec<StatusStep>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub new_pod_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub new_node_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_resources: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimized_resources: Option<Usage>,
    #[serde(default)]
    pub container_states: Vec<StatusContainer>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub checkpoint_path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pv_claim_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checkpoint_images: Vec<crate::jobs::model::CheckpointImage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<crate::jobs::model::Restore>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StatusError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_nanoseconds: Option<u64>,
    #[serde(default, rename = "podUID", skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusStep {
    pub name: String,
    pub status: StepStatus,
    pub start_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub cpu_usage: f64,
    pub memory_usage: u64,
    #[serde(default)]
    pub timestamp: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusContainer {
    pub name: String,
    pub state: String,
    pub restart_count: i32,
    pub should_migrate: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusError {
    pub message: String,
    pub category: Category,
}

/// The origin as the job record keeps it (a bounded label).
pub fn origin_label(o: Option<&str>) -> &'static str {
    match o {
        Some("api") => "api",
        Some("rebalancer") => "rebalancer",
        _ => "kubectl",
    }
}

impl PodMigration {
    /// A new PodMigration for a request (its name is the migration id), held by
    /// the undo finalizer from the start.
    pub fn new(id: &str, req: &MigrationRequest, origin: &'static str) -> PodMigration {
        let mut labels = std::collections::BTreeMap::new();
        if crate::engine::marks::valid_label_value(&req.pod_name) {
            labels.insert(POD_LABEL.to_string(), req.pod_name.clone());
        }
        PodMigration {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            metadata: ObjectMeta {
                name: Some(id.into()),
                namespace: Some(req.pod_namespace.clone()),
                labels: Some(labels),
                finalizers: Some(vec![FINALIZER.into()]),
                ..Default::default()
            },
            spec: PodMigrationSpec {
                pod_name: req.pod_name.clone(),
                source_node: req.source_node.clone(),
                target_node: req.target_node.clone(),
                strategy: req.strategy,
                checkpoint: req.checkpoint,
                preserve_pv: Some(req.preserve_pv).filter(|b| *b),
                timeout_seconds: Some(req.timeout).filter(|t| *t > 0),
                force_restart: Some(req.force_restart).filter(|b| *b),
                origin: Some(origin.into()),
            },
            status: None,
        }
    }

    pub fn id(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    pub fn namespace(&self) -> &str {
        self.metadata.namespace.as_deref().unwrap_or_default()
    }

    pub fn phase(&self) -> JobStatus {
        self.status.as_ref().and_then(|s| s.phase).unwrap_or(JobStatus::Pending)
    }

    /// Cancellation asked through the REST API (the annotation) or kubectl (deletion).
    pub fn cancel_requested(&self) -> bool {
        self.metadata.deletion_timestamp.is_some()
            || self.metadata.annotations.as_ref().and_then(|a| a.get(CANCEL)).is_some_and(|v| v == "true")
    }

    pub fn has_finalizer(&self) -> bool {
        self.metadata.finalizers.iter().flatten().any(|f| f == FINALIZER)
    }

    /// The REST API's request, from the spec.
    pub fn request(&self) -> MigrationRequest {
        let s = &self.spec;
        MigrationRequest {
            pod_name: s.pod_name.clone(),
            pod_namespace: self.namespace().to_string(),
            source_node: s.source_node.clone(),
            target_node: s.target_node.clone(),
            preserve_pv: s.preserve_pv.unwrap_or(false),
            force_restart: s.force_restart.unwrap_or(false),
            timeout: s.timeout_seconds.unwrap_or(0),
            strategy: s.strategy,
            checkpoint: s.checkpoint,
        }
    }

    /// The job record: what the REST API shows.
    pub fn job(&self) -> Job {
        let st = self.status.clone().unwrap_or_default();
        let start =
            st.start_time.clone().or_else(|| self.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string()));
        Job {
            id: self.id().to_string(),
            request: self.request(),
            status: self.phase(),
            details: MigrationDetails {
                start_time: start.unwrap_or_default(),
                end_time: st.end_time,
                duration: st.duration_nanoseconds,
                original_resources: st.original_resources.map(Usage::into_job),
                optimized_resources: st.optimized_resources.map(Usage::into_job),
                container_states: st
                    .container_states
                    .into_iter()
                    .map(|c| ContainerState {
                        name: c.name,
                        state: c.state,
                        restart_count: c.restart_count,
                        should_migrate: c.should_migrate,
                    })
                    .collect(),
                checkpoint_path: st.checkpoint_path,
                pv_claim_name: st.pv_claim_name,
                checkpoint_images: st.checkpoint_images,
                restore: st.restore,
                new_pod_name: st.new_pod_name,
                strategy: st.strategy,
                new_node_name: st.new_node_name,
                steps: st
                    .steps
                    .into_iter()
                    .map(|s| Step {
                        name: s.name,
                        status: s.status,
                        start_time: s.start_time,
                        end_time: s.end_time,
                        message: s.message,
                    })
                    .collect(),
                error: st.error.as_ref().map(|e| e.message.clone()),
                error_category: st.error.map(|e| e.category),
                ..Default::default()
            },
            origin: origin_label(self.spec.origin.as_deref()),
            writes: Vec::new(),
            pod_uid: st.pod_uid,
        }
    }
}

impl Usage {
    fn into_job(self) -> ResourceUsage {
        ResourceUsage { cpu_usage: self.cpu_usage, memory_usage: self.memory_usage, timestamp: self.timestamp }
    }

    fn of(u: &ResourceUsage) -> Usage {
        Usage { cpu_usage: u.cpu_usage, memory_usage: u.memory_usage, timestamp: u.timestamp.clone() }
    }
}

/// The status a job's record shows, to be written to its PodMigration.
pub fn status_of(job: &Job, leader: Option<&str>) -> PodMigrationStatus {
    let d = &job.details;
    let done = job.status.is_terminal();
    let mut conditions = vec![Condition {
        type_: "Succeeded".into(),
        status: match job.status {
            JobStatus::Completed => "True",
            JobStatus::Failed | JobStatus::Cancelled => "False",
            _ => "Unknown",
        }
        .into(),
        reason: match (job.status, d.error_category) {
            (JobStatus::Completed, _) => "Completed".into(),
            (JobStatus::Cancelled, _) => "Cancelled".into(),
            (JobStatus::Failed, Some(c)) => c.camel().into(),
            (JobStatus::Failed, None) => "Failed".into(),
            (_, _) => "Running".into(),
        },
        message: job.message(),
        last_transition_time: if done { d.end_time.clone() } else { Some(d.start_time.clone()) },
    }];
    conditions.retain(|c| !c.reason.is_empty());
    PodMigrationStatus {
        phase: Some(job.status),
        strategy: d.strategy,
        steps: d
            .steps
            .iter()
            .map(|s| StatusStep {
                name: s.name.clone(),
                status: s.status,
                start_time: s.start_time.clone(),
                end_time: s.end_time.clone(),
                message: s.message.clone(),
            })
            .collect(),
        conditions,
        new_pod_name: d.new_pod_name.clone(),
        new_node_name: d.new_node_name.clone(),
        original_resources: d.original_resources.as_ref().map(Usage::of),
        optimized_resources: d.optimized_resources.as_ref().map(Usage::of),
        container_states: d
            .container_states
            .iter()
            .map(|c| StatusContainer {
                name: c.name.clone(),
                state: c.state.clone(),
                restart_count: c.restart_count,
                should_migrate: c.should_migrate,
            })
            .collect(),
        checkpoint_path: d.checkpoint_path.clone(),
        pv_claim_name: d.pv_claim_name.clone(),
        checkpoint_images: d.checkpoint_images.clone(),
        restore: d.restore.clone(),
        error: match (&d.error, d.error_category) {
            (Some(m), Some(c)) => Some(StatusError { message: m.clone(), category: c }),
            (Some(m), None) => Some(StatusError { message: m.clone(), category: Category::Internal }),
            _ => None,
        },
        start_time: Some(d.start_time.clone()).filter(|s| !s.is_empty()),
        end_time: d.end_time.clone(),
        duration_nanoseconds: d.duration,
        pod_uid: job.pod_uid.clone(),
        leader: leader.map(str::to_string),
    }
}
