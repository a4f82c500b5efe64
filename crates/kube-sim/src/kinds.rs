//! Per-kind behaviour of the built-in resources: decoding through the typed
//! Kubernetes structs (which drops unknown fields exactly as decoding into Go
//! structs does upstream), defaulting, create-time preparation, admission and
//! validation. Custom resources keep what they are sent (no schema pruning).

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod, Secret, Service,
    ServiceAccount,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::defaults;
use crate::error::{ApiError, ApiResult};
use crate::resources::ResourceInfo;
use crate::validation::{self, FieldError};

type Roundtrip = fn(Value) -> Result<Value, serde_json::Error>;

fn roundtrip<T: DeserializeOwned + Serialize>(v: Value) -> Result<Value, serde_json::Error> {
    serde_json::to_value(serde_json::from_value::<T>(v)?)
}

/// The typed decoder of a built-in kind (by storage group and kind).
fn decoder(group: &str, kind: &str) -> Option<Roundtrip> {
    Some(match (group, kind) {
        ("", "Pod") => roundtrip::<Pod>,
        ("", "Node") => roundtrip::<Node>,
        ("", "Namespace") => roundtrip::<Namespace>,
        ("", "Service") => roundtrip::<Service>,
        ("", "ConfigMap") => roundtrip::<ConfigMap>,
        ("", "Secret") => roundtrip::<Secret>,
        ("", "ResourceQuota") => roundtrip::<k8s_openapi::api::core::v1::ResourceQuota>,
        ("", "ServiceAccount") => roundtrip::<ServiceAccount>,
        ("", "Endpoints") => roundtrip::<Endpoints>,
        ("", "Event") => roundtrip::<Event>,
        ("", "PersistentVolumeClaim") => roundtrip::<PersistentVolumeClaim>,
        ("", "PersistentVolume") => roundtrip::<PersistentVolume>,
        ("apps", "Deployment") => roundtrip::<Deployment>,
        ("apps", "ReplicaSet") => roundtrip::<ReplicaSet>,
        ("apps", "StatefulSet") => roundtrip::<StatefulSet>,
        ("apps", "DaemonSet") => roundtrip::<DaemonSet>,
        ("apps", "ControllerRevision") => roundtrip::<ControllerRevision>,
        ("batch", "Job") => roundtrip::<Job>,
        ("batch", "CronJob") => roundtrip::<CronJob>,
        ("coordination.k8s.io", "Lease") => roundtrip::<Lease>,
        ("policy", "PodDisruptionBudget") => roundtrip::<PodDisruptionBudget>,
        ("scheduling.k8s.io", "PriorityClass") => roundtrip::<PriorityClass>,
        ("storage.k8s.io", "StorageClass") => roundtrip::<StorageClass>,
        ("rbac.authorization.k8s.io", "ClusterRole") => roundtrip::<k8s_openapi::api::rbac::v1::ClusterRole>,
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            roundtrip::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>
        }
        ("rbac.authorization.k8s.io", "Role") => roundtrip::<k8s_openapi::api::rbac::v1::Role>,
        ("rbac.authorization.k8s.io", "RoleBinding") => roundtrip::<k8s_openapi::api::rbac::v1::RoleBinding>,
        ("apiextensions.k8s.io", "CustomResourceDefinition") => roundtrip::<CustomResourceDefinition>,
        _ => return None,
    })
}

/// Decode an incoming object (in storage form) of `res`: typed kinds lose
/// fields their schema does not know; those are returned for field validation.
pub fn decode(res: &ResourceInfo, mut obj: Value) -> ApiResult<(Value, Vec<String>)> {
    let Some(rt) = decoder(&res.storage.group, &res.kind) else { return Ok((obj, Vec::new())) };
    fill_required(&res.kind, &mut obj);
    let out = rt(obj.clone()).map_err(|e| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            res.kind,
            res.api_version(),
            res.kind
        ))
    })?;
    let mut unknown = Vec::new();
    unknown_fields(&obj, &out, "", &mut unknown);
    Ok((out, unknown))
}

/// Required fields the typed structs cannot represent as missing get their Go
/// zero value, so validation reports them (422 "Required value") as upstream
/// does, instead of the decoder rejecting the whole body.
fn fill_required(kind: &str, obj: &mut Value) {
    fn containers(spec: &mut Value) {
        if let Some(s) = spec.as_object_mut() {
            s.entry("containers").or_insert_with(|| Value::Array(Vec::new()));
            for list in ["containers", "initContainers"] {
                if let Some(cs) = s.get_mut(list).and_then(Value::as_array_mut) {
                    for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                        c.entry("name").or_insert_with(|| Value::String(String::new()));
                    }
                }
            }
        }
    }
    match kind {
        "Pod" => {
            if let Some(spec) = obj.get_mut("spec") {
                containers(spec);
            }
        }
        "Job" => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                let tpl = spec.entry("template").or_insert_with(|| serde_json::json!({}));
                if let Some(t) = tpl.as_object_mut() {
                    let ps = t.entry("spec").or_insert_with(|| serde_json::json!({}));
                    containers(ps);
                }
            }
        }
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                spec.entry("selector").or_insert_with(|| serde_json::json!({}));
                let tpl = spec.entry("template").or_insert_with(|| serde_json::json!({}));
                if let Some(t) = tpl.as_object_mut() {
                    let ps = t.entry("spec").or_insert_with(|| serde_json::json!({}));
                    containers(ps);
                }
            }
        }
        "Event" => {
            if let Some(o) = obj.as_object_mut() {
                o.entry("involvedObject").or_insert_with(|| serde_json::json!({}));
            }
        }
        "PriorityClass" => {
            if let Some(o) = obj.as_object_mut() {
                o.entry("value").or_insert(Value::from(0));
            }
        }
        _ => {}
    }
}

/// Paths present (non-null) in `input` that decoding dropped.
fn unknown_fields(input: &Value, output: &Value, prefix: &str, out: &mut Vec<String>) {
    match (input, output) {
        (Value::Object(i), Value::Object(o)) => {
            for (k, v) in i {
                if v.is_null() {
                    continue;
                }
                let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                match o.get(k) {
                    None => out.push(path),
                    Some(ov) => unknown_fields(v, ov, &path, out),
                }
            }
        }
        (Value::Array(i), Value::Array(o)) if i.len() == o.len() => {
            for (n, (a, b)) in i.iter().zip(o).enumerate() {
                unknown_fields(a, b, &format!("{prefix}[{n}]"), out);
            }
        }
        _ => {}
    }
}

fn typed<T: DeserializeOwned + Serialize>(obj: &mut Value, f: impl FnOnce(&mut T)) -> ApiResult<()> {
    // The tree is moved into the typed object, its strings not copied. On
    // failure (not expected: the body was decoded as `T` before) the object
    // is lost, and the write with it.
    let mut t: T = serde_json::from_value(std::mem::take(obj))
        .map_err(|e| ApiError::internal(format!("decoding for defaulting: {e}")))?;
    f(&mut t);
    *obj = serde_json::to_value(t).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(())
}

/// Scheme defaulting, applied on every write (as decoding does upstream).
pub fn default(res: &ResourceInfo, obj: &mut Value) -> ApiResult<()> {
    match (res.storage.group.as_str(), res.kind.as_str()) {
        ("", "Pod") => typed(obj, defaults::pod),
        ("", "Node") => typed(obj, defaults::node),
        ("", "Namespace") => typed(obj, defaults::namespace),
        ("", "Service") => typed(obj, |s| defaults::service(s, "")),
        ("", "Secret") => typed(obj, defaults::secret),
        ("", "PersistentVolumeClaim") => typed(obj, defaults::persistent_volume_claim),
        ("", "PersistentVolume") => typed(obj, defaults::persistent_volume),
        ("apps", "Deployment") => typed(obj, defaults::deployment).map(|()| null_template_timestamp(obj)),
        ("apps", "ReplicaSet") => typed(obj, defaults::replica_set).map(|()| null_template_timestamp(obj)),
        ("apps", "StatefulSet") => typed(obj, defaults::stateful_set).map(|()| null_template_timestamp(obj)),
        ("apps", "DaemonSet") => typed(obj, defaults::daemon_set).map(|()| null_template_timestamp(obj)),
        ("scheduling.k8s.io", "PriorityClass") => typed(obj, defaults::priority_class),
        ("batch", "Job") => typed(obj, defaults::job).map(|()| null_template_timestamp(obj)),
        ("batch", "CronJob") => typed(obj, defaults::cron_job).map(|()| null_job_template_timestamps(obj)),
        _ => {
            if let Some(schema) = res.schema.as_deref() {
                crate::crd_schema::prune_and_default(schema, obj);
            }
            Ok(())
        }
    }
}

/// Go serialises a pod template's zero `creationTimestamp` as `null`; clients
/// see it in every workload object, so it is kept for fidelity.
fn null_template_timestamp(obj: &mut Value) {
    if let Some(m) = obj.pointer_mut("/spec/template/metadata").and_then(Value::as_object_mut) {
        m.entry("creationTimestamp").or_insert(Value::Null);
    } else if let Some(t) = obj.pointer_mut("/spec/template").and_then(Value::as_object_mut) {
        t.insert("metadata".into(), serde_json::json!({"creationTimestamp": null}));
    }
}

/// A CronJob's job template and its pod template: Go's null timestamps.
fn null_job_template_timestamps(obj: &mut Value) {
    if let Some(jt) = obj.pointer_mut("/spec/jobTemplate").and_then(Value::as_object_mut) {
        let m = jt.entry("metadata").or_insert_with(|| serde_json::json!({}));
        if let Some(m) = m.as_object_mut() {
            m.entry("creationTimestamp").or_insert(Value::Null);
        }
    }
    if let Some(js) = obj.pointer_mut("/spec/jobTemplate/spec") {
        null_template_timestamp(js);
    }
}

/// What a registry's `PrepareForCreate` does: most resources with a status
/// subresource start with an empty status (nodes keep theirs; CRDs get theirs
/// from admission), pods start Pending, namespaces Active with their finalizer.
pub fn prepare_create(res: &ResourceInfo, obj: &mut Value, now: jiff::Timestamp) -> ApiResult<()> {
    let group = res.storage.group.as_str();
    match (group, res.kind.as_str()) {
        ("", "Pod") => typed(obj, |p| defaults::pod_prepare_for_create(p, &Time(now))),
        ("", "Namespace") => typed(obj, defaults::namespace_prepare_for_create),
        ("apps", "Deployment") => {
            typed(obj, defaults::deployment_prepare_for_create).map(|()| null_template_timestamp(obj))
        }
        ("apps", "ReplicaSet") => {
            typed(obj, defaults::replica_set_prepare_for_create).map(|()| null_template_timestamp(obj))
        }
        ("apps", "StatefulSet") => {
            typed(obj, defaults::stateful_set_prepare_for_create).map(|()| null_template_timestamp(obj))
        }
        ("apps", "DaemonSet") => {
            typed(obj, defaults::daemon_set_prepare_for_create).map(|()| null_template_timestamp(obj))
        }
        ("policy", "PodDisruptionBudget") => typed(obj, defaults::pod_disruption_budget_prepare_for_create),
        ("batch", "Job") => typed(obj, defaults::job_prepare_for_create).map(|()| null_template_timestamp(obj)),
        ("batch", "CronJob") => {
            typed(obj, defaults::cron_job_prepare_for_create).map(|()| null_job_template_timestamps(obj))
        }
        ("", "Node") | ("apiextensions.k8s.io", _) => Ok(()),
        _ => {
            if res.has_status
                && let Some(o) = obj.as_object_mut()
            {
                o.remove("status");
            }
            Ok(())
        }
    }
}

/// Pod admission (ServiceAccount, Priority, DefaultTolerationSeconds).
/// `class` is the PriorityClass that applies (named or global default);
/// `sa` the pod's ServiceAccount.
pub fn admit_pod(obj: &mut Value, suffix: &str, class: Option<&Value>, sa: Option<&Value>) -> Result<(), String> {
    let priority = class.map(|c| {
        (
            c.get("value").and_then(Value::as_i64).unwrap_or(0).clamp(i32::MIN as i64, i32::MAX as i64) as i32,
            c.get("preemptionPolicy").and_then(Value::as_str).map(str::to_string),
        )
    });
    if let Some(c) = class
        && obj.pointer("/spec/priorityClassName").and_then(Value::as_str).unwrap_or_default().is_empty()
        && let Some(name) = c.pointer("/metadata/name").cloned()
    {
        obj["spec"]["priorityClassName"] = name;
    }
    let pull_secrets: Vec<String> = sa
        .and_then(|s| s.get("imagePullSecrets"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s["name"].as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let admission = defaults::PodAdmission {
        token_volume_suffix: suffix,
        priority_class: priority,
        service_account_automount: sa.and_then(|s| s.get("automountServiceAccountToken")).and_then(Value::as_bool),
        service_account_image_pull_secrets: &pull_secrets,
    };
    let mut err = None;
    typed::<Pod>(obj, |p| err = defaults::pod_admission(p, &admission).err()).map_err(|e| e.message)?;
    match err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn check<T: DeserializeOwned>(obj: &Value, f: impl FnOnce(&T) -> Vec<FieldError>) -> Vec<FieldError> {
    // Read from the tree in place: no copy of it first.
    match T::deserialize(obj) {
        Ok(t) => f(&t),
        Err(e) => vec![FieldError {
            field: String::new(),
            kind: validation::ErrorKind::Invalid(Value::Null),
            detail: e.to_string(),
        }],
    }
}

fn meta_of(obj: &Value) -> ObjectMeta {
    obj.get("metadata").and_then(|m| ObjectMeta::deserialize(m).ok()).unwrap_or_default()
}

/// Validation on create.
pub fn validate(res: &ResourceInfo, obj: &Value) -> Vec<FieldError> {
    if let Some(schema) = res.schema.as_deref() {
        return crate::crd_schema::validate(schema, obj, None);
    }
    match (res.storage.group.as_str(), res.kind.as_str()) {
        ("", "Pod") => check(obj, validation::pod),
        ("", "Node") => check(obj, validation::node),
        ("", "Namespace") => check(obj, validation::namespace),
        ("", "Service") => check(obj, validation::service),
        ("", "ConfigMap") => check(obj, validation::config_map),
        ("", "Secret") => check(obj, validation::secret),
        ("", "ServiceAccount") => check(obj, validation::service_account),
        ("", "Event") => check(obj, validation::event),
        ("", "PersistentVolumeClaim") => check(obj, validation::persistent_volume_claim),
        ("", "PersistentVolume") => check(obj, validation::persistent_volume),
        ("apps", "Deployment") => check(obj, validation::deployment),
        ("apps", "ReplicaSet") => check(obj, validation::replica_set),
        ("apps", "StatefulSet") => check(obj, validation::stateful_set),
        ("apps", "DaemonSet") => check(obj, validation::daemon_set),
        ("coordination.k8s.io", "Lease") => check(obj, validation::lease),
        ("policy", "PodDisruptionBudget") => check(obj, validation::pod_disruption_budget),
        ("scheduling.k8s.io", "PriorityClass") => check(obj, validation::priority_class),
        ("batch", "Job") => check(obj, validation::job),
        ("batch", "CronJob") => check(obj, validation::cron_job),
        ("rbac.authorization.k8s.io", kind) => {
            let mut errs = validation::object_meta_path_segment(&meta_of(obj), res.namespaced);
            errs.extend(crate::auth::rbac::validate(kind, obj));
            errs
        }
        _ => validation::object_meta(&meta_of(obj), res.namespaced, false),
    }
}

/// Validation on update: the create rules plus what may not change.
pub fn validate_update(res: &ResourceInfo, old: &Value, new: &Value) -> Vec<FieldError> {
    if let Some(schema) = res.schema.as_deref() {
        return crate::crd_schema::validate(schema, new, Some(old));
    }
    if res.storage.group.is_empty() && res.kind == "Pod" {
        // One decode of each version serves both rule sets (a hot path:
        // kubelets update pod status constantly).
        return match (serde_json::from_value::<Pod>(old.clone()), serde_json::from_value::<Pod>(new.clone())) {
            (Ok(o), Ok(n)) => {
                let mut errs = validation::pod(&n);
                errs.extend(validation::pod_update(&o, &n));
                errs
            }
            _ => check(new, validation::pod),
        };
    }
    let mut errs = validate(res, new);
    if res.storage.group == "rbac.authorization.k8s.io" && old.get("roleRef") != new.get("roleRef") {
        errs.extend(crate::auth::rbac::validate_role_ref_update(old, new));
    }
    if res.storage.group == "apps"
        && matches!(res.kind.as_str(), "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet")
    {
        let sel = |v: &Value| v.pointer("/spec/selector").and_then(|s| serde_json::from_value(s.clone()).ok());
        errs.extend(validation::workload_update(sel(old).as_ref(), sel(new).as_ref()));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_found_at_their_paths() {
        let input = json!({"spec": {"containers": [{"name": "a", "bogus": 1}], "nope": {"x": 1}, "nullish": null}});
        let output = json!({"spec": {"containers": [{"name": "a"}]}});
        let mut out = Vec::new();
        unknown_fields(&input, &output, "", &mut out);
        assert_eq!(out, vec!["spec.containers[0].bogus", "spec.nope"]);
    }

    #[test]
    fn typed_decoding_drops_unknown_fields_and_fills_required_ones() {
        let res = crate::resources::builtin().into_iter().find(|r| r.plural == "pods").unwrap();
        let (v, unknown) = decode(
            &res,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}, "extra": true}),
        )
        .unwrap();
        assert_eq!(unknown, vec!["extra"]);
        assert!(v.get("extra").is_none());
        assert_eq!(v["spec"]["containers"], json!([]));
        let bad = decode(
            &res,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": "no"}}),
        );
        assert_eq!(bad.unwrap_err().code, 400);
    }
}
