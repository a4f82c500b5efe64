//! The REST semantics of the API server — what happens on create, update, patch,
//! delete, list and the subresources — independent of HTTP. The HTTP layer
//! (`crate::http`) and the in-process handles (`crate::Cluster`) both call into
//! this, so a behaviour written against the direct handles sees exactly what a
//! client sees over the wire.
//!
//! Each write runs as one store transaction: defaulting, admission, validation,
//! optimistic-concurrency checks and the write itself happen atomically, which
//! is what etcd's compare-and-swap gives the real server.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use base64::Engine as _;
use parking_lot::RwLock;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, format_time, parse_time};
use crate::convert;
use crate::error::{ApiError, ApiResult, Cause, Subject, success_status};
use crate::faults::Faults;
use crate::kinds;
use crate::meta;
use crate::patch::managed::{self, FieldSet};
use crate::patch::strategic;
use crate::resources::{Conversion, GroupResource, Registry, ResourceInfo, crd_resources};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{Reader, RecordedReads, Snapshot, Store, Stored, Txn, object_key};

/// Tunables of the simulated server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// How often a watch that allows bookmarks gets one (upstream: about a minute).
    pub bookmark_interval: Duration,
    /// Watch duration when the client sets no `timeoutSeconds`.
    pub default_watch_timeout: Duration,
    /// Events kept per resource for watch resumption and consistent reads.
    pub history: usize,
    /// The `gitVersion` /version reports.
    pub version: String,
    /// Run the simulated control plane (scheduler, kubelets, controllers). Off,
    /// the server is a bare API server, as when testing REST semantics alone.
    pub simulate: bool,
    /// Authentication, authorization and TLS (default: open, plain HTTP).
    pub auth: crate::auth::AuthConfig,
    /// Where the simulated kubelets write checkpoint archives: one directory per
    /// node under it (`<dir>/<node>/`, the node's `/var/lib/kubelet/checkpoints`).
    /// `None`: archives are recorded, not written.
    pub checkpoint_dir: Option<std::path::PathBuf>,
    /// Registries (`host:port`) the simulated container runtimes pull from over
    /// plain HTTP, to recognise and restore checkpoint images. Images elsewhere
    /// are never pulled.
    pub registries: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bookmark_interval: Duration::from_secs(60),
            default_watch_timeout: Duration::from_secs(1800),
            history: crate::store::DEFAULT_HISTORY,
            version: "v1.32.13".into(),
            simulate: true,
            auth: Default::default(),
            checkpoint_dir: None,
            registries: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

impl FieldValidation {
    pub fn parse(s: &str) -> ApiResult<Self> {
        match s {
            "" | "Warn" => Ok(FieldValidation::Warn),
            "Ignore" => Ok(FieldValidation::Ignore),
            "Strict" => Ok(FieldValidation::Strict),
            other => Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: \"{other}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }
}

/// Options common to every write.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// The field manager recorded in managedFields (defaults from the user agent).
    pub field_manager: String,
    pub dry_run: bool,
    pub validation: FieldValidation,
    /// Server-side apply: take ownership of conflicting fields.
    pub force: bool,
    /// The object comes from the simulator's own typed code: skip the
    /// unknown-field pruning pass (there are none) on its hot write path.
    pub trusted: bool,
}

impl WriteOptions {
    pub fn manager(m: &str) -> Self {
        WriteOptions { field_manager: m.into(), ..Default::default() }
    }
}

/// The outcome of a write.
#[derive(Debug, Clone)]
pub struct Written {
    pub object: Value,
    pub warnings: Vec<String>,
    /// True when the write created the object (201 instead of 200).
    pub created: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let base = ct.split(';').next().unwrap_or_default().trim();
        match base {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(PatchType::Apply),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Orphan,
    Background,
    Foreground,
}

#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub grace_period: Option<i64>,
    pub propagation: Option<Propagation>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Merge a `DeleteOptions` JSON body into these options (body fields win,
    /// as upstream decodes the body over the query parameters).
    pub fn merge_body(&mut self, body: &Value) -> ApiResult<()> {
        if let Some(g) = body.get("gracePeriodSeconds").filter(|v| !v.is_null()) {
            self.grace_period =
                Some(g.as_i64().ok_or_else(|| ApiError::bad_request("gracePeriodSeconds must be an integer"))?);
        }
        if let Some(p) = body.get("propagationPolicy").and_then(Value::as_str) {
            self.propagation = Some(parse_propagation(p)?);
        }
        if let Some(o) = body.get("orphanDependents").and_then(Value::as_bool) {
            if self.propagation.is_some() {
                return Err(ApiError::invalid(
                    "",
                    "DeleteOptions",
                    "",
                    "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Invalid value: \"\": orphanDependents and deletionPropagation cannot be both set".into(),
                    vec![],
                ));
            }
            self.propagation = Some(if o { Propagation::Orphan } else { Propagation::Foreground });
        }
        if let Some(p) = body.get("preconditions") {
            self.precondition_uid = p.get("uid").and_then(Value::as_str).map(str::to_string);
            self.precondition_rv = p.get("resourceVersion").and_then(Value::as_str).map(str::to_string);
        }
        if let Some(d) = body.get("dryRun").and_then(Value::as_array) {
            self.dry_run = parse_dry_run(d.iter().filter_map(Value::as_str))?;
        }
        Ok(())
    }
}

pub fn parse_propagation(p: &str) -> ApiResult<Propagation> {
    match p {
        "Orphan" => Ok(Propagation::Orphan),
        "Background" => Ok(Propagation::Background),
        "Foreground" => Ok(Propagation::Foreground),
        other => Err(ApiError::bad_request(format!(
            "propagationPolicy: Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
        ))),
    }
}

pub fn parse_dry_run<'a>(values: impl Iterator<Item = &'a str>) -> ApiResult<bool> {
    let mut dry = false;
    for v in values {
        match v {
            "All" => dry = true,
            "" => {}
            other => {
                return Err(ApiError::bad_request(format!(
                    "dryRun: Unsupported value: \"{other}\": supported values: \"All\""
                )));
            }
        }
    }
    Ok(dry)
}

/// The outcome of a delete.
#[derive(Debug, Clone)]
pub struct Deleted {
    /// The object (final state, or its terminating state when `gone` is false).
    pub object: Value,
    /// Whether it left storage now (false while finalizers or grace are pending).
    pub gone: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub label_selector: String,
    pub field_selector: String,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct ListPage {
    pub items: Vec<Arc<Stored>>,
    pub rv: u64,
    pub continue_token: Option<String>,
    pub remaining: Option<u64>,
}

/// Parsed selectors of a list or watch, in the storage's field labels.
#[derive(Debug, Clone)]
pub struct Filter {
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Filter {
    pub fn new(res: &ResourceInfo, namespace: Option<&str>, label: &str, field: &str) -> ApiResult<Self> {
        let labels = LabelSelector::parse(label).map_err(ApiError::bad_request)?;
        let mut fields = FieldSelector::parse(field, |l| res.supports_field(l)).map_err(ApiError::bad_request)?;
        for r in &mut fields.reqs {
            r.0 = convert::field_label_to_storage(res.conversion, &r.0);
        }
        Ok(Filter { namespace: namespace.map(str::to_string), labels, fields })
    }

    pub fn matches(&self, o: &Stored) -> bool {
        if let Some(ns) = &self.namespace
            && o.namespace.as_deref() != Some(ns.as_str())
        {
            return false;
        }
        self.labels.matches_by(|k| o.labels.get(k)) && self.fields.matches(|f| o.field(f))
    }

    fn is_everything(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }
}

/// The API server: storage, registry, clock and the rules between them.
#[derive(Debug)]
pub struct ApiServer {
    pub store: Store,
    pub registry: Registry,
    pub clock: Clock,
    pub faults: Faults,
    /// Requests by client, user, verb and resource (when enabled).
    pub requests: crate::requests::RequestLog,
    /// Who may do what: users, tokens, certificates, RBAC.
    pub auth: crate::auth::Auth,
    pub config: ServerConfig,
    /// Cancelled to end every open watch (forced disconnects, shutdown).
    watch_epoch: RwLock<CancellationToken>,
    /// Cancelled once, when the cluster stops.
    shutdown: CancellationToken,
    next_cluster_ip: AtomicU32,
    /// Address the server reports in discovery (`serverAddressByClientCIDRs`).
    pub advertise: RwLock<String>,
    /// Where `nodes/{name}/proxy/...` requests go (the simulated kubelets).
    node_proxy: RwLock<Option<Arc<dyn NodeProxy>>>,
    /// Where read-only computed resources (metrics.k8s.io) come from.
    computed: RwLock<Option<Arc<dyn ComputedResources>>>,
}

/// Objects computed at read time rather than stored — the metrics API, which a
/// real cluster serves from metrics-server's latest scrape.
pub trait ComputedResources: Send + Sync + std::fmt::Debug {
    /// Every object of `res` now (the caller filters by namespace and selectors).
    fn list(&self, res: &ResourceInfo) -> Vec<Value>;
}

/// The kubelet side of `nodes/{name}/proxy/{path}`: the behaviour layer installs
/// one so that, e.g., the checkpoint endpoint answers as a kubelet would.
pub trait NodeProxy: Send + Sync + std::fmt::Debug {
    /// Handle a proxied request; answers (HTTP status, JSON body).
    fn call(&self, method: &str, node: &str, path: &str, body: &[u8]) -> ApiResult<(u16, Value)>;
}

const CORE_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];
const SIM_MANAGER: &str = "kube-apiserver";

impl ApiServer {
    pub fn new(config: ServerConfig, clock: Clock) -> Arc<Self> {
        let server = Arc::new(ApiServer {
            store: Store::with_history(convert::index_fields, config.history),
            registry: Registry::new(),
            clock,
            faults: Faults::default(),
            requests: Default::default(),
            auth: crate::auth::Auth::new(config.auth.clone()),
            config,
            watch_epoch: RwLock::new(CancellationToken::new()),
            shutdown: CancellationToken::new(),
            next_cluster_ip: AtomicU32::new(10),
            advertise: RwLock::new("127.0.0.1:6443".into()),
            node_proxy: RwLock::new(None),
            computed: RwLock::new(None),
        });
        server.bootstrap();
        server
    }

    /// What a fresh real cluster already has: the core namespaces (each with its
    /// `default` ServiceAccount and `kube-root-ca.crt`), the `kubernetes`
    /// Service, and the two system PriorityClasses.
    fn bootstrap(&self) {
        let opts = WriteOptions::manager(SIM_MANAGER);
        for ns in CORE_NAMESPACES {
            let r = self.create(&self.res("", "namespaces"), None, json!({"metadata": {"name": ns}}), &opts);
            debug_assert!(r.is_ok(), "{r:?}");
        }
        let svc = json!({"metadata": {"name": "kubernetes", "namespace": "default",
            "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}});
        let r = self.create(&self.res("", "services"), Some("default"), svc, &opts);
        debug_assert!(r.is_ok(), "{r:?}");
        for (name, value) in [("system-cluster-critical", 2_000_000_000i64), ("system-node-critical", 2_000_001_000)] {
            let pc = json!({"metadata": {"name": name}, "value": value,
                "description": "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."});
            let r = self.create(&self.res("scheduling.k8s.io", "priorityclasses"), None, pc, &opts);
            debug_assert!(r.is_ok(), "{r:?}");
        }
        crate::auth::bootstrap::create(self);
    }

    /// A built-in resource by group and plural (panics only on a typo in our own code).
    pub fn res(&self, group: &str, plural: &str) -> Arc<ResourceInfo> {
        let version = if group == "metrics.k8s.io" { "v1beta1" } else { "v1" };
        match self.registry.get(group, version, plural) {
            Some(r) => r,
            None => panic!("built-in resource {plural}.{group} is not registered"),
        }
    }

    // ----- rendering -------------------------------------------------------

    /// apiVersion of the stored form of a resource's objects.
    fn storage_api_version(res: &ResourceInfo) -> String {
        match res.conversion {
            Conversion::EventsV1 => "v1".into(),
            Conversion::None => res.api_version(),
        }
    }

    /// A stored object as the resource's clients see it.
    pub fn render(&self, res: &ResourceInfo, o: &Stored) -> Value {
        convert::to_view(res.conversion, o.to_value(&Self::storage_api_version(res), &res.kind))
    }

    /// JSON of a stored object as served (fast path: no re-encoding).
    pub fn render_json(&self, res: &ResourceInfo, o: &Stored) -> Vec<u8> {
        match res.conversion {
            Conversion::None => o.json_with_type(&res.api_version(), &res.kind),
            _ => serde_json::to_vec(&self.render(res, o)).unwrap_or_default(),
        }
    }

    /// Append the JSON of a stored object as a list item (upstream omits
    /// kind/apiVersion) to `out`.
    pub fn write_item(&self, res: &ResourceInfo, o: &Stored, out: &mut Vec<u8>) {
        match res.conversion {
            Conversion::None => o.write_body(out),
            _ => {
                let mut v = self.render(res, o);
                if let Some(m) = v.as_object_mut() {
                    m.remove("kind");
                    m.remove("apiVersion");
                }
                let _ = serde_json::to_writer(out, &v);
            }
        }
    }

    /// A stored object in the protobuf wire format (envelope included).
    pub fn render_protobuf(&self, res: &ResourceInfo, o: &Stored) -> bytes::Bytes {
        match res.conversion {
            Conversion::None => self.stored_protobuf(res, o).0.clone(),
            _ => self.encode_protobuf(res, o).0.into(),
        }
    }

    /// A stored object's protobuf message (a list item: no envelope),
    /// encoded once per stored version for resources served as stored.
    pub fn render_protobuf_item(&self, res: &ResourceInfo, o: &Stored) -> bytes::Bytes {
        match res.conversion {
            Conversion::None => {
                let (env, at) = self.stored_protobuf(res, o);
                env.slice(at.clone())
            }
            _ => {
                let (env, at) = self.encode_protobuf(res, o);
                bytes::Bytes::from(env).slice(at)
            }
        }
    }

    fn stored_protobuf<'a>(&self, res: &ResourceInfo, o: &'a Stored) -> &'a (bytes::Bytes, std::ops::Range<usize>) {
        o.proto.get_or_init(|| {
            let (env, at) = self.encode_protobuf(res, o);
            (bytes::Bytes::from(env), at)
        })
    }

    fn encode_protobuf(&self, res: &ResourceInfo, o: &Stored) -> (Vec<u8>, std::ops::Range<usize>) {
        let v = self.render(res, o);
        let raw = crate::protobuf::encode_raw(&res.api_version(), &res.kind, &v).unwrap_or_default();
        crate::protobuf::envelope_at(&res.api_version(), &res.kind, &raw)
    }

    fn subject<'a>(res: &'a ResourceInfo, name: &'a str) -> Subject<'a> {
        Subject { group: &res.group, resource: &res.plural, name }
    }

    // ----- reads -----------------------------------------------------------

    pub fn get(&self, res: &ResourceInfo, ns: Option<&str>, name: &str) -> ApiResult<Arc<Stored>> {
        let key = object_key(ns, name);
        let found =
            if res.read_only { self.current(res).get(&key).cloned() } else { self.store.get(&res.storage, &key) };
        found.ok_or_else(|| ApiError::not_found(Self::subject(res, name)))
    }

    pub fn get_value(&self, res: &ResourceInfo, ns: Option<&str>, name: &str) -> ApiResult<Value> {
        Ok(self.render(res, &*self.get(res, ns, name)?))
    }

    /// Wait (bounded, like upstream's 3 s) until the store has reached `rv`.
    pub async fn wait_for_rv(&self, rv: u64) -> ApiResult<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        loop {
            let cur = self.store.current_rv();
            if cur >= rv {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ApiError::timeout(format!("Too large resource version: {rv}, current: {cur}"), Some(1)));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A list page. Callers asking for a future resourceVersion should first
    /// `wait_for_rv`.
    pub fn list(&self, res: &ResourceInfo, ns: Option<&str>, o: &ListOptions) -> ApiResult<ListPage> {
        let filter = Filter::new(res, ns, &o.label_selector, &o.field_selector)?;
        let rv_param = o.resource_version.as_deref().filter(|s| !s.is_empty());
        let (snap, start) = match &o.continue_token {
            Some(tok) if !tok.is_empty() => {
                if rv_param.is_some_and(|r| r != "0") {
                    return Err(ApiError::bad_request(
                        "specifying resource version is not allowed when using continue",
                    ));
                }
                let (rv, start) = decode_continue(tok)?;
                let prefix = ns.map(|n| format!("{n}/")).unwrap_or_default();
                let snap = if rv < 0 {
                    self.store.snapshot(&res.storage)
                } else {
                    self.store.snapshot_at(&res.storage, rv as u64).map_err(|_| {
                        ApiError::expired(
                            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                        )
                    })?
                };
                (snap, Some(format!("{prefix}{start}")))
            }
            _ => {
                let snap = match (rv_param, o.resource_version_match.as_deref()) {
                    (Some(r), Some("Exact")) => {
                        let rv = parse_rv(r)?;
                        self.store.snapshot_at(&res.storage, rv)?
                    }
                    (None, Some(m)) if !m.is_empty() => {
                        return Err(ApiError::bad_request(
                            "resourceVersionMatch is forbidden unless resourceVersion is provided",
                        ));
                    }
                    (Some(r), _) => {
                        parse_rv(r)?;
                        self.current(res)
                    }
                    (None, _) => self.current(res),
                };
                (snap, None)
            }
        };
        Ok(page(&snap, &filter, ns, start.as_deref(), o.limit))
    }

    // ----- writes ----------------------------------------------------------

    /// Check and normalise an incoming object for `res` (kind/apiVersion, view
    /// conversion, typed decoding). Returns the storage form and the unknown
    /// fields that decoding dropped.
    fn decode_input_opts(
        &self,
        res: &ResourceInfo,
        obj: Value,
        opts: &WriteOptions,
    ) -> ApiResult<(Value, Vec<String>)> {
        if opts.trusted && res.conversion == Conversion::None && obj.is_object() {
            let mut obj = obj;
            obj["apiVersion"] = json!(res.api_version());
            obj["kind"] = json!(res.kind);
            return Ok((obj, Vec::new()));
        }
        self.decode_input(res, obj)
    }

    fn decode_input(&self, res: &ResourceInfo, mut obj: Value) -> ApiResult<(Value, Vec<String>)> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(format!(
                "the object provided is unrecognized (must be of type {}): couldn't get version/kind; json parse error: expected an object",
                res.kind
            )));
        }
        let expected_av = res.api_version();
        if let Some(av) = obj.get("apiVersion").and_then(Value::as_str)
            && av != expected_av
        {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({expected_av})"
            )));
        }
        if let Some(k) = obj.get("kind").and_then(Value::as_str)
            && k != res.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                res.kind
            )));
        }
        obj["apiVersion"] = json!(expected_av);
        obj["kind"] = json!(res.kind);
        let obj = convert::from_view(res.conversion, obj);
        kinds::decode(res, obj)
    }

    fn unknown_field_outcome(
        &self,
        res: &ResourceInfo,
        unknown: Vec<String>,
        v: FieldValidation,
    ) -> ApiResult<Vec<String>> {
        if unknown.is_empty() || v == FieldValidation::Ignore {
            return Ok(Vec::new());
        }
        let list: Vec<String> = unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect();
        if v == FieldValidation::Strict {
            return Err(ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                res.kind,
                res.api_version(),
                res.kind,
                list.join(", ")
            )));
        }
        Ok(list)
    }

    /// Create an object (`POST`).
    pub fn create(&self, res: &ResourceInfo, ns: Option<&str>, body: Value, opts: &WriteOptions) -> ApiResult<Written> {
        if res.read_only {
            return Err(ApiError::method_not_allowed("create", &res.kind));
        }
        let (mut obj, unknown) = self.decode_input_opts(res, body, opts)?;
        let warnings = self.unknown_field_outcome(res, unknown, opts.validation)?;
        self.place_in_namespace(res, ns, &mut obj)?;
        if meta::name(&obj).is_empty() {
            let generate = meta::str_at(&obj, &["metadata", "generateName"]).unwrap_or_default().to_string();
            if generate.is_empty() {
                return Err(self.invalid_one(
                    res,
                    "",
                    "metadata.name",
                    "Required value: name or generateName is required",
                    "FieldValueRequired",
                ));
            }
            meta::set_meta(&mut obj, "name", json!(format!("{generate}{}", meta::random_suffix(5))));
        }
        let object = self.create_optimistically(res, obj, opts)?;
        self.after_write(res, &object);
        Ok(Written { object, warnings, created: true })
    }

    /// Decide a create outside the store's lock (defaulting, admission,
    /// validation, field ownership), reading what admission needs
    /// (namespace, service account, priority classes) as recorded reads; then
    /// commit it if none of the resources read has been written since, so
    /// that creates, like updates, do their work in parallel. After
    /// `OPTIMISTIC_ATTEMPTS` lost races it decides under the lock.
    fn create_optimistically(&self, res: &ResourceInfo, obj: Value, opts: &WriteOptions) -> ApiResult<Value> {
        for _ in 0..OPTIMISTIC_ATTEMPTS {
            let reads = RecordedReads::new(&self.store);
            let decided = self.decide_create(&reads, res, obj.clone(), opts, None)?;
            let reads = reads.reads();
            let committed = self.store.transact(|txn| {
                if !txn.unchanged(&reads) {
                    return Ok(None);
                }
                self.commit_create(txn, res, decided, opts).map(Some)
            })?;
            if let Some(object) = committed {
                return Ok(object);
            }
        }
        self.store.transact(|txn| self.create_in(txn, res, obj, opts, None))
    }

    fn place_in_namespace(&self, res: &ResourceInfo, ns: Option<&str>, obj: &mut Value) -> ApiResult<()> {
        if res.namespaced {
            let url_ns = ns.ok_or_else(|| ApiError::bad_request("a namespace is required for namespaced resources"))?;
            match meta::namespace(obj) {
                Some(n) if n != url_ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => meta::set_meta(obj, "namespace", json!(url_ns)),
            }
        } else {
            meta::remove_meta(obj, "namespace");
        }
        Ok(())
    }

    fn invalid_one(&self, res: &ResourceInfo, name: &str, field: &str, detail: &str, reason: &str) -> ApiError {
        ApiError::invalid(
            &res.group,
            &res.kind,
            name,
            format!("{} \"{name}\" is invalid: {field}: {detail}", res.kind),
            vec![Cause { reason: reason.into(), message: detail.into(), field: Some(field.into()) }],
        )
    }

    /// The body of create, inside a transaction. `apply_set` is the field set of
    /// a server-side apply that creates the object.
    fn create_in(
        &self,
        txn: &mut Txn<'_>,
        res: &ResourceInfo,
        obj: Value,
        opts: &WriteOptions,
        apply_set: Option<FieldSet>,
    ) -> ApiResult<Value> {
        let decided = self.decide_create(&*txn, res, obj, opts, apply_set)?;
        self.commit_create(txn, res, decided, opts)
    }

    /// The object a create stores: namespace admission, defaulting, field
    /// ownership, PrepareForCreate, mutating admission and validation, with
    /// the server-owned metadata set (all but the resourceVersion).
    fn decide_create(
        &self,
        reader: &impl Reader,
        res: &ResourceInfo,
        mut obj: Value,
        opts: &WriteOptions,
        apply_set: Option<FieldSet>,
    ) -> ApiResult<Value> {
        let name = meta::name(&obj).to_string();
        let ns = meta::namespace(&obj).map(str::to_string);
        if res.namespaced {
            self.admit_namespace(reader, res, ns.as_deref().unwrap_or_default(), &name)?;
        }
        kinds::default(res, &mut obj)?;
        let now = self.clock.now_rfc3339();
        // Ownership is recorded from the decoded (defaulted) object, before the
        // strategy's PrepareForCreate and admission plugins mutate it, as
        // upstream does (a namespace's `kubernetes` finalizer is nobody's).
        let entry = match apply_set {
            Some(set) => managed_entry(opts, res, "Apply", None, &set, &now),
            None => {
                let owned = managed::compare(&res.kind, &zero_of(&res.kind), &tracked_for(res, None, &obj)).added;
                managed_entry(opts, res, "Update", None, &owned, &now)
            }
        };
        // The uid is assigned before PrepareForCreate (a Job's selector uses it).
        let uid = uuid::Uuid::new_v4().to_string();
        meta::meta_mut(&mut obj).insert("uid".into(), json!(uid));
        kinds::prepare_create(res, &mut obj, self.clock.now())?;
        self.admit_create(reader, res, &mut obj)?;
        self.validate(res, &obj, None)?;
        let m = meta::meta_mut(&mut obj);
        m.insert("uid".into(), json!(uid));
        m.insert("creationTimestamp".into(), json!(now));
        m.remove("deletionTimestamp");
        m.remove("deletionGracePeriodSeconds");
        m.remove("resourceVersion");
        m.remove("selfLink");
        if res.has_generation {
            m.insert("generation".into(), json!(1));
        } else {
            m.remove("generation");
        }
        m.insert("managedFields".into(), json!([entry]));
        // A manager that set no field is not recorded (a bare ServiceAccount).
        let owns_nothing = entry.get("fieldsV1").and_then(Value::as_object).is_some_and(|f| f.is_empty());
        if opts.field_manager.is_empty() || owns_nothing {
            m.remove("managedFields");
        }
        Ok(obj)
    }

    /// Store a decided create, unless its name is taken (as the storage layer
    /// answers, after admission and validation) or it is a dry run.
    fn commit_create(
        &self,
        txn: &mut Txn<'_>,
        res: &ResourceInfo,
        obj: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Value> {
        let key = object_key(meta::namespace(&obj), meta::name(&obj));
        if txn.get(&res.storage, &key).is_some() {
            return Err(ApiError::already_exists(Self::subject(res, meta::name(&obj))));
        }
        if opts.dry_run {
            return Ok(convert::to_view(res.conversion, obj));
        }
        let (stored, written) = txn.put_value(&res.storage, obj)?;
        self.create_companions(txn, res, &stored)?;
        Ok(convert::to_view(res.conversion, written))
    }

    /// Objects a real cluster's controllers create right after another one
    /// (made synchronously here so clients never race them).
    fn create_companions(&self, txn: &mut Txn<'_>, res: &ResourceInfo, created: &Stored) -> ApiResult<()> {
        if res.group.is_empty() && res.plural == "namespaces" {
            let ns = created.name.as_str();
            let now = self.clock.now_rfc3339();
            for (plural, obj) in [
                ("serviceaccounts", json!({"metadata": {"name": "default", "namespace": ns}})),
                (
                    "configmaps",
                    json!({"metadata": {"name": "kube-root-ca.crt", "namespace": ns,
                        "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
                        "data": {"ca.crt": self.auth.ca_pem().unwrap_or_else(|| "-----BEGIN CERTIFICATE-----\nkube-sim has no TLS; this bundle is a placeholder\n-----END CERTIFICATE-----\n".into())}}),
                ),
            ] {
                let r = self.res("", plural);
                let mut o = obj;
                o["apiVersion"] = json!("v1");
                o["kind"] = json!(r.kind);
                kinds::default(&r, &mut o)?;
                let m = meta::meta_mut(&mut o);
                m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
                m.insert("creationTimestamp".into(), json!(now));
                txn.put(&r.storage, o)?;
            }
        }
        Ok(())
    }

    /// NamespaceLifecycle admission: no content in missing or terminating namespaces.
    fn admit_namespace(&self, txn: &impl Reader, res: &ResourceInfo, ns: &str, name: &str) -> ApiResult<()> {
        let nsr = self.res("", "namespaces");
        match txn.get(&nsr.storage, ns) {
            None => Err(ApiError::not_found(Subject { group: "", resource: "namespaces", name: ns })),
            Some(n) if n.field("status.phase").as_deref() == Some("Terminating") => Err(ApiError::forbidden(
                Self::subject(res, name),
                format!("unable to create new content in namespace {ns} because it is being terminated"),
            )),
            Some(_) => Ok(()),
        }
    }

    /// Mutating admission on create (service account, tolerations, priority,
    /// cluster IPs, CRD status).
    fn admit_create(&self, txn: &impl Reader, res: &ResourceInfo, obj: &mut Value) -> ApiResult<()> {
        match (res.storage.group.as_str(), res.storage.resource.as_str()) {
            ("", "pods") => {
                let name = meta::name(obj).to_string();
                let ns = meta::namespace(obj).unwrap_or_default().to_string();
                let sa = meta::str_at(obj, &["spec", "serviceAccountName"]).unwrap_or("default").to_string();
                let sar = self.res("", "serviceaccounts");
                let Some(sa_obj) = txn.get(&sar.storage, &object_key(Some(&ns), &sa)) else {
                    return Err(ApiError::forbidden(
                        Self::subject(res, &name),
                        format!("error looking up service account {ns}/{sa}: serviceaccount \"{sa}\" not found"),
                    ));
                };
                let sa_obj = sa_obj.to_value("v1", "ServiceAccount");
                let pcr = self.res("scheduling.k8s.io", "priorityclasses");
                let class = match meta::str_at(obj, &["spec", "priorityClassName"]).filter(|s| !s.is_empty()) {
                    Some(pc) => {
                        let stored = txn.get(&pcr.storage, pc).ok_or_else(|| {
                            ApiError::forbidden(
                                Self::subject(res, &name),
                                format!("no PriorityClass with name {pc} was found"),
                            )
                        })?;
                        Some(stored.to_value("scheduling.k8s.io/v1", "PriorityClass"))
                    }
                    None => txn
                        .snapshot(&pcr.storage)
                        .iter_from(None)
                        .map(|s| s.to_value("scheduling.k8s.io/v1", "PriorityClass"))
                        .find(|pc| pc.get("globalDefault").and_then(Value::as_bool) == Some(true)),
                };
                kinds::admit_pod(obj, &meta::random_suffix(5), class.as_ref(), Some(&sa_obj))
                    .map_err(|e| ApiError::forbidden(Self::subject(res, &name), e))
            }
            ("", "services") => {
                let ty = meta::str_at(obj, &["spec", "type"]).unwrap_or("ClusterIP");
                let ip = meta::str_at(obj, &["spec", "clusterIP"]).unwrap_or_default();
                if ty != "ExternalName" && ip.is_empty() {
                    let n = self.next_cluster_ip.fetch_add(1, Ordering::Relaxed);
                    let ip = format!("10.96.{}.{}", (n >> 8) & 0xff, n & 0xff);
                    obj["spec"]["clusterIP"] = json!(ip);
                    obj["spec"]["clusterIPs"] = json!([ip]);
                } else if !ip.is_empty() && obj["spec"].get("clusterIPs").is_none() {
                    obj["spec"]["clusterIPs"] = json!([ip]);
                }
                Ok(())
            }
            ("apiextensions.k8s.io", "customresourcedefinitions") => {
                let infos = crd_resources(obj)
                    .map_err(|e| self.invalid_one(res, meta::name(obj), "spec", &e, "FieldValueInvalid"))?;
                let expected = format!(
                    "{}.{}",
                    meta::str_at(obj, &["spec", "names", "plural"]).unwrap_or_default(),
                    meta::str_at(obj, &["spec", "group"]).unwrap_or_default()
                );
                if meta::name(obj) != expected {
                    let name = meta::name(obj).to_string();
                    return Err(self.invalid_one(
                        res,
                        &name,
                        "metadata.name",
                        &format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
                        "FieldValueInvalid",
                    ));
                }
                if infos.is_empty() {
                    return Err(self.invalid_one(
                        res,
                        &expected,
                        "spec.versions",
                        "Invalid value: no served version",
                        "FieldValueInvalid",
                    ));
                }
                let now = self.clock.now_rfc3339();
                let storage: Vec<Value> = obj["spec"]["versions"]
                    .as_array()
                    .map(|vs| vs.iter().filter(|v| v["storage"] == json!(true)).map(|v| v["name"].clone()).collect())
                    .unwrap_or_default();
                obj["status"] = json!({
                    "acceptedNames": obj["spec"]["names"].clone(),
                    "storedVersions": storage,
                    "conditions": [
                        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
                        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
                    ],
                });
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn validate(&self, res: &ResourceInfo, obj: &Value, old: Option<&Value>) -> ApiResult<()> {
        let errs = match old {
            None => kinds::validate(res, obj),
            Some(old) => kinds::validate_update(res, old, obj),
        };
        if errs.is_empty() {
            return Ok(());
        }
        let name = meta::name(obj);
        Err(ApiError::invalid(
            &res.group,
            &res.kind,
            name,
            crate::validation::invalid_message(&res.kind, name, &errs),
            errs.iter()
                .map(|e| Cause { reason: e.reason().into(), message: e.message(), field: Some(e.field.clone()) })
                .collect(),
        ))
    }

    /// Work that follows a committed write outside the transaction (registry
    /// changes for CRDs).
    fn after_write(&self, res: &ResourceInfo, obj: &Value) {
        if res.group == "apiextensions.k8s.io"
            && res.plural == "customresourcedefinitions"
            && let Ok(infos) = crd_resources(obj)
        {
            self.registry.register_crd(meta::name(obj), infos);
        }
    }

    /// Replace an object (`PUT`), on the main resource or its `status`.
    pub fn update(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        subresource: Option<&str>,
        body: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Written> {
        self.update_as(res, ns, name, subresource, body, opts, false)
    }

    /// A write of the `status` subresource that sets only the status fields
    /// the body has (a `null` removes one) and keeps the others as stored: how
    /// the kubelet writes the fields it owns (upstream patches them), so the
    /// control plane needs no copy of everyone else's to write its own. Not
    /// served over HTTP; the body is taken as written (a partial status must
    /// not be defaulted as if it were whole).
    pub fn merge_status(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        body: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Written> {
        let opts = WriteOptions { trusted: true, ..opts.clone() };
        self.update_as(res, ns, name, Some("status"), body, &opts, true)
    }

    #[allow(clippy::too_many_arguments)]
    fn update_as(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        subresource: Option<&str>,
        body: Value,
        opts: &WriteOptions,
        merge_status: bool,
    ) -> ApiResult<Written> {
        if res.read_only {
            return Err(ApiError::method_not_allowed("update", &res.kind));
        }
        let (mut obj, unknown) = self.decode_input_opts(res, body, opts)?;
        let warnings = self.unknown_field_outcome(res, unknown, opts.validation)?;
        let body_name = meta::name(&obj);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        meta::set_meta(&mut obj, "name", json!(name));
        self.place_in_namespace(res, ns, &mut obj)?;
        if subresource == Some("status") {
            // Only status and the ownership records are read from the body.
            keep_status_write_fields(&mut obj);
        }
        let key = object_key(ns, name);
        let want_rv = meta::resource_version(&obj).to_string();
        // Parsing, defaulting, validation and field ownership, outside the lock.
        let not_found = || ApiError::not_found(Self::subject(res, name));
        let decide = |cur: &Stored| {
            if !want_rv.is_empty() && want_rv != cur.rv.to_string() {
                return Err(ApiError::conflict(Self::subject(res, name)));
            }
            let old = cur.to_value(&Self::storage_api_version(res), &res.kind);
            let mut new = obj.clone();
            if merge_status {
                merge_stored_status(&old, &mut new);
            }
            self.updated(res, subresource, old, new, opts, Ownership::Update)
        };
        let object = self
            .write_optimistically(res, &key, not_found, decide, |txn, decided| self.commit_update(txn, res, decided))?;
        self.after_write(res, &object);
        Ok(Written { object, warnings, created: false })
    }

    /// The body of every update-like write, inside a transaction: subresource
    /// rules, defaulting, validation, generation, ownership, no-op detection and
    /// finalization.
    #[allow(clippy::too_many_arguments)]
    fn update_in(
        &self,
        txn: &mut Txn<'_>,
        res: &ResourceInfo,
        subresource: Option<&str>,
        old: Value,
        new: Value,
        opts: &WriteOptions,
        ownership: Ownership,
    ) -> ApiResult<Value> {
        let decided = self.updated(res, subresource, old, new, opts, ownership)?;
        self.commit_update(txn, res, decided)
    }

    /// Decide a write of the object at `key` outside the store's lock, then
    /// commit it if the object is still the version the decision read, as the
    /// real API server's guaranteed update does against etcd: writers to
    /// different objects do their work in parallel. After
    /// `OPTIMISTIC_ATTEMPTS` lost races (a hot object) it decides under the
    /// lock instead of racing again.
    fn write_optimistically<D, T>(
        &self,
        res: &ResourceInfo,
        key: &str,
        not_found: impl Fn() -> ApiError,
        decide: impl Fn(&Stored) -> ApiResult<D>,
        commit: impl Fn(&mut Txn<'_>, D) -> ApiResult<T>,
    ) -> ApiResult<T> {
        for _ in 0..OPTIMISTIC_ATTEMPTS {
            let cur = self.store.get(&res.storage, key).ok_or_else(&not_found)?;
            let decided = decide(&cur)?;
            let committed = self.store.transact(|txn| {
                if txn.get(&res.storage, key).map(|now| now.rv) != Some(cur.rv) {
                    return Ok(None);
                }
                commit(txn, decided).map(Some)
            })?;
            if let Some(out) = committed {
                return Ok(out);
            }
        }
        self.store.transact(|txn| {
            let cur = txn.get(&res.storage, key).ok_or_else(&not_found)?;
            let decided = decide(&cur)?;
            commit(txn, decided)
        })
    }

    /// Commit what [`ApiServer::updated`] decided.
    fn commit_update(&self, txn: &mut Txn<'_>, res: &ResourceInfo, decided: Updated) -> ApiResult<Value> {
        match decided {
            Updated::Unchanged { key, name } => {
                let cur = txn.get(&res.storage, &key).ok_or_else(|| ApiError::not_found(Self::subject(res, &name)))?;
                Ok(self.render(res, &cur))
            }
            Updated::DryRun(view) => Ok(view),
            Updated::Finalized { key, object } => {
                let stored = txn.put(&res.storage, object)?;
                drop(stored);
                let gone = txn.remove(&res.storage, &key)?.ok_or_else(|| ApiError::internal("object vanished"))?;
                Ok(self.render(res, &gone))
            }
            Updated::Put(object) => {
                let (_, written) = txn.put_value(&res.storage, object)?;
                Ok(convert::to_view(res.conversion, written))
            }
        }
    }

    /// Decide an update without touching the store: subresource rules,
    /// defaulting, validation, generation, ownership, no-op detection and
    /// finalization.
    fn updated(
        &self,
        res: &ResourceInfo,
        subresource: Option<&str>,
        old: Value,
        mut new: Value,
        opts: &WriteOptions,
        ownership: Ownership,
    ) -> ApiResult<Updated> {
        let name = meta::name(&old).to_string();
        let new_uid = meta::uid(&new);
        if !new_uid.is_empty() && new_uid != meta::uid(&old) {
            return Err(ApiError::conflict_msg(
                Self::subject(res, &name),
                format!("Precondition failed: UID in precondition: {new_uid}, UID in object meta: {}", meta::uid(&old)),
            ));
        }
        match subresource {
            Some("status") => return self.status_updated(res, old, new, opts, ownership),
            Some(other) => {
                return Err(ApiError::no_route().with_message(format!("subresource {other} is not updatable")));
            }
            None => {
                if res.has_status {
                    match old.get("status") {
                        Some(s) => new["status"] = s.clone(),
                        None => {
                            if let Some(o) = new.as_object_mut() {
                                o.remove("status");
                            }
                        }
                    }
                }
                // Finalizers may not be added to an object being deleted.
                if meta::is_deleting(&old) {
                    let before = meta::finalizers(&old);
                    if let Some(f) = meta::finalizers(&new).into_iter().find(|f| !before.contains(f)) {
                        return Err(self.invalid_one(
                            res,
                            &name,
                            "metadata.finalizers",
                            &format!("Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{\"{f}\"}}"),
                            "FieldValueForbidden",
                        ));
                    }
                }
            }
        }
        // Fields the server owns.
        {
            let om = old.get("metadata").and_then(Value::as_object);
            let m = meta::meta_mut(&mut new);
            for k in [
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "managedFields",
            ] {
                match om.and_then(|om| om.get(k)) {
                    Some(v) => m.insert(k.into(), v.clone()),
                    None => m.remove(k),
                };
            }
            m.remove("selfLink");
        }
        kinds::default(res, &mut new)?;
        self.validate(res, &new, Some(&old))?;
        if res.has_generation && meta::spec_part(&old) != meta::spec_part(&new) {
            let g = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
            meta::set_meta(&mut new, "generation", json!(g + 1));
        }
        let now = self.clock.now_rfc3339();
        update_managed_fields(&mut new, &old, res, subresource, opts, ownership, &now);
        if meta::same_content(&old, &new) {
            return Ok(Updated::Unchanged { key: object_key(meta::namespace(&old), &name), name });
        }
        self.updated_to(res, name, new, opts)
    }

    /// A write of the `status` subresource: the stored object with only its
    /// status replaced (ResetObjectMetaForStatus; the stored spec was defaulted
    /// and validated when written). The stored object is moved, not copied:
    /// at scale this is most writes, and a pod is hundreds of JSON nodes.
    fn status_updated(
        &self,
        res: &ResourceInfo,
        old: Value,
        mut new: Value,
        opts: &WriteOptions,
        ownership: Ownership,
    ) -> ApiResult<Updated> {
        let name = meta::name(&old).to_string();
        let status = new.as_object_mut().and_then(|o| o.remove("status"));
        let mut next = old;
        let o = next.as_object_mut().ok_or_else(|| ApiError::internal("stored object is not a JSON object"))?;
        let before = match status {
            Some(s) => o.insert("status".into(), s),
            None => o.remove("status"),
        };
        // Nothing else differs, ownership records aside (as `same_content`).
        if next.get("status") == before.as_ref() {
            return Ok(Updated::Unchanged { key: object_key(meta::namespace(&next), &name), name });
        }
        let now = self.clock.now_rfc3339();
        let diff = || managed::compare_field(&res.kind, "status", before.as_ref(), next.get("status"));
        if let Some(change) = ownership_change(opts, ownership, diff) {
            // The stored ownership records are `next`'s, untouched so far;
            // `record_ownership` writes them back, so they are moved, not copied.
            let entries = take_managed_entries(&mut next);
            record_ownership(&mut next, entries, res, Some("status"), opts, change, &now);
        }
        self.updated_to(res, name, next, opts)
    }

    /// How a decided update ends: a dry run's view, the object removed (its
    /// last finalizer gone), or stored.
    fn updated_to(&self, res: &ResourceInfo, name: String, new: Value, opts: &WriteOptions) -> ApiResult<Updated> {
        if opts.dry_run {
            return Ok(Updated::DryRun(convert::to_view(res.conversion, new)));
        }
        if meta::is_deleting(&new)
            && meta::finalizers(&new).is_empty()
            && pending_grace(&new) == 0
            && !has_spec_finalizers(res, &new)
        {
            return Ok(Updated::Finalized { key: object_key(meta::namespace(&new), &name), object: new });
        }
        Ok(Updated::Put(new))
    }

    /// Patch an object (`PATCH`) with any of the four patch types.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        subresource: Option<&str>,
        ty: PatchType,
        body: &[u8],
        opts: &WriteOptions,
    ) -> ApiResult<Written> {
        if res.read_only {
            return Err(ApiError::method_not_allowed("patch", &res.kind));
        }
        if ty == PatchType::Strategic && res.custom {
            return Err(ApiError::unsupported_media_type(""));
        }
        if ty == PatchType::Apply {
            return self.apply(res, ns, name, subresource, body, opts);
        }
        let patch: Value =
            serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
        let json_patch = match ty {
            PatchType::Json => Some(
                serde_json::from_value::<json_patch::Patch>(patch.clone())
                    .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?,
            ),
            _ => None,
        };
        if ty != PatchType::Json && !patch.is_object() {
            return Err(ApiError::bad_request("error decoding patch: the patch must be a JSON object"));
        }
        let mut warnings = Vec::new();
        let object = self.store.transact(|txn| {
            let cur = txn
                .get(&res.storage, &object_key(ns, name))
                .ok_or_else(|| ApiError::not_found(Self::subject(res, name)))?;
            let old = cur.to_value(&Self::storage_api_version(res), &res.kind);
            let view = convert::to_view(res.conversion, old.clone());
            let patched = match ty {
                PatchType::Json => {
                    let mut doc = view.clone();
                    if let Some(p) = &json_patch {
                        json_patch::patch(&mut doc, p).map_err(|e| unprocessable(e.to_string()))?;
                    }
                    doc
                }
                PatchType::Merge => {
                    let mut doc = view.clone();
                    json_patch::merge(&mut doc, &patch);
                    doc
                }
                PatchType::Strategic => {
                    strategic::strategic_merge(&res.kind, &view, &patch).map_err(|e| unprocessable(e.to_string()))?
                }
                PatchType::Apply => unreachable!("handled above"),
            };
            if meta::name(&patched) != name {
                return Err(ApiError::bad_request(
                    "metadata.name: Invalid value: the name of a patched object cannot change",
                ));
            }
            let want_rv = meta::resource_version(&patched);
            if !want_rv.is_empty() && want_rv != cur.rv.to_string() {
                return Err(ApiError::conflict(Self::subject(res, name)));
            }
            let (new, unknown) = self.decode_input(res, patched)?;
            warnings = self.unknown_field_outcome(res, unknown, opts.validation)?;
            self.update_in(txn, res, subresource, old, new, opts, Ownership::Update)
        })?;
        self.after_write(res, &object);
        Ok(Written { object, warnings, created: false })
    }

    /// Server-side apply: create the object, or merge the applied configuration
    /// into it with field ownership.
    fn apply(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        subresource: Option<&str>,
        body: &[u8],
        opts: &WriteOptions,
    ) -> ApiResult<Written> {
        if opts.field_manager.is_empty() {
            return Err(ApiError::bad_request("PATCH, fieldManager: Required value: is required for apply patch"));
        }
        let text = std::str::from_utf8(body).map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
        let config: Value =
            serde_yaml_ng::from_str(text).map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
        if !config.is_object() {
            return Err(ApiError::bad_request("error decoding YAML: the applied configuration must be an object"));
        }
        for (field, want) in [("apiVersion", res.api_version()), ("kind", res.kind.clone())] {
            match config.get(field).and_then(Value::as_str) {
                None => {
                    return Err(ApiError::bad_request(format!("{field} must be set in an applied configuration")));
                }
                Some(v) if v != want => {
                    return Err(ApiError::bad_request(format!(
                        "the {field} of the applied configuration ({v}) does not match the request ({want})"
                    )));
                }
                Some(_) => {}
            }
        }
        let cfg_name = meta::name(&config);
        if cfg_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({cfg_name}) does not match the name on the URL ({name})"
            )));
        }
        let (mut config, unknown) = self.decode_input(res, config)?;
        let warnings = self.unknown_field_outcome(res, unknown, opts.validation)?;
        self.place_in_namespace(res, ns, &mut config)?;
        let set = managed::fields_of(&res.kind, &tracked_for(res, subresource, &config));
        let mut created = false;
        let object = self.store.transact(|txn| {
            let Some(cur) = txn.get(&res.storage, &object_key(ns, name)) else {
                if subresource.is_some() {
                    return Err(ApiError::not_found(Self::subject(res, name)));
                }
                created = true;
                return self.create_in(txn, res, config.clone(), opts, Some(set.clone()));
            };
            let old = cur.to_value(&Self::storage_api_version(res), &res.kind);
            let mut entries = managed_entries(&old);
            let mine = |e: &ManagedEntry| {
                e.manager == opts.field_manager && e.operation == "Apply" && e.subresource.as_deref() == subresource
            };
            let mut prev = FieldSet::default();
            let mut others: Vec<(String, FieldSet)> = Vec::new();
            for e in entries.iter_mut() {
                if mine(e) {
                    prev.extend(e.fields());
                } else {
                    others.push((e.manager.clone(), e.fields().clone()));
                }
            }
            if !opts.force {
                let conflicts = managed::conflicts(&res.kind, &tracked(&old), &tracked(&config), &others);
                if !conflicts.is_empty() {
                    return Err(apply_conflict(res, name, &conflicts));
                }
            }
            let others_owned = others.iter().fold(FieldSet::default(), |a, (_, s)| a.union(s));
            let mut merged = managed::apply(&res.kind, &old, &config, &prev, &others_owned).map_err(unprocessable)?;
            if let Some(m) = merged.get_mut("metadata").and_then(Value::as_object_mut) {
                m.insert("resourceVersion".into(), json!(cur.rv.to_string()));
            }
            self.update_in(txn, res, subresource, old, merged, opts, Ownership::Apply(set.clone()))
        })?;
        self.after_write(res, &object);
        Ok(Written { object, warnings, created })
    }

    /// Delete an object (`DELETE`), honouring grace periods, finalizers,
    /// preconditions and propagation.
    pub fn delete(&self, res: &ResourceInfo, ns: Option<&str>, name: &str, opts: &DeleteOptions) -> ApiResult<Deleted> {
        if res.read_only {
            return Err(ApiError::method_not_allowed("delete", &res.kind));
        }
        if res.group.is_empty()
            && res.plural == "namespaces"
            && ["default", "kube-system", "kube-public"].contains(&name)
        {
            return Err(ApiError::forbidden(Self::subject(res, name), "this namespace may not be deleted"));
        }
        let out = self.store.transact(|txn| self.delete_in(txn, res, ns, name, opts))?;
        if out.gone && res.group == "apiextensions.k8s.io" && res.plural == "customresourcedefinitions" {
            self.registry.unregister_crd(name);
        }
        Ok(out)
    }

    fn delete_in(
        &self,
        txn: &mut Txn<'_>,
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> ApiResult<Deleted> {
        let key = object_key(ns, name);
        let cur = txn.get(&res.storage, &key).ok_or_else(|| ApiError::not_found(Self::subject(res, name)))?;
        let storage_av = Self::storage_api_version(res);
        let mut obj = cur.to_value(&storage_av, &res.kind);
        if let Some(uid) = opts.precondition_uid.as_deref().filter(|u| !u.is_empty())
            && uid != cur.uid
        {
            return Err(ApiError::conflict_msg(
                Self::subject(res, name),
                format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {}", cur.uid),
            ));
        }
        if let Some(rv) = opts.precondition_rv.as_deref().filter(|r| !r.is_empty())
            && rv != cur.rv.to_string()
        {
            return Err(ApiError::conflict_msg(
                Self::subject(res, name),
                format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    cur.rv
                ),
            ));
        }
        let grace = self.grace_period(res, &obj, opts);
        // Propagation finalizers, which the garbage collector acts on.
        let mut finalizers = meta::finalizers(&obj);
        let mut changed = false;
        match opts.propagation {
            Some(Propagation::Orphan) => {
                finalizers.retain(|f| f != "foregroundDeletion");
                if !finalizers.iter().any(|f| f == "orphan") {
                    finalizers.push("orphan".into());
                }
                changed = true;
            }
            Some(Propagation::Foreground) => {
                finalizers.retain(|f| f != "orphan");
                if !finalizers.iter().any(|f| f == "foregroundDeletion") {
                    finalizers.push("foregroundDeletion".into());
                }
                changed = true;
            }
            _ => {}
        }
        if changed {
            meta::set_meta(&mut obj, "finalizers", json!(finalizers));
        }
        let spec_finalizers = has_spec_finalizers(res, &obj);
        if finalizers.is_empty() && grace == 0 && !spec_finalizers {
            if opts.dry_run {
                return Ok(Deleted { object: convert::to_view(res.conversion, obj), gone: true });
            }
            let gone = txn.remove(&res.storage, &key)?.ok_or_else(|| ApiError::internal("object vanished"))?;
            self.delete_dependents_in(txn, res, &gone)?;
            return Ok(Deleted { object: self.render(res, &gone), gone: true });
        }
        // Pending: mark for deletion (or shorten an earlier grace period).
        let now = self.clock.now();
        let deadline = now.checked_add(jiff::SignedDuration::from_secs(grace)).unwrap_or(now);
        let already = meta::is_deleting(&obj);
        let shorter = pending_grace(&obj) > grace;
        if !already || shorter {
            meta::set_meta(&mut obj, "deletionTimestamp", json!(format_time(deadline)));
            meta::set_meta(&mut obj, "deletionGracePeriodSeconds", json!(grace));
        }
        if res.group.is_empty() && res.plural == "namespaces" {
            obj["status"]["phase"] = json!("Terminating");
        }
        if opts.dry_run || (already && !shorter && !changed) {
            return Ok(Deleted { object: convert::to_view(res.conversion, obj), gone: false });
        }
        let (_, written) = txn.put_value(&res.storage, obj)?;
        Ok(Deleted { object: convert::to_view(res.conversion, written), gone: false })
    }

    /// Objects whose existence depends on another's inside the server itself (a
    /// CRD's custom resources), removed with it.
    fn delete_dependents_in(&self, txn: &mut Txn<'_>, res: &ResourceInfo, gone: &Stored) -> ApiResult<()> {
        if res.group == "apiextensions.k8s.io" && res.plural == "customresourcedefinitions" {
            let crd = gone.to_value("apiextensions.k8s.io/v1", "CustomResourceDefinition");
            let group = meta::str_at(&crd, &["spec", "group"]).unwrap_or_default();
            let plural = meta::str_at(&crd, &["spec", "names", "plural"]).unwrap_or_default();
            let gr = GroupResource::new(group, plural);
            let keys: Vec<Arc<str>> = txn.snapshot(&gr).iter_from(None).map(|o| o.key.clone()).collect();
            for k in keys {
                txn.remove(&gr, &k)?;
            }
        }
        Ok(())
    }

    /// The grace period a delete gets: pods that are scheduled and not finished
    /// terminate gracefully; everything else goes at once.
    fn grace_period(&self, res: &ResourceInfo, obj: &Value, opts: &DeleteOptions) -> i64 {
        if !(res.storage.group.is_empty() && res.storage.resource == "pods") {
            return 0;
        }
        let unscheduled = meta::str_at(obj, &["spec", "nodeName"]).unwrap_or_default().is_empty();
        let finished = matches!(meta::str_at(obj, &["status", "phase"]), Some("Succeeded" | "Failed"));
        if unscheduled || finished {
            return 0;
        }
        let g = opts
            .grace_period
            .or_else(|| obj.pointer("/spec/terminationGracePeriodSeconds").and_then(Value::as_i64))
            .unwrap_or(30);
        g.max(0)
    }

    /// `DELETE` on a collection: deletes every matching object, returns them.
    pub fn delete_collection(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        list: &ListOptions,
        opts: &DeleteOptions,
    ) -> ApiResult<Vec<Value>> {
        if !res.allows("deletecollection") {
            return Err(ApiError::method_not_allowed("deletecollection", &res.kind));
        }
        let page = self.list(res, ns, &ListOptions { limit: None, continue_token: None, ..list.clone() })?;
        let mut out = Vec::new();
        for item in page.items {
            match self.delete(res, item.namespace.as_deref(), &item.name, opts) {
                Ok(d) => out.push(d.object),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    // ----- subresources ----------------------------------------------------

    /// `GET …/scale`: the autoscaling/v1 Scale view of a workload.
    pub fn get_scale(&self, res: &ResourceInfo, ns: Option<&str>, name: &str) -> ApiResult<Value> {
        let obj = self.get_value(res, ns, name)?;
        Ok(scale_of(&obj))
    }

    /// `PUT`/`PATCH …/scale`: change `spec.replicas` through a Scale.
    pub fn update_scale(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        change: ScaleChange<'_>,
        opts: &WriteOptions,
    ) -> ApiResult<Value> {
        if !res.has_subresource("scale") {
            return Err(ApiError::no_route());
        }
        let object = self.store.transact(|txn| {
            let cur = txn
                .get(&res.storage, &object_key(ns, name))
                .ok_or_else(|| ApiError::not_found(Self::subject(res, name)))?;
            let old = cur.to_value(&res.api_version(), &res.kind);
            let scale = scale_of(&old);
            let new_scale = match change {
                ScaleChange::Replace(v) => v.clone(),
                ScaleChange::Patch(ty, body) => {
                    let p: Value = serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
                    match ty {
                        PatchType::Json => {
                            let p: json_patch::Patch = serde_json::from_value(p).map_err(|e| ApiError::bad_request(e.to_string()))?;
                            let mut d = scale.clone();
                            json_patch::patch(&mut d, &p).map_err(|e| unprocessable(e.to_string()))?;
                            d
                        }
                        PatchType::Merge | PatchType::Apply => {
                            let mut d = scale.clone();
                            json_patch::merge(&mut d, &p);
                            d
                        }
                        PatchType::Strategic => strategic::strategic_merge("Scale", &scale, &p).map_err(|e| unprocessable(e.to_string()))?,
                    }
                }
            };
            let want_rv = meta::resource_version(&new_scale);
            if !want_rv.is_empty() && want_rv != cur.rv.to_string() {
                return Err(ApiError::conflict(Self::subject(res, name)));
            }
            let replicas = new_scale.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0);
            if replicas < 0 {
                return Err(ApiError::invalid(
                    "autoscaling",
                    "Scale",
                    name,
                    format!("Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"),
                    vec![Cause { reason: "FieldValueInvalid".into(), message: format!("Invalid value: {replicas}: must be greater than or equal to 0"), field: Some("spec.replicas".into()) }],
                ));
            }
            let mut new = old.clone();
            new["spec"]["replicas"] = json!(replicas);
            self.update_in(txn, res, None, old, new, opts, Ownership::Update)
        })?;
        Ok(scale_of(&object))
    }

    /// `POST pods/{name}/binding` (and the `bindings` collection): assign a
    /// node. Answers as upstream does, with a Status.
    pub fn bind(&self, ns: &str, pod_name: &str, binding: &Value, opts: &WriteOptions) -> ApiResult<Value> {
        self.bind_pod(ns, pod_name, binding, opts).map(|_| success_status(201, None))
    }

    /// Bind, returning the bound pod (for in-process callers).
    pub fn bind_pod(&self, ns: &str, pod_name: &str, binding: &Value, opts: &WriteOptions) -> ApiResult<Value> {
        let res = self.res("", "pods");
        let target = meta::str_at(binding, &["target", "name"]).unwrap_or_default().to_string();
        if target.is_empty() {
            return Err(ApiError::invalid(
                "",
                "Binding",
                pod_name,
                format!("Binding \"{pod_name}\" is invalid: target.name: Required value"),
                vec![Cause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value".into(),
                    field: Some("target.name".into()),
                }],
            ));
        }
        let body_name = meta::name(binding);
        if !body_name.is_empty() && body_name != pod_name {
            return Err(ApiError::bad_request("name in URL does not match name in Binding object"));
        }
        let key = object_key(Some(ns), pod_name);
        let decide = |cur: &Stored| -> ApiResult<Value> {
            let mut new = cur.to_value("v1", "Pod");
            if meta::is_deleting(&new) {
                return Err(ApiError::conflict_msg(
                    Self::subject(&res, pod_name),
                    format!("pod {pod_name} is being deleted, cannot be assigned to a host"),
                ));
            }
            if let Some(n) = meta::str_at(&new, &["spec", "nodeName"]).filter(|n| !n.is_empty()) {
                return Err(ApiError::conflict_msg(
                    Self::subject(&res, pod_name),
                    format!("pod {pod_name} is already assigned to node \"{n}\""),
                ));
            }
            new["spec"]["nodeName"] = json!(target);
            if let Some(a) = binding.pointer("/metadata/annotations").and_then(Value::as_object) {
                for (k, v) in a {
                    new["metadata"]["annotations"][k] = v.clone();
                }
            }
            set_condition(&mut new, "PodScheduled", "True", None, None, &self.clock.now_rfc3339());
            Ok(new)
        };
        let not_found = || ApiError::not_found(Self::subject(&res, pod_name));
        // Bypasses pod update validation (nodeName is immutable through
        // updates) and, as upstream, records no field ownership.
        self.write_optimistically(&res, &key, not_found, decide, |txn, new| {
            if opts.dry_run {
                return Ok(new);
            }
            txn.put_value(&res.storage, new).map(|(_, written)| written)
        })
    }

    /// `POST pods/{name}/eviction`: delete the pod if its disruption budget allows.
    pub fn evict(&self, ns: &str, pod_name: &str, eviction: &Value) -> ApiResult<Value> {
        let res = self.res("", "pods");
        let body_name = meta::name(eviction);
        if !body_name.is_empty() && body_name != pod_name {
            return Err(ApiError::bad_request("name in URL does not match name in Eviction object"));
        }
        let mut opts = DeleteOptions::default();
        if let Some(d) = eviction.get("deleteOptions").filter(|d| d.is_object()) {
            opts.merge_body(d)?;
        }
        let pdbr = self.res("policy", "poddisruptionbudgets");
        self.store.transact(|txn| {
            let cur = txn
                .get(&res.storage, &object_key(Some(ns), pod_name))
                .ok_or_else(|| ApiError::not_found(Self::subject(&res, pod_name)))?;
            let pod = cur.to_value("v1", "Pod");
            let phase = meta::str_at(&pod, &["status", "phase"]).unwrap_or("Pending");
            if matches!(phase, "Succeeded" | "Failed" | "Pending") || meta::is_deleting(&pod) {
                self.delete_in(txn, &res, Some(ns), pod_name, &opts)?;
                return Ok(());
            }
            let prefix = format!("{ns}/");
            let snap = txn.snapshot(&pdbr.storage);
            let pdbs: Vec<Value> = snap
                .iter_prefix(&prefix, None)
                .map(|s| s.to_value("policy/v1", "PodDisruptionBudget"))
                .filter(|pdb| match pdb.pointer("/spec/selector") {
                    None | Some(Value::Null) => false,
                    Some(sel) => LabelSelector::from_object(sel).is_ok_and(|s| s.matches_by(|k| cur.labels.get(k))),
                })
                .collect();
            let mut pdb = match pdbs.len() {
                0 => {
                    self.delete_in(txn, &res, Some(ns), pod_name, &opts)?;
                    return Ok(());
                }
                1 => pdbs.into_iter().next().unwrap_or_default(),
                _ => {
                    return Err(ApiError::internal(
                        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                    ));
                }
            };
            let pdb_name = meta::name(&pdb).to_string();
            let status = pdb.get("status").cloned().unwrap_or_default();
            let int = |k: &str| status.get(k).and_then(Value::as_i64).unwrap_or(0);
            let refuse = |msg: String| {
                ApiError::too_many_requests(
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                    None,
                    vec![Cause { reason: "DisruptionBudget".into(), message: msg, field: None }],
                )
            };
            let generation = pdb.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
            if int("observedGeneration") < generation {
                return Err(refuse(format!("The disruption budget {pdb_name} is still being processed by the server.")));
            }
            let ready = pod
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
            if !ready {
                let policy = meta::str_at(&pdb, &["spec", "unhealthyPodEvictionPolicy"]).unwrap_or("IfHealthyBudget");
                let healthy_budget = int("currentHealthy") >= int("desiredHealthy") && int("desiredHealthy") > 0;
                if policy == "AlwaysAllow" || healthy_budget {
                    self.delete_in(txn, &res, Some(ns), pod_name, &opts)?;
                    return Ok(());
                }
            }
            let allowed = int("disruptionsAllowed");
            if allowed < 0 {
                return Err(ApiError::forbidden(Self::subject(&res, pod_name), "pdb disruptions allowed is negative"));
            }
            if allowed == 0 {
                return Err(refuse(format!(
                    "The disruption budget {pdb_name} needs {} healthy pods and has {} currently",
                    int("desiredHealthy"),
                    int("currentHealthy")
                )));
            }
            let disrupted = pdb.pointer("/status/disruptedPods").and_then(Value::as_object).map_or(0, |m| m.len());
            if disrupted > 2000 {
                return Err(ApiError::forbidden(Self::subject(&res, pod_name), "DisruptedPods map too big - too many evictions not confirmed by PDB controller"));
            }
            if opts.dry_run {
                return Ok(());
            }
            pdb["status"]["disruptionsAllowed"] = json!(allowed - 1);
            pdb["status"]["disruptedPods"][pod_name] = json!(self.clock.now_rfc3339());
            txn.put(&pdbr.storage, pdb)?;
            self.delete_in(txn, &res, Some(ns), pod_name, &opts)?;
            Ok(())
        })?;
        Ok(success_status(201, None))
    }

    // ----- watch support ---------------------------------------------------

    /// The token every open watch listens on; cancelled by `disconnect_watches`.
    pub fn watch_token(&self) -> CancellationToken {
        self.watch_epoch.read().clone()
    }

    /// Cancelled when the cluster shuts down (ends internal watches too).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stop everything that listens for shutdown, and end every open watch.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
        self.disconnect_watches();
    }

    /// End every open watch now (clients see the stream close, as when an API
    /// server restarts, and must re-watch from their last resourceVersion).
    pub fn disconnect_watches(&self) {
        let mut g = self.watch_epoch.write();
        g.cancel();
        *g = CancellationToken::new();
    }

    /// Install the source of computed (read-only) resources.
    pub fn set_computed(&self, source: Arc<dyn ComputedResources>) {
        *self.computed.write() = Some(source);
    }

    /// The current state of a resource: stored, or computed now for read-only
    /// resources with a source.
    fn current(&self, res: &ResourceInfo) -> Snapshot {
        if res.read_only
            && let Some(src) = self.computed.read().clone()
        {
            return Snapshot::computed(self.store.current_rv(), &res.storage, convert::index_fields, src.list(res));
        }
        self.store.snapshot(&res.storage)
    }

    /// Install the handler of node proxy requests.
    pub fn set_node_proxy(&self, proxy: Arc<dyn NodeProxy>) {
        *self.node_proxy.write() = Some(proxy);
    }

    /// `…/nodes/{name}/proxy/{path}`: forwarded to the node's (simulated) kubelet.
    pub fn node_proxy(
        &self,
        method: &axum::http::Method,
        node: &str,
        path: &str,
        body: bytes::Bytes,
    ) -> ApiResult<(u16, Value)> {
        self.get(&self.res("", "nodes"), None, node)?;
        let proxy = self.node_proxy.read().clone();
        match proxy {
            Some(p) => p.call(method.as_str(), node, path, &body),
            None => Err(ApiError::service_unavailable(format!(
                "error trying to reach service: no kubelet is running for node \"{node}\""
            ))),
        }
    }

    /// `PUT namespaces/{name}/finalize`: set `spec.finalizers`; a terminating
    /// namespace without finalizers is removed.
    pub fn finalize_namespace(&self, name: &str, body: &Value, opts: &WriteOptions) -> ApiResult<Written> {
        let res = self.res("", "namespaces");
        let finalizers = body.pointer("/spec/finalizers").cloned().unwrap_or_else(|| json!([]));
        let object = self.store.transact(|txn| {
            let cur = txn.get(&res.storage, name).ok_or_else(|| ApiError::not_found(Self::subject(&res, name)))?;
            let old = cur.to_value("v1", "Namespace");
            let mut new = old.clone();
            new["spec"]["finalizers"] = finalizers.clone();
            if opts.dry_run {
                return Ok(new);
            }
            let gone = meta::is_deleting(&new) && meta::finalizers(&new).is_empty() && !has_spec_finalizers(&res, &new);
            let now = self.clock.now_rfc3339();
            update_managed_fields(&mut new, &old, &res, Some("finalize"), opts, Ownership::Update, &now);
            let stored = txn.put(&res.storage, new)?;
            if gone {
                let removed =
                    txn.remove(&res.storage, name)?.ok_or_else(|| ApiError::internal("namespace vanished"))?;
                return Ok(self.render(&res, &removed));
            }
            Ok(self.render(&res, &stored))
        })?;
        Ok(Written { object, warnings: Vec::new(), created: false })
    }

    /// Finish the deletion of objects whose grace period has run out and that
    /// nothing else will finish (used by the namespace controller and tests).
    pub fn finalize_now(&self, res: &ResourceInfo, ns: Option<&str>, name: &str) -> ApiResult<Deleted> {
        self.delete(res, ns, name, &DeleteOptions { grace_period: Some(0), ..Default::default() })
    }
}

/// `new`'s status fields over `old`'s: each field `new` has replaces the
/// stored one (`null` removes it), the others stay.
fn merge_stored_status(old: &Value, new: &mut Value) {
    let mut status = old.get("status").and_then(Value::as_object).cloned().unwrap_or_default();
    if let Some(fields) = new.get_mut("status").and_then(Value::as_object_mut) {
        for (k, v) in std::mem::take(fields) {
            if v.is_null() {
                status.remove(&k);
            } else {
                status.insert(k, v);
            }
        }
    }
    if let Some(o) = new.as_object_mut() {
        o.insert("status".into(), Value::Object(status));
    }
}

/// How a scale subresource write changes the Scale.
#[derive(Debug, Clone, Copy)]
pub enum ScaleChange<'a> {
    Replace(&'a Value),
    Patch(PatchType, &'a [u8]),
}

/// The autoscaling/v1 Scale of a workload object.
pub fn scale_of(obj: &Value) -> Value {
    let m = &obj["metadata"];
    let selector = obj
        .pointer("/spec/selector")
        .map(|s| LabelSelector::from_object(s).map(|s| s.to_string()).unwrap_or_default())
        .unwrap_or_default();
    let mut meta = json!({"name": m["name"], "uid": m["uid"], "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]});
    if let Some(ns) = m.get("namespace") {
        meta["namespace"] = ns.clone();
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": meta,
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0)},
        "status": {"replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0), "selector": selector},
    })
}

/// Set (or update) a condition, moving `lastTransitionTime` only when the
/// status changes, as controllers do.
pub fn set_condition(obj: &mut Value, ty: &str, status: &str, reason: Option<&str>, message: Option<&str>, now: &str) {
    if !obj["status"].is_object() {
        obj["status"] = json!({});
    }
    if !obj["status"]["conditions"].is_array() {
        obj["status"]["conditions"] = json!([]);
    }
    let Some(conds) = obj["status"]["conditions"].as_array_mut() else { return };
    let mut c = json!({"type": ty, "status": status, "lastProbeTime": null, "lastTransitionTime": now});
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    if let Some(m) = message {
        c["message"] = json!(m);
    }
    match conds.iter_mut().find(|c| c["type"] == ty) {
        Some(existing) => {
            if existing["status"] == status {
                c["lastTransitionTime"] = existing["lastTransitionTime"].clone();
            }
            *existing = c;
        }
        None => conds.push(c),
    }
}

/// 422 without a subject, as upstream's generic "unprocessable entity" answer.
fn unprocessable(message: impl Into<String>) -> ApiError {
    ApiError::invalid("", "", "", message.into(), vec![])
}

impl ApiError {
    pub fn with_message(mut self, m: String) -> Self {
        self.message = m;
        self
    }
}

fn apply_conflict(res: &ResourceInfo, name: &str, conflicts: &[(String, String)]) -> ApiError {
    let n = conflicts.len();
    let plural = if n == 1 { "conflict" } else { "conflicts" };
    let lines: Vec<String> =
        conflicts.iter().map(|(m, p)| format!("conflict with \"{m}\" using {}: {p}", res.api_version())).collect();
    let msg = if n == 1 {
        format!("Apply failed with 1 conflict: {}", lines[0])
    } else {
        format!("Apply failed with {n} {plural}: {}", lines.join("\n"))
    };
    let mut e = ApiError::conflict_msg(ApiServer::subject(res, name), "");
    e.message = msg;
    e.details.causes = conflicts
        .iter()
        .map(|(m, p)| Cause {
            reason: "FieldManagerConflict".into(),
            message: format!("conflict with \"{m}\" using {}", res.api_version()),
            field: Some(p.clone()),
        })
        .collect();
    e
}

/// Seconds left in a pending graceful deletion (`deletionGracePeriodSeconds`).
fn pending_grace(v: &Value) -> i64 {
    v.pointer("/metadata/deletionGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(0)
}

/// Namespaces carry their own `spec.finalizers` ("kubernetes"), cleared by the
/// namespace controller once the namespace is empty.
fn has_spec_finalizers(res: &ResourceInfo, v: &Value) -> bool {
    res.group.is_empty()
        && res.plural == "namespaces"
        && v.pointer("/spec/finalizers").and_then(Value::as_array).is_some_and(|a| !a.is_empty())
}

fn parse_rv(s: &str) -> ApiResult<u64> {
    s.parse::<u64>()
        .map_err(|_| ApiError::bad_request(format!("resourceVersion: Invalid value: \"{s}\": must be an integer")))
}

/// Build one list page from a snapshot.
fn page(snap: &Snapshot, filter: &Filter, ns: Option<&str>, start: Option<&str>, limit: Option<usize>) -> ListPage {
    let prefix = ns.map(|n| format!("{n}/"));
    let iter = match &prefix {
        Some(p) => snap.iter_prefix(p, start),
        None => snap.iter_from(start),
    };
    let limit = limit.filter(|l| *l > 0);
    let mut items = Vec::new();
    let mut continue_token = None;
    let mut remaining = None;
    let mut iter = iter.filter(|o| filter.matches(o));
    for o in iter.by_ref() {
        items.push(o.clone());
        if limit.is_some_and(|l| items.len() >= l) {
            break;
        }
    }
    if let Some(last) = items.last().filter(|_| limit.is_some_and(|l| items.len() >= l)) {
        let rest = iter.count();
        if rest > 0 {
            let rel = match &prefix {
                Some(p) => last.key.strip_prefix(p.as_str()).unwrap_or(&last.key),
                None => &last.key,
            };
            continue_token = Some(encode_continue(snap.rv as i64, &format!("{rel}\u{0}")));
            if filter.is_everything() {
                remaining = Some(rest as u64);
            }
        }
    }
    ListPage { items, rv: snap.rv, continue_token, remaining }
}

/// Continue tokens have upstream's shape: base64url of
/// `{"v":"meta.k8s.io/v1","rv":N,"start":"<key>\u0000"}`.
fn encode_continue(rv: i64, start: &str) -> String {
    let tok = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tok.to_string())
}

fn decode_continue(tok: &str) -> ApiResult<(i64, String)> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {tok}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(tok.trim_end_matches('=')).map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    if v["v"] != "meta.k8s.io/v1" {
        return Err(bad());
    }
    let rv = v["rv"].as_i64().ok_or_else(bad)?;
    let start = v["start"].as_str().ok_or_else(bad)?;
    // Stored keys never contain NUL; the trailing NUL only means "after this key".
    Ok((rv, start.trim_end_matches('\u{0}').to_string()))
}

// ----- managedFields ------------------------------------------------------

/// Optimistic attempts of a write before it decides under the store's lock.
const OPTIMISTIC_ATTEMPTS: usize = 3;

/// What an update comes to, decided before it is committed.
#[derive(Debug)]
enum Updated {
    /// Nothing changed: answer with the stored object.
    Unchanged {
        key: Arc<str>,
        name: String,
    },
    DryRun(Value),
    /// Deleting, and nothing holds it any longer: write, then remove.
    Finalized {
        key: Arc<str>,
        object: Value,
    },
    Put(Value),
}

/// A status write reads only status, identity and ownership records from its
/// body: drop the rest before it is copied.
fn keep_status_write_fields(obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else { return };
    o.retain(|k, _| matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind"));
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.retain(|k, _| matches!(k.as_str(), "name" | "namespace" | "uid" | "resourceVersion" | "managedFields"));
    }
}

/// How a write takes ownership of fields.
#[derive(Debug, Clone)]
enum Ownership {
    /// An Update operation owns what it changed.
    Update,
    /// An Apply operation owns exactly its configuration's fields.
    Apply(FieldSet),
}

#[derive(Debug, Clone)]
struct ManagedEntry {
    manager: String,
    operation: String,
    subresource: Option<String>,
    api_version: String,
    time: String,
    /// Decoded from `raw` on first use: most writes touch one manager's entry
    /// and leave the others as stored.
    fields: Option<FieldSet>,
    /// The entry as stored, reused when a write leaves it untouched.
    raw: Option<Value>,
}

impl ManagedEntry {
    fn fields_mut(&mut self) -> &mut FieldSet {
        let raw = &self.raw;
        self.fields.get_or_insert_with(|| {
            raw.as_ref()
                .and_then(|e| e.get("fieldsV1"))
                .and_then(|f| managed::from_fields_v1(f).ok())
                .unwrap_or_default()
        })
    }

    fn fields(&mut self) -> &FieldSet {
        self.fields_mut()
    }

    /// Whether the write taking `lost` away changes this entry; decodes it only
    /// when its stored fields meet `lost`.
    fn loses(&mut self, lost: &FieldSet) -> bool {
        if self.fields.is_none() {
            let stored = self.raw.as_ref().and_then(|e| e.get("fieldsV1"));
            if !stored.is_some_and(|f| lost.meets_fields_v1(f)) {
                return false;
            }
        }
        let changed = self.fields_mut().remove_all(lost);
        if changed {
            self.raw = None;
        }
        changed
    }

    fn is_empty(&self) -> bool {
        self.fields.as_ref().is_some_and(FieldSet::is_empty)
    }

    /// A stored `managedFields` entry, kept as it is until it changes.
    fn of(e: Value) -> Option<ManagedEntry> {
        Some(ManagedEntry {
            manager: e.get("manager")?.as_str()?.to_string(),
            operation: e.get("operation")?.as_str()?.to_string(),
            subresource: e.get("subresource").and_then(Value::as_str).map(str::to_string),
            api_version: e.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_string(),
            time: e.get("time").and_then(Value::as_str).unwrap_or_default().to_string(),
            fields: None,
            raw: Some(e),
        })
    }
}

fn managed_entries(obj: &Value) -> Vec<ManagedEntry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|e| ManagedEntry::of(e.clone())).collect())
        .unwrap_or_default()
}

/// [`managed_entries`], moved out of the object (which is left without them).
fn take_managed_entries(obj: &mut Value) -> Vec<ManagedEntry> {
    match obj.pointer_mut("/metadata/managedFields").map(Value::take) {
        Some(Value::Array(a)) => a.into_iter().filter_map(ManagedEntry::of).collect(),
        _ => Vec::new(),
    }
}

fn entry_json(mut e: ManagedEntry) -> Value {
    if let Some(raw) = e.raw.take() {
        return raw;
    }
    let fields = e.fields.as_ref().map_or_else(|| json!({}), managed::to_fields_v1);
    let mut v = json!({
        "manager": e.manager,
        "operation": e.operation,
        "apiVersion": e.api_version,
        "time": e.time,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    });
    if let Some(s) = &e.subresource {
        v["subresource"] = json!(s);
    }
    v
}

fn managed_entry(
    opts: &WriteOptions,
    res: &ResourceInfo,
    op: &str,
    sub: Option<&str>,
    set: &FieldSet,
    now: &str,
) -> Value {
    entry_json(ManagedEntry {
        manager: opts.field_manager.clone(),
        operation: op.into(),
        subresource: sub.map(str::to_string),
        api_version: res.api_version(),
        time: now.into(),
        fields: Some(set.clone()),
        raw: None,
    })
}

/// The part of an object field ownership is tracked on (upstream strips the
/// identity and bookkeeping fields).
/// Null fields (Go's zero timestamps) are nobody's: upstream's field sets
/// never list them.
/// A map left empty by that (a template's `metadata: {creationTimestamp:
/// null}`) goes too; a map sent empty (`resources: {}`) stays.
fn drop_nulls(v: &mut Value) -> bool {
    match v {
        Value::Object(o) => {
            let before = o.len();
            o.retain(|_, c| !c.is_null());
            let mut dropped = o.len() != before;
            o.retain(|_, c| {
                let inner = drop_nulls(c);
                dropped |= inner;
                !(inner && c.as_object().is_some_and(|m| m.is_empty()))
            });
            dropped
        }
        Value::Array(a) => {
            let mut dropped = false;
            for c in a.iter_mut() {
                dropped |= drop_nulls(c);
            }
            dropped
        }
        _ => false,
    }
}

fn tracked(obj: &Value) -> Value {
    let mut v = obj.clone();
    drop_nulls(&mut v);
    if let Some(o) = v.as_object_mut() {
        o.remove("apiVersion");
        o.remove("kind");
        if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in [
                "name",
                "namespace",
                "uid",
                "resourceVersion",
                "generation",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "managedFields",
                "selfLink",
            ] {
                m.remove(k);
            }
            if m.is_empty() {
                o.remove("metadata");
            }
        }
    }
    v
}

/// What a write to `sub` of `res` can own: writes to the main resource do not
/// own status when status is a subresource (upstream's reset fields).
fn tracked_for(res: &ResourceInfo, sub: Option<&str>, obj: &Value) -> Value {
    if sub == Some("status") {
        // A status write changes nothing else: diff only that subtree.
        return obj.get("status").map_or_else(|| json!({}), |s| json!({"status": s}));
    }
    let mut v = tracked(obj);
    if sub.is_none()
        && res.has_status
        && let Some(o) = v.as_object_mut()
    {
        o.remove("status");
    }
    // A namespace's spec holds only the finalizers the server adds; an empty
    // one is nobody's (as the recorded `kubectl create namespace` shows).
    if res.kind == "Namespace"
        && let Some(o) = v.as_object_mut()
        && o.get("spec").and_then(Value::as_object).is_some_and(|s| s.is_empty())
    {
        o.remove("spec");
    }
    v
}

/// The Go zero value of a kind as serialized (the "before" of a create). A
/// pod's required `containers` list serializes as `null`, so a create does not
/// own the list itself, only its elements.
fn zero_of(kind: &str) -> Value {
    match kind {
        "Pod" => json!({"spec": {"containers": null}}),
        _ => json!({}),
    }
}

fn update_managed_fields(
    new: &mut Value,
    old: &Value,
    res: &ResourceInfo,
    sub: Option<&str>,
    opts: &WriteOptions,
    ownership: Ownership,
    now: &str,
) {
    let diff = || managed::compare(&res.kind, &tracked_for(res, sub, old), &tracked_for(res, sub, new));
    if let Some(change) = ownership_change(opts, ownership, diff) {
        record_ownership(new, managed_entries(old), res, sub, opts, change, now);
    }
}

/// What a write changes in field ownership: the operation, what the writer
/// owns afterwards, and what other managers lose.
type OwnershipChange = (&'static str, FieldSet, FieldSet);

/// A write's [`OwnershipChange`], `None` when nothing changes hands. An update
/// owns what `diff` finds it changed.
fn ownership_change(
    opts: &WriteOptions,
    ownership: Ownership,
    diff: impl FnOnce() -> managed::Comparison,
) -> Option<OwnershipChange> {
    if opts.field_manager.is_empty() {
        return None;
    }
    match ownership {
        Ownership::Update => {
            let c = diff();
            let mut gained = c.added;
            gained.extend(&c.modified);
            let mut lost = c.removed;
            lost.extend(&c.modified);
            (!gained.is_empty() || !lost.is_empty()).then_some(("Update", gained, lost))
        }
        Ownership::Apply(set) => Some(("Apply", set.clone(), set)),
    }
}

/// Write the ownership records after a change: other managers lose what the
/// writer took, the writer's own entry gains it.
fn record_ownership(
    new: &mut Value,
    mut entries: Vec<ManagedEntry>,
    res: &ResourceInfo,
    sub: Option<&str>,
    opts: &WriteOptions,
    (op, gained, lost): OwnershipChange,
    now: &str,
) {
    let is_me =
        |e: &ManagedEntry| e.manager == opts.field_manager && e.operation == op && e.subresource.as_deref() == sub;
    for e in entries.iter_mut() {
        // A forced apply takes conflicting fields; an update always does.
        if !is_me(e) && (opts.force || op == "Update") {
            e.loses(&lost);
        }
    }
    match entries.iter_mut().find(|e| is_me(e)) {
        Some(e) => {
            if op == "Apply" {
                e.fields = Some(gained);
            } else {
                let fields = e.fields_mut();
                fields.remove_all(&lost);
                fields.extend(&gained);
            }
            e.time = now.into();
            e.api_version = res.api_version();
            e.raw = None;
        }
        None if !gained.is_empty() => entries.push(ManagedEntry {
            manager: opts.field_manager.clone(),
            operation: op.into(),
            subresource: sub.map(str::to_string),
            api_version: res.api_version(),
            time: now.into(),
            fields: Some(gained),
            raw: None,
        }),
        None => {}
    }
    entries.retain(|e| !e.is_empty());
    let list: Vec<Value> = entries.into_iter().map(entry_json).collect();
    meta::set_meta(new, "managedFields", Value::Array(list));
}

/// Parse an RFC 3339 timestamp field of an object.
pub fn time_at(v: &Value, pointer: &str) -> Option<jiff::Timestamp> {
    v.pointer(pointer).and_then(Value::as_str).and_then(parse_time)
}

/// Group objects by owner uid (used by behaviours; cheap helper kept here so the
/// ownerReference rules live next to the deletion rules).
pub fn owner_uids(v: &Value) -> Vec<String> {
    v.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|o| o["uid"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}
