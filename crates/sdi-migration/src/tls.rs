//! HTTPS for the API (`TLS_CERT_FILE`, `TLS_KEY_FILE`): the certificate is
//! read at start — a bad one stops start-up — and read again whenever either
//! file changes, so a renewed certificate (cert-manager rewriting the mounted
//! Secret) is served without a restart. A renewal that cannot be read is
//! logged and the previous certificate kept.
//!
//! With a client CA (`TLS_CLIENT_CA_FILE`), a client may present a certificate
//! that CA signed instead of a bearer token: its subject's CN is the user and
//! its O entries the groups, as the Kubernetes API server reads them. A
//! certificate from another CA fails the handshake; none at all is allowed
//! (the caller then needs a token).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::RwLock;
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

/// How often the files are checked for changes.
pub const RELOAD_CHECK: Duration = Duration::from_secs(2);
/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {why}")]
    Key { path: PathBuf, why: String },
    #[error("cannot build the TLS configuration: {0}")]
    Config(String),
    #[error("{path}: no usable CA certificate for client certificates: {why}")]
    ClientCa { path: PathBuf, why: String },
}

/// The certificate and key files, and the CA of client certificates.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_owned(), source })
}

impl TlsFiles {
    /// The certificate chain and its key, ready to serve.
    pub fn load(&self) -> Result<Arc<CertifiedKey>, TlsError> {
        let pem = read(&self.cert)?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok).collect();
        if chain.is_empty() {
            return Err(TlsError::NoCertificate { path: self.cert.clone() });
        }
        let pem = read(&self.key)?;
        let key = PrivateKeyDer::from_pem_slice(&pem)
            .map_err(|e| TlsError::Key { path: self.key.clone(), why: e.to_string() })?;
        let signer = ring::sign::any_supported_type(&key)
            .map_err(|e| TlsError::Key { path: self.key.clone(), why: e.to_string() })?;
        Ok(Arc::new(CertifiedKey::new(chain, signer)))
    }

    /// The verifier of client certificates: optional ones, signed by the client CA.
    fn client_verifier(&self) -> Result<Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>, TlsError> {
        let Some(path) = &self.client_ca else { return Ok(None) };
        let bad = |why: String| TlsError::ClientCa { path: path.clone(), why };
        let pem = read(path)?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            roots.add(cert.map_err(|e| bad(e.to_string()))?).map_err(|e| bad(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(bad("the file holds no PEM certificate".into()));
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(ring::default_provider()),
        )
        .allow_unauthenticated()
        .build()
        .map_err(|e| bad(e.to_string()))?;
        Ok(Some(verifier))
    }

    /// What identifies the files' current contents cheaply: modification times and sizes.
    fn stamp(&self) -> Option<(SystemTime, u64, SystemTime, u64)> {
        let c = std::fs::metadata(&self.cert).ok()?;
        let k = std::fs::metadata(&self.key).ok()?;
        Some((c.modified().ok()?, c.len(), k.modified().ok()?, k.len()))
    }
}

/// Serves whichever certificate was loaded last.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().clone())
    }
}

/// Accepts TCP connections and hands axum those whose TLS handshake
/// completed; handshakes run concurrently, so a slow client delays no one.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, std::net::SocketAddr)>,
    local: std::net::SocketAddr,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener").field("local", &self.local).finish_non_exhaustive()
    }
}

impl TlsListener {
    /// Can `files` be served (certificate, key, client CA)?
    pub fn check(files: &TlsFiles) -> Result<(), TlsError> {
        files.load()?;
        files.client_verifier()?;
        Ok(())
    }

    /// Serve `files` on `tcp` until `stop`, following changes of the files.
    pub fn new(tcp: TcpListener, files: TlsFiles, stop: CancellationToken) -> Result<TlsListener, TlsError> {
        let local = tcp.local_addr().map_err(|e| TlsError::Config(e.to_string()))?;
        let current = Arc::new(Current(RwLock::new(files.load()?)));
        let builder = rustls::ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let builder = match files.client_verifier()? {
            Some(verifier) => builder.with_client_cert_verifier(verifier),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        tokio::spawn(reload(files, current, stop.clone()));
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, addr) = tokio::select! {
                    _ = stop.cancelled() => return,
                    accepted = tcp.accept() => match accepted {
                        Ok(c) => c,
                        Err(e) => {
                            // Out of file descriptors and the like: back off, as axum does.
                            tracing::debug!(error = %e, "TLS accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, addr)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, %addr, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { rx, local })
    }
}

/// Load the files again whenever they change; keep the old certificate when
/// the new one cannot be read (a half-written renewal is retried next check).
async fn reload(files: TlsFiles, current: Arc<Current>, stop: CancellationToken) {
    let mut stamp = files.stamp();
    let mut tick = tokio::time::interval(RELOAD_CHECK);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = files.stamp();
        if now == stamp {
            continue;
        }
        match files.load() {
            Ok(key) => {
                *current.0.write() = key;
                stamp = now;
                tracing::info!(cert = %files.cert.display(), "TLS certificate reloaded");
            }
            Err(e) => {
                tracing::warn!(error = %e, "TLS certificate changed but cannot be loaded; still serving the previous one")
            }
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept loop has stopped: nothing more comes.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Who is at the other end of a connection: the user and groups of a verified
/// client certificate, if one was presented (request extension `ConnectInfo<Peer>`).
#[derive(Debug, Clone, Default)]
pub struct Peer {
    pub certificate: Option<(String, Vec<String>)>,
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Peer {
        let (_, conn) = stream.io().get_ref();
        let certificate = conn.peer_certificates().and_then(|c| c.first()).and_then(|c| subject(c.as_ref()));
        Peer { certificate }
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TcpListener>> for Peer {
    fn connect_info(_: axum::serve::IncomingStream<'_, TcpListener>) -> Peer {
        Peer::default()
    }
}

/// One DER element: (tag, contents, the rest).
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
const OID_O: &[u8] = &[0x55, 0x04, 0x0a];

/// The subject's common name and organizations of an X.509 certificate (DER),
/// as the API server maps them to a user and groups. `None` without a CN.
pub fn subject(cert: &[u8]) -> Option<(String, Vec<String>)> {
    let (_, certificate, _) = element(cert)?;
    let (_, tbs, _) = element(certificate)?;
    let mut rest = tbs;
    // [0] version (optional), serial, signature algorithm, issuer, validity, subject.
    let (tag, _, r) = element(rest)?;
    if tag == 0xa0 {
        rest = r;
    }
    for _ in 0..4 {
        rest = element(rest)?.2;
    }
    let (_, mut names, _) = element(rest)?;
    let (mut cn, mut orgs) = (None, Vec::new());
    while !names.is_empty() {
        let (_, set, r) = element(names)?;
        names = r;
        let mut attrs = set;
        while !attrs.is_empty() {
            let (_, attr, r) = element(attrs)?;
            attrs = r;
            let (_, oid, value) = element(attr)?;
            let (_, text, _) = element(value)?;
            let text = std::str::from_utf8(text).ok()?.to_string();
            match oid {
                OID_CN => cn = Some(text),
                OID_O => orgs.push(text),
                _ => {}
            }
        }
    }
    Some((cn?, orgs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_subject_is_a_user_and_groups() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "alice");
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "team-a");
        params.distinguished_name.push(rcgen::DnType::CountryName, "KR");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (cn, orgs) = subject(cert.der()).unwrap();
        assert_eq!((cn.as_str(), orgs), ("alice", vec!["team-a".to_string()]));
        assert_eq!(subject(&cert.der()[..20]), None, "truncated");
        assert_eq!(subject(b"junk"), None);
    }
}
