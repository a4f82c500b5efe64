//! Checkpoint images, measured (printed, never asserted):
//!
//! 1. build + push of a 1 GiB checkpoint archive to a loopback registry
//!    (Debian's docker-registry) by the agent's code, against `skopeo copy` of
//!    the same bytes (an OCI layout holding the archive as its layer) to an
//!    identical registry: the ratio skopeo time / our time (≥ 0.8 wanted);
//! 2. this process's peak RSS after the push (an upper bound of the agent's:
//!    the push streams, so it should stay flat whatever the size);
//! 3. the time a checkpointed `recreate` adds over a plain one in kube-sim.
//!
//! Anchors: CRIU stop-and-copy ≈ 2 s + 2.5 s/GB (podmigration-operator's
//! evaluation); Paguro's live-migration freeze 0.55–0.73 s.
//!
//!     cargo bench -p sdi-migration --bench checkpoint     (CKPT_BYTES=N, default 1 GiB; files under /tmp)
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Env, request};
use sdi_migration::checkpoint::agent::{self, AgentConfig};
use sdi_migration::checkpoint::local::LocalRegistry;
use sdi_migration::checkpoint::oci;
use sdi_migration::checkpoint::registry::{Registry, RegistryConfig};
use sdi_migration::checkpoint::settings::CheckpointSettings;
use serde_json::{Value, json};

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn sha256_file(path: &Path) -> String {
    use std::io::Read;
    let mut f = std::fs::File::open(path).unwrap();
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    format!("sha256:{}", oci::hex(ctx.finish().as_ref()))
}

/// An OCI image layout whose one layer is the archive (hard-linked), for skopeo.
fn oci_layout(dir: &Path, archive: &Path) -> String {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let layer_digest = sha256_file(archive);
    let size = std::fs::metadata(archive).unwrap().len();
    let layer_path = blobs.join(layer_digest.trim_start_matches("sha256:"));
    if std::fs::hard_link(archive, &layer_path).is_err() {
        std::fs::copy(archive, &layer_path).unwrap();
    }
    let layer = oci::Descriptor { media_type: oci::MEDIA_LAYER_TAR, digest: layer_digest, size };
    let config = oci::config(&layer, "2026-01-01T00:00:00Z");
    let config_d =
        oci::Descriptor { media_type: oci::MEDIA_CONFIG, digest: oci::digest(&config), size: config.len() as u64 };
    std::fs::write(blobs.join(config_d.digest.trim_start_matches("sha256:")), &config).unwrap();
    let manifest = oci::manifest(&config_d, &layer, &oci::annotations("bench", &Default::default()));
    let manifest_digest = oci::digest(&manifest);
    std::fs::write(blobs.join(manifest_digest.trim_start_matches("sha256:")), &manifest).unwrap();
    let index = json!({"schemaVersion": 2, "manifests": [{"mediaType": oci::MEDIA_MANIFEST, "digest": manifest_digest,
        "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": "bench"}}]});
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    format!("oci:{}:bench", dir.display())
}

async fn push_benchmark(bytes: u64) {
    let work = tempfile::tempdir_in("/tmp").unwrap();
    let archive = work.path().join("checkpoint-bench_default-app-t.tar");
    let t = Instant::now();
    kube_sim::controllers::runtime::write_archive(&archive, "default", "bench", "uid", "app", "img", 7, bytes, "t")
        .unwrap();
    let size = std::fs::metadata(&archive).unwrap().len();
    println!("archive: {:.2} GiB written in {:.2} s", size as f64 / (1u64 << 30) as f64, t.elapsed().as_secs_f64());

    let ours = LocalRegistry::start().await.unwrap();
    let theirs = LocalRegistry::start().await.unwrap();
    let registry = Registry::new(RegistryConfig {
        host: ours.host.clone(),
        prefix: "bench".into(),
        insecure: true,
        username: None,
        password: None,
    })
    .unwrap();
    let rss_before = peak_rss_kib();
    let t = Instant::now();
    let pushed = registry
        .push_checkpoint("bench/default/bench", "app-bench", "app", &archive, &oci::ArchiveMeta::default())
        .await
        .unwrap();
    let ours_s = t.elapsed().as_secs_f64();
    let rss_after = peak_rss_kib();
    println!(
        "sdi-migration build+push: {ours_s:.2} s ({:.0} MiB/s), {}",
        size as f64 / (1 << 20) as f64 / ours_s,
        pushed.reference
    );
    println!(
        "peak RSS of this process: {:.1} MiB before the push, {:.1} MiB after (agent budget 64 MiB)",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0
    );

    let layout = oci_layout(&work.path().join("layout"), &archive);
    let dest = format!("docker://{}/bench/default/bench:skopeo", theirs.host);
    let t = Instant::now();
    let out = std::process::Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false", &layout, &dest])
        .output()
        .unwrap();
    let skopeo_s = t.elapsed().as_secs_f64();
    assert!(out.status.success(), "skopeo copy: {}", String::from_utf8_lossy(&out.stderr));
    println!("skopeo copy of the same bytes: {skopeo_s:.2} s ({:.0} MiB/s)", size as f64 / (1 << 20) as f64 / skopeo_s);
    println!("ratio skopeo / sdi-migration: {:.2} (≥ 0.8 wanted; > 1 means we are faster)", skopeo_s / ours_s);
    let gib = size as f64 / (1u64 << 30) as f64;
    println!("anchor: CRIU stop-and-copy ≈ 2 s + 2.5 s/GB = {:.1} s for this size", 2.0 + 2.5 * gib * 1.073_741_824);
}

const SCENARIO: &str = r#"
name: bench
defaults: {startupSeconds: 0, shutdownSeconds: 0, heartbeatSeconds: 10}
nodes:
  - {name: w1, capacity: {cpu: 8, memory: 16Gi}, runtime: cri-o://1.31.0}
  - {name: w2, capacity: {cpu: 8, memory: 16Gi}, runtime: cri-o://1.31.0}
workloads:
  - kind: Pod
    name: app-{i}
    count: 10
    nodeName: w1
    containers: [{name: app, requests: {cpu: 10m, memory: 16Mi}}]
"#;

async fn recreate_benchmark() {
    let registry = LocalRegistry::start().await.unwrap();
    let root = tempfile::tempdir_in("/tmp").unwrap();
    let config = kube_sim::ServerConfig {
        checkpoint_dir: Some(root.path().to_path_buf()),
        registries: vec![registry.host.clone()],
        ..Default::default()
    };
    let mut settings = common::settings();
    settings.policy_engine_url = None;
    settings.checkpoint = CheckpointSettings {
        checkpoint_registry: Some(registry.setting("ckpt")),
        checkpoint_registry_insecure: true,
        ..CheckpointSettings::default()
    };
    let env = Env::start_scenario_config(SCENARIO, settings.clone(), 1.0, config).await;
    let stop = tokio_util::sync::CancellationToken::new();
    for node in ["w1", "w2"] {
        let dir = root.path().join(node);
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = AgentConfig {
            node: node.into(),
            dir,
            registry: settings.checkpoint.registry().unwrap().unwrap(),
            namespace: "kube-system".into(),
        };
        tokio::spawn(agent::run(env.client.clone(), cfg, stop.clone()));
    }
    let leases = env.sim.dynamic("coordination.k8s.io/v1", "leases", Some("kube-system")).unwrap();
    common::eventually(20, "agent Leases", || async {
        ["w1", "w2"].iter().all(|n| leases.get(&agent::lease_name(n)).is_ok())
    })
    .await;
    let mut plain = Vec::new();
    let mut checkpointed = Vec::new();
    for i in 1..=10 {
        let mut body = request(&format!("app-{i}"), "default", "w1", "w2");
        body["strategy"] = json!("recreate");
        body["checkpoint"] = json!(i % 2 == 0);
        let t = Instant::now();
        let (code, created) = env.migrate(body).await;
        assert_eq!(code, 202, "{created}");
        let job: Value = env.finished(created["migration_id"].as_str().unwrap(), 120).await;
        assert_eq!(job["status"], "completed", "{job:#}");
        let took = t.elapsed();
        if i % 2 == 0 {
            assert_eq!(job["details"]["restore"]["status"], "restored");
            checkpointed.push(took);
        } else {
            plain.push(took);
        }
    }
    let mean = |v: &[Duration]| v.iter().map(Duration::as_secs_f64).sum::<f64>() / v.len() as f64;
    let (p, c) = (mean(&plain), mean(&checkpointed));
    println!(
        "recreate in kube-sim (1x clock, instant pod start): plain {p:.3} s, checkpointed {c:.3} s → checkpoint + image + restore add {:.3} s",
        c - p
    );
    println!(
        "anchor: Paguro's live-migration freeze 0.55–0.73 s (ours: the source is frozen only for the kubelet's CRIU dump; the push runs while it runs)"
    );
    stop.cancel();
}

fn main() {
    let bytes: u64 = std::env::var("CKPT_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(1 << 30);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        push_benchmark(bytes).await;
        recreate_benchmark().await;
    });
}
