//! `sdi-migration demo`: the simulated SDI edge cluster (kube-sim, in-process)
//! with the service running against it, and a periodic view of node usage and
//! migrations in the terminal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kube_sim::{Cluster, ServerConfig};
use serde_json::Value;

use crate::cluster::{self, ApiStats};
use crate::config::DemoArgs;
use crate::jobs::ListFilter;
use crate::service::Service;

/// The built-in scenario: an SDI edge cluster whose load rises over ten minutes.
pub const SDI_EDGE: &str = include_str!("../../../scenarios/sdi-edge.yaml");

pub async fn run(args: DemoArgs, stop: impl Future<Output = ()>) -> anyhow::Result<()> {
    let (name, text) = match &args.scenario {
        Some(path) => (
            path.display().to_string(),
            std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read scenario {}: {e}", path.display()))?,
        ),
        None => ("scenarios/sdi-edge.yaml".to_string(), SDI_EDGE.to_string()),
    };
    let scenario = kube_sim::scenario::parse(&name, &text).map_err(|errs| {
        anyhow::anyhow!("invalid scenario:\n{}", errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))
    })?;
    let sim = Cluster::with(ServerConfig::default(), kube_sim::Clock::new(args.speed));
    sim.load_scenario(&scenario).map_err(anyhow::Error::msg)?;
    let server = sim.serve(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let dir = std::env::temp_dir().join("sdi-migration-demo");
    std::fs::create_dir_all(&dir)?;
    let kubeconfig_path = dir.join("kubeconfig");
    std::fs::write(&kubeconfig_path, server.kubeconfig())?;

    let stats = Arc::new(ApiStats::default());
    let client = cluster::connect(Some(&kubeconfig_path), stats.clone()).await.map_err(anyhow::Error::msg)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], args.settings.port));
    let service = Service::start(&args.settings, client.clone(), stats, addr).await.map_err(anyhow::Error::msg)?;
    let api = service.url();
    println!("sdi-migration demo — scenario {} at {}x simulated time", scenario.name, args.speed);
    println!(
        "  simulated cluster: {}   kubectl --kubeconfig {} get pods -A -o wide",
        server.url(),
        kubeconfig_path.display()
    );
    println!("  migration API:     {api}");
    println!("    curl {api}/api/v1/migrations");
    println!(
        "    curl -X POST {api}/api/v1/migrations -H 'content-type: application/json' \\\n      -d '{{\"pod_name\":\"POD\",\"pod_namespace\":\"NS\",\"source_node\":\"FROM\",\"target_node\":\"TO\"}}'"
    );
    println!("  Ctrl-C to stop.\n");

    let view = async {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            print_view(&client, &service).await;
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
    service.shutdown(Duration::from_secs(args.settings.shutdown_grace.min(10))).await;
    server.shutdown().await;
    sim.stop();
    Ok(())
}

/// One screen: node usage against allocatable (from metrics.k8s.io), and the latest jobs.
async fn print_view(client: &kube::Client, service: &Service) {
    let get = |path: &str| {
        let req = http::Request::get(path.to_string()).body(Vec::new());
        let client = client.clone();
        async move {
            match req {
                Ok(r) => client.request::<Value>(r).await.ok(),
                Err(_) => None,
            }
        }
    };
    let (Some(nodes), Some(metrics)) = (get("/api/v1/nodes").await, get("/apis/metrics.k8s.io/v1beta1/nodes").await)
    else {
        return;
    };
    let empty = Vec::new();
    println!("{:<14} {:>22} {:>22}", "node", "cpu", "memory");
    for n in nodes["items"].as_array().unwrap_or(&empty) {
        let name = n["metadata"]["name"].as_str().unwrap_or_default();
        let alloc = &n["status"]["allocatable"];
        let usage = metrics["items"]
            .as_array()
            .and_then(|ms| ms.iter().find(|m| m["metadata"]["name"] == name))
            .map(|m| m["usage"].clone())
            .unwrap_or(Value::Null);
        let pct = |u: &Value, a: &Value, cpu: bool| -> Option<f64> {
            let (u, a) = (u.as_str()?, a.as_str()?);
            let (u, a) = if cpu {
                (sdi_core::quantity::cpu_cores(u).ok()?, sdi_core::quantity::cpu_cores(a).ok()?)
            } else {
                (sdi_core::quantity::bytes(u).ok()? as f64, sdi_core::quantity::bytes(a).ok()? as f64)
            };
            (a > 0.0).then(|| u / a * 100.0)
        };
        let bar = |p: Option<f64>| match p {
            Some(p) => {
                let filled = ((p / 10.0).round() as usize).min(10);
                format!(
                    "[{}{}] {:>5.1}%{}",
                    "#".repeat(filled),
                    ".".repeat(10 - filled),
                    p,
                    if p > 85.0 { "!" } else { " " }
                )
            }
            None => format!("{:>22}", "no metrics"),
        };
        println!(
            "{:<14} {:>22} {:>22}",
            name,
            bar(pct(&usage["cpu"], &alloc["cpu"], true)),
            bar(pct(&usage["memory"], &alloc["memory"], false))
        );
    }
    for job in service.runner.store.list(&ListFilter { limit: 5, ..Default::default() }) {
        let step = job.details.steps.last().map(|s| format!("{} ({:?})", s.name, s.status)).unwrap_or_default();
        println!(
            "  {} {}/{} {} → {}: {} {}",
            job.id,
            job.request.pod_namespace,
            job.request.pod_name,
            job.request.source_node,
            job.request.target_node,
            job.status.as_str(),
            step
        );
    }
    println!();
}
