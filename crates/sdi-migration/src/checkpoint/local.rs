//! A loopback OCI registry for the demo, the tests and the benchmark:
//! Debian's `docker-registry` (CNCF distribution v2) with its storage in a
//! temporary directory and deletion enabled, on `127.0.0.1` at a free port.

use std::path::PathBuf;
use std::time::Duration;

/// How to get the program when it is missing.
pub const INSTALL_HINT: &str =
    "install Debian's docker-registry (and skopeo for the tests): apt-get install -y docker-registry skopeo";

/// The `docker-registry` program, if installed.
pub fn binary() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("docker-registry"))
        .find(|p| p.is_file())
}

/// A running registry; stopped (and its storage removed) when dropped.
#[derive(Debug)]
pub struct LocalRegistry {
    pub host: String,
    pub dir: tempfile::TempDir,
    child: tokio::process::Child,
}

impl LocalRegistry {
    /// Start it and wait (bounded) until it answers `GET /v2/`.
    pub async fn start() -> Result<LocalRegistry, String> {
        let bin = binary().ok_or_else(|| format!("docker-registry not found; {INSTALL_HINT}"))?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            l.local_addr().map_err(|e| e.to_string())?.port()
        };
        let host = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
            dir.path().join("data").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).map_err(|e| e.to_string())?;
        let child = tokio::process::Command::new(&bin)
            .arg("serve")
            .arg(&config_path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let registry = LocalRegistry { host, dir, child };
        crate::policy::init_tls();
        let http = reqwest::Client::new();
        let url = format!("http://{}/v2/", registry.host);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if http.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(registry);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!("docker-registry did not answer on {url} within 20s"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stop the registry (a test's "registry down").
    pub async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }

    /// `CHECKPOINT_REGISTRY` for it, with a prefix.
    pub fn setting(&self, prefix: &str) -> String {
        format!("{}/{prefix}", self.host)
    }
}
