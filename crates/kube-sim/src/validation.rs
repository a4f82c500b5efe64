//! Validation of the built-in kinds: the checks a v1.32 kube-apiserver makes
//! before storing an object, with its error wording (`field.Error` bodies,
//! aggregated as `Kind "name" is invalid: [a, b]`). Clients surface these
//! messages to users, so the text matters as much as the verdict.
//!
//! The rules cover what workloads and this project's service touch (names,
//! labels, pod specs, workload selectors, services, claims, budgets, priority
//! classes); exotic fields are accepted as they are.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Event, Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod, PodSpec,
    PodTemplateSpec, Secret, Service, ServiceAccount, Toleration,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use crate::quantity;
use crate::selector;

#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub kind: ErrorKind,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ErrorKind {
    Required,
    Invalid(Value),
    NotSupported(Value, Vec<String>),
    Forbidden,
    Duplicate(Value),
    NotFound(Value),
    TooLong(usize),
}

impl FieldError {
    fn new(field: impl Into<String>, kind: ErrorKind, detail: impl Into<String>) -> Self {
        FieldError { field: field.into(), kind, detail: detail.into() }
    }

    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(field, ErrorKind::Required, detail)
    }

    pub fn invalid(field: impl Into<String>, value: Value, detail: impl Into<String>) -> Self {
        Self::new(field, ErrorKind::Invalid(value), detail)
    }

    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(field, ErrorKind::Forbidden, detail)
    }

    /// `Unsupported value` for any JSON value and a list of allowed ones (CRD enums).
    pub fn not_supported_values(field: impl Into<String>, value: Value, supported: Vec<String>) -> Self {
        Self::new(field, ErrorKind::NotSupported(value, supported), "")
    }

    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        Self::new(field, ErrorKind::TooLong(max), "")
    }

    pub fn not_supported(field: impl Into<String>, value: &str, supported: &[&str]) -> Self {
        Self::new(field, ErrorKind::NotSupported(json!(value), supported.iter().map(|s| s.to_string()).collect()), "")
    }

    pub fn reason(&self) -> &'static str {
        match self.kind {
            ErrorKind::Required => "FieldValueRequired",
            ErrorKind::Invalid(_) => "FieldValueInvalid",
            ErrorKind::NotSupported(..) => "FieldValueNotSupported",
            ErrorKind::Forbidden => "FieldValueForbidden",
            ErrorKind::Duplicate(_) => "FieldValueDuplicate",
            ErrorKind::NotFound(_) => "FieldValueNotFound",
            ErrorKind::TooLong(_) => "FieldValueTooLong",
        }
    }

    /// The error body (what `details.causes[].message` carries).
    pub fn message(&self) -> String {
        let mut s = match &self.kind {
            ErrorKind::Required => "Required value".to_string(),
            ErrorKind::Forbidden => "Forbidden".to_string(),
            ErrorKind::TooLong(max) => format!("Too long: may not be more than {max} bytes"),
            ErrorKind::Invalid(v) => format!("Invalid value: {}", go_value(v)),
            ErrorKind::Duplicate(v) => format!("Duplicate value: {}", go_value(v)),
            ErrorKind::NotFound(v) => format!("Not found: {}", go_value(v)),
            ErrorKind::NotSupported(v, supported) => {
                let list: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
                format!("Unsupported value: {}: supported values: {}", go_value(v), list.join(", "))
            }
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

/// How Go's `%q`/`%v` render a bad value: strings quoted, scalars bare, maps
/// as Go map literals.
fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        Value::Object(m) if m.values().all(Value::is_string) => {
            let items: Vec<String> =
                m.iter().map(|(k, v)| format!("{}:{}", go_value(&json!(k)), go_value(v))).collect();
            format!("map[string]string{{{}}}", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// `Pod "x" is invalid: [a, b]` (one error: no brackets), as `ToAggregate` prints.
pub fn invalid_message(kind: &str, name: &str, errs: &[FieldError]) -> String {
    let parts: Vec<String> = errs
        .iter()
        .map(|e| if e.field.is_empty() { e.message() } else { format!("{}: {}", e.field, e.message()) })
        .collect();
    let body = if parts.len() == 1 { parts[0].clone() } else { format!("[{}]", parts.join(", ")) };
    format!("{kind} \"{name}\" is invalid: {body}")
}

// ----- names and metadata ------------------------------------------------------

const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const QUALIFIED_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// Upstream's subdomain regex has no limit per dot-separated part, only the
/// 253 in all (a pod named `web-migrated-1-migrated-2-…` of 70 characters is valid).
fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|part| {
            let b = part.as_bytes();
            let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            !b.is_empty() && alnum(b[0]) && alnum(b[b.len() - 1]) && b.iter().all(|&c| alnum(c) || c == b'-')
        })
}

fn is_dns1035_label(s: &str) -> bool {
    is_dns1123_label(s) && s.as_bytes()[0].is_ascii_lowercase()
}

fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

pub fn name_dns_subdomain(field: &str, name: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if name.len() > 253 {
        errs.push(FieldError::invalid(field, json!(name), "must be no more than 253 characters"));
    }
    if !is_dns1123_subdomain(name) {
        errs.push(FieldError::invalid(field, json!(name), DNS1123_SUBDOMAIN_MSG));
    }
    errs
}

pub fn name_dns_label(field: &str, name: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if name.len() > 63 {
        errs.push(FieldError::invalid(field, json!(name), "must be no more than 63 characters"));
    }
    if !is_dns1123_label(name) {
        errs.push(FieldError::invalid(field, json!(name), DNS1123_LABEL_MSG));
    }
    errs
}

fn name_dns1035(field: &str, name: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if name.len() > 63 {
        errs.push(FieldError::invalid(field, json!(name), "must be no more than 63 characters"));
    }
    if !is_dns1035_label(name) {
        errs.push(FieldError::invalid(field, json!(name), DNS1035_LABEL_MSG));
    }
    errs
}

/// A qualified name (label and annotation keys): optional DNS-subdomain prefix.
fn qualified_name(field: &str, key: &str) -> Vec<FieldError> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let mut errs = Vec::new();
    if let Some(p) = prefix {
        if p.is_empty() {
            errs.push(FieldError::invalid(field, json!(key), "prefix part must be non-empty"));
        } else if !is_dns1123_subdomain(p) {
            errs.push(FieldError::invalid(field, json!(key), format!("prefix part {DNS1123_SUBDOMAIN_MSG}")));
        }
    }
    if name.is_empty() {
        errs.push(FieldError::invalid(field, json!(key), "name part must be non-empty"));
    } else if name.len() > 63 {
        errs.push(FieldError::invalid(field, json!(key), "name part must be no more than 63 characters"));
    } else if !is_qualified_name_part(name) {
        errs.push(FieldError::invalid(field, json!(key), QUALIFIED_NAME_MSG));
    }
    errs
}

pub fn labels(field: &str, m: &BTreeMap<String, String>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, v) in m {
        errs.extend(qualified_name(field, k));
        if v.len() > 63 {
            errs.push(FieldError::invalid(field, json!(v), "must be no more than 63 characters"));
        } else if !v.is_empty() && !is_qualified_name_part(v) {
            errs.push(FieldError::invalid(field, json!(v), LABEL_VALUE_MSG));
        }
    }
    errs
}

pub fn annotations(field: &str, m: &BTreeMap<String, String>) -> Vec<FieldError> {
    const MAX: usize = 256 * 1024;
    let mut errs = Vec::new();
    let mut total = 0usize;
    for (k, v) in m {
        errs.extend(qualified_name(field, &k.to_lowercase()));
        total += k.len() + v.len();
    }
    if total > MAX {
        errs.push(FieldError::new(field, ErrorKind::TooLong(MAX), ""));
    }
    errs
}

/// Checks on `metadata` shared by every kind.
pub fn object_meta(meta: &ObjectMeta, namespaced: bool, dns_label: bool) -> Vec<FieldError> {
    object_meta_with(meta, namespaced, if dns_label { NameRule::Dns1123Label } else { NameRule::Subdomain })
}

/// Object metadata whose name need only be a valid path segment (RBAC
/// objects: `system:discovery` is a valid ClusterRole name).
pub fn object_meta_path_segment(meta: &ObjectMeta, namespaced: bool) -> Vec<FieldError> {
    object_meta_with(meta, namespaced, NameRule::PathSegment)
}

#[derive(Clone, Copy)]
enum NameRule {
    Subdomain,
    Dns1123Label,
    Dns1035Label,
    PathSegment,
}

/// upstream's `path.IsValidPathSegmentName`.
fn name_path_segment(field: &str, name: &str) -> Vec<FieldError> {
    let why = match name {
        "." => Some("may not be '.'"),
        ".." => Some("may not be '..'"),
        n if n.contains('/') => Some("may not contain '/'"),
        n if n.contains('%') => Some("may not contain '%'"),
        _ => None,
    };
    why.map(|w| vec![FieldError::invalid(field, json!(name), w)]).unwrap_or_default()
}

fn object_meta_with(meta: &ObjectMeta, namespaced: bool, rule: NameRule) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match meta.name.as_deref().filter(|n| !n.is_empty()) {
        None => errs.push(FieldError::required("metadata.name", "name or generateName is required")),
        Some(n) => errs.extend(match rule {
            NameRule::Subdomain => name_dns_subdomain("metadata.name", n),
            NameRule::Dns1123Label => name_dns_label("metadata.name", n),
            NameRule::Dns1035Label => name_dns1035("metadata.name", n),
            NameRule::PathSegment => name_path_segment("metadata.name", n),
        }),
    }
    let ns = meta.namespace.as_deref().unwrap_or_default();
    if namespaced {
        if ns.is_empty() {
            errs.push(FieldError::required("metadata.namespace", ""));
        } else {
            errs.extend(name_dns_label("metadata.namespace", ns));
        }
    } else if !ns.is_empty() {
        errs.push(FieldError::forbidden("metadata.namespace", "not allowed on this type"));
    }
    if let Some(l) = &meta.labels {
        errs.extend(labels("metadata.labels", l));
    }
    if let Some(a) = &meta.annotations {
        errs.extend(annotations("metadata.annotations", a));
    }
    for (i, o) in meta.owner_references.iter().flatten().enumerate() {
        let f = format!("metadata.ownerReferences[{i}]");
        if o.api_version.is_empty() {
            errs.push(FieldError::invalid(format!("{f}.apiVersion"), json!(""), "version must not be empty"));
        }
        if o.kind.is_empty() {
            errs.push(FieldError::invalid(format!("{f}.kind"), json!(""), "kind must not be empty"));
        }
        if o.name.is_empty() {
            errs.push(FieldError::invalid(format!("{f}.name"), json!(""), "name must not be empty"));
        }
        if o.uid.is_empty() {
            errs.push(FieldError::invalid(format!("{f}.uid"), json!(""), "uid must not be empty"));
        }
    }
    if meta.owner_references.iter().flatten().filter(|o| o.controller == Some(true)).count() > 1 {
        errs.push(FieldError::invalid(
            "metadata.ownerReferences",
            Value::Null,
            "Only one reference can have Controller set to true",
        ));
    }
    errs
}

fn meta_errs(meta: &ObjectMeta, namespaced: bool) -> Vec<FieldError> {
    object_meta_with(meta, namespaced, NameRule::Subdomain)
}

// ----- pods --------------------------------------------------------------------

const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

fn is_iana_svc_name(s: &str) -> bool {
    s.len() <= 15
        && !s.is_empty()
        && s.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && s.bytes().any(|c| c.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

fn resources(path: &str, c: &Container, errs: &mut Vec<FieldError>) {
    let Some(r) = &c.resources else { return };
    let mut parsed: BTreeMap<(&str, String), i128> = BTreeMap::new();
    for (which, list) in [("limits", &r.limits), ("requests", &r.requests)] {
        for (name, q) in list.iter().flatten() {
            let f = format!("{path}.resources.{which}[{name}]");
            match quantity::parse_milli(&q.0) {
                Ok(v) if v < 0 => errs.push(FieldError::invalid(f, json!(q.0), "must be greater than or equal to 0")),
                Ok(v) => {
                    parsed.insert((which, name.clone()), v);
                }
                Err(e) => errs.push(FieldError::invalid(f, json!(q.0), e)),
            }
        }
    }
    for ((which, name), req) in &parsed {
        if *which != "requests" {
            continue;
        }
        if let Some(limit) = parsed.get(&("limits", name.clone()))
            && req > limit
        {
            let shown = r.requests.as_ref().and_then(|m| m.get(name)).map(|q| q.0.clone()).unwrap_or_default();
            let lim = r.limits.as_ref().and_then(|m| m.get(name)).map(|q| q.0.clone()).unwrap_or_default();
            errs.push(FieldError::invalid(
                format!("{path}.resources.requests"),
                json!(shown),
                format!("must be less than or equal to {name} limit of {lim}"),
            ));
        }
    }
}

fn containers(
    path: &str,
    list: &[Container],
    volumes: &BTreeSet<String>,
    seen: &mut BTreeSet<String>,
    errs: &mut Vec<FieldError>,
) {
    let mut port_names = BTreeSet::new();
    for (i, c) in list.iter().enumerate() {
        let p = format!("{path}[{i}]");
        if c.name.is_empty() {
            errs.push(FieldError::required(format!("{p}.name"), ""));
        } else {
            errs.extend(name_dns_label(&format!("{p}.name"), &c.name));
            if !seen.insert(c.name.clone()) {
                errs.push(FieldError::new(format!("{p}.name"), ErrorKind::Duplicate(json!(c.name)), ""));
            }
        }
        if c.image.as_deref().is_none_or(|s| s.trim().is_empty()) {
            errs.push(FieldError::required(format!("{p}.image"), ""));
        }
        for (j, port) in c.ports.iter().flatten().enumerate() {
            let pp = format!("{p}.ports[{j}]");
            if !(1..=65535).contains(&port.container_port) {
                errs.push(FieldError::invalid(
                    format!("{pp}.containerPort"),
                    json!(port.container_port),
                    "must be between 1 and 65535, inclusive",
                ));
            }
            if let Some(proto) = port.protocol.as_deref().filter(|p| !PROTOCOLS.contains(p)) {
                errs.push(FieldError::not_supported(format!("{pp}.protocol"), proto, PROTOCOLS));
            }
            if let Some(n) = port.name.as_deref().filter(|n| !n.is_empty()) {
                if !is_iana_svc_name(n) {
                    errs.push(FieldError::invalid(format!("{pp}.name"), json!(n), "must be no more than 15 characters, contain only lowercase alphanumeric characters or '-', contain at least one letter, and not start, end or contain two consecutive hyphens"));
                } else if !port_names.insert(n.to_string()) {
                    errs.push(FieldError::new(format!("{pp}.name"), ErrorKind::Duplicate(json!(n)), ""));
                }
            }
        }
        for (j, e) in c.env.iter().flatten().enumerate() {
            if e.name.is_empty() {
                errs.push(FieldError::required(format!("{p}.env[{j}].name"), ""));
            }
        }
        for (j, m) in c.volume_mounts.iter().flatten().enumerate() {
            let mp = format!("{p}.volumeMounts[{j}]");
            if m.name.is_empty() {
                errs.push(FieldError::required(format!("{mp}.name"), ""));
            } else if !volumes.contains(&m.name) {
                errs.push(FieldError::new(format!("{mp}.name"), ErrorKind::NotFound(json!(m.name)), ""));
            }
            if m.mount_path.is_empty() {
                errs.push(FieldError::required(format!("{mp}.mountPath"), ""));
            }
        }
        resources(&p, c, errs);
    }
}

fn tolerations(path: &str, ts: &[Toleration], errs: &mut Vec<FieldError>) {
    for (i, t) in ts.iter().enumerate() {
        let p = format!("{path}[{i}]");
        if let Some(k) = t.key.as_deref().filter(|k| !k.is_empty()) {
            errs.extend(qualified_name(&format!("{p}.key"), k));
        }
        match t.operator.as_deref().unwrap_or("Equal") {
            "Equal" | "" => {}
            "Exists" => {
                if t.value.as_deref().is_some_and(|v| !v.is_empty()) {
                    errs.push(FieldError::invalid(
                        format!("{p}.operator"),
                        json!(t.value),
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(format!("{p}.operator"), other, &["Equal", "Exists"])),
        }
        let effect = t.effect.as_deref().unwrap_or_default();
        if !matches!(effect, "" | "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            errs.push(FieldError::not_supported(
                format!("{p}.effect"),
                effect,
                &["NoExecute", "NoSchedule", "PreferNoSchedule"],
            ));
        }
        if t.toleration_seconds.is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                format!("{p}.effect"),
                json!(effect),
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
    }
}

fn pod_spec(path: &str, spec: &PodSpec, errs: &mut Vec<FieldError>) {
    let mut volumes = BTreeSet::new();
    for (i, v) in spec.volumes.iter().flatten().enumerate() {
        let f = format!("{path}.volumes[{i}].name");
        if v.name.is_empty() {
            errs.push(FieldError::required(f, ""));
        } else {
            errs.extend(name_dns_label(&f, &v.name));
            if !volumes.insert(v.name.clone()) {
                errs.push(FieldError::new(f, ErrorKind::Duplicate(json!(v.name)), ""));
            }
        }
    }
    let mut seen = BTreeSet::new();
    if spec.containers.is_empty() {
        errs.push(FieldError::required(format!("{path}.containers"), ""));
    }
    containers(&format!("{path}.containers"), &spec.containers, &volumes, &mut seen, errs);
    containers(
        &format!("{path}.initContainers"),
        spec.init_containers.as_deref().unwrap_or_default(),
        &volumes,
        &mut seen,
        errs,
    );
    if let Some(rp) = spec.restart_policy.as_deref().filter(|p| !RESTART_POLICIES.contains(p)) {
        errs.push(FieldError::not_supported(format!("{path}.restartPolicy"), rp, RESTART_POLICIES));
    }
    if let Some(dp) = spec.dns_policy.as_deref().filter(|p| !DNS_POLICIES.contains(p)) {
        errs.push(FieldError::not_supported(format!("{path}.dnsPolicy"), dp, DNS_POLICIES));
    }
    if let Some(ns) = &spec.node_selector {
        errs.extend(labels(&format!("{path}.nodeSelector"), ns));
    }
    if let Some(ts) = &spec.tolerations {
        tolerations(&format!("{path}.tolerations"), ts, errs);
    }
    if let Some(g) = spec.termination_grace_period_seconds.filter(|g| *g < 0) {
        errs.push(FieldError::invalid(
            format!("{path}.terminationGracePeriodSeconds"),
            json!(g),
            "must be greater than or equal to 0",
        ));
    }
    if let Some(sa) = spec.service_account_name.as_deref().filter(|s| !s.is_empty()) {
        errs.extend(name_dns_subdomain(&format!("{path}.serviceAccountName"), sa));
    }
}

pub fn pod(p: &Pod) -> Vec<FieldError> {
    let mut errs = meta_errs(&p.metadata, true);
    match &p.spec {
        Some(spec) => pod_spec("spec", spec, &mut errs),
        None => errs.push(FieldError::required("spec.containers", "")),
    }
    errs
}

const POD_UPDATE_MSG: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// What may change in a pod's spec after creation (upstream `ValidatePodUpdate`):
/// images, activeDeadlineSeconds, added tolerations and (from negative to 1)
/// the grace period. Everything else — notably `nodeName`, which only the
/// binding subresource sets — is immutable.
pub fn pod_update(old: &Pod, new: &Pod) -> Vec<FieldError> {
    let (Some(os), Some(ns)) = (&old.spec, &new.spec) else { return Vec::new() };
    let mut errs = Vec::new();
    let old_tols = os.tolerations.clone().unwrap_or_default();
    if let Some(new_tols) = &ns.tolerations {
        for t in &old_tols {
            if !new_tols.contains(t) {
                errs.push(FieldError::forbidden(
                    "spec.tolerations",
                    "existing toleration can not be modified except its tolerationSeconds",
                ));
                break;
            }
        }
    } else if !old_tols.is_empty() {
        errs.push(FieldError::forbidden(
            "spec.tolerations",
            "existing toleration can not be modified except its tolerationSeconds",
        ));
    }
    // Copy the mutable fields from new onto old; anything left different is forbidden.
    let mut munged = os.clone();
    if munged.containers.len() == ns.containers.len() {
        for (o, n) in munged.containers.iter_mut().zip(&ns.containers) {
            o.image = n.image.clone();
        }
    }
    if let (Some(oi), Some(ni)) = (munged.init_containers.as_mut(), ns.init_containers.as_ref())
        && oi.len() == ni.len()
    {
        for (o, n) in oi.iter_mut().zip(ni) {
            o.image = n.image.clone();
        }
    }
    munged.active_deadline_seconds = ns.active_deadline_seconds;
    munged.tolerations = ns.tolerations.clone();
    if os.termination_grace_period_seconds.is_some_and(|g| g < 0) && ns.termination_grace_period_seconds == Some(1) {
        munged.termination_grace_period_seconds = Some(1);
    }
    if munged != *ns {
        let detail = first_difference(&munged, ns)
            .map(|d| format!("{POD_UPDATE_MSG}\n  {d}"))
            .unwrap_or_else(|| POD_UPDATE_MSG.to_string());
        errs.push(FieldError::forbidden("spec", detail));
    }
    errs
}

/// Names the first top-level spec field that differs, to make the Forbidden
/// message useful (upstream prints a whole Go diff here).
fn first_difference(a: &PodSpec, b: &PodSpec) -> Option<String> {
    let (a, b) = (serde_json::to_value(a).ok()?, serde_json::to_value(b).ok()?);
    let (ao, bo) = (a.as_object()?, b.as_object()?);
    let keys: BTreeSet<&String> = ao.keys().chain(bo.keys()).collect();
    keys.into_iter().find(|k| ao.get(*k) != bo.get(*k)).map(|k| {
        let show = |v: Option<&Value>| v.map_or("<unset>".to_string(), |v| v.to_string());
        format!("spec.{k}: {} -> {}", show(ao.get(k)), show(bo.get(k)))
    })
}

// ----- workloads ----------------------------------------------------------------

fn selector_labels(sel: &LabelSelector) -> Result<selector::LabelSelector, String> {
    selector::LabelSelector::from_object(&serde_json::to_value(sel).unwrap_or_default())
}

fn workload(
    what: &str,
    meta: &ObjectMeta,
    replicas: Option<i32>,
    selector: &LabelSelector,
    template: &PodTemplateSpec,
    restart: &[&str],
) -> Vec<FieldError> {
    let mut errs = meta_errs(meta, true);
    if let Some(r) = replicas.filter(|r| *r < 0) {
        errs.push(FieldError::invalid("spec.replicas", json!(r), "must be greater than or equal to 0"));
    }
    let empty = selector.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
        && selector.match_expressions.as_ref().is_none_or(Vec::is_empty);
    if empty {
        errs.push(FieldError::invalid("spec.selector", json!({}), format!("empty selector is invalid for {what}")));
    }
    let tlabels = template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    match selector_labels(selector) {
        Err(e) => errs.push(FieldError::invalid("spec.selector", Value::Null, e)),
        Ok(sel) if !empty && !sel.matches(&tlabels) => {
            errs.push(FieldError::invalid(
                "spec.template.metadata.labels",
                serde_json::to_value(&tlabels).unwrap_or_default(),
                "`selector` does not match template `labels`",
            ));
        }
        Ok(_) => {}
    }
    if let Some(m) = &template.metadata
        && let Some(l) = &m.labels
    {
        errs.extend(labels("spec.template.metadata.labels", l));
    }
    match &template.spec {
        Some(spec) => {
            pod_spec("spec.template.spec", spec, &mut errs);
            match spec.restart_policy.as_deref() {
                Some(rp) if !restart.contains(&rp) => {
                    errs.push(FieldError::not_supported("spec.template.spec.restartPolicy", rp, restart));
                }
                None if restart != ["Always"] => errs.push(FieldError::required(
                    "spec.template.spec.restartPolicy",
                    format!(
                        "valid values: {}",
                        restart.iter().map(|r| format!("\"{r}\"")).collect::<Vec<_>>().join(", ")
                    ),
                )),
                _ => {}
            }
        }
        None => errs.push(FieldError::required("spec.template.spec.containers", "")),
    }
    errs
}

fn int_or_percent(field: &str, v: &IntOrString, errs: &mut Vec<FieldError>) -> bool {
    match v {
        IntOrString::Int(i) if *i < 0 => {
            errs.push(FieldError::invalid(field, json!(i), "must be greater than or equal to 0"));
            false
        }
        IntOrString::Int(i) => *i == 0,
        IntOrString::String(s) => match s.strip_suffix('%').and_then(|n| n.parse::<i64>().ok()) {
            Some(p) if (0..=100).contains(&p) => p == 0,
            Some(p) => {
                errs.push(FieldError::invalid(field, json!(s), format!("must not be greater than 100%, got {p}%")));
                false
            }
            None => {
                errs.push(FieldError::invalid(field, json!(s), "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"));
                false
            }
        },
    }
}

pub fn deployment(d: &Deployment) -> Vec<FieldError> {
    let Some(spec) = &d.spec else { return vec![FieldError::required("spec", "")] };
    let mut errs = workload("deployment", &d.metadata, spec.replicas, &spec.selector, &spec.template, &["Always"]);
    if let Some(s) = &spec.strategy {
        match s.type_.as_deref().unwrap_or("RollingUpdate") {
            "RollingUpdate" => {
                if let Some(ru) = &s.rolling_update {
                    let unavail_zero = ru
                        .max_unavailable
                        .as_ref()
                        .is_some_and(|v| int_or_percent("spec.strategy.rollingUpdate.maxUnavailable", v, &mut errs));
                    let surge_zero = ru
                        .max_surge
                        .as_ref()
                        .is_some_and(|v| int_or_percent("spec.strategy.rollingUpdate.maxSurge", v, &mut errs));
                    if unavail_zero && surge_zero {
                        errs.push(FieldError::invalid(
                            "spec.strategy.rollingUpdate.maxUnavailable",
                            json!(0),
                            "may not be 0 when `maxSurge` is 0",
                        ));
                    }
                }
            }
            "Recreate" => {
                if s.rolling_update.is_some() {
                    errs.push(FieldError::forbidden(
                        "spec.strategy.rollingUpdate",
                        "may not be specified when strategy `type` is 'Recreate'",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported("spec.strategy.type", other, &["Recreate", "RollingUpdate"])),
        }
    }
    errs
}

pub fn replica_set(r: &ReplicaSet) -> Vec<FieldError> {
    let Some(spec) = &r.spec else { return vec![FieldError::required("spec", "")] };
    let template = spec.template.clone().unwrap_or_default();
    workload("replicaset", &r.metadata, spec.replicas, &spec.selector, &template, &["Always"])
}

pub fn stateful_set(s: &StatefulSet) -> Vec<FieldError> {
    let Some(spec) = &s.spec else { return vec![FieldError::required("spec", "")] };
    let mut errs = workload("statefulset", &s.metadata, spec.replicas, &spec.selector, &spec.template, &["Always"]);
    if let Some(p) = spec.pod_management_policy.as_deref().filter(|p| !["OrderedReady", "Parallel"].contains(p)) {
        errs.push(FieldError::not_supported("spec.podManagementPolicy", p, &["OrderedReady", "Parallel"]));
    }
    errs
}

pub fn daemon_set(d: &DaemonSet) -> Vec<FieldError> {
    let Some(spec) = &d.spec else { return vec![FieldError::required("spec", "")] };
    workload("daemonset", &d.metadata, None, &spec.selector, &spec.template, &["Always"])
}

/// apps/v1 selectors cannot change after creation.
pub fn job(j: &Job) -> Vec<FieldError> {
    let Some(spec) = &j.spec else { return vec![FieldError::required("spec", "")] };
    let empty = LabelSelector::default();
    let selector = spec.selector.as_ref().unwrap_or(&empty);
    let mut errs = workload("job", &j.metadata, None, selector, &spec.template, &["OnFailure", "Never"]);
    for (field, v) in [
        ("spec.parallelism", spec.parallelism),
        ("spec.completions", spec.completions),
        ("spec.backoffLimit", spec.backoff_limit),
        ("spec.ttlSecondsAfterFinished", spec.ttl_seconds_after_finished),
    ] {
        if let Some(v) = v.filter(|v| *v < 0) {
            errs.push(FieldError::invalid(field, json!(v), "must be greater than or equal to 0"));
        }
    }
    if let Some(d) = spec.active_deadline_seconds.filter(|d| *d <= 0) {
        errs.push(FieldError::invalid("spec.activeDeadlineSeconds", json!(d), "must be greater than 0"));
    }
    errs
}

pub fn cron_job(c: &CronJob) -> Vec<FieldError> {
    let mut errs = meta_errs(&c.metadata, true);
    let Some(spec) = &c.spec else { return vec![FieldError::required("spec", "")] };
    if let Err(e) = crate::rules::cron::Schedule::parse(&spec.schedule) {
        errs.push(FieldError::invalid("spec.schedule", json!(spec.schedule), e));
    }
    if let Some(p) = spec.concurrency_policy.as_deref().filter(|p| !["Allow", "Forbid", "Replace"].contains(p)) {
        errs.push(FieldError::not_supported("spec.concurrencyPolicy", p, &["Allow", "Forbid", "Replace"]));
    }
    if let Some(tpl) = spec.job_template.spec.as_ref() {
        match &tpl.template.spec {
            Some(ps) => {
                pod_spec("spec.jobTemplate.spec.template.spec", ps, &mut errs);
                if !matches!(ps.restart_policy.as_deref(), Some("OnFailure" | "Never")) {
                    errs.push(FieldError::not_supported(
                        "spec.jobTemplate.spec.template.spec.restartPolicy",
                        ps.restart_policy.as_deref().unwrap_or_default(),
                        &["OnFailure", "Never"],
                    ));
                }
            }
            None => errs.push(FieldError::required("spec.jobTemplate.spec.template.spec.containers", "")),
        }
    }
    errs
}

pub fn workload_update(old: Option<&LabelSelector>, new: Option<&LabelSelector>) -> Vec<FieldError> {
    if old != new {
        vec![FieldError::invalid("spec.selector", serde_json::to_value(new).unwrap_or_default(), "field is immutable")]
    } else {
        Vec::new()
    }
}

// ----- other kinds ------------------------------------------------------------

pub fn service(s: &Service) -> Vec<FieldError> {
    let mut errs = object_meta_with(&s.metadata, true, NameRule::Dns1035Label);
    let Some(spec) = &s.spec else { return errs };
    let ty = spec.type_.as_deref().unwrap_or("ClusterIP");
    const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
    if !TYPES.contains(&ty) {
        errs.push(FieldError::not_supported("spec.type", ty, TYPES));
    }
    let ports = spec.ports.as_deref().unwrap_or_default();
    if ports.is_empty() && ty != "ExternalName" && spec.cluster_ip.as_deref() != Some("None") {
        errs.push(FieldError::required("spec.ports", ""));
    }
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let f = format!("spec.ports[{i}]");
        if !(1..=65535).contains(&p.port) {
            errs.push(FieldError::invalid(
                format!("{f}.port"),
                json!(p.port),
                "must be between 1 and 65535, inclusive",
            ));
        }
        match p.name.as_deref().filter(|n| !n.is_empty()) {
            None if ports.len() > 1 => errs.push(FieldError::required(format!("{f}.name"), "")),
            None => {}
            Some(n) => {
                errs.extend(name_dns_label(&format!("{f}.name"), n));
                if !names.insert(n.to_string()) {
                    errs.push(FieldError::new(format!("{f}.name"), ErrorKind::Duplicate(json!(n)), ""));
                }
            }
        }
        if let Some(proto) = p.protocol.as_deref().filter(|x| !PROTOCOLS.contains(x)) {
            errs.push(FieldError::not_supported(format!("{f}.protocol"), proto, PROTOCOLS));
        }
    }
    if let Some(sel) = &spec.selector {
        errs.extend(labels("spec.selector", sel));
    }
    errs
}

pub fn namespace(n: &Namespace) -> Vec<FieldError> {
    object_meta_with(&n.metadata, false, NameRule::Dns1123Label)
}

pub fn node(n: &Node) -> Vec<FieldError> {
    let mut errs = meta_errs(&n.metadata, false);
    for (i, t) in n.spec.as_ref().and_then(|s| s.taints.as_ref()).into_iter().flatten().enumerate() {
        let f = format!("spec.taints[{i}]");
        errs.extend(qualified_name(&format!("{f}.key"), &t.key));
        if !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&t.effect.as_str()) {
            errs.push(FieldError::not_supported(
                format!("{f}.effect"),
                &t.effect,
                &["NoExecute", "NoSchedule", "PreferNoSchedule"],
            ));
        }
    }
    errs
}

fn config_keys<'a>(
    field: &str,
    keys: impl Iterator<Item = &'a String>,
    seen: &mut BTreeSet<String>,
    errs: &mut Vec<FieldError>,
) {
    for k in keys {
        let ok = !k.is_empty()
            && k.len() <= 253
            && k.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
        if !ok || k == "." || k == ".." {
            errs.push(FieldError::invalid(field, json!(k), CONFIG_KEY_MSG));
        } else if !seen.insert(k.clone()) {
            errs.push(FieldError::invalid(field, json!(k), "duplicate of key present in binaryData"));
        }
    }
}

pub fn config_map(c: &ConfigMap) -> Vec<FieldError> {
    let mut errs = meta_errs(&c.metadata, true);
    let mut seen = BTreeSet::new();
    config_keys("data", c.data.iter().flat_map(|m| m.keys()), &mut seen, &mut errs);
    config_keys("binaryData", c.binary_data.iter().flat_map(|m| m.keys()), &mut seen, &mut errs);
    let size: usize = c.data.iter().flatten().map(|(k, v)| k.len() + v.len()).sum::<usize>()
        + c.binary_data.iter().flatten().map(|(k, v)| k.len() + v.0.len()).sum::<usize>();
    if size > 1024 * 1024 {
        errs.push(FieldError::new("", ErrorKind::TooLong(1024 * 1024), ""));
    }
    errs
}

pub fn secret(s: &Secret) -> Vec<FieldError> {
    let mut errs = meta_errs(&s.metadata, true);
    let mut seen = BTreeSet::new();
    config_keys("data", s.data.iter().flat_map(|m| m.keys()), &mut seen, &mut errs);
    errs
}

pub fn service_account(s: &ServiceAccount) -> Vec<FieldError> {
    meta_errs(&s.metadata, true)
}

const ACCESS_MODES: &[&str] = &["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"];

fn access_modes(field: &str, modes: Option<&Vec<String>>, errs: &mut Vec<FieldError>) {
    let modes = modes.map(Vec::as_slice).unwrap_or_default();
    if modes.is_empty() {
        errs.push(FieldError::required(field, "at least 1 access mode is required"));
    }
    for m in modes {
        if !ACCESS_MODES.contains(&m.as_str()) {
            errs.push(FieldError::not_supported(field, m, ACCESS_MODES));
        }
    }
}

pub fn persistent_volume_claim(p: &PersistentVolumeClaim) -> Vec<FieldError> {
    let mut errs = meta_errs(&p.metadata, true);
    let Some(spec) = &p.spec else { return errs };
    access_modes("spec.accessModes", spec.access_modes.as_ref(), &mut errs);
    match spec.resources.as_ref().and_then(|r| r.requests.as_ref()).and_then(|r| r.get("storage")) {
        None => errs.push(FieldError::required("spec.resources[storage]", "")),
        Some(q) => {
            if let Err(e) = quantity::parse_milli(&q.0) {
                errs.push(FieldError::invalid("spec.resources[storage]", json!(q.0), e));
            }
        }
    }
    errs
}

pub fn persistent_volume(p: &PersistentVolume) -> Vec<FieldError> {
    let mut errs = meta_errs(&p.metadata, false);
    let Some(spec) = &p.spec else { return errs };
    access_modes("spec.accessModes", spec.access_modes.as_ref(), &mut errs);
    if spec.capacity.as_ref().and_then(|c| c.get("storage")).is_none() {
        errs.push(FieldError::required("spec.capacity", ""));
    }
    let sources = serde_json::to_value(spec).unwrap_or_default();
    const SOURCES: &[&str] = &[
        "hostPath",
        "local",
        "nfs",
        "csi",
        "iscsi",
        "fc",
        "rbd",
        "cephfs",
        "awsElasticBlockStore",
        "gcePersistentDisk",
        "azureDisk",
        "azureFile",
        "glusterfs",
        "flexVolume",
        "cinder",
        "flocker",
        "vsphereVolume",
        "quobyte",
        "portworxVolume",
        "scaleIO",
        "storageos",
        "photonPersistentDisk",
    ];
    if !SOURCES.iter().any(|s| sources.get(*s).is_some()) {
        errs.push(FieldError::required("spec", "must specify a volume type"));
    }
    errs
}

pub fn pod_disruption_budget(p: &PodDisruptionBudget) -> Vec<FieldError> {
    let mut errs = meta_errs(&p.metadata, true);
    let Some(spec) = &p.spec else { return errs };
    if spec.min_available.is_some() && spec.max_unavailable.is_some() {
        errs.push(FieldError::invalid("spec", Value::Null, "minAvailable and maxUnavailable cannot be both set"));
    }
    if let Some(v) = &spec.min_available {
        int_or_percent("spec.minAvailable", v, &mut errs);
    }
    if let Some(v) = &spec.max_unavailable {
        int_or_percent("spec.maxUnavailable", v, &mut errs);
    }
    if let Some(pol) =
        spec.unhealthy_pod_eviction_policy.as_deref().filter(|p| !["IfHealthyBudget", "AlwaysAllow"].contains(p))
    {
        errs.push(FieldError::not_supported(
            "spec.unhealthyPodEvictionPolicy",
            pol,
            &["AlwaysAllow", "IfHealthyBudget"],
        ));
    }
    errs
}

/// Names upstream creates itself and allows with the reserved prefix.
const SYSTEM_PRIORITY_CLASSES: &[&str] = &["system-node-critical", "system-cluster-critical"];

pub fn priority_class(p: &PriorityClass) -> Vec<FieldError> {
    let mut errs = meta_errs(&p.metadata, false);
    let name = p.metadata.name.as_deref().unwrap_or_default();
    let system = SYSTEM_PRIORITY_CLASSES.contains(&name);
    if name.starts_with("system-") && !system {
        errs.push(FieldError::invalid(
            "metadata.name",
            json!(name),
            "priority class names with 'system-' prefix are reserved for system use only",
        ));
    }
    if !system && p.value > 1_000_000_000 {
        errs.push(FieldError::forbidden("value", "maximum allowed value of a user defined priority is 1000000000"));
    }
    if let Some(pp) = p.preemption_policy.as_deref().filter(|x| !["PreemptLowerPriority", "Never"].contains(x)) {
        errs.push(FieldError::not_supported("preemptionPolicy", pp, &["Never", "PreemptLowerPriority"]));
    }
    errs
}

pub fn lease(l: &Lease) -> Vec<FieldError> {
    let mut errs = meta_errs(&l.metadata, true);
    if let Some(d) = l.spec.as_ref().and_then(|s| s.lease_duration_seconds).filter(|d| *d <= 0) {
        errs.push(FieldError::invalid("spec.leaseDurationSeconds", json!(d), "must be greater than 0"));
    }
    errs
}

pub fn event(e: &Event) -> Vec<FieldError> {
    let mut errs = meta_errs(&e.metadata, true);
    let ns = e.metadata.namespace.as_deref().unwrap_or_default();
    if let Some(ins) = e.involved_object.namespace.as_deref().filter(|n| !n.is_empty())
        && ins != ns
    {
        errs.push(FieldError::invalid("involvedObject.namespace", json!(ins), "does not match event.namespace"));
    }
    if let Some(t) = e.type_.as_deref().filter(|t| !t.is_empty() && !["Normal", "Warning"].contains(t)) {
        errs.push(FieldError::not_supported("type", t, &["Normal", "Warning"]));
    }
    errs
}

#[cfg(test)]
mod subdomain_tests {
    #[test]
    fn subdomain_parts_may_exceed_a_label() {
        let long = format!("{}-x", "a".repeat(70));
        assert!(super::name_dns_subdomain("metadata.name", &long).is_empty());
        assert!(!super::name_dns_subdomain("metadata.name", &"a".repeat(254)).is_empty());
        assert!(!super::name_dns_subdomain("metadata.name", "a..b").is_empty());
        assert!(!super::name_dns_subdomain("metadata.name", "-a").is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_from(v: Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn bad_name_and_no_containers_reproduce_the_recorded_status() {
        let p = pod_from(json!({"metadata": {"name": "Bad_Name", "namespace": "ref"}, "spec": {"containers": []}}));
        let errs = pod(&p);
        let path = format!("{}/../../testdata/k8s-reference/v1.32/status-422-invalid.json", env!("CARGO_MANIFEST_DIR"));
        let recorded: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(invalid_message("Pod", "Bad_Name", &errs), recorded["message"]);
        let causes: Vec<Value> =
            errs.iter().map(|e| json!({"reason": e.reason(), "message": e.message(), "field": e.field})).collect();
        assert_eq!(Value::Array(causes), recorded["details"]["causes"]);
    }

    #[test]
    fn pod_spec_rules() {
        let p = pod_from(json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {
            "restartPolicy": "Sometimes",
            "containers": [
                {"name": "a", "image": "x", "ports": [{"containerPort": 70000}],
                 "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}},
                 "volumeMounts": [{"name": "missing", "mountPath": "/m"}]},
                {"name": "a"}]}}));
        let msgs: Vec<String> = pod(&p).iter().map(|e| format!("{}: {}", e.field, e.message())).collect();
        let want = [
            "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.containers[0].volumeMounts[0].name: Not found: \"missing\"",
            "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1",
            "spec.containers[1].name: Duplicate value: \"a\"",
            "spec.containers[1].image: Required value",
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
        ];
        for w in want {
            assert!(msgs.iter().any(|m| m == w), "missing {w:?} in {msgs:#?}");
        }
    }

    #[test]
    fn pod_updates_may_change_images_only() {
        let base = json!({"metadata": {"name": "p", "namespace": "d"},
            "spec": {"nodeName": "n1", "containers": [{"name": "a", "image": "x:1"}], "tolerations": [{"key": "k", "operator": "Exists"}]}});
        let old = pod_from(base.clone());
        let mut img = base.clone();
        img["spec"]["containers"][0]["image"] = json!("x:2");
        assert!(pod_update(&old, &pod_from(img)).is_empty());
        let mut moved = base.clone();
        moved["spec"]["nodeName"] = json!("n2");
        let errs = pod_update(&old, &pod_from(moved));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec");
        assert!(
            errs[0].message().starts_with("Forbidden: pod updates may not change fields other than"),
            "{}",
            errs[0].message()
        );
        assert!(errs[0].message().contains("spec.nodeName"), "{}", errs[0].message());
        let mut more = base.clone();
        more["spec"]["containers"] = json!([{"name": "a", "image": "x:1"}, {"name": "b", "image": "y"}]);
        assert_eq!(pod_update(&old, &pod_from(more)).len(), 1);
        let mut added_tol = base.clone();
        added_tol["spec"]["tolerations"] =
            json!([{"key": "k", "operator": "Exists"}, {"key": "j", "operator": "Exists"}]);
        assert!(pod_update(&old, &pod_from(added_tol)).is_empty());
        let mut removed_tol = base;
        removed_tol["spec"]["tolerations"] = json!([]);
        assert!(!pod_update(&old, &pod_from(removed_tol)).is_empty());
    }

    #[test]
    fn deployment_selector_must_match_template() {
        let d: Deployment = serde_json::from_value(json!({"metadata": {"name": "d", "namespace": "x"},
            "spec": {"replicas": -1, "selector": {"matchLabels": {"app": "a"}},
                     "template": {"metadata": {"labels": {"app": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}))
        .unwrap();
        let msgs: Vec<String> = deployment(&d).iter().map(|e| format!("{}: {}", e.field, e.message())).collect();
        assert!(
            msgs.contains(&"spec.replicas: Invalid value: -1: must be greater than or equal to 0".to_string()),
            "{msgs:?}"
        );
        assert!(
            msgs.contains(&"spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"b\"}: `selector` does not match template `labels`".to_string()),
            "{msgs:?}"
        );
        let sel = |v: Value| -> LabelSelector { serde_json::from_value(v).unwrap() };
        assert_eq!(
            workload_update(
                Some(&sel(json!({"matchLabels": {"a": "1"}}))),
                Some(&sel(json!({"matchLabels": {"a": "2"}})))
            )[0]
            .detail,
            "field is immutable"
        );
    }

    #[test]
    fn labels_values_and_names() {
        let long = "a".repeat(64);
        let errs = labels("metadata.labels", &BTreeMap::from([("ok".to_string(), long.clone())]));
        assert_eq!(errs[0].message(), format!("Invalid value: \"{long}\": must be no more than 63 characters"));
        assert!(
            labels("metadata.labels", &BTreeMap::from([("example.com/app".to_string(), "web-1".to_string())]))
                .is_empty()
        );
        assert!(!labels("metadata.labels", &BTreeMap::from([("bad key".to_string(), "v".to_string())])).is_empty());
        let svc: Service = serde_json::from_value(
            json!({"metadata": {"name": "1svc", "namespace": "d"}, "spec": {"ports": [{"port": 80}]}}),
        )
        .unwrap();
        assert!(service(&svc)[0].message().contains("DNS-1035"));
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "a.b"}})).unwrap();
        assert!(namespace(&ns)[0].message().contains("RFC 1123 label"));
    }

    #[test]
    fn claims_budgets_and_classes() {
        let pvc: PersistentVolumeClaim =
            serde_json::from_value(json!({"metadata": {"name": "c", "namespace": "d"}, "spec": {}})).unwrap();
        let fields: Vec<String> = persistent_volume_claim(&pvc).iter().map(|e| e.field.clone()).collect();
        assert_eq!(fields, ["spec.accessModes", "spec.resources[storage]"]);
        let pdb: PodDisruptionBudget = serde_json::from_value(json!({"metadata": {"name": "b", "namespace": "d"},
            "spec": {"minAvailable": 1, "maxUnavailable": "150%"}}))
        .unwrap();
        assert_eq!(pod_disruption_budget(&pdb).len(), 2);
        let pc: PriorityClass =
            serde_json::from_value(json!({"metadata": {"name": "high"}, "value": 2_000_000_000})).unwrap();
        assert_eq!(priority_class(&pc)[0].reason(), "FieldValueForbidden");
        let sys: PriorityClass =
            serde_json::from_value(json!({"metadata": {"name": "system-node-critical"}, "value": 2_000_001_000}))
                .unwrap();
        assert!(priority_class(&sys).is_empty());
    }
}
