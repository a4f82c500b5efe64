//! The Kubernetes edge: connecting, reading objects into `sdi-core`'s plain
//! data (`facts`), waiting on watches (`wait`), retrying transient failures
//! (`retry`), and the one module that writes (`writer`, Events included).

pub mod cache;
pub mod facts;
pub mod lease;
pub mod rbac;
pub(crate) mod retry;
pub mod wait;
pub mod writer;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kube::Client;

use crate::error::StartError;

/// Counts of requests this process made to the API server, by kind. Writes are
/// what the per-strategy benchmark compares against each strategy's minimum.
#[derive(Debug, Default)]
pub struct ApiStats {
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    /// Of the writes, those that recorded Events (a courtesy, not part of a move).
    pub event_writes: AtomicU64,
    /// Answers with a 4xx/5xx status (conflicts and not-founds included).
    pub errors: AtomicU64,
    /// TokenReviews and SubjectAccessReviews (checking the API's callers): questions,
    /// counted apart from reads and writes.
    pub reviews: AtomicU64,
}

impl ApiStats {
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }
}

pub use writer::FIELD_MANAGER;

/// A client for the cluster in `kubeconfig`, or the in-cluster config when `None`,
/// counting its requests into `stats`.
pub async fn connect(kubeconfig: Option<&Path>, stats: Arc<ApiStats>) -> Result<Client, StartError> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| StartError::Kubernetes(format!("cannot read kubeconfig {}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| StartError::Kubernetes(format!("kubeconfig {} is not usable: {e}", path.display())))?
        }
        None => kube::Config::incluster().map_err(|e| {
            StartError::Kubernetes(format!(
                "not running in a cluster ({e}); pass --kubeconfig FILE (or KUBECONFIG) to use a kubeconfig"
            ))
        })?,
    };
    client_from(config, stats)
}

/// The `User-Agent` of every request: API servers log and count by it.
pub const USER_AGENT: &str = concat!("sdi-migration/", env!("CARGO_PKG_VERSION"));

/// Build a counting client from a ready config.
pub fn client_from(mut config: kube::Config, stats: Arc<ApiStats>) -> Result<Client, StartError> {
    // The replica's name too, so an API server's logs tell replicas apart.
    let agent = match std::env::var("POD_NAME") {
        Ok(pod) if !pod.is_empty() => format!("{USER_AGENT} ({pod})"),
        _ => USER_AGENT.to_string(),
    };
    let agent = http::HeaderValue::from_str(&agent).unwrap_or(http::HeaderValue::from_static(USER_AGENT));
    config.headers.push((http::header::USER_AGENT, agent));
    let builder = kube::client::ClientBuilder::try_from(config)
        .map_err(|e| StartError::Kubernetes(format!("cannot build a Kubernetes client: {e}")))?;
    Ok(builder.with_layer(&CountLayer(stats)).build())
}

/// Tower layer counting requests and error answers.
struct CountLayer(Arc<ApiStats>);

impl<S> tower::Layer<S> for CountLayer {
    type Service = Count<S>;
    fn layer(&self, inner: S) -> Count<S> {
        Count { inner, stats: self.0.clone() }
    }
}

#[derive(Clone)]
struct Count<S> {
    inner: S,
    stats: Arc<ApiStats>,
}

impl<S, ReqB, ResB> tower::Service<http::Request<ReqB>> for Count<S>
where
    S: tower::Service<http::Request<ReqB>, Response = http::Response<ResB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqB>) -> Self::Future {
        let path = req.uri().path();
        let counter =
            if path.starts_with("/apis/authentication.k8s.io/") || path.starts_with("/apis/authorization.k8s.io/") {
                &self.stats.reviews
            } else if req.method() == http::Method::GET {
                &self.stats.reads
            } else {
                &self.stats.writes
            };
        counter.fetch_add(1, Ordering::Relaxed);
        if req.method() != http::Method::GET && req.uri().path().contains("/events") {
            self.stats.event_writes.fetch_add(1, Ordering::Relaxed);
        }
        let stats = self.stats.clone();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await;
            if res.as_ref().is_ok_and(|r| r.status().is_client_error() || r.status().is_server_error()) {
                stats.errors.fetch_add(1, Ordering::Relaxed);
            }
            res
        })
    }
}
