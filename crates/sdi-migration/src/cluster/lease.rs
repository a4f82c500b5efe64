//! Leader election on a `coordination.k8s.io/v1` Lease, with fencing.
//!
//! Every replica keeps trying: it takes the Lease when it is free or expired,
//! renews it every retry period while it holds it, and releases it on shutdown.
//! A leader that cannot renew within its renew deadline stops acting. The lease
//! tells the others; to keep a leader that was paused (or cut off) from writing
//! after someone else took over, [`Leadership::is_leader`] is false from the
//! moment its last successful renewal is older than the renew deadline — by the
//! local monotonic clock, which runs on while the process is stopped — and the
//! one writer checks it before every write it makes for a migration.
//!
//! Why not `kube-lease-manager`: it supports kube 5, but reports only changes of
//! leadership, not when the current hold was last confirmed, so a writer could
//! not fence itself without reading the Lease before every write.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::writer::Writer;

/// The Lease's name.
pub const LEASE_NAME: &str = "sdi-migration";

#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub namespace: String,
    /// Who we are: `POD_NAME` (Downward API), else the host name.
    pub identity: String,
    pub duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

/// This replica's identity: `POD_NAME`, else `HOSTNAME`, else a random one.
pub fn identity() -> String {
    std::env::var("POD_NAME")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("sdi-migration-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]))
}

#[derive(Debug)]
struct Shared {
    identity: String,
    /// Leading until then (monotonic); `None` when not leading.
    until: Mutex<Option<Instant>>,
    changed: watch::Sender<bool>,
}

/// Whether this replica leads, shared by everything that acts only as leader.
#[derive(Debug, Clone)]
pub struct Leadership(Arc<Shared>);

impl Leadership {
    /// A replica that always leads (`LEADER_ELECTION=false`: one replica only).
    pub fn always(identity: &str) -> Leadership {
        let l = Leadership::candidate(identity);
        *l.0.until.lock() = Some(Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600));
        l.0.changed.send_replace(true);
        l
    }

    /// A replica that leads once [`spawn`] wins it the Lease.
    pub fn candidate(identity: &str) -> Leadership {
        Leadership(Arc::new(Shared {
            identity: identity.into(),
            until: Mutex::new(None),
            changed: watch::Sender::new(false),
        }))
    }

    /// Leading now: the last renewal is recent enough that nobody else may have taken over.
    pub fn is_leader(&self) -> bool {
        self.0.until.lock().is_some_and(|t| Instant::now() < t)
    }

    pub fn identity(&self) -> &str {
        &self.0.identity
    }

    /// Leadership changes (true: became leader).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.0.changed.subscribe()
    }

    fn lead_until(&self, until: Instant) {
        *self.0.until.lock() = Some(until);
        self.0.changed.send_if_modified(|v| !std::mem::replace(v, true));
    }

    /// Stop leading: `lost` when the lease was taken or could not be renewed (a
    /// warning), not when this replica shuts down and hands it back.
    fn step_down(&self, lost: bool) {
        *self.0.until.lock() = None;
        if self.0.changed.send_if_modified(|v| std::mem::replace(v, false)) {
            if lost {
                tracing::warn!(identity = %self.0.identity, "lost the leader lease; stopping migrations and the rebalancer");
            } else {
                tracing::info!(identity = %self.0.identity, "stepping down as leader");
            }
        }
    }
}

/// What a Lease says, as the election needs it.
fn holder(lease: &Lease) -> (Option<&str>, Option<jiff::Timestamp>, i32) {
    let spec = lease.spec.as_ref();
    let holder = spec.and_then(|s| s.holder_identity.as_deref()).filter(|h| !h.is_empty());
    let renewed = spec.and_then(|s| s.renew_time.as_ref()).map(|t| t.0);
    let duration = spec.and_then(|s| s.lease_duration_seconds).unwrap_or(15);
    (holder, renewed, duration)
}

/// Take part in the election for `leadership` until `stop` (then release the
/// Lease if held) or `abandon` (then just stop, as a crashed process would).
pub fn spawn(
    client: kube::Client,
    writer: Writer,
    config: LeaseConfig,
    leadership: &Leadership,
    stop: CancellationToken,
    abandon: CancellationToken,
) {
    let l = leadership.clone();
    tokio::spawn(async move {
        let api: Api<Lease> = Api::namespaced(client, &config.namespace);
        let mut last_renewal: Option<Instant> = None;
        // The Lease as our last write left it: a renewal is then one request.
        let mut held: Option<Lease> = None;
        loop {
            let attempt = Instant::now();
            match try_lead(&api, &writer, &config, &mut held).await {
                Ok(true) => {
                    if last_renewal.is_none() {
                        tracing::info!(identity = %config.identity, "became the leader");
                    }
                    last_renewal = Some(attempt);
                    l.lead_until(attempt + config.renew_deadline);
                }
                Ok(false) => {
                    last_renewal = None;
                    l.step_down(true);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "leader election: cannot read or write the Lease");
                    if last_renewal.is_some_and(|t| t.elapsed() > config.renew_deadline) {
                        last_renewal = None;
                        l.step_down(true);
                    }
                }
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = abandon.cancelled() => {
                    l.step_down(false);
                    return;
                }
                _ = tokio::time::sleep(config.retry_period) => {}
            }
        }
        if last_renewal.is_some() && l.is_leader() {
            l.step_down(false);
            if let Err(e) = release(&api, &writer, &config).await {
                tracing::warn!(error = %e, "could not release the leader lease; it expires on its own");
            } else {
                tracing::info!(identity = %config.identity, "released the leader lease");
            }
        }
    });
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

/// One round: `Ok(true)` when we hold the Lease after it. While we hold it, a
/// renewal replaces the object our last write returned (conditional on its
/// resourceVersion); anything else reads the Lease first.
async fn try_lead(
    api: &Api<Lease>,
    writer: &Writer,
    config: &LeaseConfig,
    held: &mut Option<Lease>,
) -> Result<bool, kube::Error> {
    let me = config.identity.as_str();
    let seconds = i32::try_from(config.duration.as_secs()).unwrap_or(i32::MAX);
    if let Some(mut lease) = held.take() {
        let spec = lease.spec.get_or_insert_with(Default::default);
        spec.renew_time = Some(now());
        match writer.lease_replace(&config.namespace, &lease).await {
            Ok(renewed) => {
                *held = Some(renewed);
                return Ok(true);
            }
            // Changed under us (or gone): read it and decide afresh.
            Err(e) if matches!(super::retry::code(&e), Some(409 | 404)) => {}
            Err(e) => return Err(e),
        }
    }
    let Some(mut lease) = api.get_opt(LEASE_NAME).await? else {
        let lease = Lease {
            metadata: ObjectMeta { name: Some(LEASE_NAME.into()), ..Default::default() },
            spec: Some(LeaseSpec {
                holder_identity: Some(me.into()),
                lease_duration_seconds: Some(seconds),
                acquire_time: Some(now()),
                renew_time: Some(now()),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        return match writer.lease_create(&config.namespace, &lease).await {
            Ok(created) => {
                *held = Some(created);
                Ok(true)
            }
            Err(e) if super::retry::code(&e) == Some(409) => Ok(false),
            Err(e) => Err(e),
        };
    };
    let (held_by, renewed, duration) = holder(&lease);
    let held_by = held_by.map(str::to_string);
    let expired = renewed.is_none_or(|t| {
        jiff::Timestamp::now().duration_since(t) > jiff::SignedDuration::from_secs(i64::from(duration))
    });
    let spec = lease.spec.get_or_insert_with(Default::default);
    match held_by.as_deref() {
        Some(h) if h == me => {
            spec.renew_time = Some(now());
            spec.lease_duration_seconds = Some(seconds);
        }
        Some(_) if !expired => return Ok(false),
        _ => {
            spec.holder_identity = Some(me.into());
            spec.acquire_time = Some(now());
            spec.renew_time = Some(now());
            spec.lease_duration_seconds = Some(seconds);
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
    }
    // Conditional on the resourceVersion read: of two replicas racing, one wins.
    match writer.lease_replace(&config.namespace, &lease).await {
        Ok(written) => {
            *held = Some(written);
            Ok(true)
        }
        Err(e) if super::retry::code(&e) == Some(409) => Ok(false),
        Err(e) => Err(e),
    }
}

async fn release(api: &Api<Lease>, writer: &Writer, config: &LeaseConfig) -> Result<(), kube::Error> {
    let Some(mut lease) = api.get_opt(LEASE_NAME).await? else { return Ok(()) };
    if holder(&lease).0 != Some(config.identity.as_str()) {
        return Ok(());
    }
    let spec = lease.spec.get_or_insert_with(Default::default);
    spec.holder_identity = None;
    spec.renew_time = None;
    spec.acquire_time = None;
    writer.lease_replace(&config.namespace, &lease).await.map(|_| ())
}
