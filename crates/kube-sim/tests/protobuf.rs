//! Kubernetes protobuf against the exchanges recorded between kubectl 1.32 /
//! curl and a real v1.32 API server (`testdata/k8s-reference/v1.32/protobuf/`):
//! the recorded request bodies are accepted, and kube-sim's answers decode to
//! the same objects as the recorded answers (modulo uids, timestamps and
//! resourceVersions) — with kube-sim's codec and with the `k8s-pb` messages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use common::Sim;
use kube_sim::protobuf;
use prost::Message as _;
use serde_json::{Value, json};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/k8s-reference/v1.32/protobuf")
}

struct Exchange {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    status: u16,
    request: Vec<u8>,
    response: Vec<u8>,
}

fn exchange(name: &str) -> Exchange {
    let meta: Value = serde_json::from_slice(&std::fs::read(dir().join(format!("{name}.meta.json"))).unwrap()).unwrap();
    let headers = meta["request_headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    Exchange {
        method: meta["method"].as_str().unwrap().into(),
        path: meta["path"].as_str().unwrap().into(),
        headers,
        status: meta["status"].as_u64().unwrap() as u16,
        request: std::fs::read(dir().join(format!("{name}.request.bin"))).unwrap_or_default(),
        response: std::fs::read(dir().join(format!("{name}.response.bin"))).unwrap(),
    }
}

/// Send a recorded request as recorded; (status, content type, body).
async fn replay(sim: &Sim, x: &Exchange) -> (u16, String, Vec<u8>) {
    let mut req = sim.http().request(x.method.parse().unwrap(), sim.url(&x.path));
    for (k, v) in &x.headers {
        req = req.header(k, v);
    }
    let r = req.body(x.request.clone()).send().await.unwrap();
    let code = r.status().as_u16();
    let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (code, ct, r.bytes().await.unwrap().to_vec())
}

/// Replace the object's own uid wherever it is used (a Job's selector and labels).
fn mask_uid(v: &mut Value, uid: &str) {
    match v {
        Value::String(s) if s == uid => *s = "<uid>".into(),
        Value::Object(o) => o.values_mut().for_each(|c| mask_uid(c, uid)),
        Value::Array(a) => a.iter_mut().for_each(|c| mask_uid(c, uid)),
        _ => {}
    }
}

/// Forget what differs between two servers creating the same object.
fn normalize(mut v: Value) -> Value {
    if let Some(uid) = v.pointer("/metadata/uid").and_then(Value::as_str).map(str::to_string) {
        mask_uid(&mut v, &uid);
    }
    fn meta(m: &mut Value) {
        if let Some(o) = m.as_object_mut() {
            for k in ["uid", "resourceVersion", "creationTimestamp"] {
                o.remove(k);
            }
            if let Some(mf) = o.get_mut("managedFields").and_then(Value::as_array_mut) {
                for e in mf {
                    if let Some(e) = e.as_object_mut() {
                        e.remove("time");
                        if let Some(f) = e.get_mut("fieldsV1") {
                            strip_markers(f);
                        }
                    }
                }
            }
        }
    }
    if let Some(m) = v.get_mut("metadata") {
        meta(m);
    }
    if let Some(items) = v.get_mut("items").and_then(Value::as_array_mut) {
        for i in items {
            if let Some(m) = i.get_mut("metadata") {
                meta(m);
            }
        }
    }
    v
}

/// kube-sim marks every owned map with "." where upstream marks only maps a
/// Go pointer or a list item holds (a known difference of its field tracking,
/// see the README): compare field sets without the markers, and without the
/// null `creationTimestamp` of pod templates.
fn strip_markers(v: &mut Value) {
    if let Some(o) = v.as_object_mut() {
        o.remove(".");
        o.remove("f:creationTimestamp");
        for c in o.values_mut() {
            strip_markers(c);
        }
    }
}

fn decode(bytes: &[u8]) -> Value {
    protobuf::decode_any(bytes).unwrap_or_else(|e| panic!("{e}: {bytes:x?}")).2
}

/// The raw message of an enveloped object, decoded with k8s-pb's type for its
/// kind: the bytes are the real messages, not only what kube-sim's codec reads.
fn k8s_pb_name(bytes: &[u8]) -> Option<String> {
    use k8s_pb::api;
    let (_, kind, raw) = protobuf::unwrap_envelope(bytes).unwrap();
    macro_rules! name {
        ($t:ty) => {
            <$t>::decode(raw).unwrap_or_else(|e| panic!("{kind}: {e}")).metadata.and_then(|m| m.name)
        };
    }
    match kind.as_str() {
        "ConfigMap" => name!(api::core::v1::ConfigMap),
        "Namespace" => name!(api::core::v1::Namespace),
        "Secret" => name!(api::core::v1::Secret),
        "ServiceAccount" => name!(api::core::v1::ServiceAccount),
        "Deployment" => name!(api::apps::v1::Deployment),
        "Job" => name!(api::batch::v1::Job),
        "PodDisruptionBudget" => name!(api::policy::v1::PodDisruptionBudget),
        "PriorityClass" => name!(api::scheduling::v1::PriorityClass),
        "Role" => name!(api::rbac::v1::Role),
        "Status" => {
            let s = k8s_pb::apimachinery::pkg::apis::meta::v1::Status::decode(raw).unwrap();
            s.details.and_then(|d| d.name)
        }
        other => panic!("no k8s-pb type wired for {other}"),
    }
}

const CREATES: &[&str] = &[
    "post-namespaces-201",
    "post-configmaps-201",
    "post-configmaps-201-2",
    "post-configmaps-201-3",
    "post-configmaps-201-4",
    "post-secrets-201",
    "post-serviceaccounts-201",
    "post-deployments-201",
    "post-jobs-201",
    "post-poddisruptionbudgets-201",
    "post-priorityclasses-201",
    "post-roles-201",
];

/// Replay a recorded create. cm1 was created twice in the recorded session
/// (deleted in between): delete what is in the way first.
async fn replay_create(sim: &Sim, x: &Exchange) -> (u16, String, Vec<u8>) {
    if x.path.contains("/configmaps")
        && let Some(name) = k8s_pb_name(&x.request)
    {
        let path = format!("/api/v1/namespaces/pbref/configmaps/{name}");
        sim.send(reqwest::Method::DELETE, &path, "application/json", "").await;
    }
    replay(sim, x).await
}

#[tokio::test]
async fn recorded_creates_are_accepted_and_answered_alike() {
    let sim = Sim::start().await;
    for name in CREATES {
        let x = exchange(name);
        let (code, ct, body) = replay_create(&sim, &x).await;
        assert_eq!(code, x.status, "{name}: {}", String::from_utf8_lossy(&body));
        assert_eq!(ct, protobuf::MEDIA_TYPE, "{name}");
        assert!(body.starts_with(&protobuf::MAGIC), "{name}");
        let (ours, theirs) = (normalize(decode(&body)), normalize(decode(&x.response)));
        assert_eq!(ours, theirs, "{name}:\nours   {ours}\ntheirs {theirs}");
        assert_eq!(k8s_pb_name(&body), k8s_pb_name(&x.response), "{name}");
        // The request body, read by k8s-pb, is the object kube-sim created.
        assert_eq!(k8s_pb_name(&x.request), ours["metadata"]["name"].as_str().map(str::to_string), "{name}");
    }
}

/// The recorded reads were made after the recorded creates.
#[tokio::test]
async fn recorded_reads_and_errors_are_answered_alike() {
    let sim = Sim::start().await;
    for name in CREATES {
        let (code, _, _) = replay_create(&sim, &exchange(name)).await;
        assert_eq!(code, 201, "{name}");
    }
    for name in ["get-serviceaccounts-sa1-200", "get-configmaps-200", "get-configmaps-nope-404", "post-configmaps-400"]
    {
        let x = exchange(name);
        let (code, ct, body) = replay(&sim, &x).await;
        assert_eq!(code, x.status, "{name}: {}", String::from_utf8_lossy(&body));
        assert_eq!(ct, protobuf::MEDIA_TYPE, "{name}");
        let (mut ours, mut theirs) = (normalize(decode(&body)), normalize(decode(&x.response)));
        if name == "get-configmaps-200" {
            // The real server also had the distribution's own ConfigMap; compare
            // the recorded items kube-sim has too, and the list's shape.
            let names = |v: &Value| -> Vec<String> {
                v["items"].as_array().unwrap().iter().map(|i| i["metadata"]["name"].as_str().unwrap().into()).collect()
            };
            let ours_names = names(&ours);
            let keep = |v: &mut Value, names: &[String]| {
                let items = v["items"].as_array_mut().unwrap();
                items.retain(|i| names.iter().any(|n| i["metadata"]["name"] == n.as_str()));
            };
            keep(&mut theirs, &ours_names);
            let theirs_names = names(&theirs);
            keep(&mut ours, &theirs_names);
            // The recorded namespace then held only the root CA bundle (and the
            // distribution's own ConfigMap): the same item, keyed alike, whose
            // certificate differs between servers.
            assert_eq!(theirs_names, ["kube-root-ca.crt"]);
            for v in [&mut ours, &mut theirs] {
                v["metadata"] = json!({});
                for i in v["items"].as_array_mut().unwrap() {
                    i["data"]["ca.crt"] = json!("<certificate>");
                    i["metadata"].as_object_mut().unwrap().remove("managedFields");
                    i["metadata"].as_object_mut().unwrap().remove("annotations");
                }
            }
        }
        assert_eq!(ours, theirs, "{name}:\nours   {ours}\ntheirs {theirs}");
        if name != "get-configmaps-200" {
            assert_eq!(k8s_pb_name(&body), k8s_pb_name(&x.response), "{name}");
        }
    }
}

/// Split a protobuf watch stream into (type, object) events.
fn frames(mut b: &[u8]) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let ev = k8s_pb::apimachinery::pkg::apis::meta::v1::WatchEvent::decode(&b[4..4 + n]).unwrap();
        let raw = ev.object.and_then(|o| o.raw).unwrap();
        out.push((ev.r#type.unwrap(), decode(&raw)));
        b = &b[4 + n..];
    }
    out
}

#[tokio::test]
async fn watch_streams_use_upstream_framing() {
    let recorded = frames(&exchange("get-configmaps-watch-200").response);
    let kinds: Vec<&str> = recorded.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(kinds, ["ADDED", "DELETED"]);

    let sim = Sim::start().await;
    let x = exchange("post-namespaces-201");
    replay(&sim, &x).await;
    let start = sim.get("/api/v1/namespaces/pbref/configmaps").await.1["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let resp =
        sim.http()
            .get(sim.url(&format!(
                "/api/v1/namespaces/pbref/configmaps?watch=true&timeoutSeconds=5&resourceVersion={start}"
            )))
            .header("accept", "application/vnd.kubernetes.protobuf;stream=watch")
            .send()
            .await
            .unwrap();
    assert_eq!(resp.headers()["content-type"], protobuf::WATCH_MEDIA_TYPE);
    let mut resp = resp;
    let (code, _) = sim
        .post("/api/v1/namespaces/pbref/configmaps", &json!({"metadata": {"name": "cm3"}, "data": {"x": "y"}}))
        .await;
    assert_eq!(code, 201);
    let (code, _) =
        sim.send(reqwest::Method::DELETE, "/api/v1/namespaces/pbref/configmaps/cm3", "application/json", "").await;
    assert_eq!(code, 200);
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while frames(&buf).len() < 2 {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk()).await.expect("two events in time");
        buf.extend_from_slice(&chunk.unwrap().expect("stream open"));
    }
    let ours = frames(&buf);
    for ((t1, o1), (t2, o2)) in ours.iter().zip(&recorded) {
        assert_eq!(t1, t2);
        let strip = |v: &Value| {
            let mut v = normalize(v.clone());
            v["metadata"].as_object_mut().unwrap().remove("managedFields");
            v
        };
        assert_eq!(strip(o1), strip(o2));
    }
}

#[tokio::test]
async fn custom_resources_and_metrics_answer_protobuf_as_upstream() {
    let sim = Sim::start_live().await;
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "robots.sdi.keti"},
        "spec": {"group": "sdi.keti", "scope": "Namespaced", "names": {"plural": "robots", "kind": "Robot"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}});
    assert_eq!(sim.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", &crd).await.0, 201);
    let path = "/apis/sdi.keti/v1/namespaces/default/robots";
    common::eventually(10, "robots served", || async { sim.get(path).await.0 == 200 }).await;
    let get = |accept: &'static str, path: &'static str| {
        let http = sim.http();
        let url = sim.url(path);
        async move {
            let r = http.get(url).header("accept", accept).send().await.unwrap();
            let ct = r.headers()["content-type"].to_str().unwrap().to_string();
            (r.status().as_u16(), ct)
        }
    };
    // Protobuf first, JSON second: JSON. Protobuf only: 406.
    assert_eq!(
        get("application/vnd.kubernetes.protobuf,application/json", path).await,
        (200, "application/json".into())
    );
    assert_eq!(get("application/vnd.kubernetes.protobuf", path).await.0, 406);
    let metrics = "/apis/metrics.k8s.io/v1beta1/nodes";
    assert_eq!(
        get("application/vnd.kubernetes.protobuf,application/json", metrics).await,
        (200, "application/json".into())
    );
    assert_eq!(get("application/vnd.kubernetes.protobuf", metrics).await.0, 406);
    // A protobuf body for a custom resource: 415, naming what is accepted.
    let (code, body) = sim.send(reqwest::Method::POST, path, protobuf::MEDIA_TYPE, b"k8s\0\x0a\x00".to_vec()).await;
    assert_eq!(code, 415, "{body}");
    assert_eq!(
        body["message"],
        "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml"
    );
}

#[tokio::test]
async fn garbage_protobuf_is_a_400_never_a_500() {
    let sim = Sim::start().await;
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"k8s\0".to_vec(),
        b"k8s\0\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff".to_vec(),
        b"k8s\0\x0a\x04\x0a\x02v1\x12\x09ConfigMap".to_vec(),
        b"k8s\0\x0a\x0f\x0a\x02v1\x12\x09ConfigMap\x12\x05\x0a\x03\x0a\x01".to_vec(),
        b"k8s\0\x0a\x0b\x0a\x02v1\x12\x05Nope!\x12\x00".to_vec(),
        b"{\"not\": \"protobuf\"}".to_vec(),
    ];
    for b in bodies {
        let r = sim
            .http()
            .post(sim.url("/api/v1/namespaces/default/configmaps"))
            .header("content-type", protobuf::MEDIA_TYPE)
            .header("accept", "application/json")
            .body(b.clone())
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        assert_eq!(code, 400, "{b:x?}: {body}");
        assert_eq!(body["reason"], "BadRequest");
    }
}

/// A round trip through the wire format for every kind kube-sim creates:
/// lists, a protobuf update and a protobuf DeleteOptions body.
#[tokio::test]
async fn protobuf_clients_can_update_list_and_delete() {
    let sim = Sim::start().await;
    let (code, _) = sim
        .post("/api/v1/namespaces/default/configmaps", &json!({"metadata": {"name": "a"}, "data": {"k": "1"}}))
        .await;
    assert_eq!(code, 201);
    let get = sim
        .http()
        .get(sim.url("/api/v1/namespaces/default/configmaps/a"))
        .header("accept", protobuf::MEDIA_TYPE)
        .send()
        .await
        .unwrap();
    let mut cm = decode(&get.bytes().await.unwrap());
    cm["data"]["k"] = json!("2");
    let body = protobuf::encode_object(&cm, "v1", "ConfigMap").unwrap();
    let put = sim
        .http()
        .put(sim.url("/api/v1/namespaces/default/configmaps/a"))
        .header("accept", protobuf::MEDIA_TYPE)
        .header("content-type", protobuf::MEDIA_TYPE)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 200);
    assert_eq!(decode(&put.bytes().await.unwrap())["data"]["k"], "2");
    // A stale update: 409 Conflict, as a protobuf Status.
    let stale = protobuf::encode_object(&cm, "v1", "ConfigMap").unwrap();
    let put = sim
        .http()
        .put(sim.url("/api/v1/namespaces/default/configmaps/a"))
        .header("accept", protobuf::MEDIA_TYPE)
        .header("content-type", protobuf::MEDIA_TYPE)
        .body(stale)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 409);
    let status = decode(&put.bytes().await.unwrap());
    assert_eq!((status["reason"].as_str(), status["code"].as_i64()), (Some("Conflict"), Some(409)));
    // Metadata-only list in protobuf.
    let list = sim
        .http()
        .get(sim.url("/api/v1/namespaces/default/configmaps"))
        .header("accept", "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1")
        .send()
        .await
        .unwrap();
    let list = decode(&list.bytes().await.unwrap());
    assert_eq!(list["kind"], "PartialObjectMetadataList");
    assert!(list["items"].as_array().unwrap().iter().any(|i| i["metadata"]["name"] == "a"));
    // Delete with a protobuf DeleteOptions (dry run keeps it).
    let opts = protobuf::encode_object(&json!({"dryRun": ["All"]}), "v1", "DeleteOptions").unwrap();
    let del = sim
        .http()
        .delete(sim.url("/api/v1/namespaces/default/configmaps/a"))
        .header("accept", protobuf::MEDIA_TYPE)
        .header("content-type", protobuf::MEDIA_TYPE)
        .body(opts)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status().as_u16(), 200);
    assert_eq!(sim.get("/api/v1/namespaces/default/configmaps/a").await.0, 200);
}
