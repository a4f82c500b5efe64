//! The side-by-side comparison with the Kubernetes descheduler (v0.32.2,
//! LowNodeUtilization 50/85) on the same cluster state, here on kube-sim:
//! six workers, two at 95% CPU requests, a three-replica Deployment under a
//! PodDisruptionBudget, bare pods; lower bound two moves. Run with pods that
//! start and stop within a second, and with pods that take a simulated minute.
//! Anchors (the descheduler's figures on a real API server): 2 moves, 0 nodes
//! left hot, fewer than 3 of 3 Ready replicas at some point, 19 API requests
//! for its whole run of 2 evictions (9.5 per move).
//!
//!     cargo bench -p sdi-migration --bench side_by_side
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use common::side_by_side;

const DESCHEDULER_MOVES: f64 = 2.0;
const DESCHEDULER_REQUESTS_PER_MOVE: f64 = 19.0 / 2.0;
const SPEED: f64 = 10.0;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    println!(
        "side-by-side scenario (scenarios/side-by-side.yaml), requests basis, 1 cycle per real second at {SPEED}x"
    );
    for (label, slow) in [("fast pods (start/stop ~1 s)", false), ("slow pods (start/stop 60 s)", true)] {
        let (_env, o) = runtime.block_on(side_by_side::run(slow, side_by_side::rebalancing(), 10, 5));
        let moves = o.jobs.len() as f64;
        let moved: Vec<&str> = o.jobs.iter().map(|j| j["details"]["pod_name"].as_str().unwrap_or("?")).collect();
        let per_move = if moves > 0.0 { o.requests.total() as f64 / moves } else { 0.0 };
        println!("\n{label}:");
        println!(
            "  moves:                      {moves} / lower bound 2 = {:.2}  (descheduler {DESCHEDULER_MOVES}: {:.2}x its count) {moved:?}",
            moves / 2.0,
            moves / DESCHEDULER_MOVES
        );
        println!("  nodes left hot:             {}  (descheduler 0)", o.nodes_left_hot);
        println!(
            "  hot nodes end at:           {}",
            o.hot_after.iter().map(|(n, p)| format!("{n} {p:.1}%")).collect::<Vec<_>>().join(", ")
        );
        match o.relieved_after {
            Some(t) => println!(
                "  time until no node is hot:  {:.1} s real = {:.0} simulated s (no descheduler figure for this)",
                t.as_secs_f64(),
                t.as_secs_f64() * SPEED
            ),
            None => println!("  time until no node is hot:  never"),
        }
        println!("  fewest Ready replicas:      {} of 3  (descheduler: fewer than 3)", o.fewest_ready);
        println!(
            "  API requests:               {} for the run = {per_move:.1} per move  (descheduler {DESCHEDULER_REQUESTS_PER_MOVE:.1}: {:.2}x): {} reads, {} writes to pods and Events, {} PodMigration writes (create, status per step, finalizer); plus {} Lease requests of leader election",
            o.requests.total(),
            per_move / DESCHEDULER_REQUESTS_PER_MOVE,
            o.requests.reads,
            o.requests.writes,
            o.requests.migration_writes,
            o.requests.lease
        );
        println!(
            "  API requests per idle cycle: {:.1} over {} idle cycles (leader election: {} Lease requests meanwhile)",
            o.idle.total() as f64 / o.idle_cycles.max(1) as f64,
            o.idle_cycles,
            o.idle.lease
        );
        println!("  rebalancer cycles while relieving: {}", o.cycles);
    }
}
