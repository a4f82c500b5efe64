//! Informers: the simulated controllers' view of one resource, fed by an
//! internal watch. Like client-go's reflector it lists (the watch's initial
//! state), then follows changes from the last resourceVersion, and on `410
//! Expired` re-lists — deleting from the view whatever vanished meanwhile — so
//! the controllers' caches converge whatever happens to the watch.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::apiserver::{ApiServer, Filter};
use crate::resources::ResourceInfo;
use crate::store::EventKind;
use crate::watch::{self, Start, WatchItem, WatchRequest};

/// One change of a watched object.
#[derive(Debug)]
pub enum Change<K> {
    Upsert(Arc<K>),
    Delete(Arc<K>),
}

/// Which version of an object the control plane's cache holds (its
/// resourceVersion), if any.
pub type Held = fn(&super::state::State, &str) -> Option<u64>;

/// Run an informer for `res` until the server shuts down, sending every change,
/// wrapped by `wrap`, to `tx`. A change the cache already holds (the control
/// plane's own write, cached as it was made), or will hold (a helper's write
/// whose answer is on its way, `unanswered`), is not decoded or sent again.
pub async fn run<K, M, F>(
    api: Arc<ApiServer>,
    res: Arc<ResourceInfo>,
    tx: mpsc::Sender<M>,
    wrap: F,
    cache: super::state::Shared,
    held: Held,
    unanswered: Option<Arc<super::offload::Unanswered>>,
) where
    K: DeserializeOwned + k8s_openapi::Metadata<Ty: crate::cached_pod::MetaView>,
    F: Fn(Change<K>) -> M,
{
    let stop = api.shutdown_token();
    // The keys this informer has reported, for pruning after a re-list: the
    // store's own `namespace/name` strings, shared rather than copied (three
    // strings a pod at every event, and as many kept, cost 150 bytes a pod).
    let mut known: HashSet<Arc<str>> = HashSet::new();
    let mut cursor: Option<u64> = None;
    loop {
        if stop.is_cancelled() {
            return;
        }
        let Ok(filter) = Filter::new(&res, None, "", "") else { return };
        let relist = cursor.is_none();
        let req = WatchRequest {
            filter,
            start: cursor.map_or(Start::WithInitialState, Start::After),
            bookmarks: true,
            initial_events_end: relist,
            timeout: Duration::from_secs(3600),
            internal: true,
        };
        let mut seen: Option<Vec<Arc<str>>> = relist.then(Vec::new);
        let mut stream = Box::pin(watch::watch(&api, res.clone(), req));
        while let Some(item) = stream.next().await {
            match item {
                WatchItem::Event(kind, stored) => {
                    cursor = Some(stored.rv);
                    // The control plane's own write, already cached as it was made: nothing to decode.
                    let cached = kind != EventKind::Deleted
                        && (held(&cache.read(), &stored.key).is_some_and(|rv| rv >= stored.rv)
                            || unanswered.as_ref().is_some_and(|u| u.covers(&stored.key, stored.rv)));
                    let obj = if cached {
                        None
                    } else {
                        let decoded = match res.conversion {
                            // Served as stored: decode the stored bytes, no JSON tree in between.
                            crate::resources::Conversion::None => super::state::decode_for_cache::<K>(&stored.body()),
                            _ => super::state::for_cache::<K>(api.render(&res, &stored)),
                        };
                        match decoded {
                            Ok(o) => Some(o),
                            Err(e) => {
                                tracing::warn!(resource = %res.plural, object = %stored.key, error = %e, "informer cannot decode an object");
                                continue;
                            }
                        }
                    };
                    if kind == EventKind::Deleted {
                        known.remove(&stored.key);
                    } else {
                        known.insert(stored.key.clone());
                        if let Some(s) = seen.as_mut() {
                            s.push(stored.key.clone());
                        }
                    }
                    let Some(obj) = obj else { continue };
                    let change = if kind == EventKind::Deleted { Change::Delete(obj) } else { Change::Upsert(obj) };
                    if tx.send(wrap(change)).await.is_err() {
                        return;
                    }
                }
                WatchItem::Bookmark { rv, initial_events_end } => {
                    cursor = Some(rv);
                    if initial_events_end && let Some(s) = seen.take() {
                        // Objects known before the re-list but absent from it are gone.
                        let present: HashSet<Arc<str>> = s.into_iter().collect();
                        let gone: Vec<Arc<str>> = known.iter().filter(|k| !present.contains(*k)).cloned().collect();
                        for k in gone {
                            known.remove(&k);
                            let (namespace, name) = match k.split_once('/') {
                                Some((ns, name)) => (Some(ns), name),
                                None => (None, &*k),
                            };
                            // The receiver knows the object; its identity is enough.
                            let stub = serde_json::json!({"metadata": {"name": name, "namespace": namespace}});
                            let Ok(obj) = serde_json::from_value::<K>(stub) else { continue };
                            if tx.send(wrap(Change::Delete(Arc::new(obj)))).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                WatchItem::Error(e) => {
                    tracing::debug!(resource = %res.plural, error = %e, "informer re-lists");
                    cursor = None;
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::{ServerConfig, WriteOptions};
    use crate::cached_pod::CachedPod;

    /// An API server with pods `ns/a` and `ns/b`, as created.
    fn pods_a_and_b() -> (Arc<ApiServer>, Arc<ResourceInfo>, Vec<serde_json::Value>) {
        let api = ApiServer::new(ServerConfig::default(), crate::Clock::default());
        let pods = api.res("", "pods");
        let opts = WriteOptions::manager("test");
        let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}});
        api.create(&api.res("", "namespaces"), None, ns, &opts).expect("namespace");
        let created = ["a", "b"]
            .map(|name| {
                let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "ns"},
                    "spec": {"containers": [{"name": "c", "image": "x"}]}});
                api.create(&pods, Some("ns"), pod, &opts).expect("created").object
            })
            .to_vec();
        (api, pods, created)
    }

    /// A pod a helper wrote, its answer on the way to the loop, is not decoded
    /// or sent again; a later version of it is.
    #[tokio::test]
    async fn a_write_whose_answer_is_on_its_way_is_not_sent_again() {
        let (api, pods, created) = pods_a_and_b();
        let (a, opts) = (created[0].clone(), WriteOptions::manager("test"));
        let unanswered = Arc::new(crate::controllers::offload::Unanswered::default());
        unanswered.written(&crate::controllers::state::for_cache::<CachedPod>(a.clone()).expect("a pod"));
        let (tx, mut rx) = mpsc::channel(16);
        let cache = crate::controllers::state::Shared::default();
        let task = tokio::spawn(run::<CachedPod, _, _>(
            api.clone(),
            pods.clone(),
            tx,
            |c| c,
            cache,
            |_, _| None,
            Some(unanswered.clone()),
        ));
        async fn next(rx: &mut mpsc::Receiver<Change<CachedPod>>) -> Arc<CachedPod> {
            match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("in time").expect("a change") {
                Change::Upsert(p) | Change::Delete(p) => p,
            }
        }
        assert_eq!(
            next(&mut rx).await.metadata.name.as_deref(),
            Some("b"),
            "a, whose answer is on its way, is skipped"
        );
        let mut labelled = a;
        labelled["metadata"]["labels"] = serde_json::json!({"x": "y"});
        labelled["metadata"]["resourceVersion"] = serde_json::Value::Null;
        api.update(&pods, Some("ns"), "a", None, labelled, &opts).expect("updated");
        let later = next(&mut rx).await;
        assert_eq!(later.metadata.name.as_deref(), Some("a"), "a later version is sent");
        assert!(later.metadata.labels.as_ref().is_some_and(|l| l.get("x").map(String::as_str) == Some("y")));
        api.shutdown();
        task.abort();
    }

    /// An object deleted while the informer could not see it (its history
    /// compacted away) is reported deleted after the re-list, by its key.
    #[tokio::test]
    async fn a_relist_reports_what_vanished_meanwhile() {
        let (api, pods, _) = pods_a_and_b();
        let (tx, mut rx) = mpsc::channel(16);
        let cache = crate::controllers::state::Shared::default();
        let task = tokio::spawn(run::<CachedPod, _, _>(api.clone(), pods.clone(), tx, |c| c, cache, |_, _| None, None));
        let name = |c: &Change<CachedPod>| match c {
            Change::Upsert(p) => ("upsert", p.metadata.name.clone().unwrap_or_default()),
            Change::Delete(p) => ("delete", p.metadata.name.clone().unwrap_or_default()),
        };
        let mut seen = Vec::new();
        for _ in 0..2 {
            seen.push(name(&rx.recv().await.expect("a change")));
        }
        seen.sort();
        assert_eq!(seen, [("upsert", "a".to_string()), ("upsert", "b".to_string())]);
        // No await between these: the informer cannot see the delete's event.
        api.delete(&pods, Some("ns"), "b", &Default::default()).expect("deleted");
        api.store.compact();
        // The re-list reports what is there again, then what is gone.
        let again = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("in time").expect("a change");
        assert_eq!(name(&again), ("upsert", "a".to_string()));
        let gone = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("in time").expect("a change");
        assert_eq!(name(&gone), ("delete", "b".to_string()));
        match gone {
            Change::Delete(p) => assert_eq!(p.metadata.namespace.as_deref(), Some("ns")),
            Change::Upsert(_) => unreachable!("checked above"),
        }
        api.shutdown();
        task.abort();
    }
}
