//! PLACEHOLDER while the validation module is being written (replaced before commit).
#![allow(dead_code, unused_variables)]
use serde_json::Value;
use k8s_openapi::api::apps::v1::*;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::*;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
#[derive(Debug, Clone, PartialEq)] pub struct FieldError { pub field: String, pub kind: ErrorKind, pub detail: String }
#[derive(Debug, Clone, PartialEq)] pub enum ErrorKind { Required, Invalid(Value), NotSupported(Value, Vec<String>), Forbidden, Duplicate(Value), TooLong(usize), TooMany }
impl FieldError { pub fn reason(&self) -> &'static str { "FieldValueInvalid" } pub fn message(&self) -> String { self.detail.clone() } }
pub fn invalid_message(kind: &str, name: &str, errs: &[FieldError]) -> String { format!("{kind} \"{name}\" is invalid") }
pub fn pod(p: &Pod) -> Vec<FieldError> { vec![] }
pub fn pod_update(old: &Pod, new: &Pod) -> Vec<FieldError> { vec![] }
pub fn deployment(d: &Deployment) -> Vec<FieldError> { vec![] }
pub fn replica_set(r: &ReplicaSet) -> Vec<FieldError> { vec![] }
pub fn stateful_set(s: &StatefulSet) -> Vec<FieldError> { vec![] }
pub fn daemon_set(d: &DaemonSet) -> Vec<FieldError> { vec![] }
pub fn workload_update(o: Option<&LabelSelector>, n: Option<&LabelSelector>) -> Vec<FieldError> { vec![] }
pub fn service(s: &Service) -> Vec<FieldError> { vec![] }
pub fn namespace(n: &Namespace) -> Vec<FieldError> { vec![] }
pub fn node(n: &Node) -> Vec<FieldError> { vec![] }
pub fn config_map(c: &ConfigMap) -> Vec<FieldError> { vec![] }
pub fn secret(s: &Secret) -> Vec<FieldError> { vec![] }
pub fn service_account(s: &ServiceAccount) -> Vec<FieldError> { vec![] }
pub fn persistent_volume_claim(p: &PersistentVolumeClaim) -> Vec<FieldError> { vec![] }
pub fn persistent_volume(p: &PersistentVolume) -> Vec<FieldError> { vec![] }
pub fn pod_disruption_budget(p: &PodDisruptionBudget) -> Vec<FieldError> { vec![] }
pub fn priority_class(p: &PriorityClass) -> Vec<FieldError> { vec![] }
pub fn lease(l: &Lease) -> Vec<FieldError> { vec![] }
pub fn event(e: &Event) -> Vec<FieldError> { vec![] }
pub fn object_meta(m: &ObjectMeta, namespaced: bool, dns_label: bool) -> Vec<FieldError> { vec![] }
