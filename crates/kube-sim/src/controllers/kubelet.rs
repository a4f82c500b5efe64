//! The simulated kubelets' pod lifecycle. For each pod bound to a node whose
//! kubelet is up: admission (a pod that does not fit is `Failed` with
//! `OutOfcpu`/`OutOfmemory`, as upstream's kubelet rejects it), then
//! `Pending`/`ContainerCreating` for the start-up delay, then `Running` with the
//! container states the pod's behaviour annotations ask for (running and ready,
//! completed, crash-looping with a growing restart count, failing, stuck
//! waiting); graceful deletion ends the pod after its grace period or its
//! shutdown time, whichever comes first.
//!
//! Behaviour knobs are annotations on the pod (or its template), so pods made
//! by controllers behave like the scenario says:
//! `sim.kube-sim.io/startup-seconds`, `sim.kube-sim.io/shutdown-seconds`,
//! `sim.kube-sim.io/behaviour.<container>` = `run` | `complete` | `crash` |
//! `fail:<exit code>` | `wait` (default: `run`, `complete` for a Job's pods).
//! A failing container crash-loops unless the pod's `restartPolicy` is
//! `Never`, when the pod fails with its exit code.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, Pod,
    PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::plane::Plane;
use super::state::{Dirty, node_of, occupies};
use crate::cached_pod::{CachedPod, CachedPodStatus, MetaView};
use crate::rules;

pub const STARTUP: &str = "sim.kube-sim.io/startup-seconds";
pub const SHUTDOWN: &str = "sim.kube-sim.io/shutdown-seconds";
pub const BEHAVIOUR: &str = "sim.kube-sim.io/behaviour.";
const MANAGER: &str = "kubelet";

/// Longest crash-loop back-off, as upstream's kubelet (5 minutes).
const MAX_BACKOFF: f64 = 300.0;

/// What a container does once started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    Run,
    Complete,
    Crash(i32),
    Wait,
}

impl Behaviour {
    pub fn parse(s: &str) -> Behaviour {
        match s.trim() {
            "complete" => Behaviour::Complete,
            "crash" => Behaviour::Crash(1),
            "wait" => Behaviour::Wait,
            other => match other.strip_prefix("fail:").and_then(|c| c.parse().ok()) {
                Some(code) => Behaviour::Crash(code),
                None => Behaviour::Run,
            },
        }
    }

    /// A container's behaviour: its annotation, else `run` — or `complete`
    /// for a Job's pods, whose command runs to its end.
    pub fn of(pod: &CachedPod, container: &str) -> Behaviour {
        match annotation(pod, &format!("{BEHAVIOUR}{container}")) {
            Some(b) => Behaviour::parse(b),
            None if owned_by_job(pod) => Behaviour::Complete,
            None => Behaviour::Run,
        }
    }
}

fn owned_by_job(pod: &CachedPod) -> bool {
    pod.metadata.owner_references().iter().any(|o| o.controller == Some(true) && o.kind == "Job")
}

/// Whether a failing container is restarted (crash loop) rather than ending the pod.
fn restarts_on_failure(pod: &CachedPod) -> bool {
    pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) != Some("Never")
}

impl Behaviour {
    fn crash_loops(&self, pod: &CachedPod) -> bool {
        matches!(self, Behaviour::Crash(_)) && restarts_on_failure(pod)
    }
}

fn annotation<'a>(pod: &'a CachedPod, key: &str) -> Option<&'a str> {
    pod.metadata.annotations.as_ref().and_then(|a| a.get(key)).map(String::as_str)
}

fn seconds(pod: &CachedPod, key: &str, default: f64) -> f64 {
    annotation(pod, key)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .unwrap_or(default)
}

/// The kubelets' memory of each pod's lifecycle.
#[derive(Debug, Default)]
pub struct Runtime {
    pods: HashMap<String, PodRuntime>,
    /// Next pod IP suffix per node.
    ips: HashMap<String, u32>,
}

impl Runtime {
    pub fn forget(&mut self, key: &str) {
        self.pods.remove(key);
    }

    /// Whether the kubelet has admitted the pod `key`.
    pub fn tracks(&self, key: &str) -> bool {
        self.pods.contains_key(key)
    }
}

#[derive(Debug, Clone)]
struct PodRuntime {
    uid: String,
    start_at: Duration,
    started: Option<String>,
    restarts: i32,
    next_crash: Option<Duration>,
    deleting_since: Option<Duration>,
    pod_ip: String,
    /// Containers the runtime could not create: name → (waiting reason, message).
    failed: std::collections::BTreeMap<String, (String, String)>,
}

/// Whether the node's (simulated) kubelet is up.
pub fn node_up(node: &k8s_openapi::api::core::v1::Node) -> bool {
    node.metadata.annotations.as_ref().and_then(|a| a.get("sim.kube-sim.io/ready")).map(String::as_str) != Some("false")
}

pub fn reconcile(plane: &mut Plane, key: &str) {
    // Act on the pod as the kubelet's last write left it: the write's answer
    // brings the pod back here.
    if plane.status_in_flight(key) {
        return;
    }
    let Some(pod) = plane.pod(key) else {
        plane.kubelet.pods.remove(key);
        return;
    };
    let Some(node_name) = node_of(&pod).map(str::to_string) else { return };
    let Some(node) = plane.node(&node_name) else { return };
    if !node_up(&node) {
        return;
    }
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    if plane.kubelet.pods.get(key).is_some_and(|rt| rt.uid != uid) {
        plane.kubelet.pods.remove(key);
    }
    if pod.metadata.deletion_timestamp.is_some() {
        finish_deletion(plane, key, &pod, &uid);
        return;
    }
    let phase = pod.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
    if matches!(phase.as_str(), "Succeeded" | "Failed") {
        return;
    }
    let now = plane.now();
    if !plane.kubelet.pods.contains_key(key) {
        if let Some(rt) = adopt_running(&pod, &uid) {
            // Already running (e.g. the informer re-listed): nothing to redo.
            plane.kubelet.pods.insert(key.to_string(), rt);
        } else {
            admit(plane, key, &pod, &node, &node_name, &uid, now);
            return;
        }
    }
    let Some(rt) = plane.kubelet.pods.get(key).cloned() else { return };
    if rt.started.is_none() {
        if now >= rt.start_at {
            start(plane, key, &pod, &node, rt);
        } else {
            plane.at(rt.start_at, Dirty::Pod(key.to_string()));
        }
        return;
    }
    if let Some(due) = rt.next_crash {
        if now >= due {
            let mut rt = rt;
            rt.restarts += 1;
            let backoff = (10.0 * 2f64.powi(rt.restarts.min(10))).min(MAX_BACKOFF);
            rt.next_crash = Some(now + Duration::from_secs_f64(backoff));
            plane.after(backoff, Dirty::Pod(key.to_string()));
            plane.kubelet.pods.insert(key.to_string(), rt.clone());
            write_status(plane, key, &pod, running_status(&pod, &node, &rt, &plane.now_rfc3339()));
        } else {
            plane.at(due, Dirty::Pod(key.to_string()));
        }
    }
}

/// A pod that already runs (seen after a re-list): take over its state.
fn adopt_running(pod: &CachedPod, uid: &str) -> Option<PodRuntime> {
    let status = pod.status.as_ref()?;
    if status.phase.as_deref() != Some("Running") {
        return None;
    }
    let started = status.start_time.as_ref().map(|t| crate::clock::format_time(t.0)).unwrap_or_default();
    let restarts = status.container_statuses.iter().flatten().map(|c| c.restart_count).max().unwrap_or(0);
    let crashing =
        pod.spec.iter().flat_map(|s| s.containers.iter()).any(|c| Behaviour::of(pod, &c.name).crash_loops(pod));
    Some(PodRuntime {
        uid: uid.to_string(),
        start_at: Duration::ZERO,
        started: Some(started),
        restarts,
        next_crash: crashing.then_some(Duration::ZERO),
        deleting_since: None,
        pod_ip: status.pod_ip.clone().unwrap_or_default(),
        failed: Default::default(),
    })
}

#[allow(clippy::too_many_arguments)]
fn admit(
    plane: &mut Plane,
    key: &str,
    pod: &Arc<CachedPod>,
    node: &k8s_openapi::api::core::v1::Node,
    node_name: &str,
    uid: &str,
    now: Duration,
) {
    let others = {
        let state = plane.state.read();
        let total = state.requested.get(node_name).copied().unwrap_or_default();
        if occupies(pod) { total.saturating_sub(super::state::requests(pod)) } else { total }
    };
    let now_str = plane.now_rfc3339();
    if let Err((reason, message)) = rules::fit::kubelet_admit(node, others, pod) {
        let old_start = pod.status.as_ref().and_then(|s| s.start_time.clone());
        let status = PodStatus {
            phase: Some("Failed".into()),
            reason: Some(reason),
            message: Some(message),
            start_time: Some(old_start.unwrap_or(Time(plane.api.clock.now()))),
            host_ip: host_ip(node),
            ..PodStatus::default()
        };
        write_status(plane, key, pod, status);
        return;
    }
    let n = plane.kubelet.ips.entry(node_name.to_string()).or_insert(1);
    *n += 1;
    let node_octet = node_name.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b))) % 250;
    let pod_ip = format!("10.244.{node_octet}.{}", (*n % 250) + 2);
    let startup = seconds(pod, STARTUP, plane.state.read().settings.startup_seconds);
    let rt = PodRuntime {
        uid: uid.to_string(),
        start_at: now + Duration::from_secs_f64(startup),
        started: None,
        restarts: 0,
        next_crash: None,
        deleting_since: None,
        pod_ip,
        failed: Default::default(),
    };
    plane.kubelet.pods.insert(key.to_string(), rt.clone());
    if startup > 0.0 {
        write_status(plane, key, pod, creating_status(pod, node, &rt, &now_str));
        plane.at(rt.start_at, Dirty::Pod(key.to_string()));
    } else {
        start(plane, key, pod, node, rt);
    }
}

fn start(plane: &mut Plane, key: &str, pod: &CachedPod, node: &k8s_openapi::api::core::v1::Node, mut rt: PodRuntime) {
    let now = plane.now();
    rt.started = Some(plane.now_rfc3339());
    restore_checkpoints(plane, pod, node, &mut rt);
    let crashing =
        pod.spec.iter().flat_map(|s| s.containers.iter()).any(|c| Behaviour::of(pod, &c.name).crash_loops(pod));
    if crashing {
        rt.next_crash = Some(now + Duration::from_secs(10));
        plane.after(10.0, Dirty::Pod(key.to_string()));
    }
    plane.kubelet.pods.insert(key.to_string(), rt.clone());
    let status = running_status(pod, node, &rt, &plane.now_rfc3339());
    write_status(plane, key, pod, status);
}

/// Inspect each container's image as CRI-O does before creating it: a
/// checkpoint image is restored (its counter continues) where the runtime can
/// restore, and fails to start where it cannot; an image that cannot be pulled
/// leaves the container waiting in `ErrImagePull`.
fn restore_checkpoints(
    plane: &mut Plane,
    pod: &CachedPod,
    node: &k8s_openapi::api::core::v1::Node,
    rt: &mut PodRuntime,
) {
    use super::runtime::{Inspected, inspect, runtime_restores};
    let registries = &plane.api.config.registries;
    if registries.is_empty() {
        return;
    }
    let runtime = node
        .status
        .as_ref()
        .and_then(|s| s.node_info.as_ref())
        .map(|i| i.container_runtime_version.clone())
        .unwrap_or_default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
        let image = c.image.clone().unwrap_or_default();
        // A blocking pull: the loop has a thread of its own (see `start`).
        match inspect(&image, registries) {
            Ok(Inspected::Plain) => {}
            Ok(Inspected::Checkpoint { state, .. }) if runtime_restores(&runtime) => {
                plane.state.write().restored.insert(format!("{uid}/{}", c.name), state.counter);
            }
            Ok(Inspected::Checkpoint { .. }) => {
                rt.failed.insert(
                    c.name.clone(),
                    (
                        "CreateContainerError".into(),
                        format!("{image} is a checkpoint image and {runtime} cannot restore it: no command specified"),
                    ),
                );
            }
            Err(e) => {
                rt.failed.insert(c.name.clone(), ("ErrImagePull".into(), e));
            }
        }
    }
}

fn finish_deletion(plane: &mut Plane, key: &str, pod: &CachedPod, uid: &str) {
    let now = plane.now();
    let shutdown = seconds(pod, SHUTDOWN, plane.state.read().settings.shutdown_seconds);
    let since = {
        let rt = plane.kubelet.pods.entry(key.to_string()).or_insert_with(|| PodRuntime {
            uid: uid.to_string(),
            start_at: now,
            started: None,
            restarts: 0,
            next_crash: None,
            deleting_since: None,
            pod_ip: String::new(),
            failed: Default::default(),
        });
        *rt.deleting_since.get_or_insert(now)
    };
    // The grace period ends at deletionTimestamp (in simulated wall time).
    let grace_left = pod
        .metadata
        .deletion_timestamp
        .as_ref()
        .map(|t| t.0.duration_since(plane.api.clock.now()).as_secs_f64().max(0.0))
        .unwrap_or(0.0);
    let due = (since + Duration::from_secs_f64(shutdown)).min(now + Duration::from_secs_f64(grace_left));
    if now < due {
        plane.at(due, Dirty::Pod(key.to_string()));
        return;
    }
    let (ns, name) = (pod.metadata.namespace.clone(), pod.metadata.name.clone().unwrap_or_default());
    match plane.delete::<Pod>(ns.as_deref(), &name, Some(uid), Some(0), None) {
        Ok(()) => {
            plane.kubelet.pods.remove(key);
        }
        Err(e) => plane.note("finish pod termination", key, &e),
    }
}

/// Write the pod's new status from a helper thread ([`super::offload`]); a
/// failed write makes the kubelet sync the pod again shortly. The body holds
/// what a status write reads: identity, the version the kubelet saw, status.
fn write_status(plane: &mut Plane, key: &str, pod: &CachedPod, status: PodStatus) {
    let m = &pod.metadata;
    let (ns, name) = (m.namespace.clone().unwrap_or_default(), m.name.clone().unwrap_or_default());
    let ident = super::plane::pod_status_ident(m);
    let write = move |api: &crate::apiserver::ApiServer| {
        let body = super::plane::pod_status_body(ident, &status)?;
        let res = api.res("", "pods");
        let written = api.merge_status(&res, Some(&ns), &name, body, &Plane::opts(MANAGER))?.object;
        super::state::for_cache(written)
            .map_err(|e| crate::error::ApiError::internal(format!("decoding a written pod: {e}")))
    };
    plane.send_status(key, Box::new(write));
}

fn host_ip(node: &k8s_openapi::api::core::v1::Node) -> Option<String> {
    node.status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
        .map(|a| a.address.clone())
}

fn condition(ty: &str, ok: bool, now: &str, old: Option<&CachedPodStatus>) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let since = old
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == ty && c.status == status))
        .and_then(|c| c.last_transition_time.clone());
    PodCondition {
        type_: ty.into(),
        status: status.into(),
        last_transition_time: since.or_else(|| crate::clock::parse_time(now).map(Time)),
        ..PodCondition::default()
    }
}

/// The status fields the kubelet owns in every state (it writes only its
/// own fields: the API server keeps the others, e.g. `qosClass`).
fn base_status(pod: &CachedPod, node: &k8s_openapi::api::core::v1::Node, rt: &PodRuntime, now: &str) -> PodStatus {
    let host_ip = host_ip(node);
    PodStatus {
        host_ips: host_ip.clone().map(|ip| vec![k8s_openapi::api::core::v1::HostIP { ip }]),
        host_ip,
        pod_ip: Some(rt.pod_ip.clone()),
        pod_ips: Some(vec![PodIP { ip: rt.pod_ip.clone() }]),
        start_time: pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.clone())
            .or_else(|| crate::clock::parse_time(now).map(Time)),
        ..PodStatus::default()
    }
}

fn image_id(image: &str) -> String {
    let h = image.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3));
    format!("sha256:{h:016x}{h:016x}{h:016x}{h:016x}")
}

fn creating_status(pod: &CachedPod, node: &k8s_openapi::api::core::v1::Node, rt: &PodRuntime, now: &str) -> PodStatus {
    let old = pod.status.as_ref();
    let mut s = base_status(pod, node, rt, now);
    s.phase = Some("Pending".into());
    s.conditions = Some(vec![
        condition("PodReadyToStartContainers", false, now, old),
        condition("Initialized", true, now, old),
        condition("Ready", false, now, old),
        condition("ContainersReady", false, now, old),
        condition("PodScheduled", true, now, old),
    ]);
    s.container_statuses = Some(
        pod.spec
            .iter()
            .flat_map(|sp| sp.containers.iter())
            .map(|c| ContainerStatus {
                name: c.name.clone(),
                image: c.image.clone().unwrap_or_default(),
                image_id: String::new(),
                ready: false,
                restart_count: 0,
                started: Some(false),
                state: Some(ContainerState {
                    waiting: Some(ContainerStateWaiting { reason: Some("ContainerCreating".into()), message: None }),
                    ..ContainerState::default()
                }),
                last_state: Some(ContainerState::default()),
                ..ContainerStatus::default()
            })
            .collect(),
    );
    s
}

fn running_status(pod: &CachedPod, node: &k8s_openapi::api::core::v1::Node, rt: &PodRuntime, now: &str) -> PodStatus {
    let old = pod.status.as_ref();
    let mut s = base_status(pod, node, rt, now);
    let started = rt.started.clone().unwrap_or_else(|| now.to_string());
    let started_t = crate::clock::parse_time(&started).map(Time);
    let now_t = crate::clock::parse_time(now).map(Time);
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let mut statuses = Vec::new();
    let mut ready_all = true;
    let mut all_completed = true;
    let mut any_failed = false;
    for c in pod.spec.iter().flat_map(|sp| sp.containers.iter()) {
        let image = c.image.clone().unwrap_or_default();
        let behaviour = match rt.failed.get(&c.name) {
            Some(_) => Behaviour::Wait,
            None => Behaviour::of(pod, &c.name),
        };
        let mut cs = ContainerStatus {
            name: c.name.clone(),
            container_id: Some(format!("containerd://{name}-{}", c.name)),
            image: image.clone(),
            image_id: image_id(&image),
            last_state: Some(ContainerState::default()),
            ..ContainerStatus::default()
        };
        match behaviour {
            Behaviour::Run => {
                cs.ready = true;
                cs.started = Some(true);
                cs.state = Some(ContainerState {
                    running: Some(ContainerStateRunning { started_at: started_t.clone() }),
                    ..ContainerState::default()
                });
                all_completed = false;
            }
            Behaviour::Complete => {
                cs.started = Some(false);
                cs.state = Some(ContainerState {
                    terminated: Some(ContainerStateTerminated {
                        exit_code: 0,
                        reason: Some("Completed".into()),
                        started_at: started_t.clone(),
                        finished_at: started_t.clone(),
                        container_id: cs.container_id.clone(),
                        ..ContainerStateTerminated::default()
                    }),
                    ..ContainerState::default()
                });
            }
            Behaviour::Crash(code) if !restarts_on_failure(pod) => {
                // restartPolicy Never: the container ends, and so does the pod.
                cs.started = Some(false);
                ready_all = false;
                any_failed = true;
                cs.state = Some(ContainerState {
                    terminated: Some(ContainerStateTerminated {
                        exit_code: code,
                        reason: Some("Error".into()),
                        started_at: started_t.clone(),
                        finished_at: now_t.clone(),
                        container_id: cs.container_id.clone(),
                        ..ContainerStateTerminated::default()
                    }),
                    ..ContainerState::default()
                });
            }
            Behaviour::Crash(code) => {
                cs.restart_count = rt.restarts;
                cs.started = Some(false);
                ready_all = false;
                all_completed = false;
                cs.state = Some(ContainerState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some("CrashLoopBackOff".into()),
                        message: Some(format!(
                            "back-off {}s restarting failed container={} pod={name}_{ns}({uid})",
                            (10.0 * 2f64.powi(rt.restarts.min(10))).min(MAX_BACKOFF) as i64,
                            c.name
                        )),
                    }),
                    ..ContainerState::default()
                });
                cs.last_state = Some(ContainerState {
                    terminated: Some(ContainerStateTerminated {
                        exit_code: code,
                        reason: Some("Error".into()),
                        started_at: started_t.clone(),
                        finished_at: now_t.clone(),
                        container_id: cs.container_id.clone(),
                        ..ContainerStateTerminated::default()
                    }),
                    ..ContainerState::default()
                });
            }
            Behaviour::Wait => {
                cs.started = Some(false);
                ready_all = false;
                all_completed = false;
                let (reason, message) = rt
                    .failed
                    .get(&c.name)
                    .cloned()
                    .unwrap_or_else(|| ("ImagePullBackOff".into(), format!("Back-off pulling image \"{image}\"")));
                cs.state = Some(ContainerState {
                    waiting: Some(ContainerStateWaiting { reason: Some(reason), message: Some(message) }),
                    ..ContainerState::default()
                });
            }
        }
        statuses.push(cs);
    }
    // A pod whose containers all completed has succeeded (whatever its
    // restartPolicy: the simulator does not restart completed containers).
    let phase = match (all_completed && !statuses.is_empty(), any_failed) {
        (true, true) => "Failed",
        (true, false) => "Succeeded",
        _ => "Running",
    };
    s.phase = Some(phase.into());
    s.conditions = Some(vec![
        condition("PodReadyToStartContainers", true, now, old),
        condition("Initialized", true, now, old),
        condition("Ready", ready_all && phase == "Running", now, old),
        condition("ContainersReady", ready_all && phase == "Running", now, old),
        condition("PodScheduled", true, now, old),
    ]);
    let init: Vec<ContainerStatus> = pod
        .spec
        .iter()
        .flat_map(|sp| sp.init_containers.iter().flatten())
        .map(|c| ContainerStatus {
            name: c.name.clone(),
            image: c.image.clone().unwrap_or_default(),
            image_id: image_id(c.image.as_deref().unwrap_or_default()),
            ready: true,
            state: Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: 0,
                    reason: Some("Completed".into()),
                    started_at: started_t.clone(),
                    finished_at: started_t.clone(),
                    ..ContainerStateTerminated::default()
                }),
                ..ContainerState::default()
            }),
            ..ContainerStatus::default()
        })
        .collect();
    s.init_container_statuses = (!init.is_empty()).then_some(init);
    s.container_statuses = Some(statuses);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaviours_parse() {
        assert_eq!(Behaviour::parse("complete"), Behaviour::Complete);
        assert_eq!(Behaviour::parse("crash"), Behaviour::Crash(1));
        assert_eq!(Behaviour::parse("fail:3"), Behaviour::Crash(3));
        assert_eq!(Behaviour::parse("wait"), Behaviour::Wait);
        assert_eq!(Behaviour::parse("anything"), Behaviour::Run);
    }
}
