//! The side-by-side scenario (`scenarios/side-by-side.yaml`: six workers, two
//! at 95% CPU requests, lower bound two moves) run with the autonomous
//! rebalancer, measured as the comparison with the descheduler was: moves,
//! nodes left hot, time until none is hot, fewest Ready replicas of the
//! budgeted Deployment, and the API requests of the service (counted by
//! kube-sim per client) per move and per idle cycle.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use sdi_migration::config::{PressureBasis, Settings};
use serde_json::Value;

use super::{Env, ready, settings, wait_for};

pub const HOT: [&str; 2] = ["w1", "w2"];
const ALLOCATABLE_CPU_M: f64 = 4000.0;

/// What one run measured.
#[derive(Debug)]
pub struct Outcome {
    /// The rebalancer's jobs, oldest first.
    pub jobs: Vec<Value>,
    /// CPU requests % of each formerly hot node at the end (non-terminating pods).
    pub hot_after: Vec<(String, f64)>,
    /// Workers above 85% at the end.
    pub nodes_left_hot: usize,
    /// From the hot nodes forming to no worker above 85%.
    pub relieved_after: Option<Duration>,
    /// Fewest Ready pods of the Deployment `web` (3 replicas) seen at any time.
    pub fewest_ready: usize,
    /// The service's requests from the hot nodes forming to the last move's end.
    pub requests: Requests,
    /// The service's requests over `idle_cycles` cycles once nothing is hot.
    pub idle: Requests,
    pub idle_cycles: u64,
    /// Cycles the rebalancer ran while it relieved the nodes.
    pub cycles: u64,
}

/// Settings of a run: the autonomous loop every second, requests basis, the built-in policy.
pub fn rebalancing() -> Settings {
    Settings {
        enable_auto_migration: true,
        migration_check_interval: 1,
        migration_cooldown: 600,
        policy_engine_url: None,
        pressure_basis: PressureBasis::Requests,
        ..settings()
    }
}

/// The scenario's text; `slow` pods take a simulated minute to start and to stop.
pub fn scenario(slow: bool) -> String {
    let text = std::fs::read_to_string(format!("{}/../../scenarios/side-by-side.yaml", env!("CARGO_MANIFEST_DIR")))
        .expect("scenarios/side-by-side.yaml");
    if slow {
        text.replace(
            "defaults: {startupSeconds: 1, shutdownSeconds: 1,",
            "defaults: {startupSeconds: 60, shutdownSeconds: 60,",
        )
    } else {
        text
    }
}

/// CPU requests % of `node` now: pods bound to it that are neither finished nor terminating.
pub fn cpu_pct(env: &Env, node: &str) -> f64 {
    let used: f64 = env
        .sim
        .dynamic("v1", "pods", None)
        .unwrap()
        .list("", "")
        .unwrap()
        .iter()
        .filter(|p| p["spec"]["nodeName"] == node && p["metadata"]["deletionTimestamp"].is_null())
        .filter(|p| !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
        .flat_map(|p| p["spec"]["containers"].as_array().cloned().unwrap_or_default())
        .map(|c| c["resources"]["requests"]["cpu"].as_str().map(cpu_m).unwrap_or(0.0))
        .sum();
    used * 100.0 / ALLOCATABLE_CPU_M
}

fn cpu_m(q: &str) -> f64 {
    match q.strip_suffix('m') {
        Some(m) => m.parse().unwrap_or(0.0),
        None => q.parse::<f64>().map(|c| c * 1000.0).unwrap_or(0.0),
    }
}

/// The service's requests since the log's last reset, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Requests {
    /// Reads (get, list, watch) of anything but Leases.
    pub reads: u64,
    /// Writes to the cluster a move makes (pods, PVCs, Deployments, evictions, Events).
    pub writes: u64,
    /// Writes of PodMigrations: creation, status, finalizer.
    pub migration_writes: u64,
    /// Leader election (reads and writes of its Lease).
    pub lease: u64,
    /// TokenReviews and SubjectAccessReviews: checking the API's callers.
    pub reviews: u64,
}

impl Requests {
    /// Every request but leader election's.
    pub fn total(&self) -> u64 {
        self.reads + self.writes + self.migration_writes
    }
}

pub fn service_requests(env: &Env) -> Requests {
    let agent = sdi_migration::cluster::USER_AGENT;
    let mut r = Requests::default();
    for (k, n) in env.sim.api().requests.counts().into_iter().filter(|(k, _)| k.agent == agent) {
        if ["authentication.k8s.io", "authorization.k8s.io"].contains(&k.group.as_str()) {
            // Checking the API's callers: per caller and cache period, not per move.
            r.reviews += n;
        } else if k.resource.starts_with("leases") {
            r.lease += n;
        } else if ["get", "list", "watch"].contains(&k.verb.as_str()) {
            r.reads += n;
        } else if k.resource.starts_with("podmigrations") {
            r.migration_writes += n;
        } else {
            r.writes += n;
        }
    }
    r
}

/// Run the scenario at 10× until the hot nodes are relieved, every job has ended
/// and at least `cycles` cycles ran; then `idle_cycles` more.
pub async fn run(slow: bool, settings: Settings, cycles: u64, idle_cycles: u64) -> (Env, Outcome) {
    let env = Env::start_scenario(&scenario(slow), settings, 10.0).await;
    // `web` is created a simulated second in: every replica Ready before anything is measured.
    wait_for(Duration::from_secs(120), "web's three replicas to be Ready", || {
        let web = env.sim.dynamic("v1", "pods", Some("default")).unwrap().list("app=web", "").unwrap_or_default();
        let n = web.iter().filter(|p| ready(p)).count();
        async move { if n == 3 { Ok(()) } else { Err(format!("{n} Ready")) } }
    })
    .await;
    let log = &env.sim.api().requests;
    log.enable();
    let rebalancer = env.service().rebalancer.clone();
    wait_for(Duration::from_secs(30), "the service's cache to sync", || {
        let synced = rebalancer.cache.synced();
        async move { if synced { Ok(()) } else { Err("not synced".into()) } }
    })
    .await;

    // Fewest Ready replicas of web, from every change on.
    let fewest = Arc::new(AtomicUsize::new(usize::MAX));
    let watcher = {
        let (fewest, pods) = (fewest.clone(), env.sim.dynamic("v1", "pods", Some("default")).unwrap());
        let mut changes = Box::pin(pods.watch());
        tokio::spawn(async move {
            while changes.next().await.is_some() {
                let web = pods.list("app=web", "").unwrap_or_default();
                fewest.fetch_min(web.iter().filter(|p| ready(p)).count(), Ordering::Relaxed);
            }
        })
    };

    wait_for(Duration::from_secs(60), "w1 and w2 to reach 95%", || async {
        let hot: Vec<f64> = HOT.iter().map(|n| cpu_pct(&env, n)).collect();
        let filled = ["a", "b", "c", "d"].iter().all(|p| env.pod("default", p).is_some_and(|p| ready(&p)));
        if filled && hot.iter().all(|p| *p > 94.0) { Ok(()) } else { Err(format!("{hot:?}")) }
    })
    .await;
    log.reset();
    let (t0, cycles0) = (Instant::now(), rebalancer.cycles());
    let mut relieved_after = None;
    let runner = env.service().runner.clone();
    wait_for(Duration::from_secs(180), "relief, every job ended and enough cycles", || {
        let hot = (1..=6).any(|i| cpu_pct(&env, &format!("w{i}")) > 85.0);
        if !hot && relieved_after.is_none() {
            relieved_after = Some(t0.elapsed());
        }
        let active = runner.active();
        let ran = rebalancer.cycles() - cycles0;
        async move {
            if !hot && active == 0 && ran >= cycles {
                Ok(())
            } else {
                Err(format!("hot {hot}, {active} jobs, {ran} cycles"))
            }
        }
    })
    .await;
    let requests = service_requests(&env);
    let ran = rebalancer.cycles() - cycles0;

    log.reset();
    let idle0 = rebalancer.cycles();
    wait_for(Duration::from_secs(60), "idle cycles", || {
        let ran = rebalancer.cycles() - idle0;
        async move { if ran >= idle_cycles { Ok(()) } else { Err(format!("{ran} cycles")) } }
    })
    .await;
    let idle = service_requests(&env);
    watcher.abort();

    let mut jobs: Vec<Value> = env.get("/api/v1/migrations?limit=1000").await.1.as_array().unwrap().clone();
    jobs.reverse();
    let hot_after: Vec<(String, f64)> = HOT.iter().map(|n| (n.to_string(), cpu_pct(&env, n))).collect();
    let nodes_left_hot = (1..=6).filter(|i| cpu_pct(&env, &format!("w{i}")) > 85.0).count();
    let outcome = Outcome {
        jobs,
        hot_after,
        nodes_left_hot,
        relieved_after,
        fewest_ready: fewest.load(Ordering::Relaxed),
        requests,
        idle,
        idle_cycles: rebalancer.cycles() - idle0,
        cycles: ran,
    };
    (env, outcome)
}
