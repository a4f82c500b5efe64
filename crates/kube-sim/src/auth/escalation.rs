//! RBAC's privilege-escalation prevention: under RBAC, a user who may write
//! Roles or bindings still cannot grant more than they hold. Writing a Role
//! or ClusterRole needs every one of its rules (or `escalate` on it; an
//! aggregation rule needs cluster-admin's rights); writing a binding needs
//! every rule of the role it refers to (or `bind` on that role).
//! `system:masters` is exempt, as upstream.

use serde_json::Value;

use super::rbac::{self, GROUP, Rule};
use super::request::RequestInfo;
use super::{MASTERS, UserInfo};
use crate::apiserver::{ApiServer, PatchType, WriteOptions};
use crate::error::ApiError;
use crate::protobuf;

/// Whether a request writes an RBAC object and so must be checked.
pub fn applies(server: &ApiServer, user: &UserInfo, r: &RequestInfo) -> bool {
    server.auth.rbac_enabled()
        && !user.in_group(MASTERS)
        && r.resource_request
        && r.api_group == GROUP
        && r.subresource.is_empty()
        && matches!(r.verb.as_str(), "create" | "update" | "patch")
        && matches!(r.resource.as_str(), "roles" | "clusterroles" | "rolebindings" | "clusterrolebindings")
}

fn decode(content_type: &str, body: &[u8]) -> Option<Value> {
    match content_type.split(';').next().unwrap_or_default().trim() {
        "application/json" | "" | "*/*" => serde_json::from_slice(body).ok(),
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            serde_yaml_ng::from_str(std::str::from_utf8(body).ok()?).ok()
        }
        protobuf::MEDIA_TYPE => protobuf::decode_any(body).ok().map(|(_, _, v)| v),
        _ => None,
    }
}

fn full_authority() -> Vec<Rule> {
    let all = || vec!["*".to_string()];
    vec![
        Rule { verbs: all(), api_groups: all(), resources: all(), ..Default::default() },
        Rule { verbs: all(), non_resource_urls: all(), ..Default::default() },
    ]
}

/// upstream's `ConfirmNoEscalation` message for the rules `user` lacks.
fn not_held(user: &UserInfo, missing: &[Rule]) -> String {
    // Compact: one line per (groups, resources, names, URLs), verbs merged.
    let mut merged: Vec<Rule> = Vec::new();
    for m in missing {
        match merged.iter_mut().find(|r| {
            r.api_groups == m.api_groups
                && r.resources == m.resources
                && r.resource_names == m.resource_names
                && r.non_resource_urls == m.non_resource_urls
        }) {
            Some(r) => {
                for v in &m.verbs {
                    if !r.verbs.contains(v) {
                        r.verbs.push(v.clone());
                    }
                }
            }
            None => merged.push(m.clone()),
        }
    }
    let mut lines: Vec<String> = merged.iter().map(rbac::compact_string).collect();
    lines.sort();
    lines.dedup();
    let groups: Vec<String> = user.groups.iter().map(|g| format!("{g:?}")).collect();
    format!(
        "user {:?} (groups=[{}]) is attempting to grant RBAC permissions not currently held:\n{}",
        user.name,
        groups.join(" "),
        lines.join("\n")
    )
}

fn forbidden(r: &RequestInfo, name: &str, why: String) -> ApiError {
    let mut e = ApiError::forbidden(crate::error::Subject { group: GROUP, resource: &r.resource, name }, why);
    if name.is_empty() {
        e.message = e.message.replacen(" \"\" is forbidden", " is forbidden", 1);
    }
    e
}

/// Check a write of an RBAC object; `Err` is the answer to send instead.
pub fn check(
    server: &ApiServer,
    user: &UserInfo,
    r: &RequestInfo,
    content_type: &str,
    body: &[u8],
) -> Result<(), ApiError> {
    let ns = (!r.namespace.is_empty()).then_some(r.namespace.as_str());
    let res = server.res(GROUP, &r.resource);
    let (new, old) = if r.verb == "patch" {
        let Some(ty) = PatchType::from_content_type(content_type) else { return Ok(()) };
        let opts = WriteOptions { dry_run: true, ..WriteOptions::manager("escalation-check") };
        // What the patch would make of the object; a patch that fails will
        // fail the same way when it is really applied.
        let Ok(w) = server.patch(&res, ns, &r.name, None, ty, body, &opts) else { return Ok(()) };
        (w.object, server.get_value(&res, ns, &r.name).ok())
    } else {
        let Some(v) = decode(content_type, body) else { return Ok(()) };
        let old = if r.verb == "update" { server.get_value(&res, ns, &r.name).ok() } else { None };
        (v, old)
    };
    let name = if r.name.is_empty() { crate::meta::name(&new).to_string() } else { r.name.clone() };
    let allowed = |verb: &str, resource: &str, name: &str| {
        rbac::authorize(server, user, &RequestInfo::resource(verb, GROUP, resource, &r.namespace, name)).allowed()
    };
    let (owner, errors) = rbac::rules_for(server, user, &r.namespace);
    let held = |wanted: &[Rule]| {
        let missing = rbac::uncovered(&owner, wanted);
        if missing.is_empty() {
            return Ok(());
        }
        let mut why = not_held(user, &missing);
        if !errors.is_empty() {
            why.push_str(&format!("; resolution errors: [{}]", errors.join(" ")));
        }
        Err(why)
    };
    match r.resource.as_str() {
        "roles" | "clusterroles" => {
            if allowed("escalate", &r.resource, &name) {
                return Ok(());
            }
            let rules: Vec<Rule> = new
                .get("rules")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|x| serde_json::from_value(x.clone()).ok()).collect())
                .unwrap_or_default();
            held(&rules).map_err(|why| forbidden(r, &name, why))?;
            let aggregates =
                |v: Option<&Value>| v.is_some_and(|v| v.get("aggregationRule").is_some_and(|a| !a.is_null()));
            if r.resource == "clusterroles"
                && (aggregates(Some(&new)) || aggregates(old.as_ref()))
                && held(&full_authority()).is_err()
            {
                return Err(forbidden(
                    r,
                    &name,
                    "must have cluster-admin privileges to use the aggregationRule".into(),
                ));
            }
            Ok(())
        }
        _ => {
            let kind = new.pointer("/roleRef/kind").and_then(Value::as_str).unwrap_or_default();
            let role = new.pointer("/roleRef/name").and_then(Value::as_str).unwrap_or_default();
            let role_resource = if kind == "Role" { "roles" } else { "clusterroles" };
            if allowed("bind", role_resource, role) {
                return Ok(());
            }
            let rules = server
                .auth
                .rbac_index(server)
                .role_ref_rules(kind, role, &r.namespace)
                .map_err(ApiError::bad_request)?;
            held(&rules).map_err(|why| forbidden(r, &name, why))
        }
    }
}
