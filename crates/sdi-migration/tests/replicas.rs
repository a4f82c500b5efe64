//! Two replicas of the service (`sdi-migration run` processes) against one
//! cluster: the leader is killed (`kill -9`) in the middle of each strategy, or
//! paused past its lease, and the other replica takes over. Nothing is lost:
//! the migration ends completed or failed-and-undone, every workload keeps its
//! pods, a surge never has fewer Ready replicas than desired, and the migration
//! is recorded exactly once (one InfluxDB point in a real influxd, one counter
//! increment).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::replicas::{Replicas, watch_min_ready};

const WORKLOADS: &str = r#"
workloads:
  - {kind: Pod, name: solo, nodeName: w1, labels: {app: solo}, containers: [{name: app, requests: {cpu: 100m, memory: 64Mi}}]}
  - kind: Deployment
    name: web
    replicas: 3
    labels: {app: web}
    containers: [{name: app, requests: {cpu: 100m, memory: 64Mi}}]
  - kind: Deployment
    name: pinned
    replicas: 1
    labels: {app: pinned}
    containers: [{name: app, requests: {cpu: 100m, memory: 64Mi}}]
  - kind: StatefulSet
    name: db
    replicas: 2
    labels: {app: db}
    containers: [{name: app, requests: {cpu: 100m, memory: 64Mi}}]
"#;

/// Pods labelled `app=<app>`: (name, node, serving = Ready and not terminating).
fn pods(r: &Replicas, app: &str) -> Vec<(String, String, bool)> {
    r.env
        .pods("default")
        .iter()
        .filter(|p| p["metadata"]["labels"]["app"] == app)
        .map(|p| {
            let serving = p["metadata"]["deletionTimestamp"].is_null() && common::ready(p);
            (p["metadata"]["name"].as_str().unwrap().to_owned(), common::node_of(p).to_owned(), serving)
        })
        .collect()
}

/// Waits until `app` has exactly `n` pods, all serving; returns their nodes.
async fn settled(r: &Replicas, app: &str, n: usize) -> Vec<String> {
    common::wait_for(Duration::from_secs(60), &format!("{n} serving {app} pods and nothing else"), || {
        let now = pods(r, app);
        async move {
            if now.len() == n && now.iter().all(|p| p.2) {
                Ok(now.into_iter().map(|p| p.1).collect())
            } else {
                Err(format!("{now:?}"))
            }
        }
    })
    .await
}

/// Kill the leader once `kill_after` is done (so the next step is in flight),
/// and check the other replica's takeover.
async fn leader_killed_mid_move(strategy: &str, app: &str, replicas: usize, kill_after: &str) {
    let mut r = Replicas::start(WORKLOADS).await;
    let leader = r.leader().await;
    let other = 1 - leader;
    let (pod, source) = pods(&r, app).into_iter().map(|p| (p.0, p.1)).next().unwrap();
    let target = ["w1", "w2", "w3"].into_iter().find(|n| *n != source).unwrap();
    let watch = watch_min_ready(&r.env, app);

    r.create("move", &pod, &source, target, strategy);
    let o = r.until_step("move", kill_after).await;
    assert_eq!(o["status"]["leader"], r.replicas[leader].name.as_str(), "the leader runs it: {o:#}");
    assert_eq!(o["status"]["phase"], "running", "{o:#}");
    let killed = Instant::now();
    r.replicas[leader].kill().await;
    let took_lease = r.until_holder(other, killed).await;
    let resumed = r.until_resumed_by("move", other, killed).await;
    let o = r.finished("move").await;
    // Finished or undone, never stuck, and said which.
    let phase = o["status"]["phase"].as_str().unwrap();
    eprintln!("{strategy}: lease taken {took_lease:?}, migration resumed {resumed:?} after the kill; {phase}");
    let nodes = settled(&r, app, replicas).await;
    match phase {
        // An evicted pod's replacement goes where the scheduler puts it.
        "completed" if strategy == "evict" => {}
        "completed" => assert!(nodes.iter().any(|n| n == target), "moved to {target}: {nodes:?} {o:#}"),
        "failed" => {
            assert!(o["status"]["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "says why: {o:#}");
            if strategy == "recreate" {
                assert_eq!(nodes, vec![source.clone()], "undone: the original pod still serves: {o:#}");
            }
            if strategy == "pin" {
                let d = r.env.sim.dynamic("apps/v1", "deployments", Some("default")).unwrap().get(app).unwrap();
                let selector = &d["spec"]["template"]["spec"]["nodeSelector"];
                assert!(selector.get("kubernetes.io/hostname").is_none(), "undone: unpinned: {selector}");
            }
        }
        other => panic!("ended {other}: {o:#}"),
    }
    // The finalizer is released: deleting the finished object removes it.
    r.delete("move").await;

    // Recorded exactly once, by the replica that finished it.
    assert_eq!(r.points_for(&pod).await, 1, "one pod_migration point for {pod}");
    let http = r.env.http.clone();
    let counted = common::wait_for(Duration::from_secs(10), "the counter on the new leader", || {
        let m = r.replicas[other].metric(&http, "sdi_migrations_total");
        async move { m.await.filter(|v| *v >= 1.0).ok_or_else(|| "not yet".to_string()) }
    })
    .await;
    assert_eq!(counted, 1.0, "one increment of sdi_migrations_total");
    assert_eq!(r.replicas[other].metric(&http, "sdi_leader").await, Some(1.0));

    let (stop, min) = watch;
    let _ = stop.send(());
    let min = min.await.unwrap();
    if strategy == "surge" {
        assert!(min >= replicas, "a surge never has fewer than {replicas} Ready replicas; saw {min}");
    }
    assert!(took_lease >= Duration::from_secs(1), "the lease had to expire first: {took_lease:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_survives_the_leader_being_killed() {
    leader_killed_mid_move("recreate", "solo", 1, "create-pod").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surge_survives_the_leader_being_killed() {
    leader_killed_mid_move("surge", "web", 3, "create-copy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_survives_the_leader_being_killed() {
    leader_killed_mid_move("pin", "pinned", 1, "pin-node-selector").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evict_survives_the_leader_being_killed() {
    leader_killed_mid_move("evict", "db", 2, "evict").await;
}

/// Writes (not reads, not the Lease) the agent made, by resource.
fn writes_by(r: &Replicas, agent: &str) -> Vec<(String, u64)> {
    let mut w: Vec<(String, u64)> = r
        .env
        .sim
        .api()
        .requests
        .counts()
        .into_iter()
        .filter(|(k, _)| k.agent == agent && k.resource != "leases")
        .filter(|(k, _)| matches!(k.verb.as_str(), "create" | "update" | "patch" | "delete" | "deletecollection"))
        .map(|(k, n)| (format!("{} {}", k.verb, k.resource), n))
        .collect();
    w.sort();
    w
}

fn requests_by(r: &Replicas, agent: &str) -> u64 {
    r.env.sim.api().requests.total(agent)
}

/// A leader paused past its lease (SIGSTOP, then SIGCONT) finds another holder
/// and writes nothing more: its in-flight step is fenced off, the new leader
/// finishes or undoes the move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_writes_nothing_after_losing_its_lease() {
    let r = Replicas::start(WORKLOADS).await;
    r.env.sim.api().requests.enable();
    let leader = r.leader().await;
    let other = 1 - leader;
    let agent = r.replicas[leader].agent();
    let source = pods(&r, "solo")[0].1.clone();
    let target = if source == "w2" { "w3" } else { "w2" };

    r.create("paused", "solo", &source, target, "recreate");
    r.until_step("paused", "create-pod").await;
    r.replicas[leader].signal("-STOP");
    let paused = Instant::now();
    let took = r.until_holder(other, paused).await;
    assert!(took >= Duration::from_secs(1), "{took:?}");
    let before = writes_by(&r, &agent);
    assert!(!before.is_empty(), "the leader had written before its pause");
    let seen = requests_by(&r, &agent);

    r.replicas[leader].signal("-CONT");
    // It runs again: it asks the API server for the Lease and learns it lost.
    let http = r.env.http.clone();
    common::wait_for(Duration::from_secs(20), "the paused replica to resume and step down", || {
        let m = r.replicas[leader].metric(&http, "sdi_leader");
        let asked = requests_by(&r, &agent) > seen + 1;
        async move { if asked && m.await == Some(0.0) { Ok(()) } else { Err("not yet".to_string()) } }
    })
    .await;
    let o = r.finished("paused").await;
    assert!(matches!(o["status"]["phase"].as_str(), Some("completed" | "failed")), "{o:#}");
    settled(&r, "solo", 1).await;
    // Two more of its election rounds, for anything it had queued to try.
    let seen = requests_by(&r, &agent);
    common::wait_for(Duration::from_secs(20), "two more rounds of the paused replica", || {
        let n = requests_by(&r, &agent);
        async move { if n >= seen + 2 { Ok(()) } else { Err(format!("{n}")) } }
    })
    .await;
    assert_eq!(writes_by(&r, &agent), before, "no write after the lease was lost");
    assert_eq!(r.points_for("solo").await, 1);
}
