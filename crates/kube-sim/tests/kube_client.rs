//! Conformance against the real `kube` client: CRUD on every served resource,
//! optimistic concurrency, every patch type, pagination over 10,000 pods,
//! deletion semantics, selectors, subresources, custom resources, faults, and a
//! `kube_runtime::watcher` that stays correct through a forced disconnect and a
//! 410.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::Sim;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Event, Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::events::v1::Event as EventV1;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn api_err(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn ns(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    api.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap())
        .await
        .unwrap();
}

/// Create, get, list (with a label selector), replace, delete one object of `K`.
async fn crud<K>(api: Api<K>, obj: Value)
where
    K: Resource + Clone + std::fmt::Debug + Serialize + DeserializeOwned,
    K::DynamicType: Default,
{
    let kind = K::kind(&K::DynamicType::default()).to_string();
    let obj: K = serde_json::from_value(obj).unwrap_or_else(|e| panic!("{kind}: {e}"));
    let name = obj.name_any();
    let created = api.create(&PostParams::default(), &obj).await.unwrap_or_else(|e| panic!("{kind} create: {e}"));
    assert!(created.uid().is_some(), "{kind}: uid assigned");
    assert!(created.creation_timestamp().is_some(), "{kind}: creationTimestamp assigned");
    let rv1 = created.resource_version().unwrap();
    let got = api.get(&name).await.unwrap_or_else(|e| panic!("{kind} get: {e}"));
    assert_eq!(got.resource_version(), Some(rv1.clone()));
    let listed =
        api.list(&ListParams::default().labels("crud=yes")).await.unwrap_or_else(|e| panic!("{kind} list: {e}"));
    assert_eq!(listed.items.len(), 1, "{kind}: list by label");
    let none = api.list(&ListParams::default().labels("crud=no")).await.unwrap();
    assert!(none.items.is_empty(), "{kind}: selector excludes");
    let mut changed = got.clone();
    changed.labels_mut().insert("changed".into(), "yes".into());
    let replaced =
        api.replace(&name, &PostParams::default(), &changed).await.unwrap_or_else(|e| panic!("{kind} replace: {e}"));
    assert_ne!(replaced.resource_version(), Some(rv1.clone()), "{kind}: rv moves");
    assert_eq!(replaced.labels().get("changed").map(String::as_str), Some("yes"));
    // Optimistic concurrency: the old version can no longer be written.
    let stale = api.replace(&name, &PostParams::default(), &got).await.unwrap_err();
    assert_eq!(api_err(stale).code, 409, "{kind}: stale update conflicts");
    api.delete(&name, &DeleteParams::default()).await.unwrap_or_else(|e| panic!("{kind} delete: {e}"));
    // Namespaces terminate first (their controller empties them), the rest go at once.
    common::eventually(10, &format!("{kind} gone after delete"), || {
        let api = api.clone();
        let name = name.clone();
        async move { api.get_opt(&name).await.unwrap().is_none() }
    })
    .await;
}

#[tokio::test]
async fn crud_on_every_resource() {
    let sim = Sim::start().await;
    let c = sim.client().await;
    ns(&c, "t").await;
    let l = json!({"crud": "yes"});
    let pod_spec = json!({"containers": [{"name": "c", "image": "nginx:1.27"}]});
    let template = json!({"metadata": {"labels": {"app": "w"}}, "spec": pod_spec});
    crud::<Namespace>(Api::all(c.clone()), json!({"metadata": {"name": "crud-ns", "labels": l}})).await;
    crud::<Node>(Api::all(c.clone()), json!({"metadata": {"name": "n9", "labels": l}})).await;
    crud::<Pod>(Api::namespaced(c.clone(), "t"), json!({"metadata": {"name": "p", "labels": l}, "spec": pod_spec}))
        .await;
    crud::<PersistentVolumeClaim>(
        Api::namespaced(c.clone(), "t"),
        json!({"metadata": {"name": "pvc", "labels": l}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
    )
    .await;
    crud::<PersistentVolume>(
        Api::all(c.clone()),
        json!({"metadata": {"name": "pv", "labels": l}, "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}, "hostPath": {"path": "/tmp/pv"}}}),
    )
    .await;
    crud::<Event>(
        Api::namespaced(c.clone(), "t"),
        json!({"metadata": {"name": "e", "labels": l}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": "t"}, "reason": "Test", "message": "m", "type": "Normal"}),
    )
    .await;
    crud::<EventV1>(
        Api::namespaced(c.clone(), "t"),
        json!({"metadata": {"name": "e1", "labels": l}, "regarding": {"kind": "Pod", "name": "p", "namespace": "t"}, "reason": "Test", "note": "n", "type": "Normal",
               "eventTime": "2026-11-21T08:11:25.112216Z", "action": "Testing", "reportingController": "kube-sim/test", "reportingInstance": "i"}),
    )
    .await;
    crud::<ConfigMap>(
        Api::namespaced(c.clone(), "t"),
        json!({"metadata": {"name": "cm", "labels": l}, "data": {"a": "1"}}),
    )
    .await;
    crud::<Secret>(
        Api::namespaced(c.clone(), "t"),
        json!({"metadata": {"name": "s", "labels": l}, "stringData": {"a": "1"}}),
    )
    .await;
    crud::<Service>(
        Api::namespaced(c.clone(), "t"),
        json!({"metadata": {"name": "svc", "labels": l}, "spec": {"selector": {"app": "w"}, "ports": [{"port": 80}]}}),
    )
    .await;
    crud::<ServiceAccount>(Api::namespaced(c.clone(), "t"), json!({"metadata": {"name": "sa", "labels": l}})).await;
    crud::<Lease>(
        Api::namespaced(c.clone(), "t"),
        json!({"metadata": {"name": "lease", "labels": l}, "spec": {"holderIdentity": "me"}}),
    )
    .await;
    crud::<Deployment>(
        Api::namespaced(c.clone(), "t"),
        json!({"metadata": {"name": "d", "labels": l}, "spec": {"selector": {"matchLabels": {"app": "w"}}, "template": template}}),
    )
    .await;
    crud::<ReplicaSet>(
        Api::namespaced(c.clone(), "t"),
        json!({"metadata": {"name": "rs", "labels": l}, "spec": {"selector": {"matchLabels": {"app": "w"}}, "template": template}}),
    )
    .await;
    crud::<StatefulSet>(
        Api::namespaced(c.clone(), "t"),
        json!({"metadata": {"name": "sts", "labels": l}, "spec": {"serviceName": "svc", "selector": {"matchLabels": {"app": "w"}}, "template": template}}),
    )
    .await;
    crud::<DaemonSet>(
        Api::namespaced(c.clone(), "t"),
        json!({"metadata": {"name": "ds", "labels": l}, "spec": {"selector": {"matchLabels": {"app": "w"}}, "template": template}}),
    )
    .await;
    crud::<PodDisruptionBudget>(
        Api::namespaced(c.clone(), "t"),
        json!({"metadata": {"name": "pdb", "labels": l}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "w"}}}}),
    )
    .await;
    crud::<PriorityClass>(Api::all(c.clone()), json!({"metadata": {"name": "pc", "labels": l}, "value": 1000})).await;
}

#[tokio::test]
async fn events_written_in_one_version_are_read_in_the_other() {
    let sim = Sim::start().await;
    let c = sim.client().await;
    let v1: Api<EventV1> = Api::namespaced(c.clone(), "default");
    let ev: EventV1 = serde_json::from_value(json!({"metadata": {"name": "x.1"}, "regarding": {"kind": "Pod", "name": "p", "namespace": "default", "uid": "u1"},
        "reason": "Migrated", "note": "moved to n2", "type": "Normal", "eventTime": "2026-11-21T08:11:25.112216Z",
        "action": "Migrate", "reportingController": "sdi-migration", "reportingInstance": "sdi-migration-0"}))
    .unwrap();
    v1.create(&PostParams::default(), &ev).await.unwrap();
    let core: Api<Event> = Api::namespaced(c.clone(), "default");
    let seen = core.list(&ListParams::default().fields("involvedObject.name=p,involvedObject.uid=u1")).await.unwrap();
    assert_eq!(seen.items.len(), 1);
    assert_eq!(seen.items[0].message.as_deref(), Some("moved to n2"));
    assert_eq!(seen.items[0].reporting_component.as_deref(), Some("sdi-migration"));
    let back = v1.list(&ListParams::default().fields("regarding.name=p")).await.unwrap();
    assert_eq!(back.items[0].note.as_deref(), Some("moved to n2"));
}

#[tokio::test]
async fn status_is_kept_apart_from_spec_and_generation_tracks_spec() {
    let sim = Sim::start().await;
    let c = sim.client().await;
    let api: Api<Deployment> = Api::namespaced(c.clone(), "default");
    let d: Deployment = serde_json::from_value(
        json!({"metadata": {"name": "d"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "w"}},
        "template": {"metadata": {"labels": {"app": "w"}}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}}},
        "status": {"replicas": 7}}),
    )
    .unwrap();
    let d = api.create(&PostParams::default(), &d).await.unwrap();
    assert_eq!(d.metadata.generation, Some(1));
    assert!(d.status.as_ref().and_then(|s| s.replicas).is_none(), "status is not set on create");
    // Status writes do not touch spec or generation.
    let s = api
        .patch_status(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}, "status": {"replicas": 1, "observedGeneration": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(s.spec.as_ref().unwrap().replicas, Some(1));
    assert_eq!(s.status.as_ref().unwrap().replicas, Some(1));
    assert_eq!(s.metadata.generation, Some(1));
    // Spec writes bump generation and do not touch status.
    let u = api
        .patch("d", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 3}, "status": {"replicas": 9}})))
        .await
        .unwrap();
    assert_eq!(u.metadata.generation, Some(2));
    assert_eq!(u.status.as_ref().unwrap().replicas, Some(1));
    // Metadata-only writes do not bump generation.
    let m = api
        .patch("d", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})))
        .await
        .unwrap();
    assert_eq!(m.metadata.generation, Some(2));
    // The scale subresource.
    let scale = api.get_scale("d").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(3));
    assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=w"));
    api.patch_scale("d", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 4}}))).await.unwrap();
    assert_eq!(api.get("d").await.unwrap().spec.unwrap().replicas, Some(4));
    // A no-op write does not produce a new resourceVersion.
    let before = api.get("d").await.unwrap();
    let after = api.replace("d", &PostParams::default(), &before).await.unwrap();
    assert_eq!(before.resource_version(), after.resource_version());
}

#[tokio::test]
async fn every_patch_type() {
    let sim = Sim::start().await;
    let c = sim.client().await;
    let api: Api<Deployment> = Api::namespaced(c.clone(), "default");
    let d: Deployment = serde_json::from_value(json!({"metadata": {"name": "d", "labels": {"a": "1", "b": "2"}},
        "spec": {"selector": {"matchLabels": {"app": "w"}}, "template": {"metadata": {"labels": {"app": "w"}},
        "spec": {"containers": [{"name": "main", "image": "x:1", "env": [{"name": "A", "value": "1"}]}, {"name": "side", "image": "y:1"}]}}}}))
    .unwrap();
    api.create(&PostParams::default(), &d).await.unwrap();
    // Merge patch: null deletes, maps merge, lists replace.
    let m = api
        .patch("d", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"a": null, "c": "3"}}})))
        .await
        .unwrap();
    assert_eq!(m.labels(), &BTreeMap::from([("b".to_string(), "2".to_string()), ("c".to_string(), "3".to_string())]));
    // Strategic merge patch: containers merge by name, env by name.
    let s = api
        .patch(
            "d",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "x:2", "env": [{"name": "B", "value": "2"}]}]}}}})),
        )
        .await
        .unwrap();
    let cs = s.spec.unwrap().template.spec.unwrap().containers;
    assert_eq!(cs.len(), 2, "the sidecar survives a strategic merge");
    assert_eq!(cs[0].image.as_deref(), Some("x:2"));
    // Upstream puts patched elements that are new before the server-only ones.
    assert_eq!(cs[0].env.as_ref().unwrap().iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["B", "A"]);
    // JSON patch, including a failing test operation.
    let p: json_patch::Patch =
        serde_json::from_value(json!([{"op": "replace", "path": "/spec/replicas", "value": 5}])).unwrap();
    let j = api.patch("d", &PatchParams::default(), &Patch::Json::<()>(p)).await.unwrap();
    assert_eq!(j.spec.unwrap().replicas, Some(5));
    let bad: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/spec/replicas", "value": 6}])).unwrap();
    let e = api.patch("d", &PatchParams::default(), &Patch::Json::<()>(bad)).await.unwrap_err();
    assert_eq!(api_err(e).code, 422);
    // Server-side apply: create-or-merge with ownership; conflicts without force.
    let cm_api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let applied = cm_api
        .patch("cfg", &PatchParams::apply("tool-a"), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"x": "1", "y": "1"}})))
        .await
        .unwrap();
    assert_eq!(applied.data.as_ref().unwrap()["x"], "1");
    let mf = applied.metadata.managed_fields.as_ref().unwrap();
    assert_eq!((mf[0].manager.as_deref(), mf[0].operation.as_deref()), (Some("tool-a"), Some("Apply")));
    let conflict = cm_api
        .patch(
            "cfg",
            &PatchParams::apply("tool-b"),
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"x": "2"}}),
            ),
        )
        .await
        .unwrap_err();
    let st = api_err(conflict);
    assert_eq!(st.code, 409);
    assert!(st.message.contains("conflict with \"tool-a\""), "{}", st.message);
    let forced = cm_api
        .patch(
            "cfg",
            &PatchParams::apply("tool-b").force(),
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"x": "2"}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.as_ref().unwrap()["x"], "2");
    // tool-a re-applies without y: y is removed, since tool-a owned it alone.
    let again = cm_api
        .patch(
            "cfg",
            &PatchParams::apply("tool-a"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {}})),
        )
        .await
        .unwrap();
    let data = again.data.unwrap_or_default();
    assert_eq!(data.get("x").map(String::as_str), Some("2"), "x is tool-b's now");
    assert!(!data.contains_key("y"), "y was removed: {data:?}");
    // A patch carrying a stale resourceVersion conflicts.
    let e = cm_api
        .patch(
            "cfg",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"resourceVersion": "1"}, "data": {"z": "1"}})),
        )
        .await
        .unwrap_err();
    assert_eq!(api_err(e).code, 409);
}

#[tokio::test]
async fn pagination_over_ten_thousand_pods_is_consistent() {
    let sim = Sim::start().await;
    let pods = sim.cluster.typed::<Pod>(Some("default"));
    for i in 0..10_000 {
        let p: Pod = serde_json::from_value(
            json!({"metadata": {"name": format!("p-{i:05}"), "labels": {"i": (i % 2).to_string()}},
            "spec": {"containers": [{"name": "c", "image": "x"}]}}),
        )
        .unwrap();
        pods.create(&p).unwrap();
    }
    let c = sim.client().await;
    let api: Api<Pod> = Api::namespaced(c.clone(), "default");
    let mut names = Vec::new();
    let mut cont: Option<String> = None;
    let mut first_rv = None;
    let mut pages = 0;
    loop {
        let mut lp = ListParams::default().limit(500);
        if let Some(c) = &cont {
            lp = lp.continue_token(c);
        }
        let page = api.list(&lp).await.unwrap();
        pages += 1;
        if first_rv.is_none() {
            first_rv = page.metadata.resource_version.clone();
            // Changes after the first page must not show up in later pages.
            pods.delete("p-09999", &Default::default()).unwrap();
            let late: Pod = serde_json::from_value(
                json!({"metadata": {"name": "p-99999"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}),
            )
            .unwrap();
            pods.create(&late).unwrap();
        }
        names.extend(page.items.iter().map(|p| p.name_any()));
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => cont = Some(c),
            _ => break,
        }
    }
    assert_eq!(pages, 20);
    assert_eq!(names.len(), 10_000);
    assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates");
    assert!(names.contains(&"p-09999".to_string()) && !names.contains(&"p-99999".to_string()), "a consistent snapshot");
    // Selectors with pagination.
    let odd = api.list(&ListParams::default().labels("i=1").limit(1000)).await.unwrap();
    assert_eq!(odd.items.len(), 1000);
    assert!(odd.metadata.remaining_item_count.is_none(), "no count with a selector, like upstream");
    let all = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(all.items.len(), 10_000);
}

#[tokio::test]
async fn deletion_honours_grace_finalizers_preconditions_and_propagation() {
    let sim = Sim::start().await;
    let c = sim.client().await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let mk = |name: &str, node: Option<&str>, fin: bool| -> Pod {
        let mut v = json!({"metadata": {"name": name, "labels": {"grp": "del"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}});
        if let Some(n) = node {
            v["spec"]["nodeName"] = json!(n);
        }
        if fin {
            v["metadata"]["finalizers"] = json!(["example.com/hold"]);
        }
        serde_json::from_value(v).unwrap()
    };
    // Unscheduled pods go at once; scheduled ones terminate gracefully.
    pods.create(&PostParams::default(), &mk("free", None, false)).await.unwrap();
    let r = pods.delete("free", &DeleteParams::default()).await.unwrap();
    assert!(r.is_left(), "pods return the deleted object");
    assert_eq!(api_err(pods.get("free").await.unwrap_err()).code, 404);
    pods.create(&PostParams::default(), &mk("bound", Some("n1"), false)).await.unwrap();
    pods.delete("bound", &DeleteParams::default()).await.unwrap();
    let t = pods.get("bound").await.unwrap();
    assert!(t.metadata.deletion_timestamp.is_some());
    assert_eq!(t.metadata.deletion_grace_period_seconds, Some(30));
    // A shorter grace period shortens it; zero removes it.
    pods.delete("bound", &DeleteParams { grace_period_seconds: Some(5), ..Default::default() }).await.unwrap();
    assert_eq!(pods.get("bound").await.unwrap().metadata.deletion_grace_period_seconds, Some(5));
    pods.delete("bound", &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await.unwrap();
    assert_eq!(api_err(pods.get("bound").await.unwrap_err()).code, 404);
    // Finalizers hold the object until removed; no new finalizers while deleting.
    pods.create(&PostParams::default(), &mk("held", None, true)).await.unwrap();
    pods.delete("held", &DeleteParams::default()).await.unwrap();
    let held = pods.get("held").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    let e = pods
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/hold", "x/y"]}})),
        )
        .await
        .unwrap_err();
    assert_eq!(api_err(e).code, 422);
    pods.patch("held", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}})))
        .await
        .unwrap();
    assert_eq!(api_err(pods.get("held").await.unwrap_err()).code, 404);
    // Preconditions.
    let p = pods.create(&PostParams::default(), &mk("pre", None, false)).await.unwrap();
    let e = pods
        .delete(
            "pre",
            &DeleteParams {
                preconditions: Some(kube::api::Preconditions { uid: Some("nope".into()), resource_version: None }),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(api_err(e).code, 409);
    pods.delete(
        "pre",
        &DeleteParams {
            preconditions: Some(kube::api::Preconditions { uid: p.uid(), resource_version: p.resource_version() }),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // Propagation policies become the garbage collector's finalizers.
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    cms.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "o"}})).unwrap())
        .await
        .unwrap();
    let r = cms.delete("o", &DeleteParams::orphan()).await.unwrap();
    let pending = r.left().expect("orphan deletion is pending");
    assert_eq!(pending.metadata.finalizers, Some(vec!["orphan".to_string()]));
    // deletecollection with a selector.
    for i in 0..3 {
        pods.create(&PostParams::default(), &mk(&format!("dc-{i}"), None, false)).await.unwrap();
    }
    pods.delete_collection(&DeleteParams::default(), &ListParams::default().labels("grp=del")).await.unwrap();
    assert!(pods.list(&ListParams::default().labels("grp=del")).await.unwrap().items.is_empty());
}

#[tokio::test]
async fn selectors_filter_lists_and_bad_ones_are_rejected() {
    let sim = Sim::start().await;
    let c = sim.client().await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    for (name, node, env) in [("a", "n1", "prod"), ("b", "n2", "dev"), ("c", "n1", "dev")] {
        let p: Pod = serde_json::from_value(json!({"metadata": {"name": name, "labels": {"env": env}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x"}]}}))
        .unwrap();
        pods.create(&PostParams::default(), &p).await.unwrap();
    }
    let names = |l: kube::core::ObjectList<Pod>| l.items.iter().map(|p| p.name_any()).collect::<Vec<_>>();
    assert_eq!(names(pods.list(&ListParams::default().fields("spec.nodeName=n1")).await.unwrap()), ["a", "c"]);
    assert_eq!(
        names(pods.list(&ListParams::default().fields("spec.nodeName=n1,metadata.name!=a")).await.unwrap()),
        ["c"]
    );
    assert_eq!(
        names(pods.list(&ListParams::default().fields("status.phase=Pending").labels("env in (dev)")).await.unwrap()),
        ["b", "c"]
    );
    assert_eq!(names(pods.list(&ListParams::default().labels("env notin (dev),!missing")).await.unwrap()), ["a"]);
    let e = pods.list(&ListParams::default().fields("spec.bogus=1")).await.unwrap_err();
    let st = api_err(e);
    assert_eq!((st.code, st.message.as_str()), (400, "field label not supported: spec.bogus"));
    let e = pods.list(&ListParams::default().labels("env in dev")).await.unwrap_err();
    assert_eq!(api_err(e).code, 400);
    // All namespaces.
    let all: Api<Pod> = Api::all(c.clone());
    assert_eq!(all.list(&ListParams::default()).await.unwrap().items.len(), 3);
}

#[tokio::test]
async fn binding_and_eviction_subresources() {
    let sim = Sim::start().await;
    let c = sim.client().await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let p: Pod = serde_json::from_value(
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}),
    )
    .unwrap();
    pods.create(&PostParams::default(), &p).await.unwrap();
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n1"}});
    let _: Value = pods.create_subresource("binding", "p", &PostParams::default(), &binding).await.unwrap();
    let bound = pods.get("p").await.unwrap();
    assert_eq!(bound.spec.unwrap().node_name.as_deref(), Some("n1"));
    assert!(bound.status.unwrap().conditions.unwrap().iter().any(|c| c.type_ == "PodScheduled" && c.status == "True"));
    let again =
        pods.create_subresource::<Value, Value>("binding", "p", &PostParams::default(), &binding).await.unwrap_err();
    assert_eq!(api_err(again).code, 409);
    pods.evict("p", &Default::default()).await.unwrap();
    let e = pods.evict("nope", &Default::default()).await.unwrap_err();
    assert_eq!(api_err(e).code, 404);
}

#[tokio::test]
async fn custom_resources_are_served_from_their_definitions() {
    let sim = Sim::start().await;
    let c = sim.client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({"metadata": {"name": "robots.sdi.keti.dev"},
        "spec": {"group": "sdi.keti.dev", "scope": "Namespaced", "names": {"plural": "robots", "singular": "robot", "kind": "Robot", "shortNames": ["rb"]},
        "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
            "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}}))
    .unwrap();
    let created = crds.create(&PostParams::default(), &crd).await.unwrap();
    let conds = created.status.unwrap().conditions.unwrap();
    assert!(conds.iter().any(|c| c.type_ == "Established" && c.status == "True"));
    let gvk = GroupVersionKind::gvk("sdi.keti.dev", "v1", "Robot");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "robots");
    let robots: Api<DynamicObject> = Api::namespaced_with(c.clone(), "default", &ar);
    let r: DynamicObject = serde_json::from_value(
        json!({"apiVersion": "sdi.keti.dev/v1", "kind": "Robot", "metadata": {"name": "tb3"}, "spec": {"arm": true}}),
    )
    .unwrap();
    let r = robots.create(&PostParams::default(), &r).await.unwrap();
    assert_eq!(r.metadata.generation, Some(1));
    assert_eq!(r.data["spec"]["arm"], true);
    let e = robots
        .patch("tb3", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"arm": false}})))
        .await
        .unwrap_err();
    assert_eq!(api_err(e).code, 415, "no strategic merge patch for custom resources, as upstream");
    robots.patch("tb3", &PatchParams::default(), &Patch::Merge(json!({"spec": {"arm": false}}))).await.unwrap();
    let st = robots
        .patch_status("tb3", &PatchParams::default(), &Patch::Merge(json!({"status": {"ok": true}})))
        .await
        .unwrap();
    assert_eq!(st.metadata.generation, Some(2));
    assert_eq!(st.data["status"]["ok"], true);
    let discovery = kube::discovery::Discovery::new(c.clone()).run().await.unwrap();
    assert!(discovery.groups().any(|g| g.name() == "sdi.keti.dev"));
    crds.delete("robots.sdi.keti.dev", &DeleteParams::default()).await.unwrap();
    let (code, _) = sim.get("/apis/sdi.keti.dev/v1/namespaces/default/robots").await;
    assert_eq!(code, 404, "served no more once the definition is gone");
}

#[tokio::test]
async fn metrics_api_is_read_only() {
    let sim = Sim::start().await;
    let c = sim.client().await;
    let gvk = GroupVersionKind::gvk("metrics.k8s.io", "v1beta1", "NodeMetrics");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "nodes");
    let api: Api<DynamicObject> = Api::all_with(c.clone(), &ar);
    assert!(api.list(&ListParams::default()).await.unwrap().items.is_empty());
    let obj: DynamicObject = serde_json::from_value(
        json!({"apiVersion": "metrics.k8s.io/v1beta1", "kind": "NodeMetrics", "metadata": {"name": "n1"}}),
    )
    .unwrap();
    let e = api.create(&PostParams::default(), &obj).await.unwrap_err();
    assert_eq!(api_err(e).code, 405);
}

#[tokio::test]
async fn injected_faults_reach_the_client() {
    let sim = Sim::start().await;
    let c = sim.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let cfg = json!({"rules": [{"verbs": ["list"], "resources": ["configmaps"], "rate": 1.0, "error": {"type": "tooManyRequests", "retryAfterSeconds": 2}, "remaining": 1},
                               {"verbs": ["get"], "resources": ["configmaps"], "rate": 1.0, "error": {"type": "serverError"}, "remaining": 1}]});
    let (code, _) = sim.send(reqwest::Method::PUT, "/_sim/faults", "application/json", cfg.to_string()).await;
    assert_eq!(code, 200);
    let r = sim.http().get(sim.url("/api/v1/namespaces/default/configmaps")).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "2");
    let e = cms.get("kube-root-ca.crt").await.unwrap_err();
    assert_eq!(api_err(e).code, 500);
    // Exhausted: requests succeed again.
    assert!(cms.get("kube-root-ca.crt").await.is_ok());
    assert!(cms.list(&ListParams::default()).await.is_ok());
}

#[tokio::test]
async fn watcher_stays_correct_through_disconnects_and_expiry() {
    use kube::runtime::{WatchStreamExt, reflector, watcher};
    let sim = Sim::start().await;
    let c = sim.client().await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "w");
    ns(&c, "w").await;
    let (reader, writer) = reflector::store::<ConfigMap>();
    let stream =
        reflector(writer, watcher(api.clone(), watcher::Config::default())).default_backoff().applied_objects();
    let handle = tokio::spawn(async move {
        futures::pin_mut!(stream);
        // Errors (the 410) are reported and the watcher recovers by re-listing.
        while stream.next().await.is_some() {}
    });
    let direct = sim.cluster.typed::<ConfigMap>(Some("w"));
    let wait_for = |want: Vec<String>| {
        let reader = reader.clone();
        async move {
            common::eventually(20, &format!("reflector holds {want:?}"), || {
                let reader = reader.clone();
                let want = want.clone();
                async move {
                    let mut have: Vec<String> =
                        reader.state().iter().map(|c| c.name_any()).filter(|n| n.starts_with("cm-")).collect();
                    have.sort();
                    have == want
                }
            })
            .await;
        }
    };
    let cm = |name: &str| -> ConfigMap { serde_json::from_value(json!({"metadata": {"name": name}})).unwrap() };
    direct.create(&cm("cm-a")).unwrap();
    direct.create(&cm("cm-b")).unwrap();
    wait_for(vec!["cm-a".into(), "cm-b".into()]).await;
    // Forced disconnect: changes made while the watch is down are not lost.
    sim.cluster.api().disconnect_watches();
    direct.delete("cm-a", &Default::default()).unwrap();
    direct.create(&cm("cm-c")).unwrap();
    wait_for(vec!["cm-b".into(), "cm-c".into()]).await;
    // Expiry: compact history, then disconnect; the re-watch from the old
    // resourceVersion gets 410 and the watcher re-lists.
    direct.create(&cm("cm-d")).unwrap();
    sim.cluster.api().store.compact();
    sim.cluster.api().disconnect_watches();
    direct.delete("cm-b", &Default::default()).unwrap();
    wait_for(vec!["cm-c".into(), "cm-d".into()]).await;
    handle.abort();
}

#[tokio::test]
async fn watch_from_a_compacted_version_gets_410_in_stream() {
    let sim = Sim::start().await;
    sim.cluster.api().store.compact();
    let mut resp = sim
        .http()
        .get(sim.url("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "upstream reports expiry inside the stream");
    // One event is one line; under load it may arrive in more than one chunk.
    let mut line = Vec::new();
    while !line.ends_with(b"\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(30), resp.chunk()).await.unwrap().unwrap();
        match chunk {
            Some(c) => line.extend_from_slice(&c),
            None => break,
        }
    }
    let ev: Value = serde_json::from_slice(line.strip_suffix(b"\n").unwrap_or(&line)).unwrap();
    assert_eq!(ev["type"], "ERROR");
    assert_eq!(ev["object"]["code"], 410);
    assert_eq!(ev["object"]["reason"], "Expired");
}

#[tokio::test]
async fn concurrent_writers_and_watchers_see_one_ordered_history() {
    let sim = Sim::start().await;
    let c = sim.client().await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let start_rv = sim.cluster.api().store.current_rv();
    let mut watchers = Vec::new();
    for _ in 0..4 {
        let api = api.clone();
        watchers.push(tokio::spawn(async move {
            let wp = kube::api::WatchParams::default().timeout(20);
            let mut s = api.watch(&wp, &start_rv.to_string()).await.unwrap().boxed();
            let mut rvs = Vec::new();
            while rvs.len() < 200 {
                match tokio::time::timeout(Duration::from_secs(20), s.try_next()).await {
                    Ok(Ok(Some(kube::api::WatchEvent::Added(cm)))) => {
                        rvs.push(cm.resource_version().unwrap().parse::<u64>().unwrap())
                    }
                    Ok(Ok(Some(_))) => {}
                    other => panic!("watch ended early: {other:?}"),
                }
            }
            rvs
        }));
    }
    let mut writers = Vec::new();
    for w in 0..8 {
        let api = api.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..25 {
                let cm: ConfigMap =
                    serde_json::from_value(json!({"metadata": {"name": format!("c-{w}-{i}")}})).unwrap();
                api.create(&PostParams::default(), &cm).await.unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    for w in watchers {
        let rvs = w.await.unwrap();
        assert_eq!(rvs.len(), 200);
        assert!(rvs.windows(2).all(|p| p[0] < p[1]), "strictly increasing resourceVersions");
    }
}

#[tokio::test]
async fn a_watch_sees_objects_leave_and_enter_its_selector() {
    let sim = Sim::start().await;
    let c = sim.client().await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "s", "labels": {"pick": "yes"}}})).unwrap(),
    )
    .await
    .unwrap();
    let rv = api.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();
    let mut s =
        api.watch(&kube::api::WatchParams::default().labels("pick=yes").timeout(10), &rv).await.unwrap().boxed();
    api.patch("s", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"pick": "no"}}})))
        .await
        .unwrap();
    api.patch("s", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"pick": "yes"}}})))
        .await
        .unwrap();
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        match s.try_next().await.unwrap() {
            Some(kube::api::WatchEvent::Deleted(_)) => kinds.push("DELETED"),
            Some(kube::api::WatchEvent::Added(_)) => kinds.push("ADDED"),
            Some(other) => panic!("unexpected {other:?}"),
            None => panic!("watch ended"),
        }
    }
    assert_eq!(kinds, ["DELETED", "ADDED"]);
}

#[tokio::test]
async fn namespaces_terminate_and_take_their_content() {
    let sim = Sim::start().await;
    let c = sim.client().await;
    ns(&c, "gone").await;
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "gone");
    cms.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap())
        .await
        .unwrap();
    let nss: Api<Namespace> = Api::all(c.clone());
    let d = nss.delete("gone", &DeleteParams::default()).await.unwrap();
    let terminating = d.left().expect("namespace deletion is pending");
    assert_eq!(terminating.status.unwrap().phase.as_deref(), Some("Terminating"));
    let e =
        cms.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "y"}})).unwrap()).await;
    if let Err(e) = e {
        assert_eq!(api_err(e).code, 403, "no new content in a terminating namespace");
    }
    let nss2 = nss.clone();
    common::eventually(10, "namespace removed", || {
        let nss = nss2.clone();
        async move { nss.get_opt("gone").await.unwrap().is_none() }
    })
    .await;
    let e = nss.delete("default", &DeleteParams::default()).await.unwrap_err();
    assert_eq!(api_err(e).code, 403);
    let e = cms
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "z"}})).unwrap())
        .await
        .unwrap_err();
    assert_eq!(api_err(e).code, 404);
}
