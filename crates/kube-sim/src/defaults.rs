//! What kube-apiserver v1.32 fills in on the way in: scheme defaulting
//! (`pkg/apis/*/v1/defaults.go` plus the generated `+default` markers),
//! the v1⇄internal conversion side effects, registry `PrepareForCreate`
//! strategies and the mutating admission plugins (ServiceAccount,
//! DefaultTolerationSeconds, Priority).
//!
//! Defaulting runs on every decode, so `pod`, `deployment`, ... are safe to
//! call on create *and* update. Things upstream does only on create live in
//! the `*_prepare_for_create` functions and in [`pod_admission`].

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetStatus, DaemonSetUpdateStrategy, Deployment, DeploymentStatus, DeploymentStrategy, ReplicaSet,
    ReplicaSetStatus, RollingUpdateDaemonSet, RollingUpdateDeployment, RollingUpdateStatefulSetStrategy, StatefulSet,
    StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetStatus, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::batch::v1::{CronJob, Job, JobStatus};
use k8s_openapi::api::core::v1::{
    ClientIPConfig, ConfigMapProjection, Container, ContainerPort, DaemonEndpoint, DownwardAPIProjection,
    DownwardAPIVolumeFile, EmptyDirVolumeSource, EnvVar, KeyToPath, Lifecycle, LoadBalancerStatus, Namespace,
    NamespaceSpec, NamespaceStatus, Node, NodeDaemonEndpoints, NodeSpec, NodeStatus, NodeSystemInfo,
    ObjectFieldSelector, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimStatus, PersistentVolumeStatus, Pod, PodAffinityTerm, PodCondition, PodSecurityContext,
    PodSpec, PodStatus, PodTemplateSpec, Probe, ProjectedVolumeSource, ResourceRequirements, Secret, Service,
    ServiceAccountTokenProjection, ServiceSpec, ServiceStatus, SessionAffinityConfig, Toleration, Volume, VolumeMount,
    VolumeProjection,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelectorRequirement, ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::quantity;

/// Where the ServiceAccount admission plugin mounts the API credentials.
pub const SERVICE_ACCOUNT_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// Prefix of the projected token volume; upstream appends 5 random chars
/// from `bcdfghjklmnpqrstvwxz2456789` (see `SimpleNameGenerator`).
pub const TOKEN_VOLUME_PREFIX: &str = "kube-api-access-";
/// Annotation that marks kubelet mirror pods (admission leaves them alone).
pub const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// Namespace label the server maintains on every namespace.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// Annotation apps/v1 conversion writes from DaemonSet's internal template generation.
pub const DAEMONSET_TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

fn set_if_none<T>(slot: &mut Option<T>, value: T) {
    if slot.is_none() {
        *slot = Some(value);
    }
}

/// Go's `if x == ""` for optional strings: absent and empty both count as unset.
fn set_if_empty(slot: &mut Option<String>, value: &str) {
    if slot.as_deref().is_none_or(str::is_empty) {
        *slot = Some(value.to_string());
    }
}

/// Go's `if x == 0` for optional integers.
fn set_if_zero<T: Default + PartialEq>(slot: &mut Option<T>, value: T) {
    if slot.as_ref().is_none_or(|v| *v == T::default()) {
        *slot = Some(value);
    }
}

// ---------------------------------------------------------------------------
// Resource lists
// ---------------------------------------------------------------------------

/// `SetDefaults_ResourceList`: every quantity is rounded up to milli scale
/// and re-serialized canonically. Unparseable values are left untouched so
/// validation can report them.
pub fn resource_list(list: &mut Option<BTreeMap<String, Quantity>>) {
    if let Some(map) = list {
        for q in map.values_mut() {
            if let Ok(s) = quantity::canonicalize_resource(&q.0) {
                q.0 = s;
            }
        }
    }
}

fn resource_requirements(r: &mut Option<ResourceRequirements>) {
    if let Some(r) = r {
        resource_list(&mut r.limits);
        resource_list(&mut r.requests);
    }
}

// ---------------------------------------------------------------------------
// Containers
// ---------------------------------------------------------------------------

/// Tag as upstream's `parsers.ParseImageName` sees it: `latest` when the
/// reference has neither tag nor digest, `None` when it does not parse.
fn image_tag(image: &str) -> Option<String> {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    if !valid_repository(repo) {
        return None;
    }
    if let Some(d) = digest {
        let ok = d.split_once(':').is_some_and(|(alg, hex)| {
            !alg.is_empty() && hex.len() >= 32 && hex.bytes().all(|c| c.is_ascii_alphanumeric())
        });
        if !ok {
            return None;
        }
    }
    match tag {
        Some(t) => {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.bytes().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
                && t.bytes().all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c));
            ok.then(|| t.to_string())
        }
        None if digest.is_some() => Some(String::new()),
        None => Some("latest".to_string()),
    }
}

/// Docker reference grammar, loosely: optional registry host, then
/// lowercase path components separated by `.`, `_`, `__` or dashes.
fn valid_repository(repo: &str) -> bool {
    if repo.is_empty() {
        return false;
    }
    let mut parts: Vec<&str> = repo.split('/').collect();
    if parts.len() > 1 {
        let first = parts[0];
        let is_host = first.contains(['.', ':']) || first == "localhost" || first.to_lowercase() != first;
        if is_host {
            let host_ok =
                !first.is_empty() && first.bytes().all(|c| c.is_ascii_alphanumeric() || b".-:[]".contains(&c));
            if !host_ok {
                return false;
            }
            parts.remove(0);
        }
    }
    parts.iter().all(|p| {
        !p.is_empty()
            && p.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(&c))
            && p.bytes().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && p.bytes().last().is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

/// `Always` for `:latest` (or untagged), otherwise `IfNotPresent`.
pub fn default_pull_policy(image: &str) -> &'static str {
    if image_tag(image).as_deref() == Some("latest") { "Always" } else { "IfNotPresent" }
}

fn probe(p: &mut Option<Probe>) {
    if let Some(p) = p {
        set_if_zero(&mut p.timeout_seconds, 1);
        set_if_zero(&mut p.period_seconds, 10);
        set_if_zero(&mut p.success_threshold, 1);
        set_if_zero(&mut p.failure_threshold, 3);
        if let Some(h) = &mut p.http_get {
            set_if_empty(&mut h.path, "/");
            set_if_empty(&mut h.scheme, "HTTP");
        }
        if let Some(g) = &mut p.grpc {
            set_if_none(&mut g.service, String::new());
        }
    }
}

fn lifecycle(l: &mut Option<Lifecycle>) {
    if let Some(l) = l {
        for h in [&mut l.post_start, &mut l.pre_stop].into_iter().flatten() {
            if let Some(g) = &mut h.http_get {
                set_if_empty(&mut g.path, "/");
                set_if_empty(&mut g.scheme, "HTTP");
            }
        }
    }
}

fn field_selector(f: &mut ObjectFieldSelector) {
    set_if_empty(&mut f.api_version, "v1");
}

fn env(vars: &mut Option<Vec<EnvVar>>) {
    for v in vars.iter_mut().flatten() {
        if let Some(fr) = v.value_from.as_mut().and_then(|s| s.field_ref.as_mut()) {
            field_selector(fr);
        }
    }
}

fn ports(ports: &mut Option<Vec<ContainerPort>>) {
    for p in ports.iter_mut().flatten() {
        set_if_empty(&mut p.protocol, "TCP");
    }
}

// Container and EphemeralContainer are distinct structs with the same
// fields; upstream defaults both through SetDefaults_Container.
macro_rules! container_defaults {
    ($c:expr) => {{
        let c = $c;
        if c.image_pull_policy.as_deref().is_none_or(str::is_empty) {
            c.image_pull_policy = Some(default_pull_policy(c.image.as_deref().unwrap_or("")).to_string());
        }
        set_if_empty(&mut c.termination_message_path, "/dev/termination-log");
        set_if_empty(&mut c.termination_message_policy, "File");
        ports(&mut c.ports);
        env(&mut c.env);
        resource_requirements(&mut c.resources);
        probe(&mut c.liveness_probe);
        probe(&mut c.readiness_probe);
        probe(&mut c.startup_probe);
        lifecycle(&mut c.lifecycle);
    }};
}

/// `SetDefaults_Container` plus the nested defaults generated for it.
pub fn container(c: &mut Container) {
    container_defaults!(c);
}

// ---------------------------------------------------------------------------
// Volumes
// ---------------------------------------------------------------------------

fn downward_items(items: &mut Option<Vec<DownwardAPIVolumeFile>>) {
    for i in items.iter_mut().flatten() {
        if let Some(f) = &mut i.field_ref {
            field_selector(f);
        }
    }
}

fn pvc_spec(spec: &mut PersistentVolumeClaimSpec) {
    set_if_none(&mut spec.volume_mode, "Filesystem".to_string());
    if let Some(r) = &mut spec.resources {
        resource_list(&mut r.limits);
        resource_list(&mut r.requests);
    }
}

/// `SetDefaults_Volume` and the per-source defaults (mode 0644 = 420 for
/// secret/configMap/downwardAPI/projected, hostPath type "", token expiry 1h).
pub fn volume(v: &mut Volume) {
    let has_source = v.aws_elastic_block_store.is_some()
        || v.azure_disk.is_some()
        || v.azure_file.is_some()
        || v.cephfs.is_some()
        || v.cinder.is_some()
        || v.config_map.is_some()
        || v.csi.is_some()
        || v.downward_api.is_some()
        || v.empty_dir.is_some()
        || v.ephemeral.is_some()
        || v.fc.is_some()
        || v.flex_volume.is_some()
        || v.flocker.is_some()
        || v.gce_persistent_disk.is_some()
        || v.git_repo.is_some()
        || v.glusterfs.is_some()
        || v.host_path.is_some()
        || v.image.is_some()
        || v.iscsi.is_some()
        || v.nfs.is_some()
        || v.persistent_volume_claim.is_some()
        || v.photon_persistent_disk.is_some()
        || v.portworx_volume.is_some()
        || v.projected.is_some()
        || v.quobyte.is_some()
        || v.rbd.is_some()
        || v.scale_io.is_some()
        || v.secret.is_some()
        || v.storageos.is_some()
        || v.vsphere_volume.is_some();
    if !has_source {
        v.empty_dir = Some(EmptyDirVolumeSource::default());
    }
    if let Some(h) = &mut v.host_path {
        set_if_none(&mut h.type_, String::new());
    }
    if let Some(s) = &mut v.secret {
        set_if_none(&mut s.default_mode, 0o644);
    }
    if let Some(c) = &mut v.config_map {
        set_if_none(&mut c.default_mode, 0o644);
    }
    if let Some(d) = &mut v.downward_api {
        set_if_none(&mut d.default_mode, 0o644);
        downward_items(&mut d.items);
    }
    if let Some(p) = &mut v.projected {
        set_if_none(&mut p.default_mode, 0o644);
        for s in p.sources.iter_mut().flatten() {
            if let Some(d) = &mut s.downward_api {
                downward_items(&mut d.items);
            }
            if let Some(t) = &mut s.service_account_token {
                set_if_none(&mut t.expiration_seconds, 3600);
            }
        }
    }
    if let Some(i) = &mut v.iscsi {
        set_if_empty(&mut i.iscsi_interface, "default");
    }
    if let Some(r) = &mut v.rbd {
        set_if_empty(&mut r.pool, "rbd");
        set_if_empty(&mut r.user, "admin");
        set_if_empty(&mut r.keyring, "/etc/ceph/keyring");
    }
    if let Some(a) = &mut v.azure_disk {
        set_if_none(&mut a.caching_mode, "ReadWrite".to_string());
        set_if_none(&mut a.kind, "Shared".to_string());
        set_if_none(&mut a.fs_type, "ext4".to_string());
        set_if_none(&mut a.read_only, false);
    }
    if let Some(s) = &mut v.scale_io {
        set_if_empty(&mut s.storage_mode, "ThinProvisioned");
        set_if_empty(&mut s.fs_type, "xfs");
    }
    if let Some(t) = v.ephemeral.as_mut().and_then(|e| e.volume_claim_template.as_mut()) {
        pvc_spec(&mut t.spec);
    }
}

// ---------------------------------------------------------------------------
// Pods
// ---------------------------------------------------------------------------

/// Everything defaulting does to a PodSpec, wherever it is embedded
/// (`SetDefaults_PodSpec` + volumes + all container kinds + overhead), plus
/// the `serviceAccount`/`serviceAccountName` mirroring done by conversion.
pub fn pod_spec(spec: &mut PodSpec) {
    set_if_empty(&mut spec.dns_policy, "ClusterFirst");
    set_if_empty(&mut spec.restart_policy, "Always");
    set_if_none(&mut spec.security_context, PodSecurityContext::default());
    set_if_none(&mut spec.termination_grace_period_seconds, 30);
    set_if_empty(&mut spec.scheduler_name, "default-scheduler");

    // v1 -> internal takes the deprecated field when the new one is empty;
    // internal -> v1 always mirrors the new one back.
    if spec.service_account_name.as_deref().is_none_or(str::is_empty) {
        spec.service_account_name = spec.service_account.clone().filter(|s| !s.is_empty());
    }
    spec.service_account = spec.service_account_name.clone();

    for v in spec.volumes.iter_mut().flatten() {
        volume(v);
    }
    for c in spec.init_containers.iter_mut().flatten() {
        container(c);
    }
    for c in spec.containers.iter_mut() {
        container(c);
    }
    for c in spec.ephemeral_containers.iter_mut().flatten() {
        container_defaults!(c);
    }
    resource_list(&mut spec.overhead);
}

/// `PodTemplateSpec` defaults (what Deployments, ReplicaSets, ... get).
pub fn pod_template_spec(t: &mut PodTemplateSpec) {
    pod_spec(t.spec.get_or_insert_with(PodSpec::default));
}

fn requests_from_limits(containers: &mut [Container]) {
    for c in containers {
        if let Some(r) = &mut c.resources
            && let Some(limits) = &r.limits
        {
            let req = r.requests.get_or_insert_with(BTreeMap::new);
            for (k, v) in limits {
                req.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
}

fn host_network_ports(containers: &mut [Container]) {
    for p in containers.iter_mut().flat_map(|c| c.ports.iter_mut().flatten()) {
        if p.host_port.unwrap_or(0) == 0 {
            p.host_port = Some(p.container_port);
        }
    }
}

/// Pod-only defaults (`SetDefaults_Pod`) followed by [`pod_spec`]:
/// requests copied from limits, `enableServiceLinks: true`, host ports
/// mirrored under hostNetwork. Status gets `Pending` and the QoS class if
/// they are missing; see [`pod_prepare_for_create`] for the create-time reset.
pub fn pod(pod: &mut Pod) {
    let spec = pod.spec.get_or_insert_with(PodSpec::default);
    requests_from_limits(&mut spec.containers);
    if let Some(ic) = &mut spec.init_containers {
        requests_from_limits(ic);
    }
    set_if_none(&mut spec.enable_service_links, true);
    if spec.host_network == Some(true) {
        host_network_ports(&mut spec.containers);
        if let Some(ic) = &mut spec.init_containers {
            host_network_ports(ic);
        }
    }
    pod_spec(spec);
    let qos = qos_class(spec);
    let status = pod.status.get_or_insert_with(PodStatus::default);
    set_if_empty(&mut status.phase, "Pending");
    set_if_empty(&mut status.qos_class, qos);
}

fn positive(q: &Quantity) -> Option<quantity::Quantity> {
    quantity::Quantity::parse(&q.0).ok().filter(|q| !q.is_zero() && !q.is_negative())
}

fn sum(a: Option<quantity::Quantity>, b: quantity::Quantity) -> Option<quantity::Quantity> {
    // Sums are only compared, so exact milli values are enough.
    let b_m = b.milli_value()?;
    let a_m = match a {
        Some(a) => a.milli_value()?,
        None => 0,
    };
    quantity::Quantity::parse(&format!("{}m", a_m.checked_add(b_m)?)).ok()
}

/// `qos.GetPodQOS`: only cpu and memory count; Guaranteed needs every
/// container to set both limits and the summed requests to equal the summed
/// limits; no positive request or limit anywhere means BestEffort.
pub fn qos_class(spec: &PodSpec) -> &'static str {
    let mut requests: BTreeMap<&str, Option<quantity::Quantity>> = BTreeMap::new();
    let mut limits: BTreeMap<&str, Option<quantity::Quantity>> = BTreeMap::new();
    let mut guaranteed = true;
    let all = spec.containers.iter().chain(spec.init_containers.iter().flatten());
    for c in all {
        let res = c.resources.as_ref();
        for (name, q) in res.and_then(|r| r.requests.as_ref()).into_iter().flatten() {
            let name = name.as_str();
            if name != "cpu" && name != "memory" {
                continue;
            }
            if let Some(q) = positive(q) {
                let prev = requests.remove(name).flatten();
                requests.insert(name, sum(prev, q));
            }
        }
        let mut found = (false, false);
        for (name, q) in res.and_then(|r| r.limits.as_ref()).into_iter().flatten() {
            let name = name.as_str();
            if name != "cpu" && name != "memory" {
                continue;
            }
            if let Some(q) = positive(q) {
                if name == "cpu" {
                    found.0 = true;
                } else {
                    found.1 = true;
                }
                let prev = limits.remove(name).flatten();
                limits.insert(name, sum(prev, q));
            }
        }
        if found != (true, true) {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed {
        for (name, req) in &requests {
            let same = match (limits.get(name), req) {
                (Some(Some(l)), Some(r)) => l.cmp_value(r).is_eq(),
                _ => false,
            };
            if !same {
                guaranteed = false;
                break;
            }
        }
    }
    if guaranteed && requests.len() == limits.len() { "Guaranteed" } else { "Burstable" }
}

fn merge_label_keys(term: &mut PodAffinityTerm, labels: &BTreeMap<String, String>) {
    let (matching, mismatching) = (term.match_label_keys.clone(), term.mismatch_label_keys.clone());
    if matching.as_ref().is_none_or(Vec::is_empty) && mismatching.as_ref().is_none_or(Vec::is_empty) {
        return;
    }
    // A nil selector matches nothing, so upstream leaves it alone.
    let Some(sel) = &mut term.label_selector else {
        return;
    };
    let exprs = sel.match_expressions.get_or_insert_with(Vec::new);
    for (keys, op) in [(matching, "In"), (mismatching, "NotIn")] {
        for key in keys.into_iter().flatten() {
            if let Some(v) = labels.get(&key) {
                exprs.push(LabelSelectorRequirement { key, operator: op.to_string(), values: Some(vec![v.clone()]) });
            }
        }
    }
}

/// The pod registry's `PrepareForCreate`: status is replaced by
/// `{phase: Pending, qosClass}`, a `PodScheduled=False/SchedulingGated`
/// condition is added for gated pods, and `matchLabelKeys` /
/// `mismatchLabelKeys` of pod (anti-)affinity terms are folded into their
/// label selectors (MatchLabelKeysInPodAffinity, on by default in 1.32).
pub fn pod_prepare_for_create(pod: &mut Pod, now: &Time) {
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let spec = pod.spec.get_or_insert_with(PodSpec::default);
    let mut status = PodStatus {
        phase: Some("Pending".to_string()),
        qos_class: Some(qos_class(spec).to_string()),
        ..PodStatus::default()
    };
    if spec.scheduling_gates.as_ref().is_some_and(|g| !g.is_empty()) {
        status.conditions = Some(vec![PodCondition {
            type_: "PodScheduled".to_string(),
            status: "False".to_string(),
            reason: Some("SchedulingGated".to_string()),
            message: Some("Scheduling is blocked due to non-empty scheduling gates".to_string()),
            last_transition_time: Some(now.clone()),
            ..PodCondition::default()
        }]);
    }
    pod.status = Some(status);
    if let Some(aff) = &mut spec.affinity {
        for pa in [
            aff.pod_affinity.as_mut().map(|a| {
                (
                    &mut a.required_during_scheduling_ignored_during_execution,
                    &mut a.preferred_during_scheduling_ignored_during_execution,
                )
            }),
            aff.pod_anti_affinity.as_mut().map(|a| {
                (
                    &mut a.required_during_scheduling_ignored_during_execution,
                    &mut a.preferred_during_scheduling_ignored_during_execution,
                )
            }),
        ]
        .into_iter()
        .flatten()
        {
            for t in pa.0.iter_mut().flatten() {
                merge_label_keys(t, &labels);
            }
            for w in pa.1.iter_mut().flatten() {
                merge_label_keys(&mut w.pod_affinity_term, &labels);
            }
        }
    }
}

/// Extra inputs of [`pod_admission`].
#[derive(Debug, Clone, Default)]
pub struct PodAdmission<'a> {
    /// Random 5-char suffix for the `kube-api-access-` volume.
    pub token_volume_suffix: &'a str,
    /// The resolved PriorityClass `(value, preemptionPolicy)`: the named one,
    /// or the globalDefault one (then also set `spec.priorityClassName` to
    /// its name before calling). `None` means no class applies.
    pub priority_class: Option<(i32, Option<String>)>,
    /// The ServiceAccount's own `automountServiceAccountToken`.
    pub service_account_automount: Option<bool>,
    /// The ServiceAccount's `imagePullSecrets` names, copied when the pod has none.
    pub service_account_image_pull_secrets: &'a [String],
}

/// Mutating admission on pod create, in upstream plugin order:
/// ServiceAccount (default SA, token volume + mounts), Priority, then
/// DefaultTolerationSeconds. `Err` carries upstream's Forbidden text (the
/// caller wraps it as `pods "x" is forbidden: ...`).
pub fn pod_admission(pod: &mut Pod, a: &PodAdmission<'_>) -> Result<(), String> {
    let mirror = pod.metadata.annotations.as_ref().is_some_and(|m| m.contains_key(MIRROR_POD_ANNOTATION));
    let spec = pod.spec.get_or_insert_with(PodSpec::default);
    if !mirror {
        service_account_admission(spec, a);
    }
    priority_admission(spec, a.priority_class.clone())?;
    default_toleration_seconds(spec);
    Ok(())
}

fn service_account_admission(spec: &mut PodSpec, a: &PodAdmission<'_>) {
    set_if_empty(&mut spec.service_account_name, "default");
    spec.service_account = spec.service_account_name.clone();
    let automount = spec.automount_service_account_token.or(a.service_account_automount).unwrap_or(true);
    if automount {
        mount_token(spec, a.token_volume_suffix);
    }
    if spec.image_pull_secrets.as_ref().is_none_or(Vec::is_empty) && !a.service_account_image_pull_secrets.is_empty() {
        spec.image_pull_secrets = Some(
            a.service_account_image_pull_secrets
                .iter()
                .map(|n| k8s_openapi::api::core::v1::LocalObjectReference { name: n.clone() })
                .collect(),
        );
    }
}

fn mount_token(spec: &mut PodSpec, suffix: &str) {
    // Reuse an existing kube-api-access-* volume (e.g. on a re-admitted pod).
    let existing =
        spec.volumes.iter().flatten().find(|v| v.name.starts_with(TOKEN_VOLUME_PREFIX)).map(|v| v.name.clone());
    let name = existing.clone().unwrap_or_else(|| format!("{TOKEN_VOLUME_PREFIX}{suffix}"));
    let mount = VolumeMount {
        name: name.clone(),
        read_only: Some(true),
        mount_path: SERVICE_ACCOUNT_MOUNT_PATH.to_string(),
        ..VolumeMount::default()
    };
    let mut needed = false;
    let init = spec.init_containers.iter_mut().flatten();
    for c in init.chain(spec.containers.iter_mut()) {
        let has = c.volume_mounts.iter().flatten().any(|m| m.mount_path == SERVICE_ACCOUNT_MOUNT_PATH);
        if !has {
            c.volume_mounts.get_or_insert_with(Vec::new).push(mount.clone());
            needed = true;
        }
    }
    if existing.is_none() && needed {
        spec.volumes.get_or_insert_with(Vec::new).push(token_volume(name));
    }
}

/// The projected volume ServiceAccount admission adds: bound token
/// (3607s, the "warn-only" extended expiry), the cluster CA and the namespace.
pub fn token_volume(name: String) -> Volume {
    Volume {
        name,
        projected: Some(ProjectedVolumeSource {
            default_mode: Some(0o644),
            sources: Some(vec![
                VolumeProjection {
                    service_account_token: Some(ServiceAccountTokenProjection {
                        expiration_seconds: Some(3607),
                        path: "token".to_string(),
                        ..ServiceAccountTokenProjection::default()
                    }),
                    ..VolumeProjection::default()
                },
                VolumeProjection {
                    config_map: Some(ConfigMapProjection {
                        name: "kube-root-ca.crt".to_string(),
                        items: Some(vec![KeyToPath {
                            key: "ca.crt".to_string(),
                            path: "ca.crt".to_string(),
                            ..KeyToPath::default()
                        }]),
                        ..ConfigMapProjection::default()
                    }),
                    ..VolumeProjection::default()
                },
                VolumeProjection {
                    downward_api: Some(DownwardAPIProjection {
                        items: Some(vec![DownwardAPIVolumeFile {
                            path: "namespace".to_string(),
                            field_ref: Some(ObjectFieldSelector {
                                api_version: Some("v1".to_string()),
                                field_path: "metadata.namespace".to_string(),
                            }),
                            ..DownwardAPIVolumeFile::default()
                        }]),
                    }),
                    ..VolumeProjection::default()
                },
            ]),
        }),
        ..Volume::default()
    }
}

fn priority_admission(spec: &mut PodSpec, class: Option<(i32, Option<String>)>) -> Result<(), String> {
    let named = spec.priority_class_name.as_deref().filter(|n| !n.is_empty());
    let (priority, policy) = match (class, named) {
        (Some(c), _) => c,
        (None, Some(n)) => return Err(format!("no PriorityClass with name {n} was found")),
        (None, None) => (0, Some("PreemptLowerPriority".to_string())),
    };
    if let Some(p) = spec.priority
        && p != priority
    {
        return Err(format!(
            "the integer value of priority ({p}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"
        ));
    }
    spec.priority = Some(priority);
    if let Some(policy) = policy {
        if let Some(mine) = &spec.preemption_policy
            && *mine != policy
        {
            return Err(format!(
                "the string value of PreemptionPolicy ({mine}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"
            ));
        }
        spec.preemption_policy = Some(policy);
    }
    Ok(())
}

fn default_toleration_seconds(spec: &mut PodSpec) {
    let tolerates = |t: &Toleration, key: &str| {
        let k = t.key.as_deref().unwrap_or("");
        let e = t.effect.as_deref().unwrap_or("");
        (k == key || k.is_empty()) && (e == "NoExecute" || e.is_empty())
    };
    let tols = spec.tolerations.get_or_insert_with(Vec::new);
    for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] {
        if !tols.iter().any(|t| tolerates(t, key)) {
            tols.push(Toleration {
                key: Some(key.to_string()),
                operator: Some("Exists".to_string()),
                effect: Some("NoExecute".to_string()),
                toleration_seconds: Some(300),
                value: None,
            });
        }
    }
}

// ---------------------------------------------------------------------------
// apps/v1
// ---------------------------------------------------------------------------

fn mark_created(meta: &mut ObjectMeta) {
    meta.generation = Some(1);
}

/// `SetDefaults_Deployment`: replicas 1, RollingUpdate 25%/25%,
/// revisionHistoryLimit 10, progressDeadlineSeconds 600, template defaults.
pub fn deployment(d: &mut Deployment) {
    let spec = d.spec.get_or_insert_with(Default::default);
    set_if_none(&mut spec.replicas, 1);
    let strategy = spec.strategy.get_or_insert_with(DeploymentStrategy::default);
    set_if_empty(&mut strategy.type_, "RollingUpdate");
    if strategy.type_.as_deref() == Some("RollingUpdate") {
        let ru = strategy.rolling_update.get_or_insert_with(RollingUpdateDeployment::default);
        set_if_none(&mut ru.max_unavailable, IntOrString::String("25%".to_string()));
        set_if_none(&mut ru.max_surge, IntOrString::String("25%".to_string()));
    }
    set_if_none(&mut spec.revision_history_limit, 10);
    set_if_none(&mut spec.progress_deadline_seconds, 600);
    pod_template_spec(&mut spec.template);
}

/// Deployment `PrepareForCreate`: empty status, generation 1.
pub fn deployment_prepare_for_create(d: &mut Deployment) {
    d.status = Some(DeploymentStatus::default());
    mark_created(&mut d.metadata);
}

/// `SetDefaults_ReplicaSet`: replicas 1, template defaults.
pub fn replica_set(rs: &mut ReplicaSet) {
    let spec = rs.spec.get_or_insert_with(Default::default);
    set_if_none(&mut spec.replicas, 1);
    if let Some(t) = &mut spec.template {
        pod_template_spec(t);
    }
}

/// ReplicaSet `PrepareForCreate`: zeroed status (`replicas: 0`), generation 1.
pub fn replica_set_prepare_for_create(rs: &mut ReplicaSet) {
    rs.status = Some(ReplicaSetStatus::default());
    mark_created(&mut rs.metadata);
}

/// `SetDefaults_StatefulSet`: OrderedReady, RollingUpdate with partition 0,
/// PVC retention Retain/Retain (StatefulSetAutoDeletePVC is on in 1.32),
/// replicas 1, revisionHistoryLimit 10; claim templates get PVC defaults
/// (including `status.phase: Pending`, as on a real server).
pub fn stateful_set(s: &mut StatefulSet) {
    let spec = s.spec.get_or_insert_with(Default::default);
    set_if_empty(&mut spec.pod_management_policy, "OrderedReady");
    let us = spec.update_strategy.get_or_insert_with(StatefulSetUpdateStrategy::default);
    if us.type_.as_deref().is_none_or(str::is_empty) {
        us.type_ = Some("RollingUpdate".to_string());
        set_if_none(&mut us.rolling_update, RollingUpdateStatefulSetStrategy::default());
    }
    if us.type_.as_deref() == Some("RollingUpdate")
        && let Some(ru) = &mut us.rolling_update
    {
        set_if_none(&mut ru.partition, 0);
    }
    let policy = spec
        .persistent_volume_claim_retention_policy
        .get_or_insert_with(StatefulSetPersistentVolumeClaimRetentionPolicy::default);
    set_if_empty(&mut policy.when_deleted, "Retain");
    set_if_empty(&mut policy.when_scaled, "Retain");
    set_if_none(&mut spec.replicas, 1);
    set_if_none(&mut spec.revision_history_limit, 10);
    pod_template_spec(&mut spec.template);
    for pvc in spec.volume_claim_templates.iter_mut().flatten() {
        persistent_volume_claim(pvc);
    }
}

/// StatefulSet `PrepareForCreate`: zeroed status, generation 1.
pub fn stateful_set_prepare_for_create(s: &mut StatefulSet) {
    s.status = Some(StatefulSetStatus::default());
    mark_created(&mut s.metadata);
}

/// `SetDefaults_DaemonSet`: RollingUpdate maxUnavailable 1 / maxSurge 0,
/// revisionHistoryLimit 10, template defaults.
pub fn daemon_set(ds: &mut DaemonSet) {
    let spec = ds.spec.get_or_insert_with(Default::default);
    let us = spec.update_strategy.get_or_insert_with(DaemonSetUpdateStrategy::default);
    set_if_empty(&mut us.type_, "RollingUpdate");
    if us.type_.as_deref() == Some("RollingUpdate") {
        let ru = us.rolling_update.get_or_insert_with(RollingUpdateDaemonSet::default);
        set_if_none(&mut ru.max_unavailable, IntOrString::Int(1));
        set_if_none(&mut ru.max_surge, IntOrString::Int(0));
    }
    set_if_none(&mut spec.revision_history_limit, 10);
    pod_template_spec(&mut spec.template);
}

/// DaemonSet `PrepareForCreate`: zeroed status, generation 1, template
/// generation 1 (surfaced by conversion as the
/// `deprecated.daemonset.template.generation` annotation).
pub fn daemon_set_prepare_for_create(ds: &mut DaemonSet) {
    ds.status = Some(DaemonSetStatus::default());
    mark_created(&mut ds.metadata);
    let ann = ds.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let tg = ann.get(DAEMONSET_TEMPLATE_GENERATION).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    if tg < 1 {
        ann.insert(DAEMONSET_TEMPLATE_GENERATION.to_string(), "1".to_string());
    }
}

// ---------------------------------------------------------------------------
// core/v1 others
// ---------------------------------------------------------------------------

/// `SetDefaults_Service` plus the allocator's work (the caller allocates the
/// address): type ClusterIP, sessionAffinity None (ClientIP gets 10800s),
/// port protocol TCP, targetPort = port, internalTrafficPolicy Cluster,
/// externalTrafficPolicy Cluster for NodePort/LoadBalancer,
/// allocateLoadBalancerNodePorts true, single-stack IPv4, `status.loadBalancer: {}`.
/// Headless services without a selector get RequireDualStack, like upstream
/// in a single-stack cluster. `cluster_ip` is used only when none is set.
pub fn service(svc: &mut Service, cluster_ip: &str) {
    let spec = svc.spec.get_or_insert_with(ServiceSpec::default);
    set_if_empty(&mut spec.session_affinity, "None");
    match spec.session_affinity.as_deref() {
        Some("None") => spec.session_affinity_config = None,
        Some("ClientIP") => {
            let has_timeout = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .is_some();
            if !has_timeout {
                spec.session_affinity_config =
                    Some(SessionAffinityConfig { client_ip: Some(ClientIPConfig { timeout_seconds: Some(10800) }) });
            }
        }
        _ => {}
    }
    set_if_empty(&mut spec.type_, "ClusterIP");
    for p in spec.ports.iter_mut().flatten() {
        set_if_empty(&mut p.protocol, "TCP");
        let unset = match &p.target_port {
            None => true,
            Some(IntOrString::Int(0)) => true,
            Some(IntOrString::String(s)) => s.is_empty(),
            Some(IntOrString::Int(_)) => false,
        };
        if unset {
            p.target_port = Some(IntOrString::Int(p.port));
        }
    }
    let ty = spec.type_.clone().unwrap_or_default();
    let external = ty == "NodePort" || ty == "LoadBalancer" || !spec.external_ips.as_ref().is_none_or(Vec::is_empty);
    if external {
        set_if_empty(&mut spec.external_traffic_policy, "Cluster");
    }
    if matches!(ty.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP") {
        set_if_none(&mut spec.internal_traffic_policy, "Cluster".to_string());
    }
    if ty == "LoadBalancer" {
        set_if_none(&mut spec.allocate_load_balancer_node_ports, true);
    }
    if ty != "ExternalName" {
        let current = spec
            .cluster_ip
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| spec.cluster_ips.as_ref().and_then(|v| v.first().cloned()));
        let ip = current.unwrap_or_else(|| cluster_ip.to_string());
        if !ip.is_empty() {
            spec.cluster_ip = Some(ip.clone());
            if spec.cluster_ips.as_ref().is_none_or(Vec::is_empty) {
                spec.cluster_ips = Some(vec![ip.clone()]);
            }
        }
        let headless_no_selector = ip == "None" && spec.selector.as_ref().is_none_or(BTreeMap::is_empty);
        let policy = if headless_no_selector { "RequireDualStack" } else { "SingleStack" };
        set_if_none(&mut spec.ip_family_policy, policy.to_string());
        if spec.ip_families.as_ref().is_none_or(Vec::is_empty) {
            spec.ip_families = Some(vec!["IPv4".to_string()]);
        }
    }
    let status = svc.status.get_or_insert_with(ServiceStatus::default);
    set_if_none(&mut status.load_balancer, LoadBalancerStatus::default());
}

/// `SetDefaults_Namespace` + `SetDefaults_NamespaceStatus`: the
/// `kubernetes.io/metadata.name` label (kept in sync on every write) and
/// phase Active.
pub fn namespace(ns: &mut Namespace) {
    if let Some(name) = ns.metadata.name.clone().filter(|n| !n.is_empty()) {
        ns.metadata.labels.get_or_insert_with(BTreeMap::new).insert(NAMESPACE_NAME_LABEL.to_string(), name);
    }
    let status = ns.status.get_or_insert_with(NamespaceStatus::default);
    set_if_empty(&mut status.phase, "Active");
}

/// Namespace `PrepareForCreate`: status reset to Active and the
/// `kubernetes` finalizer added. Create-only because the namespace
/// controller removes that finalizer while deleting.
pub fn namespace_prepare_for_create(ns: &mut Namespace) {
    ns.status = Some(NamespaceStatus { phase: Some("Active".to_string()), ..NamespaceStatus::default() });
    let spec = ns.spec.get_or_insert_with(NamespaceSpec::default);
    let fin = spec.finalizers.get_or_insert_with(Vec::new);
    if !fin.iter().any(|f| f == "kubernetes") {
        fin.push("kubernetes".to_string());
    }
}

/// `SetDefaults_NodeStatus` (allocatable copied from capacity) and resource
/// rounding, plus the always-present zero structs Go serializes
/// (`spec: {}`, `daemonEndpoints.kubeletEndpoint.Port: 0`, empty
/// `nodeInfo`), as `node-created.json` shows.
pub fn node(node: &mut Node) {
    set_if_none(&mut node.spec, NodeSpec::default());
    let status = node.status.get_or_insert_with(NodeStatus::default);
    if status.allocatable.is_none() && status.capacity.is_some() {
        status.allocatable = status.capacity.clone();
    }
    resource_list(&mut status.capacity);
    resource_list(&mut status.allocatable);
    let de = status.daemon_endpoints.get_or_insert_with(NodeDaemonEndpoints::default);
    set_if_none(&mut de.kubelet_endpoint, DaemonEndpoint { port: 0 });
    set_if_none(&mut status.node_info, NodeSystemInfo::default());
}

/// `SetDefaults_PersistentVolumeClaim(+Spec)`: phase Pending, volumeMode
/// Filesystem, resource rounding.
pub fn persistent_volume_claim(pvc: &mut PersistentVolumeClaim) {
    let status = pvc.status.get_or_insert_with(PersistentVolumeClaimStatus::default);
    set_if_empty(&mut status.phase, "Pending");
    resource_list(&mut status.capacity);
    resource_list(&mut status.allocated_resources);
    pvc_spec(pvc.spec.get_or_insert_with(PersistentVolumeClaimSpec::default));
}

/// `SetDefaults_PersistentVolume`: phase Pending, reclaim policy Retain,
/// volumeMode Filesystem, hostPath type "", capacity rounding.
pub fn persistent_volume(pv: &mut PersistentVolume) {
    let status = pv.status.get_or_insert_with(PersistentVolumeStatus::default);
    set_if_empty(&mut status.phase, "Pending");
    let spec = pv.spec.get_or_insert_with(Default::default);
    set_if_empty(&mut spec.persistent_volume_reclaim_policy, "Retain");
    set_if_none(&mut spec.volume_mode, "Filesystem".to_string());
    if let Some(h) = &mut spec.host_path {
        set_if_none(&mut h.type_, String::new());
    }
    if let Some(r) = &mut spec.rbd {
        set_if_empty(&mut r.pool, "rbd");
        set_if_empty(&mut r.user, "admin");
        set_if_empty(&mut r.keyring, "/etc/ceph/keyring");
    }
    if let Some(i) = &mut spec.iscsi {
        set_if_empty(&mut i.iscsi_interface, "default");
    }
    resource_list(&mut spec.capacity);
}

/// `SetDefaults_Secret` (type Opaque) and the v1 conversion that folds
/// `stringData` into `data` (stringData wins) and drops it.
pub fn secret(s: &mut Secret) {
    set_if_empty(&mut s.type_, "Opaque");
    if let Some(sd) = s.string_data.take().filter(|m| !m.is_empty()) {
        let data = s.data.get_or_insert_with(BTreeMap::new);
        for (k, v) in sd {
            data.insert(k, ByteString(v.into_bytes()));
        }
    }
}

/// scheduling/v1 `SetDefaults_PriorityClass`: preemptionPolicy PreemptLowerPriority.
pub fn priority_class(pc: &mut PriorityClass) {
    set_if_none(&mut pc.preemption_policy, "PreemptLowerPriority".to_string());
}

/// policy/v1 has no defaulting; its `PrepareForCreate` zeroes the status
/// (so `currentHealthy`, `desiredHealthy`, `disruptionsAllowed` and
/// `expectedPods` read 0 until the disruption controller runs) and sets
/// generation 1.
pub fn pod_disruption_budget_prepare_for_create(pdb: &mut PodDisruptionBudget) {
    pdb.status = Some(PodDisruptionBudgetStatus::default());
    mark_created(&mut pdb.metadata);
}

/// SetDefaults_Job: one pod to completion unless told otherwise, six retries.
pub fn job(j: &mut Job) {
    let spec = j.spec.get_or_insert_with(Default::default);
    if spec.completions.is_none() && spec.parallelism.is_none() {
        spec.completions = Some(1);
        spec.parallelism = Some(1);
    }
    set_if_none(&mut spec.parallelism, 1);
    if spec.backoff_limit.is_none() {
        spec.backoff_limit = Some(if spec.backoff_limit_per_index.is_some() { i32::MAX } else { 6 });
    }
    set_if_empty(&mut spec.completion_mode, "NonIndexed");
    set_if_none(&mut spec.suspend, false);
    if spec.pod_replacement_policy.is_none() {
        let p = if spec.pod_failure_policy.is_some() { "Failed" } else { "TerminatingOrFailed" };
        spec.pod_replacement_policy = Some(p.into());
    }
    set_if_none(&mut spec.manual_selector, false);
    pod_template_spec(&mut spec.template);
}

/// A Job's PrepareForCreate: an empty status and, unless the selector is
/// manual, the generated selector on the job's uid with the template labels
/// it selects.
pub fn job_prepare_for_create(j: &mut Job) {
    j.status = Some(JobStatus::default());
    mark_created(&mut j.metadata);
    let uid = j.metadata.uid.clone().unwrap_or_default();
    let name = j.metadata.name.clone().unwrap_or_default();
    let Some(spec) = j.spec.as_mut() else { return };
    if spec.manual_selector == Some(true) {
        return;
    }
    let labels = spec.template.metadata.get_or_insert_with(Default::default).labels.get_or_insert_with(BTreeMap::new);
    for (k, v) in [
        ("batch.kubernetes.io/controller-uid", &uid),
        ("batch.kubernetes.io/job-name", &name),
        ("controller-uid", &uid),
        ("job-name", &name),
    ] {
        labels.entry(k.to_string()).or_insert_with(|| v.clone());
    }
    let template_labels = labels.clone();
    if spec.selector.is_none() {
        spec.selector = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
            match_labels: Some(BTreeMap::from([("batch.kubernetes.io/controller-uid".to_string(), uid)])),
            ..Default::default()
        });
    }
    // A job without labels takes its pods'.
    if j.metadata.labels.as_ref().is_none_or(BTreeMap::is_empty) {
        j.metadata.labels = Some(template_labels);
    }
}

/// SetDefaults_CronJob.
pub fn cron_job(c: &mut CronJob) {
    let spec = c.spec.get_or_insert_with(Default::default);
    set_if_empty(&mut spec.concurrency_policy, "Allow");
    set_if_none(&mut spec.suspend, false);
    set_if_none(&mut spec.successful_jobs_history_limit, 3);
    set_if_none(&mut spec.failed_jobs_history_limit, 1);
    if let Some(js) = spec.job_template.spec.as_mut() {
        pod_template_spec(&mut js.template);
    }
}

pub fn cron_job_prepare_for_create(c: &mut CronJob) {
    c.status = Some(Default::default());
    mark_created(&mut c.metadata);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admit(pod: &mut Pod, suffix: &str, priority_class: Option<(i32, Option<String>)>) -> Result<(), String> {
        pod_admission(pod, &PodAdmission { token_volume_suffix: suffix, priority_class, ..PodAdmission::default() })
    }
    use serde_json::{Value, json};

    const REF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/k8s-reference/v1.32");

    fn load(name: &str) -> Value {
        let text = std::fs::read_to_string(format!("{REF}/{name}")).expect("reference file");
        serde_json::from_str(&text).expect("reference json")
    }

    fn now() -> Time {
        Time("2026-11-21T08:11:25Z".parse().expect("timestamp"))
    }

    /// Drops the non-upstream openshift CA source and pins the random suffix.
    fn normalize_reference_pod(v: &mut Value) {
        let vols = v["spec"]["volumes"].as_array_mut().expect("volumes");
        for vol in vols.iter_mut() {
            vol["name"] = json!("kube-api-access-xxxxx");
            let srcs = vol["projected"]["sources"].as_array_mut().expect("sources");
            srcs.retain(|s| s["configMap"]["name"] != "openshift-service-ca.crt");
        }
        for c in v["spec"]["containers"].as_array_mut().expect("containers") {
            for m in c["volumeMounts"].as_array_mut().expect("mounts") {
                m["name"] = json!("kube-api-access-xxxxx");
            }
        }
    }

    #[test]
    fn pod_create_matches_recorded_response() {
        let mut pod: Pod = serde_json::from_value(load("pod-sent.json")).expect("pod");
        super::pod(&mut pod);
        pod_prepare_for_create(&mut pod, &now());
        admit(&mut pod, "xxxxx", None).expect("admission");
        let got = serde_json::to_value(&pod).expect("serialize");
        let mut want = load("pod-created-response.json");
        normalize_reference_pod(&mut want);
        assert_eq!(got["spec"], want["spec"]);
        assert_eq!(got["status"], want["status"]);
    }

    #[test]
    fn deployment_matches_recorded_spec() {
        let recorded = load("deployment-available.json");
        let applied = recorded["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .expect("annotation");
        let mut d: Deployment = serde_json::from_str(applied).expect("deployment");
        deployment(&mut d);
        let got = serde_json::to_value(&d).expect("serialize");
        let mut want = recorded["spec"].clone();
        // Go prints the zero ObjectMeta timestamp as null; k8s-openapi omits it.
        want["template"]["metadata"].as_object_mut().expect("meta").remove("creationTimestamp");
        assert_eq!(got["spec"], want);
    }

    #[test]
    fn replica_set_template_matches_recorded() {
        let list = load("replicaset-list.json");
        let item = &list["items"][0];
        let mut rs: ReplicaSet = serde_json::from_value(item.clone()).expect("rs");
        let before = serde_json::to_value(&rs).expect("serialize");
        replica_set(&mut rs);
        assert_eq!(serde_json::to_value(&rs).expect("serialize"), before, "defaults are idempotent");
    }

    #[test]
    fn node_matches_recorded() {
        let recorded = load("node-created.json");
        let applied = recorded["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .expect("annotation");
        let mut n: Node = serde_json::from_str(applied).expect("node");
        node(&mut n);
        let got = serde_json::to_value(&n).expect("serialize");
        assert_eq!(got["spec"], recorded["spec"]);
        let mut want = recorded["status"].clone();
        // Go serializes unset condition times as null; k8s-openapi omits them.
        for c in want["conditions"].as_array_mut().expect("conditions") {
            let c = c.as_object_mut().expect("condition");
            c.retain(|_, v| !v.is_null());
        }
        assert_eq!(got["status"], want);
    }

    #[test]
    fn pdb_has_no_spec_defaults() {
        let recorded = load("pdb-status.json");
        let applied = recorded["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .expect("annotation");
        let mut p: PodDisruptionBudget = serde_json::from_str(applied).expect("pdb");
        pod_disruption_budget_prepare_for_create(&mut p);
        let got = serde_json::to_value(&p).expect("serialize");
        assert_eq!(got["spec"], recorded["spec"]);
        assert_eq!(
            got["status"],
            json!({"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0})
        );
    }

    #[test]
    fn pull_policy() {
        for (img, want) in [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("nginx:1.27", "IfNotPresent"),
            ("localhost:5000/app", "Always"),
            ("localhost:5000/app:v1", "IfNotPresent"),
            ("busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "IfNotPresent"),
            ("registry.k8s.io/pause:3.10", "IfNotPresent"),
            ("Nginx", "IfNotPresent"),
            ("", "IfNotPresent"),
        ] {
            assert_eq!(default_pull_policy(img), want, "{img}");
        }
    }

    #[test]
    fn qos_classes() {
        let spec = |res: Value| -> PodSpec {
            serde_json::from_value(json!({"containers": [{"name": "c", "resources": res}]})).expect("spec")
        };
        assert_eq!(qos_class(&spec(json!({}))), "BestEffort");
        assert_eq!(qos_class(&spec(json!({"requests": {"cpu": "0"}}))), "BestEffort");
        assert_eq!(qos_class(&spec(json!({"requests": {"cpu": "100m"}}))), "Burstable");
        let both = json!({"cpu": "1", "memory": "1Gi"});
        assert_eq!(qos_class(&spec(json!({"requests": both, "limits": both}))), "Guaranteed");
        assert_eq!(
            qos_class(&spec(json!({"requests": {"cpu": "1000m", "memory": "1Gi"}, "limits": both}))),
            "Guaranteed"
        );
        assert_eq!(qos_class(&spec(json!({"limits": {"cpu": "1"}}))), "Burstable");
        // SetDefaults_Pod copies limits to requests before QoS is computed.
        let mut p: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "c", "image": "x", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}}))
        .expect("pod");
        pod(&mut p);
        assert_eq!(p.status.and_then(|s| s.qos_class).as_deref(), Some("Guaranteed"));
    }

    #[test]
    fn container_and_volume_defaults() {
        let mut spec: PodSpec = serde_json::from_value(json!({
            "containers": [{
                "name": "c", "image": "nginx",
                "ports": [{"containerPort": 80}],
                "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "resources": {"requests": {"cpu": "0.5", "memory": "0.5Gi"}},
                "livenessProbe": {"httpGet": {"port": 80}},
                "readinessProbe": {"grpc": {"port": 9000}}
            }],
            "volumes": [
                {"name": "a"},
                {"name": "b", "secret": {"secretName": "s"}},
                {"name": "c", "configMap": {"name": "m"}},
                {"name": "d", "hostPath": {"path": "/x"}},
                {"name": "e", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}
            ],
            "serviceAccount": "legacy"
        }))
        .expect("spec");
        pod_spec(&mut spec);
        let v = serde_json::to_value(&spec).expect("serialize");
        let c = &v["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(c["resources"]["requests"], json!({"cpu": "500m", "memory": "512Mi"}));
        assert_eq!(
            c["livenessProbe"],
            json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                   "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
        );
        assert_eq!(c["readinessProbe"]["grpc"]["service"], "");
        assert_eq!(v["volumes"][0]["emptyDir"], json!({}));
        assert_eq!(v["volumes"][1]["secret"]["defaultMode"], 420);
        assert_eq!(v["volumes"][2]["configMap"]["defaultMode"], 420);
        assert_eq!(v["volumes"][3]["hostPath"]["type"], "");
        assert_eq!(v["volumes"][4]["projected"]["defaultMode"], 420);
        assert_eq!(v["volumes"][4]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"], 3600);
        assert_eq!(v["serviceAccountName"], "legacy");
        assert_eq!(v["serviceAccount"], "legacy");
        assert!(v.get("enableServiceLinks").is_none(), "pod-only default");
    }

    #[test]
    fn admission_respects_opt_out_and_existing_mounts() {
        let mut p: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {
            "automountServiceAccountToken": false, "containers": [{"name": "c", "image": "x"}]}}))
        .expect("pod");
        admit(&mut p, "abcde", None).expect("admission");
        let spec = p.spec.as_ref().expect("spec");
        assert!(spec.volumes.is_none());
        assert_eq!(spec.service_account_name.as_deref(), Some("default"));

        let mut p: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "c", "image": "x", "volumeMounts": [{"name": "mine", "mountPath": SERVICE_ACCOUNT_MOUNT_PATH}]}],
            "initContainers": [{"name": "i", "image": "x"}],
            "tolerations": [{"operator": "Exists"}]}}))
        .expect("pod");
        admit(&mut p, "abcde", Some((1000, Some("Never".into())))).expect("admission");
        let v = serde_json::to_value(&p).expect("serialize");
        assert_eq!(v["spec"]["containers"][0]["volumeMounts"].as_array().map(Vec::len), Some(1));
        assert_eq!(v["spec"]["initContainers"][0]["volumeMounts"][0]["name"], "kube-api-access-abcde");
        assert_eq!(v["spec"]["volumes"][0]["name"], "kube-api-access-abcde");
        assert_eq!(v["spec"]["tolerations"].as_array().map(Vec::len), Some(1), "wildcard toleration covers both");
        assert_eq!(v["spec"]["priority"], 1000);
        assert_eq!(v["spec"]["preemptionPolicy"], "Never");
    }

    #[test]
    fn priority_admission_errors() {
        let mut p: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {
            "priorityClassName": "high", "containers": [{"name": "c", "image": "x"}]}}))
        .expect("pod");
        assert_eq!(admit(&mut p, "x", None), Err("no PriorityClass with name high was found".to_string()));
        let mut p: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {
            "priority": 5, "containers": [{"name": "c", "image": "x"}]}}))
        .expect("pod");
        assert_eq!(
            admit(&mut p, "x", None),
            Err("the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 0 from the given PriorityClass name".to_string())
        );
    }

    #[test]
    fn gated_pod_and_match_label_keys() {
        let mut p: Pod = serde_json::from_value(json!({"metadata": {"name": "p", "labels": {"app": "a"}}, "spec": {
            "schedulingGates": [{"name": "example.com/gate"}],
            "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "kubernetes.io/hostname", "labelSelector": {}, "matchLabelKeys": ["app", "missing"]}]}},
            "containers": [{"name": "c", "image": "x"}]}}))
        .expect("pod");
        pod_prepare_for_create(&mut p, &now());
        let v = serde_json::to_value(&p).expect("serialize");
        assert_eq!(v["status"]["conditions"][0]["reason"], "SchedulingGated");
        assert_eq!(
            v["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]["labelSelector"],
            json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["a"]}]})
        );
    }

    #[test]
    fn workload_defaults() {
        let mut s: StatefulSet = serde_json::from_value(json!({"metadata": {"name": "s"}, "spec": {
            "selector": {"matchLabels": {"a": "b"}}, "serviceName": "s",
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "d"}, "spec": {"accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}}}}]}}))
        .expect("sts");
        stateful_set(&mut s);
        let v = serde_json::to_value(&s).expect("serialize");
        assert_eq!(v["spec"]["podManagementPolicy"], "OrderedReady");
        assert_eq!(v["spec"]["updateStrategy"], json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}));
        assert_eq!(
            v["spec"]["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        assert_eq!(v["spec"]["replicas"], 1);
        assert_eq!(v["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(v["spec"]["volumeClaimTemplates"][0]["spec"]["volumeMode"], "Filesystem");
        assert_eq!(v["spec"]["volumeClaimTemplates"][0]["status"]["phase"], "Pending");

        let mut ds: DaemonSet = serde_json::from_value(json!({"metadata": {"name": "d"}, "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}}))
        .expect("ds");
        daemon_set(&mut ds);
        daemon_set_prepare_for_create(&mut ds);
        let v = serde_json::to_value(&ds).expect("serialize");
        assert_eq!(
            v["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        assert_eq!(v["metadata"]["annotations"][DAEMONSET_TEMPLATE_GENERATION], "1");
        assert_eq!(v["status"]["numberReady"], 0);
    }

    #[test]
    fn service_namespace_secret_pv() {
        let mut svc: Service = serde_json::from_value(json!({"metadata": {"name": "s"}, "spec": {
            "selector": {"a": "b"}, "ports": [{"port": 80}]}}))
        .expect("svc");
        service(&mut svc, "10.96.0.10");
        let v = serde_json::to_value(&svc).expect("serialize");
        assert_eq!(
            v["spec"],
            json!({"selector": {"a": "b"}, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
                   "type": "ClusterIP", "sessionAffinity": "None", "clusterIP": "10.96.0.10",
                   "clusterIPs": ["10.96.0.10"], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                   "internalTrafficPolicy": "Cluster"})
        );
        assert_eq!(v["status"], json!({"loadBalancer": {}}));

        let mut ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "team"}})).expect("ns");
        namespace(&mut ns);
        namespace_prepare_for_create(&mut ns);
        let v = serde_json::to_value(&ns).expect("serialize");
        assert_eq!(v["metadata"]["labels"][NAMESPACE_NAME_LABEL], "team");
        assert_eq!(v["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(v["status"]["phase"], "Active");

        let mut s: Secret =
            serde_json::from_value(json!({"metadata": {"name": "s"}, "stringData": {"k": "v"}})).expect("secret");
        secret(&mut s);
        let v = serde_json::to_value(&s).expect("serialize");
        assert_eq!(v["type"], "Opaque");
        assert_eq!(v["data"]["k"], "dg==");
        assert!(v.get("stringData").is_none());

        let mut pv: PersistentVolume = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {
            "capacity": {"storage": "1Gi"}, "hostPath": {"path": "/d"}, "accessModes": ["ReadWriteOnce"]}}))
        .expect("pv");
        persistent_volume(&mut pv);
        let v = serde_json::to_value(&pv).expect("serialize");
        assert_eq!(v["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert_eq!(v["spec"]["volumeMode"], "Filesystem");
        assert_eq!(v["status"]["phase"], "Pending");

        let mut pc: PriorityClass =
            serde_json::from_value(json!({"metadata": {"name": "h"}, "value": 10})).expect("pc");
        priority_class(&mut pc);
        assert_eq!(pc.preemption_policy.as_deref(), Some("PreemptLowerPriority"));
    }
}
