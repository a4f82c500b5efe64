//! Authentication and authorization of every request, as HTTP: a missing or
//! refused token is 401 with `WWW-Authenticate: Bearer`, a missing permission
//! 403 naming it, an API server that cannot answer 503 — never an open door.
//!
//! The middleware authenticates every route that is not open and authorizes
//! the routes whose permission the path alone decides (`sdi_core::access`);
//! the migration handlers authorize once they know the pod's namespace
//! ([`check`]).

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sdi_core::access::{ListScope, Operation, Permission, required};

use super::AppState;
use super::handlers::ErrorBody;
use crate::access::{AccessError, Decision, User};

/// Who is calling, as the middleware found out (a request extension).
#[derive(Debug, Clone)]
pub enum Caller {
    /// `AUTH_MODE=none`: everyone may do everything.
    Anyone,
    User(User),
}

/// The permission the middleware checked for the request's route (a request
/// extension, beside [`Caller::User`]): a long-lived request checks it again.
#[derive(Debug, Clone)]
pub struct Granted(pub Permission);

fn bearer(req: &Request) -> Option<&str> {
    bearer_of(req.headers())
}

/// The bearer token of a request's headers, if it sends one.
pub fn bearer_of(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// 401, 503: the answer to a caller who could not be authenticated.
pub fn refused(e: &AccessError) -> Response {
    let (status, title, challenge) = match e {
        AccessError::NoCredentials => (StatusCode::UNAUTHORIZED, "Unauthorized", r#"Bearer realm="sdi-migration""#),
        AccessError::InvalidToken(_) => {
            (StatusCode::UNAUTHORIZED, "Unauthorized", r#"Bearer realm="sdi-migration", error="invalid_token""#)
        }
        AccessError::Unavailable(_) => {
            let body = ErrorBody {
                error: "Kubernetes API unavailable".into(),
                details: format!("{e}; access is refused until it answers, retry shortly"),
                migration_id: None,
            };
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, HeaderValue::from_static("5"))],
                Json(body),
            )
                .into_response();
        }
    };
    let body = ErrorBody { error: title.into(), details: e.to_string(), migration_id: None };
    (status, [(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge))], Json(body)).into_response()
}

fn forbidden(user: &User, permission: &Permission, reason: &str) -> Response {
    let mut details = format!("user {:?} may not {permission}", user.name);
    if !reason.is_empty() {
        details.push_str(&format!(" ({reason})"));
    }
    let body = ErrorBody { error: "Forbidden".into(), details, migration_id: None };
    (StatusCode::FORBIDDEN, Json(body)).into_response()
}

/// The middleware: every request but the open ones carries a valid token.
pub async fn guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if !state.access.enforced() {
        req.extensions_mut().insert(Caller::Anyone);
        return next.run(req).await;
    }
    let op = Operation::Route { method: req.method().as_str().to_string(), path: req.uri().path().to_string() };
    let permission = required(&op);
    if permission == Some(Permission::Open) {
        return next.run(req).await;
    }
    // As the API server does: a verified client certificate first, then a bearer token.
    let certificate =
        req.extensions().get::<axum::extract::ConnectInfo<crate::tls::Peer>>().and_then(|c| c.0.certificate.clone());
    let authenticated = match certificate {
        Some((name, mut groups)) => {
            groups.push("system:authenticated".into());
            Ok(User { name, uid: String::new(), groups, extra: Default::default() })
        }
        None => state.access.authenticate(bearer(&req).unwrap_or("")).await,
    };
    let user = match authenticated {
        Ok(user) => user,
        Err(e) => {
            // Who failed, never with what: the token is not logged.
            tracing::debug!(path = %op_path(&op), error = %e, "request not authenticated");
            return refused(&e);
        }
    };
    if let Some(p) = permission {
        if let Err(r) = authorize(&state, &user, &p).await {
            return r;
        }
        req.extensions_mut().insert(Granted(p));
    }
    req.extensions_mut().insert(Caller::User(user));
    next.run(req).await
}

fn op_path(op: &Operation) -> &str {
    match op {
        Operation::Route { path, .. } => path,
        _ => "",
    }
}

async fn authorize(state: &AppState, user: &User, permission: &Permission) -> Result<(), Response> {
    match state.access.authorize(user, permission).await {
        Ok(Decision::Allowed) => Ok(()),
        Ok(Decision::Denied(reason)) => {
            tracing::info!(user = %user.name, permission = %permission, "request forbidden");
            Err(forbidden(user, permission, &reason))
        }
        Err(e) => Err(refused(&e)),
    }
}

/// Whether the holder of a long-lived request may still have it: its token
/// (when it sent one) still authenticates as the same user, and the user still
/// holds `permission`. Fails closed: an API server that cannot answer says no.
pub async fn still_allowed(state: &AppState, token: Option<&str>, user: &User, permission: &Permission) -> bool {
    if let Some(token) = token {
        match state.access.authenticate(token).await {
            Ok(now) if now.name == user.name => {}
            _ => return false,
        }
    }
    matches!(state.access.authorize(user, permission).await, Ok(Decision::Allowed))
}

/// May `caller` perform `op`? The answer to send when not.
pub async fn check(state: &AppState, caller: &Caller, op: Operation) -> Result<(), Response> {
    let Caller::User(user) = caller else { return Ok(()) };
    match required(&op) {
        Some(p) => authorize(state, user, &p).await,
        None => Ok(()),
    }
}

/// Which namespaces' migrations `caller` may list: all when allowed
/// cluster-wide, else those of `namespaces` where `list` is allowed.
pub async fn list_scope(
    state: &AppState,
    caller: &Caller,
    namespaces: impl IntoIterator<Item = String>,
) -> Result<ListScope, Response> {
    let Caller::User(user) = caller else { return Ok(ListScope::All) };
    let allowed = |namespace: Option<String>| {
        let p = required(&Operation::ListMigrations { namespace });
        async move {
            match p {
                Some(p) => match state.access.authorize(user, &p).await {
                    Ok(d) => Ok(d == Decision::Allowed),
                    Err(e) => Err(refused(&e)),
                },
                None => Ok(true),
            }
        }
    };
    if allowed(None).await? {
        return Ok(ListScope::All);
    }
    let mut scope = Vec::new();
    for ns in namespaces {
        if allowed(Some(ns.clone())).await? {
            scope.push(ns);
        }
    }
    Ok(ListScope::Namespaces(scope))
}
