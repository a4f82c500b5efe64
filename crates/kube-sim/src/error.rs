//! API errors, rendered as the `Status` objects a real kube-apiserver sends.
//!
//! Clients (kube's `Error::Api`, kubectl's error printer) parse these bodies, so
//! reasons, codes and message wording follow upstream
//! (`k8s.io/apimachinery/pkg/api/errors`); `testdata/k8s-reference/v1.32/status-*.json`
//! holds the recorded originals the tests compare against.

use serde_json::{Value, json};

/// One `details.causes[]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    pub reason: String,
    pub message: String,
    pub field: Option<String>,
}

/// An error answer of the API server.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `details.retryAfterSeconds`, also sent as a `Retry-After` header.
    pub retry_after: Option<u64>,
    /// The rest of `details`, boxed: errors travel through every `Result` of
    /// the server and should stay small.
    pub details: Box<Details>,
}

/// `Status.details` besides `retryAfterSeconds`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Details {
    /// `details.name`
    pub name: Option<String>,
    /// `details.group` (empty for the core group, then omitted)
    pub group: Option<String>,
    /// `details.kind`: upstream puts the *resource* (plural) here for most errors and
    /// the Kind for `Invalid`.
    pub kind: Option<String>,
    pub causes: Vec<Cause>,
    /// `details` present but empty (upstream's 415 carries `"details": {}`).
    pub empty: bool,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

pub type ApiResult<T> = Result<T, ApiError>;

/// Identifies the object an error is about: resource plural, group, name.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub group: &'a str,
    pub resource: &'a str,
    pub name: &'a str,
}

impl Subject<'_> {
    /// `pods "x"` or `deployments.apps "x"` as upstream's qualified resource prints.
    fn qualified(&self) -> String {
        if self.group.is_empty() { self.resource.to_string() } else { format!("{}.{}", self.resource, self.group) }
    }
}

impl ApiError {
    fn plain(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError { code, reason, message: message.into(), retry_after: None, details: Box::default() }
    }

    fn about(mut self, s: Subject<'_>) -> Self {
        self.details.name = Some(s.name.to_string());
        self.details.group = (!s.group.is_empty()).then(|| s.group.to_string());
        self.details.kind = Some(s.resource.to_string());
        self
    }

    pub fn not_found(s: Subject<'_>) -> Self {
        Self::plain(404, "NotFound", format!("{} \"{}\" not found", s.qualified(), s.name)).about(s)
    }

    pub fn already_exists(s: Subject<'_>) -> Self {
        Self::plain(409, "AlreadyExists", format!("{} \"{}\" already exists", s.qualified(), s.name)).about(s)
    }

    /// Optimistic-concurrency failure on update/patch.
    pub fn conflict(s: Subject<'_>) -> Self {
        Self::conflict_msg(
            s,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    pub fn conflict_msg(s: Subject<'_>, why: impl std::fmt::Display) -> Self {
        Self::plain(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {} \"{}\": {why}", s.qualified(), s.name),
        )
        .about(s)
    }

    /// 422 with field causes; `kind` is the object's Kind (upstream uses Kind here).
    pub fn invalid(group: &str, kind: &str, name: &str, message: String, causes: Vec<Cause>) -> Self {
        let mut e = Self::plain(422, "Invalid", message);
        e.details.name = (!name.is_empty()).then(|| name.to_string());
        e.details.group = (!group.is_empty()).then(|| group.to_string());
        e.details.kind = (!kind.is_empty()).then(|| kind.to_string());
        e.details.causes = causes;
        e
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::plain(400, "BadRequest", message)
    }

    pub fn forbidden(s: Subject<'_>, why: impl std::fmt::Display) -> Self {
        Self::plain(403, "Forbidden", format!("{} \"{}\" is forbidden: {why}", s.qualified(), s.name)).about(s)
    }

    pub fn method_not_allowed(verb: &str, what: &str) -> Self {
        Self::plain(405, "MethodNotAllowed", format!("{verb} is not supported on resources of kind \"{what}\""))
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        let mut e = Self::plain(415, "UnsupportedMediaType", format!("{content_type}: Unsupported Media Type"));
        if content_type.is_empty() {
            e.message = "415: Unsupported Media Type".into();
        }
        e.details.empty = true;
        e
    }

    /// A create/update body in a media type the resource cannot decode.
    pub fn unknown_body_format(accepted: &str) -> Self {
        Self::plain(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: {accepted}"),
        )
    }

    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::plain(406, "NotAcceptable", message)
    }

    /// A path the server does not serve at all (upstream's generic 404 for unknown URLs).
    pub fn no_route() -> Self {
        let mut e = Self::plain(404, "NotFound", "the server could not find the requested resource");
        e.details.empty = true;
        e
    }

    /// A list or continue token whose resourceVersion has been compacted away.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::plain(410, "Expired", message)
    }

    pub fn too_many_requests(message: impl Into<String>, retry_after: Option<u64>, causes: Vec<Cause>) -> Self {
        let mut e = Self::plain(429, "TooManyRequests", message);
        e.retry_after = retry_after;
        e.details.causes = causes;
        e
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::plain(500, "InternalError", message)
    }

    /// `Timeout` (504): e.g. a list asked for a resourceVersion the server never reached.
    pub fn timeout(message: impl Into<String>, retry_after: Option<u64>) -> Self {
        let mut e = Self::plain(504, "Timeout", message);
        e.retry_after = retry_after;
        e
    }

    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::plain(503, "ServiceUnavailable", message)
    }

    /// The `Status` object, exactly as upstream serialises it.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        let mut details = serde_json::Map::new();
        let d = &self.details;
        if let Some(n) = &d.name {
            details.insert("name".into(), json!(n));
        }
        if let Some(g) = &d.group {
            details.insert("group".into(), json!(g));
        }
        if let Some(k) = &d.kind {
            details.insert("kind".into(), json!(k));
        }
        if !d.causes.is_empty() {
            let causes: Vec<Value> = d
                .causes
                .iter()
                .map(|c| {
                    let mut o = json!({"reason": c.reason, "message": c.message});
                    if let Some(f) = &c.field {
                        o["field"] = json!(f);
                    }
                    o
                })
                .collect();
            details.insert("causes".into(), Value::Array(causes));
        }
        if let Some(r) = self.retry_after {
            details.insert("retryAfterSeconds".into(), json!(r));
        }
        if !details.is_empty() || d.empty {
            status["details"] = Value::Object(details);
        }
        // InternalError and friends have no reason upstream when unknown; keep ours.
        status
    }
}

/// The `Status` a successful delete or eviction answers with.
pub fn success_status(code: u16, details: Option<Value>) -> Value {
    let mut s = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"});
    if let Some(d) = details {
        s["details"] = d;
    }
    if code != 200 {
        s["code"] = json!(code);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(name: &str) -> Value {
        let path = format!("{}/../../testdata/k8s-reference/v1.32/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn not_found_matches_reference() {
        let e = ApiError::not_found(Subject { group: "", resource: "pods", name: "nope" });
        assert_eq!(e.to_status(), reference("status-404-not-found.json"));
    }

    #[test]
    fn already_exists_matches_reference() {
        let e = ApiError::already_exists(Subject { group: "", resource: "pods", name: "bare" });
        assert_eq!(e.to_status(), reference("status-409-already-exists.json"));
    }

    #[test]
    fn conflict_matches_reference() {
        let e = ApiError::conflict(Subject { group: "", resource: "pods", name: "bare" });
        assert_eq!(e.to_status(), reference("status-409-conflict.json"));
    }

    #[test]
    fn unsupported_media_type_matches_reference() {
        assert_eq!(ApiError::unsupported_media_type("").to_status(), reference("status-415-unsupported-media.json"));
    }

    #[test]
    fn expired_matches_reference() {
        let e = ApiError::expired("The resourceVersion for the provided list is too old.");
        assert_eq!(e.to_status(), reference("status-410-expired-list.json"));
    }

    #[test]
    fn group_is_qualified_in_message() {
        let e = ApiError::not_found(Subject { group: "apps", resource: "deployments", name: "web" });
        assert_eq!(e.message, "deployments.apps \"web\" not found");
        assert_eq!(e.to_status()["details"]["group"], "apps");
    }

    #[test]
    fn eviction_success_matches_reference() {
        assert_eq!(success_status(201, None), reference("eviction-201-allowed.json"));
    }
}
