//! Who is calling, and may they: the API server decides both. Bearer tokens
//! are checked with a TokenReview, permissions with a SubjectAccessReview
//! (`sdi_core::access` says which permission), so the REST API follows the
//! cluster's RBAC exactly as `kubectl` on PodMigrations does.
//!
//! Answers are cached for a short time (`AUTH_CACHE_TTL`) so a page that polls
//! does not cost two API calls per request: tokens by their SHA-256 (the token
//! itself is never kept nor logged), decisions by user and permission. Both
//! caches are bounded. An API server that cannot answer is an error, never a
//! yes: callers fail closed.
//!
//! Reviews are questions, not writes: they store nothing in the cluster, so
//! they do not go through `cluster::writer` and every replica (leader or not)
//! asks them.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;
use parking_lot::Mutex;
use sdi_core::access::Permission;
use tokio::time::Instant;

/// At most this many tokens and this many decisions are remembered.
pub const CACHE_ENTRIES: usize = 4096;
/// A review that takes longer is an unavailable API server.
const REVIEW_TIMEOUT: Duration = Duration::from_secs(5);

/// `AUTH_MODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Bearer tokens checked with TokenReview, permissions with SubjectAccessReview
    Kubernetes,
    /// Anyone who reaches the port may do everything the service may (tests, the demo on loopback)
    None,
}

/// An authenticated caller, as the API server names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// Why a request could not be authenticated or authorized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("no credentials: send a bearer token (Authorization: Bearer <token>)")]
    NoCredentials,
    /// The API server did not accept the token (unknown, expired, revoked, wrong audience).
    #[error("the token was not accepted: {0}")]
    InvalidToken(String),
    /// The API server could not answer: nobody gets in.
    #[error("cannot check access with the Kubernetes API: {0}")]
    Unavailable(String),
}

/// A bounded map whose entries expire.
struct Expiring<K, V> {
    entries: HashMap<K, (Instant, V)>,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V: Clone> Expiring<K, V> {
    fn new(capacity: usize) -> Self {
        Expiring { entries: HashMap::new(), capacity }
    }

    fn get(&mut self, key: &K, now: Instant) -> Option<V> {
        match self.entries.get(key) {
            Some((until, v)) if *until > now => Some(v.clone()),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn insert(&mut self, key: K, value: V, until: Instant, now: Instant) {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            self.entries.retain(|_, (u, _)| *u > now);
            if self.entries.len() >= self.capacity {
                // Still full of live entries: the one expiring first goes.
                if let Some(oldest) = self.entries.iter().min_by_key(|(_, (u, _))| *u).map(|(k, _)| k.clone()) {
                    self.entries.remove(&oldest);
                }
            }
        }
        self.entries.insert(key, (until, value));
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The API's gatekeeper.
pub struct Access {
    pub mode: AuthMode,
    client: Option<kube::Client>,
    ttl: Duration,
    tokens: Mutex<Expiring<[u8; 32], User>>,
    decisions: Mutex<Expiring<(String, String), Decision>>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access").field("mode", &self.mode).field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

/// The API server's answer to "may this user do this".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// With the API server's reason, when it gave one.
    Denied(String),
}

fn digest(token: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn unavailable(e: impl std::fmt::Display) -> AccessError {
    AccessError::Unavailable(e.to_string())
}

impl Access {
    /// Everyone is let in (`AUTH_MODE=none`).
    pub fn open() -> Access {
        Access::new(AuthMode::None, None, Duration::ZERO)
    }

    /// Checks with the API server behind `client`, remembering answers for `ttl`.
    pub fn kubernetes(client: kube::Client, ttl: Duration) -> Access {
        Access::new(AuthMode::Kubernetes, Some(client), ttl)
    }

    fn new(mode: AuthMode, client: Option<kube::Client>, ttl: Duration) -> Access {
        Access {
            mode,
            client,
            ttl,
            tokens: Mutex::new(Expiring::new(CACHE_ENTRIES)),
            decisions: Mutex::new(Expiring::new(CACHE_ENTRIES)),
        }
    }

    /// How long an answer is remembered: also how often a long-lived request
    /// (the live stream) is checked again.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn enforced(&self) -> bool {
        self.mode == AuthMode::Kubernetes
    }

    /// Tokens and decisions currently remembered.
    pub fn cached(&self) -> (usize, usize) {
        (self.tokens.lock().len(), self.decisions.lock().len())
    }

    fn client(&self) -> Result<&kube::Client, AccessError> {
        self.client.as_ref().ok_or_else(|| unavailable("no Kubernetes client"))
    }

    /// Who holds `token`, by TokenReview.
    pub async fn authenticate(&self, token: &str) -> Result<User, AccessError> {
        if token.is_empty() {
            return Err(AccessError::NoCredentials);
        }
        let key = digest(token);
        if let Some(user) = self.tokens.lock().get(&key, Instant::now()) {
            return Ok(user);
        }
        let review = TokenReview {
            spec: TokenReviewSpec { token: Some(token.to_string()), audiences: None },
            ..TokenReview::default()
        };
        let api: Api<TokenReview> = Api::all(self.client()?.clone());
        let answer = tokio::time::timeout(REVIEW_TIMEOUT, api.create(&PostParams::default(), &review))
            .await
            .map_err(|_| unavailable("the TokenReview timed out"))?
            .map_err(unavailable)?;
        let status = answer.status.unwrap_or_default();
        let user = match (status.authenticated, status.user) {
            (Some(true), Some(u)) if u.username.as_deref().is_some_and(|n| !n.is_empty()) => User {
                name: u.username.unwrap_or_default(),
                uid: u.uid.unwrap_or_default(),
                groups: u.groups.unwrap_or_default(),
                extra: u.extra.unwrap_or_default(),
            },
            _ => {
                // Never cached: a token the cluster learns about a moment later works at once.
                let why = status.error.filter(|e| !e.is_empty()).unwrap_or_else(|| "unknown token".into());
                return Err(AccessError::InvalidToken(why));
            }
        };
        let now = Instant::now();
        self.tokens.lock().insert(key, user.clone(), now + self.ttl, now);
        Ok(user)
    }

    /// May `user` do what `permission` names, by SubjectAccessReview.
    pub async fn authorize(&self, user: &User, permission: &Permission) -> Result<Decision, AccessError> {
        let (resource_attributes, non_resource_attributes) = match permission {
            Permission::Open => return Ok(Decision::Allowed),
            Permission::Resource { verb, group, resource, namespace, name } => {
                let (resource, subresource) = match resource.split_once('/') {
                    Some((r, s)) => (r, Some(s.to_string())),
                    None => (*resource, None),
                };
                let attributes = ResourceAttributes {
                    verb: Some(verb.to_string()),
                    group: Some(group.to_string()),
                    resource: Some(resource.to_string()),
                    subresource,
                    namespace: Some(namespace.clone()).filter(|n| !n.is_empty()),
                    name: Some(name.clone()).filter(|n| !n.is_empty()),
                    ..ResourceAttributes::default()
                };
                (Some(attributes), None)
            }
            Permission::NonResource { verb, path } => {
                (None, Some(NonResourceAttributes { verb: Some(verb.to_string()), path: Some(path.to_string()) }))
            }
        };
        // The uid tells apart two users of the same name over time (a recreated ServiceAccount).
        let key = (format!("{}\u{0}{}", user.name, user.uid), permission.to_string());
        if let Some(d) = self.decisions.lock().get(&key, Instant::now()) {
            return Ok(d);
        }
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(user.name.clone()),
                uid: Some(user.uid.clone()).filter(|u| !u.is_empty()),
                groups: Some(user.groups.clone()),
                extra: Some(user.extra.clone()).filter(|e| !e.is_empty()),
                resource_attributes,
                non_resource_attributes,
            },
            ..SubjectAccessReview::default()
        };
        let api: Api<SubjectAccessReview> = Api::all(self.client()?.clone());
        let answer = tokio::time::timeout(REVIEW_TIMEOUT, api.create(&PostParams::default(), &review))
            .await
            .map_err(|_| unavailable("the SubjectAccessReview timed out"))?
            .map_err(unavailable)?;
        let status = answer.status.ok_or_else(|| unavailable("the SubjectAccessReview came back without a status"))?;
        let decision = if status.allowed && status.denied != Some(true) {
            Decision::Allowed
        } else {
            Decision::Denied(status.reason.unwrap_or_default())
        };
        let now = Instant::now();
        self.decisions.lock().insert(key, decision.clone(), now + self.ttl, now);
        Ok(decision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_the_map_stays_bounded() {
        let now = Instant::now();
        let mut m = Expiring::new(3);
        for i in 0..3 {
            m.insert(i, i, now + Duration::from_secs(10 + i), now);
        }
        assert_eq!(m.get(&0, now), Some(0));
        // Full of live entries: the one expiring first makes room.
        m.insert(3, 3, now + Duration::from_secs(20), now);
        assert_eq!((m.len(), m.get(&0, now)), (3, None));
        // Expired entries are not returned, and are dropped before live ones.
        let later = now + Duration::from_secs(12);
        assert_eq!(m.get(&1, later), None);
        m.insert(4, 4, later + Duration::from_secs(10), later);
        assert_eq!(m.get(&3, later), Some(3));
        assert!(m.len() <= 3);
    }

    #[test]
    fn tokens_are_keyed_by_their_hash() {
        assert_eq!(digest("abc"), digest("abc"));
        assert_ne!(digest("abc"), digest("abd"));
        // SHA-256("abc") starts ba7816bf.
        assert_eq!(&digest("abc")[..4], &[0xba, 0x78, 0x16, 0xbf]);
    }
}
