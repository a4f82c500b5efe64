//! The kubelets' pod status writes, sent in parallel with the plane's loop.
//!
//! Status writes are most of the control plane's work at scale (two per pod:
//! ContainerCreating, then Running), and each one's cost is in the API
//! server's decision (parsing the stored pod, field ownership, encoding),
//! which runs outside the store's lock. The plane's loop is one thread; the
//! kubelets of a real cluster are thousands of processes. So the loop hands
//! its kubelets' writes to helper threads while it works through its batch,
//! and waits for their answers at the batch's end, bringing them into its
//! cache as an informer would: every batch starts from a cache that holds
//! every write made so far, as when the loop wrote them itself.
//!
//! Writes to one pod keep their order (one helper per pod, first in first
//! out), and a kubelet does not act on a pod while a write of its is on the
//! way ([`Plane::status_in_flight`]): the answer marks the pod for another look.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use tokio_util::sync::CancellationToken;

use super::informer::Change;
use super::plane::Plane;
use super::state::{Dirty, Msg};
use crate::apiserver::{ApiServer, WriteOptions};
use crate::error::{ApiError, ApiResult};

/// One write: a pod's identity, the version its kubelet saw, and the status
/// it wants stored (a status write reads nothing else).
#[derive(Debug)]
pub struct StatusWrite {
    pub key: String,
    pub namespace: String,
    pub name: String,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub status: PodStatus,
    pub manager: &'static str,
}

impl StatusWrite {
    pub fn new(key: &str, pod: &Pod, status: PodStatus, manager: &'static str) -> Self {
        let m = &pod.metadata;
        StatusWrite {
            key: key.to_string(),
            namespace: m.namespace.clone().unwrap_or_default(),
            name: m.name.clone().unwrap_or_default(),
            uid: m.uid.clone(),
            resource_version: m.resource_version.clone(),
            status,
            manager,
        }
    }
}

/// A write's answer: the pod as stored, ready for the cache.
pub type Answer = (String, ApiResult<Arc<Pod>>);

/// The helpers and the writes they have not answered yet.
#[derive(Debug)]
pub struct StatusWriter {
    helpers: Vec<mpsc::Sender<StatusWrite>>,
    answers: mpsc::Receiver<Answer>,
    in_flight: HashMap<String, usize>,
    stop: CancellationToken,
}

impl StatusWriter {
    /// One helper thread per core: the loop itself is light once its writes
    /// are handed off. They end with the plane (their queues close) or when
    /// the cluster stops.
    pub fn new(api: Arc<ApiServer>, stop: CancellationToken) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (answer_tx, answers) = mpsc::channel();
        let helpers = (1..=cores)
            .filter_map(|i| {
                let (tx, rx) = mpsc::channel::<StatusWrite>();
                let (api, stop, answer_tx) = (api.clone(), stop.clone(), answer_tx.clone());
                std::thread::Builder::new()
                    .name(format!("kube-sim-status-{i}"))
                    .spawn(move || {
                        while let Ok(w) = rx.recv() {
                            if stop.is_cancelled() || answer_tx.send(write(&api, w)).is_err() {
                                return;
                            }
                        }
                    })
                    .ok()
                    .map(|_| tx)
            })
            .collect();
        StatusWriter { helpers, answers, in_flight: HashMap::new(), stop }
    }

    fn helper_for(&self, key: &str) -> Option<&mpsc::Sender<StatusWrite>> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        let n = self.helpers.len();
        (n > 0).then(|| &self.helpers[usize::try_from(h.finish() % n as u64).unwrap_or(0)])
    }
}

fn write(api: &ApiServer, w: StatusWrite) -> Answer {
    let res = api.res("", "pods");
    let result = serde_json::to_value(&w.status).map_err(|e| ApiError::internal(e.to_string())).and_then(|status| {
        let body = serde_json::json!({
            "metadata": {"name": w.name, "namespace": w.namespace, "uid": w.uid, "resourceVersion": w.resource_version},
            "status": status,
        });
        let opts = WriteOptions { trusted: true, ..WriteOptions::manager(w.manager) };
        let mut written = api.update(&res, Some(&w.namespace), &w.name, Some("status"), body, &opts)?.object;
        super::state::trim_for_cache(&mut written);
        serde_json::from_value(written)
            .map(Arc::new)
            .map_err(|e| ApiError::internal(format!("decoding a written pod: {e}")))
    });
    (w.key, result)
}

impl Plane {
    /// Hand a kubelet's status write to its helper (see the module doc).
    pub fn queue_status(&mut self, key: &str, pod: &Pod, status: PodStatus, manager: &'static str) {
        let sent =
            self.status.helper_for(key).is_some_and(|h| h.send(StatusWrite::new(key, pod, status, manager)).is_ok());
        if sent {
            *self.status.in_flight.entry(key.to_string()).or_default() += 1;
        } else {
            self.status_written((key.to_string(), Err(ApiError::internal("no status writer is running"))));
        }
    }

    /// Wait for every write on its way and bring the answers in (the end of
    /// each batch of the loop). Gives up when the cluster stops.
    pub fn await_status(&mut self) {
        while !self.status.in_flight.is_empty() {
            match self.status.answers.recv_timeout(Duration::from_millis(100)) {
                Ok(a) => self.status_written(a),
                Err(mpsc::RecvTimeoutError::Timeout) if !self.status.stop.is_cancelled() => {}
                Err(_) => {
                    // Stopping, or every helper is gone: these answers will not come.
                    let keys: Vec<String> = self.status.in_flight.keys().cloned().collect();
                    for k in keys {
                        self.status.in_flight.remove(&k);
                        self.status_written((k, Err(ApiError::internal("the status writers stopped"))));
                    }
                }
            }
        }
    }

    /// Whether a status write for `key` is on its way.
    pub fn status_in_flight(&self, key: &str) -> bool {
        self.status.in_flight.contains_key(key)
    }

    /// Bring a write's answer into the cache and look at the pod again; a
    /// failed write makes its kubelet sync the pod from scratch shortly (as it
    /// would on its next sync period).
    pub fn status_written(&mut self, (key, result): Answer) {
        if let Some(n) = self.status.in_flight.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.status.in_flight.remove(&key);
            }
        }
        match result {
            Ok(pod) => {
                let dirty = self.state.write().apply(Msg::Pod(Change::Upsert(pod)));
                self.mark_all(dirty);
                // Even when the cache already holds a newer version: the
                // kubelet held off while the write was on its way.
                self.mark(Dirty::Pod(key));
            }
            Err(e) => {
                self.note("pod status", &key, &e);
                self.kubelet.forget(&key);
                self.after(1.0, Dirty::Pod(key));
            }
        }
    }
}
