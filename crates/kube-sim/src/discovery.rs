//! Aggregated discovery (`apidiscovery.k8s.io/v2`, and `v2beta1` which
//! kubectl up to 1.29 asks for): every group, version and resource in one
//! document on `/api` (the core group) and `/apis` (the others), which
//! kubectl and client-go ask for before the per-group documents.

use serde_json::{Value, json};

use crate::resources::{Registry, ResourceInfo};

/// The media type parameters of an aggregated discovery answer.
pub const AS: &str = "APIGroupDiscoveryList";
pub const GROUP: &str = "apidiscovery.k8s.io";

/// The aggregated discovery version the Accept header asks for first, if any
/// (JSON only: the protobuf form is not served, clients fall back to JSON).
pub fn negotiate(accept: &str) -> Option<&'static str> {
    for part in accept.split(',') {
        let mut params = part.split(';').map(str::trim);
        let media = params.next().unwrap_or_default();
        let params: Vec<&str> = params.collect();
        let has = |p: &str| params.contains(&p);
        if media != "application/json" {
            continue;
        }
        if has("g=apidiscovery.k8s.io") && has("as=APIGroupDiscoveryList") {
            if has("v=v2") {
                return Some("v2");
            }
            if has("v=v2beta1") {
                return Some("v2beta1");
            }
            continue;
        }
        // Plain JSON comes first: the legacy documents.
        return None;
    }
    None
}

fn resource_entry(r: &ResourceInfo) -> Value {
    let kind = |k: &str| {
        if r.custom {
            json!({"group": r.group, "version": r.version, "kind": k})
        } else {
            json!({"group": "", "version": "", "kind": k})
        }
    };
    let mut e = json!({
        "resource": r.plural,
        "responseKind": kind(&r.kind),
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        e["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        e["categories"] = json!(r.categories);
    }
    let mut subs: Vec<Value> = r
        .subresources
        .iter()
        .map(|s| {
            let rk = match s.group_version {
                Some((g, v)) => json!({"group": g, "version": v, "kind": s.kind}),
                None => kind(s.kind),
            };
            json!({"subresource": s.name, "responseKind": rk, "verbs": s.verbs})
        })
        .collect();
    subs.sort_by(|a, b| a["subresource"].as_str().cmp(&b["subresource"].as_str()));
    if !subs.is_empty() {
        e["subresources"] = Value::Array(subs);
    }
    e
}

fn version_entry(registry: &Registry, group: &str, version: &str) -> Value {
    let mut rs = registry.resources_of(group, version);
    rs.sort_by(|a, b| a.plural.cmp(&b.plural));
    let resources: Vec<Value> = rs.iter().map(|r| resource_entry(r)).collect();
    json!({"version": version, "resources": resources, "freshness": "Current"})
}

/// The aggregated document of `/api` (`core`) or `/apis`.
pub fn document(registry: &Registry, core: bool, version: &str) -> Value {
    let items: Vec<Value> = if core {
        vec![json!({"metadata": {"creationTimestamp": null}, "versions": [version_entry(registry, "", "v1")]})]
    } else {
        registry
            .groups()
            .iter()
            .map(|g| {
                let versions: Vec<Value> = g.versions.iter().map(|v| version_entry(registry, &g.name, v)).collect();
                json!({"metadata": {"name": g.name, "creationTimestamp": null}, "versions": versions})
            })
            .collect()
    };
    json!({"kind": AS, "apiVersion": format!("{GROUP}/{version}"), "metadata": {}, "items": items})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers_of_kubectl_versions() {
        let k132 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        let k127 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(negotiate(k132), Some("v2"));
        assert_eq!(negotiate(k127), Some("v2beta1"));
        assert_eq!(negotiate("application/json, */*"), None);
        assert_eq!(negotiate(""), None);
        assert_eq!(
            negotiate(
                "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
            ),
            None
        );
    }
}
