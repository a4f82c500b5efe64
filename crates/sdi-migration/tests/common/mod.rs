//! Harness: a live kube-sim cluster in-process on 127.0.0.1:0, the real service
//! against it over HTTP, and helpers that wait on conditions with bounds.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

pub mod browser;
pub mod influxd;
pub mod kubectl;
pub mod replicas;
pub mod side_by_side;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kube_sim::auth::TokenOptions;
use kube_sim::{AuthConfig, Cluster, Credentials, Server, ServerConfig};
use sdi_migration::cluster::{self, ApiStats};
use sdi_migration::config::Settings;
use sdi_migration::service::Service;
use serde_json::{Value, json};

pub struct Env {
    pub sim: Cluster,
    pub server: Server,
    /// The service's client: the `sdi-migration` ServiceAccount, bound as in `deploy/`.
    pub client: kube::Client,
    /// The cluster administrator's client, for what a test does to the cluster itself.
    pub admin: kube::Client,
    pub stats: Arc<ApiStats>,
    pub service: Option<Service>,
    /// Sends [`Env::api_token`] with every request.
    pub http: reqwest::Client,
    /// A token of the service's API allowed everything (a `system:masters` user).
    pub api_token: String,
    pub dir: tempfile::TempDir,
}

/// The ServiceAccount of `deploy/` (namespace, name) and its user name.
pub const SERVICE_ACCOUNT: (&str, &str) = ("kube-system", "sdi-migration");
pub const SERVICE_USER: &str = "system:serviceaccount:kube-system:sdi-migration";

/// `deploy/`'s identity and permissions for the service (its ServiceAccount,
/// ClusterRole and bindings) and the users' ClusterRoles, as an operator applies them.
pub fn install_rbac(sim: &Cluster) {
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    for file in ["serviceaccount.yaml", "clusterrole.yaml", "clusterrolebinding.yaml", "user-roles.yaml"] {
        let text = std::fs::read_to_string(deploy.join(file)).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let obj: Value = serde::Deserialize::deserialize(doc).unwrap();
            if obj.is_null() {
                continue;
            }
            let plural = match obj["kind"].as_str().unwrap() {
                "ServiceAccount" => "serviceaccounts",
                "ClusterRole" => "clusterroles",
                "ClusterRoleBinding" => "clusterrolebindings",
                other => panic!("{file}: unexpected {other}"),
            };
            let ns = obj["metadata"]["namespace"].as_str().map(str::to_string);
            sim.dynamic(obj["apiVersion"].as_str().unwrap(), plural, ns.as_deref()).unwrap().create(obj).unwrap();
        }
    }
}

/// A token of the service's ServiceAccount, as `kubectl create token` issues
/// it, valid for longer than any test (on the simulated clock).
pub fn service_token(sim: &Cluster) -> String {
    let opts = TokenOptions { expiration_seconds: 30 * 86_400, ..TokenOptions::default() };
    sim.service_account_token(SERVICE_ACCOUNT.0, SERVICE_ACCOUNT.1, &opts).unwrap()
}

/// An HTTP client sending `token` as a bearer token.
pub fn http_with(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if !token.is_empty() {
        headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
    }
    reqwest::Client::builder().timeout(Duration::from_secs(30)).default_headers(headers).build().unwrap()
}

/// Settings for tests: any free port, no settle wait, short timeouts.
pub fn settings() -> Settings {
    Settings {
        port: 0,
        post_migration_settle: 0,
        migration_timeout: 60,
        shutdown_grace: 5,
        enable_auto_migration: false,
        // Tests that want InfluxDB start their own.
        influx_url: None,
        // The same replica when restarted (as a restarted container keeps its pod's name).
        identity: Some("test-replica".into()),
        // A lost leader is replaced within seconds.
        lease_duration: 3,
        renew_deadline: 2,
        retry_period: 1,
        ..Settings::default()
    }
}

/// Two workers and a control plane; callers add workloads.
pub const NODES: &str = r#"
nodes:
  - name: cp
    controlPlane: true
    capacity: {cpu: 4, memory: 8Gi}
  - name: w{i}
    count: 3
    capacity: {cpu: 4, memory: 8Gi, pods: 20}
"#;

impl Env {
    /// A cluster from `workloads` (a scenario fragment) at `speed`×, and the service.
    pub async fn start(workloads: &str) -> Env {
        Self::start_with(workloads, settings(), 5.0).await
    }

    pub async fn start_with(workloads: &str, settings: Settings, speed: f64) -> Env {
        let text = format!(
            "name: test\ndefaults: {{startupSeconds: 1, shutdownSeconds: 1, heartbeatSeconds: 2}}\n{NODES}\n{workloads}"
        );
        Self::start_scenario(&text, settings, speed).await
    }

    /// A cluster from a whole scenario file's text.
    pub async fn start_scenario(text: &str, settings: Settings, speed: f64) -> Env {
        Self::start_scenario_config(text, settings, speed, ServerConfig::default()).await
    }

    /// A cluster from a whole scenario file's text, served with `config`, and the service.
    pub async fn start_scenario_config(text: &str, settings: Settings, speed: f64, config: ServerConfig) -> Env {
        let mut env = Self::start_cluster_config(text, speed, config).await;
        env.start_service(settings).await;
        env
    }

    /// The cluster alone (every pod Running, the CRD installed), its kubeconfig at `dir/kubeconfig`.
    pub async fn start_cluster(text: &str, speed: f64) -> Env {
        Self::start_cluster_config(text, speed, ServerConfig::default()).await
    }

    /// The cluster alone, served with `config` (RBAC and HTTPS always on).
    pub async fn start_cluster_config(text: &str, speed: f64, config: ServerConfig) -> Env {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("TEST_LOG").unwrap_or_else(|_| "off".into()))
            .with_test_writer()
            .try_init();
        let scenario = kube_sim::scenario::parse("test.yaml", text)
            .unwrap_or_else(|e| panic!("scenario: {}", e.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")));
        // RBAC enforced: the service runs as its ServiceAccount with exactly
        // deploy/'s permissions, and every request it makes is recorded.
        // HTTPS, as kubectl sends credentials over HTTPS only.
        let config = ServerConfig { auth: AuthConfig { tls: true, ..AuthConfig::rbac() }, ..config };
        let sim = Cluster::with(config, kube_sim::Clock::new(speed));
        sim.load_scenario(&scenario).unwrap();
        sdi_migration::demo::install_crd(&sim).unwrap();
        install_rbac(&sim);
        sim.api().requests.enable();
        let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kc = dir.path().join("kubeconfig");
        std::fs::write(&kc, server.kubeconfig_for(&Credentials::Token(service_token(&sim)))).unwrap();
        let admin_kc = dir.path().join("admin-kubeconfig");
        std::fs::write(&admin_kc, server.kubeconfig()).unwrap();
        let stats = Arc::new(ApiStats::default());
        let client = cluster::connect(Some(&kc), stats.clone()).await.unwrap();
        let admin = cluster::connect(Some(&admin_kc), Arc::new(ApiStats::default())).await.unwrap();
        sdi_migration::policy::init_tls();
        let api_token = sim.auth().new_token_user("tester", &["system:masters"]);
        let http = http_with(&api_token);
        let env = Env { sim, server, client, admin, stats, service: None, http, api_token, dir };
        env.wait_all_running().await;
        env
    }

    pub async fn start_service(&mut self, settings: Settings) {
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        // Cooldowns follow the simulated clock, as in the demo.
        let clock = self.sim.clock().clone();
        let clock: sdi_migration::rebalancer::Clock = Arc::new(move || clock.elapsed().as_secs());
        let svc = Service::start_with_clock(&settings, self.client.clone(), self.stats.clone(), addr, Some(clock))
            .await
            .unwrap();
        self.service = Some(svc);
    }

    pub fn service(&self) -> &Service {
        self.service.as_ref().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.service().url())
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        let code = r.status().as_u16();
        (code, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_raw(&self, path: &str, body: &str) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        let text = r.text().await.unwrap();
        (code, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn migrate(&self, body: Value) -> (u16, Value) {
        self.post_raw("/api/v1/migrations", &body.to_string()).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        let r = self.http.delete(self.url(path)).send().await.unwrap();
        let code = r.status().as_u16();
        (code, r.json().await.unwrap_or(Value::Null))
    }

    /// Poll the job until it is terminal (the API's own clients do this); panics after `secs`.
    pub async fn finished(&self, id: &str, secs: u64) -> Value {
        wait_for(Duration::from_secs(secs), &format!("job {id} to finish"), || async {
            let (code, body) = self.get(&format!("/api/v1/migrations/{id}")).await;
            assert_eq!(code, 200, "{body}");
            if ["completed", "failed", "cancelled"].contains(&body["status"].as_str().unwrap_or("")) {
                Ok(body)
            } else {
                Err(format!("{body:#}"))
            }
        })
        .await
    }

    /// Wait until the job shows a step with this name running or done.
    pub async fn reached_step(&self, id: &str, step: &str, secs: u64) {
        eventually(secs, &format!("{id} reaches step {step}"), || async {
            let (_, body) = self.get(&format!("/api/v1/migrations/{id}")).await;
            body["details"]["steps"].as_array().is_some_and(|s| s.iter().any(|s| s["name"] == step))
        })
        .await;
    }

    /// All pods as JSON from the simulated cluster's direct handle.
    pub fn pods(&self, namespace: &str) -> Vec<Value> {
        self.sim.dynamic("v1", "pods", Some(namespace)).unwrap().list("", "").unwrap()
    }

    pub fn pod(&self, namespace: &str, name: &str) -> Option<Value> {
        self.sim.dynamic("v1", "pods", Some(namespace)).unwrap().get(name).ok()
    }

    pub async fn wait_all_running(&self) {
        wait_for(Duration::from_secs(60), "every scenario pod to be Ready", || async {
            let pods = self.sim.dynamic("v1", "pods", None).unwrap().list("", "").unwrap();
            if !pods.is_empty() && pods.iter().all(ready) {
                return Ok(());
            }
            let stuck: Vec<String> = pods
                .iter()
                .filter(|p| !ready(p))
                .map(|p| format!("{} {:#}", p["metadata"]["name"], p["status"]))
                .collect();
            Err(format!("not Ready: {stuck:#?}"))
        })
        .await
    }

    /// Inject API faults (kube-sim's `/_sim/faults` body).
    pub async fn faults(&self, config: Value) {
        self.sim.api().faults.set(serde_json::from_value(config).unwrap()).unwrap();
    }

    pub fn clear_faults(&self) {
        self.sim.api().faults.clear();
    }

    pub async fn set_node_ready(&self, node: &str, ready: bool) {
        let nodes = self.sim.dynamic("v1", "nodes", None).unwrap();
        let patch =
            json!({"metadata": {"annotations": {"sim.kube-sim.io/ready": if ready { "true" } else { "false" }}}});
        nodes.patch(node, None, kube_sim::PatchType::Merge, &patch).unwrap();
    }
}

pub fn ready(p: &Value) -> bool {
    p["metadata"]["deletionTimestamp"].is_null()
        && p["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

pub fn node_of(p: &Value) -> &str {
    p["spec"]["nodeName"].as_str().unwrap_or("")
}

/// The tests' one bounded wait: poll `probe` until it answers `Ok(value)`;
/// after `within`, panic naming `what` and the last state `probe` reported
/// (its `Err`). Conditions that a watch cannot express (another process's
/// state, an HTTP API) are polled this way, never slept on.
pub async fn wait_for<T, F, Fut>(within: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let last = match probe().await {
            Ok(v) => return v,
            Err(state) => state,
        };
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {within:?} waiting for {what}; last seen: {last}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// [`wait_for`] a condition; panics with `what` after `secs` seconds.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    wait_for(Duration::from_secs(secs), what, || {
        let check = f();
        async move { if check.await { Ok(()) } else { Err("not yet".to_string()) } }
    })
    .await
}

pub fn request(pod: &str, ns: &str, from: &str, to: &str) -> Value {
    json!({"pod_name": pod, "pod_namespace": ns, "source_node": from, "target_node": to})
}
