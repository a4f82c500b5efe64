//! The real `kubectl` (preinstalled at /usr/bin/kubectl) against kube-sim with the
//! kubeconfig it writes: create from YAML, get/list (JSON and tables) with
//! selectors, the three patch types, apply (client- and server-side), label,
//! annotate, cordon, drain, describe, delete, and `get --watch` seeing a change.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::Sim;
use serde_json::Value;
use tokio::io::AsyncBufReadExt;

struct Kubectl<'a> {
    sim: &'a Sim,
}

impl Kubectl<'_> {
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let bin = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
        let mut c = tokio::process::Command::new(bin);
        c.arg("--kubeconfig")
            .arg(self.sim.kubeconfig_path())
            .arg("--cache-dir")
            .arg(self.sim.dir.path().join("cache"))
            .args(args)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        c
    }

    /// Run kubectl; returns (success, stdout, stderr).
    async fn run_input(&self, args: &[&str], input: Option<&str>) -> (bool, String, String) {
        let mut child = self.command(args).spawn().expect("kubectl must be installed (see README)");
        if let Some(text) = input {
            use tokio::io::AsyncWriteExt;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(text.as_bytes()).await.unwrap();
        }
        drop(child.stdin.take());
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} timed out"))
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
    }

    async fn ok(&self, args: &[&str]) -> String {
        self.ok_input(args, None).await
    }

    async fn ok_input(&self, args: &[&str], input: Option<&str>) -> String {
        let (ok, out, err) = self.run_input(args, input).await;
        assert!(ok, "kubectl {args:?} failed:\nstdout: {out}\nstderr: {err}");
        out
    }

    async fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a).await).unwrap()
    }
}

const MANIFEST: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: robots
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nav
  namespace: robots
  labels: {app: nav, tier: edge}
spec:
  replicas: 2
  selector:
    matchLabels: {app: nav}
  template:
    metadata:
      labels: {app: nav}
    spec:
      containers:
      - name: ros
        image: ros:humble
        resources:
          requests: {cpu: 250m, memory: 256Mi}
---
apiVersion: v1
kind: Pod
metadata:
  name: lidar
  namespace: robots
  labels: {app: lidar, tier: edge}
spec:
  containers:
  - name: driver
    image: lidar:1.0
---
apiVersion: v1
kind: Node
metadata:
  name: tb3-1
  labels: {kubernetes.io/hostname: tb3-1}
status:
  capacity: {cpu: "4", memory: 8Gi, pods: "110"}
  allocatable: {cpu: "4", memory: 8Gi, pods: "110"}
  conditions:
  - {type: Ready, status: "True"}
"#;

#[tokio::test]
async fn kubectl_works_against_the_simulator() {
    let sim = Sim::start().await;
    let k = Kubectl { sim: &sim };
    let version = k.ok(&["version", "-o", "json"]).await;
    assert!(version.contains("\"serverVersion\""), "{version}");
    let resources = k.ok(&["api-resources"]).await;
    for r in ["pods", "deployments", "poddisruptionbudgets", "leases", "customresourcedefinitions"] {
        assert!(resources.contains(r), "api-resources lacks {r}:\n{resources}");
    }

    // create from YAML
    let out = k.ok_input(&["create", "-f", "-"], Some(MANIFEST)).await;
    assert!(out.contains("deployment.apps/nav created") && out.contains("pod/lidar created"), "{out}");

    // get/list with -o json and selectors
    let pods = k.json(&["get", "pods", "-n", "robots", "-l", "app=lidar"]).await;
    assert_eq!(pods["items"].as_array().unwrap().len(), 1);
    assert_eq!(pods["items"][0]["spec"]["containers"][0]["imagePullPolicy"], "IfNotPresent");
    let edge = k.json(&["get", "deploy,pods", "-n", "robots", "-l", "tier=edge"]).await;
    assert_eq!(edge["items"].as_array().unwrap().len(), 2);
    // server-side tables
    let table = k.ok(&["get", "pods", "-n", "robots", "-o", "wide"]).await;
    assert!(
        table.contains("NAME") && table.contains("STATUS") && table.contains("NODE") && table.contains("lidar"),
        "{table}"
    );
    let nodes = k.ok(&["get", "nodes"]).await;
    assert!(nodes.contains("tb3-1") && nodes.contains("Ready"), "{nodes}");

    // patch, all three types
    k.ok(&["patch", "deploy", "nav", "-n", "robots", "--type", "merge", "-p", r#"{"spec":{"replicas":3}}"#]).await;
    k.ok(&[
        "patch",
        "deploy",
        "nav",
        "-n",
        "robots",
        "--type",
        "json",
        "-p",
        r#"[{"op":"add","path":"/metadata/labels/patched","value":"json"}]"#,
    ])
    .await;
    k.ok(&[
        "patch",
        "deploy",
        "nav",
        "-n",
        "robots",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"ros","image":"ros:jazzy"}]}}}}"#,
    ])
    .await;
    let d = k.json(&["get", "deploy", "nav", "-n", "robots"]).await;
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(d["metadata"]["labels"]["patched"], "json");
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "ros:jazzy");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"], "250m",
        "strategic merge kept the rest"
    );
    assert_eq!(d["metadata"]["generation"], 3);

    // label, annotate (and removal)
    k.ok(&["label", "pod", "lidar", "-n", "robots", "sensor=front"]).await;
    k.ok(&["annotate", "pod", "lidar", "-n", "robots", "male.keti.dev/latency=0.9"]).await;
    k.ok(&["label", "pod", "lidar", "-n", "robots", "tier-"]).await;
    let p = k.json(&["get", "pod", "lidar", "-n", "robots"]).await;
    assert_eq!(p["metadata"]["labels"]["sensor"], "front");
    assert!(p["metadata"]["labels"].get("tier").is_none());
    assert_eq!(p["metadata"]["annotations"]["male.keti.dev/latency"], "0.9");
    let (ok, _, err) = k.run_input(&["label", "pod", "lidar", "-n", "robots", "sensor=rear"], None).await;
    assert!(!ok && err.contains("already has a value"), "{err}");

    // apply: client-side twice (second is a three-way strategic patch), then server-side
    let applied = MANIFEST.replace("replicas: 2", "replicas: 4");
    let out = k.ok_input(&["apply", "-f", "-"], Some(&applied)).await;
    assert!(out.contains("deployment.apps/nav configured"), "{out}");
    assert_eq!(k.json(&["get", "deploy", "nav", "-n", "robots"]).await["spec"]["replicas"], 4);
    let out = k.ok_input(&["apply", "-f", "-"], Some(&applied)).await;
    assert!(out.contains("unchanged"), "{out}");
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\n  namespace: robots\ndata:\n  k: v\n";
    let out = k.ok_input(&["apply", "--server-side", "-f", "-"], Some(cm)).await;
    assert!(out.contains("serverside-applied"), "{out}");
    let ssa = k.json(&["get", "cm", "ssa", "-n", "robots", "--show-managed-fields"]).await;
    assert_eq!(ssa["metadata"]["managedFields"][0]["manager"], "kubectl");
    assert_eq!(ssa["metadata"]["managedFields"][0]["operation"], "Apply");

    // cordon / uncordon
    k.ok(&["cordon", "tb3-1"]).await;
    assert_eq!(k.json(&["get", "node", "tb3-1"]).await["spec"]["unschedulable"], true);
    let nodes = k.ok(&["get", "nodes"]).await;
    assert!(nodes.contains("SchedulingDisabled"), "{nodes}");
    k.ok(&["uncordon", "tb3-1"]).await;
    assert!(k.json(&["get", "node", "tb3-1"]).await["spec"].get("unschedulable").is_none_or(|v| v == false));

    // describe
    let described = k.ok(&["describe", "pod", "lidar", "-n", "robots"]).await;
    assert!(described.contains("Name:") && described.contains("lidar") && described.contains("driver"), "{described}");

    // drain evicts the node's pods
    let bound = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: on-node\n  namespace: robots\nspec:\n  nodeName: tb3-1\n  containers:\n  - name: c\n    image: x:1\n";
    k.ok_input(&["create", "-f", "-"], Some(bound)).await;
    let out = k.ok(&["drain", "tb3-1", "--force", "--grace-period=0", "--ignore-daemonsets", "--timeout=30s"]).await;
    assert!(out.contains("evicting pod robots/on-node") || out.contains("on-node evicted"), "{out}");
    let (found, _, _) = k.run_input(&["get", "pod", "on-node", "-n", "robots"], None).await;
    assert!(!found, "drained pod is gone");

    // delete
    let out = k.ok(&["delete", "pod", "lidar", "-n", "robots"]).await;
    assert!(out.contains("pod \"lidar\" deleted"), "{out}");
    let (found, _, err) = k.run_input(&["get", "pod", "lidar", "-n", "robots"], None).await;
    assert!(!found && err.contains("NotFound"), "{err}");
}

#[tokio::test]
async fn kubectl_get_watch_sees_a_change() {
    let sim = Sim::start().await;
    let k = Kubectl { sim: &sim };
    let mut child =
        k.command(&["get", "configmaps", "-n", "default", "--watch", "--request-timeout=30s"]).spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // The initial listing arrives first.
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await.unwrap().unwrap().unwrap();
    assert!(first.contains("NAME"), "{first}");
    let cms = sim.cluster.typed::<k8s_openapi::api::core::v1::ConfigMap>(Some("default"));
    let cm: k8s_openapi::api::core::v1::ConfigMap =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "appeared"}})).unwrap();
    cms.create(&cm).unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("appeared") {
                return line;
            }
        }
        panic!("kubectl --watch ended without the change");
    })
    .await
    .expect("kubectl --watch shows the new ConfigMap");
    assert!(seen.starts_with("appeared"), "{seen}");
    child.kill().await.ok();
}

#[tokio::test]
async fn kubectl_reports_errors_cleanly() {
    let sim = Sim::start().await;
    let k = Kubectl { sim: &sim };
    let (ok, _, err) = k.run_input(&["get", "pod", "nope"], None).await;
    assert!(!ok && err.contains("pods \"nope\" not found"), "{err}");
    let bad = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: Bad_Name\nspec:\n  containers: []\n";
    let (ok, _, err) = k.run_input(&["create", "-f", "-"], Some(bad)).await;
    assert!(!ok && err.contains("is invalid"), "{err}");
    let unknown = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: u\nbogus: 1\n";
    let (ok, _, err) = k.run_input(&["create", "-f", "-"], Some(unknown)).await;
    assert!(!ok && err.contains("unknown field \"bogus\""), "strict field validation: {err}");
}

// ----- the live simulated cluster, through kubectl -------------------------------

const TWO_NODES: &str = r#"
apiVersion: v1
kind: Node
metadata: {name: n1, labels: {kubernetes.io/hostname: n1}}
status: {capacity: {cpu: "4", memory: 8Gi, pods: "110"}}
---
apiVersion: v1
kind: Node
metadata: {name: n2, labels: {kubernetes.io/hostname: n2}}
status: {capacity: {cpu: "4", memory: 8Gi, pods: "110"}}
"#;

fn guarded(name: &str, replicas: u32, min_available: u32, node_selector: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata:
      labels: {{app: {name}}}
      annotations: {{sim.kube-sim.io/startup-seconds: "2", sim.kube-sim.io/shutdown-seconds: "1"}}
    spec:
      {node_selector}
      containers: [{{name: c, image: "nginx:1.27"}}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {{name: {name}}}
spec:
  minAvailable: {min_available}
  selector: {{matchLabels: {{app: {name}}}}}
"#
    )
}

async fn wait_ready(k: &Kubectl<'_>, selector: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let pods = k.json(&["get", "pods", "-l", selector]).await;
        let ready = pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .filter(|p| {
                p["status"]["conditions"]
                    .as_array()
                    .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
            })
            .count();
        if ready == n {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{selector}: {ready} of {n} ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn kubectl_drain_is_refused_exactly_when_a_budget_would_be_violated() {
    let sim = Sim::start_live_speed(20.0).await;
    let k = Kubectl { sim: &sim };
    k.ok_input(&["apply", "-f", "-"], Some(TWO_NODES)).await;
    // Pinned to n1 and guarded by minAvailable 2 of 2: no eviction is ever allowed.
    k.ok_input(&["apply", "-f", "-"], Some(&guarded("pinned", 2, 2, "nodeSelector: {kubernetes.io/hostname: n1}")))
        .await;
    let free = "apiVersion: v1\nkind: Pod\nmetadata: {name: free}\nspec:\n  nodeName: n1\n  containers: [{name: c, image: x}]\n";
    k.ok_input(&["apply", "-f", "-"], Some(free)).await;
    wait_ready(&k, "app=pinned", 2).await;
    let (ok, out, err) = k.run_input(&["drain", "n1", "--force", "--ignore-daemonsets", "--timeout=6s"], None).await;
    let all = format!("{out}{err}");
    assert!(!ok, "the drain must fail: {all}");
    assert!(all.contains("Cannot evict pod as it would violate the pod's disruption budget"), "{all}");
    assert!(all.contains("pod/free evicted"), "what may be evicted is: {all}");
    wait_ready(&k, "app=pinned", 2).await;
    assert_eq!(k.json(&["get", "node", "n1"]).await["spec"]["unschedulable"], true, "drain cordons first");
}

#[tokio::test]
async fn kubectl_drain_completes_when_the_budget_allows_one_at_a_time() {
    let sim = Sim::start_live_speed(20.0).await;
    let k = Kubectl { sim: &sim };
    k.ok_input(&["apply", "-f", "-"], Some(TWO_NODES)).await;
    k.ok(&["cordon", "n2"]).await;
    k.ok_input(&["apply", "-f", "-"], Some(&guarded("web", 2, 1, ""))).await;
    wait_ready(&k, "app=web", 2).await;
    let on_n1 = k.json(&["get", "pods", "-l", "app=web", "--field-selector", "spec.nodeName=n1"]).await;
    assert_eq!(on_n1["items"].as_array().unwrap().len(), 2, "both start on n1");
    k.ok(&["uncordon", "n2"]).await;
    // One eviction at a time: the second waits until the first replacement is Ready on n2.
    let out = k.ok(&["drain", "n1", "--ignore-daemonsets", "--timeout=60s"]).await;
    assert!(out.contains("node/n1 drained"), "{out}");
    wait_ready(&k, "app=web", 2).await;
    let on_n2 = k.json(&["get", "pods", "-l", "app=web", "--field-selector", "spec.nodeName=n2"]).await;
    assert_eq!(on_n2["items"].as_array().unwrap().len(), 2, "both moved to n2");
    let pdb = k.json(&["get", "pdb", "web"]).await;
    assert_eq!(pdb["status"]["currentHealthy"], 2);
    assert_eq!(pdb["status"]["disruptionsAllowed"], 1);
}

#[tokio::test]
async fn kubectl_top_shows_scenario_usage() {
    let sim = Sim::start_live_speed(10.0).await;
    let text =
        std::fs::read_to_string(format!("{}/../../scenarios/sdi-edge.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let scenario = kube_sim::scenario::parse("sdi-edge.yaml", &text).unwrap();
    sim.cluster.load_scenario(&scenario).unwrap();
    let k = Kubectl { sim: &sim };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let pods = loop {
        let (ok, out, _) = k.run_input(&["top", "pods", "-n", "robots", "--no-headers"], None).await;
        if ok && out.lines().filter(|l| l.starts_with("lidar-driver-")).count() == 4 {
            break out;
        }
        assert!(tokio::time::Instant::now() < deadline, "lidar pods never showed in kubectl top: {out}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for line in pods.lines().filter(|l| l.starts_with("lidar-driver-")) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[2], "300Mi", "the scenario's constant memory profile: {line}");
        let cpu: i64 = cols[1].trim_end_matches('m').parse().unwrap();
        assert!((225..=275).contains(&cpu), "250m ±10%: {line}");
    }
    let nodes = k.ok(&["top", "nodes"]).await;
    for n in ["sdi-master", "turtlebot-1", "turtlebot-4", "edge-server"] {
        assert!(nodes.contains(n), "{nodes}");
    }
}
