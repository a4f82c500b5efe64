//! The simulated control plane: the loops that make the API server behave like
//! a cluster — scheduler, kubelets, workload controllers, garbage collector,
//! disruption controller, volume binder, namespace controller — plus the
//! metrics API and the kubelet checkpoint endpoint. Every loop is written
//! against the in-process API: what it reads and writes is exactly what a
//! client would see. Where a behaviour is simplified, `crates/kube-sim/README.md`
//! says how.

mod checkpoint;
mod cronjob;
mod daemonset;
mod deployment;
mod disruption;
mod gc;
mod informer;
mod job;
mod kubelet;
mod metrics;
mod namespace;
mod nodes;
mod offload;
mod plane;
mod quota;
mod replicaset;
pub mod runtime;
mod scheduler;
pub mod state;
mod statefulset;
pub mod timeline;
mod volumes;

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, ResourceQuota};

use crate::cached_pod::CachedPod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use tokio::sync::mpsc;

use crate::Cluster;
use state::Msg;

pub use kubelet::{BEHAVIOUR, SHUTDOWN, STARTUP};

/// Start the namespace, ClusterRole aggregation and token controllers (always: they
/// are part of the API server's lifecycle) and, unless the cluster is inert,
/// every other loop.
pub fn start(cluster: &Cluster, simulate: bool) {
    tokio::spawn(namespace::run(cluster.clone()));
    tokio::spawn(crate::auth::aggregation::run(cluster.clone()));
    tokio::spawn(crate::auth::tokens::run_token_controller(cluster.clone()));
    if !simulate {
        return;
    }
    let api = cluster.api().clone();
    let shared = cluster.sim().clone();
    let metrics = Arc::new(metrics::Metrics::new(shared.clone(), api.clock.clone()));
    api.set_computed(metrics.clone());
    api.set_node_proxy(Arc::new(checkpoint::Kubelets {
        state: shared.clone(),
        clock: api.clock.clone(),
        metrics,
        dir: api.config.checkpoint_dir.clone(),
    }));
    // Room for bursts (a ReplicaSet creating hundreds of pods): an informer
    // blocked on a full channel stops reading its watch, falls behind the
    // retained history and must re-list everything.
    let (tx, rx) = mpsc::channel::<Msg>(65_536);
    // Pods the loop's helper threads wrote, answers on their way (`offload`).
    let unanswered = Arc::new(offload::Unanswered::default());
    macro_rules! inform {
        ($t:ty, $group:expr, $plural:expr, $msg:path, $field:ident) => {
            inform!($t, $group, $plural, $msg, $field, None)
        };
        ($t:ty, $group:expr, $plural:expr, $msg:path, $field:ident, $unanswered:expr) => {
            tokio::spawn(informer::run::<$t, Msg, _>(
                api.clone(),
                api.res($group, $plural),
                tx.clone(),
                $msg,
                shared.clone(),
                |s, k| s.$field.get(k).map(|o| state::resource_version(&o.metadata)),
                $unanswered,
            ));
        };
    }
    inform!(Node, "", "nodes", Msg::Node, nodes);
    inform!(CachedPod, "", "pods", Msg::Pod, pods, Some(unanswered.clone()));
    inform!(ReplicaSet, "apps", "replicasets", Msg::ReplicaSet, replicasets);
    inform!(Deployment, "apps", "deployments", Msg::Deployment, deployments);
    inform!(StatefulSet, "apps", "statefulsets", Msg::StatefulSet, statefulsets);
    inform!(DaemonSet, "apps", "daemonsets", Msg::DaemonSet, daemonsets);
    inform!(PodDisruptionBudget, "policy", "poddisruptionbudgets", Msg::Pdb, pdbs);
    inform!(PersistentVolumeClaim, "", "persistentvolumeclaims", Msg::Pvc, pvcs);
    inform!(PersistentVolume, "", "persistentvolumes", Msg::Pv, pvs);
    inform!(Job, "batch", "jobs", Msg::Job, jobs);
    inform!(CronJob, "batch", "cronjobs", Msg::CronJob, cronjobs);
    inform!(ResourceQuota, "", "resourcequotas", Msg::Quota, quotas);
    // The loop works in batches that keep its thread busy for a while: on a
    // thread of its own, not a worker of the runtime that serves the API (and
    // runs the caller's tasks), which it would otherwise hold for whole
    // batches at a time.
    let plane = plane::Plane::new(cluster.clone(), shared, unanswered);
    let spawned = std::thread::Builder::new().name("kube-sim-plane".into()).spawn(move || {
        match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt.block_on(plane.run(rx)),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the control plane's runtime; nothing will be simulated")
            }
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the control plane's thread; nothing will be simulated");
    }
}
