//! Headless Chromium (Debian's `chromium`) driven over the DevTools protocol:
//! navigate, evaluate, type keys, take screenshots. Blocking; every wait is
//! bounded. JavaScript dialogs (`confirm`) are accepted as a person would.

use std::io::ErrorKind;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// The browser to run: `$CHROMIUM`, else `chromium` on the PATH. In CI
/// (`CI=true`) a missing browser fails the test; elsewhere the test is skipped.
pub fn chromium() -> Option<PathBuf> {
    let candidate = std::env::var_os("CHROMIUM").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("chromium"));
    let found = Command::new(&candidate).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    match found {
        Ok(s) if s.success() => Some(candidate),
        _ => {
            assert!(
                std::env::var("CI").is_err(),
                "chromium is required in CI (Debian package chromium; scripts/test.sh installs it)"
            );
            eprintln!("skipped: chromium is not installed (apt-get install chromium)");
            None
        }
    }
}

pub struct Browser {
    child: Child,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    session: String,
    next_id: u64,
    /// Protocol events received while waiting for answers, oldest first.
    pub events: Vec<Value>,
    _profile: tempfile::TempDir,
}

const ANSWER_WITHIN: Duration = Duration::from_secs(30);

impl Browser {
    /// Start a fresh headless browser with a `width`×`height` window and one page.
    pub fn launch(bin: &PathBuf, width: u32, height: u32) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(profile.path().join("chromium.log")).unwrap();
        let child = Command::new(bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--window-size={width},{height}"))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        // Chromium writes the port it chose, and the browser's endpoint, here.
        let port_file = profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(30);
        let endpoint = loop {
            let text = std::fs::read_to_string(&port_file).unwrap_or_default();
            let mut lines = text.lines();
            if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                break format!("ws://127.0.0.1:{port}{path}");
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(profile.path().join("chromium.log")).unwrap_or_default();
                panic!("chromium did not open its DevTools port within 30 s:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let (ws, _) = tungstenite::connect(endpoint.as_str()).unwrap();
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        }
        let mut b = Browser { child, ws, session: String::new(), next_id: 0, events: Vec::new(), _profile: profile };
        let target = b.send(None, "Target.createTarget", json!({"url": "about:blank"})).unwrap();
        let target = target["targetId"].as_str().unwrap().to_string();
        let attached = b.send(None, "Target.attachToTarget", json!({"targetId": target, "flatten": true})).unwrap();
        b.session = attached["sessionId"].as_str().unwrap().to_string();
        for domain in ["Page.enable", "Runtime.enable", "Network.enable"] {
            b.call(domain, json!({}));
        }
        b
    }

    fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(Message::text(msg.to_string())).unwrap();
        let deadline = Instant::now() + ANSWER_WITHIN;
        loop {
            assert!(Instant::now() < deadline, "no answer to {method} within {ANSWER_WITHIN:?}");
            let text = match self.ws.read() {
                Ok(Message::Text(t)) => t,
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e)) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    continue;
                }
                Err(e) => panic!("DevTools connection failed during {method}: {e}"),
            };
            let v: Value = serde_json::from_str(text.as_str()).unwrap();
            if v["id"] == id {
                return match v.get("error") {
                    Some(e) => Err(e.clone()),
                    None => Ok(v["result"].clone()),
                };
            }
            if v["method"] == "Page.javascriptDialogOpening" {
                // A person clicking OK; answered at once, or the page stays blocked.
                let sid = v["sessionId"].as_str().unwrap_or_default().to_string();
                self.next_id += 1;
                let answer = json!({"id": self.next_id, "sessionId": sid,
                    "method": "Page.handleJavaScriptDialog", "params": {"accept": true}});
                self.ws.send(Message::text(answer.to_string())).unwrap();
            }
            if v.get("method").is_some() {
                self.events.push(v);
            }
        }
    }

    /// A command to the page.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send(Some(&session), method, params).unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    pub fn navigate(&mut self, url: &str) {
        let r = self.call("Page.navigate", json!({"url": url}));
        assert!(r.get("errorText").is_none(), "navigating to {url}: {r}");
    }

    /// The value of a JavaScript expression (promises awaited), or what it threw.
    pub fn try_eval(&mut self, expression: &str) -> Result<Value, Value> {
        let r = self
            .call("Runtime.evaluate", json!({"expression": expression, "returnByValue": true, "awaitPromise": true}));
        match r.get("exceptionDetails") {
            Some(e) => Err(e["exception"]["description"].clone()),
            None => Ok(r["result"]["value"].clone()),
        }
    }

    /// The value of a JavaScript expression (promises awaited).
    pub fn eval(&mut self, expression: &str) -> Value {
        self.try_eval(expression).unwrap_or_else(|e| panic!("{expression}\nthrew: {e}"))
    }

    /// Evaluate `expression` until it is truthy; its value. Until then it may
    /// also throw (the page is still loading). Panics after `within`, with the
    /// last value and the page's text.
    pub fn wait_for(&mut self, within: Duration, what: &str, expression: &str) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let v = self.try_eval(expression).unwrap_or_else(|thrown| json!({ "threw": thrown }));
            let v = if v.get("threw").is_some() && v.as_object().is_some_and(|o| o.len() == 1) {
                if Instant::now() > deadline {
                    panic!("timed out after {within:?} waiting for {what}: {expression} threw {v}");
                }
                std::thread::sleep(Duration::from_millis(50));
                continue;
            } else {
                v
            };
            let truthy =
                !matches!(&v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("") && v != json!([]);
            if truthy {
                return v;
            }
            if Instant::now() > deadline {
                let text = self.eval("document.body ? document.body.innerText : ''");
                panic!(
                    "timed out after {within:?} waiting for {what}; last value {v}; the page reads:\n{}",
                    text.as_str().unwrap_or("")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Press and release a key (`Enter`, `Escape`, `Tab`) in the focused element.
    pub fn key(&mut self, key: &str) {
        let (code, text) = match key {
            "Enter" => (13, "\r"),
            "Escape" => (27, ""),
            "Tab" => (9, ""),
            other => panic!("no key code for {other}"),
        };
        let mut down = json!({"type": "keyDown", "key": key, "code": key, "windowsVirtualKeyCode": code});
        if !text.is_empty() {
            down["text"] = json!(text);
        }
        self.call("Input.dispatchKeyEvent", down);
        self.call(
            "Input.dispatchKeyEvent",
            json!({"type": "keyUp", "key": key, "code": key, "windowsVirtualKeyCode": code}),
        );
    }

    /// A PNG of the viewport.
    pub fn screenshot(&mut self) -> Vec<u8> {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        base64::engine::general_purpose::STANDARD.decode(r["data"].as_str().unwrap()).unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.ws.send(Message::text(json!({"id": 0, "method": "Browser.close"}).to_string()));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a PNG looks: (width, height, distinct colours, share of pixels unlike the commonest).
pub fn png_stats(png_bytes: &[u8]) -> (u32, u32, usize, f64) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let bpp = info.color_type.samples() * if info.bit_depth == png::BitDepth::Sixteen { 2 } else { 1 };
    let mut counts = std::collections::HashMap::<&[u8], usize>::new();
    for px in buf[..info.buffer_size()].chunks_exact(bpp) {
        *counts.entry(px).or_default() += 1;
    }
    let total: usize = counts.values().sum();
    let commonest = counts.values().copied().max().unwrap_or(0);
    (info.width, info.height, counts.len(), 1.0 - commonest as f64 / total.max(1) as f64)
}
