//! The service's errors. A migration's failure is an [`Error`] whose
//! [`Error::category`] is `sdi-core`'s bounded [`Category`]: the label of the
//! failure metric, the reason of the failure Event and the job's
//! `error_category`. Start-up failures are [`StartError`]s, reported once by `main`.

use sdi_core::error::Category;

/// Why a migration step failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or did not answer (after the retries that apply).
    #[error("cannot {action}: {source}")]
    Api {
        action: String,
        #[source]
        source: kube::Error,
    },
    /// The cluster is not, or no longer, as the migration needs it.
    #[error("{message}")]
    Migration { category: Category, message: String },
    #[error("timed out after {0}s")]
    Timeout(u64),
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    /// A failed request: `action` says what was attempted ("read pod default/web").
    pub fn api(action: impl Into<String>, source: kube::Error) -> Error {
        Error::Api { action: action.into(), source }
    }

    pub fn new(category: Category, message: impl Into<String>) -> Error {
        Error::Migration { category, message: message.into() }
    }

    pub fn category(&self) -> Category {
        match self {
            Error::Api { source, .. } => api_category(source),
            Error::Migration { category, .. } => *category,
            Error::Timeout(_) => Category::Timeout,
            Error::Cancelled => Category::Cancelled,
        }
    }
}

/// What a failed Kubernetes request means for a migration.
pub fn api_category(e: &kube::Error) -> Category {
    match e {
        kube::Error::Api(s) => Category::of_api_status(s.code),
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::HttpError(_) => Category::ApiUnavailable,
        // An answer we could not read is the server's fault as far as we can tell.
        kube::Error::SerdeError(_) | kube::Error::ReadEvents(_) => Category::ApiUnavailable,
        _ => Category::Internal,
    }
}

/// Why the service (or the demo) could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    /// No usable connection to the Kubernetes API.
    #[error("{0}")]
    Kubernetes(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A scenario file for the demo is unreadable or invalid.
    #[error("{0}")]
    Scenario(String),
    /// InfluxDB or the policy engine client cannot be set up.
    #[error("{0}")]
    Sink(String),
    /// TLS_CERT_FILE / TLS_KEY_FILE cannot be served.
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> kube::Error {
        kube::Error::Api(kube::core::Status::failure("nope", "NotFound").with_code(code).boxed())
    }

    #[test]
    fn categories_and_messages() {
        let e = Error::api("read pod default/web", status(404));
        assert_eq!(e.category(), Category::NotFound);
        assert!(e.to_string().starts_with("cannot read pod default/web: "), "{e}");
        assert_eq!(Error::api("evict", status(429)).category(), Category::Budget);
        assert_eq!(Error::api("patch", status(503)).category(), Category::ApiUnavailable);
        assert_eq!(
            Error::new(Category::Target, "target node w2 became NotReady").to_string(),
            "target node w2 became NotReady"
        );
        assert_eq!(Error::Timeout(60).to_string(), "timed out after 60s");
        assert_eq!(Error::Timeout(60).category(), Category::Timeout);
        assert_eq!(Error::Cancelled.category(), Category::Cancelled);
    }
}
