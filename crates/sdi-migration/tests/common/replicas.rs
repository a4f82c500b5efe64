//! Two `sdi-migration run` processes against one in-process kube-sim cluster, as
//! two replicas of the Deployment would run: the same kubeconfig, their own pod
//! names, a short lease, InfluxDB 1.x behind them. Tests kill or pause the
//! leader and watch what the other does.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube_sim::{DeleteOptions, EventKind, TypedEvent};
use serde_json::{Value, json};

use super::Env;
use super::influxd::Influxd;

const BIN: &str = env!("CARGO_BIN_EXE_sdi-migration");

/// Seconds: a lost leader is replaced within `LEASE` (+ one retry period).
pub const LEASE: u64 = 3;

pub struct Replica {
    pub name: String,
    pub port: u16,
    pub log: PathBuf,
    child: Option<tokio::process::Child>,
}

impl Replica {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().and_then(|c| c.id()).expect("the replica runs")
    }

    /// `kill -9`: no shutdown, no lease release, nothing flushed.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }

    pub fn signal(&self, signal: &str) {
        let ok = std::process::Command::new("kill").args([signal, &self.pid().to_string()]).status().unwrap();
        assert!(ok.success(), "kill {signal} {}", self.pid());
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The value of a Prometheus sample on this replica's `/metrics` (summed over
    /// label sets), if it answers.
    pub async fn metric(&self, http: &reqwest::Client, name: &str) -> Option<f64> {
        let text = http.get(format!("http://127.0.0.1:{}/metrics", self.port)).send().await.ok()?.text().await.ok()?;
        let values: Vec<f64> = text
            .lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect();
        (!values.is_empty()).then(|| values.iter().sum())
    }

    /// The `User-Agent` this replica sends (what kube-sim's request log keys on).
    pub fn agent(&self) -> String {
        format!("sdi-migration/{} ({})", env!("CARGO_PKG_VERSION"), self.name)
    }
}

pub struct Replicas {
    pub env: Env,
    pub influx: Influxd,
    pub replicas: Vec<Replica>,
}

impl Replicas {
    /// The cluster of `workloads` at 1×, InfluxDB, and two replicas `replica-a`
    /// and `replica-b` (neither is the leader yet; see [`Replicas::leader`]).
    pub async fn start(workloads: &str) -> Replicas {
        let text = format!(
            "name: replicas\ndefaults: {{startupSeconds: 3, shutdownSeconds: 2, heartbeatSeconds: 2}}\n{}\n{workloads}",
            super::NODES
        );
        let env = Env::start_cluster(&text, 1.0).await;
        let influx = Influxd::start().await;
        influx.query(true, "CREATE DATABASE sdi").await;
        let mut this = Replicas { env, influx, replicas: Vec::new() };
        for name in ["replica-a", "replica-b"] {
            let r = this.spawn(name);
            this.replicas.push(r);
        }
        for i in 0..2 {
            this.wait_ready(i).await;
        }
        this
    }

    fn spawn(&self, name: &str) -> Replica {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = self.env.dir.path().join(format!("{name}.log"));
        let kubeconfig = self.env.dir.path().join("kubeconfig");
        let child = tokio::process::Command::new(BIN)
            .args(["run", "--kubeconfig", kubeconfig.to_str().unwrap(), "--port", &port.to_string()])
            .env("POD_NAME", name)
            .env("LEASE_DURATION", LEASE.to_string())
            .env("RENEW_DEADLINE", "2")
            .env("RETRY_PERIOD", "1")
            .env("INFLUX_URL", self.influx.url())
            .env("INFLUX_DATABASE", "sdi")
            .env("POLICY_ENGINE_URL", "")
            .env("ANALYSIS_ENGINE_URL", "")
            .env("ENABLE_AUTO_MIGRATION", "false")
            .env("POST_MIGRATION_SETTLE", "0")
            .env("MIGRATION_TIMEOUT", "60")
            .env("AUTH_MODE", "none")
            .env("LISTEN_ADDR", "127.0.0.1")
            .env("RUST_LOG", "info,kube_client=warn,kube_runtime=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("start sdi-migration run");
        Replica { name: name.into(), port, log, child: Some(child) }
    }

    /// Waits until replica `i` answers `/ready` (its caches are synced).
    pub async fn wait_ready(&mut self, i: usize) {
        let http = self.env.http.clone();
        let r = &mut self.replicas[i];
        let url = format!("http://127.0.0.1:{}/ready", r.port);
        super::wait_for(Duration::from_secs(60), &format!("{} to be ready", r.name), || {
            if let Some(status) = r.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("{} exited with {status}:\n{}", r.name, r.logs());
            }
            let probe = http.get(&url).send();
            async move {
                match probe.await {
                    Ok(resp) if resp.status().is_success() => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            }
        })
        .await
    }

    /// The Lease's holder, if any.
    pub fn holder(&self) -> Option<String> {
        let leases = self.env.sim.dynamic("coordination.k8s.io/v1", "leases", Some("kube-system")).unwrap();
        let lease = leases.get("sdi-migration").ok()?;
        lease["spec"]["holderIdentity"].as_str().filter(|h| !h.is_empty()).map(str::to_owned)
    }

    /// The index of the replica holding the lease, once one does.
    pub async fn leader(&self) -> usize {
        super::wait_for(Duration::from_secs(30), "a replica to hold the lease", || {
            let holder = self.holder();
            let i = self.replicas.iter().position(|r| Some(&r.name) == holder.as_ref());
            async move { i.ok_or(format!("holder {holder:?}")) }
        })
        .await
    }

    /// Waits until the lease holder is replica `i`; how long that took from `since`.
    pub async fn until_holder(&self, i: usize, since: Instant) -> Duration {
        let name = self.replicas[i].name.clone();
        super::wait_for(Duration::from_secs(LEASE * 4), &format!("{name} to take the lease"), || {
            let holder = self.holder();
            let name = name.clone();
            async move { if holder.as_deref() == Some(&name) { Ok(()) } else { Err(format!("holder {holder:?}")) } }
        })
        .await;
        since.elapsed()
    }

    fn migrations(&self) -> kube_sim::Dynamic {
        self.env.sim.dynamic("migration.sdi.keti.dev/v1alpha1", "podmigrations", Some("default")).unwrap()
    }

    /// Creates a PodMigration as `kubectl apply` would.
    pub fn create(&self, name: &str, pod: &str, from: &str, to: &str, strategy: &str) {
        self.migrations()
            .create(json!({
                "apiVersion": "migration.sdi.keti.dev/v1alpha1", "kind": "PodMigration",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"podName": pod, "sourceNode": from, "targetNode": to, "strategy": strategy}
            }))
            .unwrap();
    }

    pub fn migration(&self, name: &str) -> Option<Value> {
        self.migrations().get(name).ok()
    }

    /// Waits until the migration's status lists `step` as done; returns the object.
    pub async fn until_step(&self, name: &str, step: &str) -> Value {
        super::wait_for(Duration::from_secs(60), &format!("{name} to finish step {step}"), || {
            let o = self.migration(name);
            let step = step.to_owned();
            async move {
                let o = o.ok_or("no object")?;
                let done =
                    o["status"]["steps"].as_array().is_some_and(|s| s.iter().any(|s| s["name"] == step.as_str()));
                if done { Ok(o) } else { Err(format!("{:#}", o["status"])) }
            }
        })
        .await
    }

    /// Waits until replica `i` writes the migration's status (it has resumed it).
    pub async fn until_resumed_by(&self, name: &str, i: usize, since: Instant) -> Duration {
        let who = self.replicas[i].name.clone();
        super::wait_for(Duration::from_secs(60), &format!("{who} to resume {name}"), || {
            let o = self.migration(name);
            let who = who.clone();
            async move {
                let o = o.ok_or("no object")?;
                if o["status"]["leader"] == who.as_str() { Ok(()) } else { Err(format!("{:#}", o["status"])) }
            }
        })
        .await;
        since.elapsed()
    }

    /// Waits until the migration ends; returns the object.
    pub async fn finished(&self, name: &str) -> Value {
        super::wait_for(Duration::from_secs(90), &format!("{name} to end"), || {
            let o = self.migration(name);
            async move {
                let o = o.ok_or("no object")?;
                match o["status"]["phase"].as_str() {
                    Some("completed" | "failed" | "cancelled") => Ok(o),
                    _ => Err(format!("{:#}", o["status"])),
                }
            }
        })
        .await
    }

    /// Deletes a finished migration and waits until its object is gone (no finalizer left behind).
    pub async fn delete(&self, name: &str) {
        self.migrations().delete(name, &DeleteOptions::default()).unwrap();
        super::wait_for(Duration::from_secs(30), &format!("{name} to be gone"), || {
            let o = self.migration(name);
            async move { if o.is_none() { Ok(()) } else { Err("still there".to_string()) } }
        })
        .await
    }

    /// Rows of `pod_migration` for `pod`, once at least one landed (InfluxDB is written in batches).
    pub async fn points_for(&self, pod: &str) -> usize {
        let count = || async {
            self.influx.rows().await.iter().filter(|r| r.get("pod_name").and_then(Value::as_str) == Some(pod)).count()
        };
        super::wait_for(Duration::from_secs(30), &format!("a pod_migration point for {pod}"), || async {
            let n = count().await;
            if n > 0 { Ok(()) } else { Err("none yet".to_string()) }
        })
        .await;
        count().await
    }
}

/// The fewest Ready, not terminating pods labelled `app=<app>` seen by a watch,
/// from the moment it starts until `stop` is dropped or fired.
pub fn watch_min_ready(env: &Env, app: &str) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<usize>) {
    let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
    let pods = env.sim.typed::<Pod>(Some("default"));
    let mut events = Box::pin(pods.watch());
    let serving =
        |pod: &Pod| pod.metadata.deletion_timestamp.is_none() && sdi_migration::cluster::facts::pod_ready(pod);
    // Seeded from a list, so the watch's opening ADDED events (the same state)
    // do not count as a dip while they arrive one by one.
    let mut ready: std::collections::HashMap<String, bool> = pods
        .list(&format!("app={app}"))
        .unwrap()
        .iter()
        .map(|p| (p.metadata.name.clone().unwrap_or_default(), serving(p)))
        .collect();
    let app = app.to_owned();
    let task = tokio::spawn(async move {
        let mut min = ready.values().filter(|r| **r).count();
        let mut listed = false;
        loop {
            tokio::select! {
                _ = &mut rx => break,
                ev = events.next() => match ev {
                    Some(TypedEvent::Applied(kind, pod)) => {
                        let labels = pod.metadata.labels.clone().unwrap_or_default();
                        if labels.get("app") != Some(&app) { continue }
                        let name = pod.metadata.name.clone().unwrap_or_default();
                        if kind == EventKind::Deleted { ready.remove(&name); } else { ready.insert(name, serving(&pod)); }
                        listed = true;
                        min = min.min(ready.values().filter(|r| **r).count());
                    }
                    Some(TypedEvent::Bookmark(_)) => {}
                    Some(TypedEvent::Error(e)) => panic!("pod watch: {e}"),
                    None => break,
                },
            }
        }
        assert!(listed, "the watch saw the pods");
        min
    });
    (tx, task)
}
