//! Strategic merge patch (`application/strategic-merge-patch+json`).
//!
//! Follows the apply half of k8s.io/apimachinery's strategicpatch: maps merge
//! recursively, `null` deletes, lists merge according to their SMP strategy
//! (see [`super::schema::smp_list`]) and the `$patch`, `$retainKeys`,
//! `$setElementOrder/<f>` and `$deleteFromPrimitiveList/<f>` directives are
//! honoured. Unlike upstream, which relies on decoding into Go structs to drop
//! stray directives, the result never contains `$`-prefixed keys.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{Map, Value};

use super::schema::{self, SmpList};

/// A patch that cannot be applied. The message is meant for the `Status`
/// returned to the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatchError(pub String);

impl fmt::Display for PatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PatchError {}

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER: &str = "$setElementOrder/";
const DELETE_PRIMITIVE: &str = "$deleteFromPrimitiveList/";

/// Applies a strategic merge `patch` to `original`, an object of `kind`.
pub fn strategic_merge(kind: &str, original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Object(original) = original else {
        return Err(PatchError("original object is not a JSON object".into()));
    };
    let Value::Object(patch) = patch else {
        return Err(PatchError(format!("strategic merge patch must be a JSON object, got {}", type_name(patch))));
    };
    let mut merger = Merger { kind, path: Vec::new() };
    merger.merge_map(original.clone(), patch).map(Value::Object)
}

/// Walks the patch, remembering where it is so list strategies can be looked
/// up and errors can name the field.
struct Merger<'a> {
    kind: &'a str,
    path: Vec<String>,
}

impl Merger<'_> {
    fn err(&self, msg: impl fmt::Display) -> PatchError {
        if self.path.is_empty() {
            PatchError(msg.to_string())
        } else {
            PatchError(format!("{}: {msg}", self.path.join(".")))
        }
    }

    fn list_strategy(&self) -> SmpList {
        let path: Vec<&str> = self.path.iter().map(String::as_str).collect();
        schema::smp_list(self.kind, &path)
    }

    fn merge_map(
        &mut self,
        mut original: Map<String, Value>,
        patch: &Map<String, Value>,
    ) -> Result<Map<String, Value>, PatchError> {
        if let Some(directive) = patch.get(PATCH) {
            return match directive.as_str() {
                Some("replace") => {
                    // The patch becomes the map; merging it into nothing
                    // strips its directives and nulls.
                    let mut rest = patch.clone();
                    remove_key(&mut rest, PATCH);
                    self.merge_map(Map::new(), &rest)
                }
                Some("delete") => Ok(Map::new()),
                _ => Err(self.err(format!("unknown patch type: {directive} in map"))),
            };
        }

        if let Some(retain) = patch.get(RETAIN_KEYS) {
            self.retain_keys(&mut original, patch, retain)?;
        }

        // Lists reordered by $setElementOrder are merged there, not below.
        let mut handled = BTreeSet::new();
        for (key, order) in patch {
            if let Some(field) = key.strip_prefix(SET_ORDER) {
                self.path.push(field.to_owned());
                let result = self.set_element_order(&mut original, patch, field, order);
                self.path.pop();
                result?;
                handled.insert(field);
            }
        }

        for (key, value) in patch {
            if key.starts_with('$') || handled.contains(key.as_str()) {
                continue;
            }
            if value.is_null() {
                remove_key(&mut original, key);
                continue;
            }
            self.path.push(key.clone());
            let merged = match original.get_mut(key) {
                Some(slot) => {
                    let old = std::mem::take(slot);
                    self.merge_value(Some(old), value)
                }
                None => self.merge_value(None, value),
            };
            self.path.pop();
            original.insert(key.clone(), merged?);
        }

        // Deletions run after additions, as when upstream merges a
        // $setElementOrder list before its parallel deletion list.
        for (key, value) in patch {
            if let Some(field) = key.strip_prefix(DELETE_PRIMITIVE) {
                let Value::Array(doomed) = value else {
                    return Err(self.err(format!("{key} must be a list")));
                };
                if let Some(Value::Array(list)) = original.get_mut(field) {
                    list.retain(|item| !doomed.iter().any(|d| json_eq(d, item)));
                }
            }
        }
        Ok(original)
    }

    /// Merges one patch value into the original value at the current path
    /// (`None` when the original has no such field).
    fn merge_value(&mut self, original: Option<Value>, patch: &Value) -> Result<Value, PatchError> {
        match (original, patch) {
            (Some(Value::Object(o)), Value::Object(p)) => self.merge_map(o, p).map(Value::Object),
            (Some(Value::Array(o)), Value::Array(p)) => self.merge_list(o, p).map(Value::Array),
            // Absent or of another type: the patch value wins, minus directives.
            (_, Value::Object(p)) => self.merge_map(Map::new(), p).map(Value::Object),
            (_, Value::Array(p)) => self.merge_list(Vec::new(), p).map(Value::Array),
            (_, scalar) => Ok(scalar.clone()),
        }
    }

    fn retain_keys(
        &self,
        original: &mut Map<String, Value>,
        patch: &Map<String, Value>,
        retain: &Value,
    ) -> Result<(), PatchError> {
        let Value::Array(list) = retain else {
            return Err(self.err("$retainKeys must be a list of field names"));
        };
        let mut keep = BTreeSet::new();
        for item in list {
            let Some(name) = item.as_str() else {
                return Err(self.err("$retainKeys must be a list of field names"));
            };
            keep.insert(name);
        }
        for (key, value) in patch {
            if !value.is_null() && !key.starts_with('$') && !keep.contains(key.as_str()) {
                return Err(self.err(format!("field {key:?} is in the patch but not in $retainKeys")));
            }
        }
        original.retain(|key, _| keep.contains(key.as_str()));
        Ok(())
    }

    fn merge_list(&mut self, original: Vec<Value>, patch: &[Value]) -> Result<Vec<Value>, PatchError> {
        match self.list_strategy() {
            SmpList::Replace => Ok(patch.iter().filter_map(sanitize).collect()),
            SmpList::MergeScalars => self.merge_scalars(original, patch),
            SmpList::MergeByKey(key) => self.merge_keyed(original, patch, key),
        }
    }

    fn merge_scalars(&self, original: Vec<Value>, patch: &[Value]) -> Result<Vec<Value>, PatchError> {
        if let Some(bad) = patch.iter().find(|v| v.is_object() || v.is_array()) {
            return Err(self.err(format!("expected a list of scalars, found {} element", type_name(bad))));
        }
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for item in original.iter().chain(patch) {
            if !merged.iter().any(|m| json_eq(m, item)) {
                merged.push(item.clone());
            }
        }
        let (from_patch, server_only) = partition(merged, |item| index_of(patch, item, None).is_some());
        Ok(normalize_order(from_patch, server_only, patch, &original, None))
    }

    fn merge_keyed(&mut self, mut original: Vec<Value>, patch: &[Value], key: &str) -> Result<Vec<Value>, PatchError> {
        let mut plain = Vec::with_capacity(patch.len());
        let mut replace = false;
        for item in patch {
            let Value::Object(map) = item else {
                return Err(self.err(format!(
                    "expected list elements to be objects merged by {key:?}, found {}",
                    type_name(item)
                )));
            };
            match map.get(PATCH) {
                None => plain.push(map),
                Some(directive) => match directive.as_str() {
                    Some("delete") => {
                        let Some(wanted) = map.get(key) else {
                            return Err(self.err(format!("element {item} does not contain merge key {key:?}")));
                        };
                        original.retain(|e| !key_matches(e, key, wanted));
                    }
                    Some("replace") => replace = true,
                    Some("merge") => {
                        return Err(self.err("merging lists cannot yet be specified in the patch"));
                    }
                    _ => {
                        return Err(self.err(format!("unknown patch type: {directive} in list element")));
                    }
                },
            }
        }

        if replace {
            return plain.into_iter().map(|m| self.merge_map(Map::new(), m).map(Value::Object)).collect();
        }

        let server_order = original.clone();
        let mut patch_order = Vec::with_capacity(plain.len());
        for map in plain {
            let Some(wanted) = map.get(key) else {
                return Err(
                    self.err(format!("element {} does not contain merge key {key:?}", Value::Object(map.clone())))
                );
            };
            patch_order.push(Value::Object(map.clone()));
            match original.iter().position(|e| key_matches(e, key, wanted)) {
                Some(at) => {
                    let old = match std::mem::take(&mut original[at]) {
                        Value::Object(o) => o,
                        _ => Map::new(),
                    };
                    original[at] = Value::Object(self.merge_map(old, map)?);
                }
                None => original.push(Value::Object(self.merge_map(Map::new(), map)?)),
            }
        }
        let (from_patch, server_only) = partition(original, |item| index_of(&patch_order, item, Some(key)).is_some());
        Ok(normalize_order(from_patch, server_only, &patch_order, &server_order, Some(key)))
    }

    /// Handles `$setElementOrder/<field>`: merges the list (if patched) and
    /// orders it as the directive says, keeping server-only elements near
    /// their old neighbours.
    fn set_element_order(
        &mut self,
        original: &mut Map<String, Value>,
        patch: &Map<String, Value>,
        field: &str,
        order: &Value,
    ) -> Result<(), PatchError> {
        let Value::Array(order) = order else {
            return Err(self.err("$setElementOrder must be a list"));
        };
        let original_list = match original.get(field) {
            None => None,
            Some(Value::Array(list)) => Some(list.clone()),
            Some(other) => {
                return Err(self.err(format!("expected a list, found {}", type_name(other))));
            }
        };
        let patch_list = match patch.get(field) {
            None => None,
            Some(Value::Array(list)) => Some(list.as_slice()),
            Some(other) => {
                return Err(self.err(format!("expected a list, found {}", type_name(other))));
            }
        };
        let key = match self.list_strategy() {
            SmpList::MergeByKey(key) => Some(key),
            SmpList::MergeScalars => None,
            SmpList::Replace => {
                // Nothing to reorder against: the patch list (if any) wins.
                if let Some(list) = patch_list {
                    original.insert(field.to_owned(), Value::Array(self.merge_list(Vec::new(), list)?));
                }
                return Ok(());
            }
        };
        if let Some(key) = key
            && let Some(bad) = order.iter().find(|o| o.get(key).is_none())
        {
            return Err(self.err(format!("$setElementOrder element {bad} does not contain merge key {key:?}")));
        }
        if let Some(list) = patch_list {
            check_order(list, order, key).map_err(|m| self.err(m))?;
        }
        let merged = match (&original_list, patch_list) {
            (None, None) => return Ok(()),
            (Some(o), None) => o.clone(),
            (o, Some(p)) => self.merge_list(o.clone().unwrap_or_default(), p)?,
        };
        let (from_patch, server_only) = partition(merged, |item| index_of(order, item, key).is_some());
        let server_order = original_list.unwrap_or_default();
        let ordered = normalize_order(from_patch, server_only, order, &server_order, key);
        original.insert(field.to_owned(), Value::Array(ordered));
        Ok(())
    }
}

/// Checks that the non-deleted patch elements appear in `order` in the same
/// relative order, as upstream does before trusting the directive.
fn check_order(patch: &[Value], order: &[Value], key: Option<&str>) -> Result<(), String> {
    let wanted: Vec<&Value> = patch.iter().filter(|v| v.get(PATCH).is_none()).collect();
    let (mut p, mut o) = (0, 0);
    while p < wanted.len() && o < order.len() {
        if same_element(wanted[p], &order[o], key) {
            p += 1;
        }
        o += 1;
    }
    if p < wanted.len() {
        return Err("the order in the patch list does not match the $setElementOrder list".into());
    }
    Ok(())
}

fn same_element(a: &Value, b: &Value, key: Option<&str>) -> bool {
    match key {
        Some(k) => matches!((a.get(k), b.get(k)), (Some(x), Some(y)) if json_eq(x, y)),
        None => json_eq(a, b),
    }
}

fn key_matches(element: &Value, key: &str, wanted: &Value) -> bool {
    element.get(key).is_some_and(|v| json_eq(v, wanted))
}

fn index_of(order: &[Value], item: &Value, key: Option<&str>) -> Option<usize> {
    order.iter().position(|o| same_element(item, o, key))
}

fn partition(items: Vec<Value>, mut in_patch: impl FnMut(&Value) -> bool) -> (Vec<Value>, Vec<Value>) {
    items.into_iter().partition(|item| in_patch(item))
}

/// Orders the merged list: patched elements follow `patch_order`, server-only
/// elements keep their `server_order`, and the two are interleaved so that a
/// server-only element stays in front of a patched one it preceded before.
fn normalize_order(
    mut from_patch: Vec<Value>,
    mut server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let rank = |order: &[Value], item: &Value| index_of(order, item, key).unwrap_or(usize::MAX);
    from_patch.sort_by_key(|item| rank(patch_order, item));
    server_only.sort_by_key(|item| rank(server_order, item));

    let mut out = Vec::with_capacity(from_patch.len() + server_only.len());
    let mut patched = from_patch.into_iter().peekable();
    let mut server = server_only.into_iter().peekable();
    loop {
        let take_server = match (server.peek(), patched.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(s), Some(p)) => matches!(
                (index_of(server_order, s, key), index_of(server_order, p, key)),
                (Some(si), Some(pi)) if si < pi
            ),
        };
        let next = if take_server { server.next() } else { patched.next() };
        out.extend(next);
    }
    out
}

/// A patch value used verbatim (replaced lists): drops directive elements and
/// keys and nulls, which a typed decode would also lose.
fn sanitize(value: &Value) -> Option<Value> {
    match value {
        Value::Object(map) => {
            if map.contains_key(PATCH) {
                return None;
            }
            let clean = map
                .iter()
                .filter(|(k, v)| !k.starts_with('$') && !v.is_null())
                .filter_map(|(k, v)| sanitize(v).map(|v| (k.clone(), v)))
                .collect();
            Some(Value::Object(clean))
        }
        Value::Array(items) => Some(Value::Array(items.iter().filter_map(sanitize).collect())),
        other => Some(other.clone()),
    }
}

/// Removes a key without disturbing the order of the others, whether or not
/// serde_json's `preserve_order` is enabled.
fn remove_key(map: &mut Map<String, Value>, key: &str) {
    map.retain(|k, _| k != key);
}

/// JSON equality where `1` and `1.0` are the same number, as after Go's decode.
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
            (Some(x), Some(y), _, _) => x == y,
            (_, _, Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn smp(kind: &str, original: Value, patch: Value) -> Value {
        strategic_merge(kind, &original, &patch).expect("patch applies")
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [
                {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
                {"name": "b", "image": "b:1"}
            ]}}}
        })
    }

    #[test]
    fn kubectl_label_sets_and_removes() {
        let out = smp(
            "Pod",
            json!({"metadata": {"labels": {"c": "d", "keep": "y"}}}),
            json!({"metadata": {"labels": {"a": "b", "c": null}}}),
        );
        assert_eq!(out, json!({"metadata": {"labels": {"a": "b", "keep": "y"}}}));
    }

    #[test]
    fn kubectl_cordon() {
        let node = json!({"metadata": {"name": "n"}, "spec": {"podCIDR": "10.0.0.0/24"}});
        let out = smp("Node", node, json!({"spec": {"unschedulable": true}}));
        assert_eq!(out["spec"], json!({"podCIDR": "10.0.0.0/24", "unschedulable": true}));
    }

    #[test]
    fn kubectl_apply_set_element_order() {
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"image": "x", "name": "a"}]
        }}}});
        let out = smp("Deployment", deployment(), patch);
        let containers = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers[0]["image"], "x");
        assert_eq!(containers[0]["env"], json!([{"name": "X", "value": "1"}]));
        assert_eq!(containers[1], json!({"name": "b", "image": "b:1"}));
        assert!(!out.to_string().contains('$'));
    }

    #[test]
    fn set_element_order_reorders_and_keeps_server_only_elements() {
        let original = json!({"spec": {"containers": [
            {"name": "a"}, {"name": "sidecar"}, {"name": "b"}
        ]}});
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}, {"name": "c"}],
            "containers": [{"name": "c", "image": "c"}]
        }});
        let out = smp("Pod", original, patch);
        let names: Vec<&str> =
            out["spec"]["containers"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        // Upstream keeps a server-only element in front of the patched
        // element that followed it in the live list.
        assert_eq!(names, ["sidecar", "b", "a", "c"]);
    }

    #[test]
    fn set_element_order_must_agree_with_patch_list() {
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "b"}, {"name": "a"}]
        }});
        let err = strategic_merge("Pod", &json!({"spec": {}}), &patch).unwrap_err();
        assert!(err.0.contains("$setElementOrder"), "{err}");
    }

    #[test]
    fn keyed_list_merges_appends_and_deletes() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "b", "$patch": "delete"},
            {"name": "a", "env": [{"name": "Y", "value": "2"}]},
            {"name": "c", "image": "c:1", "gone": null}
        ]}}}});
        let out = smp("Deployment", deployment(), patch);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([
                // New patch items go before server-only ones, as upstream.
                {"name": "a", "image": "a:1",
                 "env": [{"name": "Y", "value": "2"}, {"name": "X", "value": "1"}]},
                {"name": "c", "image": "c:1"}
            ])
        );
    }

    #[test]
    fn kubectl_apply_removal_with_set_element_order() {
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "a"}],
            "containers": [{"$patch": "delete", "name": "b"}]
        }}}});
        let out = smp("Deployment", deployment(), patch);
        let containers = out["spec"]["template"]["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 1);
        assert_eq!(containers[0]["name"], "a");
    }

    #[test]
    fn patch_order_wins_for_patched_elements() {
        let original = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let patch = json!({"spec": {"containers": [{"name": "b"}, {"name": "a"}]}});
        let out = smp("Pod", original, patch);
        assert_eq!(out["spec"]["containers"], json!([{"name": "b"}, {"name": "a"}]));
    }

    #[test]
    fn replace_element_replaces_whole_list() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"$patch": "replace"}, {"name": "z", "image": "z"}
        ]}}}});
        let out = smp("Deployment", deployment(), patch);
        assert_eq!(out["spec"]["template"]["spec"]["containers"], json!([{"name": "z", "image": "z"}]));
    }

    #[test]
    fn map_directives() {
        let original = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"x": 1}});
        let out = smp("Pod", original.clone(), json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}));
        assert_eq!(out["metadata"]["labels"], json!({"c": "3"}));
        let out = smp("Pod", original, json!({"spec": {"$patch": "delete"}}));
        assert_eq!(out["spec"], json!({}));
    }

    #[test]
    fn scalar_lists_union_and_delete() {
        let original = json!({"metadata": {"finalizers": ["a", "b"]}});
        let out = smp("Pod", original.clone(), json!({"metadata": {"finalizers": ["c", "a"]}}));
        assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
        let out = smp(
            "Pod",
            original,
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "finalizers": ["d"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["d", "b"]));
    }

    #[test]
    fn atomic_lists_are_replaced() {
        let original = json!({"spec": {"tolerations": [{"key": "a"}], "containers": [
            {"name": "c", "args": ["x", "y"]}
        ]}});
        let patch = json!({"spec": {"tolerations": [{"key": "b"}], "containers": [
            {"name": "c", "args": ["z"]}
        ]}});
        let out = smp("Pod", original, patch);
        assert_eq!(out["spec"]["tolerations"], json!([{"key": "b"}]));
        assert_eq!(out["spec"]["containers"][0]["args"], json!(["z"]));
    }

    #[test]
    fn container_ports_merge_by_container_port_only() {
        let original = json!({"spec": {"containers": [{"name": "c", "ports": [
            {"containerPort": 80, "protocol": "TCP"}
        ]}]}});
        let patch = json!({"spec": {"containers": [{"name": "c", "ports": [
            {"containerPort": 80, "protocol": "UDP"}
        ]}]}});
        let out = smp("Pod", original, patch);
        assert_eq!(out["spec"]["containers"][0]["ports"], json!([{"containerPort": 80, "protocol": "UDP"}]));
    }

    #[test]
    fn retain_keys_clears_other_volume_sources() {
        let original = json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}});
        let patch = json!({"spec": {"volumes": [{
            "name": "v", "$retainKeys": ["configMap", "name"], "configMap": {"name": "cm"}
        }]}});
        let out = smp("Pod", original, patch);
        assert_eq!(out["spec"]["volumes"], json!([{"name": "v", "configMap": {"name": "cm"}}]));
    }

    #[test]
    fn retain_keys_must_cover_the_patch() {
        let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}});
        assert!(strategic_merge("Deployment", &deployment(), &patch).is_err());
    }

    #[test]
    fn directives_never_leak_into_new_fields() {
        let patch = json!({"spec": {"template": {"spec": {"volumes": [
            {"name": "v", "$retainKeys": ["name", "emptyDir"], "emptyDir": {}}
        ], "$setElementOrder/initContainers": [{"name": "i"}],
           "initContainers": [{"name": "i", "$setElementOrder/env": [{"name": "E"}],
                               "env": [{"name": "E", "value": "1"}]}]}}}});
        let out = smp("Deployment", deployment(), patch);
        assert!(!out.to_string().contains('$'), "{out}");
        assert_eq!(out["spec"]["template"]["spec"]["initContainers"][0]["env"][0]["value"], "1");
    }

    #[test]
    fn malformed_patches_are_errors() {
        let d = deployment();
        let bad = [
            json!(["not", "an", "object"]),
            json!({"spec": {"$patch": "merge"}}),
            json!({"spec": {"$patch": "bogus"}}),
            json!({"spec": {"template": {"spec": {"containers": [{"image": "no-name"}]}}}}),
            json!({"spec": {"template": {"spec": {"containers": [{"$patch": "delete"}]}}}}),
            json!({"spec": {"template": {"spec": {"containers": ["scalar"]}}}}),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "$patch": "merge"}]}}}}),
            json!({"metadata": {"finalizers": [{"a": 1}]}}),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}),
            json!({"spec": {"$setElementOrder/x": "nope"}}),
            json!({"spec": {"strategy": {"$retainKeys": "type"}}}),
        ];
        for patch in bad {
            assert!(strategic_merge("Deployment", &d, &patch).is_err(), "{patch}");
        }
        let err = strategic_merge(
            "Deployment",
            &d,
            &json!({"spec": {"template": {"spec": {
                "containers": [{"image": "no-name"}]
            }}}}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("spec.template.spec.containers"), "{err}");
        assert!(strategic_merge("Pod", &json!("x"), &json!({})).is_err());
    }

    #[test]
    fn type_changes_take_the_patch_value() {
        let out = smp("Pod", json!({"spec": {"x": "s"}}), json!({"spec": {"x": {"y": 1, "z": null}}}));
        assert_eq!(out["spec"]["x"], json!({"y": 1}));
        let out = smp("Pod", json!({"spec": {"x": {"y": 1}}}), json!({"spec": {"x": 5}}));
        assert_eq!(out["spec"]["x"], json!(5));
    }

    #[test]
    fn numbers_compare_by_value() {
        let original = json!({"spec": {"containers": [{"name": "c", "ports": [
            {"containerPort": 80, "name": "http"}
        ]}]}});
        let patch = json!({"spec": {"containers": [{"name": "c", "ports": [
            {"containerPort": 80.0, "$patch": "delete"}
        ]}]}});
        let out = smp("Pod", original, patch);
        assert_eq!(out["spec"]["containers"][0]["ports"], json!([]));
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            "[a-z]{0,4}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,3}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn empty_patch_is_identity(obj in prop::collection::btree_map("[a-z]{1,3}", arb_json(), 0..5)) {
            let original = Value::Object(obj.into_iter().collect());
            for kind in ["Pod", "Deployment", "ConfigMap"] {
                prop_assert_eq!(strategic_merge(kind, &original, &json!({})).unwrap(), original.clone());
            }
        }

        #[test]
        fn directive_free_patches_are_idempotent(
            obj in prop::collection::btree_map("[a-z]{1,3}", arb_json(), 0..5),
            patch in prop::collection::btree_map("[a-z]{1,3}", arb_json(), 0..5),
        ) {
            let original = Value::Object(obj.into_iter().collect());
            let patch = Value::Object(patch.into_iter().collect());
            let once = strategic_merge("ConfigMap", &original, &patch).unwrap();
            let twice = strategic_merge("ConfigMap", &once, &patch).unwrap();
            prop_assert_eq!(once, twice);
        }

        #[test]
        fn never_panics(original in arb_json(), patch in arb_json()) {
            for kind in ["Pod", "Deployment", "Node"] {
                let _ = strategic_merge(kind, &original, &patch);
            }
        }
    }
}
