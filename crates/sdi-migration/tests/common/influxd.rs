//! A real InfluxDB 1.x (Debian's `influxd`) on loopback, for the tests that
//! check what reaches it.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

/// A port nothing listens on (bound, then released).
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

fn influxd_binary() -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("influxd"))
        .find(|p| p.is_file());
    match found {
        Some(p) => p,
        // A failure, not a skip, in CI (`CI=true`) and locally alike: the project's
        // scripts install it.
        None => panic!("influxd missing: apt-get install -y influxdb"),
    }
}

/// `influxd` on loopback with its data in a temporary directory.
pub struct Influxd {
    pub dir: tempfile::TempDir,
    http_port: u16,
    child: Option<tokio::process::Child>,
    http: reqwest::Client,
}

impl Influxd {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let http_port = closed_port().await;
        let rpc_port = closed_port().await;
        let root = dir.path().display();
        let config = format!(
            r#"reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{root}/meta"

[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
  pprof-enabled = false

[monitor]
  store-enabled = false

[continuous_queries]
  enabled = false

[subscriber]
  enabled = false
"#
        );
        std::fs::write(dir.path().join("influxdb.conf"), config).unwrap();
        sdi_migration::policy::init_tls();
        let mut influxd = Influxd { dir, http_port, child: None, http: reqwest::Client::new() };
        influxd.run().await;
        influxd
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("influxd.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Starts (or restarts) the server on the same ports and data, and waits for `/ping`.
    pub async fn run(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).unwrap();
        writeln!(&log, "--- influxd run ---").unwrap();
        let child = tokio::process::Command::new(influxd_binary())
            .args(["run", "-config"])
            .arg(self.dir.path().join("influxdb.conf"))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start influxd");
        self.child = Some(child);
        let this = &mut *self;
        super::wait_for(Duration::from_secs(30), "influxd to answer /ping", || {
            if let Some(status) = this.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("influxd exited with {status} before answering /ping; its log:\n{}", this.log());
            }
            let ping = this.http.get(format!("{}/ping", this.url())).send();
            let log = this.log();
            async move {
                match ping.await {
                    Ok(r) if r.status() == reqwest::StatusCode::NO_CONTENT => Ok(()),
                    other => Err(format!("{other:?}; its log:\n{log}")),
                }
            }
        })
        .await
    }

    pub async fn kill(&mut self) {
        let mut child = self.child.take().expect("influxd is running");
        child.kill().await.unwrap();
    }

    /// Runs an InfluxQL statement; returns the JSON answer (`epoch=ns` timestamps).
    pub async fn query(&self, post: bool, q: &str) -> Value {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/query", self.url()),
            [("db", "sdi"), ("q", q), ("epoch", "ns")],
        )
        .unwrap();
        let request = if post { self.http.post(url) } else { self.http.get(url) };
        let response = request.send().await.unwrap();
        assert!(response.status().is_success(), "{q}: {}", response.status());
        let body: Value = response.json().await.unwrap();
        assert!(body["results"][0].get("error").is_none(), "{q}: {body}");
        body
    }

    /// `SELECT * FROM pod_migration` as one map per row, keyed by column.
    pub async fn rows(&self) -> Vec<serde_json::Map<String, Value>> {
        let body = self.query(false, "SELECT * FROM pod_migration").await;
        let Some(series) = body["results"][0]["series"].as_array() else { return Vec::new() };
        let series = &series[0];
        let columns: Vec<String> =
            series["columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
        series["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| columns.iter().cloned().zip(row.as_array().unwrap().iter().cloned()).collect())
            .collect()
    }
}
