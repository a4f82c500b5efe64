//! The InfluxDB writer: one `pod_migration` point per finished migration.
//!
//! [`InfluxHandle::record`] is synchronous and cheap: it renders the point to line
//! protocol and appends it to a bounded in-memory buffer. A background task (started
//! by [`spawn`]) writes the buffer in batches — when `batch_size` points are waiting
//! or every `flush_interval` — to
//!
//! - InfluxDB 2: `POST {url}/api/v2/write?org=…&bucket=…&precision=ns` with
//!   `Authorization: Token …`, or
//! - InfluxDB 1.x, when a database is configured: `POST {url}/write?db=…&precision=ns`,
//!   with `Authorization: Token …` only if a token is set (1.8+ accepts it for v1 auth).
//!
//! What happens to a batch:
//!
//! | answer                                   | batch                          | counted as             |
//! |------------------------------------------|--------------------------------|------------------------|
//! | 2xx                                      | removed                        | `written`              |
//! | connection error, timeout, 408, 429, 5xx | kept, retried with backoff     | `errors` (per attempt) |
//! | any other 4xx (bad data, auth, no bucket)| removed, answer body logged    | `errors` + `dropped`   |
//!
//! While InfluxDB is unreachable the points stay in the buffer; when it is full the
//! oldest point is dropped (and counted) to make room. The unreachable → reachable
//! transitions are logged once each, not per attempt. The token never appears in
//! `Debug` output, errors, [`InfluxStats::last_error`] or logs.
//!
//! Accounting: every recorded point ends up exactly once in `written`, `dropped` or
//! `buffered` (a point evicted from the buffer while its batch is on the wire is
//! settled when the answer comes: `written` if it was accepted, `dropped` if not).
//! A 1.x "partial write" (400 naming some bad points) counts the whole batch as
//! dropped, though InfluxDB kept the good ones.

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use parking_lot::Mutex;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// The measurement every point goes to.
pub const MEASUREMENT: &str = "pod_migration";

/// Default `INFLUX_URL` (seed 000).
pub const DEFAULT_URL: &str = "http://influxdb.tbot-monitoring.svc.cluster.local:8086";
/// Points per write request.
pub const DEFAULT_BATCH_SIZE: usize = 100;
/// A partial batch waits at most this long.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Points kept while InfluxDB is unreachable; beyond it the oldest are dropped.
pub const DEFAULT_BUFFER_LIMIT: usize = 10_000;
/// Time limit of one write request (connect + send + answer).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Cap of the exponential backoff between failed attempts.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);
/// First delay after a failed attempt (or `max_backoff` if that is smaller).
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// How much of an error answer's body goes into logs and `last_error`.
const BODY_EXCERPT: usize = 512;

/// Where and how to write. `Debug` redacts the token (and a password in the URL).
#[derive(Clone)]
pub struct InfluxConfig {
    /// Base URL, `http://` or `https://` with a host; a path prefix is kept.
    pub url: String,
    /// InfluxDB 2 organisation (ignored in 1.x mode).
    pub org: String,
    /// InfluxDB 2 bucket (ignored in 1.x mode).
    pub bucket: String,
    /// Sent as `Authorization: Token …`; `None` or empty: no header.
    pub token: Option<String>,
    /// InfluxDB 1.x database; when set (and not empty) the 1.x write API is used.
    pub database: Option<String>,
    /// Points per write request; reaching it triggers a flush (default 100).
    pub batch_size: usize,
    /// A partial batch is written after at most this long (default 1 s).
    pub flush_interval: Duration,
    /// Points kept in memory; when full, the oldest is dropped (default 10,000).
    pub buffer_limit: usize,
    /// Time limit of one write request (default 5 s).
    pub timeout: Duration,
    /// Cap of the exponential backoff between failed attempts (default 30 s).
    pub max_backoff: Duration,
}

impl Default for InfluxConfig {
    /// The original deployment's InfluxDB 2 (`keti` / `turtlebot`), no token.
    fn default() -> Self {
        InfluxConfig {
            url: DEFAULT_URL.to_owned(),
            org: "keti".to_owned(),
            bucket: "turtlebot".to_owned(),
            token: None,
            database: None,
            batch_size: DEFAULT_BATCH_SIZE,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            buffer_limit: DEFAULT_BUFFER_LIMIT,
            timeout: DEFAULT_TIMEOUT,
            max_backoff: DEFAULT_MAX_BACKOFF,
        }
    }
}

impl fmt::Debug for InfluxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InfluxConfig")
            .field("url", &redact_url(&self.url))
            .field("org", &self.org)
            .field("bucket", &self.bucket)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("database", &self.database)
            .field("batch_size", &self.batch_size)
            .field("flush_interval", &self.flush_interval)
            .field("buffer_limit", &self.buffer_limit)
            .field("timeout", &self.timeout)
            .field("max_backoff", &self.max_backoff)
            .finish()
    }
}

/// One finished migration.
#[derive(Debug, Clone, PartialEq)]
pub struct MigrationPoint {
    pub pod_name: String,
    pub namespace: String,
    pub source_node: String,
    pub target_node: String,
    pub success: bool,
    pub strategy: String,
    pub duration_seconds: f64,
    /// When the migration finished.
    pub time: jiff::Timestamp,
}

/// The point as one line of InfluxDB line protocol (no trailing newline).
///
/// `pod_migration,namespace=…,pod_name=…,source_node=…,strategy=…,success=true|false,target_node=…
/// migration_count=1i,duration_seconds=<float> <unix ns>`
///
/// - Tags are sorted by key, as InfluxDB prefers.
/// - Commas, spaces and equals signs in tag values are backslash-escaped; control
///   characters (newlines would end the line) become escaped spaces; a backslash
///   becomes `/`, because line protocol has no escape for it that round-trips in
///   every position (Kubernetes names cannot contain any of these anyway).
/// - A tag whose value is empty is left out — line protocol forbids empty tag values,
///   and InfluxQL/Flux read a missing tag as the empty string, so
///   `WHERE target_node = ''` still finds it. No placeholder that could be mistaken
///   for a real node name.
/// - `duration_seconds` is written with Rust's shortest round-trip float formatting;
///   a NaN or infinite duration (which line protocol cannot carry) leaves the field
///   out, `migration_count` is always there.
pub fn line(p: &MigrationPoint) -> String {
    let success = if p.success { "true" } else { "false" };
    let tags = [
        ("namespace", p.namespace.as_str()),
        ("pod_name", p.pod_name.as_str()),
        ("source_node", p.source_node.as_str()),
        ("strategy", p.strategy.as_str()),
        ("success", success),
        ("target_node", p.target_node.as_str()),
    ];
    let mut out = String::with_capacity(192);
    out.push_str(MEASUREMENT);
    for (key, value) in tags {
        if value.is_empty() {
            continue;
        }
        out.push(',');
        out.push_str(key);
        out.push('=');
        escape_tag_value(value, &mut out);
    }
    out.push_str(" migration_count=1i");
    if p.duration_seconds.is_finite() {
        let _ = write!(out, ",duration_seconds={}", p.duration_seconds);
    }
    let _ = write!(out, " {}", p.time.as_nanosecond());
    out
}

fn escape_tag_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            ',' | ' ' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '\\' => out.push('/'),
            c if c.is_control() => out.push_str("\\ "),
            c => out.push(c),
        }
    }
}

/// The writer's counters, for `/metrics` and health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfluxStats {
    /// Points InfluxDB accepted.
    pub written: u64,
    /// Points given up on: evicted from a full buffer, rejected by InfluxDB (4xx other
    /// than 408/429), recorded after shutdown, or still buffered when shutdown ended.
    pub dropped: u64,
    /// Failed write attempts (transient ones, each retry counting, and rejections).
    pub errors: u64,
    /// Points waiting to be written.
    pub buffered: usize,
    /// The last failure, without the token; kept after recovery for diagnosis.
    pub last_error: Option<String>,
    /// `false` while the last attempt failed transiently or was refused for
    /// configuration reasons (401, 403, 404: token, bucket or database); `true` before
    /// the first attempt and after a successful one. A 400 (bad data) leaves it alone.
    pub healthy: bool,
}

/// Records points; cheap to clone; every clone feeds the same writer.
#[derive(Clone)]
pub struct InfluxHandle {
    shared: Arc<Shared>,
    control: Arc<Control>,
}

impl fmt::Debug for InfluxHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InfluxHandle").field("stats", &self.stats()).finish_non_exhaustive()
    }
}

impl InfluxHandle {
    /// Enqueues the point. Never blocks on I/O and never fails: when the buffer is
    /// full, the oldest point is dropped and counted.
    pub fn record(&self, p: MigrationPoint) {
        let line = line(&p);
        let (wake, overflow_started) = {
            let mut q = self.shared.queue.lock();
            if q.closed {
                q.dropped += 1;
                return;
            }
            let mut overflow_started = false;
            if q.lines.len() >= self.shared.buffer_limit
                && let Some((seq, _)) = q.lines.pop_front()
            {
                if q.in_flight.is_some_and(|upto| seq <= upto) {
                    q.evicted_in_flight += 1;
                } else {
                    q.dropped += 1;
                }
                overflow_started = !q.overflowing;
                q.overflowing = true;
            }
            let seq = q.next_seq;
            q.next_seq += 1;
            q.lines.push_back((seq, line));
            (q.lines.len() >= self.shared.batch_size, overflow_started)
        };
        if overflow_started {
            tracing::warn!(
                buffer_limit = self.shared.buffer_limit,
                "InfluxDB buffer full: dropping the oldest points until writes catch up"
            );
        }
        if wake {
            self.shared.wake.notify_one();
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> InfluxStats {
        let q = self.shared.queue.lock();
        InfluxStats {
            written: q.written,
            dropped: q.dropped,
            errors: q.errors,
            buffered: q.lines.len(),
            last_error: q.last_error.clone(),
            healthy: q.healthy,
        }
    }

    /// Writes what it can of the buffer within `within`, then stops the background
    /// task. Points still unwritten are counted as dropped; later `record` calls (on
    /// other clones) only count drops.
    pub async fn shutdown(self, within: Duration) {
        self.control.stop.send_replace(true);
        let task = self.control.task.lock().take();
        if let Some(mut task) = task
            && tokio::time::timeout(within, &mut task).await.is_err()
        {
            task.abort();
            let _ = task.await;
        }
        let lost = self.shared.close();
        if lost > 0 {
            tracing::warn!(lost, "InfluxDB writer stopped; points not written are counted as dropped");
        } else {
            tracing::debug!("InfluxDB writer stopped; everything recorded was written");
        }
    }
}

/// A configuration the writer cannot start with: what is wrong, never the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl From<String> for ConfigError {
    fn from(s: String) -> Self {
        ConfigError(s)
    }
}

/// Validates the configuration, builds the HTTP client and starts the background
/// task on the current tokio runtime. Errors name what is wrong (never the token).
pub fn spawn(config: InfluxConfig) -> Result<InfluxHandle, ConfigError> {
    if config.batch_size == 0 || config.batch_size > config.buffer_limit {
        return Err(ConfigError(format!(
            "InfluxDB batch size must be between 1 and the buffer limit ({}), got {}",
            config.buffer_limit, config.batch_size
        )));
    }
    for (name, value) in
        [("flush interval", config.flush_interval), ("timeout", config.timeout), ("max backoff", config.max_backoff)]
    {
        if value.is_zero() {
            return Err(ConfigError(format!("InfluxDB {name} must be longer than zero")));
        }
    }
    let endpoint = endpoint(&config)?;
    let token = config.token.as_deref().filter(|t| !t.is_empty());
    let auth = match token {
        Some(t) => {
            let mut value = HeaderValue::from_str(&format!("Token {t}")).map_err(|_| {
                ConfigError("INFLUX_TOKEN contains characters not allowed in an HTTP header".to_owned())
            })?;
            value.set_sensitive(true);
            Some(value)
        }
        None => None,
    };
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| ConfigError("the InfluxDB writer must be started from within the tokio runtime".to_owned()))?;
    crate::policy::init_tls();
    let client = reqwest::Client::builder()
        .timeout(config.timeout)
        .connect_timeout(config.timeout)
        .build()
        .map_err(|e| ConfigError(format!("cannot build the InfluxDB HTTP client: {}", error_chain(&e))))?;

    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue { healthy: true, ..Queue::default() }),
        wake: Notify::new(),
        batch_size: config.batch_size,
        buffer_limit: config.buffer_limit,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    tracing::info!(
        endpoint = %endpoint,
        batch_size = config.batch_size,
        buffer_limit = config.buffer_limit,
        "InfluxDB writer started"
    );
    let writer = Writer { client, endpoint, auth, token: token.map(str::to_owned) };
    let task = Task {
        shared: shared.clone(),
        writer,
        stop: stop_rx,
        flush_interval: config.flush_interval,
        max_backoff: config.max_backoff,
        reachable: true,
        failed_attempts: 0,
        last_rejection: None,
    };
    let task = runtime.spawn(task.run());
    Ok(InfluxHandle { shared, control: Arc::new(Control { stop: stop_tx, task: Mutex::new(Some(task)) }) })
}

/// The write URL for the configured InfluxDB version.
fn endpoint(config: &InfluxConfig) -> Result<Url, ConfigError> {
    let raw = config.url.trim();
    let mut url = Url::parse(raw)
        .map_err(|e| ConfigError::from(format!("INFLUX_URL is not a valid URL ({e}); expected e.g. {DEFAULT_URL}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::from(format!(
            "INFLUX_URL must start with http:// or https://, got {}://",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::from(format!("INFLUX_URL has no host: {}", redact_url(raw))));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::from(format!("INFLUX_URL must not carry a query or fragment: {}", redact_url(raw))));
    }
    let base = url.path().trim_end_matches('/').to_owned();
    match config.database.as_deref().filter(|db| !db.is_empty()) {
        Some(db) => {
            url.set_path(&format!("{base}/write"));
            url.query_pairs_mut().append_pair("db", db).append_pair("precision", "ns");
        }
        None => {
            if config.org.is_empty() {
                return Err(ConfigError(
                    "INFLUX_ORG must not be empty (or set INFLUX_DATABASE for InfluxDB 1.x)".to_owned(),
                ));
            }
            if config.bucket.is_empty() {
                return Err(ConfigError(
                    "INFLUX_BUCKET must not be empty (or set INFLUX_DATABASE for InfluxDB 1.x)".to_owned(),
                ));
            }
            url.set_path(&format!("{base}/api/v2/write"));
            url.query_pairs_mut()
                .append_pair("org", &config.org)
                .append_pair("bucket", &config.bucket)
                .append_pair("precision", "ns");
        }
    }
    Ok(url)
}

/// The URL with any password replaced; unparsable URLs are shown as they are.
fn redact_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("REDACTED"));
            url.to_string()
        }
        _ => raw.to_owned(),
    }
}

/// An error and its causes, `a: b: c` (reqwest's `Display` alone hides the cause).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

struct Shared {
    queue: Mutex<Queue>,
    /// Signalled by `record` when a full batch is waiting.
    wake: Notify,
    batch_size: usize,
    buffer_limit: usize,
}

#[derive(Default)]
struct Queue {
    /// Rendered lines with their sequence numbers, oldest first.
    lines: VecDeque<(u64, String)>,
    next_seq: u64,
    /// Highest sequence number of the batch on the wire.
    in_flight: Option<u64>,
    /// Points of that batch evicted meanwhile, settled when the answer comes.
    evicted_in_flight: u64,
    /// Whether evictions happened since the buffer last had room (log once).
    overflowing: bool,
    closed: bool,
    written: u64,
    dropped: u64,
    errors: u64,
    last_error: Option<String>,
    healthy: bool,
}

struct Batch {
    upto: u64,
    len: u64,
    body: String,
}

impl Shared {
    /// The oldest `batch_size` lines as one request body, marked in flight.
    fn begin_batch(&self) -> Option<Batch> {
        let mut q = self.queue.lock();
        let take = q.lines.len().min(self.batch_size);
        let upto = q.lines.get(take.checked_sub(1)?)?.0;
        let mut body = String::with_capacity(q.lines.iter().take(take).map(|(_, l)| l.len() + 1).sum());
        for (i, (_, l)) in q.lines.iter().take(take).enumerate() {
            if i > 0 {
                body.push('\n');
            }
            body.push_str(l);
        }
        q.in_flight = Some(upto);
        q.evicted_in_flight = 0;
        Some(Batch { upto, len: take as u64, body })
    }

    /// Removes the batch's lines still in the buffer and clears the in-flight mark.
    fn settle(q: &mut Queue, batch: &Batch) {
        while q.lines.front().is_some_and(|(seq, _)| *seq <= batch.upto) {
            q.lines.pop_front();
        }
        q.in_flight = None;
        q.evicted_in_flight = 0;
    }

    fn written(&self, batch: &Batch) {
        let mut q = self.queue.lock();
        Self::settle(&mut q, batch);
        q.written += batch.len;
        q.healthy = true;
        if q.lines.len() < self.buffer_limit {
            q.overflowing = false;
        }
    }

    fn failed(&self, error: String) {
        let mut q = self.queue.lock();
        q.in_flight = None;
        q.dropped += std::mem::take(&mut q.evicted_in_flight);
        q.errors += 1;
        q.last_error = Some(error);
        q.healthy = false;
    }

    fn rejected(&self, batch: &Batch, status: StatusCode, error: String) {
        let mut q = self.queue.lock();
        Self::settle(&mut q, batch);
        q.dropped += batch.len;
        q.errors += 1;
        q.last_error = Some(error);
        if matches!(status.as_u16(), 401 | 403 | 404) {
            q.healthy = false;
        }
        if q.lines.len() < self.buffer_limit {
            q.overflowing = false;
        }
    }

    /// Stops accepting points; returns how many were never written.
    fn close(&self) -> u64 {
        let mut q = self.queue.lock();
        let lost = q.lines.len() as u64 + q.evicted_in_flight;
        q.lines.clear();
        q.in_flight = None;
        q.evicted_in_flight = 0;
        q.dropped += lost;
        q.closed = true;
        lost
    }
}

struct Control {
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

struct Writer {
    client: reqwest::Client,
    endpoint: Url,
    auth: Option<HeaderValue>,
    /// Only to scrub it from error texts, should an answer ever echo it.
    token: Option<String>,
}

enum Outcome {
    Written,
    Retry { error: String, retry_after: Option<Duration> },
    Rejected { status: StatusCode, error: String },
}

impl Writer {
    async fn send(&self, body: String) -> Outcome {
        let mut request = self
            .client
            .post(self.endpoint.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))
            .body(body);
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                let what = if e.is_timeout() { "InfluxDB did not answer in time" } else { "cannot reach InfluxDB" };
                return Outcome::Retry {
                    error: self.scrub(format!("{what}: {}", error_chain(&e.without_url()))),
                    retry_after: None,
                };
            }
        };
        let status = response.status();
        if status.is_success() {
            return Outcome::Written;
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response.text().await.unwrap_or_default();
        let mut excerpt: String = body.trim().chars().take(BODY_EXCERPT).collect();
        if body.trim().chars().count() > BODY_EXCERPT {
            excerpt.push('…');
        }
        let error = self.scrub(format!("InfluxDB answered {status}: {excerpt}"));
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT || status.is_server_error()
        {
            Outcome::Retry { error, retry_after }
        } else {
            Outcome::Rejected { status, error }
        }
    }

    fn scrub(&self, text: String) -> String {
        match &self.token {
            Some(t) if text.contains(t.as_str()) => text.replace(t.as_str(), "<redacted>"),
            _ => text,
        }
    }
}

struct Task {
    shared: Arc<Shared>,
    writer: Writer,
    stop: watch::Receiver<bool>,
    flush_interval: Duration,
    max_backoff: Duration,
    /// Whether the last attempt reached InfluxDB (for the once-per-transition logs).
    reachable: bool,
    failed_attempts: u64,
    /// Status of the last rejection, to log a repeated one quietly.
    last_rejection: Option<StatusCode>,
}

/// Why a flush ended.
enum Flow {
    /// The buffer is empty.
    Idle,
    /// Shutdown was asked for during a backoff.
    Drain,
    /// Every handle is gone.
    Exit,
}

impl Task {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(self.flush_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                changed = self.stop.changed() => {
                    if changed.is_ok() {
                        self.flush(true).await;
                    }
                    return;
                }
                () = self.shared.wake.notified() => {}
                _ = tick.tick() => {}
            }
            match self.flush(false).await {
                Flow::Idle => {}
                Flow::Drain => {
                    self.flush(true).await;
                    return;
                }
                Flow::Exit => return,
            }
        }
    }

    /// Writes batches until the buffer is empty. Transient failures are retried after
    /// a backoff; while `draining`, only shutdown's own time bound ends the retries.
    async fn flush(&mut self, draining: bool) -> Flow {
        let mut backoff: Option<ExponentialBackoff> = None;
        while let Some(mut batch) = self.shared.begin_batch() {
            match self.writer.send(std::mem::take(&mut batch.body)).await {
                Outcome::Written => {
                    self.shared.written(&batch);
                    backoff = None;
                    self.last_rejection = None;
                    self.on_reached();
                    tracing::debug!(points = batch.len, "wrote points to InfluxDB");
                }
                Outcome::Rejected { status, error } => {
                    self.shared.rejected(&batch, status, error.clone());
                    backoff = None;
                    self.on_reached();
                    if self.last_rejection == Some(status) {
                        tracing::debug!(%status, dropped = batch.len, %error, "InfluxDB refused the points again");
                    } else {
                        tracing::warn!(%status, dropped = batch.len, %error, "InfluxDB refused the points; dropped them");
                    }
                    self.last_rejection = Some(status);
                }
                Outcome::Retry { error, retry_after } => {
                    self.shared.failed(error.clone());
                    self.failed_attempts += 1;
                    if self.reachable {
                        self.reachable = false;
                        tracing::warn!(
                            %error,
                            buffered = self.shared.queue.lock().lines.len(),
                            "InfluxDB unreachable; keeping points in memory and retrying"
                        );
                    } else {
                        tracing::debug!(%error, attempt = self.failed_attempts, "InfluxDB write failed again");
                    }
                    let max = self.max_backoff;
                    let delays = backoff.get_or_insert_with(|| {
                        ExponentialBuilder::default()
                            .with_min_delay(MIN_BACKOFF.min(max))
                            .with_max_delay(max)
                            .with_jitter()
                            .without_max_times()
                            .build()
                    });
                    let delay = delays.next().unwrap_or(max).max(retry_after.unwrap_or_default()).min(max);
                    if draining {
                        tokio::time::sleep(delay).await;
                    } else {
                        tokio::select! {
                            () = tokio::time::sleep(delay) => {}
                            changed = self.stop.changed() => {
                                return if changed.is_ok() { Flow::Drain } else { Flow::Exit };
                            }
                        }
                    }
                }
            }
        }
        Flow::Idle
    }

    fn on_reached(&mut self) {
        if !self.reachable {
            self.reachable = true;
            tracing::info!(failed_attempts = self.failed_attempts, "InfluxDB reachable again; writing buffered points");
        }
        self.failed_attempts = 0;
    }
}
