//! kube-sim API server benchmark: GET of one pod, LIST of 10,000 pods, watch
//! fan-out to 10 watchers, and memory per 10,000 stored pods. Prints figures
//! and the ratio to the anchor (at least 10,000 GET/s, so the simulator is
//! never the bottleneck of later benchmarks).
//!
//! Run: `cargo bench -p kube-sim --bench apiserver` (server and load generator
//! share this machine's cores, as they would in a test run).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{load, pct, rss_kib};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube_sim::Cluster;
use serde_json::json;

const PODS: usize = 10_000;
/// Rounds of the JSON/protobuf GET comparison (each runs both formats).
const GET_ROUNDS: u32 = 10;

const GET_ANCHOR_PER_SEC: f64 = 10_000.0;
/// Writes per second during the watch fan-out phase.
const WRITE_RATE: f64 = 500.0;

fn pod(i: usize) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": format!("bench-{i:05}"), "labels": {"app": format!("app-{}", i % 50), "tier": "edge"},
                     "annotations": {"male.keti.dev/latency": "0.4"}},
        "spec": {"nodeName": format!("node-{}", i % 100), "containers": [
            {"name": "main", "image": "registry.example/robot/nav:1.4.2",
             "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
             "ports": [{"containerPort": 8080, "name": "http"}],
             "env": [{"name": "ROS_DOMAIN_ID", "value": "7"}]}]}
    }))
    .expect("valid pod")
}

/// The `bench/t` annotation of a watch event line.
fn stamp(line: &[u8]) -> u64 {
    const KEY: &[u8] = b"\"bench/t\":\"";
    line.windows(KEY.len())
        .position(|w| w == KEY)
        .map(|p| {
            line[p + KEY.len()..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'))
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::var("BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let dur = Duration::from_secs(secs);
    let cluster = Cluster::new();
    let server = cluster.serve("127.0.0.1:0".parse().expect("addr")).await.expect("serve");
    let base = server.url();
    println!(
        "kube-sim API server benchmark ({} cores, {secs}s per phase)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // Memory per 10,000 stored pods (RSS growth while storing them).
    let before = rss_kib();
    let pods = cluster.typed::<Pod>(Some("default"));
    let t = Instant::now();
    for i in 0..PODS {
        pods.create(&pod(i)).expect("create pod");
    }
    let create_secs = t.elapsed().as_secs_f64();
    let after = rss_kib();
    let (body_bytes, kept_bytes) = common::stored_pod_json_bytes(&cluster);
    println!(
        "store   {PODS} pods created in-process in {create_secs:.2}s ({:.0}/s); RSS +{:.1} MiB = {:.1} KiB/pod (JSON itself {:.1} KiB/pod, kept compressed in {:.2})",
        PODS as f64 / create_secs,
        (after.saturating_sub(before)) as f64 / 1024.0,
        (after.saturating_sub(before)) as f64 / PODS as f64,
        body_bytes as f64 / PODS as f64 / 1024.0,
        kept_bytes as f64 / PODS as f64 / 1024.0
    );

    let client = {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
    }
    .pool_max_idle_per_host(64)
    .build()
    .expect("client");

    // GET of one pod, in JSON and in protobuf (what kubectl 1.32+ and
    // client-go ask for), alternated over three rounds so that drift in the
    // shared machine's load does not favour one of them.
    let url = format!("{base}/api/v1/namespaces/default/pods/bench-04242");
    let get = |accept: Option<&'static str>| {
        let (c, url) = (client.clone(), url.clone());
        move || {
            let (c, url) = (c.clone(), url.clone());
            async move {
                let req = match accept {
                    Some(a) => c.get(&url).header("accept", a),
                    None => c.get(&url),
                };
                match req.send().await {
                    Ok(r) if r.status() == 200 => {
                        r.bytes().await.is_ok_and(|b| accept.is_none() || b.starts_with(b"k8s\0"))
                    }
                    _ => false,
                }
            }
        }
    };
    let (mut json, mut pb) = ((0u64, Vec::new()), (0u64, Vec::new()));
    let mut ratios = Vec::new();
    for round in 0..GET_ROUNDS {
        // Each round runs both, the first of the pair alternating: a drift
        // in the machine's speed within a round favours neither.
        let json_first = round % 2 == 0;
        let mut pair = Vec::new();
        for proto in [!json_first, json_first] {
            let accept = proto.then_some("application/vnd.kubernetes.protobuf");
            pair.push((proto, load(16, dur / GET_ROUNDS, get(accept)).await));
        }
        let (mut nj, mut np) = (0, 0);
        for (proto, (n, lats)) in pair {
            let side = if proto { &mut pb } else { &mut json };
            side.0 += n;
            side.1.extend(lats);
            if proto { np = n } else { nj = n }
        }
        ratios.push(np as f64 / nj.max(1) as f64);
    }
    ratios.sort_by(f64::total_cmp);
    json.1.sort_unstable();
    pb.1.sort_unstable();
    let quartile = |q: usize| ratios[(ratios.len() - 1) * q / 4];
    let rate = json.0 as f64 / secs as f64;
    println!(
        "GET     {rate:>9.0} req/s  p50 {:.2} ms  p99 {:.2} ms   (16 connections)   anchor {GET_ANCHOR_PER_SEC:.0}/s -> ratio {:.2}x",
        pct(&json.1, 0.5),
        pct(&json.1, 0.99),
        rate / GET_ANCHOR_PER_SEC
    );
    println!(
        "GET pb  {:>9.0} req/s  p50 {:.2} ms  p99 {:.2} ms   (16 connections)   protobuf/JSON -> ratio {:.2}x (median of {GET_ROUNDS} rounds; middle half {:.2}–{:.2}; totals {:.2}x)",
        pb.0 as f64 / secs as f64,
        pct(&pb.1, 0.5),
        pct(&pb.1, 0.99),
        quartile(2),
        quartile(1),
        quartile(3),
        pb.0 as f64 / json.0.max(1) as f64
    );

    // LIST of 10,000 pods.
    let url = format!("{base}/api/v1/namespaces/default/pods");
    let size = client.get(&url).send().await.expect("list").bytes().await.expect("body").len();
    let c = client.clone();
    let (n, lats) = load(2, dur, move || {
        let c = c.clone();
        let url = url.clone();
        async move {
            match c.get(&url).send().await {
                Ok(r) => r.bytes().await.is_ok_and(|b| b.len() > 1_000_000),
                Err(_) => false,
            }
        }
    })
    .await;
    let rate = n as f64 / secs as f64;
    println!(
        "LIST    {rate:>9.1} req/s  p50 {:.1} ms  p99 {:.1} ms   ({PODS} pods, {:.1} MiB per response, {:.0} MiB/s)",
        pct(&lats, 0.5),
        pct(&lats, 0.99),
        size as f64 / 1048576.0,
        rate * size as f64 / 1048576.0
    );
    let json_list_rate = rate;

    // The same LIST in protobuf.
    let url = format!("{base}/api/v1/namespaces/default/pods");
    let pb_size = client
        .get(&url)
        .header("accept", "application/vnd.kubernetes.protobuf")
        .send()
        .await
        .expect("list")
        .bytes()
        .await
        .expect("body")
        .len();
    let c = client.clone();
    let (n, lats) = load(2, dur, move || {
        let c = c.clone();
        let url = url.clone();
        async move {
            match c.get(&url).header("accept", "application/vnd.kubernetes.protobuf").send().await {
                Ok(r) => r.bytes().await.is_ok_and(|b| b.len() > 1_000_000),
                Err(_) => false,
            }
        }
    })
    .await;
    let rate = n as f64 / secs as f64;
    println!(
        "LIST pb {rate:>9.1} req/s  p50 {:.1} ms  p99 {:.1} ms   ({PODS} pods, {:.1} MiB per response)   protobuf/JSON -> ratio {:.2}x",
        pct(&lats, 0.5),
        pct(&lats, 0.99),
        pb_size as f64 / 1048576.0,
        rate / json_list_rate
    );

    // Watch fan-out: 10 watchers, each sees every change.
    let watchers = 10;
    let updates: u64 = 2_000;
    let rv = cluster.api().store.current_rv();
    let received = Arc::new(AtomicU64::new(0));
    let origin = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let url = format!("{base}/api/v1/namespaces/default/pods?watch=true&resourceVersion={rv}&timeoutSeconds=120");
        let c = client.clone();
        let received = received.clone();
        tasks.push(tokio::spawn(async move {
            let mut resp = c.get(&url).send().await.expect("watch");
            let mut buf = Vec::new();
            let mut lats = Vec::new();
            while (lats.len() as u64) < updates {
                let Ok(Some(chunk)) = resp.chunk().await else { break };
                buf.extend_from_slice(&chunk);
                while let Some(i) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=i).collect();
                    // A cheap client (no full JSON parse), so the figure is the server's.
                    let sent = stamp(&line);
                    let now = origin.elapsed().as_micros() as u64;
                    lats.push(now.saturating_sub(sent));
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
            lats
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    // The writer runs on its own thread, as a client would, not on the server's workers.
    let writer = pods.clone();
    let write_secs = tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        for i in 0..updates {
            // Paced at WRITE_RATE so latency measures delivery, not a saturated core.
            let due = Duration::from_secs_f64(i as f64 / WRITE_RATE);
            if let Some(wait) = due.checked_sub(t.elapsed()) {
                std::thread::sleep(wait);
            }
            let now = origin.elapsed().as_micros().to_string();
            writer
                .patch_merge(
                    &format!("bench-{:05}", i as usize % PODS),
                    &json!({"metadata": {"annotations": {"bench/t": now}}}),
                )
                .expect("patch");
        }
        t.elapsed().as_secs_f64()
    })
    .await
    .expect("writer");
    let mut lats = Vec::new();
    for t in tasks {
        lats.extend(
            tokio::time::timeout(Duration::from_secs(120), t).await.expect("watchers finish").expect("watch task"),
        );
    }
    let total = t.elapsed().as_secs_f64();
    lats.sort_unstable();
    println!(
        "WATCH   {:>9.0} events/s delivered to {watchers} watchers ({} events; {updates} writes paced at {:.0}/s)  write->watcher p50 {:.2} ms  p99 {:.2} ms",
        received.load(Ordering::Relaxed) as f64 / total,
        received.load(Ordering::Relaxed),
        updates as f64 / write_secs,
        pct(&lats, 0.5),
        pct(&lats, 0.99),
    );
    cluster.stop();
    server.shutdown().await;
}
