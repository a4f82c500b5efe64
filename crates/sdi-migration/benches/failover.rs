//! Failover: two replicas (`sdi-migration run` processes) against kube-sim, the
//! leader killed (`kill -9`) while a `recreate` waits for its new pod; how long
//! until the other replica holds the lease, resumes the migration (its first
//! write of the PodMigration's status) and ends it. Median of RUNS (default 5).
//! Anchor: the lease duration (3 s here, 15 s by default), which bounds the
//! takeover from below.
//!
//!     cargo bench -p sdi-migration --bench failover
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::replicas::{LEASE, Replicas};

const WORKLOADS: &str = r#"
workloads:
  - {kind: Pod, name: solo, nodeName: w1, labels: {app: solo}, containers: [{name: app, requests: {cpu: 100m, memory: 64Mi}}]}
"#;

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs: usize = std::env::var("RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let (mut lease, mut resumed, mut ended) = (Vec::new(), Vec::new(), Vec::new());
    println!("{:>4} {:>9} {:>10} {:>9} {:>10}", "run", "lease s", "resumed s", "ended s", "outcome");
    for run in 1..=runs {
        let mut r = Replicas::start(WORKLOADS).await;
        let leader = r.leader().await;
        let other = 1 - leader;
        r.create("move", "solo", "w1", "w2", "recreate");
        r.until_step("move", "create-pod").await;
        let killed = Instant::now();
        r.replicas[leader].kill().await;
        let l = r.until_holder(other, killed).await.as_secs_f64();
        let s = r.until_resumed_by("move", other, killed).await.as_secs_f64();
        let o = r.finished("move").await;
        let e = killed.elapsed().as_secs_f64();
        println!("{run:>4} {l:>9.2} {s:>10.2} {e:>9.2} {:>10}", o["status"]["phase"].as_str().unwrap());
        lease.push(l);
        resumed.push(s);
        ended.push(e);
        for replica in &mut r.replicas {
            replica.kill().await;
        }
        r.env.sim.stop();
    }
    let (l, s, e) = (median(&mut lease), median(&mut resumed), median(&mut ended));
    println!();
    println!(
        "median of {runs}: lease taken {l:.2} s ({:.2}x the {LEASE} s lease), migration resumed {s:.2} s, ended {e:.2} s",
        l / LEASE as f64
    );
}
