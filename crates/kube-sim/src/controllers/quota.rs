//! The resource quota controller: keeps each ResourceQuota's `status.hard`
//! (its spec) and `status.used` — pods, cpu and memory requests and limits of
//! the namespace's non-terminal pods, and object counts (`count/<resource>`
//! and the legacy names: configmaps, secrets, services, ...). Quotas are
//! observed, not enforced: creates are not refused beyond them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ResourceQuota, ResourceQuotaStatus};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::plane::Plane;
use super::state::{Msg, occupies};
use crate::cached_pod::CachedPod;
use crate::resources::GroupResource;

const MANAGER: &str = "resourcequota-controller";

fn cpu(milli: i64) -> String {
    if milli % 1000 == 0 { (milli / 1000).to_string() } else { format!("{milli}m") }
}

fn bytes(n: i64) -> String {
    for (unit, size) in [("Gi", 1i64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if n != 0 && n % size == 0 {
            return format!("{}{unit}", n / size);
        }
    }
    n.to_string()
}

/// Sum of the containers' limits (cpu millicores, memory bytes).
fn limits(pod: &CachedPod) -> (i64, i64) {
    let mut out = (0, 0);
    for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
        let l = c.resources.as_ref().and_then(|r| r.limits.as_ref());
        if let Some(q) = l.and_then(|l| l.get("cpu")) {
            out.0 += crate::quantity::parse_cpu_millis(&q.0).unwrap_or(0);
        }
        if let Some(q) = l.and_then(|l| l.get("memory")) {
            out.1 += crate::quantity::parse_bytes(&q.0).unwrap_or(0);
        }
    }
    out
}

/// The usage of one quota key in `ns`, or None for keys kube-sim does not track.
fn used(plane: &Plane, ns: &str, key: &str) -> Option<String> {
    let pods: Vec<_> = plane.state.read().pods_in(ns).filter(|p| occupies(p)).cloned().collect();
    let requests = || {
        pods.iter().fold((0i64, 0i64), |acc, p| {
            let r = super::state::requests(p);
            (acc.0 + r.cpu_milli, acc.1 + r.memory)
        })
    };
    let count = |group: &str, resource: &str| {
        let snap = plane.api.store.snapshot(&GroupResource::new(group, resource));
        let prefix = format!("{ns}/");
        snap.iter_prefix(&prefix, None).count().to_string()
    };
    Some(match key {
        "pods" | "count/pods" => pods.len().to_string(),
        "cpu" | "requests.cpu" => cpu(requests().0),
        "memory" | "requests.memory" => bytes(requests().1),
        "limits.cpu" => cpu(pods.iter().map(|p| limits(p).0).sum()),
        "limits.memory" => bytes(pods.iter().map(|p| limits(p).1).sum()),
        "configmaps" => count("", "configmaps"),
        "secrets" => count("", "secrets"),
        "services" => count("", "services"),
        "persistentvolumeclaims" => count("", "persistentvolumeclaims"),
        "resourcequotas" => count("", "resourcequotas"),
        other => {
            let resource = other.strip_prefix("count/")?;
            let (plural, group) = resource.split_once('.').unwrap_or((resource, ""));
            count(group, plural)
        }
    })
}

pub fn reconcile(plane: &mut Plane, key: &str) {
    let Some(q) = plane.state.read().quotas.get(key).cloned() else { return };
    let ns = q.metadata.namespace.clone().unwrap_or_default();
    let hard = q.spec.as_ref().and_then(|s| s.hard.clone()).unwrap_or_default();
    let used: BTreeMap<String, Quantity> =
        hard.keys().filter_map(|k| used(plane, &ns, k).map(|v| (k.clone(), Quantity(v)))).collect();
    let status = ResourceQuotaStatus { hard: Some(hard), used: Some(used) };
    if q.status.as_ref() == Some(&status) {
        return;
    }
    let mut new: ResourceQuota = (*q).clone();
    new.status = Some(status);
    if let Err(e) = plane.replace(MANAGER, &new, true, Msg::Quota) {
        plane.note("quota status", key, &e);
    }
}
