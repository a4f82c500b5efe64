//! The HTTP API (SPEC §2): the original Migration Controller's endpoints, field
//! for field, plus list, cancel and `/openapi.json`.

pub(crate) mod auth;
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
    /// Who may call what (`AUTH_MODE`).
    pub access: Arc<crate::access::Access>,
}

/// Bearer tokens on every operation but the probes, with the answers access
/// control adds (401, 403, 503): declared once here rather than on each path.
struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder, header::Header};
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.description = Some(
            "A Kubernetes bearer token (e.g. `kubectl create token NAME`), checked with TokenReview; permissions \
             with SubjectAccessReview (AUTH_MODE=kubernetes)"
                .into(),
        );
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        openapi.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
        let error = || ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
        let string = || utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::String).build();
        let unauthorized = ResponseBuilder::new()
            .description("No bearer token, or one the cluster does not accept (expired, revoked, unknown)")
            .header("WWW-Authenticate", Header::new(string()))
            .content("application/json", error())
            .build();
        let forbidden = ResponseBuilder::new()
            .description("The caller lacks the permission the error's details name (RBAC)")
            .content("application/json", error())
            .build();
        let unavailable = ResponseBuilder::new()
            .description("Kubernetes API unavailable: access cannot be checked, so it is refused")
            .content("application/json", error())
            .build();
        for (path, item) in openapi.paths.paths.iter_mut() {
            let open = ["/health", "/ready"].contains(&path.as_str());
            for op in
                [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch].into_iter().flatten()
            {
                if open {
                    op.security = Some(vec![SecurityRequirement::default()]);
                    continue;
                }
                let responses = &mut op.responses.responses;
                responses.entry("401".into()).or_insert_with(|| RefOr::T(unauthorized.clone()));
                responses.entry("403".into()).or_insert_with(|| RefOr::T(forbidden.clone()));
                responses.entry("503".into()).or_insert_with(|| RefOr::T(unavailable.clone()));
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "sdi-migration", description = "Moves pods between Kubernetes nodes safely."),
    modifiers(&Security),
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
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::guard))
        .with_state(state)
}
