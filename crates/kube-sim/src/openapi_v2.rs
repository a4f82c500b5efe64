//! `/openapi/v2` in protobuf: the `openapi.v2.Document` message of Google's
//! gnostic (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`),
//! which kubectl 1.27 and 1.28 read for `explain`, validation and `apply`.
//! Encoded from the JSON document; vendor extensions (`x-kubernetes-*`) carry
//! their value as YAML text, as gnostic does (JSON is YAML).

use serde_json::{Map, Value};

/// What clients ask for.
pub const MEDIA_TYPE: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
/// What upstream answers with (Go's mime parser rejects the `@` form).
pub const CONTENT_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, tag: u32, wire: u8) {
    varint(out, (u64::from(tag) << 3) | u64::from(wire));
}

fn bytes(out: &mut Vec<u8>, tag: u32, b: &[u8]) {
    key(out, tag, 2);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn string(out: &mut Vec<u8>, tag: u32, v: Option<&Value>) {
    if let Some(s) = v.and_then(Value::as_str).filter(|s| !s.is_empty()) {
        bytes(out, tag, s.as_bytes());
    }
}

fn strings(out: &mut Vec<u8>, tag: u32, v: Option<&Value>) {
    for s in v.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        bytes(out, tag, s.as_bytes());
    }
}

fn boolean(out: &mut Vec<u8>, tag: u32, v: Option<&Value>) {
    if v.and_then(Value::as_bool) == Some(true) {
        key(out, tag, 0);
        varint(out, 1);
    }
}

fn int(out: &mut Vec<u8>, tag: u32, v: Option<&Value>) {
    if let Some(i) = v.and_then(Value::as_i64).filter(|i| *i != 0) {
        key(out, tag, 0);
        varint(out, i as u64);
    }
}

fn double(out: &mut Vec<u8>, tag: u32, v: Option<&Value>) {
    if let Some(d) = v.and_then(Value::as_f64) {
        key(out, tag, 1);
        out.extend_from_slice(&d.to_le_bytes());
    }
}

fn nested(out: &mut Vec<u8>, tag: u32, f: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    f(&mut inner);
    bytes(out, tag, &inner);
}

/// `Any{yaml}`: any value as YAML (its JSON text).
fn any(out: &mut Vec<u8>, tag: u32, v: &Value) {
    nested(out, tag, |o| bytes(o, 2, serde_json::to_string(v).unwrap_or_default().as_bytes()));
}

/// `repeated NamedAny vendor_extension` from the `x-` keys of an object.
fn extensions(out: &mut Vec<u8>, tag: u32, o: &Map<String, Value>) {
    for (k, v) in o.iter().filter(|(k, _)| k.starts_with("x-")) {
        nested(out, tag, |e| {
            bytes(e, 1, k.as_bytes());
            any(e, 2, v);
        });
    }
}

fn schema(out: &mut Vec<u8>, s: &Value) {
    let Some(o) = s.as_object() else { return };
    string(out, 1, o.get("$ref"));
    string(out, 2, o.get("format"));
    string(out, 3, o.get("title"));
    string(out, 4, o.get("description"));
    if let Some(d) = o.get("default") {
        any(out, 5, d);
    }
    double(out, 6, o.get("multipleOf"));
    double(out, 7, o.get("maximum"));
    boolean(out, 8, o.get("exclusiveMaximum"));
    double(out, 9, o.get("minimum"));
    boolean(out, 10, o.get("exclusiveMinimum"));
    int(out, 11, o.get("maxLength"));
    int(out, 12, o.get("minLength"));
    string(out, 13, o.get("pattern"));
    int(out, 14, o.get("maxItems"));
    int(out, 15, o.get("minItems"));
    boolean(out, 16, o.get("uniqueItems"));
    int(out, 17, o.get("maxProperties"));
    int(out, 18, o.get("minProperties"));
    strings(out, 19, o.get("required"));
    for e in o.get("enum").and_then(Value::as_array).into_iter().flatten() {
        any(out, 20, e);
    }
    match o.get("additionalProperties") {
        Some(Value::Bool(b)) => nested(out, 21, |a| {
            key(a, 2, 0);
            varint(a, u64::from(*b));
        }),
        Some(v @ Value::Object(_)) => nested(out, 21, |a| nested(a, 1, |x| schema(x, v))),
        _ => {}
    }
    match o.get("type") {
        Some(Value::String(t)) => nested(out, 22, |x| bytes(x, 1, t.as_bytes())),
        Some(t @ Value::Array(_)) => nested(out, 22, |x| strings(x, 1, Some(t))),
        _ => {}
    }
    match o.get("items") {
        Some(Value::Array(items)) => nested(out, 23, |x| {
            for i in items {
                nested(x, 1, |y| schema(y, i));
            }
        }),
        Some(i @ Value::Object(_)) => nested(out, 23, |x| nested(x, 1, |y| schema(y, i))),
        _ => {}
    }
    for a in o.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        nested(out, 24, |x| schema(x, a));
    }
    if let Some(props) = o.get("properties").and_then(Value::as_object) {
        nested(out, 25, |p| named_schemas(p, 1, props));
    }
    string(out, 26, o.get("discriminator"));
    boolean(out, 27, o.get("readOnly"));
    if let Some(e) = o.get("example") {
        any(out, 30, e);
    }
    extensions(out, 31, o);
}

fn named_schemas(out: &mut Vec<u8>, tag: u32, m: &Map<String, Value>) {
    for (name, s) in m {
        nested(out, tag, |n| {
            bytes(n, 1, name.as_bytes());
            nested(n, 2, |x| schema(x, s));
        });
    }
}

/// A non-body parameter's sub-schema (query, path, header and form data
/// share their first fields; the numbering after `name` differs).
fn sub_schema(out: &mut Vec<u8>, p: &Map<String, Value>, with_empty_value: bool) {
    boolean(out, 1, p.get("required"));
    string(out, 2, p.get("in"));
    string(out, 3, p.get("description"));
    string(out, 4, p.get("name"));
    let base = if with_empty_value {
        boolean(out, 5, p.get("allowEmptyValue"));
        6
    } else {
        5
    };
    string(out, base, p.get("type"));
    string(out, base + 1, p.get("format"));
    string(out, base + 3, p.get("collectionFormat"));
    boolean(out, base + 14, p.get("uniqueItems"));
    extensions(out, base + 17, p);
}

fn parameter(out: &mut Vec<u8>, p: &Map<String, Value>) {
    if p.get("in").and_then(Value::as_str) == Some("body") {
        nested(out, 1, |b| {
            string(b, 1, p.get("description"));
            string(b, 2, p.get("name"));
            string(b, 3, p.get("in"));
            boolean(b, 4, p.get("required"));
            if let Some(s) = p.get("schema") {
                nested(b, 5, |x| schema(x, s));
            }
            extensions(b, 6, p);
        });
        return;
    }
    let (tag, empty) = match p.get("in").and_then(Value::as_str) {
        Some("header") => (1, false),
        Some("formData") => (2, true),
        Some("path") => (4, false),
        _ => (3, true),
    };
    nested(out, 2, |nb| nested(nb, tag, |s| sub_schema(s, p, empty)));
}

fn parameters_item(out: &mut Vec<u8>, tag: u32, p: &Value) {
    let Some(o) = p.as_object() else { return };
    nested(out, tag, |item| match o.get("$ref") {
        Some(r) => nested(item, 2, |j| string(j, 1, Some(r))),
        None => nested(item, 1, |x| parameter(x, o)),
    });
}

fn operation(out: &mut Vec<u8>, tag: u32, op: &Value) {
    let Some(o) = op.as_object() else { return };
    nested(out, tag, |x| {
        strings(x, 1, o.get("tags"));
        string(x, 2, o.get("summary"));
        string(x, 3, o.get("description"));
        string(x, 5, o.get("operationId"));
        strings(x, 6, o.get("produces"));
        strings(x, 7, o.get("consumes"));
        for p in o.get("parameters").and_then(Value::as_array).into_iter().flatten() {
            parameters_item(x, 8, p);
        }
        if let Some(rs) = o.get("responses").and_then(Value::as_object) {
            nested(x, 9, |r| {
                for (code, resp) in rs {
                    nested(r, 1, |n| {
                        bytes(n, 1, code.as_bytes());
                        nested(n, 2, |rv| {
                            nested(rv, 1, |resp_msg| {
                                string(resp_msg, 1, resp.get("description"));
                                if let Some(s) = resp.get("schema") {
                                    nested(resp_msg, 2, |si| nested(si, 1, |y| schema(y, s)));
                                }
                            })
                        });
                    });
                }
            });
        }
        strings(x, 10, o.get("schemes"));
        boolean(x, 11, o.get("deprecated"));
        extensions(x, 13, o);
    });
}

/// The gnostic `Document` of a Swagger 2.0 JSON document.
pub fn encode(doc: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let Some(d) = doc.as_object() else { return out };
    string(&mut out, 1, d.get("swagger"));
    if let Some(info) = d.get("info").and_then(Value::as_object) {
        nested(&mut out, 2, |i| {
            string(i, 1, info.get("title"));
            string(i, 2, info.get("version"));
            string(i, 3, info.get("description"));
        });
    }
    string(&mut out, 3, d.get("host"));
    string(&mut out, 4, d.get("basePath"));
    strings(&mut out, 5, d.get("schemes"));
    strings(&mut out, 6, d.get("consumes"));
    strings(&mut out, 7, d.get("produces"));
    if let Some(paths) = d.get("paths").and_then(Value::as_object) {
        nested(&mut out, 8, |ps| {
            for (path, item) in paths {
                let Some(item) = item.as_object() else { continue };
                nested(ps, 2, |n| {
                    bytes(n, 1, path.as_bytes());
                    nested(n, 2, |pi| {
                        string(pi, 1, item.get("$ref"));
                        for (tag, verb) in [
                            (2, "get"),
                            (3, "put"),
                            (4, "post"),
                            (5, "delete"),
                            (6, "options"),
                            (7, "head"),
                            (8, "patch"),
                        ] {
                            if let Some(op) = item.get(verb) {
                                operation(pi, tag, op);
                            }
                        }
                        for p in item.get("parameters").and_then(Value::as_array).into_iter().flatten() {
                            parameters_item(pi, 9, p);
                        }
                        extensions(pi, 10, item);
                    });
                });
            }
        });
    }
    if let Some(defs) = d.get("definitions").and_then(Value::as_object) {
        nested(&mut out, 9, |x| named_schemas(x, 1, defs));
    }
    if let Some(params) = d.get("parameters").and_then(Value::as_object) {
        nested(&mut out, 10, |x| {
            for (name, p) in params {
                let Some(p) = p.as_object() else { continue };
                nested(x, 1, |n| {
                    bytes(n, 1, name.as_bytes());
                    nested(n, 2, |y| parameter(y, p));
                });
            }
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schemas_paths_and_extensions_are_encoded() {
        let doc = json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.32"},
            "paths": {"/api/v1/pods/{name}": {"patch": {"parameters": [{"name": "fieldValidation", "in": "query", "type": "string"}],
                "x-kubernetes-group-version-kind": {"group": "", "kind": "Pod", "version": "v1"}}}},
            "definitions": {"io.k8s.api.core.v1.Pod": {"type": "object", "properties": {"spec": {"$ref": "#/definitions/x"}},
                "x-kubernetes-group-version-kind": [{"group": "", "kind": "Pod", "version": "v1"}]}}});
        let b = encode(&doc);
        let text = String::from_utf8_lossy(&b);
        for needle in [
            "2.0",
            "Kubernetes",
            "/api/v1/pods/{name}",
            "fieldValidation",
            "io.k8s.api.core.v1.Pod",
            "#/definitions/x",
            "x-kubernetes-group-version-kind",
            "\"kind\":\"Pod\"",
        ] {
            assert!(text.contains(needle), "{needle}");
        }
        assert_eq!(b[0], 0x0a); // swagger, field 1
    }
}
