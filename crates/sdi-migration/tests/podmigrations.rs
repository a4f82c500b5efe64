//! Migrations as Kubernetes objects, driven with the real kubectl (every version
//! the machine image ships): `apply` a PodMigration and it completes, `get pmig`
//! shows its columns, `delete` mid-flight cancels it and undoes its changes
//! before the object goes, invalid specs are refused by the API server with the
//! schema's words, a running migration's spec cannot change; and the REST API
//! shows the same migrations.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::kubectl::{kubectl_with, shipped};
use common::{Env, ready, request, settings};
use serde_json::Value;

const CLUSTER: &str = r#"
workloads:
  - kind: Pod
    name: slam
    nodeName: w1
    startupSeconds: 30
    containers: [{name: slam, requests: {cpu: 500m, memory: 256Mi}}]
  - kind: Pod
    name: quick
    nodeName: w1
    containers: [{name: main, requests: {cpu: 100m, memory: 64Mi}}]
"#;

fn manifest(name: &str, pod: &str, from: &str, to: &str) -> String {
    format!(
        "apiVersion: migration.sdi.keti.dev/v1alpha1\nkind: PodMigration\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  podName: {pod}\n  sourceNode: {from}\n  targetNode: {to}\n"
    )
}

struct Kubectl {
    bin: PathBuf,
    kc: PathBuf,
    cache: tempfile::TempDir,
}

impl Kubectl {
    fn new(env: &Env, bin: PathBuf) -> Kubectl {
        Kubectl { bin, kc: env.dir.path().join("admin-kubeconfig"), cache: tempfile::tempdir().unwrap() }
    }

    async fn run(&self, args: &[&str]) -> (bool, String, String) {
        kubectl_with(&self.bin, &self.kc, self.cache.path(), args).await
    }

    async fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args).await;
        assert!(ok, "{} {args:?} failed:\n{out}\n{err}", self.bin.display());
        out
    }

    /// `kubectl apply -f -` of `yaml`.
    async fn apply(&self, yaml: &str) -> (bool, String, String) {
        let file = self.cache.path().join("pmig.yaml");
        std::fs::write(&file, yaml).unwrap();
        self.run(&["apply", "-f", file.to_str().unwrap()]).await
    }

    async fn object(&self, name: &str) -> Option<Value> {
        let (ok, out, _) = self.run(&["get", "pmig", name, "-n", "default", "-o", "json"]).await;
        ok.then(|| serde_json::from_str(&out).unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_runs_a_migration_and_get_shows_it() {
    let env = Env::start_with(CLUSTER, settings(), 10.0).await;
    for (i, bin) in shipped().into_iter().enumerate() {
        let k = Kubectl::new(&env, bin.clone());
        let name = format!("by-kubectl-{i}");
        // Back and forth between w1 and w2, one move per kubectl version.
        let pod = if i == 0 {
            "quick".to_string()
        } else {
            env.service().runner.store.get(&format!("by-kubectl-{}", i - 1)).unwrap().details.new_pod_name
        };
        let (from, to) = if i % 2 == 0 { ("w1", "w2") } else { ("w2", "w1") };
        let (ok, out, err) = k.apply(&manifest(&name, &pod, from, to)).await;
        assert!(ok, "{}: {out}{err}", bin.display());
        assert!(out.contains(&format!("podmigration.migration.sdi.keti.dev/{name} created")), "{out}");
        common::wait_for(Duration::from_secs(30), "the migration to complete", || async {
            let o = k.object(&name).await;
            match o.as_ref().and_then(|o| o["status"]["phase"].as_str()) {
                Some("completed") => Ok(()),
                other => Err(format!("{other:?}: {o:#?}")),
            }
        })
        .await;
        let o = k.object(&name).await.unwrap();
        assert_eq!(o["spec"]["origin"], Value::Null, "kubectl set no origin");
        assert_eq!(o["status"]["strategy"], "recreate");
        assert_eq!(o["status"]["conditions"][0]["type"], "Succeeded");
        assert_eq!(o["status"]["conditions"][0]["status"], "True");
        assert!(
            o["metadata"]["finalizers"].is_null() || o["metadata"]["finalizers"] == serde_json::json!([]),
            "released: {o:#}"
        );
        let new = o["status"]["newPodName"].as_str().unwrap();
        assert!(ready(&env.pod("default", new).unwrap()));

        // The printer columns.
        let table = k.ok(&["get", "pmig", "-n", "default"]).await;
        let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
        assert_eq!(
            header,
            ["NAME", "POD", "SOURCE", "TARGET", "STRATEGY", "PHASE", "AGE"],
            "{}:\n{table}",
            bin.display()
        );
        let row = table.lines().find(|l| l.starts_with(&name)).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(&cells[1..6], [pod.as_str(), from, to, "recreate", "completed"], "{row}");
        // The same migration through the REST API: origin kubectl.
        let (code, job) = env.get(&format!("/api/v1/migrations/{name}")).await;
        assert_eq!(code, 200, "{job}");
        assert_eq!((job["status"].as_str(), job["details"]["origin"].as_str()), (Some("completed"), Some("kubectl")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_delete_cancels_and_undoes_before_the_object_goes() {
    let env = Env::start_with(CLUSTER, settings(), 10.0).await;
    let k = Kubectl::new(&env, common::kubectl::find_kubectl());
    let before: Vec<String> =
        env.pods("default").iter().map(|p| p["metadata"]["name"].as_str().unwrap().to_string()).collect();
    assert!(k.apply(&manifest("slow", "slam", "w1", "w2")).await.0);
    env.reached_step("slow", "wait-ready", 30).await;
    // A running migration's spec is fixed.
    let (ok, _, err) = k
        .run(&["patch", "pmig", "slow", "-n", "default", "--type", "merge", "-p", r#"{"spec":{"targetNode":"w3"}}"#])
        .await;
    assert!(!ok && err.contains("spec is immutable once the migration has started"), "{err}");
    let (ok, out, err) = k.run(&["delete", "pmig", "slow", "-n", "default", "--wait=true", "--timeout=60s"]).await;
    assert!(ok, "{out}{err}");
    // The finalizer held it until the copy was gone: now only the original runs.
    let after: Vec<String> = env
        .pods("default")
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(after, before, "the copy is gone, the original stays");
    assert!(ready(&env.pod("default", "slam").unwrap()));
    assert!(k.object("slow").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_specs_are_refused_with_the_schema_s_words() {
    let env = Env::start(CLUSTER).await;
    for bin in shipped() {
        let k = Kubectl::new(&env, bin.clone());
        let cases = [
            (manifest("same", "quick", "w1", "w1"), "sourceNode and targetNode must be different"),
            (manifest("upper", "Quick", "w1", "w2"), "spec.podName in body should match"),
            (
                "apiVersion: migration.sdi.keti.dev/v1alpha1\nkind: PodMigration\nmetadata: {name: nopod, namespace: default}\nspec: {sourceNode: w1, targetNode: w2}\n".to_string(),
                "spec.podName: Required value",
            ),
            (manifest("teleport", "quick", "w1", "w2") + "  strategy: teleport\n", "Unsupported value: \"teleport\""),
            (manifest("negative", "quick", "w1", "w2") + "  timeoutSeconds: -5\n", "should be greater than or equal to 0"),
        ];
        for (yaml, want) in cases {
            let (ok, out, err) = k.apply(&yaml).await;
            assert!(!ok, "{}: accepted {yaml}: {out}", bin.display());
            assert!(err.contains(want) && err.contains("is invalid"), "{}: {want:?} not in {err}", bin.display());
        }
    }
    let (_, list) = env.get("/api/v1/migrations").await;
    assert_eq!(list, serde_json::json!([]), "nothing refused became a migration");
}

/// The REST API's doors open onto the same objects: a POST creates a PodMigration
/// kubectl sees; a DELETE cancels it and keeps its record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_api_is_a_view_onto_podmigrations() {
    let env = Env::start_with(CLUSTER, settings(), 10.0).await;
    let k = Kubectl::new(&env, common::kubectl::find_kubectl());
    let (code, created) = env.migrate(request("slam", "default", "w1", "w2")).await;
    assert_eq!(code, 202, "{created}");
    let id = created["migration_id"].as_str().unwrap();
    // Read in-process and cancel before kubectl runs: the move takes 3 s, and
    // a kubectl run on a loaded machine can take longer than that.
    let pm = env.sim.dynamic("migration.sdi.keti.dev/v1alpha1", "podmigrations", Some("default")).unwrap();
    let o = pm.get(id).expect("the POST created a PodMigration");
    assert_eq!(o["metadata"]["finalizers"], serde_json::json!(["migration.sdi.keti.dev/undo"]), "{o:#}");
    env.reached_step(id, "wait-ready", 30).await;
    assert_eq!(env.delete(&format!("/api/v1/migrations/{id}")).await.0, 202);
    let o = k.object(id).await.expect("kubectl sees the PodMigration");
    assert_eq!(o["spec"]["origin"], "api");
    let job = env.finished(id, 30).await;
    assert_eq!(job["status"], "cancelled");
    common::wait_for(Duration::from_secs(30), "the object to show it cancelled", || async {
        let o = k.object(id).await;
        let released = |o: &Value| o["metadata"]["finalizers"].as_array().is_none_or(|f| f.is_empty());
        match o.as_ref().map(|o| (o["status"]["phase"].as_str().map(str::to_string), released(o))) {
            Some((Some(p), true)) if p == "cancelled" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let o = k.object(id).await.unwrap();
    assert_eq!(o["status"]["error"]["category"], "cancelled");
}
