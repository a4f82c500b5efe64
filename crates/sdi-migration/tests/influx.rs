//! The InfluxDB writer: line protocol, the write protocol against a scripted loopback
//! server (InfluxDB 2 and 1.x paths, retries, rejections, overflow, shutdown), and a
//! real InfluxDB 1.x (`influxd`, Debian package `influxdb`) started on loopback,
//! killed and restarted underneath the writer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use parking_lot::Mutex;
use sdi_migration::sinks::influx::{self, InfluxConfig, InfluxHandle, MigrationPoint, line};
use serde_json::Value;
use tokio::net::TcpListener;

const TOKEN: &str = "s3cret";

fn ts(ns: i128) -> jiff::Timestamp {
    jiff::Timestamp::from_nanosecond(ns).unwrap()
}

fn point(pod: &str, success: bool, strategy: &str, duration: f64, ns: i128) -> MigrationPoint {
    MigrationPoint {
        pod_name: pod.to_owned(),
        namespace: "default".to_owned(),
        source_node: "node-1".to_owned(),
        target_node: "node-2".to_owned(),
        success,
        strategy: strategy.to_owned(),
        duration_seconds: duration,
        time: ts(ns),
    }
}

fn v2_config(url: &str) -> InfluxConfig {
    InfluxConfig {
        url: url.to_owned(),
        org: "keti".to_owned(),
        bucket: "turtlebot".to_owned(),
        token: Some(TOKEN.to_owned()),
        database: None,
        batch_size: 100,
        flush_interval: Duration::from_millis(50),
        buffer_limit: 10_000,
        timeout: Duration::from_secs(2),
        max_backoff: Duration::from_millis(200),
    }
}

/// Waits (bounded, see `common::wait_for`) until `cond` holds.
async fn wait_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    common::wait_for(within, what, || {
        let holds = cond();
        async move { if holds { Ok(()) } else { Err("not yet".to_string()) } }
    })
    .await
}

// ---------------------------------------------------------------------------------
// 1. Line protocol
// ---------------------------------------------------------------------------------

#[test]
fn line_for_a_normal_point() {
    let p = MigrationPoint {
        pod_name: "nginx-7c5b".to_owned(),
        namespace: "default".to_owned(),
        source_node: "node-1".to_owned(),
        target_node: "node-2".to_owned(),
        success: true,
        strategy: "recreate".to_owned(),
        duration_seconds: 12.5,
        time: ts(1_700_000_000_123_456_789),
    };
    assert_eq!(
        line(&p),
        "pod_migration,namespace=default,pod_name=nginx-7c5b,source_node=node-1,strategy=recreate,success=true,\
         target_node=node-2 migration_count=1i,duration_seconds=12.5 1700000000123456789"
    );
    let failed = MigrationPoint { success: false, duration_seconds: 3.0, ..p };
    assert_eq!(
        line(&failed),
        "pod_migration,namespace=default,pod_name=nginx-7c5b,source_node=node-1,strategy=recreate,success=false,\
         target_node=node-2 migration_count=1i,duration_seconds=3 1700000000123456789"
    );
}

#[test]
fn line_escapes_special_characters_and_skips_empty_tags() {
    let p = MigrationPoint {
        pod_name: "my pod,v=2".to_owned(),
        namespace: "team a".to_owned(),
        source_node: "rack=1,node 1".to_owned(),
        target_node: String::new(),
        success: false,
        strategy: "surge".to_owned(),
        duration_seconds: 0.25,
        time: ts(1),
    };
    assert_eq!(
        line(&p),
        r"pod_migration,namespace=team\ a,pod_name=my\ pod\,v\=2,source_node=rack\=1\,node\ 1,strategy=surge,success=false migration_count=1i,duration_seconds=0.25 1"
    );
    let odd = MigrationPoint { pod_name: "a\nb\\c".to_owned(), duration_seconds: f64::NAN, time: ts(-5), ..p };
    assert_eq!(
        line(&odd),
        r"pod_migration,namespace=team\ a,pod_name=a\ b/c,source_node=rack\=1\,node\ 1,strategy=surge,success=false migration_count=1i -5"
    );
}

// ---------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------

#[test]
fn config_debug_redacts_the_token() {
    let config = InfluxConfig { url: "http://admin:hunter2@influx:8086".to_owned(), ..v2_config("") };
    let shown = format!("{config:?}");
    assert!(!shown.contains(TOKEN), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
    let shown = format!("{:#?}", InfluxConfig::default());
    assert!(shown.contains("token: None"), "{shown}");
}

#[tokio::test]
async fn spawn_rejects_bad_configuration_with_clear_errors() {
    let cases = [
        ("ftp://influx:8086", None, "http:// or https://"),
        ("not a url", None, "not a valid URL"),
        ("http://", None, "INFLUX_URL"),
        ("http://influx:8086/?x=1", None, "query"),
    ];
    for (url, database, expected) in cases {
        let config = InfluxConfig { url: url.to_owned(), database, ..v2_config("") };
        let err = influx::spawn(config).unwrap_err().to_string();
        assert!(err.contains(expected), "{url}: {err}");
        assert!(!err.contains(TOKEN), "{err}");
    }
    let err = influx::spawn(InfluxConfig { bucket: String::new(), ..v2_config("http://influx:8086") })
        .unwrap_err()
        .to_string();
    assert!(err.contains("INFLUX_BUCKET"), "{err}");
    let err = influx::spawn(InfluxConfig { batch_size: 0, ..v2_config("http://influx:8086") }).unwrap_err().to_string();
    assert!(err.contains("batch size"), "{err}");
    let err = influx::spawn(InfluxConfig { token: Some("a\nb".to_owned()), ..v2_config("http://influx:8086") })
        .unwrap_err()
        .to_string();
    assert!(err.contains("INFLUX_TOKEN") && !err.contains("a\nb"), "{err}");
}

#[test]
fn spawn_outside_a_runtime_is_an_error_not_a_panic() {
    let err = influx::spawn(v2_config("http://127.0.0.1:9")).unwrap_err().to_string();
    assert!(err.contains("runtime"), "{err}");
}

// ---------------------------------------------------------------------------------
// 2. A scripted loopback server
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Seen {
    path_and_query: String,
    authorization: Option<String>,
    content_type: Option<String>,
    body: String,
    answered: u16,
}

/// Records every request and answers from a script (204 once the script is empty).
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<VecDeque<(u16, &'static str)>>>,
}

impl Recorder {
    fn scripted(answers: &[(u16, &'static str)]) -> Self {
        let r = Recorder::default();
        r.script.lock().extend(answers.iter().copied());
        r
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().clone()
    }

    /// The bodies InfluxDB accepted, split into lines.
    fn accepted_lines(&self) -> Vec<String> {
        self.seen
            .lock()
            .iter()
            .filter(|s| s.answered == 204)
            .flat_map(|s| s.body.lines().map(str::to_owned).collect::<Vec<_>>())
            .collect()
    }

    async fn serve(self) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(answer).with_state(self);
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }
}

async fn answer(State(rec): State<Recorder>, request: Request) -> Response {
    let (authorization, content_type) = {
        let header = |name: &str| request.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
        (header("authorization"), header("content-type"))
    };
    let path_and_query = request.uri().path_and_query().map(ToString::to_string).unwrap_or_default();
    let body = axum::body::to_bytes(request.into_body(), usize::MAX).await.unwrap();
    let (status, text) = rec.script.lock().pop_front().unwrap_or((204, ""));
    rec.seen.lock().push(Seen {
        path_and_query,
        authorization,
        content_type,
        body: String::from_utf8(body.to_vec()).unwrap(),
        answered: status,
    });
    Response::builder().status(StatusCode::from_u16(status).unwrap()).body(Body::from(text)).unwrap()
}

/// Everything logged on this thread while the guard lives (current-thread tests only:
/// the writer's task then runs on this thread too).
struct CapturedLogs {
    buf: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    fn start() -> Self {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = LogBuf(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        CapturedLogs { buf, _guard: tracing::subscriber::set_default(subscriber) }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock()).into_owned()
    }
}

fn assert_no_token(handle: &InfluxHandle, logs: &CapturedLogs) {
    let stats = handle.stats();
    let last_error = stats.last_error.unwrap_or_default();
    assert!(!last_error.contains(TOKEN), "token in last_error: {last_error}");
    assert!(!format!("{handle:?}").contains(TOKEN));
    let logs = logs.text();
    assert!(!logs.is_empty(), "nothing was logged");
    assert!(!logs.contains(TOKEN), "token in logs:\n{logs}");
}

#[tokio::test]
async fn v2_write_sends_the_exact_request() {
    let rec = Recorder::default();
    let url = rec.clone().serve().await;
    let handle = influx::spawn(InfluxConfig { batch_size: 2, ..v2_config(&url) }).unwrap();
    handle.record(point("nginx-1", true, "recreate", 12.5, 1_700_000_000_000_000_001));
    handle.record(MigrationPoint {
        namespace: "team a".to_owned(),
        target_node: String::new(),
        ..point("db,0", false, "surge", 0.75, 1_700_000_000_000_000_002)
    });
    wait_until("2 points written", Duration::from_secs(10), || handle.stats().written == 2).await;

    let seen = rec.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let req = &seen[0];
    assert_eq!(req.path_and_query, "/api/v2/write?org=keti&bucket=turtlebot&precision=ns");
    assert_eq!(req.authorization.as_deref(), Some("Token s3cret"));
    assert_eq!(req.content_type.as_deref(), Some("text/plain; charset=utf-8"));
    assert_eq!(
        req.body,
        "pod_migration,namespace=default,pod_name=nginx-1,source_node=node-1,strategy=recreate,success=true,\
         target_node=node-2 migration_count=1i,duration_seconds=12.5 1700000000000000001\n\
         pod_migration,namespace=team\\ a,pod_name=db\\,0,source_node=node-1,strategy=surge,success=false \
         migration_count=1i,duration_seconds=0.75 1700000000000000002"
    );
    let stats = handle.stats();
    assert_eq!((stats.written, stats.dropped, stats.errors, stats.buffered), (2, 0, 0, 0));
    assert!(stats.healthy && stats.last_error.is_none());
    handle.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn v1_write_uses_the_database_and_the_token_when_set() {
    let rec = Recorder::default();
    let url = rec.clone().serve().await;
    let with_token = influx::spawn(InfluxConfig { database: Some("sdi".to_owned()), ..v2_config(&url) }).unwrap();
    with_token.record(point("a", true, "recreate", 1.0, 10));
    with_token.shutdown(Duration::from_secs(5)).await;
    let without =
        influx::spawn(InfluxConfig { database: Some("sdi".to_owned()), token: None, ..v2_config(&url) }).unwrap();
    without.record(point("b", true, "recreate", 1.0, 11));
    without.shutdown(Duration::from_secs(5)).await;

    let seen = rec.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen.iter().all(|s| s.path_and_query == "/write?db=sdi&precision=ns"), "{seen:?}");
    assert_eq!(seen[0].authorization.as_deref(), Some("Token s3cret"));
    assert_eq!(seen[1].authorization, None);
    assert_eq!(
        rec.accepted_lines(),
        vec![line(&point("a", true, "recreate", 1.0, 10)), line(&point("b", true, "recreate", 1.0, 11))]
    );
}

#[tokio::test]
async fn a_path_prefix_in_the_url_is_kept() {
    let rec = Recorder::default();
    let url = rec.clone().serve().await;
    let handle = influx::spawn(v2_config(&format!("{url}/influx/"))).unwrap();
    handle.record(point("a", true, "recreate", 1.0, 10));
    handle.shutdown(Duration::from_secs(5)).await;
    assert_eq!(rec.seen()[0].path_and_query, "/influx/api/v2/write?org=keti&bucket=turtlebot&precision=ns");
}

#[tokio::test]
async fn unavailable_twice_then_written_exactly_once() {
    let logs = CapturedLogs::start();
    let rec = Recorder::scripted(&[(503, "overloaded"), (503, "overloaded")]);
    let url = rec.clone().serve().await;
    let handle = influx::spawn(InfluxConfig { batch_size: 5, ..v2_config(&url) }).unwrap();
    let points: Vec<_> = (0..5).map(|i| point(&format!("pod-{i}"), i % 2 == 0, "recreate", 1.5, 100 + i)).collect();
    for p in &points {
        handle.record(p.clone());
    }
    wait_until("5 points written", Duration::from_secs(10), || handle.stats().written == 5).await;

    let stats = handle.stats();
    assert_eq!((stats.written, stats.dropped, stats.errors, stats.buffered), (5, 0, 2, 0), "{stats:?}");
    assert!(stats.healthy);
    assert!(stats.last_error.as_deref().unwrap().contains("503"), "{stats:?}");
    let seen = rec.seen();
    assert_eq!(seen.iter().map(|s| s.answered).collect::<Vec<_>>(), [503, 503, 204]);
    assert!(seen.iter().all(|s| s.body == seen[0].body), "every attempt sends the same batch");
    assert_eq!(rec.accepted_lines(), points.iter().map(line).collect::<Vec<_>>());
    let text = logs.text();
    assert_eq!(text.matches("InfluxDB unreachable").count(), 1, "once, not per attempt:\n{text}");
    assert_eq!(text.matches("InfluxDB reachable again").count(), 1, "{text}");
    assert_no_token(&handle, &logs);
    handle.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn too_many_requests_is_retried() {
    let rec = Recorder::scripted(&[(429, "slow down")]);
    let url = rec.clone().serve().await;
    let handle = influx::spawn(InfluxConfig { batch_size: 1, ..v2_config(&url) }).unwrap();
    handle.record(point("a", true, "recreate", 1.0, 10));
    wait_until("written", Duration::from_secs(10), || handle.stats().written == 1).await;
    assert_eq!(handle.stats().errors, 1);
    handle.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn bad_request_drops_the_batch_and_counts_it() {
    let logs = CapturedLogs::start();
    let rec = Recorder::scripted(&[(400, r#"{"code":"invalid","message":"unable to parse points"}"#)]);
    let url = rec.clone().serve().await;
    let handle = influx::spawn(InfluxConfig { batch_size: 3, ..v2_config(&url) }).unwrap();
    for i in 0..3 {
        handle.record(point(&format!("pod-{i}"), true, "recreate", 2.0, 200 + i));
    }
    wait_until("3 points dropped", Duration::from_secs(10), || handle.stats().dropped == 3).await;
    let stats = handle.stats();
    assert_eq!((stats.written, stats.dropped, stats.errors, stats.buffered), (0, 3, 1, 0), "{stats:?}");
    assert!(stats.healthy, "a 400 is bad data, not an unhealthy InfluxDB");
    let last_error = stats.last_error.unwrap();
    assert!(last_error.contains("400") && last_error.contains("unable to parse points"), "{last_error}");

    // Not retried; the next points go through.
    handle.record(point("later", true, "recreate", 2.0, 300));
    wait_until("the next point written", Duration::from_secs(10), || handle.stats().written == 1).await;
    assert_eq!(rec.seen().len(), 2);
    assert!(logs.text().contains("unable to parse points"), "the answer body is logged:\n{}", logs.text());
    assert_no_token(&handle, &logs);
    handle.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn unauthorized_drops_and_reports_unhealthy() {
    let rec = Recorder::scripted(&[(401, r#"{"code":"unauthorized","message":"unauthorized access"}"#)]);
    let url = rec.clone().serve().await;
    let handle = influx::spawn(InfluxConfig { batch_size: 1, ..v2_config(&url) }).unwrap();
    handle.record(point("a", true, "recreate", 1.0, 10));
    wait_until("dropped", Duration::from_secs(10), || handle.stats().dropped == 1).await;
    let stats = handle.stats();
    assert!(!stats.healthy && stats.errors == 1, "{stats:?}");
    handle.shutdown(Duration::from_secs(5)).await;
}

/// A port nothing listens on (bound, then released).
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn unreachable_influx_never_blocks_record_and_drops_the_oldest() {
    let logs = CapturedLogs::start();
    let port = closed_port().await;
    let handle =
        influx::spawn(InfluxConfig { buffer_limit: 1_000, ..v2_config(&format!("http://127.0.0.1:{port}")) }).unwrap();
    // 10,000 synchronous calls: `record` cannot await anything.
    let record_all = |handle: &InfluxHandle, from: i128| {
        for i in from..from + 10_000 {
            handle.record(point(&format!("pod-{i}"), true, "recreate", 1.0, i));
        }
    };
    record_all(&handle, 0);
    let stats = handle.stats();
    assert_eq!((stats.buffered, stats.dropped, stats.written), (1_000, 9_000, 0), "{stats:?}");

    wait_until("a failed attempt", Duration::from_secs(10), || {
        let s = handle.stats();
        s.errors >= 1 && !s.healthy
    })
    .await;
    let last_error = handle.stats().last_error.unwrap();
    assert!(last_error.contains("cannot reach InfluxDB"), "{last_error}");

    // Still never blocks, still bounded, while the task retries.
    record_all(&handle, 10_000);
    let stats = handle.stats();
    assert_eq!(stats.buffered, 1_000);
    // All but at most one batch on the wire (settled when its answer comes) are counted.
    assert_eq!(stats.written, 0);
    assert!((18_900..=19_000).contains(&stats.dropped), "{stats:?}");

    let unreachable_logs = logs.text().matches("InfluxDB unreachable").count();
    assert_eq!(unreachable_logs, 1, "logged once, not per attempt:\n{}", logs.text());
    assert_eq!(logs.text().matches("buffer full").count(), 1, "{}", logs.text());
    assert_no_token(&handle, &logs);

    let stopped = handle.clone();
    tokio::time::timeout(Duration::from_secs(10), handle.shutdown(Duration::from_millis(300)))
        .await
        .expect("shutdown is bounded");
    let stats = stopped.stats();
    assert_eq!((stats.written, stats.dropped, stats.buffered), (0, 20_000, 0), "{stats:?}");
    stopped.record(point("after", true, "recreate", 1.0, 1));
    assert_eq!(stopped.stats().dropped, 20_001);
}

#[tokio::test]
async fn overflow_keeps_the_newest_points() {
    let rec = Recorder::default();
    let url = rec.clone().serve().await;
    let handle = influx::spawn(InfluxConfig { buffer_limit: 1_000, ..v2_config(&url) }).unwrap();
    // The test runs on one thread: the writer cannot run during this loop.
    for i in 0..10_000 {
        handle.record(point(&format!("pod-{i}"), true, "recreate", 1.0, i));
    }
    wait_until("1,000 points written", Duration::from_secs(10), || handle.stats().written == 1_000).await;
    let stats = handle.stats();
    assert_eq!((stats.written, stats.dropped, stats.buffered), (1_000, 9_000, 0), "{stats:?}");
    let expected: Vec<_> =
        (9_000..10_000).map(|i| line(&point(&format!("pod-{i}"), true, "recreate", 1.0, i))).collect();
    assert_eq!(rec.accepted_lines(), expected);
    assert!(rec.seen().iter().all(|s| s.body.lines().count() <= 100), "batches of at most batch_size");
    handle.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_silent_influx_times_out_without_blocking() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let handle = influx::spawn(InfluxConfig {
        batch_size: 1,
        timeout: Duration::from_millis(200),
        ..v2_config(&format!("http://{addr}"))
    })
    .unwrap();
    handle.record(point("a", true, "recreate", 1.0, 1));
    wait_until("a timed-out attempt", Duration::from_secs(10), || handle.stats().errors >= 1).await;
    let stats = handle.stats();
    assert!(!stats.healthy && stats.buffered == 1, "{stats:?}");
    assert!(stats.last_error.as_deref().unwrap().contains("in time"), "{stats:?}");
    for i in 0..1_000 {
        handle.record(point("more", true, "recreate", 1.0, i));
    }
    tokio::time::timeout(Duration::from_secs(10), handle.shutdown(Duration::from_millis(300)))
        .await
        .expect("shutdown is bounded");
}

#[tokio::test]
async fn shutdown_flushes_a_partial_batch() {
    let rec = Recorder::default();
    let url = rec.clone().serve().await;
    let handle = influx::spawn(InfluxConfig { flush_interval: Duration::from_secs(3600), ..v2_config(&url) }).unwrap();
    let points: Vec<_> = (0..3).map(|i| point(&format!("pod-{i}"), true, "pin", 4.0, i)).collect();
    for p in &points {
        handle.record(p.clone());
    }
    let stats_of = handle.clone();
    handle.shutdown(Duration::from_secs(5)).await;
    assert_eq!(rec.accepted_lines(), points.iter().map(line).collect::<Vec<_>>());
    let stats = stats_of.stats();
    assert_eq!((stats.written, stats.dropped, stats.buffered), (3, 0, 0), "{stats:?}");
}

// ---------------------------------------------------------------------------------
// 3. A real InfluxDB 1.x
// ---------------------------------------------------------------------------------

use common::influxd::Influxd;

fn assert_row(row: &serde_json::Map<String, Value>, p: &MigrationPoint) {
    let ctx = format!("{row:?} vs {p:?}");
    assert_eq!(row["time"].as_i64(), Some(i64::try_from(p.time.as_nanosecond()).unwrap()), "{ctx}");
    assert_eq!(row["pod_name"], p.pod_name.as_str(), "{ctx}");
    assert_eq!(row["namespace"], p.namespace.as_str(), "{ctx}");
    assert_eq!(row["source_node"], p.source_node.as_str(), "{ctx}");
    assert_eq!(row["target_node"], p.target_node.as_str(), "{ctx}");
    assert_eq!(row["success"], if p.success { "true" } else { "false" }, "{ctx}");
    assert_eq!(row["strategy"], p.strategy.as_str(), "{ctx}");
    assert_eq!(row["migration_count"].as_i64(), Some(1), "{ctx}");
    assert_eq!(row["duration_seconds"].as_f64(), Some(p.duration_seconds), "{ctx}");
}

async fn wait_for_rows(influxd: &Influxd, n: usize) -> Vec<serde_json::Map<String, Value>> {
    common::wait_for(Duration::from_secs(30), &format!("{n} rows in InfluxDB"), || async {
        let rows = influxd.rows().await;
        if rows.len() >= n { Ok(rows) } else { Err(format!("only {} rows: {rows:?}", rows.len())) }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_influxdb_1x_receives_points_and_survives_a_restart() {
    let mut influxd = Influxd::start().await;
    influxd.query(true, "CREATE DATABASE sdi").await;

    let handle = influx::spawn(InfluxConfig {
        url: influxd.url(),
        token: None,
        database: Some("sdi".to_owned()),
        batch_size: 10,
        flush_interval: Duration::from_millis(100),
        timeout: Duration::from_secs(2),
        max_backoff: Duration::from_millis(500),
        ..InfluxConfig::default()
    })
    .unwrap();

    let base: i128 = 1_700_000_000_000_000_000;
    let first = vec![
        point("nginx-7c5b", true, "recreate", 12.5, base + 1),
        MigrationPoint { namespace: "kube-system".to_owned(), ..point("coredns-1", false, "surge", 0.125, base + 2) },
        MigrationPoint { target_node: "node 3".to_owned(), ..point("web,1", true, "pin", 3.0, base + 3) },
        point("redis-0", true, "evict", 42.75, base + 4),
    ];
    for p in &first {
        handle.record(p.clone());
    }
    wait_until("4 points written", Duration::from_secs(30), || handle.stats().written == 4).await;
    let rows = wait_for_rows(&influxd, 4).await;
    assert_eq!(rows.len(), 4, "{rows:?}");
    for (row, p) in rows.iter().zip(&first) {
        assert_row(row, p);
    }
    let fields = influxd.query(false, "SHOW FIELD KEYS FROM pod_migration").await;
    let mut types: Vec<(String, String)> = fields["results"][0]["series"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v[0].as_str().unwrap().to_owned(), v[1].as_str().unwrap().to_owned()))
        .collect();
    types.sort();
    assert_eq!(
        types,
        [("duration_seconds".to_owned(), "float".to_owned()), ("migration_count".to_owned(), "integer".to_owned())]
    );

    // InfluxDB goes away: record keeps working, the writer notices and keeps the points.
    influxd.kill().await;
    let errors_before = handle.stats().errors;
    let second: Vec<_> = (0..3)
        .map(|i| point(&format!("during-outage-{i}"), i != 1, "recreate", 5.5 + i as f64, base + 10 + i))
        .collect();
    for p in &second {
        handle.record(p.clone());
    }
    wait_until("a failed attempt while influxd is down", Duration::from_secs(30), || {
        let s = handle.stats();
        s.errors > errors_before && !s.healthy
    })
    .await;
    let stats = handle.stats();
    assert_eq!((stats.written, stats.buffered), (4, 3), "{stats:?}");

    // Back on the same data and port: the buffered points arrive, nothing is lost.
    influxd.run().await;
    wait_until("the buffered points written", Duration::from_secs(60), || handle.stats().written == 7).await;
    let stats = handle.stats();
    assert!(stats.healthy && stats.buffered == 0 && stats.dropped == 0, "{stats:?}");
    let rows = wait_for_rows(&influxd, 7).await;
    assert_eq!(rows.len(), 7, "{rows:?}");
    for (row, p) in rows.iter().zip(first.iter().chain(&second)) {
        assert_row(row, p);
    }

    handle.shutdown(Duration::from_secs(5)).await;
    influxd.kill().await;
    assert!(influxd.dir.path().join("wal").exists(), "influxd used the temporary data directory");
}

const SERVICE_PODS: &str = r#"
workloads:
  - kind: Pod
    name: app-{i}
    count: 3
    nodeName: w1
    containers: [{name: app, requests: {cpu: 100m, memory: 64Mi}}]
"#;

/// The service end to end: migrations write `pod_migration` points; InfluxDB
/// going away never fails a migration, and the writer catches up when it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_writes_one_point_per_migration_and_survives_influxdb_going_away() {
    sdi_migration::policy::init_tls();
    let mut influxd = Influxd::start().await;
    influxd.query(true, "CREATE DATABASE sdi").await;
    let settings = sdi_migration::config::Settings {
        influx_url: Some(influxd.url()),
        influx_database: Some("sdi".into()),
        ..common::settings()
    };
    let env = common::Env::start_with(SERVICE_PODS, settings, 5.0).await;
    let (_, ok) = env.migrate(common::request("app-1", "default", "w1", "w2")).await;
    let ok = env.finished(ok["migration_id"].as_str().unwrap(), 60).await;
    assert_eq!(ok["status"], "completed");
    let mut bad = common::request("app-2", "default", "w1", "w2");
    bad["strategy"] = serde_json::json!("recreate");
    bad["checkpoint"] = serde_json::json!(true);
    // w1 cannot checkpoint: a demanded checkpoint fails the job.
    let nodes = env.sim.dynamic("v1", "nodes", None).unwrap();
    let annotate = serde_json::json!({"metadata": {"annotations": {"sim.kube-sim.io/checkpoint": "false"}}});
    nodes.patch("w1", None, kube_sim::PatchType::Merge, &annotate).unwrap();
    let (_, bad) = env.migrate(bad).await;
    let bad = env.finished(bad["migration_id"].as_str().unwrap(), 60).await;
    assert_eq!(bad["status"], "failed");

    let rows = wait_for_rows(&influxd, 2).await;
    let row =
        |pod: &str| rows.iter().find(|r| r["pod_name"] == pod).unwrap_or_else(|| panic!("{pod}: {rows:?}")).clone();
    let (r1, r2) = (row("app-1"), row("app-2"));
    for (r, success) in [(&r1, "true"), (&r2, "false")] {
        assert_eq!(r["namespace"], "default");
        assert_eq!(r["source_node"], "w1");
        assert_eq!(r["target_node"], "w2");
        assert_eq!(r["success"], success);
        assert_eq!(r["strategy"], "recreate");
        assert_eq!(r["migration_count"], 1);
        assert!(r["duration_seconds"].as_f64().unwrap() > 0.0, "{r:?}");
    }
    let measured = ok["details"]["duration"].as_f64().unwrap() / 1e9;
    assert!((r1["duration_seconds"].as_f64().unwrap() - measured).abs() < 1e-6, "{r1:?} vs {measured}");

    // InfluxDB goes away: migrations still complete; /metrics shows the trouble.
    influxd.kill().await;
    let (_, third) = env.migrate(common::request("app-3", "default", "w1", "w2")).await;
    let third = env.finished(third["migration_id"].as_str().unwrap(), 60).await;
    assert_eq!(third["status"], "completed", "{third:#}");
    common::eventually(30, "the writer reports errors", || async {
        let text = env.http.get(env.url("/metrics")).send().await.unwrap().text().await.unwrap();
        text.contains("sdi_influxdb_healthy 0") && !text.contains("sdi_influxdb_write_errors_total 0")
    })
    .await;
    // It returns: the buffered point arrives.
    influxd.run().await;
    let rows = wait_for_rows(&influxd, 3).await;
    assert!(rows.iter().any(|r| r["pod_name"] == "app-3"), "{rows:?}");
    common::eventually(30, "the writer is healthy again", || async {
        let text = env.http.get(env.url("/metrics")).send().await.unwrap().text().await.unwrap();
        text.contains("sdi_influxdb_healthy 1") && text.contains("sdi_influxdb_points_written_total 3")
    })
    .await;
}
