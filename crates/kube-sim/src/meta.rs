//! Small accessors for `metadata` and friends on JSON objects, so the REST layer
//! reads like the rules it implements rather than like JSON plumbing.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

pub fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k)).and_then(Value::as_str)
}

pub fn name(v: &Value) -> &str {
    str_at(v, &["metadata", "name"]).unwrap_or_default()
}

pub fn namespace(v: &Value) -> Option<&str> {
    str_at(v, &["metadata", "namespace"]).filter(|s| !s.is_empty())
}

pub fn uid(v: &Value) -> &str {
    str_at(v, &["metadata", "uid"]).unwrap_or_default()
}

pub fn resource_version(v: &Value) -> &str {
    str_at(v, &["metadata", "resourceVersion"]).unwrap_or_default()
}

/// `metadata` as a mutable map, created when missing or not an object.
pub fn meta_mut(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    let Value::Object(o) = v else { unreachable!("made an object above") };
    let m = o.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    match m {
        Value::Object(m) => m,
        _ => unreachable!("made an object above"),
    }
}

pub fn set_meta(v: &mut Value, key: &str, value: Value) {
    meta_mut(v).insert(key.into(), value);
}

pub fn remove_meta(v: &mut Value, key: &str) -> Option<Value> {
    meta_mut(v).remove(key)
}

pub fn finalizers(v: &Value) -> Vec<String> {
    v.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

pub fn labels(v: &Value) -> BTreeMap<String, String> {
    v.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default()
}

pub fn is_deleting(v: &Value) -> bool {
    v.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null())
}

/// A random object name suffix, from the same alphabet upstream's
/// `utilrand.String` uses (no vowels, so no accidental words).
pub fn random_suffix(len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..len).map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char).collect()
}

/// Everything but `metadata` and `status`: what `generation` tracks.
pub fn spec_part(v: &Value) -> Map<String, Value> {
    v.as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Two versions are the same write if they differ at most in bookkeeping
/// (resourceVersion, managedFields). Compares in place: this runs on every write.
pub fn same_content(a: &Value, b: &Value) -> bool {
    const BOOKKEEPING: [&str; 2] = ["resourceVersion", "managedFields"];
    let (Some(ao), Some(bo)) = (a.as_object(), b.as_object()) else { return a == b };
    let same_meta =
        |x: Option<&Value>, y: Option<&Value>| match (x.and_then(Value::as_object), y.and_then(Value::as_object)) {
            (Some(xm), Some(ym)) => {
                let count = |m: &Map<String, Value>| m.keys().filter(|k| !BOOKKEEPING.contains(&k.as_str())).count();
                count(xm) == count(ym)
                    && xm.iter().filter(|(k, _)| !BOOKKEEPING.contains(&k.as_str())).all(|(k, v)| ym.get(k) == Some(v))
            }
            _ => x == y,
        };
    ao.len() == bo.len()
        && ao.iter().all(|(k, v)| if k == "metadata" { same_meta(Some(v), bo.get(k)) } else { bo.get(k) == Some(v) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accessors_tolerate_missing_and_wrong_shapes() {
        let mut v = json!({"metadata": "oops"});
        assert_eq!(name(&v), "");
        set_meta(&mut v, "name", json!("x"));
        assert_eq!(name(&v), "x");
        assert!(finalizers(&v).is_empty());
        let mut s = json!(5);
        set_meta(&mut s, "uid", json!("u"));
        assert_eq!(uid(&s), "u");
    }

    #[test]
    fn same_content_ignores_resource_version_only() {
        let a = json!({"metadata": {"name": "a", "resourceVersion": "1"}, "data": {"x": "1"}});
        let b = json!({"metadata": {"name": "a", "resourceVersion": "2"}, "data": {"x": "1"}});
        let c = json!({"metadata": {"name": "a", "resourceVersion": "2"}, "data": {"x": "2"}});
        assert!(same_content(&a, &b));
        assert!(!same_content(&a, &c));
        assert_eq!(random_suffix(5).len(), 5);
    }
}
