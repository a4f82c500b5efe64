//! HTTPS for the API: with TLS_CERT_FILE and TLS_KEY_FILE the service serves
//! only HTTPS, tokens go over it, and a certificate rewritten in place (a
//! renewal) is served without a restart; a bad certificate stops start-up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Env, settings};
use sdi_migration::config::Settings;

const PODS: &str = r#"
workloads:
  - kind: Pod
    name: web
    nodeName: w1
    containers: [{name: app, requests: {cpu: 100m, memory: 64Mi}}]
"#;

/// A self-signed certificate for 127.0.0.1, written as `cert.pem` / `key.pem`; its PEM.
fn write_cert(dir: &Path) -> String {
    let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let pem = c.cert.pem();
    // Written beside, then renamed: a reader never sees half a file (as a Secret volume updates).
    std::fs::write(dir.join("cert.pem.new"), &pem).unwrap();
    std::fs::write(dir.join("key.pem.new"), c.signing_key.serialize_pem()).unwrap();
    std::fs::rename(dir.join("key.pem.new"), dir.join("key.pem")).unwrap();
    std::fs::rename(dir.join("cert.pem.new"), dir.join("cert.pem")).unwrap();
    pem
}

/// A client that trusts only `pem`, sending `token`; a new one per call (no pooled connection).
fn client(pem: &str, token: &str) -> reqwest::Client {
    let cert = reqwest::Certificate::from_pem(pem.as_bytes()).unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
    reqwest::Client::builder()
        .tls_certs_only([cert])
        .default_headers(headers)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_https_and_follows_a_renewed_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let first = write_cert(certs.path());
    let s = Settings {
        tls_cert_file: Some(certs.path().join("cert.pem")),
        tls_key_file: Some(certs.path().join("key.pem")),
        ..settings()
    };
    let env = Env::start_with(PODS, s, 5.0).await;
    assert!(env.service().url().starts_with("https://"), "{}", env.service().url());

    let r = client(&first, &env.api_token).get(env.url("/api/v1/plan")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Access control is the same over HTTPS.
    let r = client(&first, "bogus").get(env.url("/api/v1/plan")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // Plain HTTP is not served.
    let plain = env.url("/health").replace("https://", "http://");
    let answered = reqwest::Client::new().get(plain).send().await.is_ok_and(|r| r.status().is_success());
    assert!(!answered, "plain HTTP must not be answered");

    let second = write_cert(certs.path());
    common::wait_for(Duration::from_secs(30), "the renewed certificate to be served", || async {
        match client(&second, &env.api_token).get(env.url("/health")).send().await {
            Ok(r) if r.status() == 200 => Ok(()),
            Ok(r) => Err(r.status().to_string()),
            Err(e) => Err(format!("{e:?}")),
        }
    })
    .await;
    // The old certificate is no longer presented.
    assert!(client(&first, &env.api_token).get(env.url("/health")).send().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_that_cannot_be_read_stops_start_up() {
    let certs = tempfile::tempdir().unwrap();
    write_cert(certs.path());
    std::fs::write(certs.path().join("key.pem"), "not a key").unwrap();
    let mut env = Env::start(PODS).await;
    env.service.take().unwrap().shutdown(Duration::from_secs(1)).await;
    let s = Settings {
        tls_cert_file: Some(certs.path().join("cert.pem")),
        tls_key_file: Some(certs.path().join("key.pem")),
        ..settings()
    };
    let clock: sdi_migration::rebalancer::Clock = std::sync::Arc::new(|| 0);
    let e = sdi_migration::service::Service::start_with_clock(
        &s,
        env.client.clone(),
        env.stats.clone(),
        "127.0.0.1:0".parse().unwrap(),
        Some(clock),
    )
    .await
    .err()
    .expect("a bad key must stop start-up");
    assert!(e.to_string().contains("key.pem"), "{e}");
}

/// A CA and a client certificate it signed for `user` in `groups`: (CA PEM, client cert + key PEM).
fn client_cert(user: &str, groups: &[&str]) -> (String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "clients");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, user);
    for g in groups {
        params.distinguished_name.push(rcgen::DnType::OrganizationName, *g);
    }
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), format!("{}{}", cert.pem(), key.serialize_pem()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_signed_by_the_client_ca_authenticates_its_caller() {
    let certs = tempfile::tempdir().unwrap();
    let server = write_cert(certs.path());
    let (ca, identity) = client_cert("carol", &["ops"]);
    std::fs::write(certs.path().join("clients.pem"), &ca).unwrap();
    let s = Settings {
        tls_cert_file: Some(certs.path().join("cert.pem")),
        tls_key_file: Some(certs.path().join("key.pem")),
        tls_client_ca_file: Some(certs.path().join("clients.pem")),
        auth_cache_ttl: 1,
        ..settings()
    };
    let env = Env::start_with(PODS, s, 5.0).await;
    let with_cert = |identity: &str| {
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(server.as_bytes()).unwrap()])
            .identity(reqwest::Identity::from_pem(identity.as_bytes()).unwrap())
            .build()
            .unwrap()
    };
    // Authenticated as carol in ops: RBAC decides, and names her.
    let r = with_cert(&identity).get(env.url("/api/v1/plan")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["details"].as_str().unwrap().contains(r#"user "carol""#), "{body}");
    env.sim
        .dynamic("rbac.authorization.k8s.io/v1", "clusterrolebindings", None)
        .unwrap()
        .create(serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "ops-operator"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "sdi-migration-operator"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "ops"}]}))
        .unwrap();
    common::wait_for(Duration::from_secs(20), "the group's grant to apply", || async {
        match with_cert(&identity).get(env.url("/api/v1/plan")).send().await {
            Ok(r) if r.status() == 200 => Ok(()),
            Ok(r) => Err(r.status().to_string()),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
    // Without a certificate (and without a token): 401. With one from another CA: no handshake.
    assert_eq!(client(&server, "").get(env.url("/api/v1/plan")).send().await.unwrap().status(), 401);
    let (_, stranger) = client_cert("mallory", &["system:masters"]);
    assert!(with_cert(&stranger).get(env.url("/api/v1/plan")).send().await.is_err());
}
