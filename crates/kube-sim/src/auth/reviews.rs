//! The create-only APIs of authentication and authorization: TokenRequest
//! (`serviceaccounts/{name}/token`), TokenReview, SelfSubjectReview,
//! SubjectAccessReview, SelfSubjectAccessReview, LocalSubjectAccessReview and
//! SelfSubjectRulesReview. They store nothing: each answers 201 with the
//! object it was sent and a `status`.

use serde_json::{Map, Value, json};

use super::rbac::{self, Decision};
use super::request::RequestInfo;
use super::tokens::{BoundObject, TokenOptions};
use super::{UserInfo, aggregate};
use crate::apiserver::ApiServer;
use crate::error::{ApiError, ApiResult, Cause};

pub const AUTHN: &str = "authentication.k8s.io";
pub const AUTHZ: &str = "authorization.k8s.io";

/// A request for one of these APIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    TokenRequest { namespace: String, name: String },
    TokenReview,
    SelfSubjectReview,
    SubjectAccessReview,
    SelfSubjectAccessReview,
    LocalSubjectAccessReview { namespace: String },
    SelfSubjectRulesReview,
}

impl Endpoint {
    /// The endpoint a request addresses, if it is one of these (`create` only;
    /// other verbs reach the generic handler, which answers 405).
    pub fn of(r: &RequestInfo) -> Option<Endpoint> {
        if !r.resource_request || r.verb != "create" || r.api_version != "v1" {
            return None;
        }
        Some(match (r.api_group.as_str(), r.resource.as_str(), r.subresource.as_str(), r.namespace.is_empty()) {
            ("", "serviceaccounts", "token", false) if !r.name.is_empty() => {
                Endpoint::TokenRequest { namespace: r.namespace.clone(), name: r.name.clone() }
            }
            (AUTHN, "tokenreviews", "", true) => Endpoint::TokenReview,
            (AUTHN, "selfsubjectreviews", "", true) => Endpoint::SelfSubjectReview,
            (AUTHZ, "subjectaccessreviews", "", true) => Endpoint::SubjectAccessReview,
            (AUTHZ, "selfsubjectaccessreviews", "", true) => Endpoint::SelfSubjectAccessReview,
            (AUTHZ, "selfsubjectrulesreviews", "", true) => Endpoint::SelfSubjectRulesReview,
            (AUTHZ, "localsubjectaccessreviews", "", false) => {
                Endpoint::LocalSubjectAccessReview { namespace: r.namespace.clone() }
            }
            _ => return None,
        })
    }

    /// (group, kind) of the object sent and answered.
    pub fn kind(&self) -> (&'static str, &'static str) {
        match self {
            Endpoint::TokenRequest { .. } => (AUTHN, "TokenRequest"),
            Endpoint::TokenReview => (AUTHN, "TokenReview"),
            Endpoint::SelfSubjectReview => (AUTHN, "SelfSubjectReview"),
            Endpoint::SubjectAccessReview => (AUTHZ, "SubjectAccessReview"),
            Endpoint::SelfSubjectAccessReview => (AUTHZ, "SelfSubjectAccessReview"),
            Endpoint::LocalSubjectAccessReview { .. } => (AUTHZ, "LocalSubjectAccessReview"),
            Endpoint::SelfSubjectRulesReview => (AUTHZ, "SelfSubjectRulesReview"),
        }
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn str_of<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

fn invalid(kind: &str, name: &str, errs: Vec<(String, String)>) -> ApiError {
    let causes: Vec<Cause> = errs
        .iter()
        .map(|(field, msg)| Cause {
            reason: "FieldValueInvalid".into(),
            message: msg.clone(),
            field: Some(field.clone()),
        })
        .collect();
    let list: Vec<String> = errs.iter().map(|(f, m)| format!("{f}: {m}")).collect();
    let summary = if list.len() == 1 { list[0].clone() } else { format!("[{}]", list.join(", ")) };
    let group = if kind.contains("Token") || kind == "SelfSubjectReview" { AUTHN } else { AUTHZ };
    ApiError::invalid(group, kind, name, format!("{kind}.{group} \"{name}\" is invalid: {summary}"), causes)
}

/// Answer a request to `endpoint` from `user` with its body (already decoded).
pub fn serve(server: &ApiServer, user: &UserInfo, endpoint: &Endpoint, mut body: Value) -> ApiResult<Value> {
    let (group, kind) = endpoint.kind();
    if !body.is_object() {
        return Err(ApiError::bad_request(format!("the object provided is unrecognized (must be of type {kind})")));
    }
    for field in ["metadata", "spec"] {
        if body.get(field).is_some_and(|v| !v.is_object() && !v.is_null()) {
            return Err(ApiError::bad_request(format!(
                "{kind} in version \"v1\" cannot be handled as a {kind}: {field} must be an object"
            )));
        }
        if body.get(field).is_some_and(Value::is_null) {
            body[field] = json!({});
        }
    }
    body["apiVersion"] = json!(format!("{group}/v1"));
    body["kind"] = json!(kind);
    let meta = body.get("metadata").cloned().unwrap_or_else(|| json!({}));
    match endpoint {
        Endpoint::TokenRequest { namespace, name } => token_request(server, namespace, name, body),
        Endpoint::TokenReview => {
            let token = str_of(&body, "/spec/token").to_string();
            if token.is_empty() {
                return Err(ApiError::bad_request("token is required for TokenReview in authentication"));
            }
            let audiences = strings(body.pointer("/spec/audiences"));
            let status = match server.auth.authenticate_token(server, &token, &audiences) {
                Ok((u, auds)) => json!({"authenticated": true, "user": u, "audiences": auds}),
                Err(e) => json!({"user": {}, "error": e}),
            };
            body["metadata"] = json!({"creationTimestamp": null});
            body["status"] = status;
            Ok(body)
        }
        Endpoint::SelfSubjectReview => Ok(json!({
            "kind": kind, "apiVersion": format!("{group}/v1"),
            "metadata": {"creationTimestamp": server.clock.now_rfc3339()},
            "status": {"userInfo": user},
        })),
        Endpoint::SubjectAccessReview | Endpoint::LocalSubjectAccessReview { .. } => {
            let spec = body.get("spec").cloned().unwrap_or_default();
            let mut errs = check_attributes(&spec);
            let subject = UserInfo {
                name: str_of(&spec, "/user").into(),
                uid: str_of(&spec, "/uid").into(),
                groups: strings(spec.get("groups")),
                extra: spec.get("extra").and_then(|e| serde_json::from_value(e.clone()).ok()).unwrap_or_default(),
            };
            if subject.name.is_empty() && subject.groups.is_empty() {
                errs.push((
                    "spec.user".into(),
                    "Invalid value: \"\": at least one of user or group must be specified".into(),
                ));
            }
            if let Endpoint::LocalSubjectAccessReview { namespace } = endpoint {
                match meta.get("namespace").and_then(Value::as_str) {
                    Some(ns) if !ns.is_empty() && ns != namespace => {
                        return Err(ApiError::bad_request(
                            "the namespace of the provided object does not match the namespace sent on the request",
                        ));
                    }
                    _ => body["metadata"]["namespace"] = json!(namespace),
                }
                let attr_ns = str_of(&spec, "/resourceAttributes/namespace");
                if spec.get("resourceAttributes").is_some() && attr_ns != namespace {
                    errs.push((
                        "spec.resourceAttributes.namespace".into(),
                        format!("Invalid value: \"{attr_ns}\": must match metadata.namespace"),
                    ));
                }
                if spec.get("nonResourceAttributes").is_some() {
                    errs.push((
                        "spec.nonResourceAttributes".into(),
                        "Invalid value: \"\": disallowed on this kind of request".into(),
                    ));
                }
            } else if !meta_is_empty(&meta) {
                errs.push(("metadata".into(), "Invalid value: \"\": must be empty".into()));
            }
            if !errs.is_empty() {
                return Err(invalid(kind, "", errs));
            }
            let decision = rbac::authorize(server, &subject, &attributes(&spec));
            with_decision(body, decision)
        }
        Endpoint::SelfSubjectAccessReview => {
            let spec = body.get("spec").cloned().unwrap_or_default();
            let mut errs = check_attributes(&spec);
            if !meta_is_empty(&meta) {
                errs.push(("metadata".into(), "Invalid value: \"\": must be empty".into()));
            }
            if !errs.is_empty() {
                return Err(invalid(kind, "", errs));
            }
            let decision = rbac::authorize(server, user, &attributes(&spec));
            with_decision(body, decision)
        }
        Endpoint::SelfSubjectRulesReview => {
            let ns = str_of(&body, "/spec/namespace").to_string();
            if ns.is_empty() {
                return Err(ApiError::bad_request("no namespace on request"));
            }
            let (rules, errors) = rbac::rules_for(server, user, &ns);
            let resource: Vec<Value> = rules
                .iter()
                .filter(|r| !r.resources.is_empty())
                .map(|r| {
                    let mut v = json!({"verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources});
                    if !r.resource_names.is_empty() {
                        v["resourceNames"] = json!(r.resource_names);
                    }
                    v
                })
                .collect();
            let non_resource: Vec<Value> = rules
                .iter()
                .filter(|r| !r.non_resource_urls.is_empty())
                .map(|r| json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}))
                .collect();
            let mut status = json!({"resourceRules": resource, "nonResourceRules": non_resource, "incomplete": false});
            if !errors.is_empty() {
                status["evaluationError"] = json!(aggregate(&errors));
            }
            body["metadata"] = json!({"creationTimestamp": null});
            body["status"] = status;
            Ok(body)
        }
    }
}

fn meta_is_empty(meta: &Value) -> bool {
    meta.as_object().is_none_or(|m| {
        m.iter().all(|(k, v)| v.is_null() || k == "managedFields" || v == &json!({}) || v == &json!(""))
    })
}

fn check_attributes(spec: &Value) -> Vec<(String, String)> {
    match (spec.get("resourceAttributes").is_some(), spec.get("nonResourceAttributes").is_some()) {
        (true, true) => vec![(
            "spec.nonResourceAttributes".into(),
            "Invalid value: \"\": cannot be specified in combination with resourceAttributes".into(),
        )],
        (false, false) => vec![(
            "spec.resourceAttributes".into(),
            "Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified"
                .into(),
        )],
        _ => Vec::new(),
    }
}

/// The request attributes a (Self)SubjectAccessReview asks about.
fn attributes(spec: &Value) -> RequestInfo {
    if let Some(r) = spec.get("resourceAttributes") {
        RequestInfo {
            resource_request: true,
            verb: str_of(r, "/verb").into(),
            api_group: str_of(r, "/group").into(),
            api_version: str_of(r, "/version").into(),
            namespace: str_of(r, "/namespace").into(),
            resource: str_of(r, "/resource").into(),
            subresource: str_of(r, "/subresource").into(),
            name: str_of(r, "/name").into(),
            ..Default::default()
        }
    } else {
        let n = spec.get("nonResourceAttributes").cloned().unwrap_or_default();
        RequestInfo::non_resource(str_of(&n, "/verb"), str_of(&n, "/path"))
    }
}

fn with_decision(mut body: Value, decision: Decision) -> ApiResult<Value> {
    let mut status = Map::new();
    status.insert("allowed".into(), json!(decision.allowed()));
    if !decision.reason().is_empty() {
        status.insert("reason".into(), json!(decision.reason()));
    }
    if body.get("metadata").is_none_or(|m| m.get("namespace").is_none()) {
        body["metadata"] = json!({"creationTimestamp": null});
    } else {
        body["metadata"]["creationTimestamp"] = Value::Null;
    }
    body["status"] = Value::Object(status);
    Ok(body)
}

fn token_request(server: &ApiServer, namespace: &str, name: &str, mut body: Value) -> ApiResult<Value> {
    let body_name = str_of(&body, "/metadata/name");
    if !body_name.is_empty() && body_name != name {
        return Err(invalid(
            "TokenRequest",
            name,
            vec![(
                "metadata.name".into(),
                format!("Invalid value: \"{body_name}\": must match the service account name if specified"),
            )],
        ));
    }
    let body_ns = str_of(&body, "/metadata/namespace");
    if !body_ns.is_empty() && body_ns != namespace {
        return Err(invalid(
            "TokenRequest",
            name,
            vec![(
                "metadata.namespace".into(),
                format!("Invalid value: \"{body_ns}\": must match the service account namespace if specified"),
            )],
        ));
    }
    let spec = body.get("spec").cloned().unwrap_or_default();
    let expiration = match spec.get("expirationSeconds") {
        None | Some(Value::Null) => 3600,
        Some(v) => v.as_i64().ok_or_else(|| ApiError::bad_request("spec.expirationSeconds must be an integer"))?,
    };
    let bound = match spec.get("boundObjectRef").filter(|b| !b.is_null()) {
        None => None,
        Some(b) => {
            let api_version = str_of(b, "/apiVersion");
            let kind = str_of(b, "/kind");
            if api_version != "v1" || !matches!(kind, "Pod" | "Secret" | "Node") {
                let (g, v) = crate::resources::split_api_version(api_version);
                return Err(ApiError::bad_request(format!("cannot bind token to object of type {g}/{v}, Kind={kind}")));
            }
            Some(BoundObject {
                kind: kind.into(),
                name: str_of(b, "/name").into(),
                uid: b.get("uid").and_then(Value::as_str).map(str::to_string),
            })
        }
    };
    let opts = TokenOptions { audiences: strings(spec.get("audiences")), expiration_seconds: expiration, bound };
    let issued = server.auth.issue_token(server, namespace, name, &opts)?;
    body["metadata"] = json!({"name": name, "namespace": namespace, "creationTimestamp": server.clock.now_rfc3339()});
    body["spec"]["audiences"] = json!(issued.audiences);
    body["spec"]["expirationSeconds"] = json!(issued.expiration_seconds);
    body["status"] = json!({
        "token": issued.token,
        "expirationTimestamp": crate::clock::format_time(issued.expiration),
    });
    Ok(body)
}
