//! State that moves with the pod: a container checkpoint archive becomes an
//! OCI checkpoint image, pushed to `CHECKPOINT_REGISTRY` by the node agent on
//! the source node, and the new pod runs that image so the runtime restores it.
//!
//! Coordination goes through the API server, never a direct connection, so it
//! works the same on kube-sim and on a real cluster:
//!
//! 1. the engine takes the kubelet checkpoint (archive paths on the source node),
//!    then annotates the migration's `PodMigration` with an [`ImageRequest`]
//!    ([`REQUEST`]: node, archives, target repository, size limit);
//! 2. the agent on that node (it watches PodMigrations) builds and streams each
//!    image, deletes the archives, and answers with an [`ImageAnswer`]
//!    ([`ANSWER`]: image digests and sizes, or why not);
//! 3. the engine, waiting on that object, creates the new pod with the images.
//!
//! A withdrawn request (marked [`ImageRequest::withdrawn`] by cancel, undo or an
//! engine that gave up waiting; or its PodMigration deleted) stops the agent's
//! push, whatever it pushed is deleted, and so are the archives — also when
//! the agent never started on it.

pub mod agent;
#[cfg(feature = "demo")]
pub mod local;
pub mod oci;
pub mod registry;
pub mod retention;
pub mod settings;

use serde::{Deserialize, Serialize};

pub use crate::jobs::model::CheckpointImage;

/// PodMigration annotation: the engine's request to the source node's agent (JSON [`ImageRequest`]).
pub const REQUEST: &str = "checkpoint.migration.sdi.keti.dev/request";
/// PodMigration annotation: the agent's answer (JSON [`ImageAnswer`]).
pub const ANSWER: &str = "checkpoint.migration.sdi.keti.dev/answer";
/// Where the kubelet writes archives (the paths it reports are under it).
pub const KUBELET_CHECKPOINT_DIR: &str = "/var/lib/kubelet/checkpoints";
/// Field manager of the agent's one write.
pub const AGENT_MANAGER: &str = "sdi-migration-agent";

/// One archive to turn into an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Archive {
    pub container: String,
    /// As the kubelet reported it (under [`KUBELET_CHECKPOINT_DIR`] on the node).
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageRequest {
    /// Unique per request (the job id and a counter): an answer names the request it answers.
    pub id: String,
    pub node: String,
    /// Repository within the registry (`<prefix>/<namespace>/<pod>`).
    pub repository: String,
    /// Tag of the image index (`<container>-<migration id>` is appended per container).
    pub tag: String,
    /// `CHECKPOINT_MAX_BYTES`: larger archives are refused (and deleted).
    pub max_bytes: u64,
    pub archives: Vec<Archive>,
    /// The engine no longer wants the images (cancel, undo, or it gave up
    /// waiting): the agent stops any push, deletes the archives and answers
    /// nothing. Kept rather than removed so an agent that never saw the
    /// request, or was down, still deletes the archives (they hold memory).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub withdrawn: bool,
}

impl ImageRequest {
    /// The same request, withdrawn.
    pub fn withdrawn(&self) -> ImageRequest {
        ImageRequest { withdrawn: true, ..self.clone() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageAnswer {
    pub id: String,
    pub node: String,
    #[serde(default)]
    pub images: Vec<CheckpointImage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The tag of one container's image.
pub fn tag(request_tag: &str, container: &str) -> String {
    let t: String = format!("{container}-{request_tag}").chars().take(128).collect();
    t
}
