//! Shared by the benchmarks: memory readings, percentiles, a closed-loop load generator.
#![allow(dead_code)]

use std::sync::Arc;

/// The allocator of the `kube-sim` binary (see its main.rs), so the
/// benchmarks measure what the binary runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Resident memory of this process, KiB.
/// Bytes of stored pod JSON (the store's own encoding), summed over every
/// pod: as JSON, and as the store keeps it (compressed).
pub fn stored_pod_json_bytes(cluster: &kube_sim::Cluster) -> (usize, usize) {
    cluster
        .api()
        .store
        .snapshot(&kube_sim::resources::GroupResource::new("", "pods"))
        .iter_from(None)
        .fold((0, 0), |(json, kept), o| (json + o.body_len(), kept + o.body_footprint()))
}

pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4)
}

/// CPU time the process has used so far (user + system, every thread), in
/// seconds: what a phase cost, independent of how busy the machine is.
pub fn cpu_seconds() -> f64 {
    // /proc/self/stat: fields 14 and 15 (utime, stime) in clock ticks, counted
    // after the parenthesised command name, which may hold spaces.
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(0.0)
}

/// The `p` percentile of sorted microsecond samples, in milliseconds.
pub fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// Run `conc` loops of `f` for `dur`; returns (requests, sorted latencies in µs).
pub async fn load<F, Fut>(conc: usize, dur: Duration, f: F) -> (u64, Vec<u64>)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let f = Arc::new(f);
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let f = f.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut lats = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                assert!(f().await, "request failed");
                lats.push(t.elapsed().as_micros() as u64);
            }
            lats
        }));
    }
    tokio::time::sleep(dur).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("load task"));
    }
    all.sort_unstable();
    (all.len() as u64, all)
}
