//! The simulated cluster behaves like a real one, seen through the `kube`
//! client: controller outputs match the recorded v1.32 objects field for field
//! (except names, uids and times), rollouts respect maxSurge/maxUnavailable,
//! ReplicaSets adopt and scale down in upstream's order, deletion cascades,
//! unschedulable pods wait for capacity, budgets gate evictions, metrics follow
//! usage profiles, and the kubelet checkpoint endpoint answers as specified.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Sim, eventually, reference};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

async fn node(c: &Client, name: &str, cpu: &str, memory: &str, extra: Value) {
    let mut n = json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"capacity": {"cpu": cpu, "memory": memory, "pods": "110"}}});
    json_patch::merge(&mut n, &extra);
    let api: Api<Node> = Api::all(c.clone());
    api.create(&PostParams::default(), &serde_json::from_value(n).unwrap()).await.unwrap();
}

fn deployment(name: &str, replicas: i32, surge: Value, unavailable: Value, startup: &str) -> Deployment {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
        "template": {"metadata": {"labels": {"app": name}, "annotations": {"sim.kube-sim.io/startup-seconds": startup}},
            "spec": {"containers": [{"name": "c", "image": "nginx:1.27", "resources": {"requests": {"cpu": "200m", "memory": "128Mi"}}}]}}}}))
    .unwrap()
}

async fn wait_available(d: &Api<Deployment>, name: &str, n: i32) {
    eventually(60, &format!("deployment {name} has {n} available"), || async {
        d.get(name).await.ok().and_then(|d| d.status).is_some_and(|s| {
            s.available_replicas == Some(n)
                && s.updated_replicas == Some(n)
                && s.replicas == Some(n)
                && s.ready_replicas == Some(n)
        })
    })
    .await;
}

/// Drop what is naturally unique (names, uids, times, resourceVersions) and
/// what the recording's server added by itself (last-applied annotation).
fn strip(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for k in [
                    "uid",
                    "resourceVersion",
                    "creationTimestamp",
                    "lastTransitionTime",
                    "lastUpdateTime",
                    "managedFields",
                    "name",
                    "generateName",
                ] {
                    m.remove(k);
                }
                if let Some(a) = m.get_mut("annotations").and_then(Value::as_object_mut) {
                    a.remove("kubectl.kubernetes.io/last-applied-configuration");
                }
                for (k, x) in m.iter_mut() {
                    if k == "message" {
                        *x = Value::Null;
                    }
                    walk(x);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

/// Replace the pod-template-hash value (a different, equally valid hash).
fn unhash(v: &Value, hash: &str) -> Value {
    serde_json::from_str(&v.to_string().replace(hash, "HASH")).unwrap()
}

#[tokio::test]
async fn controller_outputs_match_the_recorded_cluster() {
    let sim = Sim::start_live_speed(20.0).await;
    let c = sim.client().await;
    node(&c, "n1", "4", "8Gi", json!({})).await;
    node(&c, "n2", "4", "8Gi", json!({})).await;
    // The recorded objects live in namespace "ref".
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c.clone());
    namespaces
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "ref"}})).unwrap())
        .await
        .unwrap();
    // The recorded Deployment, created from its last-applied configuration.
    let recorded = reference("deployment-available.json");
    let sent: Value = serde_json::from_str(
        recorded["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"].as_str().unwrap(),
    )
    .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(c.clone(), "ref");
    deployments.create(&PostParams::default(), &serde_json::from_value(sent).unwrap()).await.unwrap();
    wait_available(&deployments, "web", 2).await;
    let ours = serde_json::to_value(deployments.get("web").await.unwrap()).unwrap();
    assert_eq!(ours["status"]["conditions"][0]["message"], recorded["status"]["conditions"][0]["message"]);
    assert_eq!(strip(ours.clone()), strip(recorded.clone()), "Deployment");
    // Its ReplicaSet.
    let rs_list: Api<ReplicaSet> = Api::namespaced(c.clone(), "ref");
    let rs = rs_list.list(&ListParams::default()).await.unwrap().items.remove(0);
    let hash = rs.labels()["pod-template-hash"].clone();
    assert_eq!(rs.name_any(), format!("web-{hash}"));
    assert_eq!(hash.len(), 10, "upstream's hash shape");
    let their_rs = reference("replicaset-list.json")["items"][0].clone();
    let their_hash = their_rs["metadata"]["labels"]["pod-template-hash"].as_str().unwrap().to_string();
    assert_eq!(
        unhash(&strip(serde_json::to_value(&rs).unwrap()), &hash),
        unhash(&strip(their_rs), &their_hash),
        "ReplicaSet"
    );
    // Its pods: generateName, labels, ownerReferences, the Running/Ready status shape.
    let pods: Api<Pod> = Api::namespaced(c.clone(), "ref");
    let ours = pods.list(&ListParams::default().labels("app=web")).await.unwrap();
    let theirs = reference("deployment-pods-list.json");
    assert_eq!(ours.items.len(), theirs["items"].as_array().unwrap().len());
    let (o, t) = (serde_json::to_value(&ours.items[0]).unwrap(), &theirs["items"][0]);
    assert_eq!(o["metadata"]["generateName"].as_str().unwrap(), format!("web-{hash}-"));
    assert_eq!(
        unhash(&strip(o["metadata"]["ownerReferences"].clone()), &hash),
        unhash(&strip(t["metadata"]["ownerReferences"].clone()), &their_hash)
    );
    assert_eq!(unhash(&o["metadata"]["labels"], &hash), unhash(&t["metadata"]["labels"], &their_hash));
    let cond_types = |v: &Value| {
        v["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["type"].clone(), c["status"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(cond_types(&o), cond_types(t));
    assert_eq!(o["status"]["phase"], "Running");
    assert_eq!(o["status"]["containerStatuses"][0]["ready"], true);
    // The recorded PDB: minAvailable 2 of 2 pods.
    let pdb = reference("pdb-status.json");
    let sent: Value = serde_json::from_str(
        pdb["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"].as_str().unwrap(),
    )
    .unwrap();
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(c.clone(), "ref");
    pdbs.create(&PostParams::default(), &serde_json::from_value(sent).unwrap()).await.unwrap();
    eventually(30, "PDB status computed", || async {
        pdbs.get("web").await.unwrap().status.is_some_and(|s| s.observed_generation == Some(1))
    })
    .await;
    let ours = serde_json::to_value(pdbs.get("web").await.unwrap()).unwrap();
    assert_eq!(strip(ours["status"].clone()), strip(pdb["status"].clone()), "PodDisruptionBudget status");
    // Eviction is refused with upstream's body, from the controller's own status.
    // (Sent raw: kube's client retries 429s on its own.)
    let victim = pods.list(&ListParams::default().labels("app=web")).await.unwrap().items[0].name_any();
    let eviction =
        json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": victim, "namespace": "ref"}});
    let (code, body) = sim.post(&format!("/api/v1/namespaces/ref/pods/{victim}/eviction"), &eviction).await;
    assert_eq!((code, body), (429, reference("eviction-429-pdb.json")));
}

#[tokio::test]
async fn a_rollout_stays_within_max_surge_and_max_unavailable() {
    let sim = Sim::start_live_speed(20.0).await;
    let c = sim.client().await;
    node(&c, "n1", "8", "16Gi", json!({})).await;
    node(&c, "n2", "8", "16Gi", json!({})).await;
    let deployments: Api<Deployment> = Api::namespaced(c.clone(), "default");
    deployments.create(&PostParams::default(), &deployment("web", 4, json!(1), json!(0), "4")).await.unwrap();
    wait_available(&deployments, "web", 4).await;
    // Watch pods through the rollout and check the bounds after every change.
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let rv = pods.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();
    let mut stream =
        pods.watch(&kube::api::WatchParams::default().labels("app=web").timeout(120), &rv).await.unwrap().boxed();
    let mut view: BTreeMap<String, Pod> = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| (p.name_any(), p))
        .collect();
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(
                json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:1.28"}]}}}}),
            ),
        )
        .await
        .unwrap();
    let ready = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    };
    let live = |p: &Pod| p.metadata.deletion_timestamp.is_none();
    let (mut max_live, mut min_ready, mut changes) = (0usize, usize::MAX, 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let done = view.values().filter(|p| live(p) && ready(p)).count() == 4
            && view
                .values()
                .filter(|p| live(p))
                .all(|p| p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("nginx:1.28"));
        if done && changes > 0 {
            break;
        }
        let ev = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("rollout finishes")
            .expect("watch open")
            .unwrap();
        match ev {
            kube::api::WatchEvent::Added(p) | kube::api::WatchEvent::Modified(p) => {
                view.insert(p.name_any(), p);
            }
            kube::api::WatchEvent::Deleted(p) => {
                view.remove(&p.name_any());
            }
            _ => continue,
        }
        changes += 1;
        max_live = max_live.max(view.values().filter(|p| live(p)).count());
        min_ready = min_ready.min(view.values().filter(|p| live(p) && ready(p)).count());
    }
    assert!(changes >= 8, "the rollout went in steps ({changes} pod changes)");
    assert!(max_live <= 5, "never more than replicas + maxSurge pods: saw {max_live}");
    assert!(min_ready >= 4, "never fewer than replicas - maxUnavailable ready pods: saw {min_ready}");
    let rss: Api<ReplicaSet> = Api::namespaced(c.clone(), "default");
    let rss = rss.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(rss.len(), 2, "old and new ReplicaSets are kept (revision history)");
    let revisions: Vec<String> =
        rss.iter().map(|r| r.annotations()["deployment.kubernetes.io/revision"].clone()).collect();
    assert!(revisions.contains(&"1".to_string()) && revisions.contains(&"2".to_string()), "{revisions:?}");
}

#[tokio::test]
async fn a_replicaset_adopts_a_matching_pod_and_scales_away_the_cheapest() {
    let sim = Sim::start_live_speed(20.0).await;
    let c = sim.client().await;
    node(&c, "n1", "8", "16Gi", json!({})).await;
    let rss: Api<ReplicaSet> = Api::namespaced(c.clone(), "default");
    let rs: ReplicaSet = serde_json::from_value(
        json!({"metadata": {"name": "rs"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "a"}},
        "template": {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}}),
    )
    .unwrap();
    rss.create(&PostParams::default(), &rs).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let ready_count = |pods: Api<Pod>| async move {
        pods.list(&ListParams::default().labels("app=a"))
            .await
            .unwrap()
            .items
            .iter()
            .filter(|p| {
                p.metadata.deletion_timestamp.is_none()
                    && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
            })
            .filter(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .count()
    };
    eventually(30, "2 ready pods", || {
        let n = ready_count(pods.clone());
        async move { n.await == 2 }
    })
    .await;
    let names: Vec<String> =
        pods.list(&ListParams::default().labels("app=a")).await.unwrap().items.iter().map(|p| p.name_any()).collect();
    // Costs: the first replica is precious, the second cheap.
    for (name, cost) in [(&names[0], "100"), (&names[1], "-100")] {
        pods.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"controller.kubernetes.io/pod-deletion-cost": cost}}})),
        )
        .await
        .unwrap();
    }
    // A matching pod with a middle cost, Ready like the others.
    let extra: Pod = serde_json::from_value(json!({"metadata": {"name": "extra", "labels": {"app": "a"},
        "annotations": {"controller.kubernetes.io/pod-deletion-cost": "0", "sim.kube-sim.io/startup-seconds": "0"}},
        "spec": {"containers": [{"name": "c", "image": "x"}]}}))
    .unwrap();
    pods.create(&PostParams::default(), &extra).await.unwrap();
    eventually(30, "the cheapest pod is scaled away", || {
        let pods = pods.clone();
        let cheap = names[1].clone();
        async move {
            match pods.get_opt(&cheap).await.unwrap() {
                None => true,
                Some(p) => p.metadata.deletion_timestamp.is_some(),
            }
        }
    })
    .await;
    let extra = pods.get("extra").await.unwrap();
    let owner = &extra.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("ReplicaSet", "rs", Some(true)),
        "adopted"
    );
    assert!(pods.get(&names[0]).await.unwrap().metadata.deletion_timestamp.is_none(), "the precious pod stays");
    // Relabelled pods are released.
    pods.patch("extra", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"app": "other"}}})))
        .await
        .unwrap();
    eventually(30, "released", || async { pods.get("extra").await.unwrap().owner_references().is_empty() }).await;
}

#[tokio::test]
async fn deleting_a_deployment_collects_its_replicasets_and_pods() {
    let sim = Sim::start_live_speed(20.0).await;
    let c = sim.client().await;
    node(&c, "n1", "8", "16Gi", json!({})).await;
    let deployments: Api<Deployment> = Api::namespaced(c.clone(), "default");
    deployments.create(&PostParams::default(), &deployment("gc", 3, json!("25%"), json!("25%"), "1")).await.unwrap();
    wait_available(&deployments, "gc", 3).await;
    deployments.delete("gc", &DeleteParams::background()).await.unwrap();
    let rss: Api<ReplicaSet> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    eventually(30, "replicasets and pods collected", || async {
        rss.list(&ListParams::default()).await.unwrap().items.is_empty()
            && pods.list(&ListParams::default().labels("app=gc")).await.unwrap().items.is_empty()
    })
    .await;
    // Foreground: the owner stays until its dependents are gone.
    deployments.create(&PostParams::default(), &deployment("fg", 2, json!(1), json!(0), "1")).await.unwrap();
    wait_available(&deployments, "fg", 2).await;
    deployments.delete("fg", &DeleteParams::foreground()).await.unwrap();
    eventually(30, "foreground deletion completes", || async { deployments.get_opt("fg").await.unwrap().is_none() })
        .await;
    assert!(pods.list(&ListParams::default().labels("app=fg")).await.unwrap().items.is_empty());
    // Orphan: the ReplicaSet survives, released.
    deployments.create(&PostParams::default(), &deployment("or", 1, json!(1), json!(0), "1")).await.unwrap();
    wait_available(&deployments, "or", 1).await;
    deployments.delete("or", &DeleteParams::orphan()).await.unwrap();
    eventually(30, "orphaned", || async {
        deployments.get_opt("or").await.unwrap().is_none()
            && rss
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .iter()
                .any(|r| r.name_any().starts_with("or-") && r.owner_references().is_empty())
    })
    .await;
}

/// A ReplicaSet whose pods admission refuses (their service account does not
/// exist yet) records why, keeps probing, and creates them all once they are
/// admitted.
#[tokio::test]
async fn a_replicaset_whose_pods_are_refused_creates_them_once_admitted() {
    let sim = Sim::start_live_speed(20.0).await;
    let c = sim.client().await;
    node(&c, "n1", "16", "32Gi", json!({})).await;
    let mut dep = deployment("robots", 6, json!(1), json!(0), "1");
    if let Some(spec) = dep.spec.as_mut().and_then(|s| s.template.spec.as_mut()) {
        spec.service_account_name = Some("robot".into());
    }
    let d: Api<Deployment> = Api::namespaced(c.clone(), "default");
    d.create(&PostParams::default(), &dep).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(c.clone(), "default");
    eventually(30, "a FailedCreate event naming the missing service account", || async {
        events.list(&ListParams::default()).await.unwrap().items.into_iter().any(|e| {
            e.reason.as_deref() == Some("FailedCreate")
                && e.type_.as_deref() == Some("Warning")
                && e.message.as_deref().is_some_and(|m| m.contains("serviceaccount \"robot\" not found"))
        })
    })
    .await;
    assert!(pods.list(&ListParams::default()).await.unwrap().items.is_empty());
    let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(c.clone(), "default");
    sas.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "robot"}})).unwrap())
        .await
        .unwrap();
    wait_available(&d, "robots", 6).await;
}

#[tokio::test]
async fn an_unschedulable_pod_waits_for_a_node() {
    let sim = Sim::start_live_speed(20.0).await;
    let c = sim.client().await;
    node(&c, "small", "1", "1Gi", json!({})).await;
    node(
        &c,
        "tainted",
        "16",
        "32Gi",
        json!({"spec": {"taints": [{"key": "gpu", "value": "true", "effect": "NoSchedule"}]}}),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let big: Pod =
        serde_json::from_value(json!({"metadata": {"name": "big"}, "spec": {"containers": [{"name": "c", "image": "x",
        "resources": {"requests": {"cpu": "2", "memory": "2Gi"}}}]}}))
        .unwrap();
    pods.create(&PostParams::default(), &big).await.unwrap();
    eventually(30, "marked unschedulable", || async {
        pods.get("big").await.unwrap().status.and_then(|s| s.conditions).is_some_and(|cs| {
            cs.iter().any(|c| {
                c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable")
            })
        })
    })
    .await;
    let msg = pods
        .get("big")
        .await
        .unwrap()
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "PodScheduled")
        .unwrap()
        .message
        .unwrap();
    assert!(
        msg.starts_with("0/2 nodes are available:")
            && msg.contains("Insufficient cpu")
            && msg.contains("untolerated taint {gpu: true}"),
        "{msg}"
    );
    node(&c, "large", "8", "16Gi", json!({})).await;
    eventually(30, "scheduled on the new node and running", || async {
        let p = pods.get("big").await.unwrap();
        p.spec.unwrap().node_name.as_deref() == Some("large")
            && p.status.and_then(|s| s.phase).as_deref() == Some("Running")
    })
    .await;
}

/// The scheduler asks once per kind of node (same labels, taints, readiness)
/// whether a pod may go there: each pod still lands only where it may, a
/// relabelled node changes kind, and a pod pinned by name is not taken for its
/// kind.
#[tokio::test]
async fn pods_land_only_on_the_kinds_of_node_that_admit_them() {
    let sim = Sim::start_live_speed(20.0).await;
    let c = sim.client().await;
    let edge = json!({"metadata": {"labels": {"tier": "edge"}},
        "spec": {"taints": [{"key": "edge", "value": "true", "effect": "NoSchedule"}]}});
    // The tainted nodes are the emptiest, so they come first in the scheduler's scan.
    for n in ["edge-1", "edge-2"] {
        node(&c, n, "64", "256Gi", edge.clone()).await;
    }
    node(&c, "pool-1", "4", "8Gi", json!({"metadata": {"labels": {"pool": "hot"}}})).await;
    node(&c, "plain-1", "4", "8Gi", json!({})).await;
    node(&c, "plain-2", "4", "8Gi", json!({})).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let create = |name: &str, spec: Value| {
        let mut p = json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "x",
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}});
        json_patch::merge(&mut p, &json!({"spec": spec}));
        serde_json::from_value::<Pod>(p).unwrap()
    };
    let wanted = [
        ("plain", json!({}), &["plain-1", "plain-2", "pool-1"][..]),
        ("hot", json!({"nodeSelector": {"pool": "hot"}}), &["pool-1"][..]),
        (
            "edge",
            json!({"tolerations": [{"key": "edge", "operator": "Exists"}], "nodeSelector": {"tier": "edge"}}),
            &["edge-1", "edge-2"][..],
        ),
        (
            "pinned",
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["plain-2"]}]}]}}}}),
            &["plain-2"][..],
        ),
        ("named", json!({"nodeSelector": {"kubernetes.io/hostname": "plain-2"}}), &["plain-2"][..]),
        ("cold", json!({"nodeSelector": {"pool": "cold"}}), &["plain-1"][..]),
    ];
    for (name, spec, _) in &wanted {
        for i in 0..3 {
            pods.create(&PostParams::default(), &create(&format!("{name}-{i}"), spec.clone())).await.unwrap();
        }
    }
    let node_of = |p: Pod| p.spec.and_then(|s| s.node_name);
    for (name, _, allowed) in &wanted[..5] {
        for i in 0..3 {
            let pod = format!("{name}-{i}");
            eventually(30, &format!("{pod} scheduled"), || async { node_of(pods.get(&pod).await.unwrap()).is_some() })
                .await;
            let on = node_of(pods.get(&pod).await.unwrap()).unwrap();
            assert!(allowed.contains(&on.as_str()), "{pod} on {on}, allowed {allowed:?}");
        }
    }
    assert!(node_of(pods.get("cold-0").await.unwrap()).is_none(), "no node of the cold pool yet");
    // plain-1 joins the cold pool: a new kind of node, which now admits the waiting pods.
    let nodes: Api<Node> = Api::all(c.clone());
    nodes
        .patch("plain-1", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"pool": "cold"}}})))
        .await
        .unwrap();
    for i in 0..3 {
        let pod = format!("cold-{i}");
        eventually(60, &format!("{pod} scheduled on the relabelled node"), || async {
            node_of(pods.get(&pod).await.unwrap()).as_deref() == Some("plain-1")
        })
        .await;
    }
}

#[tokio::test]
async fn kubelet_admission_rejects_a_pod_that_does_not_fit() {
    let sim = Sim::start_live_speed(20.0).await;
    let c = sim.client().await;
    node(&c, "tiny", "1", "1Gi", json!({})).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let pinned: Pod = serde_json::from_value(json!({"metadata": {"name": "pinned"}, "spec": {"nodeName": "tiny",
        "containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "3"}}}]}}))
    .unwrap();
    pods.create(&PostParams::default(), &pinned).await.unwrap();
    eventually(30, "rejected by the kubelet", || async {
        pods.get("pinned")
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.phase.as_deref() == Some("Failed") && s.reason.as_deref() == Some("OutOfcpu"))
    })
    .await;
}

#[tokio::test]
async fn a_node_going_not_ready_is_tainted_and_its_pods_marked() {
    let sim = Sim::start_live_speed(50.0).await;
    let c = sim.client().await;
    node(&c, "n1", "4", "8Gi", json!({})).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let p: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}],
        "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}]}})).unwrap();
    pods.create(&PostParams::default(), &p).await.unwrap();
    eventually(30, "running", || async {
        pods.get("p").await.unwrap().status.and_then(|s| s.phase).as_deref() == Some("Running")
    })
    .await;
    let nodes: Api<Node> = Api::all(c.clone());
    nodes
        .patch(
            "n1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"sim.kube-sim.io/ready": "false"}}})),
        )
        .await
        .unwrap();
    eventually(30, "node NotReady and tainted", || async {
        let n = nodes.get("n1").await.unwrap();
        let unknown = n
            .status
            .and_then(|s| s.conditions)
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "Unknown"));
        let tainted = n
            .spec
            .and_then(|s| s.taints)
            .is_some_and(|ts| ts.iter().any(|t| t.key == "node.kubernetes.io/unreachable" && t.effect == "NoExecute"));
        unknown && tainted
    })
    .await;
    // After its 30 s toleration (simulated) the pod is evicted; with the kubelet down it stays Terminating.
    eventually(30, "pod evicted after its toleration", || async {
        pods.get("p").await.unwrap().metadata.deletion_timestamp.is_some()
    })
    .await;
    let p = pods.get("p").await.unwrap();
    let status = p.status.unwrap();
    let conditions = status.conditions.unwrap();
    let ready = conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready.status, "False");
    assert_eq!(ready.reason.as_deref(), Some("NodeNotReady"));
    // The kubelet and the node lifecycle controller write only the fields they
    // own: what the API server set on create, and the other conditions, stay.
    assert_eq!(status.qos_class.as_deref(), Some("BestEffort"));
    assert_eq!(status.phase.as_deref(), Some("Running"));
    let scheduled = conditions.iter().find(|c| c.type_ == "PodScheduled").unwrap();
    assert_eq!(scheduled.status, "True");
}

#[tokio::test]
async fn claims_are_bound_to_provisioned_volumes() {
    let sim = Sim::start_live().await;
    let c = sim.client().await;
    let pvcs: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> = Api::namespaced(c.clone(), "default");
    let pvc = serde_json::from_value(json!({"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})).unwrap();
    pvcs.create(&PostParams::default(), &pvc).await.unwrap();
    eventually(20, "bound", || async {
        pvcs.get("data").await.unwrap().status.and_then(|s| s.phase).as_deref() == Some("Bound")
    })
    .await;
    let claim = pvcs.get("data").await.unwrap();
    let pv_name = claim.spec.as_ref().unwrap().volume_name.clone().unwrap();
    let pvs: Api<k8s_openapi::api::core::v1::PersistentVolume> = Api::all(c.clone());
    let pv = pvs.get(&pv_name).await.unwrap();
    assert_eq!(pv.spec.as_ref().unwrap().access_modes, Some(vec!["ReadWriteOnce".to_string()]));
    assert_eq!(pv.spec.as_ref().unwrap().claim_ref.as_ref().unwrap().name.as_deref(), Some("data"));
    assert_eq!(claim.status.unwrap().access_modes, Some(vec!["ReadWriteOnce".to_string()]));
    pvcs.delete("data", &DeleteParams::default()).await.unwrap();
    eventually(20, "volume released and deleted", || async { pvs.get_opt(&pv_name).await.unwrap().is_none() }).await;
}

#[tokio::test]
async fn checkpoint_endpoint_answers_like_a_kubelet() {
    let sim = Sim::start_live_speed(20.0).await;
    let c = sim.client().await;
    node(&c, "cp", "4", "8Gi", json!({})).await;
    node(&c, "nocp", "4", "8Gi", json!({"metadata": {"annotations": {"sim.kube-sim.io/checkpoint": "false"}}})).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    for (name, node) in [("a", "cp"), ("b", "nocp")] {
        let p: Pod = serde_json::from_value(
            json!({"metadata": {"name": name, "annotations": {"sim.kube-sim.io/memory": "300Mi"}},
            "spec": {"nodeName": node, "containers": [{"name": "main", "image": "x"}]}}),
        )
        .unwrap();
        pods.create(&PostParams::default(), &p).await.unwrap();
    }
    eventually(30, "both running", || async {
        let l = pods.list(&ListParams::default()).await.unwrap();
        l.items.iter().filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")).count() == 2
    })
    .await;
    let post = |path: String| {
        let http = sim.http();
        let url = sim.url(&path);
        async move {
            let r = http.post(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (code, body) = post("/api/v1/nodes/cp/proxy/checkpoint/default/a/main".into()).await;
    assert_eq!(code, 200, "{body}");
    let items: Value = serde_json::from_str(&body).unwrap();
    let path = items["items"][0].as_str().unwrap().to_string();
    assert!(
        path.starts_with("/var/lib/kubelet/checkpoints/checkpoint-a_default-main-") && path.ends_with(".tar"),
        "{path}"
    );
    let recorded = sim.cluster.checkpoints();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].path, path);
    assert_eq!(recorded[0].size_bytes, 300 * 1024 * 1024, "archive size = the container's memory in use");
    assert_eq!(post("/api/v1/nodes/cp/proxy/checkpoint/default/nope/main".into()).await.0, 404);
    assert_eq!(post("/api/v1/nodes/cp/proxy/checkpoint/default/a/nope".into()).await.0, 404);
    assert_eq!(post("/api/v1/nodes/cp/proxy/checkpoint/default/b/main".into()).await.0, 404, "b runs on another node");
    let (code, body) = post("/api/v1/nodes/nocp/proxy/checkpoint/default/b/main".into()).await;
    assert_eq!(code, 500, "{body}");
    assert!(body.contains("CheckpointContainer not implemented"), "{body}");
}

#[tokio::test]
async fn metrics_follow_usage_profiles() {
    let sim = Sim::start_live_speed(20.0).await;
    let c = sim.client().await;
    node(&c, "m1", "4", "8Gi", json!({"metadata": {"annotations": {"sim.kube-sim.io/system-cpu": "100m", "sim.kube-sim.io/system-memory": "200Mi"}}})).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let p: Pod = serde_json::from_value(json!({"metadata": {"name": "load", "annotations": {"sim.kube-sim.io/cpu": "step(200m, 1500m, 20)", "sim.kube-sim.io/memory": "512Mi"}},
        "spec": {"containers": [{"name": "a", "image": "x", "resources": {"requests": {"cpu": "300m"}}}, {"name": "b", "image": "y", "resources": {"requests": {"cpu": "100m"}}}]}})).unwrap();
    pods.create(&PostParams::default(), &p).await.unwrap();
    let gvk = kube::core::GroupVersionKind::gvk("metrics.k8s.io", "v1beta1", "PodMetrics");
    let pm: Api<kube::core::DynamicObject> =
        Api::namespaced_with(c.clone(), "default", &kube::core::ApiResource::from_gvk_with_plural(&gvk, "pods"));
    let cpu_of = |o: &kube::core::DynamicObject, i: usize| -> i64 {
        let s = o.data["containers"][i]["usage"]["cpu"].as_str().unwrap().trim_end_matches('n').to_string();
        s.parse::<i64>().unwrap() / 1_000_000
    };
    eventually(30, "pod metrics before the step", || async { pm.get_opt("load").await.unwrap().is_some() }).await;
    let before = pm.get("load").await.unwrap();
    assert_eq!((cpu_of(&before, 0), cpu_of(&before, 1)), (150, 50), "200m split 3:1 by requests");
    eventually(30, "after the step at t=20s", || async {
        pm.get("load").await.ok().is_some_and(|o| cpu_of(&o, 0) == 1125)
    })
    .await;
    let gvk = kube::core::GroupVersionKind::gvk("metrics.k8s.io", "v1beta1", "NodeMetrics");
    let nm: Api<kube::core::DynamicObject> =
        Api::all_with(c.clone(), &kube::core::ApiResource::from_gvk_with_plural(&gvk, "nodes"));
    let n = nm.get("m1").await.unwrap();
    assert_eq!(n.data["usage"]["cpu"], "1600000000n", "pod 1500m + system 100m");
    assert_eq!(n.data["usage"]["memory"], format!("{}Ki", (512 + 200) * 1024));
}

#[tokio::test]
async fn statefulset_pods_come_in_order_and_daemonsets_cover_eligible_nodes() {
    let sim = Sim::start_live_speed(20.0).await;
    let c = sim.client().await;
    node(&c, "w1", "8", "16Gi", json!({"metadata": {"labels": {"role": "worker"}}})).await;
    node(&c, "w2", "8", "16Gi", json!({"metadata": {"labels": {"role": "worker"}}})).await;
    node(&c, "cp", "4", "8Gi", json!({"metadata": {"labels": {"role": "control"}}})).await;
    let sts: Api<k8s_openapi::api::apps::v1::StatefulSet> = Api::namespaced(c.clone(), "default");
    let s = serde_json::from_value(json!({"metadata": {"name": "db"}, "spec": {"replicas": 3, "serviceName": "db",
        "selector": {"matchLabels": {"app": "db"}},
        "template": {"metadata": {"labels": {"app": "db"}, "annotations": {"sim.kube-sim.io/startup-seconds": "2"}},
            "spec": {"containers": [{"name": "c", "image": "postgres:16"}]}},
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}}))
    .unwrap();
    sts.create(&PostParams::default(), &s).await.unwrap();
    // Watch creations: ordinals appear one at a time, each after the previous is Ready.
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let mut seen: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let list = pods.list(&ListParams::default().labels("app=db")).await.unwrap().items;
        let mut names: Vec<String> = list.iter().map(|p| p.name_any()).collect();
        names.sort();
        for n in names {
            if !seen.contains(&n) {
                seen.push(n);
            }
        }
        let ready = list
            .iter()
            .filter(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .count();
        assert!(list.len() <= ready + 1, "one pod at a time: {} pods, {ready} ready", list.len());
        if ready == 3 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "db-0..2 never all ready (saw {seen:?})");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen, vec!["db-0", "db-1", "db-2"], "ordinal names, in order");
    let claims: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> = Api::namespaced(c.clone(), "default");
    let mut names: Vec<String> =
        claims.list(&ListParams::default()).await.unwrap().items.iter().map(|p| p.name_any()).collect();
    names.sort();
    assert_eq!(names, vec!["data-db-0", "data-db-1", "data-db-2"]);
    sts.patch_scale("db", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 1}}))).await.unwrap();
    eventually(60, "scaled down from the highest ordinal", || async {
        let mut names: Vec<String> = pods
            .list(&ListParams::default().labels("app=db"))
            .await
            .unwrap()
            .items
            .iter()
            .map(|p| p.name_any())
            .collect();
        names.sort();
        names == vec!["db-0"]
    })
    .await;
    // A DaemonSet for workers only.
    let ds: Api<k8s_openapi::api::apps::v1::DaemonSet> = Api::namespaced(c.clone(), "default");
    let d = serde_json::from_value(json!({"metadata": {"name": "agent"}, "spec": {"selector": {"matchLabels": {"app": "agent"}},
        "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"nodeSelector": {"role": "worker"}, "containers": [{"name": "c", "image": "agent"}]}}}}))
    .unwrap();
    ds.create(&PostParams::default(), &d).await.unwrap();
    eventually(30, "one agent per worker", || async {
        let mut nodes: Vec<String> = pods
            .list(&ListParams::default().labels("app=agent"))
            .await
            .unwrap()
            .items
            .iter()
            .filter_map(|p| p.spec.as_ref().and_then(|s| s.node_name.clone()))
            .collect();
        nodes.sort();
        nodes == vec!["w1", "w2"]
    })
    .await;
    node(&c, "w3", "8", "16Gi", json!({"metadata": {"labels": {"role": "worker"}}})).await;
    eventually(30, "a new worker gets its agent", || async {
        pods.list(&ListParams::default().labels("app=agent"))
            .await
            .unwrap()
            .items
            .iter()
            .any(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some("w3"))
    })
    .await;
    eventually(30, "daemonset status", || async {
        ds.get("agent").await.unwrap().status.is_some_and(|s| s.desired_number_scheduled == 3 && s.number_ready == 3)
    })
    .await;
}
