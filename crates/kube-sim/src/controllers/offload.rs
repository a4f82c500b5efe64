//! Writes the plane's loop hands to helper threads: its kubelets' pod status
//! writes and its ReplicaSets' pod creates.
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
//! A ReplicaSet's pod creates go to the helpers too: a create decides outside
//! the store's lock (its admission reads are re-checked at commit), so
//! helpers create in parallel. While a ReplicaSet's creates are on their way
//! ([`Plane::creates_in_flight`]) it counts them as pods it has, as upstream's
//! controller counts its expectations. (Before creates decided outside the
//! lock, handing them off made the 150,000-pod benchmark slower, 87 s → 101 s:
//! the helpers only queued on the lock.)
//!
//! Writes to one pod keep their order (one helper per pod, first in first
//! out), and while a write is on its way ([`Plane::status_in_flight`]) its
//! kubelet does not act on the pod and a ReplicaSet does not rank it for
//! scale-down; the answer marks the pod for another look.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::informer::Change;
use super::plane::Plane;
use super::state::{Dirty, Msg};
use crate::apiserver::ApiServer;
use crate::cached_pod::CachedPod;
use crate::error::{ApiError, ApiResult};

/// A pod's status write, run on a helper: the pod as written, for the cache.
pub type Write = Box<dyn FnOnce(&ApiServer) -> ApiResult<Arc<CachedPod>> + Send>;

/// What a write is for: a status write of the pod with this key, or a pod
/// create of the ReplicaSet with this key.
#[derive(Debug, Clone)]
pub enum For {
    Status(String),
    Create(String),
}

type Job = (For, Write);
type Answer = (For, ApiResult<Arc<CachedPod>>);

/// Pods the helpers have written whose answers the loop has not brought into
/// its cache yet (key → the resourceVersion written). The pod informer skips
/// these events, as it skips the loop's own writes: the answer carries the
/// same object, so decoding the event too (every create and status write at
/// scale) would only be thrown away.
#[derive(Debug, Default)]
pub struct Unanswered(parking_lot::Mutex<std::collections::HashMap<String, u64>>);

impl Unanswered {
    pub(super) fn written(&self, pod: &CachedPod) {
        let rv = super::state::resource_version(&pod.metadata);
        self.0.lock().insert(super::state::key_of(&pod.metadata), rv);
    }

    /// The answer of the write at `rv` is in the cache (or failed).
    fn answered(&self, key: &str, rv: u64) {
        let mut m = self.0.lock();
        if m.get(key).is_some_and(|w| *w <= rv) {
            m.remove(key);
        }
    }

    /// No answer is coming any more (the helpers are gone).
    fn clear(&self) {
        self.0.lock().clear();
    }

    /// Whether the helpers wrote `key` at `rv` or later and the loop has that answer coming.
    pub fn covers(&self, key: &str, rv: u64) -> bool {
        self.0.lock().get(key).is_some_and(|w| *w >= rv)
    }
}

/// The helpers and the writes they have not answered yet.
pub struct Offload {
    helpers: Vec<mpsc::Sender<Job>>,
    answers: mpsc::Receiver<Answer>,
    /// pod key → its writes on their way.
    in_flight: HashMap<String, usize>,
    /// ReplicaSet key → its pod creates on their way.
    creating: HashMap<String, usize>,
    /// ReplicaSets whose last create failed: they create one pod at a time
    /// until one succeeds, rather than resend every missing pod each retry
    /// (upstream's slow start, e.g. against an exhausted quota).
    failing: HashSet<String>,
    /// Spreads creates over the helpers.
    next: usize,
    stop: CancellationToken,
    /// Shared with the pod informer.
    unanswered: Arc<Unanswered>,
}

impl std::fmt::Debug for Offload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Offload")
            .field("helpers", &self.helpers.len())
            .field("in_flight", &self.in_flight.len())
            .finish()
    }
}

impl Offload {
    /// One helper thread per core: the loop itself is light once its writes
    /// are handed off. They end with the plane (their queues close) or when
    /// the cluster stops.
    pub fn new(api: Arc<ApiServer>, stop: CancellationToken, unanswered: Arc<Unanswered>) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (answer_tx, answers) = mpsc::channel();
        let helpers = (1..=cores)
            .filter_map(|i| {
                let (tx, rx) = mpsc::channel::<Job>();
                let (api, stop, answer_tx) = (api.clone(), stop.clone(), answer_tx.clone());
                let unanswered = unanswered.clone();
                std::thread::Builder::new()
                    .name(format!("kube-sim-writer-{i}"))
                    .spawn(move || {
                        while let Ok((key, write)) = rx.recv() {
                            let answer = write(&api);
                            if let Ok(pod) = &answer {
                                unanswered.written(pod);
                            }
                            if stop.is_cancelled() || answer_tx.send((key, answer)).is_err() {
                                return;
                            }
                        }
                    })
                    .ok()
                    .map(|_| tx)
            })
            .collect();
        Offload {
            helpers,
            answers,
            in_flight: HashMap::new(),
            creating: HashMap::new(),
            failing: HashSet::new(),
            next: 0,
            stop,
            unanswered,
        }
    }

    fn helper_for(&self, key: &str) -> Option<&mpsc::Sender<Job>> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        let n = self.helpers.len();
        (n > 0).then(|| &self.helpers[usize::try_from(h.finish() % n as u64).unwrap_or(0)])
    }
}

impl Plane {
    /// Hand a status write of the pod `key` to its helper (see the module doc).
    pub fn send_status(&mut self, key: &str, write: Write) {
        if self.offload.helper_for(key).is_some_and(|h| h.send((For::Status(key.to_string()), write)).is_ok()) {
            *self.offload.in_flight.entry(key.to_string()).or_default() += 1;
        } else {
            self.status_failed(key.to_string(), &ApiError::internal("no writer thread is running"));
        }
    }

    /// Whether a status write of the pod `key` is on its way.
    pub fn status_in_flight(&self, key: &str) -> bool {
        self.offload.in_flight.contains_key(key)
    }

    /// Hand a pod create of the ReplicaSet `owner` to a helper (made here
    /// when no helper runs).
    pub fn send_create(&mut self, owner: &str, write: Write) {
        *self.offload.creating.entry(owner.to_string()).or_default() += 1;
        self.offload.next = self.offload.next.wrapping_add(1);
        let helper = self.offload.helpers.get(self.offload.next % self.offload.helpers.len().max(1));
        let unsent = match helper {
            Some(h) => h.send((For::Create(owner.to_string()), write)).err().map(|mpsc::SendError((_, w))| w),
            None => Some(write),
        };
        if let Some(write) = unsent {
            let result = write(&self.api);
            self.created(owner.to_string(), result);
        }
    }

    /// How many pod creates of the ReplicaSet `owner` are on their way.
    pub fn creates_in_flight(&self, owner: &str) -> usize {
        self.offload.creating.get(owner).copied().unwrap_or(0)
    }

    /// How many pods the ReplicaSet `owner` may ask for now: one while its
    /// creates fail, else as many as it misses.
    pub fn creates_allowed(&self, owner: &str, missing: usize) -> usize {
        if self.offload.failing.contains(owner) { missing.min(1) } else { missing }
    }

    /// The ReplicaSet `owner` left the cache: forget that its creates failed.
    pub fn forget_creator(&mut self, owner: &str) {
        self.offload.failing.remove(owner);
    }

    /// Wait for every write on its way and bring the answers in (the end of
    /// each batch of the loop). Gives up when the cluster stops.
    pub fn await_writes(&mut self) {
        while !self.offload.in_flight.is_empty() || !self.offload.creating.is_empty() {
            match self.offload.answers.recv_timeout(Duration::from_millis(100)) {
                Ok(a) => self.answered(a),
                Err(mpsc::RecvTimeoutError::Timeout) if !self.offload.stop.is_cancelled() => {}
                Err(_) => {
                    // Stopping, or every helper is gone: these answers will not come.
                    self.offload.in_flight.clear();
                    self.offload.creating.clear();
                    self.offload.unanswered.clear();
                    return;
                }
            }
        }
    }

    fn answered(&mut self, (purpose, result): Answer) {
        let key = match purpose {
            For::Status(key) => key,
            For::Create(owner) => return self.created(owner, result),
        };
        if let Some(n) = self.offload.in_flight.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.offload.in_flight.remove(&key);
                // Even when the cache already holds a newer version: the
                // kubelet held off while the write was on its way.
                self.mark(Dirty::Pod(key.clone()));
            }
        }
        match result {
            Ok(pod) => {
                let rv = super::state::resource_version(&pod.metadata);
                self.on_msg(Msg::Pod(Change::Upsert(pod)));
                self.offload.unanswered.answered(&key, rv);
            }
            Err(e) => self.status_failed(key, &e),
        }
    }

    /// A ReplicaSet's create answered: the pod into the cache (which marks its
    /// owner), or a retry shortly.
    fn created(&mut self, owner: String, result: ApiResult<Arc<CachedPod>>) {
        if let Some(n) = self.offload.creating.get_mut(&owner) {
            *n -= 1;
            if *n == 0 {
                self.offload.creating.remove(&owner);
            }
        }
        match result {
            Ok(pod) => {
                self.offload.failing.remove(&owner);
                super::replicaset::create_event(self, &owner, Ok(&pod));
                let (key, rv) = (super::state::key_of(&pod.metadata), super::state::resource_version(&pod.metadata));
                self.on_msg(Msg::Pod(Change::Upsert(pod)));
                self.offload.unanswered.answered(&key, rv);
            }
            Err(e) => {
                self.note("create pod", &owner, &e);
                super::replicaset::create_event(self, &owner, Err(&e));
                self.offload.failing.insert(owner.clone());
                self.after(1.0, Dirty::ReplicaSet(owner));
            }
        }
    }

    /// The kubelet forgets the pod and syncs it again shortly (as it would on
    /// its next sync period).
    fn status_failed(&mut self, key: String, e: &ApiError) {
        self.note("pod status", &key, e);
        self.kubelet.forget(&key);
        self.after(1.0, Dirty::Pod(key));
    }
}
