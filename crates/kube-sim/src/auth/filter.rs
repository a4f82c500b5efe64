//! The filter every HTTP request passes before it is served (upstream's
//! authentication, impersonation and authorization filters): who is asking
//! (401 when the credentials are bad), as whom (`Impersonate-*` headers, each
//! authorized), may they (403 with upstream's message), and the request log.
//! It also answers the authentication and authorization APIs themselves
//! ([`super::reviews`]) and the service-account issuer's discovery documents.
//! `/_sim` control endpoints are not filtered.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Value, json};

use super::reviews::Endpoint;
use super::{ANONYMOUS, AUTHENTICATED, Peer, UNAUTHENTICATED, UserInfo, rbac};
use crate::apiserver::ApiServer;
use crate::error::{ApiError, Details};
use crate::protobuf;
use crate::requests::RequestKey;

use super::request::RequestInfo;

/// Upstream's request body limit (3 MiB), for the bodies read here.
const MAX_BODY: usize = 3 * 1024 * 1024;

const JWKS_PATH: &str = "/openid/v1/jwks";
const OIDC_PATH: &str = "/.well-known/openid-configuration";

pub async fn filter(State(server): State<Arc<ApiServer>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path.starts_with("/_sim") {
        return next.run(req).await;
    }
    let peer = req.extensions().get::<ConnectInfo<Peer>>().map(|c| c.0.clone()).unwrap_or_default();
    let headers = req.headers();
    let credentials = headers.contains_key(header::AUTHORIZATION)
        || peer.certificate.is_some()
        || headers.contains_key("impersonate-user")
        || headers.contains_key("impersonate-group");
    let log = server.requests.enabled();
    let rbac_on = server.auth.rbac_enabled();
    let ours = path.ends_with("/token") || path.ends_with("reviews") || path == JWKS_PATH || path == OIDC_PATH;
    if !(credentials || log || rbac_on || ours || !server.auth.config.anonymous) {
        return next.run(req).await;
    }
    let info = RequestInfo::parse(req.method().as_str(), path, req.uri().query().unwrap_or_default());
    let proto = prefers_protobuf(headers) && protobuf::path_supports(path);
    let agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let record = |user: &str, denied: bool| {
        if log {
            let key = RequestKey {
                agent: agent.clone(),
                user: user.to_string(),
                verb: info.verb.clone(),
                group: info.api_group.clone(),
                resource: if info.resource_request { info.full_resource() } else { info.path.clone() },
            };
            server.requests.record_key(key, denied);
        }
    };
    let user = match authenticate(&server, headers, &peer) {
        Some(u) => u,
        None => {
            record("", true);
            return crate::http::error_response_in(&unauthorized(), proto);
        }
    };
    let user = match impersonate(&server, headers, user) {
        Ok(u) => u,
        Err((user, e)) => {
            record(&user, true);
            return crate::http::error_response_in(&e, proto);
        }
    };
    let decision = rbac::authorize(&server, &user, &info);
    if !decision.allowed() {
        record(&user.name, true);
        return crate::http::error_response_in(&forbidden(&user.name, &info, decision.reason()), proto);
    }
    let (jwks, oidc) = (path == JWKS_PATH, path == OIDC_PATH);
    let mut req = req;
    if super::escalation::applies(&server, &user, &info) {
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(b) => b,
            Err(e) => {
                let e = ApiError::bad_request(format!("reading the request body: {e}"));
                return crate::http::error_response_in(&e, proto);
            }
        };
        let ct = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
        if let Err(e) = super::escalation::check(&server, &user, &info, ct, &bytes) {
            record(&user.name, true);
            return crate::http::error_response_in(&e, proto);
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }
    record(&user.name, false);
    if let Some(endpoint) = Endpoint::of(&info) {
        return match serve_endpoint(&server, &user, &endpoint, &info, req).await {
            Ok(r) => r,
            Err(e) => crate::http::error_response_in(&e, proto),
        };
    }
    if info.verb == "get" && jwks {
        return json_response(StatusCode::OK, &server.auth.jwks(), "application/jwk-set+json");
    }
    if info.verb == "get" && oidc {
        return json_response(StatusCode::OK, &oidc_discovery(&server), "application/json");
    }
    next.run(req).await
}

/// The request's user: its client certificate's, its bearer token's, or
/// anonymous; `None` when it must be refused (bad credentials, or none while
/// anonymous requests are off).
fn authenticate(server: &ApiServer, headers: &HeaderMap, peer: &Peer) -> Option<UserInfo> {
    if let Some(Ok(u)) = &peer.certificate {
        return Some(u.clone());
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty());
    match token {
        Some(t) => match server.auth.authenticate_token(server, t, &[]) {
            Ok((u, _)) => Some(u),
            Err(e) => {
                tracing::debug!(target: "kube_sim::auth", error = %e, "unable to authenticate the request");
                None
            }
        },
        // A certificate that does not verify, and nothing else: 401.
        None if peer.certificate.is_some() => None,
        None if server.auth.config.anonymous => Some(UserInfo::anonymous()),
        None => None,
    }
}

fn header_values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect()
}

/// Act as the user the `Impersonate-*` headers name, when the requester may
/// (`impersonate` on users, groups, serviceaccounts, uids, userextras).
fn impersonate(server: &ApiServer, headers: &HeaderMap, requester: UserInfo) -> Result<UserInfo, (String, ApiError)> {
    let user = header_values(headers, "impersonate-user");
    let groups = header_values(headers, "impersonate-group");
    let uid = header_values(headers, "impersonate-uid");
    let extras: Vec<(String, &str)> = headers
        .iter()
        .filter_map(|(k, v)| {
            let key = k.as_str().strip_prefix("impersonate-extra-")?;
            let key = form_urlencoded::parse(format!("k={key}").as_bytes()).next().map(|(_, v)| v.into_owned())?;
            Some((key, v.to_str().ok()?))
        })
        .collect();
    if user.is_empty() && groups.is_empty() && uid.is_empty() && extras.is_empty() {
        return Ok(requester);
    }
    let fail = |e: ApiError| (requester.name.clone(), e);
    let Some(name) = user.first().map(|s| s.to_string()) else {
        return Err(fail(ApiError::bad_request(
            "requested impersonation of groups, uid or extra without impersonating a user (set Impersonate-User)",
        )));
    };
    let mut checks: Vec<RequestInfo> = Vec::new();
    match UserInfo::service_account_of(&name) {
        Some((ns, sa)) => checks.push(RequestInfo::resource("impersonate", "", "serviceaccounts", ns, sa)),
        None => checks.push(RequestInfo::resource("impersonate", "", "users", "", &name)),
    }
    for g in &groups {
        checks.push(RequestInfo::resource("impersonate", "", "groups", "", g));
    }
    for u in &uid {
        checks.push(RequestInfo::resource("impersonate", "authentication.k8s.io", "uids", "", u));
    }
    for (k, v) in &extras {
        checks.push(RequestInfo::resource("impersonate", "authentication.k8s.io", &format!("userextras/{k}"), "", v));
    }
    for c in &checks {
        let d = rbac::authorize(server, &requester, c);
        if !d.allowed() {
            return Err(fail(forbidden(&requester.name, c, d.reason())));
        }
    }
    let mut out = UserInfo {
        name: name.clone(),
        uid: uid.first().map(|s| s.to_string()).unwrap_or_default(),
        ..Default::default()
    };
    out.groups = groups.iter().map(|g| g.to_string()).collect();
    if out.groups.is_empty()
        && let Some((ns, _)) = UserInfo::service_account_of(&name)
    {
        out.groups = UserInfo::service_account_groups(ns);
    }
    if name == ANONYMOUS {
        out.add_group(UNAUTHENTICATED);
    } else {
        out.add_group(AUTHENTICATED);
    }
    for (k, v) in extras {
        out.extra.entry(k).or_default().push(v.to_string());
    }
    Ok(out)
}

/// Upstream's 401.
pub fn unauthorized() -> ApiError {
    ApiError {
        code: 401,
        reason: "Unauthorized",
        message: "Unauthorized".into(),
        retry_after: None,
        details: Box::default(),
    }
}

/// Upstream's 403 for a request `user` may not make (`responsewriters.Forbidden`).
pub fn forbidden(user: &str, r: &RequestInfo, reason: &str) -> ApiError {
    let what = if !r.resource_request {
        format!("User {user:?} cannot {} path {:?}", r.verb, r.path)
    } else if r.namespace.is_empty() {
        format!(
            "User {user:?} cannot {} resource {:?} in API group {:?} at the cluster scope",
            r.verb,
            r.full_resource(),
            r.api_group
        )
    } else {
        format!(
            "User {user:?} cannot {} resource {:?} in API group {:?} in the namespace {:?}",
            r.verb,
            r.full_resource(),
            r.api_group,
            r.namespace
        )
    };
    let why = if reason.is_empty() { what } else { format!("{what}: {reason}") };
    let qualified = if r.api_group.is_empty() { r.resource.clone() } else { format!("{}.{}", r.resource, r.api_group) };
    let message = match (r.resource.is_empty() && r.api_group.is_empty(), r.name.is_empty()) {
        (true, _) => format!("forbidden: {why}"),
        (false, true) => format!("{qualified} is forbidden: {why}"),
        (false, false) => format!("{qualified} {:?} is forbidden: {why}", r.name),
    };
    let details = Details {
        name: (!r.name.is_empty()).then(|| r.name.clone()),
        group: (!r.api_group.is_empty()).then(|| r.api_group.clone()),
        kind: (!r.resource.is_empty()).then(|| r.resource.clone()),
        causes: Vec::new(),
        empty: true,
    };
    ApiError { code: 403, reason: "Forbidden", message, retry_after: None, details: Box::new(details) }
}

/// Whether the first media type the client accepts is protobuf.
fn prefers_protobuf(headers: &HeaderMap) -> bool {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    accept.split(',').next().and_then(|p| p.split(';').next()).map(str::trim) == Some(protobuf::MEDIA_TYPE)
}

async fn serve_endpoint(
    server: &ApiServer,
    user: &UserInfo,
    endpoint: &Endpoint,
    info: &RequestInfo,
    req: Request,
) -> Result<Response, ApiError> {
    let decision = server.faults.decide(
        &info.verb,
        &info.resource,
        (!info.subresource.is_empty()).then_some(info.subresource.as_str()),
    );
    if let Some(d) = decision.delay {
        tokio::time::sleep(d).await;
    }
    if let Some(e) = decision.error {
        return Err(e);
    }
    let (group, kind) = endpoint.kind();
    let headers = req.headers().clone();
    let body = axum::body::to_bytes(req.into_body(), MAX_BODY)
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    let unrecognized = |e: String| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {kind}): couldn't get version/kind; json parse error: {e}"
        ))
    };
    let obj: Value = match ct.split(';').next().unwrap_or_default().trim() {
        "application/json" | "" | "*/*" => serde_json::from_slice(&body).map_err(|e| unrecognized(e.to_string()))?,
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            let text = std::str::from_utf8(&body).map_err(|e| unrecognized(e.to_string()))?;
            serde_yaml_ng::from_str(text).map_err(|e| unrecognized(e.to_string()))?
        }
        protobuf::MEDIA_TYPE => protobuf::decode_any(&body)?.2,
        _ => {
            return Err(ApiError::unknown_body_format(
                "application/json, application/yaml, application/vnd.kubernetes.protobuf",
            ));
        }
    };
    let answer = super::reviews::serve(server, user, endpoint, obj)?;
    let api_version = format!("{group}/v1");
    if prefers_protobuf(&headers)
        && let Some(bytes) = protobuf::encode_object(&answer, &api_version, kind)
    {
        let mut r = Response::new(Body::from(bytes));
        *r.status_mut() = StatusCode::CREATED;
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(protobuf::MEDIA_TYPE));
        return Ok(r);
    }
    Ok(json_response(StatusCode::CREATED, &answer, "application/json"))
}

fn json_response(code: StatusCode, v: &Value, content_type: &'static str) -> Response {
    let mut r = Response::new(Body::from(serde_json::to_vec(v).unwrap_or_default()));
    *r.status_mut() = code;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn oidc_discovery(server: &ApiServer) -> Value {
    let issuer = &server.auth.config.issuer;
    json!({
        "issuer": issuer,
        "jwks_uri": format!("{}{JWKS_PATH}", issuer.trim_end_matches('/')),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_messages_have_upstream_shapes() {
        let e = forbidden("system:serviceaccount:a:b", &RequestInfo::resource("list", "", "pods", "default", ""), "");
        assert_eq!(
            e.message,
            "pods is forbidden: User \"system:serviceaccount:a:b\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        );
        assert_eq!(e.to_status()["details"], json!({"kind": "pods"}));
        let e = forbidden("u", &RequestInfo::resource("create", "", "pods/eviction", "ns", "p"), "");
        assert_eq!(
            e.message,
            "pods \"p\" is forbidden: User \"u\" cannot create resource \"pods/eviction\" in API group \"\" in the namespace \"ns\""
        );
        let e = forbidden(
            "u",
            &RequestInfo::resource("get", "apps", "deployments", "", ""),
            "RBAC: clusterrole.rbac.authorization.k8s.io \"x\" not found",
        );
        assert_eq!(
            e.message,
            "deployments.apps is forbidden: User \"u\" cannot get resource \"deployments\" in API group \"apps\" at the cluster scope: RBAC: clusterrole.rbac.authorization.k8s.io \"x\" not found"
        );
        assert_eq!(e.to_status()["details"], json!({"group": "apps", "kind": "deployments"}));
        let e = forbidden("system:anonymous", &RequestInfo::non_resource("get", "/metrics"), "");
        assert_eq!(e.message, "forbidden: User \"system:anonymous\" cannot get path \"/metrics\"");
        assert_eq!(e.to_status()["details"], json!({}));
        assert_eq!(
            unauthorized().to_status(),
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
        );
    }
}
