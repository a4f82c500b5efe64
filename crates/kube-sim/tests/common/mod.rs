//! Shared harness: a kube-sim cluster served on 127.0.0.1:0, with a kube client,
//! a raw HTTP client and a kubeconfig file for kubectl.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use kube_sim::{Cluster, Server, ServerConfig};
use serde_json::Value;

pub struct Sim {
    pub cluster: Cluster,
    pub server: Server,
    pub dir: tempfile::TempDir,
}

impl Sim {
    /// A bare API server (no scheduler, kubelets or controllers): for tests of
    /// REST semantics, where the test itself plays the controllers.
    pub async fn start() -> Sim {
        Self::start_with(ServerConfig { simulate: false, ..ServerConfig::default() }).await
    }

    /// A live simulated cluster (scheduler, kubelets, controllers running).
    pub async fn start_live() -> Sim {
        Self::start_with(ServerConfig::default()).await
    }

    /// A live cluster whose simulated time runs `speed` times faster.
    pub async fn start_live_speed(speed: f64) -> Sim {
        Self::start_clock(ServerConfig::default(), kube_sim::Clock::new(speed)).await
    }

    pub async fn start_with(config: ServerConfig) -> Sim {
        Self::start_clock(config, kube_sim::Clock::default()).await
    }

    pub async fn start_clock(config: ServerConfig, clock: kube_sim::Clock) -> Sim {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("TEST_LOG").unwrap_or_else(|_| "off".into()))
            .with_test_writer()
            .try_init();
        let cluster = Cluster::with(config, clock);
        let server = cluster.serve("127.0.0.1:0".parse().unwrap()).await.expect("bind 127.0.0.1:0");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("kubeconfig"), server.kubeconfig()).expect("write kubeconfig");
        Sim { cluster, server, dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.server.url(), path)
    }

    pub fn kubeconfig_path(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    pub async fn client(&self) -> kube::Client {
        let kc = kube::config::Kubeconfig::from_yaml(&self.server.kubeconfig()).expect("kubeconfig parses");
        let config = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .expect("kubeconfig loads");
        kube::Client::try_from(config).expect("client")
    }

    pub fn http(&self) -> reqwest::Client {
        {
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
        }
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
    }

    /// GET a path, return (status, JSON body).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http().get(self.url(path)).send().await.expect("request");
        let code = r.status().as_u16();
        (code, r.json().await.unwrap_or(Value::Null))
    }

    /// Send a request with a body and content type; return (status, JSON body).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let r = self
            .http()
            .request(method, self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        let code = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        (code, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, "application/json", body.to_string()).await
    }
}

pub fn reference(name: &str) -> Value {
    let path = format!("{}/../../testdata/k8s-reference/v1.32/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Wait for a condition, polling; panics with `what` after `secs` seconds.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if f().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {secs}s waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `kubectl` binary `bin` against `kubeconfig` (its discovery cache in
/// `cache`, never the user's), bounded by `secs`: (success, stdout + stderr).
pub async fn run_kubectl(
    bin: &str,
    kubeconfig: &std::path::Path,
    cache: &std::path::Path,
    args: &[&str],
    secs: u64,
) -> (bool, String) {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .args(args)
        .env_remove("KUBECONFIG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().unwrap_or_else(|e| panic!("{bin}: {e}"));
    let out = tokio::time::timeout(std::time::Duration::from_secs(secs), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{bin} {args:?} hung"))
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}
