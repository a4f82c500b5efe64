//! The public handle on a simulated cluster: serve it over HTTP (for `kube`,
//! `kubectl` and the service under test) and reach it directly in-process,
//! typed or untyped, without HTTP (for the simulated controllers and kubelets,
//! and for tests that arrange state quickly).

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::apiserver::{ApiServer, DeleteOptions, Deleted, Filter, ListOptions, PatchType, ServerConfig, WriteOptions};
use crate::auth::Credentials;
use crate::clock::Clock;
use crate::error::{ApiError, ApiResult};
use crate::resources::ResourceInfo;
use crate::store::EventKind;
use crate::watch::{self, Start, WatchItem, WatchRequest};

/// A simulated Kubernetes cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    api: Arc<ApiServer>,
    /// Cancelled when the cluster's background tasks must stop.
    stop: CancellationToken,
    /// The simulated control plane's cache and simulation state.
    sim: crate::controllers::state::Shared,
}

impl Cluster {
    /// An empty cluster (core namespaces only) with the built-in control-plane
    /// loops running. Must be called inside a tokio runtime.
    pub fn new() -> Self {
        Self::with(ServerConfig::default(), Clock::default())
    }

    pub fn with(config: ServerConfig, clock: Clock) -> Self {
        let simulate = config.simulate;
        let cluster =
            Cluster { api: ApiServer::new(config, clock), stop: CancellationToken::new(), sim: Default::default() };
        crate::controllers::start(&cluster, simulate);
        cluster
    }

    /// The simulation state shared by the control-plane loops.
    pub fn sim(&self) -> &crate::controllers::state::Shared {
        &self.sim
    }

    /// Create a scenario's objects and play its timeline.
    pub fn load_scenario(&self, scenario: &crate::scenario::Scenario) -> Result<(), String> {
        crate::controllers::timeline::load(self, scenario)
    }

    /// The container checkpoints the simulated kubelets have taken.
    pub fn checkpoints(&self) -> Vec<crate::controllers::state::CheckpointRecord> {
        self.sim.read().checkpoints.clone()
    }

    /// The API server itself, for full control over requests.
    pub fn api(&self) -> &Arc<ApiServer> {
        &self.api
    }

    pub fn clock(&self) -> &Clock {
        &self.api.clock
    }

    /// A token cancelled when the cluster stops; background loops select on it.
    pub fn stopping(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Stop the cluster's background loops and end every watch.
    pub fn stop(&self) {
        self.stop.cancel();
        self.api.shutdown();
    }

    /// Serve the Kubernetes API on `addr` (use port 0 for any free port): HTTP,
    /// or HTTPS when the server's [`crate::AuthConfig::tls`] is set.
    pub async fn serve(&self, addr: SocketAddr) -> std::io::Result<Server> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        *self.api.advertise.write() = addr.to_string();
        let shutdown = CancellationToken::new();
        let app = crate::http::router(self.api.clone()).into_make_service_with_connect_info::<crate::auth::Peer>();
        let stop = shutdown.clone();
        let api = self.api.clone();
        let graceful = async move {
            stop.cancelled().await;
            // Open watches would keep a graceful shutdown waiting forever.
            api.disconnect_watches();
        };
        let auth = &self.api.auth;
        let (task, ca_pem, admin) = if auth.config.tls {
            let pki = auth.pki().map_err(|e| std::io::Error::other(e.message))?;
            let admin = auth
                .issue_client_certificate(crate::auth::ADMIN_USER, &[crate::auth::MASTERS])
                .map_err(|e| std::io::Error::other(e.message))?;
            let listener = crate::auth::tls::TlsListener::new(listener, &pki)?;
            let task = tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(graceful).await {
                    tracing::error!(error = %e, "kube-sim HTTPS server failed");
                }
            });
            (task, Some(pki.ca_pem.clone()), Credentials::ClientCertificate(admin))
        } else {
            let task = tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(graceful).await {
                    tracing::error!(error = %e, "kube-sim HTTP server failed");
                }
            });
            (task, None, Credentials::Token(auth.admin_token().to_string()))
        };
        let needs_credentials = auth.rbac_enabled() || !auth.config.anonymous || auth.config.tls;
        let admin = if needs_credentials { admin } else { Credentials::None };
        Ok(Server { addr, shutdown, task, ca_pem, admin })
    }

    /// Typed in-process access to one resource, in one namespace (`None` for
    /// cluster-scoped resources or all namespaces).
    pub fn typed<K: k8s_openapi::Resource>(&self, namespace: Option<&str>) -> Typed<K> {
        let res = self
            .api
            .registry
            .get(K::GROUP, K::VERSION, K::URL_PATH_SEGMENT)
            .unwrap_or_else(|| panic!("{} is not served by kube-sim", K::KIND));
        Typed {
            api: self.api.clone(),
            res,
            ns: namespace.map(str::to_string),
            manager: "kube-sim".into(),
            _k: PhantomData,
        }
    }

    /// Untyped in-process access to any served resource (including custom ones).
    pub fn dynamic(&self, api_version: &str, plural: &str, namespace: Option<&str>) -> ApiResult<Dynamic> {
        let (g, v) = crate::resources::split_api_version(api_version);
        let res = self
            .api
            .registry
            .get(g, v, plural)
            .ok_or_else(|| ApiError::bad_request(format!("the server does not serve {plural} in {api_version}")))?;
        Ok(Dynamic { api: self.api.clone(), res, ns: namespace.map(str::to_string), manager: "kube-sim".into() })
    }
}

impl Default for Cluster {
    fn default() -> Self {
        Self::new()
    }
}

/// A running HTTP server of a cluster.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
    /// The CA to trust (HTTPS only).
    ca_pem: Option<String>,
    /// What [`Server::kubeconfig`] authenticates with.
    admin: Credentials,
}

impl Server {
    pub fn url(&self) -> String {
        let scheme = if self.ca_pem.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// A kubeconfig for this server. Without authentication and TLS it
    /// carries no credentials (anonymous requests are allowed everything);
    /// otherwise the administrator's (`kubernetes-admin` in `system:masters`:
    /// a client certificate over HTTPS, a bearer token over HTTP) and the CA.
    pub fn kubeconfig(&self) -> String {
        self.kubeconfig_for(&self.admin)
    }

    /// A kubeconfig for this server that authenticates with `credentials`
    /// (a ServiceAccount token, a static token, a client certificate).
    pub fn kubeconfig_for(&self, credentials: &Credentials) -> String {
        kubeconfig_with(&self.url(), self.ca_pem.as_deref(), credentials)
    }

    /// The CA bundle a client must trust (HTTPS only), PEM.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The credentials of the administrator the kubeconfig carries.
    pub fn admin_credentials(&self) -> &Credentials {
        &self.admin
    }

    /// Stop accepting requests, end open watches, and wait for the server to finish.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// Kubeconfig YAML for a kube-sim server at `url` (no credentials: an open server).
pub fn kubeconfig(url: &str) -> String {
    kubeconfig_with(url, None, &Credentials::None)
}

/// Kubeconfig YAML for a server at `url`, trusting `ca_pem`, as `credentials`.
pub fn kubeconfig_with(url: &str, ca_pem: Option<&str>, credentials: &Credentials) -> String {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let ca = ca_pem.map(|c| format!("    certificate-authority-data: {}\n", b64(c))).unwrap_or_default();
    let user = match credentials {
        Credentials::None => "  user: {}\n".to_string(),
        Credentials::Token(t) => format!("  user:\n    token: {t}\n"),
        Credentials::ClientCertificate(c) => format!(
            "  user:\n    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(&c.cert_pem),
            b64(&c.key_pem)
        ),
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-sim\n  cluster:\n    server: {url}\n{ca}contexts:\n- name: kube-sim\n  context:\n    cluster: kube-sim\n    user: kube-sim\n    namespace: default\ncurrent-context: kube-sim\npreferences: {{}}\nusers:\n- name: kube-sim\n{user}"
    )
}

/// Typed in-process access to a resource.
#[derive(Debug, Clone)]
pub struct Typed<K> {
    api: Arc<ApiServer>,
    res: Arc<ResourceInfo>,
    ns: Option<String>,
    manager: String,
    _k: PhantomData<fn() -> K>,
}

fn to_k<K: DeserializeOwned>(v: Value) -> ApiResult<K> {
    serde_json::from_value(v).map_err(|e| ApiError::internal(format!("decoding a stored object: {e}")))
}

fn to_v<K: Serialize>(k: &K) -> ApiResult<Value> {
    serde_json::to_value(k).map_err(|e| ApiError::bad_request(e.to_string()))
}

impl<K> Typed<K>
where
    K: k8s_openapi::Resource + Serialize + DeserializeOwned,
{
    /// Writes through this handle are recorded under `manager` in managedFields.
    pub fn as_manager(mut self, manager: &str) -> Self {
        self.manager = manager.into();
        self
    }

    fn dynamic(&self) -> Dynamic {
        Dynamic { api: self.api.clone(), res: self.res.clone(), ns: self.ns.clone(), manager: self.manager.clone() }
    }

    pub fn get(&self, name: &str) -> ApiResult<K> {
        to_k(self.dynamic().get(name)?)
    }

    pub fn get_opt(&self, name: &str) -> ApiResult<Option<K>> {
        match self.get(name) {
            Ok(k) => Ok(Some(k)),
            Err(e) if e.code == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn list(&self, label_selector: &str) -> ApiResult<Vec<K>> {
        self.dynamic().list(label_selector, "")?.into_iter().map(to_k).collect()
    }

    pub fn list_fields(&self, label_selector: &str, field_selector: &str) -> ApiResult<Vec<K>> {
        self.dynamic().list(label_selector, field_selector)?.into_iter().map(to_k).collect()
    }

    pub fn create(&self, obj: &K) -> ApiResult<K> {
        to_k(self.dynamic().create(to_v(obj)?)?)
    }

    pub fn replace(&self, obj: &K) -> ApiResult<K> {
        let v = to_v(obj)?;
        let name = crate::meta::name(&v).to_string();
        to_k(self.dynamic().replace(&name, v)?)
    }

    pub fn replace_status(&self, obj: &K) -> ApiResult<K> {
        let v = to_v(obj)?;
        let name = crate::meta::name(&v).to_string();
        to_k(self.dynamic().replace_status(&name, v)?)
    }

    pub fn patch_merge(&self, name: &str, patch: &Value) -> ApiResult<K> {
        to_k(self.dynamic().patch(name, None, PatchType::Merge, patch)?)
    }

    pub fn patch_status(&self, name: &str, patch: &Value) -> ApiResult<K> {
        to_k(self.dynamic().patch(name, Some("status"), PatchType::Merge, patch)?)
    }

    pub fn delete(&self, name: &str, opts: &DeleteOptions) -> ApiResult<Deleted> {
        self.dynamic().delete(name, opts)
    }

    /// Every change from now on (after the current state as ADDED events).
    pub fn watch(&self) -> impl Stream<Item = TypedEvent<K>> + Send + 'static + use<K> {
        self.dynamic().watch().map(|ev| match ev {
            DynamicEvent::Applied(kind, v) => match serde_json::from_value::<K>(v) {
                Ok(k) => TypedEvent::Applied(kind, Box::new(k)),
                Err(e) => TypedEvent::Error(ApiError::internal(e.to_string())),
            },
            DynamicEvent::Bookmark(rv) => TypedEvent::Bookmark(rv),
            DynamicEvent::Error(e) => TypedEvent::Error(e),
        })
    }
}

/// A change seen by an in-process typed watch.
#[derive(Debug)]
pub enum TypedEvent<K> {
    Applied(EventKind, Box<K>),
    Bookmark(u64),
    Error(ApiError),
}

/// Untyped in-process access to a resource.
#[derive(Debug, Clone)]
pub struct Dynamic {
    api: Arc<ApiServer>,
    res: Arc<ResourceInfo>,
    ns: Option<String>,
    manager: String,
}

/// A change seen by an in-process untyped watch.
#[derive(Debug)]
pub enum DynamicEvent {
    Applied(EventKind, Value),
    Bookmark(u64),
    Error(ApiError),
}

impl Dynamic {
    pub fn info(&self) -> &Arc<ResourceInfo> {
        &self.res
    }

    pub fn as_manager(mut self, manager: &str) -> Self {
        self.manager = manager.into();
        self
    }

    fn opts(&self) -> WriteOptions {
        WriteOptions::manager(&self.manager)
    }

    pub fn get(&self, name: &str) -> ApiResult<Value> {
        self.api.get_value(&self.res, self.ns.as_deref(), name)
    }

    pub fn list(&self, label_selector: &str, field_selector: &str) -> ApiResult<Vec<Value>> {
        let page = self.api.list(
            &self.res,
            self.ns.as_deref(),
            &ListOptions {
                label_selector: label_selector.into(),
                field_selector: field_selector.into(),
                ..Default::default()
            },
        )?;
        Ok(page.items.iter().map(|o| self.api.render(&self.res, o)).collect())
    }

    pub fn create(&self, obj: Value) -> ApiResult<Value> {
        let ns = self.ns.clone().or_else(|| crate::meta::namespace(&obj).map(str::to_string));
        Ok(self.api.create(&self.res, ns.as_deref(), with_type(&self.res, obj), &self.opts())?.object)
    }

    pub fn replace(&self, name: &str, obj: Value) -> ApiResult<Value> {
        let ns = self.ns.clone().or_else(|| crate::meta::namespace(&obj).map(str::to_string));
        Ok(self.api.update(&self.res, ns.as_deref(), name, None, with_type(&self.res, obj), &self.opts())?.object)
    }

    pub fn replace_status(&self, name: &str, obj: Value) -> ApiResult<Value> {
        let ns = self.ns.clone().or_else(|| crate::meta::namespace(&obj).map(str::to_string));
        Ok(self
            .api
            .update(&self.res, ns.as_deref(), name, Some("status"), with_type(&self.res, obj), &self.opts())?
            .object)
    }

    pub fn patch(&self, name: &str, subresource: Option<&str>, ty: PatchType, patch: &Value) -> ApiResult<Value> {
        let body = serde_json::to_vec(patch).map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(self.api.patch(&self.res, self.ns.as_deref(), name, subresource, ty, &body, &self.opts())?.object)
    }

    pub fn delete(&self, name: &str, opts: &DeleteOptions) -> ApiResult<Deleted> {
        self.api.delete(&self.res, self.ns.as_deref(), name, opts)
    }

    /// Current state as ADDED events, then every change.
    pub fn watch(&self) -> impl Stream<Item = DynamicEvent> + Send + 'static + use<> {
        self.watch_from(Start::WithInitialState, false)
    }

    /// A watch from a chosen start, optionally with bookmarks.
    pub fn watch_from(
        &self,
        start: Start,
        bookmarks: bool,
    ) -> impl Stream<Item = DynamicEvent> + Send + 'static + use<> {
        let filter = Filter::new(&self.res, self.ns.as_deref(), "", "")
            .unwrap_or_else(|_| unreachable!("empty selectors parse"));
        let req = WatchRequest {
            filter,
            start,
            bookmarks,
            initial_events_end: false,
            timeout: std::time::Duration::from_secs(365 * 24 * 3600),
            internal: false,
        };
        let api = self.api.clone();
        let res = self.res.clone();
        watch::watch(&self.api, self.res.clone(), req).map(move |item| match item {
            WatchItem::Event(kind, obj) => DynamicEvent::Applied(kind, api.render(&res, &obj)),
            WatchItem::Bookmark { rv, .. } => DynamicEvent::Bookmark(rv),
            WatchItem::Error(e) => DynamicEvent::Error(e),
        })
    }
}

fn with_type(res: &ResourceInfo, mut obj: Value) -> Value {
    if let Some(o) = obj.as_object_mut() {
        o.entry("apiVersion").or_insert_with(|| Value::String(res.api_version()));
        o.entry("kind").or_insert_with(|| Value::String(res.kind.clone()));
    }
    obj
}
