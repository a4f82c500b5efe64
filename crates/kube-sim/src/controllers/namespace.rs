//! The namespace controller: empties a terminating namespace (deleting its
//! objects with the usual semantics, so pods still terminate gracefully and
//! finalizers still hold), then clears its `kubernetes` finalizer so the
//! namespace itself goes away.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use crate::apiserver::{DeleteOptions, WriteOptions};
use crate::cluster::{Cluster, DynamicEvent};
use crate::meta;

const MANAGER: &str = "namespace-controller";

pub async fn run(cluster: Cluster) {
    let stop = cluster.stopping();
    let Ok(namespaces) = cluster.dynamic("v1", "namespaces", None) else { return };
    let mut events = Box::pin(namespaces.watch());
    let mut terminating: BTreeSet<String> = BTreeSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            ev = events.next() => match ev {
                Some(DynamicEvent::Applied(_, ns)) if meta::is_deleting(&ns) => {
                    terminating.insert(meta::name(&ns).to_string());
                }
                Some(_) => {}
                None => {
                    // The watch ended (forced disconnect): start a new one.
                    events = Box::pin(namespaces.watch());
                }
            },
            _ = tick.tick(), if !terminating.is_empty() => {
                terminating.retain(|ns| !sweep(&cluster, ns));
            }
        }
    }
}

/// Delete what is left in `ns`; true once the namespace is gone.
fn sweep(cluster: &Cluster, ns: &str) -> bool {
    let api = cluster.api();
    let mut remaining = 0usize;
    let mut seen = BTreeSet::new();
    for res in api.registry.all() {
        if !res.namespaced || !seen.insert(res.storage.clone()) {
            continue;
        }
        let snap = api.store.snapshot(&res.storage);
        let prefix = format!("{ns}/");
        let items: Vec<_> = snap.iter_prefix(&prefix, None).cloned().collect();
        for o in items {
            remaining += 1;
            let v: Value = api.render(&res, &o);
            if meta::is_deleting(&v) {
                continue;
            }
            // Read-only views (metrics) are internal data: remove them directly.
            let r = if res.read_only {
                api.store.transact(|t| t.remove(&res.storage, &o.key).map(|_| ()))
            } else {
                api.delete(&res, Some(ns), &o.name, &DeleteOptions::default()).map(|_| ())
            };
            if let Err(e) = r
                && e.code != 404
            {
                tracing::warn!(namespace = ns, object = %o.key, error = %e, "namespace cleanup could not delete");
            }
        }
    }
    if remaining > 0 {
        return false;
    }
    let r = api.finalize_namespace(ns, &json!({"spec": {"finalizers": []}}), &WriteOptions::manager(MANAGER));
    r.is_ok() || r.is_err_and(|e| e.code == 404)
}
