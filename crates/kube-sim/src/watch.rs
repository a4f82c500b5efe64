//! Watches: a task per watcher that turns the store's event history into the
//! stream a client sees — synthetic ADDED events for the initial state, then
//! every change after a resourceVersion, filtered by namespace and selectors
//! (an object that stops matching is DELETED for this watcher), periodic
//! BOOKMARKs when asked, `410 Expired` when the watcher fell behind the retained
//! history, and an end at the timeout, on a forced disconnect or at shutdown.

use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tokio::sync::mpsc;

use crate::apiserver::{ApiServer, Filter};
use crate::error::ApiError;
use crate::resources::ResourceInfo;
use crate::store::{EventKind, Since, Stored};

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Send the current state as ADDED events first ("get state and start at most
    /// recent": resourceVersion unset or "0", or `sendInitialEvents=true`).
    WithInitialState,
    /// Only changes after this resourceVersion.
    After(u64),
}

#[derive(Debug, Clone)]
pub struct WatchRequest {
    pub filter: Filter,
    pub start: Start,
    pub bookmarks: bool,
    /// Close with a BOOKMARK carrying the `k8s.io/initial-events-end` annotation
    /// after the initial state (streaming lists).
    pub initial_events_end: bool,
    pub timeout: Duration,
    /// The simulator's own controllers: not ended by forced disconnects (which
    /// simulate an API server restart for clients), only by shutdown.
    pub internal: bool,
}

/// What a watcher receives.
#[derive(Debug, Clone)]
pub enum WatchItem {
    Event(EventKind, Arc<Stored>),
    Bookmark {
        rv: u64,
        initial_events_end: bool,
    },
    /// The stream's last item: the watcher must re-list.
    Error(ApiError),
}

/// Start a watch. The stream ends at the timeout, on a forced disconnect, at
/// shutdown, or after an `Error` item; dropping it stops the watcher's task.
pub fn watch(
    server: &Arc<ApiServer>,
    res: Arc<ResourceInfo>,
    req: WatchRequest,
) -> impl Stream<Item = WatchItem> + Send + 'static + use<> {
    let (tx, rx) = mpsc::channel::<WatchItem>(256);
    let server = server.clone();
    tokio::spawn(async move { run(server, res, req, tx).await });
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|i| (i, rx)) })
}

/// How long an internal watch lets changes gather after one arrives.
const INTERNAL_COALESCE: std::time::Duration = std::time::Duration::from_millis(1);

async fn run(server: Arc<ApiServer>, res: Arc<ResourceInfo>, req: WatchRequest, tx: mpsc::Sender<WatchItem>) {
    let gr = res.storage.clone();
    let mut notify = server.store.subscribe(&gr);
    let cancel = if req.internal { server.shutdown_token() } else { server.watch_token() };
    let deadline = tokio::time::Instant::now() + req.timeout;
    let mut cursor = match req.start {
        Start::After(rv) => rv,
        Start::WithInitialState => {
            let snap = server.store.snapshot(&gr);
            let prefix = req.filter.namespace.as_ref().map(|n| format!("{n}/"));
            let initial: Vec<Arc<Stored>> = match &prefix {
                Some(p) => snap.iter_prefix(p, None).filter(|o| req.filter.matches(o)).cloned().collect(),
                None => snap.iter_from(None).filter(|o| req.filter.matches(o)).cloned().collect(),
            };
            for o in initial {
                if tx.send(WatchItem::Event(EventKind::Added, o)).await.is_err() {
                    return;
                }
            }
            if req.initial_events_end
                && tx.send(WatchItem::Bookmark { rv: snap.rv, initial_events_end: true }).await.is_err()
            {
                return;
            }
            snap.rv
        }
    };
    let mut bookmark = tokio::time::interval_at(
        tokio::time::Instant::now() + server.config.bookmark_interval,
        server.config.bookmark_interval,
    );
    loop {
        // Drain what happened since the cursor.
        notify.borrow_and_update();
        match server.store.since(&gr, cursor) {
            Since::TooOld { oldest } => {
                let _ = tx
                    .send(WatchItem::Error(ApiError::expired(format!("too old resource version: {cursor} ({oldest})"))))
                    .await;
                return;
            }
            Since::Events(events, now) => {
                for ev in events {
                    let Some(item) = filtered(&req.filter, &ev.kind, &ev.obj, ev.prev.as_deref()) else { continue };
                    if tx.send(item).await.is_err() {
                        return;
                    }
                }
                cursor = now;
            }
        }
        tokio::select! {
            changed = notify.changed() => {
                if changed.is_err() {
                    return;
                }
                if req.internal {
                    // The control plane's informers take what a millisecond
                    // brings at once: at scale that is dozens of writes, each
                    // of which would otherwise wake a worker thread of its own.
                    tokio::time::sleep(INTERNAL_COALESCE).await;
                }
            }
            _ = bookmark.tick(), if req.bookmarks => {
                if tx.send(WatchItem::Bookmark { rv: cursor, initial_events_end: false }).await.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep_until(deadline) => return,
            _ = cancel.cancelled() => return,
            _ = tx.closed() => return,
        }
    }
}

/// How one event looks through a filter: a change that makes an object start
/// matching is an ADDED, one that makes it stop matching a DELETED.
fn filtered(filter: &Filter, kind: &EventKind, obj: &Arc<Stored>, prev: Option<&Stored>) -> Option<WatchItem> {
    let now = filter.matches(obj);
    let before = prev.is_some_and(|p| filter.matches(p));
    let kind = match kind {
        EventKind::Added => now.then_some(EventKind::Added)?,
        EventKind::Deleted => (before || now).then_some(EventKind::Deleted)?,
        EventKind::Modified => match (before, now) {
            (true, true) => EventKind::Modified,
            (false, true) => EventKind::Added,
            (true, false) => EventKind::Deleted,
            (false, false) => return None,
        },
    };
    Some(WatchItem::Event(kind, obj.clone()))
}
