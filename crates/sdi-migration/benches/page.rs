//! The web view's first render with 5,000 simulated nodes: headless Chromium
//! opens `/` against the service watching a generated 5,000-node cluster
//! (rebalancer on, dry run) and the page marks when it has drawn the stream's
//! first snapshot (`performance.mark('sdi:first-render')`, from navigation
//! start). Then the largest table the page offers (1,000 nodes). Budgets:
//! first render 1,000 ms, the 1,000-node table 1,500 ms after asking; printed,
//! not asserted (the machine is shared).
//!
//!     cargo bench -p sdi-migration --bench page     (NODES=5000 PODS=150000 RUNS=5; needs chromium)
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::browser::{Browser, chromium};
use kube_sim::{Cluster, ServerConfig};
use sdi_migration::cluster::{self, ApiStats};
use sdi_migration::service::Service;

const FIRST_RENDER_BUDGET_MS: f64 = 1000.0;
const BIG_TABLE_BUDGET_MS: f64 = 1500.0;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let Some(bin) = chromium() else { return };
    let (nodes, pods, runs) = (env_or("NODES", 5000), env_or("PODS", 150_000), env_or("RUNS", 5).max(1));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let (sim, _server, service) = rt.block_on(async {
        let text = kube_sim::scenario::generate::generate(nodes, pods, 7);
        let scenario = kube_sim::scenario::parse("generated.yaml", &text).unwrap();
        let sim = Cluster::with(ServerConfig::default(), kube_sim::Clock::new(1.0));
        sim.load_scenario(&scenario).unwrap();
        let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let kc = dir.path().join("kubeconfig");
        std::fs::write(&kc, server.kubeconfig()).unwrap();
        let stats = Arc::new(ApiStats::default());
        let client = cluster::connect(Some(&kc), stats.clone()).await.unwrap();
        let settings = sdi_migration::config::Settings {
            enable_auto_migration: true,
            dry_run: true,
            migration_check_interval: 5,
            policy_engine_url: None,
            // The page's weight and speed are measured here, not access control.
            auth_mode: sdi_migration::access::AuthMode::None,
            ..common::settings()
        };
        let addr = "127.0.0.1:0".parse().unwrap();
        let service = Service::start(&settings, client, stats, addr).await.unwrap();
        (sim, server, service)
    });
    let http = reqwest::Client::new();
    let nodes_url = format!("{}/api/v1/nodes?limit=1", service.url());
    // Every node seen, then a rebalancer cycle planned on that (pods keep
    // arriving at 150,000: the page is measured on a cluster still settling).
    let cycles_then = std::cell::Cell::new(None);
    rt.block_on(common::wait_for(Duration::from_secs(600), "a steady cluster view", || async {
        let v: serde_json::Value = match http.get(&nodes_url).send().await {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(e) => return Err(e.to_string()),
        };
        let seen = v["total"].as_u64().unwrap_or(0) as usize + 3 >= nodes;
        match (seen, cycles_then.get()) {
            (false, _) => Err(format!("{v}")),
            (true, None) => {
                cycles_then.set(Some(service.rebalancer.cycles()));
                Err("waiting for a cycle".into())
            }
            (true, Some(c)) if service.rebalancer.cycles() > c => Ok(()),
            (true, Some(_)) => Err("waiting for a cycle".into()),
        }
    }));
    let summary: serde_json::Value =
        rt.block_on(async { http.get(&nodes_url).send().await.unwrap().json().await.unwrap() });
    let plan = service.rebalancer.latest().map(|c| (c.plan.moves.len(), c.plan.skipped.len())).unwrap_or_default();
    println!(
        "page: {} worker nodes ({} above the threshold), {pods} pods, last plan {} moves / {} skipped; steady after {:.1}s; page weight {} B",
        summary["total"],
        summary["pressured"],
        plan.0,
        plan.1,
        t0.elapsed().as_secs_f64(),
        sdi_migration::web::PAGE_WEIGHT
    );

    let mut b = Browser::launch(&bin, 1280, 1000);
    let (mut first, mut big) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        b.navigate("about:blank");
        b.navigate(&format!("{}/", service.url()));
        let ms = b.wait_for(
            Duration::from_secs(60),
            "the first render",
            "document.body && document.body.dataset.firstRenderMs",
        );
        first.push(ms.as_str().unwrap().parse::<f64>().unwrap());
        let ms = b.wait_for(
            Duration::from_secs(60),
            "the 1,000-node table",
            "(() => {
                if (!window.__asked) {
                    const s = document.querySelector('select[name=limit]');
                    s.value = '1000';
                    window.__asked = performance.now();
                    s.dispatchEvent(new Event('input', {bubbles: true}));
                    return null;
                }
                const rows = document.querySelectorAll('#nodes tbody tr[data-node]').length;
                return rows === 1000 ? String(performance.now() - window.__asked) : null;
            })()",
        );
        big.push(ms.as_str().unwrap().parse::<f64>().unwrap());
    }
    let (f, g) = (median(first.clone()), median(big.clone()));
    println!(
        "first render     median {f:>6.0} ms over {runs} loads (budget {FIRST_RENDER_BUDGET_MS:.0} ms, ratio {:.2}); all {first:.0?}",
        f / FIRST_RENDER_BUDGET_MS
    );
    println!(
        "1,000-node table median {g:>6.0} ms after asking, incl. 300 ms input debounce (budget {BIG_TABLE_BUDGET_MS:.0} ms, ratio {:.2}); all {big:.0?}",
        g / BIG_TABLE_BUDGET_MS
    );
    drop(b);
    service.abort();
    sim.stop();
}
