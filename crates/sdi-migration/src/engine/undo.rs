//! The undo log: compensating actions a job registers *before* each write (the
//! writer does it), run in reverse if the job fails, times out or is cancelled.
//!
//! Registering first means a write whose answer was lost (timeout, dropped
//! connection, a cancelled future) is still undone; undoing something that never
//! happened is a harmless 404.

use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Undo {
    DeletePod {
        namespace: String,
        name: String,
    },
    DeletePvc {
        namespace: String,
        name: String,
    },
    /// A JSON merge patch that restores what the job changed on a pod.
    PatchPod {
        namespace: String,
        name: String,
        patch: Value,
    },
    PatchDeployment {
        namespace: String,
        name: String,
        patch: Value,
    },
    /// Withdraw the checkpoint image request on a PodMigration (the agent stops
    /// pushing and deletes the archives) and delete the images it answered with.
    WithdrawCheckpoint {
        namespace: String,
        migration: String,
        request: Box<crate::checkpoint::ImageRequest>,
    },
}

impl Undo {
    pub fn describe(&self) -> String {
        match self {
            Undo::DeletePod { namespace, name } => format!("delete pod {namespace}/{name}"),
            Undo::DeletePvc { namespace, name } => format!("delete PVC {namespace}/{name}"),
            Undo::PatchPod { namespace, name, .. } => format!("restore pod {namespace}/{name}"),
            Undo::PatchDeployment { namespace, name, .. } => format!("restore Deployment {namespace}/{name}"),
            Undo::WithdrawCheckpoint { namespace, migration, .. } => {
                format!("withdraw the checkpoint images of {namespace}/{migration}")
            }
        }
    }

    /// The write it makes: verb, resource, `namespace/name`.
    pub fn target(&self) -> (&'static str, &'static str, String) {
        match self {
            Undo::DeletePod { namespace, name } => ("delete", "pods", format!("{namespace}/{name}")),
            Undo::DeletePvc { namespace, name } => ("delete", "persistentvolumeclaims", format!("{namespace}/{name}")),
            Undo::PatchPod { namespace, name, .. } => ("patch", "pods", format!("{namespace}/{name}")),
            Undo::PatchDeployment { namespace, name, .. } => ("patch", "deployments", format!("{namespace}/{name}")),
            Undo::WithdrawCheckpoint { namespace, migration, .. } => {
                ("patch", "podmigrations", format!("{namespace}/{migration}"))
            }
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct UndoLog(Arc<Mutex<Vec<Undo>>>);

impl UndoLog {
    pub fn push(&self, u: Undo) {
        self.0.lock().push(u);
    }

    /// The job reached the point of no return (the replacement serves): forget the log.
    pub fn commit(&self) {
        self.0.lock().clear();
    }

    pub fn is_empty(&self) -> bool {
        self.0.lock().is_empty()
    }

    /// Every action, oldest first, leaving the log empty.
    pub fn take(&self) -> Vec<Undo> {
        std::mem::take(&mut *self.0.lock())
    }
}
