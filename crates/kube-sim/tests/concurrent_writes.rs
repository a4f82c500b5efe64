//! Writes decide outside the store's lock and commit only if what they read
//! is unchanged (an update: its object's version; a create: the resources
//! admission read): writers racing on one object must neither lose a write
//! nor commit one twice, a stale resourceVersion still conflicts, and a create
//! never commits on admission state that has changed.

use std::sync::Arc;

use kube_sim::apiserver::{ApiServer, ServerConfig, WriteOptions};
use kube_sim::store::{EventKind, Since};
use serde_json::json;

const WRITERS: usize = 4;
const EACH: usize = 150;

#[test]
fn racing_updates_of_one_object_each_commit_exactly_once() {
    let api: Arc<ApiServer> = ApiServer::new(ServerConfig::default(), kube_sim::Clock::default());
    let pods = api.res("", "pods");
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "x"}]}});
    api.create(&pods, Some("default"), pod, &WriteOptions::manager("test")).expect("created");
    let start = api.store.current_rv();
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let (api, pods) = (&api, &pods);
            s.spawn(move || {
                for i in 0..EACH {
                    // Half write status, half the main resource; no resourceVersion,
                    // so each must land on whatever version is current.
                    let written = if i % 2 == 0 {
                        let body = json!({"metadata": {"name": "p", "namespace": "default"},
                            "status": {"phase": "Running", "message": format!("{w}-{i}")}});
                        api.update(pods, Some("default"), "p", Some("status"), body, &WriteOptions::manager("kubelet"))
                    } else {
                        let mut cur = api.get_value(pods, Some("default"), "p").expect("read");
                        cur["metadata"]["labels"] = json!({"writer": w.to_string(), "n": i.to_string()});
                        cur["metadata"].as_object_mut().expect("metadata").remove("resourceVersion");
                        api.update(pods, Some("default"), "p", None, cur, &WriteOptions::manager(&format!("w{w}")))
                    };
                    written.unwrap_or_else(|e| panic!("writer {w} write {i}: {e}"));
                }
            });
        }
    });
    // Every write changed the object, so each committed exactly one new version.
    assert_eq!(api.store.current_rv(), start + (WRITERS * EACH) as u64);
    let last = api.get_value(&pods, Some("default"), "p").expect("read");
    assert_eq!(last["metadata"]["resourceVersion"], json!((start + (WRITERS * EACH) as u64).to_string()));
    assert_eq!(last["status"]["phase"], "Running");
    // Status writes never touched the labels, nor label writes the status.
    let message = last["status"]["message"].as_str().expect("a message");
    let (w, i) = message.split_once('-').expect("writer-write");
    let (w, i): (usize, usize) = (w.parse().expect("writer"), i.parse().expect("write"));
    assert!(w < WRITERS && i < EACH && i % 2 == 0, "{message} is not a status someone wrote");
    assert!(last["metadata"]["labels"]["writer"].is_string(), "{last:#}");

    // No write was decided on a version another had already replaced: from
    // one committed version to the next exactly one side changed (a status
    // write decided on a stale read would also turn the labels back, and a
    // label write the status).
    let at = |rv: u64| -> serde_json::Value {
        let snap = api.store.snapshot_at(&pods.storage, rv).expect("history kept");
        let body = &snap.iter_from(None).next().expect("the pod").body();
        serde_json::from_slice(body).expect("stored JSON")
    };
    let mut before = at(start);
    for rv in start + 1..=start + (WRITERS * EACH) as u64 {
        let now = at(rv);
        // (The server's own qosClass comes back with a main-resource write.)
        let status_changed = now["status"]["message"] != before["status"]["message"];
        let labels_changed = now["metadata"]["labels"] != before["metadata"]["labels"];
        assert!(
            status_changed != labels_changed,
            "version {rv} changed status: {status_changed}, labels: {labels_changed}\nbefore {}\nnow {}",
            before["status"],
            now["status"]
        );
        before = now;
    }

    // A write that names a version no longer current is a conflict.
    let stale = json!({"metadata": {"name": "p", "namespace": "default", "resourceVersion": start.to_string()},
        "status": {"phase": "Failed"}});
    let err = api
        .update(&pods, Some("default"), "p", Some("status"), stale, &WriteOptions::manager("kubelet"))
        .expect_err("stale");
    assert_eq!(err.code, 409);
}

/// A status write replaces status only, records its writer's ownership under
/// the `status` subresource (taking a field from its previous owner), and an
/// identical one is no write at all.
#[test]
fn status_writes_change_status_only_and_record_who_owns_it() {
    let api: Arc<ApiServer> = ApiServer::new(ServerConfig::default(), kube_sim::Clock::default());
    let pods = api.res("", "pods");
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default",
        "labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}});
    let created = api.create(&pods, Some("default"), pod, &WriteOptions::manager("maker")).expect("created").object;
    let status = |manager: &str, status: serde_json::Value| {
        // The body's spec and labels are ignored by a status write.
        let body = json!({"metadata": {"name": "p", "namespace": "default", "labels": {"app": "changed"}},
            "spec": {"containers": [{"name": "c", "image": "y"}]}, "status": status});
        api.update(&pods, Some("default"), "p", Some("status"), body, &WriteOptions::manager(manager))
            .expect("status written")
            .object
    };
    let owners = |o: &serde_json::Value| -> Vec<(String, String, Vec<String>)> {
        o["metadata"]["managedFields"]
            .as_array()
            .expect("managedFields")
            .iter()
            .map(|e| {
                let fields =
                    e["fieldsV1"]["f:status"].as_object().map(|f| f.keys().cloned().collect()).unwrap_or_default();
                (e["manager"].as_str().unwrap_or("").into(), e["subresource"].as_str().unwrap_or("").into(), fields)
            })
            .collect()
    };

    let first = status("kubelet", json!({"phase": "Pending", "message": "m"}));
    assert_eq!(first["spec"], created["spec"], "spec untouched");
    assert_eq!(first["metadata"]["labels"], json!({"app": "a"}), "labels untouched");
    assert_eq!(first["status"], json!({"phase": "Pending", "message": "m"}));
    // The phase was already Pending (set on create): only the message is the kubelet's.
    let o = owners(&first);
    assert!(o.contains(&("kubelet".into(), "status".into(), vec!["f:message".into()])), "{o:?}");

    let same = status("kubelet", json!({"phase": "Pending", "message": "m"}));
    assert_eq!(same["metadata"]["resourceVersion"], first["metadata"]["resourceVersion"], "identical: no write");

    // Another writer changes the phase: it owns it now, the kubelet keeps the message.
    let second = status("other", json!({"phase": "Running", "message": "m"}));
    assert_ne!(second["metadata"]["resourceVersion"], first["metadata"]["resourceVersion"]);
    let o = owners(&second);
    assert!(o.contains(&("kubelet".into(), "status".into(), vec!["f:message".into()])), "{o:?}");
    assert!(o.contains(&("other".into(), "status".into(), vec!["f:phase".into()])), "{o:?}");
    assert!(o.iter().any(|(m, sub, _)| m == "maker" && sub.is_empty()), "the creator's entry stays: {o:?}");
}

/// A merged status write sets the fields it names, removes those it sets to
/// null, keeps every other stored one, and is conditional on the version.
#[test]
fn a_merged_status_write_keeps_the_fields_it_does_not_name() {
    let api: Arc<ApiServer> = ApiServer::new(ServerConfig::default(), kube_sim::Clock::default());
    let pods = api.res("", "pods");
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "x"}]}});
    let opts = WriteOptions::manager("writer");
    let created = api.create(&pods, Some("default"), pod, &opts).expect("created").object;
    assert_eq!(created["status"]["qosClass"], "BestEffort", "defaulted on create");
    let mut status = created["status"].clone();
    status["nominatedNodeName"] = json!("n1");
    status["message"] = json!("waiting");
    let body = json!({"metadata": {"name": "p", "namespace": "default"}, "status": status});
    api.update(&pods, Some("default"), "p", Some("status"), body, &opts).expect("status written");
    let rv = |o: &serde_json::Value| o["metadata"]["resourceVersion"].as_str().unwrap_or_default().to_string();
    let read = || api.get(&pods, Some("default"), "p").expect("read").to_value("v1", "Pod");
    let cur = read();
    let merge = |status: serde_json::Value, rv: String| {
        let body = json!({"metadata": {"name": "p", "namespace": "default", "resourceVersion": rv}, "status": status});
        api.merge_status(&pods, Some("default"), "p", body, &WriteOptions::manager("kubelet"))
    };
    let merged =
        merge(json!({"phase": "Running", "message": null, "podIP": "10.0.0.9"}), rv(&cur)).expect("merged").object;
    assert_eq!(
        merged["status"],
        json!({"phase": "Running", "qosClass": "BestEffort", "nominatedNodeName": "n1", "podIP": "10.0.0.9"})
    );
    let stale = merge(json!({"phase": "Failed"}), rv(&cur)).expect_err("written against an old version");
    assert_eq!(stale.code, 409);
    assert_eq!(read()["status"]["phase"], "Running");
}

/// Creates also decide outside the lock, reading what admission needs. A pod
/// takes its priority from its PriorityClass; while creators race, the class
/// is deleted and created again with a new value (a class's value is
/// immutable). Each pod must carry the value of the class that existed when it
/// committed, and none may commit while the class did not exist.
#[test]
fn racing_creates_see_the_admission_state_they_commit_with() {
    let api: Arc<ApiServer> = ApiServer::new(ServerConfig::default(), kube_sim::Clock::default());
    let (pods, classes) = (api.res("", "pods"), api.res("scheduling.k8s.io", "priorityclasses"));
    let class = |value: i64| json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "racing"}, "value": value});
    let opts = WriteOptions::manager("test");
    let rv_of = |v: &serde_json::Value| -> u64 {
        v["metadata"]["resourceVersion"].as_str().and_then(|s| s.parse().ok()).expect("a resourceVersion")
    };
    api.create(&classes, None, class(0), &opts).expect("class");
    // Creators go on until the class stops changing, so some commit while it
    // stands (however the threads happen to be scheduled) and some while it races.
    let settled = std::sync::atomic::AtomicBool::new(false);
    let created: Vec<(u64, i64)> = std::thread::scope(|s| {
        let creators: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (api, pods, settled) = (&api, &pods, &settled);
                s.spawn(move || {
                    let mut mine = Vec::new();
                    let mut last = false;
                    for i in 0.. {
                        if i >= EACH && last {
                            break;
                        }
                        last = settled.load(std::sync::atomic::Ordering::Acquire);
                        let pod = json!({"apiVersion": "v1", "kind": "Pod",
                            "metadata": {"name": format!("p-{w}-{i}"), "namespace": "default"},
                            "spec": {"priorityClassName": "racing", "containers": [{"name": "c", "image": "x"}]}});
                        match api.create(pods, Some("default"), pod, &WriteOptions::manager("test")) {
                            Ok(w) => mine
                                .push((rv_of(&w.object), w.object["spec"]["priority"].as_i64().expect("a priority"))),
                            Err(e) => assert_eq!(e.code, 403, "only a missing class may refuse a pod: {e}"),
                        }
                    }
                    mine
                })
            })
            .collect();
        for value in 1..=40 {
            api.delete(&classes, None, "racing", &Default::default()).expect("deleted");
            std::thread::yield_now();
            api.create(&classes, None, class(value), &opts).expect("class");
        }
        settled.store(true, std::sync::atomic::Ordering::Release);
        creators.into_iter().flat_map(|c| c.join().expect("a creator")).collect()
    });
    assert!(!created.is_empty());
    // The class's history as committed: (rv, its value, or None once deleted).
    let Since::Events(events, _) = api.store.since(&classes.storage, 0) else { panic!("history retained") };
    let history: Vec<(u64, Option<i64>)> = events
        .iter()
        .filter(|e| e.obj.name == "racing")
        .map(|e| {
            let value =
                serde_json::from_slice::<serde_json::Value>(&e.obj.body()).expect("stored JSON")["value"].as_i64();
            (e.rv, (e.kind != EventKind::Deleted).then_some(value.expect("a value")))
        })
        .collect();
    assert_eq!(history.len(), 81, "{history:?}");
    for (rv, priority) in created {
        let in_effect = history.iter().rev().find(|(at, _)| *at < rv).map(|(_, v)| *v);
        assert_eq!(
            in_effect,
            Some(Some(priority)),
            "pod at rv {rv} has priority {priority}; class history {history:?}"
        );
    }
}
