//! `sdi-migration demo`: the simulated SDI edge cluster (kube-sim, in-process)
//! with the service running against it, the web view, and a periodic view of
//! node usage and migrations in the terminal (logs go to a file).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kube_sim::auth::TokenOptions;
use kube_sim::{AuthConfig, Cluster, Credentials, ServerConfig};

use crate::access::AuthMode;

use crate::cluster::{self, ApiStats};
use crate::config::DemoArgs;
use crate::error::StartError;
use crate::jobs::ListFilter;
use crate::said::Said;
use crate::service::Service;
use crate::web::nodes::{self, NodeQuery, NodeSort};

/// The built-in scenario: an SDI edge cluster whose load crosses the threshold
/// within its first five simulated minutes (30 s at the default 10x).
pub const SDI_EDGE: &str = include_str!("../../../scenarios/sdi-edge.yaml");

/// Where the demo's logs go, so that the terminal keeps the live view.
pub fn log_path() -> PathBuf {
    std::env::temp_dir().join("sdi-migration-demo").join("sdi-migration.log")
}

/// Create (truncate) the demo's log file.
pub fn open_log() -> std::io::Result<(PathBuf, std::fs::File)> {
    let path = log_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::File::create(&path)?;
    Ok((path, file))
}

pub async fn run(args: DemoArgs, stop: impl Future<Output = ()>) -> Result<(), StartError> {
    let io = |what: String| move |source| StartError::Io { what, source };
    let (name, text) = match &args.scenario {
        Some(path) => (
            path.display().to_string(),
            std::fs::read_to_string(path).map_err(io(format!("cannot read scenario {}", path.display())))?,
        ),
        None => ("scenarios/sdi-edge.yaml".to_string(), SDI_EDGE.to_string()),
    };
    let scenario = kube_sim::scenario::parse(&name, &text).map_err(|errs| {
        StartError::Scenario(format!(
            "invalid scenario:\n{}",
            errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
        ))
    })?;
    let enforced = args.auth == AuthMode::Kubernetes;
    let dir = std::env::temp_dir().join("sdi-migration-demo");
    let mut settings = demo_settings(&args);
    // State moves with pods when a registry is at hand: Debian's docker-registry on loopback.
    let (registry, registry_note) = state_registry(&mut settings).await;
    let checkpoints = dir.join("checkpoints");
    // With --auth kubernetes the simulated cluster is a real one's equal: HTTPS
    // (kubectl sends credentials only over HTTPS) and RBAC, the service as its
    // ServiceAccount with exactly deploy/'s permissions.
    let auth = if enforced { AuthConfig { tls: true, ..AuthConfig::rbac() } } else { AuthConfig::default() };
    let config = ServerConfig {
        auth,
        checkpoint_dir: Some(checkpoints.clone()),
        registries: registry.iter().map(|r| r.host.clone()).collect(),
        ..ServerConfig::default()
    };
    let sim = Cluster::with(config, kube_sim::Clock::new(args.speed));
    sim.load_scenario(&scenario).map_err(|e| StartError::Scenario(e.to_string()))?;
    install_crd(&sim)?;
    install_rbac(&sim)?;
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let server = sim.serve(loopback).await.map_err(|source| StartError::Listen { addr: loopback, source })?;
    std::fs::create_dir_all(&dir).map_err(io(format!("cannot create {}", dir.display())))?;
    let kubeconfig_path = dir.join("kubeconfig");
    std::fs::write(&kubeconfig_path, server.kubeconfig())
        .map_err(io(format!("cannot write {}", kubeconfig_path.display())))?;
    let service_kubeconfig = if enforced {
        let token = long_token(&sim, SERVICE_ACCOUNT.0, SERVICE_ACCOUNT.1)?;
        let path = dir.join("service-kubeconfig");
        std::fs::write(&path, server.kubeconfig_for(&Credentials::Token(token)))
            .map_err(io(format!("cannot write {}", path.display())))?;
        path
    } else {
        kubeconfig_path.clone()
    };

    let stats = Arc::new(ApiStats::default());
    let client = cluster::connect(Some(&service_kubeconfig), stats.clone()).await?;
    // Loopback only, whatever LISTEN_ADDR says: with AUTH_MODE=none it must not be reachable from elsewhere.
    let addr = SocketAddr::from(([127, 0, 0, 1], args.settings.port));
    let agents = tokio_util::sync::CancellationToken::new();
    if registry.is_some() {
        // The agents act as the DaemonSet's ServiceAccount would; here, as the admin.
        let agent_client = cluster::connect(Some(&kubeconfig_path), Arc::new(ApiStats::default())).await?;
        start_agents(&sim, &agent_client, &settings, &checkpoints, &agents).await?;
    }
    let clock = sim.clock().clone();
    let clock: crate::rebalancer::Clock = Arc::new(move || clock.elapsed().as_secs());
    let service = Service::start_with_clock(&settings, client.clone(), stats, addr, Some(clock)).await?;
    let api = service.url();
    println!("sdi-migration demo — scenario {} at {}x simulated time", scenario.name, args.speed);
    println!("  simulated cluster: kubectl --kubeconfig {} get pods -A -o wide", kubeconfig_path.display());
    println!("  web view:          {api}/   (node pressure, plans with reasons, migrations step by step)");
    println!("  migration API:     {api}");
    let auth = if enforced {
        let token = long_token(&sim, DEMO_USER.0, DEMO_USER.1)?;
        let path = dir.join("token");
        std::fs::write(&path, &token).map_err(io(format!("cannot write {}", path.display())))?;
        println!(
            "  access:            AUTH_MODE=kubernetes — tokens checked with TokenReview, rights with \
             SubjectAccessReview (RBAC)"
        );
        println!(
            "    a token of ServiceAccount {}/{} (edit + sdi-migration-operator), also in {}:",
            DEMO_USER.0,
            DEMO_USER.1,
            path.display()
        );
        println!("    TOKEN={token}");
        println!("    (paste it into the web view's API token field; without one every call is 401)");
        " -H \"Authorization: Bearer $TOKEN\""
    } else {
        println!("  access:            AUTH_MODE=none — no token needed; listening on 127.0.0.1 only");
        println!("    (demo --auth kubernetes shows the real thing: RBAC enforced, a token printed)");
        ""
    };
    println!("    curl{auth} {api}/api/v1/plan            # what the rebalancer would do now, with every reason");
    println!("    curl{auth} {api}/api/v1/migrations      # jobs, newest first, step by step");
    println!(
        "    curl{auth} -X POST {api}/api/v1/migrations -H 'content-type: application/json' \\\n      -d '{{\"pod_name\":\"POD\",\"pod_namespace\":\"NS\",\"source_node\":\"FROM\",\"target_node\":\"TO\"}}'"
    );
    println!("  logs:              {} (warnings also here)", log_path().display());
    println!("  state:             {registry_note}");
    println!(
        "  rebalancer: every {}s, threshold {}%, cooldown {} simulated s{}; Ctrl-C to stop.",
        settings.migration_check_interval,
        settings.resource_pressure_threshold,
        settings.migration_cooldown,
        if settings.dry_run { ", DRY RUN" } else { "" }
    );
    println!("  Below: node pressure every 2 s; each decision, skip reason and job state once, until it changes.\n");

    if registry.is_some() {
        tokio::spawn(stateful_move(sim.clone(), client.clone(), api.clone()));
    }
    let started = std::time::Instant::now();
    let sim_clock = sim.clock().clone();
    let mut shown = Shown::default();
    let view = async {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tick.tick().await;
            print_view(&service, &mut shown, sim_clock.elapsed(), started.elapsed());
        }
    };
    let limit = async {
        match args.duration {
            Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = stop => {},
        _ = limit => {},
        _ = view => {},
    }
    print_view(&service, &mut shown, sim_clock.elapsed(), started.elapsed());
    service.shutdown(Duration::from_secs(args.settings.shutdown_grace.min(10))).await;
    agents.cancel();
    drop(registry);
    server.shutdown().await;
    sim.stop();
    Ok(())
}

/// The demo's checkpoint registry: `CHECKPOINT_REGISTRY` if set, else a
/// loopback `docker-registry` when installed; and what to tell the user.
async fn state_registry(
    settings: &mut crate::config::Settings,
) -> (Option<crate::checkpoint::local::LocalRegistry>, String) {
    use crate::checkpoint::local::{self, LocalRegistry};
    if settings.checkpoint.checkpoint_registry.is_some() {
        return (None, "CHECKPOINT_REGISTRY is set: the demo's agents are not started (use a real cluster)".into());
    }
    if local::binary().is_none() {
        return (
            None,
            format!("pods move without their state: docker-registry is not installed ({})", local::INSTALL_HINT),
        );
    }
    match LocalRegistry::start().await {
        Ok(r) => {
            settings.checkpoint.checkpoint_registry = Some(r.setting("checkpoints"));
            settings.checkpoint.checkpoint_registry_insecure = true;
            let note = format!(
                "checkpoint images in the loopback registry {} (docker-registry); one agent per simulated node;\n                     robots/rosbag-recorder-tb1 moves with its state (checkpoint: true)",
                r.host
            );
            (Some(r), note)
        }
        Err(e) => (None, format!("pods move without their state: the loopback registry did not start: {e}")),
    }
}

/// One checkpoint agent per simulated node, each with its node's checkpoint directory.
async fn start_agents(
    sim: &Cluster,
    client: &kube::Client,
    settings: &crate::config::Settings,
    checkpoints: &std::path::Path,
    stop: &tokio_util::sync::CancellationToken,
) -> Result<(), StartError> {
    let Some(registry) = settings.checkpoint.registry().map_err(StartError::Config)? else { return Ok(()) };
    let nodes = sim
        .typed::<k8s_openapi::api::core::v1::Node>(None)
        .list("")
        .map_err(|e| StartError::Scenario(e.to_string()))?;
    for node in nodes.iter().filter_map(|n| n.metadata.name.clone()) {
        let dir = checkpoints.join(&node);
        std::fs::create_dir_all(&dir)
            .map_err(|source| StartError::Io { what: format!("cannot create {}", dir.display()), source })?;
        let config = crate::checkpoint::agent::AgentConfig {
            node,
            dir,
            registry: registry.clone(),
            namespace: settings.checkpoint.checkpoint_agent_namespace.clone(),
        };
        tokio::spawn(crate::checkpoint::agent::run(client.clone(), config, stop.clone()));
    }
    Ok(())
}

/// The stateful pod the demo moves with its state, and where.
const STATEFUL: (&str, &str, &str, &str) = ("robots", "rosbag-recorder-tb1", "turtlebot-1", "turtlebot-3");

/// Move the stateful bare pod with `checkpoint: true` through the API, and
/// print what happened to its state (the recorder's counter before and after).
async fn stateful_move(sim: Cluster, client: kube::Client, api: String) {
    let (ns, pod, from, to) = STATEFUL;
    let pods = sim.typed::<k8s_openapi::api::core::v1::Pod>(Some(ns));
    let ready = |p: &k8s_openapi::api::core::v1::Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    };
    // The scenario's pod starts within seconds; give up quietly after a minute.
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    for _ in 0..240 {
        tick.tick().await;
        if pods.get_opt(pod).ok().flatten().is_some_and(|p| ready(&p)) {
            break;
        }
    }
    let http = reqwest::Client::new();
    let body = serde_json::json!({"pod_name": pod, "pod_namespace": ns, "source_node": from, "target_node": to,
        "strategy": "recreate", "checkpoint": true});
    let created: serde_json::Value = match http.post(format!("{api}/api/v1/migrations")).json(&body).send().await {
        Ok(r) => r.json().await.unwrap_or_default(),
        Err(e) => {
            println!("  state move of {ns}/{pod}: could not ask: {e}");
            return;
        }
    };
    let Some(id) = created["migration_id"].as_str().map(str::to_string) else {
        println!("  state move of {ns}/{pod} refused: {created}");
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let job = loop {
        tick.tick().await;
        let job: serde_json::Value = match http.get(format!("{api}/api/v1/migrations/{id}")).send().await {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => continue,
        };
        if ["completed", "failed", "cancelled"].contains(&job["status"].as_str().unwrap_or_default()) {
            break job;
        }
    };
    let d = &job["details"];
    let at_checkpoint = sim.checkpoints().iter().rev().find(|c| c.pod == pod).map(|c| c.counter);
    let new_pod = d["new_pod_name"].as_str().unwrap_or_default();
    let path = format!("/api/v1/nodes/{to}/proxy/sim/state/{ns}/{new_pod}/recorder");
    let now = match http::Request::get(path).body(Vec::new()) {
        Ok(req) => client.request::<serde_json::Value>(req).await.ok(),
        Err(_) => None,
    };
    println!(
        "  STATE MOVE [{id}] {ns}/{pod} {from} → {to}: {} — restore {} {}; image {}; recorder counter {} at checkpoint → {} now",
        job["status"].as_str().unwrap_or_default(),
        d["restore"]["status"].as_str().unwrap_or("-"),
        d["restore"]["reason"].as_str().unwrap_or_default(),
        d["checkpoint_images"][0]["image"].as_str().unwrap_or("-"),
        at_checkpoint.map_or("-".into(), |c| c.to_string()),
        now.as_ref().and_then(|v| v["counter"].as_i64()).map_or("-".into(), |c| c.to_string()),
    );
}

/// Install the PodMigration CRD (`deploy/crd.yaml`) in the simulated cluster, as
/// `kubectl apply -k deploy/` would in a real one.
pub fn install_crd(sim: &Cluster) -> Result<(), StartError> {
    let crd: serde_json::Value = serde_yaml_ng::from_str(crate::migrations::crd::DEFINITION)
        .map_err(|e| StartError::Scenario(format!("deploy/crd.yaml: {e}")))?;
    let api = sim
        .dynamic("apiextensions.k8s.io/v1", "customresourcedefinitions", None)
        .map_err(|e| StartError::Scenario(e.to_string()))?;
    api.create(crd).map(|_| ()).map_err(|e| StartError::Scenario(format!("cannot install the PodMigration CRD: {e}")))
}

/// The service's ServiceAccount in `deploy/` (namespace, name).
pub const SERVICE_ACCOUNT: (&str, &str) = ("kube-system", "sdi-migration");
/// The demo's user with `--auth kubernetes`: may edit (move pods in) every
/// namespace and see the cluster-wide views.
pub const DEMO_USER: (&str, &str) = ("default", "demo-user");

/// `deploy/`'s RBAC, embedded: the service's identity and permissions, and the users' roles.
const RBAC_MANIFESTS: &[(&str, &str)] = &[
    ("deploy/serviceaccount.yaml", include_str!("../../../deploy/serviceaccount.yaml")),
    ("deploy/clusterrole.yaml", include_str!("../../../deploy/clusterrole.yaml")),
    ("deploy/clusterrolebinding.yaml", include_str!("../../../deploy/clusterrolebinding.yaml")),
    ("deploy/user-roles.yaml", include_str!("../../../deploy/user-roles.yaml")),
];

/// Apply `deploy/`'s ServiceAccount, ClusterRoles and bindings to the
/// simulated cluster as an operator would, and the demo's user
/// ([`DEMO_USER`]) bound to `edit` and `sdi-migration-operator`.
pub fn install_rbac(sim: &Cluster) -> Result<(), StartError> {
    let bad = |file: &str, e: String| StartError::Scenario(format!("{file}: {e}"));
    let mut objects = Vec::new();
    for (file, text) in RBAC_MANIFESTS {
        for doc in serde_yaml_ng::Deserializer::from_str(text) {
            let obj: serde_json::Value = serde::Deserialize::deserialize(doc).map_err(|e| bad(file, e.to_string()))?;
            if !obj.is_null() {
                objects.push((*file, obj));
            }
        }
    }
    let (ns, name) = DEMO_USER;
    objects.push((
        "demo",
        serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": ns}}),
    ));
    for role in ["edit", "sdi-migration-operator"] {
        objects.push((
            "demo",
            serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding", "metadata": {"name": format!("{name}-{role}")},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]}),
        ));
    }
    for (file, obj) in objects {
        let plural = match obj["kind"].as_str() {
            Some("ServiceAccount") => "serviceaccounts",
            Some("ClusterRole") => "clusterroles",
            Some("ClusterRoleBinding") => "clusterrolebindings",
            other => return Err(bad(file, format!("unexpected kind {other:?}"))),
        };
        let api_version = obj["apiVersion"].as_str().unwrap_or("v1").to_string();
        let namespace = obj["metadata"]["namespace"].as_str().map(str::to_string);
        let api = sim.dynamic(&api_version, plural, namespace.as_deref()).map_err(|e| bad(file, e.to_string()))?;
        api.create(obj).map_err(|e| bad(file, e.to_string()))?;
    }
    Ok(())
}

/// A ServiceAccount token (TokenRequest) valid for a simulated month.
fn long_token(sim: &Cluster, namespace: &str, name: &str) -> Result<String, StartError> {
    let opts = TokenOptions { expiration_seconds: 30 * 86_400, ..TokenOptions::default() };
    sim.service_account_token(namespace, name, &opts)
        .map_err(|e| StartError::Kubernetes(format!("cannot issue a token for {namespace}/{name}: {e}")))
}

/// Demo defaults where the operator did not choose: the in-cluster policy engine
/// and InfluxDB do not exist here, and a 30 s check interval or settle time is
/// long for a demo at 10× (intervals are wall-clock; cooldowns follow the
/// simulated clock).
pub fn demo_settings(args: &DemoArgs) -> crate::config::Settings {
    let mut s = args.settings.clone();
    s.auth_mode = args.auth;
    let unset = |var: &str| std::env::var_os(var).is_none();
    if unset("POLICY_ENGINE_URL") {
        s.policy_engine_url = None;
    }
    if unset("INFLUX_URL") {
        s.influx_url = None;
    }
    if unset("MIGRATION_CHECK_INTERVAL") {
        s.migration_check_interval = 3;
    }
    if unset("POST_MIGRATION_SETTLE") {
        s.post_migration_settle = 3;
    }
    s
}

fn bar(p: f64, threshold: f64) -> String {
    let filled = ((p / 5.0).round() as usize).min(20);
    let mark = if p > threshold { "!" } else { " " };
    format!("[{}{}] {:>5.1}%{mark}", "#".repeat(filled), ".".repeat(20 - filled), p)
}

/// What the terminal has shown: each decision, skip reason and job state is
/// printed once, until it changes (a skip reason: until its gist changes).
struct Shown {
    decisions: Said,
    skips: Said,
    jobs: Said,
}

impl Default for Shown {
    fn default() -> Self {
        Shown { decisions: Said::default(), skips: Said::reasons(), jobs: Said::default() }
    }
}

/// Node rows printed; a larger cluster shows its hottest nodes.
const NODE_ROWS: usize = 12;

/// One view: node pressure as the cluster view has it, then what changed —
/// decisions, skip reasons, job states — each said once until it changes.
fn print_view(service: &Service, shown: &mut Shown, simulated: Duration, real: Duration) {
    let r = &service.rebalancer;
    let threshold = r.config.threshold_pct;
    let sim = simulated.as_secs();
    println!(
        "── simulated {:02}:{:02}:{:02} (real {}s) ─────────────────────────────────────",
        sim / 3600,
        sim / 60 % 60,
        sim % 60,
        real.as_secs()
    );
    if !r.cache.synced() {
        println!("  waiting for the cluster view…\n");
        return;
    }
    let (loads, basis) =
        r.cache.with_index(|i| (nodes::loads(i.snapshot()), nodes::basis_used(r.config.basis, i.snapshot())));
    // A small cluster in name order (rows stay put); a large one, hottest first.
    let sort = if loads.len() <= NODE_ROWS { NodeSort::Name } else { NodeSort::Pressure };
    let query = NodeQuery { limit: NODE_ROWS, sort, ..NodeQuery::default() };
    let summary = nodes::summarize(&loads, basis, threshold, &query);
    println!("  {:<14} {:<31} {:<31}  (basis: {})", "node", "cpu", "memory", basis.as_str());
    for n in &summary.nodes {
        println!("  {:<14} {} {}", n.name, bar(n.cpu_pct, threshold), bar(n.mem_pct, threshold));
    }
    if summary.total > summary.nodes.len() {
        println!(
            "  … {} more nodes; {} of {} above {threshold}% (web view: {}/)",
            summary.total - summary.nodes.len(),
            summary.pressured,
            summary.total,
            service.url()
        );
    }
    let decisions: Vec<(String, String)> = r
        .recent()
        .iter()
        .map(|d| {
            let id = d.migration_id.as_deref().unwrap_or("-");
            let pod = format!("{}/{}", d.namespace, d.pod);
            let text = format!("{:<13} {pod} {} → {} [{id}] {}", d.action, d.source, d.target, d.reason);
            (pod, text)
        })
        .collect();
    for (_, text) in shown.decisions.fresh(decisions.iter().map(|(k, t)| (k.as_str(), t.as_str()))) {
        println!("  {text}");
    }
    if let Some(cycle) = r.latest() {
        let skips: Vec<(String, String)> = cycle
            .plan
            .skipped
            .iter()
            .map(|s| (format!("{}/{}", s.namespace, s.pod), format!("on {}: {}", s.node, s.reason)))
            .collect();
        let fresh = shown.skips.fresh(skips.iter().map(|(k, t)| (k.as_str(), t.as_str())));
        for (pod, why) in fresh.iter().take(6) {
            println!("  {:<13} {pod} {why}", "skip");
        }
        if fresh.len() > 6 {
            println!("  … {} more new skip reasons (web view or curl /api/v1/plan)", fresh.len() - 6);
        }
    }
    let jobs: Vec<(String, String)> = service
        .runner
        .store
        .list(&ListFilter { limit: 10, ..Default::default() })
        .iter()
        .map(|job| {
            let step = job
                .details
                .steps
                .last()
                .map(|s| {
                    let status = serde_json::to_value(s.status)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    format!("{} {status}", s.name)
                })
                .unwrap_or_default();
            let text = format!(
                "{:<9} {}/{} {} → {} ({}) {}",
                job.status.as_str(),
                job.request.pod_namespace,
                job.request.pod_name,
                job.request.source_node,
                job.request.target_node,
                job.details.strategy.map_or("-", |s| s.as_str()),
                step
            );
            (job.id.clone(), text)
        })
        .collect();
    for (id, text) in shown.jobs.fresh(jobs.iter().map(|(k, t)| (k.as_str(), t.as_str()))).into_iter().rev() {
        println!("  {id} {text}");
    }
    println!();
}
