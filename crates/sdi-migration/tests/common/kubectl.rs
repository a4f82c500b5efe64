//! Running the real `kubectl` against the simulated cluster: the one on PATH
//! (or `KUBECTL`), or each version the machine image ships.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The kubectl to run: `KUBECTL`, else the one on PATH, else /usr/bin/kubectl.
pub fn find_kubectl() -> PathBuf {
    if let Some(k) = std::env::var_os("KUBECTL") {
        return PathBuf::from(k);
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("kubectl")).find(|k| k.is_file()))
        .unwrap_or_default();
    let kubectl = on_path.unwrap_or_else(|| PathBuf::from("/usr/bin/kubectl"));
    assert!(
        kubectl.is_file(),
        "this test needs kubectl ({} not found; not on PATH either). It is preinstalled on the project's \
         machine image (/usr/bin/kubectl, v1.32); install a kubectl 1.27-1.33 binary, or set KUBECTL=/path/to/kubectl",
        kubectl.display()
    );
    kubectl
}

/// Every kubectl the machine image ships (`kubectl.1.27` … `kubectl.1.33`); in
/// CI they must all be there.
pub fn shipped() -> Vec<PathBuf> {
    let dir = Path::new("/usr/lib/google-cloud-sdk/bin");
    let found: Vec<PathBuf> = (27..=33).map(|m| dir.join(format!("kubectl.1.{m}"))).filter(|p| p.is_file()).collect();
    if found.len() < 7 {
        assert!(std::env::var("CI").is_err(), "CI needs kubectl 1.27..1.33 in {}: found {found:?}", dir.display());
    }
    if found.is_empty() { vec![find_kubectl()] } else { found }
}

/// `kubectl --kubeconfig <kc> args...` with a private discovery cache; (success, stdout, stderr).
pub async fn kubectl_with(bin: &Path, kc: &Path, cache: &Path, args: &[&str]) -> (bool, String, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(bin)
            .arg("--kubeconfig")
            .arg(kc)
            .args(args)
            .env_remove("KUBECONFIG")
            .env("KUBECACHEDIR", cache)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish in 60 s"))
    .unwrap_or_else(|e| panic!("running kubectl: {e}"));
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

pub async fn kubectl(kc: &Path, cache: &Path, args: &[&str]) -> (bool, String, String) {
    kubectl_with(&find_kubectl(), kc, cache, args).await
}

pub async fn kubectl_ok(kc: &Path, cache: &Path, args: &[&str]) -> String {
    let (ok, stdout, stderr) = kubectl(kc, cache, args).await;
    assert!(ok, "kubectl {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}
