//! What the web view reads: node pressure aggregated (`GET /api/v1/nodes`) and
//! one server-sent-events stream of every change (`GET /api/v1/stream`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Extension, RawQuery, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast;

use super::AppState;
use super::handlers::{ErrorBody, error};
use crate::jobs::ListFilter;
use crate::stream::{Message, PlanView, SNAPSHOT_JOBS, StreamSnapshot};
use crate::web::nodes::{self, NodeQuery, NodeSummary};

/// How often a stream samples node pressure (sent only when it changed).
pub const NODES_EVERY: Duration = Duration::from_secs(2);
/// How soon a client should reconnect after losing the stream.
const RETRY: Duration = Duration::from_secs(2);

fn node_query(raw: Option<&str>) -> Result<NodeQuery, String> {
    let mut q = NodeQuery::default();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        q.set(&k, &v)?;
    }
    Ok(q)
}

/// Node pressure for `query`; `None` until the watches have listed the cluster.
fn node_summary(state: &AppState, query: &NodeQuery) -> Option<NodeSummary> {
    let r = &state.rebalancer;
    if !r.cache.synced() {
        return None;
    }
    let (loads, basis) =
        r.cache.with_index(|i| (nodes::loads(i.snapshot()), nodes::basis_used(r.config.basis, i.snapshot())));
    Some(nodes::summarize(&loads, basis, r.config.threshold_pct, query))
}

fn not_ready() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "Cluster view not ready",
        "the watches have not listed the cluster yet; retry shortly",
    )
}

/// Node pressure against the threshold, aggregated: counts, a histogram, the
/// hottest nodes matching the filter.
#[utoipa::path(get, path = "/api/v1/nodes",
    params(
        ("name" = Option<String>, Query, max_length = 253, description = "part of the node name, any case"),
        ("pressured" = Option<bool>, Query, description = "only nodes above the threshold"),
        ("sort" = Option<String>, Query, pattern = "^(pressure|cpu|memory|name)$", description = "pressure (default), cpu, memory or name"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 5000, description = "nodes listed, 1–5000, default 50"),
    ),
    responses(
        (status = 200, body = NodeSummary),
        (status = 400, description = "Invalid query", body = ErrorBody),
        (status = 503, description = "Cluster view not ready", body = ErrorBody)))]
pub async fn nodes(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let query = match node_query(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, "Invalid query", e),
    };
    match node_summary(&state, &query) {
        Some(s) => Json(s).into_response(),
        None => not_ready(),
    }
}

fn snapshot(state: &AppState, query: &NodeQuery) -> StreamSnapshot {
    let r = &state.rebalancer;
    let jobs = state.runner.store.list(&ListFilter { limit: SNAPSHOT_JOBS, ..Default::default() });
    let plan = match r.latest() {
        Some(cycle) => Some(PlanView::of_cycle(&cycle, r.recent())),
        None if r.cache.synced() => {
            let plan = r.plan_now();
            Some(PlanView::new(&plan, crate::jobs::model::now_rfc3339(), "preview", r.dry_run, Vec::new()))
        }
        None => None,
    };
    StreamSnapshot {
        version: env!("CARGO_PKG_VERSION").into(),
        auto_migration: state.auto_migration,
        dry_run: r.dry_run,
        threshold_pct: r.config.threshold_pct,
        jobs: jobs.iter().map(|j| j.response()).collect(),
        plan,
        nodes: node_summary(state, query),
    }
}

/// One client's stream.
struct Conn {
    state: AppState,
    rx: broadcast::Receiver<Arc<Message>>,
    query: NodeQuery,
    /// Sent first: the snapshot.
    pending: Option<Event>,
    tick: tokio::time::Interval,
    /// The last node summary sent, to send only changes.
    last_nodes: Option<String>,
    /// Who holds the stream, checked again every `AUTH_CACHE_TTL`.
    holder: Option<Holder>,
}

/// A stream outlives the check made when it opened: a token revoked or a right
/// withdrawn since ends it, as a new request would be refused.
struct Holder {
    token: Option<String>,
    user: crate::access::User,
    permission: sdi_core::access::Permission,
    every: tokio::time::Interval,
}

impl Holder {
    /// Completes when the holder of the stream is due to be checked again;
    /// never for a stream no one holds (no authentication).
    async fn due(holder: &mut Option<Holder>) -> &Holder {
        match holder {
            Some(h) => {
                h.every.tick().await;
                h
            }
            None => std::future::pending().await,
        }
    }
}

impl Conn {
    fn snapshot(&mut self) -> Event {
        let s = snapshot(&self.state, &self.query);
        self.last_nodes = s.nodes.as_ref().and_then(|n| serde_json::to_string(n).ok());
        let data = serde_json::to_string(&s).unwrap_or_else(|_| "{}".into());
        Event::default().event("snapshot").retry(RETRY).data(data)
    }

    async fn next(&mut self) -> Option<Event> {
        if let Some(e) = self.pending.take() {
            return Some(e);
        }
        let closed = self.state.hub.closed().clone();
        loop {
            tokio::select! {
                biased;
                _ = closed.cancelled() => return None,
                m = self.rx.recv() => match m {
                    Ok(m) => return Some(Event::default().event(m.event).data(&*m.data)),
                    // Fell behind: start again from the current state.
                    Err(broadcast::error::RecvError::Lagged(_)) => return Some(self.snapshot()),
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                h = Holder::due(&mut self.holder) => {
                    if !super::auth::still_allowed(&self.state, h.token.as_deref(), &h.user, &h.permission).await {
                        tracing::info!(user = %h.user.name, "live stream ended: its holder is no longer allowed");
                        return None;
                    }
                }
                _ = self.tick.tick() => {
                    let Some(s) = node_summary(&self.state, &self.query) else { continue };
                    let Ok(json) = serde_json::to_string(&s) else { continue };
                    if self.last_nodes.as_deref() != Some(json.as_str()) {
                        self.last_nodes = Some(json.clone());
                        return Some(Event::default().event("nodes").data(json));
                    }
                }
            }
        }
    }
}

/// Live changes as server-sent events. The first event, `snapshot`
/// (StreamSnapshot), is the whole state; then `job` (MigrationResponse) at every
/// change of a job (each step, each status), `plan` (PlanView) after each
/// rebalancer cycle, and `nodes` (NodeSummary) when node pressure changed,
/// sampled every 2 s. A client that falls behind gets a fresh `snapshot`. The
/// query parameters of `GET /api/v1/nodes` choose the nodes listed.
#[utoipa::path(get, path = "/api/v1/stream",
    params(
        ("name" = Option<String>, Query, max_length = 253, description = "nodes: part of the name, any case"),
        ("pressured" = Option<bool>, Query, description = "nodes: only those above the threshold"),
        ("sort" = Option<String>, Query, pattern = "^(pressure|cpu|memory|name)$", description = "nodes: pressure (default), cpu, memory or name"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 5000, description = "nodes listed, 1–5000, default 50"),
    ),
    responses(
        (status = 200, description = "An endless `text/event-stream`: events `snapshot` (StreamSnapshot), \
            `job` (MigrationResponse), `plan` (PlanView) and `nodes` (NodeSummary), each `data` one JSON document",
            content_type = "text/event-stream", body = String),
        (status = 400, description = "Invalid query", body = ErrorBody)))]
pub async fn stream(
    State(state): State<AppState>,
    caller: Option<Extension<super::auth::Caller>>,
    granted: Option<Extension<super::auth::Granted>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = match node_query(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, "Invalid query", e),
    };
    let holder = match (caller, granted) {
        (Some(Extension(super::auth::Caller::User(user))), Some(Extension(super::auth::Granted(permission)))) => {
            let every = state.access.ttl().max(Duration::from_secs(1));
            let mut every = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let token = super::auth::bearer_of(&headers).map(str::to_owned);
            Some(Holder { token, user, permission, every })
        }
        _ => None,
    };
    // Subscribe before the snapshot is taken, so no change falls between them.
    let rx = state.hub.subscribe();
    let start = tokio::time::Instant::now() + NODES_EVERY;
    let mut conn = Conn {
        state,
        rx,
        query,
        pending: None,
        tick: tokio::time::interval_at(start, NODES_EVERY),
        last_nodes: None,
        holder,
    };
    conn.tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    conn.pending = Some(conn.snapshot());
    let events =
        futures::stream::unfold(conn, |mut c| async move { c.next().await.map(|e| (Ok::<_, Infallible>(e), c)) });
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_queries_are_decoded_and_checked() {
        let q = node_query(Some("name=Turtle%2Dbot&pressured=true&limit=7&sort=cpu")).unwrap();
        assert_eq!((q.name.as_str(), q.pressured, q.limit), ("turtle-bot", true, 7));
        assert_eq!(node_query(None).unwrap(), NodeQuery::default());
        assert!(node_query(Some("limit=0")).unwrap_err().contains("limit"));
        assert!(node_query(Some("status=running")).unwrap_err().contains("status"));
    }
}
