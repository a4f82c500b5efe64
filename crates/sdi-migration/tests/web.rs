//! The web view in a real browser (headless Chromium over the DevTools
//! protocol) against the real service on kube-sim: the page loads, follows
//! migrations live through the stream, shows a finished one `completed` with
//! its steps, works from the keyboard, cancels with the caller's token, and
//! renders something (a non-blank screenshot). In CI a missing chromium fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::browser::{Browser, chromium, png_stats};
use common::{Env, request};
use serde_json::Value;

/// `web` moves in a second; `slow` takes 30 simulated seconds (6 s) to start
/// on its target, long enough to be cancelled.
const PODS: &str = r#"
workloads:
  - kind: Pod
    name: web
    nodeName: w1
    containers: [{name: app, requests: {cpu: 100m, memory: 64Mi}, usage: {cpu: 50m, memory: 32Mi}}]
  - kind: Pod
    name: slow
    nodeName: w1
    startupSeconds: 30
    containers: [{name: app, requests: {cpu: 100m, memory: 64Mi}}]
"#;

const WAIT: Duration = Duration::from_secs(30);

fn js_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

#[test]
fn the_page_follows_a_migration_live_and_is_usable_from_the_keyboard() {
    let Some(bin) = chromium() else { return };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let env = rt.block_on(Env::start(PODS));
    let mut b = Browser::launch(&bin, 1280, 1400);
    // The API wants a token: the page keeps the one it is given for the tab's session.
    b.navigate(&env.url("/"));
    b.eval(&format!("sessionStorage.setItem('sdi-migration-token', {}); true", js_str(&env.api_token)));
    b.navigate(&env.url("/"));
    b.wait_for(WAIT, "the stream to be live", "document.querySelector('#conn').textContent.startsWith('Live')");
    let nodes = b.wait_for(
        WAIT,
        "the three workers in the node table",
        "(() => { const n = [...document.querySelectorAll('#nodes tbody tr[data-node]')].map(r => r.dataset.node);
                  return n.length === 3 ? n.sort() : null; })()",
    );
    assert_eq!(nodes, serde_json::json!(["w1", "w2", "w3"]), "workers only");
    let row_text = b.eval("document.querySelector('#nodes tbody tr').innerText");
    assert!(row_text.as_str().unwrap().contains('%'), "pressure is written, not only drawn: {row_text}");

    // The page was open before the migration: what follows arrives through the stream.
    let (code, body) = rt.block_on(env.migrate(request("web", "default", "w1", "w2")));
    assert_eq!(code, 202, "{body}");
    let id = body["migration_id"].as_str().unwrap().to_string();
    let row = format!("#migrations tr[data-job={}]", js_str(&id));
    b.wait_for(
        WAIT,
        "the migration to show completed",
        &format!("document.querySelector('{row} .status')?.textContent.includes('completed')"),
    );
    let text = b.eval(&format!("document.querySelector('{row}').innerText")).as_str().unwrap().to_string();
    for want in ["default/web", "w1 → w2", "recreate", "api", "steps done"] {
        assert!(text.contains(want), "the row shows {want:?}: {text}");
    }

    // Keyboard: focus the migration's button, Enter opens its details and moves
    // the focus there; Escape closes them and gives the focus back.
    let focused =
        b.eval(&format!("document.querySelector('{row} button.details').focus(); document.activeElement.dataset.id"));
    assert_eq!(focused, Value::String(id.clone()));
    b.key("Enter");
    b.wait_for(WAIT, "the details panel", "!document.querySelector('#detail').hidden");
    assert_eq!(b.eval("document.activeElement.id"), "detail-h", "focus moves to the details");
    let shown: Vec<String> = serde_json::from_value(b.eval(
        "[...document.querySelectorAll('#steps li')].map(li => li.dataset.step + ' ' + li.innerText.split('\\n')[0])",
    ))
    .unwrap();
    let (_, job) = rt.block_on(env.get(&format!("/api/v1/migrations/{id}")));
    let steps = job["details"]["steps"].as_array().unwrap();
    assert!(!steps.is_empty(), "{job}");
    assert_eq!(shown.len(), steps.len(), "every step is listed: {shown:?}");
    for (line, step) in shown.iter().zip(steps) {
        let (name, status) = (step["name"].as_str().unwrap(), step["status"].as_str().unwrap());
        assert!(line.starts_with(name) && line.contains(status), "{line:?} shows step {name} {status}");
    }
    assert_eq!(b.eval("document.querySelector('#detail-cancel').hidden"), true, "no cancel for a finished job");
    b.key("Escape");
    b.wait_for(WAIT, "the details to close", "document.querySelector('#detail').hidden");
    assert_eq!(b.eval("document.activeElement.dataset.id"), Value::String(id.clone()), "focus returns");

    // Cancel a running migration from the page, with a token configured: the
    // DELETE carries it as the Authorization header.
    let operator = env.sim.auth().new_token_user("operator", &["system:masters"]);
    b.eval(&format!(
        "document.querySelector('#token').value = {};
         document.querySelector('#token-form').requestSubmit(); true",
        js_str(&operator)
    ));
    b.wait_for(WAIT, "the stream to reconnect", "document.querySelector('#conn').textContent.startsWith('Live')");
    let (code, body) = rt.block_on(env.migrate(request("slow", "default", "w1", "w3")));
    assert_eq!(code, 202, "{body}");
    let slow = body["migration_id"].as_str().unwrap().to_string();
    let row = format!("#migrations tr[data-job={}]", js_str(&slow));
    b.wait_for(
        WAIT,
        "the slow migration to run",
        &format!("document.querySelector('{row} .status')?.textContent.includes('running')"),
    );
    b.eval(&format!("document.querySelector('{row} button.details').click(); true"));
    b.wait_for(
        WAIT,
        "its details",
        "!document.querySelector('#detail').hidden && !document.querySelector('#detail-cancel').hidden",
    );
    b.eval("document.querySelector('#detail-cancel').click(); true"); // confirm() is accepted
    b.wait_for(
        WAIT,
        "the cancellation to be acknowledged",
        "document.querySelector('#notice').textContent.includes('cancellation requested')",
    );
    b.wait_for(
        WAIT,
        "the job to end cancelled",
        &format!("document.querySelector('{row} .status')?.textContent.includes('cancelled')"),
    );
    let delete = b
        .events
        .iter()
        .find(|e| e["method"] == "Network.requestWillBeSent" && e["params"]["request"]["method"] == "DELETE")
        .cloned()
        .expect("the page sent a DELETE");
    let request = &delete["params"]["request"];
    assert!(request["url"].as_str().unwrap().ends_with(&format!("/api/v1/migrations/{slow}")), "{request}");
    assert_eq!(request["headers"]["Authorization"], format!("Bearer {operator}"), "{request}");
    let (_, job) = rt.block_on(env.get(&format!("/api/v1/migrations/{slow}")));
    assert_eq!(job["status"], "cancelled", "{job}");

    // It renders: a screenshot that is not blank.
    b.eval(&format!("document.querySelector('#migrations tr[data-job={}] button.details').click(); true", js_str(&id)));
    let png = b.screenshot();
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-view.png");
    std::fs::write(&out, &png).unwrap();
    let (w, h, colours, drawn) = png_stats(&png);
    eprintln!(
        "screenshot {} ({w}x{h}, {colours} colours, {:.1}% drawn); page weight {} B",
        out.display(),
        drawn * 100.0,
        sdi_migration::web::PAGE_WEIGHT
    );
    assert!(w >= 1000 && h >= 1000, "{w}x{h}");
    assert!(colours >= 16 && drawn > 0.03, "the screenshot is not blank: {colours} colours, {drawn:.3} drawn");
    drop(b);
    drop(env);
}

#[test]
fn the_page_and_its_assets_are_served_from_the_binary() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let env = rt.block_on(Env::start(&PODS[..PODS.find("  - kind: Pod\n    name: slow").unwrap()]));
    rt.block_on(async {
        for (path, kind) in [("/", "text/html"), ("/ui/app.js", "text/javascript"), ("/ui/app.css", "text/css")] {
            let r = env.http.get(env.url(path)).send().await.unwrap();
            assert_eq!(r.status(), 200, "{path}");
            let headers = r.headers().clone();
            assert!(headers["content-type"].to_str().unwrap().starts_with(kind), "{path}: {headers:?}");
            assert!(headers["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
            assert!(!r.text().await.unwrap().is_empty());
        }
        let (code, _) = env.get("/ui/nothing.js").await;
        assert_eq!(code, 404);
    });
}
