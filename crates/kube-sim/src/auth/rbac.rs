//! RBAC: Roles, ClusterRoles, RoleBindings and ClusterRoleBindings decide,
//! with upstream's rule semantics (`plugin/pkg/auth/authorizer/rbac`):
//! ClusterRoleBindings first, then the RoleBindings of the request's
//! namespace; a rule matches on verb, API group, resource (`*`, exact,
//! `resource/subresource` or `*/subresource`) and resourceNames, or on
//! verb and nonResourceURLs (exact, `*`, or a `prefix*`). Nothing matching is
//! "no opinion", which denies; a binding whose role is missing adds its error
//! to the reason, as upstream's 403 shows it.
//!
//! The bindings and roles are compiled into an index, rebuilt only when one of
//! the four resources changes.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;

use super::request::RequestInfo;
use super::{MASTERS, UserInfo, aggregate};
use crate::apiserver::ApiServer;
use crate::validation::FieldError;

pub const GROUP: &str = "rbac.authorization.k8s.io";

/// One `PolicyRule`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    #[serde(default)]
    pub verbs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
    #[serde(default, rename = "nonResourceURLs", skip_serializing_if = "Vec::is_empty")]
    pub non_resource_urls: Vec<String>,
}

fn has(set: &[String], x: &str) -> bool {
    set.iter().any(|s| s == x)
}

impl Rule {
    /// Whether this rule allows the request.
    pub fn allows(&self, r: &RequestInfo) -> bool {
        if !(has(&self.verbs, "*") || has(&self.verbs, &r.verb)) {
            return false;
        }
        if !r.resource_request {
            return self.non_resource_urls.iter().any(|u| {
                u == "*" || *u == r.path || (u.ends_with('*') && r.path.starts_with(u.trim_end_matches('*')))
            });
        }
        if !(has(&self.api_groups, "*") || has(&self.api_groups, &r.api_group)) {
            return false;
        }
        let combined = r.full_resource();
        let resource_ok = self.resources.iter().any(|res| {
            res == "*"
                || *res == combined
                || (!r.subresource.is_empty() && res.strip_prefix("*/") == Some(r.subresource.as_str()))
        });
        resource_ok && (self.resource_names.is_empty() || has(&self.resource_names, &r.name))
    }

    fn parse_all(v: Option<&Value>) -> Vec<Rule> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|r| serde_json::from_value(r.clone()).ok()).collect())
            .unwrap_or_default()
    }
}

/// One binding subject.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Subject {
    kind: String,
    name: String,
    namespace: String,
}

impl Subject {
    fn applies_to(&self, user: &UserInfo, binding_ns: &str) -> bool {
        match self.kind.as_str() {
            "User" => user.name == self.name,
            "Group" => user.in_group(&self.name),
            "ServiceAccount" => {
                let ns = if self.namespace.is_empty() { binding_ns } else { &self.namespace };
                !ns.is_empty() && UserInfo::service_account_of(&user.name) == Some((ns, self.name.as_str()))
            }
            _ => false,
        }
    }

    fn describe(&self, binding_ns: &str) -> String {
        if self.kind == "ServiceAccount" {
            let ns = if self.namespace.is_empty() { binding_ns } else { &self.namespace };
            format!("{} \"{}/{ns}\"", self.kind, self.name)
        } else {
            format!("{} \"{}\"", self.kind, self.name)
        }
    }
}

#[derive(Debug, Clone)]
struct Binding {
    name: String,
    namespace: String,
    role_kind: String,
    role_name: String,
    subjects: Vec<Subject>,
}

impl Binding {
    fn parse(v: &Value) -> Option<Binding> {
        let meta = v.get("metadata")?;
        let role = v.get("roleRef")?;
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let subjects = v
            .get("subjects")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|x| Subject { kind: s(x, "kind"), name: s(x, "name"), namespace: s(x, "namespace") })
                    .collect()
            })
            .unwrap_or_default();
        Some(Binding {
            name: s(meta, "name"),
            namespace: s(meta, "namespace"),
            role_kind: s(role, "kind"),
            role_name: s(role, "name"),
            subjects,
        })
    }

    /// The first subject that applies to `user`.
    fn subject_for(&self, user: &UserInfo) -> Option<&Subject> {
        self.subjects.iter().find(|s| s.applies_to(user, &self.namespace))
    }

    fn describe(&self, subject: &Subject) -> String {
        if self.namespace.is_empty() {
            format!(
                "ClusterRoleBinding \"{}\" of {} \"{}\" to {}",
                self.name,
                self.role_kind,
                self.role_name,
                subject.describe("")
            )
        } else {
            format!(
                "RoleBinding \"{}/{}\" of {} \"{}\" to {}",
                self.name,
                self.namespace,
                self.role_kind,
                self.role_name,
                subject.describe(&self.namespace)
            )
        }
    }
}

/// The RBAC objects, compiled.
#[derive(Debug, Default)]
pub struct Index {
    cluster_roles: HashMap<String, Arc<Vec<Rule>>>,
    roles: HashMap<(String, String), Arc<Vec<Rule>>>,
    cluster_bindings: Vec<Binding>,
    bindings: HashMap<String, Vec<Binding>>,
}

fn stored_values(server: &ApiServer, plural: &str) -> Vec<Value> {
    let res = server.res(GROUP, plural);
    let snap = server.store.snapshot(&res.storage);
    snap.iter_from(None).filter_map(|o| serde_json::from_slice(&o.body()).ok()).collect()
}

impl Index {
    fn build(server: &ApiServer) -> Index {
        let mut ix = Index::default();
        for v in stored_values(server, "clusterroles") {
            let name = crate::meta::name(&v).to_string();
            ix.cluster_roles.insert(name, Arc::new(Rule::parse_all(v.get("rules"))));
        }
        for v in stored_values(server, "roles") {
            let key = (crate::meta::namespace(&v).unwrap_or_default().to_string(), crate::meta::name(&v).to_string());
            ix.roles.insert(key, Arc::new(Rule::parse_all(v.get("rules"))));
        }
        ix.cluster_bindings = stored_values(server, "clusterrolebindings").iter().filter_map(Binding::parse).collect();
        for b in stored_values(server, "rolebindings").iter().filter_map(Binding::parse) {
            ix.bindings.entry(b.namespace.clone()).or_default().push(b);
        }
        ix
    }

    /// The rules a binding's role grants, or why they cannot be found.
    fn role_rules(&self, b: &Binding) -> Result<Arc<Vec<Rule>>, String> {
        match b.role_kind.as_str() {
            "ClusterRole" => self
                .cluster_roles
                .get(&b.role_name)
                .cloned()
                .ok_or_else(|| format!("clusterrole.{GROUP} \"{}\" not found", b.role_name)),
            "Role" => self
                .roles
                .get(&(b.namespace.clone(), b.role_name.clone()))
                .cloned()
                .ok_or_else(|| format!("role.{GROUP} \"{}\" not found", b.role_name)),
            other => Err(format!("unsupported role reference kind: \"{other}\"")),
        }
    }

    /// The rules of the role a binding in `namespace` (empty: a
    /// ClusterRoleBinding) refers to, or why they cannot be found.
    pub fn role_ref_rules(&self, kind: &str, name: &str, namespace: &str) -> Result<Arc<Vec<Rule>>, String> {
        let b = Binding {
            name: String::new(),
            namespace: namespace.into(),
            role_kind: kind.into(),
            role_name: name.into(),
            subjects: Vec::new(),
        };
        self.role_rules(&b)
    }

    /// Visit the rules that apply to `user` in `namespace` (cluster-wide ones
    /// first) until `visit` returns false; errors are collected.
    fn visit(
        &self,
        user: &UserInfo,
        namespace: &str,
        errors: &mut Vec<String>,
        mut visit: impl FnMut(&Binding, &Subject, &Rule) -> bool,
    ) {
        let local = if namespace.is_empty() { None } else { self.bindings.get(namespace) };
        for b in self.cluster_bindings.iter().chain(local.into_iter().flatten()) {
            let Some(subject) = b.subject_for(user) else { continue };
            match self.role_rules(b) {
                Ok(rules) => {
                    for r in rules.iter() {
                        if !visit(b, subject, r) {
                            return;
                        }
                    }
                }
                Err(e) => errors.push(e),
            }
        }
    }

    /// Upstream's RBAC authorizer: allowed with the binding that allows it, or
    /// no opinion with the resolution errors (`RBAC: ...`).
    pub fn authorize(&self, user: &UserInfo, r: &RequestInfo) -> Decision {
        let mut errors = Vec::new();
        let mut allowed = None;
        self.visit(user, &r.namespace, &mut errors, |b, s, rule| {
            if rule.allows(r) {
                allowed = Some(format!("RBAC: allowed by {}", b.describe(s)));
                return false;
            }
            true
        });
        match allowed {
            Some(reason) => Decision::Allow(reason),
            None if errors.is_empty() => Decision::NoOpinion(String::new()),
            None => Decision::NoOpinion(format!("RBAC: {}", aggregate(&errors))),
        }
    }

    /// Every rule that applies to `user` in `namespace`, and the errors met.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> (Vec<Rule>, Vec<String>) {
        let mut errors = Vec::new();
        let mut rules = Vec::new();
        self.visit(user, namespace, &mut errors, |_, _, r| {
            rules.push(r.clone());
            true
        });
        (rules, errors)
    }
}

/// An authorizer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(String),
    /// Not allowed (RBAC never denies explicitly); the reason may be empty.
    NoOpinion(String),
}

impl Decision {
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }
    pub fn reason(&self) -> &str {
        match self {
            Decision::Allow(r) | Decision::NoOpinion(r) => r,
        }
    }
}

/// The compiled index, rebuilt when the RBAC objects change.
#[derive(Debug, Default)]
pub struct Cache {
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    watches: Option<[watch::Receiver<u64>; 4]>,
    stamp: [u64; 4],
    index: Option<Arc<Index>>,
}

const RESOURCES: [&str; 4] = ["clusterroles", "clusterrolebindings", "roles", "rolebindings"];

impl Cache {
    pub fn index(&self, server: &ApiServer) -> Arc<Index> {
        let mut inner = self.inner.lock();
        let watches = inner
            .watches
            .get_or_insert_with(|| RESOURCES.map(|p| server.store.subscribe(&server.res(GROUP, p).storage)));
        let stamp = [0, 1, 2, 3].map(|i| *watches[i].borrow());
        match &inner.index {
            Some(ix) if inner.stamp == stamp => ix.clone(),
            _ => {
                let ix = Arc::new(Index::build(server));
                inner.stamp = stamp;
                inner.index = Some(ix.clone());
                ix
            }
        }
    }
}

/// Authorize `r` for `user` on `server`: `system:masters` first (upstream's
/// privileged-group authorizer), then the configured mode.
pub fn authorize(server: &ApiServer, user: &UserInfo, r: &RequestInfo) -> Decision {
    if user.in_group(MASTERS) || !server.auth.rbac_enabled() {
        return Decision::Allow(String::new());
    }
    server.auth.rbac.index(server).authorize(user, r)
}

/// The rules of `user` in `namespace` (SelfSubjectRulesReview), with the
/// evaluation errors.
pub fn rules_for(server: &ApiServer, user: &UserInfo, namespace: &str) -> (Vec<Rule>, Vec<String>) {
    let everything = || {
        vec![
            Rule {
                verbs: vec!["*".into()],
                api_groups: vec!["*".into()],
                resources: vec!["*".into()],
                ..Default::default()
            },
            Rule { verbs: vec!["*".into()], non_resource_urls: vec!["*".into()], ..Default::default() },
        ]
    };
    if !server.auth.rbac_enabled() {
        return (everything(), Vec::new());
    }
    let (mut rules, errors) = server.auth.rbac.index(server).rules_for(user, namespace);
    if user.in_group(MASTERS) {
        let mut all = everything();
        all.append(&mut rules);
        rules = all;
    }
    (rules, errors)
}

// ----- validation ---------------------------------------------------------------------

/// upstream's RBAC validation beyond object metadata: rules need verbs and,
/// for resources, API groups; a Role's rules cannot name URLs; a ClusterRole
/// rule cannot mix resources and URLs; bindings refer to a role of the RBAC
/// group and name their subjects.
pub(crate) fn validate(kind: &str, obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match kind {
        "Role" | "ClusterRole" => {
            for (i, r) in obj.get("rules").and_then(Value::as_array).into_iter().flatten().enumerate() {
                let f = |x: &str| format!("rules[{i}].{x}");
                let list = |k: &str| r.get(k).and_then(Value::as_array).map(Vec::len).unwrap_or(0);
                if list("verbs") == 0 {
                    errs.push(FieldError::required(f("verbs"), "verbs must contain at least one value"));
                }
                if list("nonResourceURLs") > 0 {
                    if kind == "Role" {
                        errs.push(FieldError::invalid(
                            f("nonResourceURLs"),
                            r["nonResourceURLs"].clone(),
                            "namespaced rules cannot apply to non-resource URLs",
                        ));
                    } else if list("apiGroups") > 0 || list("resources") > 0 || list("resourceNames") > 0 {
                        errs.push(FieldError::invalid(
                            f("nonResourceURLs"),
                            r["nonResourceURLs"].clone(),
                            "rules cannot apply to both regular resources and non-resource URLs",
                        ));
                    }
                } else {
                    if list("apiGroups") == 0 {
                        errs.push(FieldError::required(
                            f("apiGroups"),
                            "resource rules must supply at least one api group",
                        ));
                    }
                    if list("resources") == 0 {
                        errs.push(FieldError::required(
                            f("resources"),
                            "resource rules must supply at least one resource",
                        ));
                    }
                }
            }
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            let role_kind = obj.pointer("/roleRef/kind").and_then(Value::as_str).unwrap_or_default();
            let allowed: &[&str] = if kind == "RoleBinding" { &["Role", "ClusterRole"] } else { &["ClusterRole"] };
            if !allowed.contains(&role_kind) {
                errs.push(FieldError::not_supported("roleRef.kind", role_kind, allowed));
            }
            let group = obj.pointer("/roleRef/apiGroup").and_then(Value::as_str).unwrap_or_default();
            if group != GROUP {
                errs.push(FieldError::not_supported("roleRef.apiGroup", group, &[GROUP]));
            }
            if obj.pointer("/roleRef/name").and_then(Value::as_str).unwrap_or_default().is_empty() {
                errs.push(FieldError::required("roleRef.name", ""));
            }
            for (i, s) in obj.get("subjects").and_then(Value::as_array).into_iter().flatten().enumerate() {
                let sk = s.get("kind").and_then(Value::as_str).unwrap_or_default();
                if !matches!(sk, "User" | "Group" | "ServiceAccount") {
                    errs.push(FieldError::not_supported(
                        format!("subjects[{i}].kind"),
                        sk,
                        &["ServiceAccount", "User", "Group"],
                    ));
                }
                if s.get("name").and_then(Value::as_str).unwrap_or_default().is_empty() {
                    errs.push(FieldError::required(format!("subjects[{i}].name"), ""));
                }
                if sk == "ServiceAccount"
                    && kind == "ClusterRoleBinding"
                    && s.get("namespace").and_then(Value::as_str).unwrap_or_default().is_empty()
                {
                    errs.push(FieldError::required(format!("subjects[{i}].namespace"), ""));
                }
            }
        }
        _ => {}
    }
    errs
}

/// A binding's role cannot change.
pub(crate) fn validate_role_ref_update(old: &Value, new: &Value) -> Vec<FieldError> {
    if old.get("roleRef") == new.get("roleRef") {
        return Vec::new();
    }
    vec![FieldError::invalid("roleRef", new.get("roleRef").cloned().unwrap_or_default(), "cannot change roleRef")]
}

// ----- escalation: rules that cover other rules ------------------------------------

fn has_all(set: &[String], want: &[String]) -> bool {
    want.iter().all(|w| has(set, w))
}

fn resources_cover(owner: &[String], wanted: &[String]) -> bool {
    if has(owner, "*") || has_all(owner, wanted) {
        return true;
    }
    wanted.iter().all(|w| has(owner, w) || w.split_once('/').is_some_and(|(_, sub)| has(owner, &format!("*/{sub}"))))
}

fn urls_cover(owner: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| owner.iter().any(|o| o == w || (o.ends_with('*') && w.starts_with(o.trim_end_matches('*')))))
}

fn rule_covers(owner: &Rule, sub: &Rule) -> bool {
    let verbs = has(&owner.verbs, "*") || has_all(&owner.verbs, &sub.verbs);
    let groups = has(&owner.api_groups, "*") || has_all(&owner.api_groups, &sub.api_groups);
    let names = if sub.resource_names.is_empty() {
        owner.resource_names.is_empty()
    } else {
        owner.resource_names.is_empty() || has_all(&owner.resource_names, &sub.resource_names)
    };
    verbs
        && groups
        && resources_cover(&owner.resources, &sub.resources)
        && names
        && urls_cover(&owner.non_resource_urls, &sub.non_resource_urls)
}

/// One rule per verb × group × resource × name (or verb × URL).
fn breakdown(rule: &Rule) -> Vec<Rule> {
    let mut out = Vec::new();
    let one = |s: &String| vec![s.clone()];
    for verb in &rule.verbs {
        for group in &rule.api_groups {
            for resource in &rule.resources {
                if rule.resource_names.is_empty() {
                    out.push(Rule {
                        verbs: one(verb),
                        api_groups: one(group),
                        resources: one(resource),
                        ..Default::default()
                    });
                }
                for name in &rule.resource_names {
                    out.push(Rule {
                        verbs: one(verb),
                        api_groups: one(group),
                        resources: one(resource),
                        resource_names: one(name),
                        ..Default::default()
                    });
                }
            }
        }
        for url in &rule.non_resource_urls {
            out.push(Rule { verbs: one(verb), non_resource_urls: one(url), ..Default::default() });
        }
    }
    out
}

/// The parts of `wanted` that `owner` does not cover (upstream's `Covers`).
pub fn uncovered(owner: &[Rule], wanted: &[Rule]) -> Vec<Rule> {
    wanted.iter().flat_map(breakdown).filter(|sub| !owner.iter().any(|o| rule_covers(o, sub))).collect()
}

/// upstream's compact rendering of a rule in escalation errors.
pub fn compact_string(r: &Rule) -> String {
    let list = |name: &str, v: &[String]| {
        if v.is_empty() {
            None
        } else {
            Some(format!("{name}:[{}]", v.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(" ")))
        }
    };
    let parts: Vec<String> = [
        list("APIGroups", &r.api_groups),
        list("Resources", &r.resources),
        list("ResourceNames", &r.resource_names),
        list("NonResourceURLs", &r.non_resource_urls),
        list("Verbs", &r.verbs),
    ]
    .into_iter()
    .flatten()
    .collect();
    format!("{{{}}}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> Rule {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
        Rule {
            verbs: v(verbs),
            api_groups: v(groups),
            resources: v(resources),
            resource_names: v(names),
            ..Default::default()
        }
    }

    #[test]
    fn rules_match_as_upstream() {
        let get_pods = RequestInfo::resource("get", "", "pods", "ns", "p1");
        assert!(rule(&["get"], &[""], &["pods"], &[]).allows(&get_pods));
        assert!(rule(&["*"], &["*"], &["*"], &[]).allows(&get_pods));
        assert!(!rule(&["get"], &["apps"], &["pods"], &[]).allows(&get_pods));
        assert!(rule(&["get"], &[""], &["pods"], &["p1"]).allows(&get_pods));
        assert!(!rule(&["get"], &[""], &["pods"], &["p2"]).allows(&get_pods));
        // resourceNames never match a request without a name (list, create).
        assert!(
            !rule(&["list"], &[""], &["pods"], &["p1"]).allows(&RequestInfo::resource("list", "", "pods", "ns", ""))
        );
        let evict = RequestInfo::resource("create", "", "pods/eviction", "ns", "p1");
        assert!(!rule(&["create"], &[""], &["pods"], &[]).allows(&evict), "pods does not cover pods/eviction");
        assert!(rule(&["create"], &[""], &["pods/eviction"], &[]).allows(&evict));
        assert!(rule(&["create"], &[""], &["*/eviction"], &[]).allows(&evict));
        assert!(!rule(&["create"], &[""], &["*/status"], &[]).allows(&evict));
        let status = RequestInfo::resource("update", "apps", "deployments/status", "ns", "d");
        assert!(rule(&["update"], &["apps"], &["*/status"], &[]).allows(&status));
        let urls = Rule {
            verbs: vec!["get".into()],
            non_resource_urls: vec!["/apis/*".into(), "/metrics".into()],
            ..Default::default()
        };
        assert!(urls.allows(&RequestInfo::non_resource("get", "/metrics")));
        assert!(urls.allows(&RequestInfo::non_resource("get", "/apis/apps/v1")));
        assert!(!urls.allows(&RequestInfo::non_resource("get", "/metricsz")));
        assert!(!urls.allows(&RequestInfo::non_resource("post", "/metrics")));
        assert!(!urls.allows(&get_pods), "URL rules do not grant resources");
        assert!(!rule(&["get"], &["*"], &["*"], &[]).allows(&RequestInfo::non_resource("get", "/metrics")));
    }

    #[test]
    fn escalation_breakdown_and_cover() {
        let owner = vec![rule(&["get", "list"], &[""], &["pods", "*/status"], &[])];
        assert!(uncovered(&owner, &[rule(&["get"], &[""], &["pods"], &[])]).is_empty());
        assert!(uncovered(&owner, &[rule(&["get"], &[""], &["deployments/status"], &[])]).is_empty());
        assert!(uncovered(&owner, &[rule(&["get"], &[""], &["pods"], &["p1"])]).is_empty());
        let missing = uncovered(&owner, &[rule(&["get", "delete"], &[""], &["pods", "secrets"], &[])]);
        assert_eq!(missing.len(), 3);
        let shown: Vec<String> = missing.iter().map(compact_string).collect();
        assert!(shown.iter().any(|s| s == "{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\"]}"), "{shown:?}");
        let named = vec![rule(&["get"], &[""], &["pods"], &["p1"])];
        assert_eq!(uncovered(&named, &[rule(&["get"], &[""], &["pods"], &[])]).len(), 1);
    }
}
