//! Authentication and authorization, as a real API server does them.
//!
//! - **Who is asking** ([`UserInfo`]): a bearer token (a ServiceAccount's JWT
//!   signed by the simulator's key, or a static token like upstream's
//!   `--token-auth-file`), a client certificate when TLS is on (CN is the user,
//!   O the groups), or nobody (`system:anonymous` in `system:unauthenticated`,
//!   unless anonymous requests are refused). A bad credential is always 401.
//! - **What they may do**: `AlwaysAllow` (the default: nothing changes for
//!   existing clients) or `Rbac`, where Roles, ClusterRoles and their bindings
//!   decide every request ([`rbac`]), `system:masters` being allowed everything
//!   as upstream's privileged-group authorizer does.
//! - The APIs around them: TokenRequest (`serviceaccounts/{name}/token`),
//!   TokenReview, SubjectAccessReview, SelfSubjectAccessReview,
//!   LocalSubjectAccessReview, SelfSubjectRulesReview, SelfSubjectReview
//!   ([`reviews`]), the bootstrap roles ([`bootstrap`]) and ClusterRole
//!   aggregation ([`aggregation`]).
//!
//! The simulated control plane (scheduler, kubelets, controllers) and the
//! in-process handles ([`crate::Cluster::typed`]) do not go through HTTP and so
//! are never authenticated or authorized: they act as `system:masters` would.

pub mod aggregation;
pub mod bootstrap;
mod der;
pub mod escalation;
pub mod filter;
mod jwt;
pub mod rbac;
pub mod request;
pub mod reviews;
pub mod tls;
pub mod tokens;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};
use serde::Serialize;

use crate::error::{ApiError, ApiResult};

pub use tls::{ClientCertificate, Peer};
pub use tokens::{BoundObject, TokenOptions};

/// The group of every authenticated user.
pub const AUTHENTICATED: &str = "system:authenticated";
/// The group of anonymous requests.
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
/// The user of anonymous requests.
pub const ANONYMOUS: &str = "system:anonymous";
/// The group allowed everything, before RBAC is consulted.
pub const MASTERS: &str = "system:masters";
/// The group of every ServiceAccount.
pub const SERVICE_ACCOUNTS: &str = "system:serviceaccounts";
/// The administrator the kubeconfig of an authenticating server carries.
pub const ADMIN_USER: &str = "kubernetes-admin";
/// kubeadm's default service-account issuer (and API audience).
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// How requests are authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthorizationMode {
    /// Every request is allowed (upstream's `AlwaysAllow`).
    #[default]
    AlwaysAllow,
    /// Roles, ClusterRoles and their bindings decide (upstream's `RBAC`).
    Rbac,
}

impl std::str::FromStr for AuthorizationMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "alwaysallow" | "always-allow" | "none" => Ok(AuthorizationMode::AlwaysAllow),
            "rbac" => Ok(AuthorizationMode::Rbac),
            other => Err(format!("unknown authorization mode {other:?}: use rbac or always-allow")),
        }
    }
}

/// A user that authenticates with a fixed bearer token (upstream's
/// `--token-auth-file` line `token,user,uid,"group1,group2"`).
#[derive(Clone, PartialEq, Eq)]
pub struct StaticToken {
    pub token: String,
    pub user: String,
    pub uid: String,
    pub groups: Vec<String>,
}

impl std::fmt::Debug for StaticToken {
    // The token itself is a secret: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticToken")
            .field("user", &self.user)
            .field("uid", &self.uid)
            .field("groups", &self.groups)
            .finish_non_exhaustive()
    }
}

impl StaticToken {
    /// Parse a token file in upstream's CSV format: one `token,user,uid[,"g1,g2"]`
    /// per line; blank lines and `#` comments are skipped.
    pub fn parse_file(text: &str) -> Result<Vec<StaticToken>, String> {
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields = split_csv(line).map_err(|e| format!("line {}: {e}", n + 1))?;
            if fields.len() < 3 {
                return Err(format!(
                    "line {}: expected token,user,uid[,\"groups\"], got {} fields",
                    n + 1,
                    fields.len()
                ));
            }
            if fields[0].is_empty() || fields[1].is_empty() {
                return Err(format!("line {}: the token and the user name may not be empty", n + 1));
            }
            let groups = fields
                .get(3)
                .map(|g| g.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
                .unwrap_or_default();
            out.push(StaticToken { token: fields[0].clone(), user: fields[1].clone(), uid: fields[2].clone(), groups });
        }
        Ok(out)
    }
}

fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur).trim().to_string()),
            (c, _) => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    out.push(cur.trim().to_string());
    Ok(out)
}

/// Authentication and authorization settings of a server
/// ([`crate::ServerConfig::auth`]). The default changes nothing: plain HTTP,
/// every request allowed.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub authorization: AuthorizationMode,
    /// Requests without credentials are `system:anonymous` (upstream's default,
    /// `--anonymous-auth=true`); when false they get 401.
    pub anonymous: bool,
    /// Serve HTTPS with a CA generated at start (client certificates are then
    /// a way to authenticate; the kubeconfig carries the CA).
    pub tls: bool,
    /// Static bearer-token users.
    pub tokens: Vec<StaticToken>,
    /// The `iss` of the ServiceAccount tokens the server issues.
    pub issuer: String,
    /// The audiences the API accepts (`--api-audiences`); empty means the issuer.
    pub audiences: Vec<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            authorization: AuthorizationMode::AlwaysAllow,
            anonymous: true,
            tls: false,
            tokens: Vec::new(),
            issuer: DEFAULT_ISSUER.into(),
            audiences: Vec::new(),
        }
    }
}

impl AuthConfig {
    /// RBAC enforced (the rest as default).
    pub fn rbac() -> Self {
        AuthConfig { authorization: AuthorizationMode::Rbac, ..Default::default() }
    }
}

/// An authenticated identity (`user.Info` upstream).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct UserInfo {
    #[serde(rename = "username")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    pub fn anonymous() -> Self {
        UserInfo { name: ANONYMOUS.into(), groups: vec![UNAUTHENTICATED.into()], ..Default::default() }
    }

    /// A user with `groups` plus `system:authenticated`.
    pub fn authenticated(name: &str, uid: &str, groups: &[String]) -> Self {
        let mut u = UserInfo { name: name.into(), uid: uid.into(), groups: groups.to_vec(), ..Default::default() };
        u.add_group(AUTHENTICATED);
        u
    }

    pub(crate) fn add_group(&mut self, g: &str) {
        if !self.groups.iter().any(|x| x == g) {
            self.groups.push(g.into());
        }
    }

    pub fn in_group(&self, g: &str) -> bool {
        self.groups.iter().any(|x| x == g)
    }

    /// The user of a ServiceAccount (`system:serviceaccount:<ns>:<name>`).
    pub fn service_account_name(namespace: &str, name: &str) -> String {
        format!("system:serviceaccount:{namespace}:{name}")
    }

    /// The groups of a ServiceAccount's user.
    pub fn service_account_groups(namespace: &str) -> Vec<String> {
        vec![SERVICE_ACCOUNTS.into(), format!("{SERVICE_ACCOUNTS}:{namespace}"), AUTHENTICATED.into()]
    }

    /// `(namespace, name)` when this is a ServiceAccount's user name.
    pub fn service_account_of(user: &str) -> Option<(&str, &str)> {
        let rest = user.strip_prefix("system:serviceaccount:")?;
        let (ns, name) = rest.split_once(':')?;
        (!ns.is_empty() && !name.is_empty() && !name.contains(':')).then_some((ns, name))
    }
}

/// How a kubeconfig user authenticates.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// No credentials (anonymous).
    None,
    /// A bearer token (static or a ServiceAccount's).
    Token(String),
    /// A client certificate and its key, PEM (needs a TLS server).
    ClientCertificate(ClientCertificate),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::Token(_) => f.write_str("Token(..)"),
            Credentials::ClientCertificate(c) => write!(f, "ClientCertificate({c:?})"),
        }
    }
}

/// The authentication and authorization state of an API server.
pub struct Auth {
    pub config: AuthConfig,
    signer: jwt::Signer,
    static_tokens: RwLock<HashMap<String, UserInfo>>,
    admin_token: String,
    pki: OnceLock<Result<Arc<tls::Pki>, String>>,
    /// Signature checks of ServiceAccount tokens already verified (by token hash).
    verified: Mutex<HashMap<[u8; 32], Arc<tokens::Claims>>>,
    rbac: rbac::Cache,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Auth {
    pub fn new(config: AuthConfig) -> Self {
        let mut static_tokens = HashMap::new();
        for t in &config.tokens {
            static_tokens.insert(t.token.clone(), UserInfo::authenticated(&t.user, &t.uid, &t.groups));
        }
        let admin_token = random_token();
        static_tokens.insert(admin_token.clone(), UserInfo::authenticated(ADMIN_USER, "", &[MASTERS.to_string()]));
        let auth = Auth {
            config,
            signer: jwt::Signer::generate(),
            static_tokens: RwLock::new(static_tokens),
            admin_token,
            pki: OnceLock::new(),
            verified: Mutex::new(HashMap::new()),
            rbac: rbac::Cache::default(),
        };
        if auth.config.tls
            && let Err(e) = auth.pki()
        {
            tracing::error!(error = %e, "kube-sim could not create its certificate authority");
        }
        auth
    }

    /// Whether RBAC decides requests.
    pub fn rbac_enabled(&self) -> bool {
        self.config.authorization == AuthorizationMode::Rbac
    }

    /// The audiences the API accepts in tokens.
    pub fn audiences(&self) -> Vec<String> {
        if self.config.audiences.is_empty() { vec![self.config.issuer.clone()] } else { self.config.audiences.clone() }
    }

    /// Add a static bearer-token user at runtime (`system:authenticated` is added).
    pub fn add_token_user(&self, token: &str, user: &str, uid: &str, groups: &[&str]) {
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        self.static_tokens.write().insert(token.into(), UserInfo::authenticated(user, uid, &groups));
    }

    /// A new static bearer-token user with a random token, returned.
    pub fn new_token_user(&self, user: &str, groups: &[&str]) -> String {
        let token = random_token();
        self.add_token_user(&token, user, "", groups);
        token
    }

    /// Stop accepting a static token (a revoked credential gets 401).
    pub fn remove_token(&self, token: &str) {
        self.static_tokens.write().remove(token);
    }

    /// The administrator's bearer token (`kubernetes-admin` in `system:masters`).
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The simulator's certificate authority and serving certificate (made on
    /// first use; at start when TLS is on).
    pub fn pki(&self) -> ApiResult<Arc<tls::Pki>> {
        self.pki.get_or_init(|| tls::Pki::generate().map(Arc::new)).clone().map_err(ApiError::internal)
    }

    /// The CA bundle clients should trust, PEM (`None` without TLS).
    pub fn ca_pem(&self) -> Option<String> {
        if !self.config.tls {
            return None;
        }
        self.pki().ok().map(|p| p.ca_pem.clone())
    }

    /// A client certificate for `user` in `groups` (the organisations), signed
    /// by the simulator's CA, valid for a year.
    pub fn issue_client_certificate(&self, user: &str, groups: &[&str]) -> ApiResult<ClientCertificate> {
        self.pki()?.issue_client(user, groups).map_err(ApiError::internal)
    }

    /// The JSON Web Key Set of the service-account signing key (`/openid/v1/jwks`).
    pub fn jwks(&self) -> serde_json::Value {
        self.signer.jwks()
    }

    /// The compiled RBAC objects (rebuilt when they change).
    pub fn rbac_index(&self, server: &crate::apiserver::ApiServer) -> Arc<rbac::Index> {
        self.rbac.index(server)
    }

    pub(crate) fn static_user(&self, token: &str) -> Option<UserInfo> {
        self.static_tokens.read().get(token).cloned()
    }
}

impl crate::Cluster {
    /// The cluster's authentication state: static users, client certificates,
    /// the admin token, the JWKS.
    pub fn auth(&self) -> &Auth {
        &self.api().auth
    }

    /// A token for ServiceAccount `namespace/name`, as the TokenRequest API
    /// (`kubectl create token`) issues it.
    pub fn service_account_token(&self, namespace: &str, name: &str, opts: &TokenOptions) -> ApiResult<String> {
        Ok(self.auth().issue_token(self.api(), namespace, name, opts)?.token)
    }

    /// The token the kubelet would mount into pod `namespace/pod`: bound to the
    /// pod (revoked when it goes), for the pod's ServiceAccount.
    pub fn pod_token(&self, namespace: &str, pod: &str) -> ApiResult<String> {
        self.auth().pod_token(self.api(), namespace, pod)
    }
}

/// 32 random bytes, hex: a bearer token.
pub(crate) fn random_token() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 32];
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        // The system RNG cannot fail on Linux; fall back to a v4 UUID pair.
        return format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// upstream's aggregate of errors: one error alone, several as `[e1, e2]`.
pub(crate) fn aggregate(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_lines_as_upstream_writes_them() {
        let users = StaticToken::parse_file(
            "# comment\nt1,alice,uid-1,\"dev,ops\"\n\nt2,bob,uid-2\nt3,\"carol, c\",u3,single\n",
        )
        .unwrap();
        assert_eq!(users.len(), 3);
        assert_eq!(users[0].groups, vec!["dev", "ops"]);
        assert!(users[1].groups.is_empty());
        assert_eq!(users[2].user, "carol, c");
        assert_eq!(users[2].groups, vec!["single"]);
        assert!(StaticToken::parse_file("t,u").unwrap_err().contains("line 1"));
        assert!(StaticToken::parse_file("t,\"u,x").is_err());
        assert!(!format!("{:?}", users[0]).contains("t1"), "the token is never printed");
    }

    #[test]
    fn service_account_names() {
        assert_eq!(UserInfo::service_account_of("system:serviceaccount:ns:sa"), Some(("ns", "sa")));
        assert_eq!(UserInfo::service_account_of("system:serviceaccount:ns"), None);
        assert_eq!(UserInfo::service_account_of("alice"), None);
    }

    #[test]
    fn errors_aggregate_as_upstream() {
        assert_eq!(aggregate(&["a".into()]), "a");
        assert_eq!(aggregate(&["a".into(), "b".into()]), "[a, b]");
    }
}
