//! Asking whether a move is allowed: the remote policy engine (the original
//! contract), with `POLICY_FALLBACK` deciding when it cannot be asked or answers
//! badly — the built-in MALE policy (default), allow, or deny.

use std::collections::BTreeMap;
use std::sync::Once;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use sdi_core::male::Decision;
use sdi_core::policy::{Asked, Fallback};

use crate::config::PolicyFallback;
use crate::error::StartError;

/// The pod as the policy engine sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PolicyPod {
    #[serde(default)]
    #[schema(required = true, min_length = 1)]
    pub name: String,
    #[serde(default)]
    #[schema(required = true, min_length = 1)]
    pub namespace: String,
    #[serde(default)]
    pub node_name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The pod's phase (`Running`, `Pending`, …).
    #[serde(default)]
    pub status: String,
    /// Container names.
    #[serde(default)]
    pub containers: Vec<String>,
}

/// `POST {POLICY_ENGINE_URL}/api/v1/migration/policy` body (and ours).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PolicyRequest {
    pub pod: PolicyPod,
    #[serde(default)]
    pub source_node: String,
    #[serde(default)]
    pub target_node: String,
}

/// The answer: `allowed` missing means true (the original's rule).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PolicyAnswer {
    pub allowed: bool,
    pub reason: String,
}

#[derive(Deserialize)]
struct RemoteAnswer {
    #[serde(default = "yes")]
    allowed: bool,
    #[serde(default)]
    reason: Option<String>,
}

fn yes() -> bool {
    true
}

pub use sdi_core::policy::{Source, Verdict};

/// Rustls needs one process-wide crypto provider; ring, as the kube client uses.
pub fn init_tls() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

pub struct Policy {
    remote: Option<(reqwest::Client, String)>,
    fallback: Fallback,
}

/// The policy engine's answer time limit (the original's).
pub const REMOTE_TIMEOUT: Duration = Duration::from_secs(5);

impl Policy {
    /// `engine_url`: `None` means no remote engine (the built-in policy decides).
    pub fn new(engine_url: Option<&str>, fallback: PolicyFallback) -> Result<Policy, StartError> {
        init_tls();
        let remote = match engine_url {
            Some(url) if !url.is_empty() => {
                let client = reqwest::Client::builder()
                    .timeout(REMOTE_TIMEOUT)
                    .build()
                    .map_err(|e| StartError::Sink(format!("cannot build the policy engine client: {e}")))?;
                Some((client, format!("{}/api/v1/migration/policy", url.trim_end_matches('/'))))
            }
            _ => None,
        };
        let fallback = match fallback {
            PolicyFallback::Builtin => Fallback::Builtin,
            PolicyFallback::Allow => Fallback::Allow,
            PolicyFallback::Deny => Fallback::Deny,
        };
        Ok(Policy { remote, fallback })
    }

    /// Ask the remote engine, if there is one.
    async fn ask(&self, request: &PolicyRequest) -> Asked {
        let Some((client, url)) = &self.remote else { return Asked::NotConfigured };
        let trouble = match client.post(url).json(request).send().await {
            Ok(r) if r.status().is_success() => match r.bytes().await {
                Ok(body) => match serde_json::from_slice::<RemoteAnswer>(&body) {
                    Ok(a) => return Asked::Answered { allowed: a.allowed, reason: a.reason },
                    Err(e) => format!("policy engine answered badly ({e})"),
                },
                Err(e) => format!("policy engine answer could not be read ({e})"),
            },
            Ok(r) => format!("policy engine answered HTTP {}", r.status().as_u16()),
            Err(e) if e.is_timeout() => format!("policy engine did not answer within {}s", REMOTE_TIMEOUT.as_secs()),
            Err(e) => format!("policy engine unreachable ({})", root_cause(&e)),
        };
        tracing::warn!(url = %url, "{trouble}; POLICY_FALLBACK={}", self.fallback.as_str());
        Asked::Trouble(trouble)
    }

    /// The verdict on one move: the remote engine's answer, or the fallback's
    /// (`sdi_core::policy::resolve`). `builtin` is the built-in MALE policy's
    /// answer for this move.
    pub async fn decide(&self, request: &PolicyRequest, builtin: &Decision) -> Verdict {
        sdi_core::policy::resolve(self.ask(request).await, self.fallback, builtin)
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// https is spoken (rustls): against a plain-text server the TLS handshake
    /// fails, rather than the scheme being refused.
    #[tokio::test]
    async fn https_urls_get_a_tls_client() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                use tokio::io::AsyncWriteExt;
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").await;
            }
        });
        let policy = Policy::new(Some(&format!("https://127.0.0.1:{port}")), PolicyFallback::Deny).unwrap();
        let req = PolicyRequest {
            pod: PolicyPod {
                name: "p".into(),
                namespace: "default".into(),
                node_name: "a".into(),
                labels: BTreeMap::new(),
                status: "Running".into(),
                containers: vec!["c".into()],
            },
            source_node: "a".into(),
            target_node: "b".into(),
        };
        let v = policy.decide(&req, &Decision { allowed: true, reason: "builtin".into() }).await;
        assert_eq!(v.source, Source::FallbackDeny);
        let r = v.reason.to_lowercase();
        assert!(!r.contains("scheme") && !r.contains("builder"), "{}", v.reason);
        assert!(r.contains("unreachable"), "{}", v.reason);
    }
}
