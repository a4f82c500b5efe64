//! OpenAPI documents: `/openapi/v3` (an index of group versions with content
//! hashes), the per-group-version v3 documents, and `/openapi/v2`.
//!
//! The built-in groups are served with the documents recorded from a real
//! v1.32 API server (vendored in `testdata/k8s-reference/v1.32/openapi/` and
//! compiled in): they are the real property schemas `kubectl explain`,
//! client-side validation and `kubectl apply`'s patch computation use. A
//! custom resource's group gets a document built from its CRD's
//! `openAPIV3Schema`; `metrics.k8s.io` a minimal one listing its kinds.

use std::io::Read;
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value, json};

use crate::resources::Registry;

macro_rules! recorded {
    ($file:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/k8s-reference/v1.32/openapi/", $file))
    };
}

/// (index key, gzip-compressed document)
const RECORDED: &[(&str, &[u8])] = &[
    ("api/v1", recorded!("api_v1.json.gz")),
    ("apis/apiextensions.k8s.io/v1", recorded!("apis_apiextensions.k8s.io_v1.json.gz")),
    ("apis/apps/v1", recorded!("apis_apps_v1.json.gz")),
    ("apis/authentication.k8s.io/v1", recorded!("apis_authentication.k8s.io_v1.json.gz")),
    ("apis/authorization.k8s.io/v1", recorded!("apis_authorization.k8s.io_v1.json.gz")),
    ("apis/batch/v1", recorded!("apis_batch_v1.json.gz")),
    ("apis/coordination.k8s.io/v1", recorded!("apis_coordination.k8s.io_v1.json.gz")),
    ("apis/events.k8s.io/v1", recorded!("apis_events.k8s.io_v1.json.gz")),
    ("apis/policy/v1", recorded!("apis_policy_v1.json.gz")),
    ("apis/rbac.authorization.k8s.io/v1", recorded!("apis_rbac.authorization.k8s.io_v1.json.gz")),
    ("apis/scheduling.k8s.io/v1", recorded!("apis_scheduling.k8s.io_v1.json.gz")),
    ("apis/storage.k8s.io/v1", recorded!("apis_storage.k8s.io_v1.json.gz")),
];
const V2: &[u8] = recorded!("v2.json.gz");

/// A served document: its JSON bytes and their hash (the index's `hash=`).
#[derive(Debug)]
pub struct Doc {
    pub body: Vec<u8>,
    pub hash: String,
}

impl Doc {
    fn new(body: Vec<u8>) -> Arc<Doc> {
        let hash = format!("{:016X}{:016X}", fnv1a(&body, 0xcbf2_9ce4_8422_2325), fnv1a(&body, 0x6c62_272e_07bb_0142));
        Arc::new(Doc { body, hash })
    }
}

fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    bytes.iter().fold(seed, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

fn gunzip(gz: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(gz).read_to_end(&mut out).ok()?;
    Some(out)
}

/// A recorded document, decompressed once.
fn recorded(key: &str) -> Option<Arc<Doc>> {
    static CACHE: OnceLock<Vec<OnceLock<Option<Arc<Doc>>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| RECORDED.iter().map(|_| OnceLock::new()).collect());
    let i = RECORDED.iter().position(|(k, _)| *k == key)?;
    cache[i].get_or_init(|| gunzip(RECORDED[i].1).map(Doc::new)).clone()
}

/// `/openapi/v2` (JSON).
pub fn v2() -> Option<Arc<Doc>> {
    static DOC: OnceLock<Option<Arc<Doc>>> = OnceLock::new();
    DOC.get_or_init(|| gunzip(V2).map(Doc::new)).clone()
}

/// `/openapi/v2` as gnostic protobuf, encoded once.
pub fn v2_protobuf() -> Option<Arc<Doc>> {
    static DOC: OnceLock<Option<Arc<Doc>>> = OnceLock::new();
    DOC.get_or_init(|| {
        let json: Value = serde_json::from_slice(&v2()?.body).ok()?;
        Some(Doc::new(crate::openapi_v2::encode(&json)))
    })
    .clone()
}

/// The index key of a group version: `api/v1`, `apis/apps/v1`.
pub fn key(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

/// Reverse-domain prefix of a group's schema names (`com.example.stable`).
fn schema_prefix(group: &str) -> String {
    group.split('.').rev().collect::<Vec<_>>().join(".")
}

/// The meta schemas a custom resource document refers to, from the core document.
fn meta_schemas() -> Map<String, Value> {
    static META: OnceLock<Map<String, Value>> = OnceLock::new();
    META.get_or_init(|| {
        let mut out = Map::new();
        let Some(core) = recorded("api/v1") else { return out };
        let Ok(doc) = serde_json::from_slice::<Value>(&core.body) else { return out };
        let Some(schemas) = doc.pointer("/components/schemas").and_then(Value::as_object) else { return out };
        let mut todo = vec!["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta".to_string()];
        while let Some(name) = todo.pop() {
            if out.contains_key(&name) {
                continue;
            }
            let Some(s) = schemas.get(&name) else { continue };
            collect_refs(s, &mut todo);
            out.insert(name, s.clone());
        }
        out
    })
    .clone()
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(r) = o.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/components/schemas/"))
            {
                out.push(r.to_string());
            }
            o.values().for_each(|c| collect_refs(c, out));
        }
        Value::Array(a) => a.iter().for_each(|c| collect_refs(c, out)),
        _ => {}
    }
}

/// The PATCH operation of a kind's item path, with the parameters kubectl
/// looks for (`fieldValidation` tells it the server validates fields).
fn patch_path(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> (String, Value) {
    let base = if group.is_empty() { format!("/api/{version}") } else { format!("/apis/{group}/{version}") };
    let path = if namespaced {
        format!("{base}/namespaces/{{namespace}}/{plural}/{{name}}")
    } else {
        format!("{base}/{plural}/{{name}}")
    };
    let gvk = json!({"group": group, "version": version, "kind": kind});
    let body = json!({"schema": {"type": "object"}});
    let op = json!({"patch": {
        "x-kubernetes-group-version-kind": gvk,
        "x-kubernetes-action": "patch",
        "parameters": [
            {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
            {"name": "force", "in": "query", "schema": {"type": "boolean"}},
        ],
        "requestBody": {"content": {
            "application/json-patch+json": body,
            "application/merge-patch+json": body,
            "application/apply-patch+yaml": body,
        }},
        "responses": {"200": {"description": "OK"}},
    }});
    (path, op)
}

/// The document of a group version without a recording: custom resources
/// with their CRDs' schemas (`crds`: the stored CRD objects), others (the
/// metrics API) with an object schema per kind.
pub fn generated(registry: &Registry, group: &str, version: &str, crds: &[Value]) -> Option<Arc<Doc>> {
    let rs = registry.resources_of(group, version);
    if rs.is_empty() {
        return None;
    }
    let mut schemas = Map::new();
    let mut paths = Map::new();
    let prefix = schema_prefix(group);
    for r in &rs {
        let gvk = json!([{"group": group, "version": version, "kind": r.kind}]);
        let crd_schema = r.custom.then(|| crd_schema(crds, group, version, &r.kind)).flatten();
        let mut schema = crd_schema.unwrap_or_else(|| json!({"type": "object"}));
        if let Some(o) = schema.as_object_mut() {
            o.insert("x-kubernetes-group-version-kind".into(), gvk);
            if r.custom {
                let props = o.entry("properties").or_insert_with(|| json!({}));
                if let Some(p) = props.as_object_mut() {
                    p.insert("apiVersion".into(), json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."}));
                    p.insert("kind".into(), json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."}));
                    p.insert(
                        "metadata".into(),
                        json!({"description": "Standard object's metadata.",
                        "allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}]}),
                    );
                }
                o.entry("type").or_insert_with(|| json!("object"));
            }
        }
        schemas.insert(format!("{prefix}.{version}.{}", r.kind), schema);
        if r.allows("patch") {
            let (path, op) = patch_path(group, version, &r.kind, &r.plural, r.namespaced);
            paths.insert(path, op);
        }
    }
    if rs.iter().any(|r| r.custom) {
        schemas.extend(meta_schemas());
    }
    let doc = json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    });
    Some(Doc::new(serde_json::to_vec(&doc).unwrap_or_default()))
}

/// The `openAPIV3Schema` of a CRD's version serving `kind`.
fn crd_schema(crds: &[Value], group: &str, version: &str, kind: &str) -> Option<Value> {
    crds.iter()
        .filter(|c| {
            c.pointer("/spec/group").and_then(Value::as_str) == Some(group)
                && c.pointer("/spec/names/kind").and_then(Value::as_str) == Some(kind)
        })
        .flat_map(|c| c.pointer("/spec/versions").and_then(Value::as_array).into_iter().flatten())
        .find(|v| v.get("name").and_then(Value::as_str) == Some(version))
        .and_then(|v| v.pointer("/schema/openAPIV3Schema").cloned())
}

/// The document of a served group version, recorded or generated.
pub fn document(registry: &Registry, group: &str, version: &str, crds: &[Value]) -> Option<Arc<Doc>> {
    let k = key(group, version);
    match recorded(&k) {
        Some(d) if registry.resources_of(group, version).iter().all(|r| !r.custom) => Some(d),
        _ => generated(registry, group, version, crds),
    }
}

/// `/openapi/v3`: every served group version with its document's hash.
pub fn index(registry: &Registry, crds: &[Value]) -> Value {
    let mut gvs: Vec<(String, String)> = vec![(String::new(), "v1".into())];
    for g in registry.groups() {
        for v in g.versions {
            gvs.push((g.name.clone(), v));
        }
    }
    let mut paths = Map::new();
    for (g, v) in gvs {
        let Some(doc) = document(registry, &g, &v, crds) else { continue };
        let k = key(&g, &v);
        paths.insert(k.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{k}?hash={}", doc.hash)}));
    }
    json!({"paths": paths})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_documents_are_compiled_in_and_parse() {
        for (k, _) in RECORDED {
            let d = recorded(k).unwrap_or_else(|| panic!("{k}"));
            let v: Value = serde_json::from_slice(&d.body).unwrap();
            assert!(v.pointer("/components/schemas").is_some(), "{k}");
        }
        let core: Value = serde_json::from_slice(&recorded("api/v1").unwrap().body).unwrap();
        let container = &core["components"]["schemas"]["io.k8s.api.core.v1.Container"];
        assert!(container["properties"]["image"]["description"].as_str().unwrap().contains("Container image name"));
        let v2: Value = serde_json::from_slice(&v2().unwrap().body).unwrap();
        assert_eq!(v2["swagger"], "2.0");
        assert!(meta_schemas().contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry"));
    }

    #[test]
    fn custom_resources_get_their_crds_schema() {
        let reg = Registry::new();
        let crd = json!({"spec": {"group": "sdi.keti", "scope": "Namespaced",
            "names": {"plural": "robots", "kind": "Robot"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object", "properties": {"spec": {"type": "object", "properties": {
                    "arms": {"type": "integer", "description": "How many arms."}}}}}}}]}});
        reg.register_crd("robots.sdi.keti", crate::resources::crd_resources(&crd).unwrap());
        let doc = document(&reg, "sdi.keti", "v1", &[crd]).unwrap();
        let v: Value = serde_json::from_slice(&doc.body).unwrap();
        let robot = &v["components"]["schemas"]["keti.sdi.v1.Robot"];
        assert_eq!(robot["properties"]["spec"]["properties"]["arms"]["description"], "How many arms.");
        assert_eq!(robot["x-kubernetes-group-version-kind"][0]["kind"], "Robot");
        assert!(v["components"]["schemas"]["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"].is_object());
        let idx = index(&reg, &[]);
        assert!(idx["paths"]["apis/sdi.keti/v1"]["serverRelativeURL"].as_str().unwrap().contains("hash="));
        assert!(idx["paths"]["apis/batch/v1"].is_object());
    }
}
