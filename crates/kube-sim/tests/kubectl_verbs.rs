//! Every kubectl verb a user reaches for, with every kubectl the machine image
//! ships (`/usr/lib/google-cloud-sdk/bin/kubectl.1.27` … `kubectl.1.33`; 1.32
//! and later speak protobuf, 1.27–1.29 ask for v2beta1 aggregated discovery,
//! 1.27–1.28 read OpenAPI v2 in protobuf). Each version gets its own
//! simulated cluster (two nodes, simulated time ×10) and runs the same table
//! of steps; after each step the cluster's resulting state is checked through
//! the `kube` client, waiting on the condition with a bound.
//!
//! A version whose binary is missing is skipped with a message, except in CI
//! (`CI=true`), where it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::future::Future;
use std::pin::Pin;

use common::{Sim, eventually};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, ResourceQuota, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use serde_json::json;

const NS: &str = "verbs";

/// What a step must leave behind, checked until true (bounded).
type Check = fn(Client) -> Pin<Box<dyn Future<Output = bool> + Send>>;

/// How a step's kubectl run must end.
#[derive(Clone, Copy, PartialEq)]
enum Outcome {
    Ok,
    /// Fails at once with a Status whose message says why (exec, logs, ...).
    Refused,
}

struct Step {
    args: &'static [&'static str],
    outcome: Outcome,
    /// Text the output must contain.
    output: Option<&'static str>,
    check: Option<(&'static str, Check)>,
}

const fn ok(args: &'static [&'static str]) -> Step {
    Step { args, outcome: Outcome::Ok, output: None, check: None }
}

impl Step {
    const fn shows(mut self, text: &'static str) -> Self {
        self.output = Some(text);
        self
    }
    const fn then(mut self, what: &'static str, check: Check) -> Self {
        self.check = Some((what, check));
        self
    }
    const fn refused(mut self, text: &'static str) -> Self {
        self.outcome = Outcome::Refused;
        self.output = Some(text);
        self
    }
}

fn api<K>(c: &Client) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::namespaced(c.clone(), NS)
}

async fn deployment(c: &Client) -> Option<Deployment> {
    api::<Deployment>(c).get_opt("web").await.ok().flatten()
}

fn image(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|s| s.containers[0].image.clone().unwrap_or_default())
        .unwrap_or_default()
}

/// Ready pods of the deployment that run its current template.
async fn ready_web_pods(c: &Client, n: usize) -> bool {
    let Some(d) = deployment(c).await else { return false };
    let s = d.status.unwrap_or_default();
    let want = n as i32;
    s.ready_replicas == Some(want) && s.updated_replicas == Some(want) && s.replicas == Some(want)
}

macro_rules! check {
    (|$c:ident| $body:block) => {{
        fn f($c: Client) -> Pin<Box<dyn Future<Output = bool> + Send>> {
            Box::pin(async move $body)
        }
        f as Check
    }};
    (|$c:ident| $body:expr) => {{
        fn f($c: Client) -> Pin<Box<dyn Future<Output = bool> + Send>> {
            Box::pin(async move { $body })
        }
        f as Check
    }};
}

fn steps() -> Vec<Step> {
    vec![
        ok(&["version", "-o", "json"]).shows("serverVersion"),
        ok(&["api-resources"]).shows("cronjobs"),
        ok(&["create", "namespace", NS]).then(
            "namespace exists",
            check!(|c| { Api::<Namespace>::all(c).get_opt(NS).await.ok().flatten().is_some() }),
        ),
        ok(&["-n", NS, "create", "deployment", "web", "--image=nginx:1.27", "--replicas=2"])
            .then("2 Ready pods", check!(|c| ready_web_pods(&c, 2).await)),
        ok(&["-n", NS, "create", "configmap", "cm1", "--from-literal=a=b"]).then(
            "configmap data",
            check!(|c| {
                api::<ConfigMap>(&c).get("cm1").await.ok().and_then(|m| m.data).is_some_and(|d| d["a"] == "b")
            }),
        ),
        ok(&["-n", NS, "create", "secret", "generic", "s1", "--from-literal=a=b"]).then(
            "secret data",
            check!(|c| {
                api::<Secret>(&c).get("s1").await.ok().and_then(|s| s.data).is_some_and(|d| d["a"].0 == b"b")
            }),
        ),
        ok(&["-n", NS, "create", "serviceaccount", "sa1"]).then(
            "service account",
            check!(|c| api::<ServiceAccount>(&c).get_opt("sa1").await.ok().flatten().is_some()),
        ),
        ok(&["-n", NS, "create", "role", "r1", "--verb=get", "--resource=pods"]).then(
            "role rules",
            check!(|c| {
                api::<Role>(&c).get("r1").await.ok().and_then(|r| r.rules).is_some_and(|r| r[0].verbs == ["get"])
            }),
        ),
        ok(&["-n", NS, "create", "rolebinding", "rb1", "--role=r1", "--serviceaccount=verbs:sa1"]).then(
            "role binding",
            check!(|c| api::<RoleBinding>(&c).get("rb1").await.is_ok_and(|b| b.role_ref.name == "r1")),
        ),
        ok(&["create", "clusterrole", "cr1", "--verb=get", "--resource=nodes"])
            .then("cluster role", check!(|c| Api::<ClusterRole>::all(c).get_opt("cr1").await.ok().flatten().is_some())),
        ok(&["create", "clusterrolebinding", "crb1", "--clusterrole=cr1", "--serviceaccount=verbs:sa1"]).then(
            "cluster role binding",
            check!(|c| Api::<ClusterRoleBinding>::all(c).get("crb1").await.is_ok_and(|b| b.role_ref.name == "cr1")),
        ),
        ok(&["-n", NS, "create", "pdb", "pdb1", "--selector=app=web", "--min-available=1"]).then(
            "budget with status",
            check!(|c| {
                api::<PodDisruptionBudget>(&c)
                    .get("pdb1")
                    .await
                    .ok()
                    .and_then(|p| p.status)
                    .is_some_and(|s| s.expected_pods == 2)
            }),
        ),
        ok(&["create", "priorityclass", "pc1", "--value=1000"]).then(
            "priority class",
            check!(|c| Api::<PriorityClass>::all(c).get("pc1").await.is_ok_and(|p| p.value == 1000)),
        ),
        ok(&["-n", NS, "create", "quota", "q1", "--hard=pods=10,requests.cpu=4"]).then(
            "quota",
            check!(|c| {
                api::<ResourceQuota>(&c)
                    .get("q1")
                    .await
                    .ok()
                    .and_then(|q| q.spec)
                    .and_then(|s| s.hard)
                    .is_some_and(|h| h["pods"].0 == "10")
            }),
        ),
        ok(&["-n", NS, "create", "job", "j1", "--image=busybox", "--", "true"]).then(
            "job Complete",
            check!(|c| {
                api::<Job>(&c)
                    .get("j1")
                    .await
                    .ok()
                    .and_then(|j| j.status)
                    .and_then(|s| s.conditions)
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Complete" && c.status == "True"))
            }),
        ),
        ok(&["-n", NS, "create", "cronjob", "cj1", "--image=busybox", "--schedule=*/1 * * * *", "--", "true"]).then(
            "cron job ran a job",
            check!(|c| {
                api::<CronJob>(&c)
                    .get("cj1")
                    .await
                    .ok()
                    .and_then(|j| j.status)
                    .and_then(|s| s.last_schedule_time)
                    .is_some()
            }),
        ),
        ok(&["-n", NS, "run", "p1", "--image=nginx", "--labels=app=p1"]).then(
            "pod Running",
            check!(|c| {
                api::<Pod>(&c).get("p1").await.ok().and_then(|p| p.status).and_then(|s| s.phase).as_deref()
                    == Some("Running")
            }),
        ),
        ok(&["-n", NS, "expose", "deployment", "web", "--port=80"]).then(
            "service selects the deployment",
            check!(|c| {
                api::<Service>(&c).get("web").await.ok().and_then(|s| s.spec).is_some_and(|s| {
                    s.ports.is_some_and(|p| p[0].port == 80) && s.selector.is_some_and(|l| l["app"] == "web")
                })
            }),
        ),
        ok(&["-n", NS, "wait", "--for=condition=Available", "deployment/web", "--timeout=60s"]).shows("condition met"),
        ok(&["-n", NS, "scale", "deployment", "web", "--replicas=3"])
            .then("3 Ready pods", check!(|c| ready_web_pods(&c, 3).await)),
        ok(&["-n", NS, "rollout", "status", "deployment/web", "--timeout=60s"]).shows("successfully rolled out"),
        ok(&["-n", NS, "set", "image", "deployment/web", "nginx=nginx:1.28"]).then(
            "new image rolled out",
            check!(|c| ready_web_pods(&c, 3).await && deployment(&c).await.is_some_and(|d| image(&d) == "nginx:1.28")),
        ),
        ok(&["-n", NS, "rollout", "status", "deployment/web", "--timeout=60s"]).shows("successfully rolled out"),
        ok(&["-n", NS, "set", "env", "deployment/web", "FOO=bar"]).then(
            "env set",
            check!(|c| {
                deployment(&c).await.is_some_and(|d| {
                    d.spec.unwrap().template.spec.unwrap().containers[0]
                        .env
                        .as_ref()
                        .is_some_and(|e| e[0].name == "FOO")
                })
            }),
        ),
        ok(&["-n", NS, "set", "resources", "deployment/web", "--requests=cpu=100m"]).then(
            "requests set",
            check!(|c| {
                deployment(&c).await.is_some_and(|d| {
                    let r = d.spec.unwrap().template.spec.unwrap().containers[0].resources.clone().unwrap_or_default();
                    r.requests.is_some_and(|r| r["cpu"].0 == "100m")
                })
            }),
        ),
        ok(&["-n", NS, "rollout", "history", "deployment/web"]).shows("REVISION"),
        ok(&["-n", NS, "rollout", "undo", "deployment/web"]).then(
            "previous template (no requests)",
            check!(|c| {
                deployment(&c).await.is_some_and(|d| {
                    let c0 = d.spec.unwrap().template.spec.unwrap().containers[0].clone();
                    c0.env.is_some()
                        && c0.resources.and_then(|r| r.requests).is_none()
                        && c0.image.as_deref() == Some("nginx:1.28")
                })
            }),
        ),
        ok(&["-n", NS, "rollout", "restart", "deployment/web"]).then(
            "restartedAt annotation",
            check!(|c| {
                deployment(&c).await.is_some_and(|d| {
                    d.spec
                        .unwrap()
                        .template
                        .metadata
                        .and_then(|m| m.annotations)
                        .is_some_and(|a| a.contains_key("kubectl.kubernetes.io/restartedAt"))
                })
            }),
        ),
        ok(&["-n", NS, "rollout", "pause", "deployment/web"])
            .then("paused", check!(|c| deployment(&c).await.is_some_and(|d| d.spec.unwrap().paused == Some(true)))),
        ok(&["-n", NS, "rollout", "resume", "deployment/web"])
            .then("resumed", check!(|c| deployment(&c).await.is_some_and(|d| d.spec.unwrap().paused != Some(true)))),
        ok(&["-n", NS, "rollout", "status", "deployment/web", "--timeout=60s"]).shows("successfully rolled out"),
        ok(&["-n", NS, "label", "pod", "p1", "tier=edge"]).then(
            "label",
            check!(|c| api::<Pod>(&c)
                .get("p1")
                .await
                .is_ok_and(|p| p.labels().get("tier").map(String::as_str) == Some("edge"))),
        ),
        ok(&["-n", NS, "annotate", "pod", "p1", "note=hi"]).then(
            "annotation",
            check!(|c| api::<Pod>(&c)
                .get("p1")
                .await
                .is_ok_and(|p| p.annotations().get("note").map(String::as_str) == Some("hi"))),
        ),
        ok(&["-n", NS, "wait", "--for=condition=Complete", "job/j1", "--timeout=60s"]).shows("condition met"),
        ok(&["top", "node"]).shows("n2"),
        ok(&["-n", NS, "top", "pod"]).shows("web-"),
        ok(&["-n", NS, "describe", "deployment", "web"]).shows("RollingUpdate"),
        ok(&["-n", NS, "describe", "pod", "p1"]).shows("Events:"),
        ok(&["describe", "node", "n2"]).shows("Allocated resources"),
        ok(&["-n", NS, "describe", "quota", "q1"]).shows("requests.cpu"),
        ok(&["explain", "pod.spec.containers"]).shows("Container image name"),
        ok(&["explain", "deployments.spec.strategy"]).shows("RollingUpdate"),
        ok(&["-n", NS, "events"]).shows("SuccessfulCreate"),
        ok(&["-n", NS, "get", "all"]).shows("deployment.apps/web"),
        ok(&["-n", NS, "get", "pods", "--watch", "--request-timeout=2s"]).shows("p1"),
        ok(&["-n", NS, "logs", "p1"]).refused("cannot work in this simulated cluster"),
        ok(&["-n", NS, "exec", "p1", "--", "ls"]).refused("cannot work in this simulated cluster"),
        ok(&["-n", NS, "port-forward", "pod/p1", "8080:80"]).refused("cannot work in this simulated cluster"),
        ok(&["-n", NS, "cp", "p1:/etc/hosts", "/dev/null"]).refused("cannot work in this simulated cluster"),
        ok(&["-n", NS, "delete", "pod", "p1", "--wait"])
            .shows("deleted")
            .then("pod gone", check!(|c| api::<Pod>(&c).get_opt("p1").await.ok().flatten().is_none())),
        ok(&["taint", "node", "n1", "dedicated=x:NoSchedule"]).then(
            "taint",
            check!(|c| {
                Api::<Node>::all(c)
                    .get("n1")
                    .await
                    .ok()
                    .and_then(|n| n.spec)
                    .and_then(|s| s.taints)
                    .is_some_and(|t| t[0].key == "dedicated")
            }),
        ),
        ok(&["taint", "node", "n1", "dedicated=x:NoSchedule-"]).then(
            "untainted",
            check!(|c| {
                Api::<Node>::all(c)
                    .get("n1")
                    .await
                    .ok()
                    .and_then(|n| n.spec)
                    .is_some_and(|s| s.taints.unwrap_or_default().is_empty())
            }),
        ),
        ok(&["cordon", "n1"]).then(
            "unschedulable",
            check!(|c| {
                Api::<Node>::all(c).get("n1").await.ok().and_then(|n| n.spec).and_then(|s| s.unschedulable)
                    == Some(true)
            }),
        ),
        ok(&["drain", "n1", "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--timeout=60s"]).then(
            "n1 emptied, the deployment whole on n2",
            check!(|c| {
                let pods = api::<Pod>(&c).list(&ListParams::default().fields("spec.nodeName=n1")).await.unwrap();
                pods.items.iter().all(|p| p.metadata.deletion_timestamp.is_some()) && ready_web_pods(&c, 3).await
            }),
        ),
        ok(&["uncordon", "n1"]).then(
            "schedulable",
            check!(|c| {
                Api::<Node>::all(c).get("n1").await.ok().and_then(|n| n.spec).and_then(|s| s.unschedulable)
                    != Some(true)
            }),
        ),
        ok(&["delete", "namespace", NS, "--wait", "--timeout=60s"])
            .then("namespace gone", check!(|c| Api::<Namespace>::all(c).get_opt(NS).await.ok().flatten().is_none())),
    ]
}

async fn kubectl(bin: &str, sim: &Sim, args: &[&str]) -> (bool, String) {
    common::run_kubectl(bin, &sim.kubeconfig_path(), &sim.dir.path().join("cache"), args, 90).await
}

async fn node(c: &Client, name: &str) {
    let n = json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"capacity": {"cpu": "16", "memory": "32Gi", "pods": "110"}}});
    Api::<Node>::all(c.clone()).create(&Default::default(), &serde_json::from_value(n).unwrap()).await.unwrap();
}

async fn run_verbs(version: &str) {
    let bin = format!("/usr/lib/google-cloud-sdk/bin/kubectl.{version}");
    if !std::path::Path::new(&bin).exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{bin} is missing: the machine image ships kubectl 1.27..1.33"
        );
        eprintln!("skipping kubectl {version}: {bin} is not installed");
        return;
    }
    let sim = Sim::start_live_speed(10.0).await;
    let c = sim.client().await;
    node(&c, "n1").await;
    node(&c, "n2").await;
    for step in steps() {
        let (ok, out) = kubectl(&bin, &sim, step.args).await;
        match step.outcome {
            Outcome::Ok => assert!(ok, "kubectl {version} {:?} failed:\n{out}", step.args),
            Outcome::Refused => assert!(!ok, "kubectl {version} {:?} should be refused:\n{out}", step.args),
        }
        if let Some(text) = step.output {
            assert!(out.contains(text), "kubectl {version} {:?}: output lacks {text:?}:\n{out}", step.args);
        }
        if let Some((what, check)) = step.check {
            let c = c.clone();
            eventually(60, &format!("kubectl {version} {:?}: {what}", step.args), move || check(c.clone())).await;
        }
    }
}

macro_rules! versions {
    ($($name:ident => $v:literal),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            run_verbs($v).await;
        }
    )*};
}

versions! {
    kubectl_1_27 => "1.27",
    kubectl_1_28 => "1.28",
    kubectl_1_29 => "1.29",
    kubectl_1_30 => "1.30",
    kubectl_1_31 => "1.31",
    kubectl_1_32 => "1.32",
    kubectl_1_33 => "1.33",
}

/// `kubectl explain` of a custom resource shows its CRD's schema.
#[tokio::test]
async fn kubectl_explains_custom_resources_with_their_crd_schema() {
    let bin = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32";
    if !std::path::Path::new(bin).exists() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{bin} is missing");
        return;
    }
    let sim = Sim::start().await;
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "robots.sdi.keti"},
        "spec": {"group": "sdi.keti", "scope": "Namespaced", "names": {"plural": "robots", "kind": "Robot"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object", "properties": {"spec": {"type": "object", "description": "What the robot does.",
                    "properties": {"arms": {"type": "integer", "description": "How many arms the robot has."}}}}}}}]}});
    let (code, body) = sim.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", &crd).await;
    assert_eq!(code, 201, "{body}");
    eventually(10, "robots served", || async { sim.get("/apis/sdi.keti/v1/robots").await.0 == 200 }).await;
    let (ok, out) = kubectl(bin, &sim, &["explain", "robots.spec.arms"]).await;
    assert!(ok && out.contains("How many arms the robot has.") && out.contains("<integer>"), "{out}");
}
