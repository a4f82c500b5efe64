//! HTTPS: a certificate authority generated at start, a serving certificate
//! for loopback and the in-cluster names, client certificates signed by the
//! CA, and the listener that serves TLS to axum.
//!
//! As upstream (`tls.RequestClientCert` + the x509 authenticator), a client
//! certificate is asked for but not required, and one that does not verify
//! against the CA makes requests 401 instead of failing the handshake.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::{AUTHENTICATED, UserInfo};

/// A client certificate and its private key, PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientCertificate { .. }")
    }
}

/// The simulator's CA and serving certificate.
pub struct Pki {
    pub ca_pem: String,
    ca_der: CertificateDer<'static>,
    issuer: CertifiedIssuer<'static, KeyPair>,
    server_cert: CertificateDer<'static>,
    server_key: Vec<u8>,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pki { .. }")
    }
}

fn validity(params: &mut CertificateParams, years: i32) {
    let today = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let yesterday = today.yesterday().unwrap_or(today);
    params.not_before =
        rcgen::date_time_ymd(i32::from(yesterday.year()), yesterday.month() as u8, yesterday.day() as u8);
    params.not_after =
        rcgen::date_time_ymd(i32::from(today.year()) + years, today.month() as u8, today.day().min(28) as u8);
}

impl Pki {
    pub fn generate() -> Result<Pki, String> {
        let e = |e: rcgen::Error| e.to_string();
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
        ca.distinguished_name = DistinguishedName::new();
        ca.distinguished_name.push(DnType::CommonName, "kube-sim-ca");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::CrlSign];
        validity(&mut ca, 10);
        let issuer = CertifiedIssuer::self_signed(ca, KeyPair::generate().map_err(e)?).map_err(e)?;
        let names = [
            "127.0.0.1",
            "::1",
            "localhost",
            "10.96.0.1",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ];
        let mut server = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).map_err(e)?;
        server.distinguished_name = DistinguishedName::new();
        server.distinguished_name.push(DnType::CommonName, "kube-apiserver");
        server.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        validity(&mut server, 1);
        let server_key = KeyPair::generate().map_err(e)?;
        let server_cert = server.signed_by(&server_key, &issuer).map_err(e)?;
        Ok(Pki {
            ca_pem: issuer.pem(),
            ca_der: issuer.der().clone(),
            server_cert: server_cert.der().clone(),
            server_key: server_key.serialize_der(),
            issuer,
        })
    }

    /// A client certificate: CN = `user`, O = each group (at most two: the
    /// certificate generator writes one value per attribute type, and the
    /// second group rides on the organisation's OID spelled as a custom type).
    pub fn issue_client(&self, user: &str, groups: &[&str]) -> Result<ClientCertificate, String> {
        if groups.len() > 2 {
            return Err(format!(
                "kube-sim's client certificates carry at most two groups, {} asked: use a token user for more",
                groups.len()
            ));
        }
        let e = |e: rcgen::Error| e.to_string();
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
        params.distinguished_name = DistinguishedName::new();
        if let Some(g) = groups.first() {
            params.distinguished_name.push(DnType::OrganizationName, *g);
        }
        if let Some(g) = groups.get(1) {
            params.distinguished_name.push(DnType::CustomDnType(vec![2, 5, 4, 10]), *g);
        }
        params.distinguished_name.push(DnType::CommonName, user);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        validity(&mut params, 1);
        let key = KeyPair::generate().map_err(e)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(e)?;
        Ok(ClientCertificate { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }

    /// The rustls configuration of the API server.
    pub fn server_config(&self) -> Result<(Arc<rustls::ServerConfig>, Arc<dyn ClientCertVerifier>), String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).map_err(|e| e.to_string())?;
        let strict = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .allow_unauthenticated()
            .build()
            .map_err(|e| e.to_string())?;
        let lenient = Arc::new(Lenient { strict: strict.clone() });
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone()));
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(lenient)
            .with_single_cert(vec![self.server_cert.clone(), self.ca_der.clone()], key)
            .map_err(|e| e.to_string())?;
        // The HTTP server speaks HTTP/1.1 only.
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok((Arc::new(cfg), strict))
    }
}

/// Asks for a client certificate, accepts any (the chain is checked when the
/// request is authenticated), and checks the handshake signature proving the
/// client holds its key.
#[derive(Debug)]
struct Lenient {
    strict: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for Lenient {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        false
    }
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.strict.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.strict.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.strict.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.strict.supported_verify_schemes()
    }
}

/// Who is at the other end of a connection, as far as TLS tells.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    pub addr: Option<SocketAddr>,
    /// `None`: no client certificate; `Some(Err)`: one that does not verify.
    pub certificate: Option<Result<UserInfo, String>>,
}

impl Connected<IncomingStream<'_, TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        Peer { addr: Some(*stream.remote_addr()), certificate: None }
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        let (_, conn) = stream.io().get_ref();
        let certificate = conn.peer_certificates().and_then(|chain| chain.split_first()).map(|(leaf, rest)| {
            stream
                .remote_addr()
                .verifier
                .verify_client_cert(leaf, rest, UnixTime::now())
                .map_err(|e| format!("verifying certificate: {e}"))
                .and_then(|_| super::der::subject(leaf).ok_or_else(|| "unreadable certificate subject".to_string()))
                .map(|(cn, orgs)| {
                    let mut u = UserInfo::authenticated(&cn, "", &orgs);
                    u.add_group(AUTHENTICATED);
                    u
                })
        });
        Peer { addr: Some(stream.remote_addr().addr), certificate }
    }
}

/// The address of a TLS connection and the verifier its certificate is checked with.
#[derive(Debug, Clone)]
pub struct TlsAddr {
    pub addr: SocketAddr,
    verifier: Arc<dyn ClientCertVerifier>,
}

/// Accepts TCP connections and hands axum the ones whose TLS handshake
/// completed (handshakes run concurrently, so a slow client delays no one).
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    verifier: Arc<dyn ClientCertVerifier>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener").field("local", &self.local).finish_non_exhaustive()
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsListener {
    pub fn new(tcp: TcpListener, pki: &Pki) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (cfg, verifier) = pki.server_config().map_err(std::io::Error::other)?;
        let acceptor = TlsAcceptor::from(cfg);
        let (tx, rx) = mpsc::channel(64);
        let task = tokio::spawn(async move {
            loop {
                let (stream, addr) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, as axum does.
                        tracing::debug!(error = %e, "kube-sim TLS accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, addr)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, %addr, "kube-sim TLS handshake failed"),
                        Err(_) => tracing::debug!(%addr, "kube-sim TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { rx, local, verifier, task })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = TlsAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some((io, addr)) => (io, TlsAddr { addr, verifier: self.verifier.clone() }),
            // The accept loop only ends when the listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(TlsAddr { addr: self.local, verifier: self.verifier.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_certificates_carry_user_and_groups() {
        let pki = Pki::generate().unwrap();
        let c = pki.issue_client("alice", &["dev", "ops"]).unwrap();
        let der = rustls::pki_types::pem::PemObject::from_pem_slice(c.cert_pem.as_bytes())
            .map(|d: CertificateDer<'static>| d)
            .unwrap();
        let (cn, orgs) = super::super::der::subject(&der).unwrap();
        assert_eq!(cn, "alice");
        assert_eq!(orgs, vec!["dev", "ops"]);
        assert!(pki.issue_client("x", &["a", "b", "c"]).is_err());
        let (_, strict) = pki.server_config().unwrap();
        assert!(strict.verify_client_cert(&der, &[], UnixTime::now()).is_ok());
        let other = Pki::generate().unwrap();
        let (_, foreign) = other.server_config().unwrap();
        assert!(foreign.verify_client_cert(&der, &[], UnixTime::now()).is_err(), "another CA's certificate fails");
    }
}
