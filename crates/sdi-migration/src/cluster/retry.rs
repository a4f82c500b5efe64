//! Retrying what an API server says is transient.
//!
//! 5xx, 429 and connection failures are retried with capped exponential backoff;
//! everything else (404, 409, 422, …) is an answer and returned at once. The
//! caller's own deadline bounds the whole thing (jobs run under a timeout), so the
//! retry count here is only a safety net.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

/// Whether a request that failed this way may succeed if sent again.
pub fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code == 429 || s.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::HttpError(_) => true,
        _ => false,
    }
}

/// Like [`transient`], but a 500 is an answer: for calls where the server
/// reports a permanent failure that way (the kubelet's checkpoint API).
pub async fn unavailable_only<T, F, Fut>(f: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    f.retry(backoff()).when(|e| is_transient(e) && code(e) != Some(500)).await
}

/// 12 attempts, 100 ms to 5 s apart with jitter: about a minute in all.
fn backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(5))
        .with_max_times(12)
        .with_jitter()
}

/// HTTP status of an API error, if it was one.
pub fn code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

pub fn is_not_found(e: &kube::Error) -> bool {
    code(e) == Some(404)
}

/// Run `f` until it succeeds, fails permanently, or 12 attempts are spent
/// (about a minute of backoff).
pub async fn transient<T, F, Fut>(f: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    f.retry(backoff()).when(is_transient).await
}
