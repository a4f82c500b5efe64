//! The HTTP API (SPEC §2): the original Migration Controller's endpoints, field
//! for field, plus list, cancel and `/openapi.json`.

pub(crate) mod handlers;
pub(crate) mod live;
pub(crate) mod validate;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use utoipa::OpenApi;

use crate::jobs::runner::Runner;

#[derive(Clone)]
pub struct AppState {
    pub runner: Arc<Runner>,
    pub migrations: Arc<crate::migrations::Migrations>,
    pub telemetry: Arc<crate::telemetry::Telemetry>,
    pub rebalancer: Arc<crate::rebalancer::Rebalancer>,
    pub auto_migration: bool,
    /// Live changes for `GET /api/v1/stream`.
    pub hub: Arc<crate::stream::Hub>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "sdi-migration", description = "Moves pods between Kubernetes nodes safely."),
    paths(
        handlers::create_migration,
        handlers::list_migrations,
        handlers::get_migration,
        handlers::get_migration_status,
        handlers::cancel_migration,
        handlers::metrics,
        handlers::health,
        handlers::ready,
        handlers::plan,
        handlers::policy,
        live::nodes,
        live::stream,
    ),
    components(schemas(
        crate::jobs::model::MigrationRequest,
        crate::jobs::model::MigrationResponse,
        crate::jobs::model::MigrationStatus,
        crate::jobs::model::MigrationDetails,
        crate::jobs::model::ResourceUsage,
        crate::jobs::model::Step,
        crate::jobs::model::CheckpointImage,
        crate::jobs::model::Restore,
        crate::jobs::model::RestoreStatus,
        crate::engine::checkpoint::RestoreCheck,
        crate::config::StrategyChoice,
        sdi_core::job::JobStatus,
        sdi_core::job::StepStatus,
        sdi_core::strategy::Strategy,
        sdi_core::error::Category,
        handlers::ErrorBody,
        handlers::MetricsBody,
        handlers::HealthBody,
        handlers::PlanBody,
        crate::rebalancer::CycleReport,
        crate::rebalancer::Decision,
        crate::policy::PolicyRequest,
        crate::policy::PolicyPod,
        crate::policy::PolicyAnswer,
        crate::web::nodes::NodeSummary,
        crate::web::nodes::NodeRow,
        crate::web::nodes::Band,
        crate::stream::StreamSnapshot,
        crate::stream::PlanView,
    ))
)]
pub struct ApiDoc;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/migrations", get(handlers::list_migrations).post(handlers::create_migration))
        .route("/api/v1/migrations/{id}", get(handlers::get_migration).delete(handlers::cancel_migration))
        .route("/api/v1/migrations/{id}/status", get(handlers::get_migration_status))
        .route("/api/v1/metrics", get(handlers::metrics))
        .route("/health", get(handlers::health))
        .route("/ready", get(handlers::ready))
        .route("/openapi.json", get(handlers::openapi))
        .route("/metrics", get(handlers::prometheus))
        .route("/api/v1/plan", get(handlers::plan))
        .route("/api/v1/migration/policy", axum::routing::post(handlers::policy))
        .route("/api/v1/nodes", get(live::nodes))
        .route("/api/v1/stream", get(live::stream))
        .route("/", get(crate::web::index))
        .route("/ui/app.css", get(crate::web::style))
        .route("/ui/app.js", get(crate::web::script))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .with_state(state)
}
