//! Bearer tokens: ServiceAccount tokens (issued by TokenRequest, as
//! `kubectl create token` and the kubelet ask for them) and static tokens.
//!
//! A ServiceAccount token is valid while its signature verifies, it is within
//! its lifetime (with upstream's one-minute leeway, on the simulated clock),
//! one of its audiences is one the verifier wants, its ServiceAccount still
//! exists with the same uid, and the object it is bound to (a Pod, Secret or
//! Node) too — deleting the pod revokes its token at once, as upstream.

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Value, json};

use super::{Auth, UserInfo, aggregate, jwt::Signer};
use crate::apiserver::ApiServer;
use crate::error::{ApiError, ApiResult, Subject};

/// What the kubelet asks for a pod's projected token (upstream's
/// `WarnOnlyBoundTokenExpirationSeconds`).
pub const POD_TOKEN_SECONDS: i64 = 3607;
/// How long such a token really lives (`--service-account-extend-token-expiration`).
const EXTENDED_SECONDS: i64 = 365 * 24 * 3600;
/// go-jose's default leeway on exp/nbf.
const LEEWAY_SECONDS: i64 = 60;
/// Verified signatures kept (by token hash) before the cache starts over.
const CACHE_MAX: usize = 4096;

pub const EXTRA_POD_NAME: &str = "authentication.kubernetes.io/pod-name";
pub const EXTRA_POD_UID: &str = "authentication.kubernetes.io/pod-uid";
pub const EXTRA_NODE_NAME: &str = "authentication.kubernetes.io/node-name";
pub const EXTRA_NODE_UID: &str = "authentication.kubernetes.io/node-uid";
pub const EXTRA_CREDENTIAL_ID: &str = "authentication.kubernetes.io/credential-id";

/// The object a token is bound to (`spec.boundObjectRef`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundObject {
    /// `Pod`, `Secret` or `Node`.
    pub kind: String,
    pub name: String,
    /// When set, must be the object's uid.
    pub uid: Option<String>,
}

/// A TokenRequest's `spec`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOptions {
    /// Empty: the API server's audiences.
    pub audiences: Vec<String>,
    pub expiration_seconds: i64,
    pub bound: Option<BoundObject>,
}

impl Default for TokenOptions {
    fn default() -> Self {
        TokenOptions { audiences: Vec::new(), expiration_seconds: 3600, bound: None }
    }
}

/// An issued token.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    pub token: String,
    /// `status.expirationTimestamp`.
    pub expiration: jiff::Timestamp,
    pub audiences: Vec<String>,
    /// The `spec.expirationSeconds` granted.
    pub expiration_seconds: i64,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("expiration", &self.expiration)
            .field("audiences", &self.audiences)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Ref {
    name: String,
    uid: String,
}

/// The claims of a verified ServiceAccount token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    issuer: String,
    audiences: Vec<String>,
    exp: i64,
    nbf: i64,
    jti: String,
    namespace: String,
    service_account: Ref,
    pod: Option<Ref>,
    secret: Option<Ref>,
    node: Option<Ref>,
    /// A legacy token (a `kubernetes.io/service-account-token` Secret's):
    /// no lifetime, no audience, valid while the Secret holds it.
    legacy: bool,
}

/// The issuer of legacy (Secret-held) tokens.
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";
const LEGACY: &str = "kubernetes.io/serviceaccount/";

fn reference(v: Option<&Value>) -> Option<Ref> {
    let v = v?;
    Some(Ref {
        name: v.get("name").and_then(Value::as_str)?.to_string(),
        uid: v.get("uid").and_then(Value::as_str).unwrap_or_default().to_string(),
    })
}

impl Claims {
    fn parse(v: &Value) -> Option<Claims> {
        if v.get("iss").and_then(Value::as_str) == Some(LEGACY_ISSUER) {
            let claim = |k: &str| v.get(format!("{LEGACY}{k}")).and_then(Value::as_str).map(str::to_string);
            return Some(Claims {
                issuer: LEGACY_ISSUER.into(),
                audiences: Vec::new(),
                exp: i64::MAX - LEEWAY_SECONDS,
                nbf: 0,
                jti: String::new(),
                namespace: claim("namespace")?,
                service_account: Ref { name: claim("service-account.name")?, uid: claim("service-account.uid")? },
                pod: None,
                secret: Some(Ref { name: claim("secret.name")?, uid: String::new() }),
                node: None,
                legacy: true,
            });
        }
        let k = v.get("kubernetes.io")?;
        let audiences = match v.get("aud") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        };
        Some(Claims {
            issuer: v.get("iss").and_then(Value::as_str).unwrap_or_default().to_string(),
            audiences,
            exp: v.get("exp").and_then(Value::as_i64)?,
            nbf: v.get("nbf").and_then(Value::as_i64).unwrap_or(0),
            jti: v.get("jti").and_then(Value::as_str).unwrap_or_default().to_string(),
            namespace: k.get("namespace").and_then(Value::as_str)?.to_string(),
            service_account: reference(k.get("serviceaccount"))?,
            pod: reference(k.get("pod")),
            secret: reference(k.get("secret")),
            node: reference(k.get("node")),
            legacy: false,
        })
    }
}

fn get_object(server: &ApiServer, plural: &str, ns: Option<&str>, name: &str) -> Option<Value> {
    let res = server.res("", plural);
    server.get(&res, ns, name).ok().map(|o| server.render(&res, &o))
}

/// What validation needs of a stored object: its uid and deletion time,
/// read without decoding the rest of it.
#[derive(serde::Deserialize)]
struct Identity {
    metadata: IdentityMeta,
}

#[derive(serde::Deserialize)]
struct IdentityMeta {
    #[serde(default)]
    uid: String,
    #[serde(default, rename = "deletionTimestamp")]
    deletion: Option<String>,
}

fn identity(server: &ApiServer, plural: &str, ns: Option<&str>, name: &str) -> Option<IdentityMeta> {
    let res = server.res("", plural);
    let stored = server.store.get(&res.storage, &crate::store::object_key(ns, name))?;
    serde_json::from_slice::<Identity>(&stored.body()).ok().map(|i| i.metadata)
}

impl IdentityMeta {
    fn being_deleted(&self, now: i64) -> bool {
        self.deletion
            .as_deref()
            .and_then(crate::clock::parse_time)
            .is_some_and(|t| t.as_second() < now - LEEWAY_SECONDS)
    }
}

fn uid_of(v: &Value) -> String {
    v.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default().to_string()
}

impl Auth {
    /// Issue a token for ServiceAccount `namespace/name` (the TokenRequest API).
    pub fn issue_token(
        &self,
        server: &ApiServer,
        namespace: &str,
        name: &str,
        opts: &TokenOptions,
    ) -> ApiResult<Issued> {
        if opts.expiration_seconds < 600 {
            return Err(invalid_expiration(opts.expiration_seconds, "may not specify a duration less than 10 minutes"));
        }
        if opts.expiration_seconds > 1 << 32 {
            return Err(invalid_expiration(
                opts.expiration_seconds,
                "may not specify a duration larger than 2^32 seconds",
            ));
        }
        let sa = get_object(server, "serviceaccounts", Some(namespace), name)
            .ok_or_else(|| ApiError::not_found(Subject { group: "", resource: "serviceaccounts", name }))?;
        let now = server.clock.now().as_second();
        let mut k = json!({"namespace": namespace, "serviceaccount": {"name": name, "uid": uid_of(&sa)}});
        let mut pod_bound = false;
        if let Some(b) = &opts.bound {
            let (plural, ns) = match b.kind.as_str() {
                "Pod" => ("pods", Some(namespace)),
                "Secret" => ("secrets", Some(namespace)),
                "Node" => ("nodes", None),
                other => {
                    return Err(ApiError::bad_request(format!(
                        "cannot bind token to object of type /v1, Kind={other}"
                    )));
                }
            };
            let obj = get_object(server, plural, ns, &b.name)
                .ok_or_else(|| ApiError::not_found(Subject { group: "", resource: plural, name: &b.name }))?;
            let uid = uid_of(&obj);
            if let Some(want) = b.uid.as_deref().filter(|u| !u.is_empty())
                && want != uid
            {
                return Err(ApiError::conflict_msg(
                    Subject { group: "", resource: &b.kind, name: &b.name },
                    format!(
                        "the UID in the bound object reference ({want}) does not match the UID in record ({uid}). The object might have been deleted and then recreated"
                    ),
                ));
            }
            match b.kind.as_str() {
                "Pod" => {
                    let pod_sa = obj.pointer("/spec/serviceAccountName").and_then(Value::as_str).unwrap_or("default");
                    if pod_sa != name {
                        return Err(ApiError::bad_request(format!(
                            "cannot bind token for serviceaccount \"{name}\" to pod running with serviceaccount \"{pod_sa}\""
                        )));
                    }
                    k["pod"] = json!({"name": b.name, "uid": uid});
                    pod_bound = true;
                    if let Some(node) = obj.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty())
                        && let Some(n) = get_object(server, "nodes", None, node)
                    {
                        k["node"] = json!({"name": node, "uid": uid_of(&n)});
                    }
                }
                "Secret" => k["secret"] = json!({"name": b.name, "uid": uid}),
                _ => k["node"] = json!({"name": b.name, "uid": uid}),
            }
        }
        let api_auds = self.audiences();
        let audiences = if opts.audiences.is_empty() { api_auds.clone() } else { opts.audiences.clone() };
        // Upstream's safe transition for projected tokens: the kubelet's 3607 s
        // request lives a year, with a warning after 3607 s.
        let mut lifetime = opts.expiration_seconds;
        if pod_bound && lifetime == POD_TOKEN_SECONDS && audiences.iter().all(|a| api_auds.contains(a)) {
            k["warnafter"] = json!(now + lifetime);
            lifetime = EXTENDED_SECONDS;
        }
        let claims = json!({
            "aud": audiences,
            "exp": now + lifetime,
            "iat": now,
            "iss": self.config.issuer,
            "jti": uuid::Uuid::new_v4().to_string(),
            "kubernetes.io": k,
            "nbf": now,
            "sub": UserInfo::service_account_name(namespace, name),
        });
        let token =
            self.signer.sign(&claims).map_err(|e| ApiError::internal(format!("failed to generate token: {e}")))?;
        let expiration = jiff::Timestamp::from_second(now + opts.expiration_seconds)
            .map_err(|e| ApiError::internal(format!("expiration out of range: {e}")))?;
        Ok(Issued { token, expiration, audiences, expiration_seconds: opts.expiration_seconds })
    }

    /// The token the kubelet would mount into pod `namespace/pod` (bound to the
    /// pod, the API's audiences, 3607 s requested), for a test to act as that pod.
    pub fn pod_token(&self, server: &ApiServer, namespace: &str, pod: &str) -> ApiResult<String> {
        let obj = get_object(server, "pods", Some(namespace), pod)
            .ok_or_else(|| ApiError::not_found(Subject { group: "", resource: "pods", name: pod }))?;
        let sa = obj.pointer("/spec/serviceAccountName").and_then(Value::as_str).unwrap_or("default").to_string();
        let opts = TokenOptions {
            audiences: Vec::new(),
            expiration_seconds: POD_TOKEN_SECONDS,
            bound: Some(BoundObject { kind: "Pod".into(), name: pod.into(), uid: Some(uid_of(&obj)) }),
        };
        Ok(self.issue_token(server, namespace, &sa, &opts)?.token)
    }

    /// Authenticate a bearer token for `audiences` (the API's when empty).
    /// `Ok` carries the user and the audiences it is valid for; `Err` the reason
    /// it is not (for TokenReview's `status.error`; never the token).
    pub fn authenticate_token(
        &self,
        server: &ApiServer,
        token: &str,
        audiences: &[String],
    ) -> Result<(UserInfo, Vec<String>), String> {
        let api_auds = self.audiences();
        let wanted: &[String] = if audiences.is_empty() { &api_auds } else { audiences };
        if let Some(user) = self.static_user(token) {
            // Static tokens are audience-agnostic: valid for the API's audiences only.
            let auds: Vec<String> = wanted.iter().filter(|a| api_auds.contains(a)).cloned().collect();
            if auds.is_empty() {
                return Err("invalid bearer token".into());
            }
            return Ok((user, auds));
        }
        if !Signer::looks_like_jwt(token) {
            return Err("invalid bearer token".into());
        }
        let claims = self.verified_claims(token).ok_or_else(|| {
            aggregate(&["invalid bearer token".into(), "square/go-jose: error in cryptographic primitive".into()])
        })?;
        self.validate(server, &claims, token, wanted).map_err(|e| aggregate(&["invalid bearer token".into(), e]))
    }

    fn verified_claims(&self, token: &str) -> Option<Arc<Claims>> {
        let key: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref().try_into().ok()?;
        if let Some(c) = self.verified.lock().get(&key) {
            return Some(c.clone());
        }
        let claims = Arc::new(Claims::parse(&self.signer.verify(token)?)?);
        let mut cache = self.verified.lock();
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(key, claims.clone());
        Some(claims)
    }

    fn validate(
        &self,
        server: &ApiServer,
        c: &Claims,
        token: &str,
        wanted: &[String],
    ) -> Result<(UserInfo, Vec<String>), String> {
        if c.legacy {
            return self.validate_legacy(server, c, token, wanted);
        }
        if c.issuer != self.config.issuer {
            return Err(format!("token issuer {:?} is not {:?}", c.issuer, self.config.issuer));
        }
        let now = server.clock.now().as_second();
        if now > c.exp + LEEWAY_SECONDS {
            return Err("service account token has expired".into());
        }
        if now + LEEWAY_SECONDS < c.nbf {
            return Err("service account token is not valid yet".into());
        }
        let auds: Vec<String> = wanted.iter().filter(|a| c.audiences.contains(a)).cloned().collect();
        if auds.is_empty() {
            return Err(format!("token audiences {:?} is invalid for the target audiences {:?}", c.audiences, wanted));
        }
        let (ns, sa) = (c.namespace.as_str(), &c.service_account);
        let account = identity(server, "serviceaccounts", Some(ns), &sa.name)
            .ok_or_else(|| format!("serviceaccounts \"{}\" not found", sa.name))?;
        if account.being_deleted(now) {
            return Err(format!("service account {ns}/{} has been deleted", sa.name));
        }
        if account.uid != sa.uid {
            return Err(format!("service account UID ({}) does not match claim ({})", account.uid, sa.uid));
        }
        let mut user = UserInfo {
            name: UserInfo::service_account_name(ns, &sa.name),
            uid: sa.uid.clone(),
            groups: UserInfo::service_account_groups(ns),
            ..Default::default()
        };
        for (r, plural, scoped) in [(&c.pod, "pods", true), (&c.secret, "secrets", true), (&c.node, "nodes", false)] {
            let Some(r) = r else { continue };
            // A pod-bound token names its node for information; only the bound
            // object itself must still exist.
            if plural == "nodes" && c.pod.is_some() {
                continue;
            }
            let obj = identity(server, plural, scoped.then_some(ns), &r.name)
                .filter(|o| !o.being_deleted(now))
                .ok_or_else(|| "service account token has been invalidated".to_string())?;
            if obj.uid != r.uid {
                let kind = &plural[..plural.len() - 1];
                return Err(format!(
                    "{kind} UID ({}) does not match service account {kind} ref claim ({})",
                    obj.uid, r.uid
                ));
            }
        }
        if let Some(p) = &c.pod {
            user.extra.insert(EXTRA_POD_NAME.into(), vec![p.name.clone()]);
            user.extra.insert(EXTRA_POD_UID.into(), vec![p.uid.clone()]);
        }
        if let Some(n) = &c.node {
            user.extra.insert(EXTRA_NODE_NAME.into(), vec![n.name.clone()]);
            if c.pod.is_none() || !n.uid.is_empty() {
                user.extra.insert(EXTRA_NODE_UID.into(), vec![n.uid.clone()]);
            }
        }
        if !c.jti.is_empty() {
            user.extra.insert(EXTRA_CREDENTIAL_ID.into(), vec![format!("JTI={}", c.jti)]);
        }
        Ok((user, auds))
    }
}

impl Auth {
    /// The token a `kubernetes.io/service-account-token` Secret gets from the
    /// token controller (upstream's legacy claims: no expiry, no audience).
    pub fn issue_legacy_token(
        &self,
        namespace: &str,
        secret: &str,
        sa_name: &str,
        sa_uid: &str,
    ) -> Result<String, String> {
        let mut claims = serde_json::Map::new();
        claims.insert("iss".into(), json!(LEGACY_ISSUER));
        claims.insert(format!("{LEGACY}namespace"), json!(namespace));
        claims.insert(format!("{LEGACY}secret.name"), json!(secret));
        claims.insert(format!("{LEGACY}service-account.name"), json!(sa_name));
        claims.insert(format!("{LEGACY}service-account.uid"), json!(sa_uid));
        claims.insert("sub".into(), json!(UserInfo::service_account_name(namespace, sa_name)));
        self.signer.sign(&Value::Object(claims))
    }

    fn validate_legacy(
        &self,
        server: &ApiServer,
        c: &Claims,
        token: &str,
        wanted: &[String],
    ) -> Result<(UserInfo, Vec<String>), String> {
        // Audience-less: valid for the API's audiences only.
        let api = self.audiences();
        let auds: Vec<String> = wanted.iter().filter(|a| api.contains(a)).cloned().collect();
        if auds.is_empty() {
            return Err(format!("token audiences {api:?} is invalid for the target audiences {wanted:?}"));
        }
        let ns = c.namespace.as_str();
        let secret_name = c.secret.as_ref().map(|s| s.name.as_str()).unwrap_or_default();
        let secret = get_object(server, "secrets", Some(ns), secret_name)
            .filter(|s| s.pointer("/metadata/deletionTimestamp").is_none())
            .ok_or("Token has been invalidated")?;
        let stored = secret
            .pointer("/data/token")
            .and_then(Value::as_str)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .unwrap_or_default();
        if stored != token.as_bytes() {
            return Err("Token does not match server's copy".into());
        }
        let sa = &c.service_account;
        let account = identity(server, "serviceaccounts", Some(ns), &sa.name)
            .ok_or_else(|| format!("serviceaccounts \"{}\" not found", sa.name))?;
        if account.uid != sa.uid {
            return Err(format!("service account UID ({}) does not match claim ({})", account.uid, sa.uid));
        }
        let user = UserInfo {
            name: UserInfo::service_account_name(ns, &sa.name),
            uid: sa.uid.clone(),
            groups: UserInfo::service_account_groups(ns),
            ..Default::default()
        };
        Ok((user, auds))
    }
}

/// The token controller's part for legacy Secrets: a
/// `kubernetes.io/service-account-token` Secret naming its ServiceAccount
/// (`kubernetes.io/service-account.name`) gets `token`, `ca.crt` and
/// `namespace`, and the ServiceAccount's uid annotation.
pub fn fill_token_secrets(server: &ApiServer) {
    let res = server.res("", "secrets");
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let pending: Vec<Value> = server
        .store
        .snapshot(&res.storage)
        .iter_from(None)
        .filter(|o| o.field("type").as_deref() == Some("kubernetes.io/service-account-token"))
        .filter_map(|o| serde_json::from_slice::<Value>(&o.body()).ok())
        .filter(|s| s.pointer("/data/token").is_none())
        .collect();
    for secret in pending {
        let ns = crate::meta::namespace(&secret).unwrap_or_default().to_string();
        let name = crate::meta::name(&secret).to_string();
        let Some(sa) =
            secret.pointer("/metadata/annotations/kubernetes.io~1service-account.name").and_then(Value::as_str)
        else {
            continue;
        };
        let Some(account) = get_object(server, "serviceaccounts", Some(&ns), sa) else { continue };
        let uid = uid_of(&account);
        let token = match server.auth.issue_legacy_token(&ns, &name, sa, &uid) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(secret = %name, error = %e, "cannot fill a service-account token Secret");
                continue;
            }
        };
        let ca = server.auth.ca_pem().unwrap_or_default();
        let patch = json!({
            "metadata": {"annotations": {"kubernetes.io/service-account.uid": uid}},
            "data": {"token": b64(&token), "ca.crt": b64(&ca), "namespace": b64(&ns)},
        });
        let body = serde_json::to_vec(&patch).unwrap_or_default();
        let opts = crate::apiserver::WriteOptions::manager("kube-controller-manager");
        if let Err(e) = server.patch(&res, Some(&ns), &name, None, crate::apiserver::PatchType::Merge, &body, &opts) {
            tracing::debug!(secret = %name, error = %e, "filling a service-account token Secret failed");
        }
    }
}

/// Run the token controller until the cluster stops.
pub async fn run_token_controller(cluster: crate::Cluster) {
    let api = cluster.api().clone();
    let stop = cluster.stopping();
    let mut changes = api.store.subscribe(&api.res("", "secrets").storage);
    // What changed before we subscribed.
    fill_token_secrets(&api);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            r = changes.changed() => if r.is_err() { return },
        }
        fill_token_secrets(&api);
    }
}

fn invalid_expiration(seconds: i64, why: &str) -> ApiError {
    let detail = format!("Invalid value: {seconds}: {why}");
    ApiError::invalid(
        "authentication.k8s.io",
        "TokenRequest",
        "",
        format!("TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: {detail}"),
        vec![crate::error::Cause {
            reason: "FieldValueInvalid".into(),
            message: detail,
            field: Some("spec.expirationSeconds".into()),
        }],
    )
}
