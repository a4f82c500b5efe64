//! The undo log: compensating actions a job registers *before* each write, and
//! runs in reverse if the job fails, times out or is cancelled.
//!
//! Registering first means a write whose answer was lost (timeout, dropped
//! connection, a cancelled future) is still undone; undoing something that never
//! happened is a harmless 404.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use parking_lot::Mutex;
use serde_json::Value;

use crate::cluster::{FIELD_MANAGER, retry};

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
}

impl Undo {
    pub fn describe(&self) -> String {
        match self {
            Undo::DeletePod { namespace, name } => format!("delete pod {namespace}/{name}"),
            Undo::DeletePvc { namespace, name } => format!("delete PVC {namespace}/{name}"),
            Undo::PatchPod { namespace, name, .. } => format!("restore pod {namespace}/{name}"),
            Undo::PatchDeployment { namespace, name, .. } => format!("restore Deployment {namespace}/{name}"),
        }
    }

    async fn apply(&self, client: &kube::Client) -> Result<(), kube::Error> {
        let pp = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
        let result = match self {
            Undo::DeletePod { namespace, name } => {
                let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
                // A copy never served traffic: no grace needed.
                let dp = DeleteParams::default().grace_period(0);
                retry::transient(|| api.delete(name, &dp)).await.map(|_| ())
            }
            Undo::DeletePvc { namespace, name } => {
                let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
                let dp = DeleteParams::default();
                retry::transient(|| api.delete(name, &dp)).await.map(|_| ())
            }
            Undo::PatchPod { namespace, name, patch } => {
                let (api, patch): (Api<Pod>, _) = (Api::namespaced(client.clone(), namespace), Patch::Merge(patch));
                retry::transient(|| api.patch(name, &pp, &patch)).await.map(|_| ())
            }
            Undo::PatchDeployment { namespace, name, patch } => {
                let (api, patch): (Api<Deployment>, _) =
                    (Api::namespaced(client.clone(), namespace), Patch::Merge(patch));
                retry::transient(|| api.patch(name, &pp, &patch)).await.map(|_| ())
            }
        };
        match result {
            Err(e) if retry::is_not_found(&e) => Ok(()),
            other => other,
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

    /// Run every action, newest first; return what could not be undone.
    pub async fn rollback(&self, client: &kube::Client) -> Vec<String> {
        let actions: Vec<Undo> = std::mem::take(&mut *self.0.lock());
        let mut failed = Vec::new();
        for action in actions.iter().rev() {
            match action.apply(client).await {
                Ok(()) => tracing::info!(action = %action.describe(), "undone"),
                Err(e) => {
                    tracing::error!(action = %action.describe(), error = %e, "could not undo");
                    failed.push(format!("{}: {e}", action.describe()));
                }
            }
        }
        failed
    }
}
