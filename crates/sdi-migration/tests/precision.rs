//! The rebalancer moves exactly what is needed: on the side-by-side scenario
//! (two of six workers at 95% CPU requests, lower bound two moves) with pods
//! that start and stop within a second and with pods that take a simulated
//! minute — where a move spans several cycles — it makes the lower bound of
//! moves, leaves each hot node between threshold − hysteresis and threshold,
//! moves no pod twice, never takes the budgeted Deployment below 3 of 3 Ready,
//! and costs no API request in an idle cycle.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[allow(unused_imports)]
use sdi_migration::jobs::JobStore;

use std::time::Duration;

use common::side_by_side::{self, Outcome};
use common::{Env, request, settings};
use sdi_migration::config::{PressureBasis, Settings};

fn check(o: &Outcome) {
    let moved: Vec<&str> = o.jobs.iter().map(|j| j["details"]["pod_name"].as_str().unwrap()).collect();
    assert_eq!(o.jobs.len(), 2, "the lower bound is two moves; moved {moved:?}: {:#?}", o.jobs);
    assert!(
        o.jobs.iter().all(|j| j["status"] == "completed" && j["details"]["origin"] == "rebalancer"),
        "{:#?}",
        o.jobs
    );
    let mut once = moved.clone();
    once.sort();
    once.dedup();
    assert_eq!(once.len(), moved.len(), "a pod moved twice: {moved:?}");
    assert!(moved.iter().all(|p| !p.contains("-migrated-")), "a moved pod moved again: {moved:?}");
    assert_eq!(o.nodes_left_hot, 0);
    for (node, pct) in &o.hot_after {
        assert!((75.0..=85.0).contains(pct), "{node} ends at {pct:.1}%, not between 75% and 85%");
    }
    assert_eq!(o.fewest_ready, 3, "web never below 3 of 3 Ready");
    assert!(o.cycles >= 10, "{} cycles", o.cycles);
    assert_eq!(o.idle.total(), 0, "an idle cycle costs no request ({} cycles): {:?}", o.idle_cycles, o.idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_pods_take_the_lower_bound_of_moves() {
    let (_env, o) = side_by_side::run(false, side_by_side::rebalancing(), 10, 3).await;
    check(&o);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_pods_take_the_lower_bound_of_moves_too() {
    let (_env, o) = side_by_side::run(true, side_by_side::rebalancing(), 10, 3).await;
    check(&o);
}

const BARE: &str = r#"
workloads:
  - kind: Pod
    name: trainer
    nodeName: w1
    containers: [{name: main, requests: {cpu: 500m, memory: 512Mi}}]
"#;

/// The reads of a move, counted by kube-sim for the service's client: the
/// whole pod (its copy needs the spec) and its usage; everything else comes
/// from the watch-fed cache. The post-move measurement (after
/// `POST_MIGRATION_SETTLE`, when the move is over) is one more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_costs_its_writes_and_two_reads() {
    let s = Settings { pressure_basis: PressureBasis::Requests, post_migration_settle: 3600, ..settings() };
    let env = Env::start_with(BARE, s, 5.0).await;
    let log = &env.sim.api().requests;
    log.enable();
    let cache = env.service().rebalancer.cache.clone();
    common::wait_for(Duration::from_secs(30), "the cache to sync", || {
        let synced = cache.synced();
        async move { if synced { Ok(()) } else { Err("not yet".to_string()) } }
    })
    .await;
    log.reset();
    let (code, created) = env.migrate(request("trainer", "default", "w1", "w2")).await;
    assert_eq!(code, 202, "{created}");
    let id = created["migration_id"].as_str().unwrap();
    env.reached_step(id, "measure", 30).await;
    // The leader's controller may open its watch of PodMigrations meanwhile:
    // once per leadership, not per move.
    let job = env.service().runner.store.get(id).unwrap();
    let steps = job.details.steps.len() as u64;
    // The status of the step just begun is on its way.
    common::wait_for(Duration::from_secs(10), "the status of every step begun", || {
        let r = side_by_side::service_requests(&env);
        async move { if r.migration_writes > steps { Ok(()) } else { Err(format!("{r:?}")) } }
    })
    .await;
    let mut r = side_by_side::service_requests(&env);
    let agent = sdi_migration::cluster::USER_AGENT;
    r.reads -= log
        .counts()
        .iter()
        .filter(|(k, _)| {
            k.agent == agent && k.resource == "podmigrations" && ["list", "watch"].contains(&k.verb.as_str())
        })
        .map(|(_, n)| n)
        .sum::<u64>();
    assert_eq!(r.reads, 2, "{r:?}: {:#?}", log.counts());
    // So far: the start Event, the copy, deleting the original, unmarking the copy.
    assert_eq!(r.writes, 4, "{r:?}");
    // The PodMigration: created, then its status once per step begun (measure is running).
    assert_eq!(r.migration_writes, 1 + steps, "{r:?} / {:?}", job.details.steps);
}

/// w1 at 97.5%: a Deployment's two pods (created once the other workers are
/// cordoned, so both land on w1) and a bare pod that the forced strategy
/// (evict) cannot move.
const FORCED: &str = r#"
name: forced
defaults: {startupSeconds: 1, shutdownSeconds: 1, heartbeatSeconds: 10}
nodes:
  - {name: cp, controlPlane: true, capacity: {cpu: "4", memory: 8Gi}}
  - {name: "w{i}", count: 3, capacity: {cpu: "4", memory: 16Gi, pods: 110}}
timeline:
  - {at: 0, cordon: w2}
  - {at: 0, cordon: w3}
  - at: 1s
    create:
      - kind: Deployment
        name: api
        replicas: 2
        containers: [{name: api, requests: {cpu: 500m, memory: 256Mi}}]
  - {at: 4s, uncordon: w2}
  - {at: 4s, uncordon: w3}
  - at: 4s
    create: [{kind: Pod, name: hog, nodeName: w1, containers: [{name: main, requests: {cpu: 2900m, memory: 1Gi}}]}]
"#;

/// With `MIGRATION_STRATEGY` forcing one, the plan names it, the policy is asked
/// about it, and the job runs it — for every move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_strategy_run_is_the_one_planned_and_approved() {
    let s =
        Settings { migration_strategy: sdi_migration::config::StrategyChoice::Evict, ..side_by_side::rebalancing() };
    let env = Env::start_scenario(FORCED, s, 10.0).await;
    let rebalancer = env.service().rebalancer.clone();
    let runner = env.service().runner.clone();
    common::wait_for(Duration::from_secs(60), "a move to end", || {
        let jobs = runner.store.list(&Default::default());
        let ended = jobs.iter().filter(|j| j.status.is_terminal()).count();
        let state: Vec<String> = jobs
            .iter()
            .map(|j| format!("{} {} {:?}", j.request.pod_name, j.status.as_str(), j.details.steps.last().map(|s| &s.name)))
            .collect();
        let decisions = rebalancer.recent().len();
        let pods: Vec<String> = env
            .pods("default")
            .iter()
            .map(|p| format!("{}@{}", p["metadata"]["name"].as_str().unwrap_or(""), common::node_of(p)))
            .collect();
        let (cycles, synced) = (rebalancer.cycles(), rebalancer.cache.synced());
        async move {
            if ended >= 1 {
                Ok(())
            } else {
                Err(format!(
                    "{ended} ended; jobs {state:?}; {decisions} decisions; pods {pods:?}; {cycles} cycles, synced {synced}"
                ))
            }
        }
    })
    .await;
    let decisions = rebalancer.recent();
    for job in runner.store.list(&Default::default()).iter().filter(|j| j.status.is_terminal()) {
        let d = decisions.iter().find(|d| d.migration_id.as_deref() == Some(job.id.as_str())).unwrap();
        assert_eq!(job.details.strategy, Some(d.strategy), "{job:?} / {d:?}");
        assert_eq!(d.strategy.as_str(), "evict", "MIGRATION_STRATEGY=evict is planned: {d:?}");
    }
    // The bare pod cannot be evicted: no other strategy was run for it.
    assert!(runner.store.list(&Default::default()).iter().all(|j| j.request.pod_name != "hog"));
}
