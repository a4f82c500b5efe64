//! Custom resources held to their CRD's structural schema, as a real API
//! server holds them: unknown fields pruned (unless the schema preserves
//! them), `default`s applied, then types, `required`, `enum`, bounds, lengths
//! and patterns checked, and `x-kubernetes-validations` (CEL) evaluated —
//! transition rules (`oldSelf`) on updates only. Errors carry upstream's
//! field paths and wording, so a client sees what it would see on a cluster.

use serde_json::{Map, Value, json};

use crate::validation::FieldError;

/// Remove what the schema does not know and fill in its defaults (mutating
/// admission of a custom resource).
pub fn prune_and_default(schema: &Value, obj: &mut Value) {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else { return };
    let Some(m) = obj.as_object_mut() else { return };
    for (k, v) in m.iter_mut() {
        if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        if let Some(s) = props.get(k) {
            walk_prune(s, v);
        }
    }
    // Top-level fields the schema does not declare go, as upstream prunes them.
    if !preserves(schema) {
        m.retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "metadata") || props.contains_key(k));
    }
}

fn preserves(schema: &Value) -> bool {
    schema.get("x-kubernetes-preserve-unknown-fields").and_then(Value::as_bool) == Some(true)
}

fn walk_prune(schema: &Value, v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, s) in props {
                    if !m.contains_key(k)
                        && let Some(d) = s.get("default")
                    {
                        m.insert(k.clone(), d.clone());
                    }
                }
                if !preserves(schema) {
                    m.retain(|k, _| props.contains_key(k));
                }
                for (k, val) in m.iter_mut() {
                    if let Some(s) = props.get(k) {
                        walk_prune(s, val);
                    }
                }
            } else if let Some(extra) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for val in m.values_mut() {
                    walk_prune(extra, val);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for item in items {
                    walk_prune(s, item);
                }
            }
        }
        _ => {}
    }
}

/// Every violation of the schema by `obj` (`old`: the stored object, on updates).
pub fn validate(schema: &Value, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let (Some(props), Some(m)) = (schema.get("properties").and_then(Value::as_object), obj.as_object()) {
        for (k, s) in props {
            if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            match m.get(k) {
                Some(v) => structural(s, v, k, &mut errs),
                None if required(schema).contains(&k.as_str()) => errs.push(FieldError::required(k.clone(), "")),
                None => {}
            }
        }
    }
    if errs.is_empty() {
        cel(schema, obj, old, &mut errs);
    }
    errs
}

fn required(schema: &Value) -> Vec<&str> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn structural(schema: &Value, v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if v.is_null() && schema.get("nullable").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let int_or_string = schema.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true);
    if let Some(want) = schema.get("type").and_then(Value::as_str) {
        let have = type_name(v);
        let ok = have == want || (want == "number" && have == "integer") || (int_or_string && have == "string");
        if !ok {
            errs.push(FieldError::invalid(
                path,
                json!(have),
                format!("{path} in body must be of type {want}: {}", serde_json::to_string(have).unwrap_or_default()),
            ));
            return;
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(v)
    {
        let supported: Vec<String> =
            options.iter().map(|o| o.as_str().map_or_else(|| o.to_string(), str::to_string)).collect();
        errs.push(FieldError::not_supported_values(path, v.clone(), supported));
    }
    match v {
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && len < min
            {
                errs.push(FieldError::invalid(
                    path,
                    v.clone(),
                    format!("{path} in body should be at least {min} chars long"),
                ));
            }
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && len > max
            {
                errs.push(FieldError::too_long(path, max as usize));
            }
            if let Some(p) = schema.get("pattern").and_then(Value::as_str)
                && let Ok(re) = regex::Regex::new(p)
                && !re.is_match(s)
            {
                errs.push(FieldError::invalid(path, v.clone(), format!("{path} in body should match '{p}'")));
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                && x < min
            {
                errs.push(FieldError::invalid(
                    path,
                    v.clone(),
                    format!("{path} in body should be greater than or equal to {}", num(min)),
                ));
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                && x > max
            {
                errs.push(FieldError::invalid(
                    path,
                    v.clone(),
                    format!("{path} in body should be less than or equal to {}", num(max)),
                ));
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    structural(s, item, &format!("{path}[{i}]"), errs);
                }
            }
        }
        Value::Object(m) => object(schema, m, path, errs),
        _ => {}
    }
}

fn object(schema: &Value, m: &Map<String, Value>, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for r in required(schema) {
            if !m.contains_key(r) {
                errs.push(FieldError::required(format!("{path}.{r}"), ""));
            }
        }
        for (k, v) in m {
            if let Some(s) = props.get(k) {
                structural(s, v, &format!("{path}.{k}"), errs);
            }
        }
    } else if let Some(extra) = schema.get("additionalProperties").filter(|a| a.is_object()) {
        for (k, v) in m {
            structural(extra, v, &format!("{path}[{k}]"), errs);
        }
    }
}

fn num(x: f64) -> String {
    if x.fract() == 0.0 { format!("{}", x as i64) } else { x.to_string() }
}

/// `x-kubernetes-validations`, evaluated as upstream does (a rule's `message`,
/// else `failed rule: <rule>`; transition rules only when there is an old object).
fn cel(schema: &Value, obj: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    if !has_rules(schema) {
        return;
    }
    // The rules see the object without its metadata, as upstream's do (self.metadata is limited).
    let strip = |o: &Value| {
        let mut o = o.clone();
        if let Some(m) = o.as_object_mut() {
            m.remove("metadata");
        }
        o
    };
    let (obj, old) = (strip(obj), old.map(strip));
    let validator = kube_cel::Validator::new();
    if let Err(found) = validator.validate(schema, &obj, old.as_ref()) {
        for e in found.iter() {
            let field =
                if e.field_path.is_empty() { String::new() } else { e.field_path.trim_start_matches('.').to_string() };
            let at = if field.is_empty() { obj.clone() } else { value_at(&obj, &field).unwrap_or(Value::Null) };
            errs.push(FieldError::invalid(field, json!(type_name(&at)), e.message.clone()));
        }
    }
}

fn has_rules(schema: &Value) -> bool {
    match schema {
        Value::Object(m) => m.contains_key("x-kubernetes-validations") || m.values().any(has_rules),
        Value::Array(a) => a.iter().any(has_rules),
        _ => false,
    }
}

fn value_at(v: &Value, path: &str) -> Option<Value> {
    let mut cur = v;
    for part in path.split('.') {
        cur = cur.get(part)?;
    }
    Some(cur.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["podName", "sourceNode"],
                    "x-kubernetes-validations": [{"rule": "self.sourceNode != self.targetNode", "message": "sourceNode and targetNode must differ"}],
                    "properties": {
                        "podName": {"type": "string", "minLength": 1, "pattern": "^[a-z0-9.-]+$"},
                        "sourceNode": {"type": "string"},
                        "targetNode": {"type": "string"},
                        "strategy": {"type": "string", "enum": ["auto", "surge"], "default": "auto"},
                        "timeoutSeconds": {"type": "integer", "minimum": 0}
                    }
                },
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
            },
            "x-kubernetes-validations": [{
                "rule": "!has(oldSelf.status) || !has(oldSelf.status.phase) || oldSelf.status.phase == 'pending' || self.spec == oldSelf.spec",
                "message": "spec is immutable once the migration runs"
            }]
        })
    }

    fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(|e| format!("{}: {}", e.field, e.message())).collect()
    }

    #[test]
    fn prunes_unknown_fields_and_applies_defaults() {
        let mut o = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"},
            "spec": {"podName": "p", "sourceNode": "a", "targetNode": "b", "bogus": 1}, "extra": true,
            "status": {"anything": 1}});
        prune_and_default(&schema(), &mut o);
        assert_eq!(o["spec"], json!({"podName": "p", "sourceNode": "a", "targetNode": "b", "strategy": "auto"}));
        assert!(o.get("extra").is_none());
        assert_eq!(o["status"]["anything"], 1, "preserved");
    }

    #[test]
    fn structural_errors_with_upstream_wording() {
        let o = json!({"spec": {"podName": "", "strategy": "teleport", "timeoutSeconds": -1, "targetNode": 3}});
        let m = messages(&validate(&schema(), &o, None));
        assert!(m.contains(&"spec.sourceNode: Required value".to_string()), "{m:?}");
        assert!(
            m.contains(
                &"spec.podName: Invalid value: \"\": spec.podName in body should be at least 1 chars long".to_string()
            ),
            "{m:?}"
        );
        assert!(
            m.contains(
                &"spec.strategy: Unsupported value: \"teleport\": supported values: \"auto\", \"surge\"".to_string()
            ),
            "{m:?}"
        );
        assert!(m.contains(&"spec.timeoutSeconds: Invalid value: -1: spec.timeoutSeconds in body should be greater than or equal to 0".to_string()), "{m:?}");
        assert!(m.contains(&"spec.targetNode: Invalid value: \"integer\": spec.targetNode in body must be of type string: \"integer\"".to_string()), "{m:?}");
        assert_eq!(
            messages(&validate(&schema(), &json!({}), None)),
            Vec::<String>::new(),
            "spec itself is optional here"
        );
    }

    #[test]
    fn cel_rules_and_transition_rules() {
        let same = json!({"spec": {"podName": "p", "sourceNode": "a", "targetNode": "a"}});
        let m = messages(&validate(&schema(), &same, None));
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].starts_with("spec: Invalid value: \"object\": sourceNode and targetNode must differ"), "{m:?}");

        let old =
            json!({"spec": {"podName": "p", "sourceNode": "a", "targetNode": "b"}, "status": {"phase": "running"}});
        let changed =
            json!({"spec": {"podName": "p", "sourceNode": "a", "targetNode": "c"}, "status": {"phase": "running"}});
        let m = messages(&validate(&schema(), &changed, Some(&old)));
        assert!(m.iter().any(|e| e.contains("spec is immutable once the migration runs")), "{m:?}");
        let pending =
            json!({"spec": {"podName": "p", "sourceNode": "a", "targetNode": "b"}, "status": {"phase": "pending"}});
        assert!(validate(&schema(), &changed, Some(&pending)).is_empty());
        assert!(validate(&schema(), &changed, None).is_empty(), "transition rules only apply to updates");
    }
}
