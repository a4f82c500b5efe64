//! The `kube-sim` binary as a user runs it: checking scenario files (every
//! shipped one passes; a broken one is refused with file, line and field), and
//! serving a scenario that kubectl then sees, until SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kube-sim");

fn repo(path: &str) -> String {
    format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_shipped_scenario_checks_out() {
    for f in ["scenarios/sdi-edge.yaml", "scenarios/pressure.yaml", "scenarios/oscillating.yaml"] {
        let out = Command::new(BIN).args(["scenario", "check", &repo(f)]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{f}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(": ok —"), "{text}");
    }
}

#[test]
fn a_broken_scenario_is_refused_with_its_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, "name: bad\nnodes:\n  - name: n1\n    capacity: {cpu: lots, memory: 8Gi}\nworkloads: []\n")
        .unwrap();
    let out = Command::new(BIN).args(["scenario", "check", path.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yaml:4:") && err.contains("nodes[0].capacity.cpu"), "{err}");
    // Serving it fails the same way, before listening.
    let out = Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0", "--scenario", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nodes[0].capacity.cpu"));
}

#[test]
fn generated_benchmark_scenarios_parse() {
    let out = Command::new(BIN).args(["scenario", "generate", "--nodes", "50", "--pods", "1000"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let s = kube_sim::scenario::parse("generated", &text).unwrap();
    let replicas: i64 =
        s.objects().iter().filter(|o| o["kind"] == "Deployment").map(|o| o["spec"]["replicas"].as_i64().unwrap()).sum();
    assert_eq!(replicas, 1000);
}

#[test]
fn serve_loads_a_scenario_that_kubectl_sees_until_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--scenario",
            &repo("scenarios/sdi-edge.yaml"),
            "--speed",
            "20",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let kubectl = |args: &[&str]| {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kc)
            .arg("--cache-dir")
            .arg(dir.path().join("cache"))
            .args(args)
            .output()
            .expect("kubectl must be installed (see README)")
    };
    let mut seen = String::new();
    while Instant::now() < deadline {
        if kc.exists() {
            let out = kubectl(&["get", "pods", "-n", "robots", "--no-headers"]);
            seen = String::from_utf8_lossy(&out.stdout).to_string();
            if seen.lines().filter(|l| l.contains("Running")).count() >= 8 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(seen.lines().filter(|l| l.contains("Running")).count() >= 8, "robots never ran: {seen}");
    let nodes = String::from_utf8_lossy(&kubectl(&["get", "nodes", "--no-headers"]).stdout).to_string();
    assert_eq!(nodes.lines().filter(|l| l.contains(" Ready ")).count(), 6, "{nodes}");
    // SIGTERM: a clean, prompt exit.
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "kube-sim did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let mut log = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut log).unwrap();
    assert_eq!(log.lines().filter(|l| l.contains("kube-sim listening on http://127.0.0.1:")).count(), 1, "{log}");
}

#[test]
fn serve_with_rbac_writes_an_admin_kubeconfig_over_https_and_refuses_others() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(&tokens, "alice-token,alice,uid-1,\"dev,ops\"\n").unwrap();
    /// The server dies with the test, even when an assertion fails first.
    struct Server(std::process::Child);
    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut server = Server(
        Command::new(BIN)
            .args(["serve", "--addr", "127.0.0.1:0", "--no-simulation", "--authorization", "rbac"])
            .arg("--kubeconfig")
            .arg(&kc)
            .arg("--token-auth-file")
            .arg(&tokens)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let child = &mut server.0;
    // Wait (bounded) for the line that says it listens: the kubeconfig is written by then.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let listening = loop {
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("kube-sim never said it listens");
        if line.contains("kube-sim listening on") {
            break line;
        }
    };
    assert!(listening.contains("https://127.0.0.1:") && listening.contains("authorization: RBAC"), "{listening}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&kc).unwrap().permissions().mode() & 0o777, 0o600, "credentials stay private");
    }
    // alice's kubeconfig: the same cluster and CA, her token instead of the
    // administrator's certificate (a certificate would win over a token).
    let mut alice: serde_json::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&kc).unwrap()).unwrap();
    alice["users"][0]["user"] = serde_json::json!({"token": "alice-token"});
    let alice_kc = dir.path().join("alice.kubeconfig");
    std::fs::write(&alice_kc, serde_yaml_ng::to_string(&alice).unwrap()).unwrap();
    let kubectl_as = |kc: &std::path::Path, args: &[&str]| {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kc)
            .arg("--cache-dir")
            .arg(dir.path().join("cache"))
            .args(args)
            .output()
            .expect("kubectl must be installed (see README)");
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    };
    let kubectl = |args: &[&str]| kubectl_as(&kc, args);
    let (ok, out) = kubectl(&["get", "namespaces"]);
    assert!(ok && out.contains("kube-system"), "{out}");
    let (ok, out) = kubectl(&["create", "token", "default", "-n", "default"]);
    assert!(ok && out.split('.').count() == 3, "{out}");
    let (ok, out) = kubectl_as(&alice_kc, &["auth", "whoami"]);
    assert!(ok && out.contains("alice") && out.contains("[dev ops system:authenticated]"), "{out}");
    let (ok, out) = kubectl_as(&alice_kc, &["get", "pods"]);
    assert!(
        !ok && out.contains(
            "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        ),
        "{out}"
    );
    let (ok, out) = kubectl_as(&alice_kc, &["--token", "wrong", "get", "pods"]);
    assert!(!ok && out.contains("Unauthorized"), "{out}");
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(t.elapsed() < Duration::from_secs(10), "kube-sim did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}
