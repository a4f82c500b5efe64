//! Route handlers: parse, validate, call the runner, shape the answer.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sdi_core::admission::{Reason, Refusal};
use sdi_core::job::JobStatus;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::auth::{self, Caller};
use super::{ApiDoc, AppState, validate};
use crate::jobs::model::{MigrationRequest, MigrationResponse, MigrationStatus};
use crate::jobs::runner::CancelError;
use crate::jobs::store::ListFilter;
use axum::Extension;
use sdi_core::access::Operation;

/// Every error: `{"error": what, "details": why}` as the original controller.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
    pub details: String,
    /// The job concerned (a 409 for a pod already being moved names it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration_id: Option<String>,
}

pub fn error(status: StatusCode, error: &str, details: impl Into<String>) -> Response {
    (status, Json(ErrorBody { error: error.into(), details: details.into(), migration_id: None })).into_response()
}

/// The answer to a refused migration request: the status says what kind of
/// refusal it is (the only place reasons become HTTP statuses).
fn refusal(r: Refusal) -> Response {
    let status = match r.reason {
        Reason::PodNotFound => StatusCode::NOT_FOUND,
        Reason::AlreadyMigrating(_) | Reason::NotOnSource | Reason::PodTerminating | Reason::PodFinished => {
            StatusCode::CONFLICT
        }
        Reason::StrategyNotApplicable | Reason::CheckpointingDisabled | Reason::TargetUnavailable => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Reason::ApiUnavailable | Reason::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
    };
    let migration_id = match &r.reason {
        Reason::AlreadyMigrating(id) => Some(id.clone()),
        _ => None,
    };
    (status, Json(ErrorBody { error: r.reason.title().into(), details: r.details, migration_id })).into_response()
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MetricsBody {
    pub total_migrations: u64,
    pub successful_migrations: u64,
    pub failed_migrations: u64,
    pub cancelled_migrations: u64,
    /// Mean duration of finished migrations, nanoseconds (Go `time.Duration`).
    pub average_duration: u64,
    /// Mean of (before − after) / before over completed migrations where usage was
    /// measured both times; 0 when none was.
    pub cpu_savings_percentage: f64,
    pub memory_savings_percentage: f64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HealthBody {
    pub status: String,
    pub service: String,
    pub version: String,
}

/// Start a migration.
#[utoipa::path(post, path = "/api/v1/migrations", request_body = MigrationRequest,
    responses(
        (status = 202, description = "Job started", body = MigrationResponse),
        (status = 400, description = "Invalid request format / Validation failed", body = ErrorBody),
        (status = 404, description = "Pod not found", body = ErrorBody),
        (status = 409, description = "Pod not on source node, or already being migrated", body = ErrorBody),
        (status = 422, description = "Target node unavailable or strategy not applicable", body = ErrorBody),
        (status = 503, description = "Kubernetes API unavailable or shutting down", body = ErrorBody),
    ))]
pub async fn create_migration(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    // A request is a JSON object; serde would also accept an array for a struct.
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v) if !v.is_object() => {
            let kind = match v {
                serde_json::Value::Array(_) => "an array",
                serde_json::Value::String(_) => "a string",
                serde_json::Value::Number(_) => "a number",
                serde_json::Value::Bool(_) => "a boolean",
                _ => "null",
            };
            return error(
                StatusCode::BAD_REQUEST,
                "Invalid request format",
                format!("expected a JSON object, got {kind}"),
            );
        }
        _ => {}
    }
    let request: MigrationRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, "Invalid request format", e.to_string()),
    };
    // Authorized in the pod's namespace as soon as it is known, before anything about the pod is revealed.
    if !request.pod_namespace.is_empty() {
        let op = Operation::CreateMigration { namespace: request.pod_namespace.clone() };
        if let Err(r) = auth::check(&state, &caller, op).await {
            return r;
        }
    }
    if let Err(details) = validate::migration_request(&request) {
        return error(StatusCode::BAD_REQUEST, "Validation failed", details);
    }
    match state.migrations.create(request, "api").await {
        Ok(job) => {
            let mut response = job.response();
            response.message = "Migration started".into();
            (StatusCode::ACCEPTED, Json(response)).into_response()
        }
        Err(r) => refusal(r),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    namespace: Option<String>,
    node: Option<String>,
    limit: Option<String>,
}

/// List migrations, newest first.
#[utoipa::path(get, path = "/api/v1/migrations",
    params(
        ("status" = Option<JobStatus>, Query, description = "pending, running, completed, failed or cancelled"),
        ("namespace" = Option<String>, Query, description = "pod namespace"),
        ("node" = Option<String>, Query, description = "source, target or landing node"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1–1000, default 100"),
    ),
    responses((status = 200, body = [MigrationResponse]), (status = 400, body = ErrorBody)))]
pub async fn list_migrations(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Response {
    let q: ListQuery = match serde_urlencoded_lite(query.as_deref().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, "Invalid query", e),
    };
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => match JobStatus::parse(s) {
            Some(s) => Some(s),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Invalid query",
                    format!("status {s:?} is not one of pending, running, completed, failed, cancelled"),
                );
            }
        },
    };
    let limit = match q.limit.as_deref() {
        None => 100,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Invalid query",
                    format!("limit {l:?} must be between 1 and 1000"),
                );
            }
        },
    };
    let namespace = q.namespace.filter(|s| !s.is_empty());
    let filter = ListFilter { status, namespace: namespace.clone(), node: q.node.filter(|s| !s.is_empty()), limit };
    // One namespace asked: its permission decides. Otherwise the caller sees
    // the namespaces where they may list (all when allowed cluster-wide).
    if namespace.is_some() {
        if let Err(r) = auth::check(&state, &caller, Operation::ListMigrations { namespace }).await {
            return r;
        }
        let items: Vec<MigrationResponse> = state.runner.store.list(&filter).iter().map(|j| j.response()).collect();
        return Json(items).into_response();
    }
    let all = state.runner.store.list(&ListFilter { limit: usize::MAX, ..filter });
    let namespaces: std::collections::BTreeSet<String> = all.iter().map(|j| j.request.pod_namespace.clone()).collect();
    let scope = match auth::list_scope(&state, &caller, namespaces).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let items: Vec<MigrationResponse> =
        all.iter().filter(|j| scope.admits(&j.request.pod_namespace)).take(limit).map(|j| j.response()).collect();
    Json(items).into_response()
}

/// Query strings: `a=b&c=d`, percent-decoded; unknown keys are an error naming them.
fn serde_urlencoded_lite(q: &str) -> Result<ListQuery, String> {
    let mut out = ListQuery::default();
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v =
            percent_decode(v).ok_or_else(|| format!("query parameter {k:?} is not valid UTF-8 percent-encoding"))?;
        match k {
            "status" => out.status = Some(v),
            "namespace" => out.namespace = Some(v),
            "node" => out.node = Some(v),
            "limit" => out.limit = Some(v),
            other => {
                return Err(format!("unknown query parameter {other:?}; expected status, namespace, node or limit"));
            }
        }
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// `get` on the migration's PodMigration, in its pod's namespace. An unknown
/// id is left to the handler's 404: there is nothing to protect.
async fn may_read(state: &AppState, caller: &Caller, id: &str) -> Result<(), Response> {
    match state.runner.store.get(id) {
        Some(job) => {
            let op = Operation::GetMigration { namespace: job.request.pod_namespace.clone(), name: id.to_string() };
            auth::check(state, caller, op).await
        }
        None => Ok(()),
    }
}

fn not_found_job(id: &str) -> Response {
    error(StatusCode::NOT_FOUND, "Migration not found", format!("no migration with id {id}"))
}

/// One migration, with every detail.
#[utoipa::path(get, path = "/api/v1/migrations/{id}", params(("id" = String, Path, description = "migration id")),
    responses((status = 200, body = MigrationResponse), (status = 404, body = ErrorBody)))]
pub async fn get_migration(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = may_read(&state, &caller, &id).await {
        return r;
    }
    match state.runner.store.rendered(&id) {
        Some(json) => ([(axum::http::header::CONTENT_TYPE, "application/json")], json).into_response(),
        None => not_found_job(&id),
    }
}

/// A migration's status only.
#[utoipa::path(get, path = "/api/v1/migrations/{id}/status", params(("id" = String, Path, description = "migration id")),
    responses((status = 200, body = MigrationStatus), (status = 404, body = ErrorBody)))]
pub async fn get_migration_status(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = may_read(&state, &caller, &id).await {
        return r;
    }
    match state.runner.store.get(&id) {
        Some(job) => Json(job.status_view()).into_response(),
        None => not_found_job(&id),
    }
}

/// Cancel a migration: it stops, undoes what it created, and ends `cancelled`.
#[utoipa::path(delete, path = "/api/v1/migrations/{id}", params(("id" = String, Path, description = "migration id")),
    responses(
        (status = 202, description = "Cancellation under way", body = MigrationResponse),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Already finished", body = ErrorBody)))]
pub async fn cancel_migration(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    if let Some(job) = state.runner.store.get(&id) {
        let op = Operation::CancelMigration { namespace: job.request.pod_namespace.clone(), name: id.clone() };
        if let Err(r) = auth::check(&state, &caller, op).await {
            return r;
        }
    }
    match state.migrations.cancel(&id).await {
        Ok(job) => {
            let mut r = job.response();
            r.message = "Migration cancellation requested".into();
            (StatusCode::ACCEPTED, Json(r)).into_response()
        }
        Err(CancelError::NotFound) => not_found_job(&id),
        Err(CancelError::Unavailable(details)) => {
            error(StatusCode::SERVICE_UNAVAILABLE, "Kubernetes API unavailable", details)
        }
        Err(CancelError::AlreadyFinished(job, _)) => {
            let body = ErrorBody {
                error: "Migration already finished".into(),
                details: format!("{id} is {}; there is nothing to cancel", job.status.as_str()),
                migration_id: Some(id),
            };
            (StatusCode::CONFLICT, Json(body)).into_response()
        }
    }
}

/// Totals since the service started.
#[utoipa::path(get, path = "/api/v1/metrics", responses((status = 200, body = MetricsBody)))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    // From the migrations' records (the PodMigrations kept as history), so
    // every replica answers the same and a restart loses nothing.
    let mut s = sdi_core::job::Summary::default();
    let usage = |r: &Option<crate::jobs::model::ResourceUsage>| {
        r.as_ref().map(|u| sdi_core::job::Usage { cpu_cores: u.cpu_usage, memory_bytes: u.memory_usage as f64 })
    };
    for j in state.runner.store.list(&ListFilter::default()) {
        s.started();
        s.finished(
            j.status,
            u128::from(j.details.duration.unwrap_or(0)),
            usage(&j.details.original_resources),
            usage(&j.details.optimized_resources),
        );
    }
    Json(MetricsBody {
        total_migrations: s.total,
        successful_migrations: s.successful,
        failed_migrations: s.failed,
        cancelled_migrations: s.cancelled,
        average_duration: s.average_duration_ns(),
        cpu_savings_percentage: s.cpu_savings_percentage(),
        memory_savings_percentage: s.memory_savings_percentage(),
    })
    .into_response()
}

#[utoipa::path(get, path = "/health", responses((status = 200, body = HealthBody)))]
pub async fn health() -> Response {
    Json(HealthBody {
        status: "healthy".into(),
        service: "sdi-migration".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
    .into_response()
}

/// Readiness: 200 once this replica's caches (the cluster, the PodMigrations)
/// have listed everything once, 503 until then. Liveness is `/health`.
#[utoipa::path(get, path = "/ready", responses((status = 200, body = HealthBody), (status = 503, body = ErrorBody)))]
pub async fn ready(State(state): State<AppState>) -> Response {
    if state.rebalancer.cache.synced() && state.migrations.synced() {
        Json(HealthBody {
            status: "ready".into(),
            service: "sdi-migration".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        })
        .into_response()
    } else {
        error(StatusCode::SERVICE_UNAVAILABLE, "Not ready", "the caches have not listed the cluster yet")
    }
}

/// Prometheus metrics (OpenMetrics text).
/// `GET /api/v1/plan`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanBody {
    /// What the rebalancer would do now: pressure per node, moves with reasons,
    /// skipped candidates with reasons (policy not consulted, nothing started).
    #[schema(value_type = Object)]
    pub plan: sdi_core::planner::Plan,
    pub dry_run: bool,
    /// Whether the autonomous loop runs (`ENABLE_AUTO_MIGRATION`).
    pub auto_migration: bool,
    /// The newest cycle of the loop, with the policy's answers and the jobs started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_cycle: Option<crate::rebalancer::CycleReport>,
    /// Whether each planned move could carry the pod's state (checkpoint images),
    /// and why not; absent without `CHECKPOINT_REGISTRY`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checkpoint_restore: Vec<crate::engine::checkpoint::RestoreCheck>,
}

/// What the rebalancer would do now, with every reason.
#[utoipa::path(get, path = "/api/v1/plan", responses((status = 200, body = PlanBody), (status = 503, body = ErrorBody)))]
pub async fn plan(State(state): State<AppState>) -> Response {
    let r = &state.rebalancer;
    if !r.cache.synced() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Cluster view not ready",
            "the watches have not listed the cluster yet; retry shortly",
        );
    }
    let plan = r.plan_now();
    let pairs: Vec<(String, String, String, String)> =
        plan.moves.iter().map(|m| (m.namespace.clone(), m.pod.clone(), m.source.clone(), m.target.clone())).collect();
    let checkpoint_restore = crate::engine::checkpoint::checks(&state.runner.engine, &pairs).await;
    let body = PlanBody {
        plan,
        dry_run: r.dry_run,
        auto_migration: state.auto_migration,
        last_cycle: r.latest(),
        checkpoint_restore,
    };
    Json(body).into_response()
}

/// The built-in MALE policy, with the remote policy engine's contract.
#[utoipa::path(post, path = "/api/v1/migration/policy", request_body = crate::policy::PolicyRequest,
    responses((status = 200, body = crate::policy::PolicyAnswer), (status = 400, body = ErrorBody)))]
pub async fn policy(State(state): State<AppState>, body: Bytes) -> Response {
    let req: crate::policy::PolicyRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, "Invalid request format", e.to_string()),
    };
    if req.pod.name.is_empty() || req.pod.namespace.is_empty() {
        return error(StatusCode::BAD_REQUEST, "Validation failed", "pod.name and pod.namespace are required");
    }
    Json(state.rebalancer.builtin(&req.pod.namespace, &req.pod.name, &req.pod.labels)).into_response()
}

/// Prometheus metrics: OpenMetrics when the scraper asks for it (Prometheus
/// does), the classic text format otherwise.
pub async fn prometheus(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    state.telemetry.active.set(state.runner.active() as i64);
    let accept = headers.get(axum::http::header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (body, content_type) = if accept.contains("application/openmetrics-text") {
        (state.telemetry.encode(), "application/openmetrics-text; version=1.0.0; charset=utf-8")
    } else {
        (state.telemetry.encode_text(), "text/plain; version=0.0.4; charset=utf-8")
    };
    ([(axum::http::header::CONTENT_TYPE, content_type)], body).into_response()
}

pub async fn openapi() -> Response {
    Json(ApiDoc::openapi()).into_response()
}

pub async fn not_found(uri: axum::http::Uri) -> Response {
    error(StatusCode::NOT_FOUND, "Not found", format!("no endpoint at {}; see /openapi.json", uri.path()))
}

pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed", format!("{method} is not supported on {}", uri.path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        let q = serde_urlencoded_lite("status=running&node=w%2D1&limit=5").unwrap();
        assert_eq!(
            (q.status.as_deref(), q.node.as_deref(), q.limit.as_deref()),
            (Some("running"), Some("w-1"), Some("5"))
        );
        assert!(serde_urlencoded_lite("bogus=1").unwrap_err().contains("bogus"));
        assert!(serde_urlencoded_lite("node=%zz").is_err());
        assert!(serde_urlencoded_lite("node=%ff").is_err());
    }
}
