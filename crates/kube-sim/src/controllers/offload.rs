//! Writes the plane's loop hands to helper threads: its kubelets' pod status
//! writes.
//!
//! At scale most of the control plane's work is the two status writes per pod
//! (ContainerCreating, then Running), and each one's cost is in the API
//! server's decision (parsing the stored pod, field ownership, encoding),
//! which runs outside the store's lock. The loop is one thread; the kubelets
//! of a real cluster are thousands of processes. So the loop hands these
//! writes to helper threads while it works through its batch, and waits for
//! their answers at the batch's end, bringing the written pods into its cache
//! as an informer would: every batch starts from a cache that holds every
//! write made so far, as when the loop wrote them itself.
//!
//! Creates stay on the loop: they decide under the store's lock (admission
//! reads quota, namespaces, priority classes), so helpers would only queue on
//! it — measured, handing off pod and Event creates made the 150,000-pod
//! benchmark slower (87 s → 101 s).
//!
//! Writes to one object keep their order (one helper per route, first in
//! first out), and whoever waits on a write holds a name while it is on the
//! way ([`Plane::held`]: a kubelet does not act on the pod, a ReplicaSet does
//! not rank it for scale-down); the last answer marks it for another look.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::informer::Change;
use super::plane::Plane;
use super::state::{Dirty, Msg};
use crate::apiserver::ApiServer;
use crate::error::{ApiError, ApiResult};

/// A write, run on a helper: what it brings into the cache, if anything.
pub type Work = Box<dyn FnOnce(&ApiServer) -> ApiResult<Option<Msg>> + Send>;

/// A written object, made ready for the cache (what [`Plane`]'s own writes
/// bring in at once).
pub fn into_cache<K: DeserializeOwned>(mut v: Value, wrap: fn(Change<K>) -> Msg) -> ApiResult<Option<Msg>> {
    super::state::trim_for_cache(&mut v);
    serde_json::from_value::<K>(v)
        .map(|k| Some(wrap(Change::Upsert(Arc::new(k)))))
        .map_err(|e| ApiError::internal(format!("decoding a written object: {e}")))
}

/// What the loop does when a write fails.
#[derive(Debug, Clone)]
pub enum OnFailure {
    /// The kubelet forgets the pod and syncs it again shortly (as it would on
    /// its next sync period).
    Resync(String),
}

/// One write handed off.
pub struct Job {
    /// What it is and about which object (for the log).
    pub what: &'static str,
    pub about: String,
    /// Writes with the same route are sent in order.
    pub route: String,
    /// Held while the write is on its way; marked when its last write returns.
    pub hold: Option<Dirty>,
    pub on_failure: OnFailure,
    pub work: Work,
}

struct Answer {
    what: &'static str,
    about: String,
    hold: Option<Dirty>,
    on_failure: OnFailure,
    result: ApiResult<Option<Msg>>,
}

/// The helpers and the writes they have not answered yet.
pub struct Offload {
    helpers: Vec<mpsc::Sender<Job>>,
    answers: mpsc::Receiver<Answer>,
    held: HashMap<Dirty, usize>,
    /// Writes handed off and not answered yet.
    sent: usize,
    stop: CancellationToken,
}

impl std::fmt::Debug for Offload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Offload").field("helpers", &self.helpers.len()).field("held", &self.held.len()).finish()
    }
}

impl Offload {
    /// One helper thread per core: the loop itself is light once its writes
    /// are handed off. They end with the plane (their queues close) or when
    /// the cluster stops.
    pub fn new(api: Arc<ApiServer>, stop: CancellationToken) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (answer_tx, answers) = mpsc::channel();
        let helpers = (1..=cores)
            .filter_map(|i| {
                let (tx, rx) = mpsc::channel::<Job>();
                let (api, stop, answer_tx) = (api.clone(), stop.clone(), answer_tx.clone());
                std::thread::Builder::new()
                    .name(format!("kube-sim-writer-{i}"))
                    .spawn(move || {
                        while let Ok(job) = rx.recv() {
                            if stop.is_cancelled() {
                                return;
                            }
                            let Job { what, about, hold, on_failure, work, .. } = job;
                            let result = (work)(&api);
                            if answer_tx.send(Answer { what, about, hold, on_failure, result }).is_err() {
                                return;
                            }
                        }
                    })
                    .ok()
                    .map(|_| tx)
            })
            .collect();
        Offload { helpers, answers, held: HashMap::new(), sent: 0, stop }
    }

    fn helper_for(&self, route: &str) -> Option<&mpsc::Sender<Job>> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        route.hash(&mut h);
        let n = self.helpers.len();
        (n > 0).then(|| &self.helpers[usize::try_from(h.finish() % n as u64).unwrap_or(0)])
    }
}

impl Plane {
    /// Hand a write to a helper (see the module doc).
    pub fn send_off(&mut self, job: Job) {
        let (what, about, hold, on_failure) = (job.what, job.about.clone(), job.hold.clone(), job.on_failure.clone());
        let sent = self.offload.helper_for(&job.route).is_some_and(|h| h.send(job).is_ok());
        if sent {
            self.offload.sent += 1;
            if let Some(d) = hold {
                *self.offload.held.entry(d).or_default() += 1;
            }
        } else {
            let result = Err(ApiError::internal("no writer thread is running"));
            self.handle(Answer { what, about, hold: None, on_failure, result });
        }
    }

    /// Whether a write that `d` waits on is on its way.
    pub fn held(&self, d: &Dirty) -> bool {
        self.offload.held.contains_key(d)
    }

    /// Wait for every write on its way and bring the answers in (the end of
    /// each batch of the loop). Gives up when the cluster stops.
    pub fn await_writes(&mut self) {
        while self.offload.sent > 0 {
            match self.offload.answers.recv_timeout(Duration::from_millis(100)) {
                Ok(a) => self.answered(a),
                Err(mpsc::RecvTimeoutError::Timeout) if !self.offload.stop.is_cancelled() => {}
                Err(_) => {
                    // Stopping, or every helper is gone: these answers will not come.
                    self.offload.held.clear();
                    self.offload.sent = 0;
                    return;
                }
            }
        }
    }

    fn answered(&mut self, a: Answer) {
        self.offload.sent = self.offload.sent.saturating_sub(1);
        self.handle(a);
    }

    fn handle(&mut self, a: Answer) {
        if let Some(d) = &a.hold
            && let Some(n) = self.offload.held.get_mut(d)
        {
            *n -= 1;
            if *n == 0 {
                self.offload.held.remove(d);
                // Even when the cache already holds a newer version: it held
                // off while the write was on its way.
                self.mark(d.clone());
            }
        }
        match a.result {
            Ok(Some(msg)) => {
                let dirty = self.state.write().apply(msg);
                self.mark_all(dirty);
            }
            Ok(None) => {}
            Err(e) => {
                self.note(a.what, &a.about, &e);
                match a.on_failure {
                    OnFailure::Resync(key) => {
                        self.kubelet.forget(&key);
                        self.after(1.0, Dirty::Pod(key));
                    }
                }
            }
        }
    }
}
