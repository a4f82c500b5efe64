//! The simulated cluster at benchmark scale: load the generated 5,000-node /
//! 150,000-pod scenario, time how long until every pod is Running (steady
//! state), measure memory, then API throughput under that load: GET of one
//! pod, LIST of one Deployment's pods, LIST of all nodes, and a watch fan-out.
//!
//! Run: `cargo bench -p kube-sim --bench cluster` (`BENCH_NODES`, `BENCH_PODS`
//! and `BENCH_SECS` scale it down for a quick look).

mod common;

use std::time::{Duration, Instant};

use common::{cpu_seconds, load, pct, rss_kib};
use kube_sim::{Cluster, ServerConfig};

fn env_or<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

#[tokio::main]
async fn main() {
    let nodes: usize = env_or("BENCH_NODES", 5_000);
    let pods: usize = env_or("BENCH_PODS", 150_000);
    let secs: u64 = env_or("BENCH_SECS", 5);
    let dur = Duration::from_secs(secs);
    let text = kube_sim::scenario::generate::generate(nodes, pods, 1);
    let scenario = kube_sim::scenario::parse("generated", &text).expect("the generated scenario parses");
    println!(
        "kube-sim cluster benchmark: {nodes} nodes, {pods} pods ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let rss0 = rss_kib();
    let cpu0 = cpu_seconds();
    let cluster = Cluster::with(ServerConfig::default(), kube_sim::Clock::default());
    let t0 = Instant::now();
    cluster.load_scenario(&scenario).expect("scenario loads");
    let loaded = t0.elapsed();
    let (mut scheduled_at, mut running_at) = (None, None);
    let mut last_report = Instant::now();
    loop {
        let (total, bound, running, unschedulable, why) = {
            let s = cluster.sim().read();
            // Unschedulable by a verdict that saw every node (an early verdict is retried).
            let all_nodes = format!("0/{} nodes are available", s.nodes.len());
            let (mut bound, mut running, mut stuck, mut why) = (0, 0, 0, None);
            for p in s.pods.values() {
                let status = p.status.as_ref();
                bound += usize::from(p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some());
                running += usize::from(status.and_then(|s| s.phase.as_deref()) == Some("Running"));
                let unschedulable = status.and_then(|s| s.conditions.as_ref()).and_then(|cs| {
                    cs.iter().find(|c| c.type_ == "PodScheduled" && c.reason.as_deref() == Some("Unschedulable"))
                });
                if let Some(m) = unschedulable.and_then(|c| c.message.as_deref()).filter(|m| m.starts_with(&all_nodes))
                {
                    stuck += 1;
                    why.get_or_insert_with(|| format!("{}: {m}", p.metadata.name.as_deref().unwrap_or_default()));
                }
            }
            (s.pods.len(), bound, running, stuck, why)
        };
        if scheduled_at.is_none() && bound + unschedulable >= pods {
            scheduled_at = Some(t0.elapsed());
        }
        // Steady: every pod runs, or the scheduler has said why it cannot (no
        // preemption here, so a full pool stays full).
        if total >= pods && running + unschedulable >= total {
            running_at = Some((t0.elapsed(), cpu_seconds() - cpu0));
            if unschedulable > 0 {
                println!("  {unschedulable} pods unschedulable, e.g. {}", why.unwrap_or_default());
            }
            break;
        }
        if last_report.elapsed() > Duration::from_secs(15) {
            println!(
                "  … {:>5.0}s: {total} pods, {bound} bound, {running} running, {unschedulable} unschedulable",
                t0.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        if t0.elapsed() > Duration::from_secs(1800) {
            println!("  gave up after 30 min: {total} pods, {bound} bound, {running} running");
            break;
        }
        // Counting 150,000 pods holds the control plane's cache lock: look
        // once a second (the figures are ±1 s).
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let rss = rss_kib().saturating_sub(rss0);
    println!(
        "steady  objects created in {:.1}s; every pod placed (or found unschedulable) after {:.1}s, Running after {:.1}s",
        loaded.as_secs_f64(),
        scheduled_at.map_or(f64::NAN, |d| d.as_secs_f64()),
        running_at.map_or(f64::NAN, |(d, _)| d.as_secs_f64())
    );
    if let Some((wall, cpu)) = running_at {
        println!(
            "steady  CPU {cpu:.1}s until every pod ran ({:.2} cores busy on average; {:.0} µs of CPU per pod)",
            cpu / wall.as_secs_f64(),
            cpu * 1e6 / pods as f64
        );
    }
    let (json, kept) = common::stored_pod_json_bytes(&cluster);
    let per_pod = |b: usize| b as f64 / pods as f64 / 1024.0;
    println!("memory  stored pod JSON {:.1} KiB per pod, kept compressed in {:.2} KiB", per_pod(json), per_pod(kept));
    println!(
        "memory  RSS +{:.0} MiB for {nodes} nodes and {pods} pods ({:.1} KiB per pod, all state included)",
        rss as f64 / 1024.0,
        rss as f64 / pods as f64
    );

    let server = cluster.serve("127.0.0.1:0".parse().expect("addr")).await.expect("serve");
    let base = server.url();
    let client = {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
    }
    .pool_max_idle_per_host(64)
    .build()
    .expect("client");
    let (ns, name, app) = {
        let s = cluster.sim().read();
        let p = s.pods.values().next().expect("a pod");
        (
            p.metadata.namespace.clone().unwrap_or_default(),
            p.metadata.name.clone().unwrap_or_default(),
            p.metadata.labels.as_ref().and_then(|l| l.get("app").cloned()).unwrap_or_default(),
        )
    };
    let get = |url: String, min: usize| {
        let c = client.clone();
        move || {
            let c = c.clone();
            let url = url.clone();
            async move {
                match c.get(&url).send().await {
                    Ok(r) if r.status() == 200 => r.bytes().await.is_ok_and(|b| b.len() >= min),
                    _ => false,
                }
            }
        }
    };
    let (n, lats) = load(16, dur, get(format!("{base}/api/v1/namespaces/{ns}/pods/{name}"), 100)).await;
    println!(
        "GET     {:>9.0} req/s  p50 {:.2} ms  p99 {:.2} ms   (one pod, 16 connections)   anchor 10000/s -> ratio {:.2}x",
        n as f64 / secs as f64,
        pct(&lats, 0.5),
        pct(&lats, 0.99),
        n as f64 / secs as f64 / 10_000.0
    );
    let url = format!("{base}/api/v1/namespaces/{ns}/pods?labelSelector=app%3D{app}");
    let size = client.get(&url).send().await.expect("list").bytes().await.expect("body").len();
    let (n, lats) = load(4, dur, get(url, 100)).await;
    println!(
        "LIST    {:>9.1} req/s  p50 {:.1} ms  p99 {:.1} ms   (one Deployment's pods by label, {:.1} MiB)",
        n as f64 / secs as f64,
        pct(&lats, 0.5),
        pct(&lats, 0.99),
        size as f64 / 1048576.0
    );
    let url = format!("{base}/api/v1/nodes");
    let size = client.get(&url).send().await.expect("list").bytes().await.expect("body").len();
    let (n, lats) = load(2, dur, get(url, 100)).await;
    println!(
        "LIST    {:>9.1} req/s  p50 {:.1} ms  p99 {:.1} ms   (all {nodes} nodes, {:.1} MiB)",
        n as f64 / secs as f64,
        pct(&lats, 0.5),
        pct(&lats, 0.99),
        size as f64 / 1048576.0
    );
    let t = Instant::now();
    let all = client.get(format!("{base}/api/v1/pods")).send().await.expect("list").bytes().await.expect("body");
    println!("LIST    all {pods} pods in {:.2}s ({:.0} MiB)", t.elapsed().as_secs_f64(), all.len() as f64 / 1048576.0);
    // Watch fan-out: 10 watchers of the namespace see every pod change as the kubelets write.
    let rv = cluster.api().store.current_rv();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let c = client.clone();
        let url = format!("{base}/api/v1/namespaces/{ns}/pods?watch=true&resourceVersion={rv}&timeoutSeconds={secs}");
        tasks.push(tokio::spawn(async move {
            let mut r = c.get(&url).send().await.expect("watch");
            let mut events = 0u64;
            while let Ok(Some(chunk)) = r.chunk().await {
                events += chunk.iter().filter(|b| **b == b'\n').count() as u64;
            }
            events
        }));
    }
    // Generate changes: scale one Deployment of the namespace up and down.
    let scale_url = |replicas: i32| (format!("{base}/apis/apps/v1/namespaces/{ns}/deployments/{app}/scale"), replicas);
    let t = Instant::now();
    let original = {
        let s = cluster.sim().read();
        s.deployments.get(&format!("{ns}/{app}")).and_then(|d| d.spec.as_ref().and_then(|s| s.replicas)).unwrap_or(1)
    };
    for r in [original + 200, original] {
        let (u, r) = scale_url(r);
        let _ = client
            .patch(u)
            .header("content-type", "application/merge-patch+json")
            .body(format!("{{\"spec\":{{\"replicas\":{r}}}}}"))
            .send()
            .await;
        tokio::time::sleep(dur / 2).await;
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap_or(0);
    }
    println!(
        "WATCH   {:>9.0} events/s delivered to 10 watchers ({total} events while scaling {ns}/{app} by 200 and back)",
        total as f64 / t.elapsed().as_secs_f64()
    );
    cluster.stop();
    server.shutdown().await;
}
