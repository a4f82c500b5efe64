mod common;
use std::sync::Arc;
use std::time::Duration;
use common::rss_kib;
use k8s_openapi::api::core::v1::Pod;
use kube_sim::{Cluster, ServerConfig};

#[tokio::main]
async fn main() {
    println!("size_of Pod {} PodSpec {} Container {} PodStatus {} ObjectMeta {} ContainerStatus {}",
        std::mem::size_of::<Pod>(), std::mem::size_of::<k8s_openapi::api::core::v1::PodSpec>(),
        std::mem::size_of::<k8s_openapi::api::core::v1::Container>(), std::mem::size_of::<k8s_openapi::api::core::v1::PodStatus>(),
        std::mem::size_of::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>(),
        std::mem::size_of::<k8s_openapi::api::core::v1::ContainerStatus>());
    let text = kube_sim::scenario::generate::generate(200, 4000, 1);
    let scenario = kube_sim::scenario::parse("generated", &text).unwrap();
    let cluster = Cluster::with(ServerConfig::default(), kube_sim::Clock::default());
    cluster.load_scenario(&scenario).unwrap();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let s = cluster.sim().read();
        let running = s.pods.values().filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")).count();
        if running >= 4000 { break; }
    }
    let pod: Arc<Pod> = cluster.sim().read().pods.values().next().unwrap().clone();
    let v = serde_json::to_value(&*pod).unwrap();
    println!("cached pod json {} bytes", serde_json::to_vec(&v).unwrap().len());
    let n = 50_000;
    let r0 = rss_kib();
    let mut keep = Vec::with_capacity(n);
    for _ in 0..n { keep.push(Arc::new(serde_json::from_value::<Pod>(v.clone()).unwrap())); }
    let r1 = rss_kib();
    println!("typed cached pod: {:.2} KiB each", (r1 - r0) as f64 / n as f64);
    drop(keep);
    let body = cluster.sim().read().pods.keys().next().cloned().unwrap();
    let _ = body;
}
