//! batch/v1 on the simulated cluster: Jobs run their pods to completion under
//! the kubelet's container behaviours (completions, parallelism, backoffLimit,
//! ttlSecondsAfterFinished, status and conditions), and CronJobs create Jobs
//! on the simulated clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Sim, eventually};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};

async fn node(c: &Client, name: &str) {
    let n = json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"capacity": {"cpu": "8", "memory": "16Gi", "pods": "110"}}});
    Api::<Node>::all(c.clone()).create(&PostParams::default(), &serde_json::from_value(n).unwrap()).await.unwrap();
}

fn job(name: &str, spec: Value, annotations: Value) -> Job {
    let mut s = json!({"template": {"metadata": {"annotations": annotations},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}}});
    json_patch::merge(&mut s, &spec);
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": s})).unwrap()
}

fn condition(j: &Job, ty: &str) -> Option<(String, Option<String>)> {
    j.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == ty).map(|c| (c.status.clone(), c.reason.clone()))
}

#[tokio::test]
async fn jobs_run_their_completions_with_bounded_parallelism() {
    let sim = Sim::start_live_speed(10.0).await;
    let c = sim.client().await;
    node(&c, "n1").await;
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    jobs.create(&PostParams::default(), &job("work", json!({"completions": 4, "parallelism": 2}), json!({})))
        .await
        .unwrap();
    let most_active = std::sync::Arc::new(std::sync::atomic::AtomicI32::new(0));
    eventually(60, "job work complete", || {
        let (jobs, most) = (jobs.clone(), most_active.clone());
        async move {
            let j = jobs.get("work").await.unwrap();
            most.fetch_max(j.status.as_ref().and_then(|s| s.active).unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
            condition(&j, "Complete").is_some_and(|(s, _)| s == "True")
        }
    })
    .await;
    let most_active = most_active.load(std::sync::atomic::Ordering::Relaxed);
    assert!(most_active <= 2, "parallelism 2, saw {most_active} active");
    let j = jobs.get("work").await.unwrap();
    let s = j.status.clone().unwrap();
    assert_eq!((s.succeeded, s.failed, s.active), (Some(4), None, None));
    assert!(s.completion_time.is_some() && s.start_time.is_some());
    assert_eq!(condition(&j, "SuccessCriteriaMet").map(|c| c.0), Some("True".into()));
    let owned = pods.list(&ListParams::default().labels("job-name=work")).await.unwrap();
    assert_eq!(owned.items.len(), 4);
    assert!(owned.items.iter().all(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded")));
}

#[tokio::test]
async fn failing_pods_exhaust_the_backoff_limit() {
    let sim = Sim::start_live_speed(10.0).await;
    let c = sim.client().await;
    node(&c, "n1").await;
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    let spec = json!({"backoffLimit": 1});
    jobs.create(&PostParams::default(), &job("doomed", spec, json!({"sim.kube-sim.io/behaviour.c": "fail:3"})))
        .await
        .unwrap();
    eventually(60, "job doomed failed", || async { condition(&jobs.get("doomed").await.unwrap(), "Failed").is_some() })
        .await;
    let j = jobs.get("doomed").await.unwrap();
    assert_eq!(condition(&j, "Failed"), Some(("True".into(), Some("BackoffLimitExceeded".into()))));
    assert_eq!(condition(&j, "FailureTarget").map(|c| c.0), Some("True".into()));
    assert_eq!(j.status.unwrap().failed, Some(2));
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let failed = pods.list(&ListParams::default().labels("job-name=doomed")).await.unwrap();
    let code = failed.items[0].status.as_ref().unwrap().container_statuses.as_ref().unwrap()[0]
        .state
        .as_ref()
        .unwrap()
        .terminated
        .as_ref()
        .unwrap()
        .exit_code;
    assert_eq!(code, 3);
}

#[tokio::test]
async fn finished_jobs_are_deleted_after_their_ttl() {
    let sim = Sim::start_live_speed(20.0).await;
    let c = sim.client().await;
    node(&c, "n1").await;
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    jobs.create(&PostParams::default(), &job("brief", json!({"ttlSecondsAfterFinished": 5}), json!({}))).await.unwrap();
    eventually(60, "job brief complete", || async {
        jobs.get("brief").await.ok().is_some_and(|j| condition(&j, "Complete").is_some())
    })
    .await;
    eventually(60, "job brief deleted by its TTL", || async { jobs.get_opt("brief").await.unwrap().is_none() }).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    eventually(60, "its pods collected", || async {
        pods.list(&ListParams::default().labels("job-name=brief")).await.unwrap().items.is_empty()
    })
    .await;
}

#[tokio::test]
async fn cronjobs_create_jobs_on_the_simulated_clock() {
    // One simulated minute passes in a second.
    let sim = Sim::start_live_speed(60.0).await;
    let c = sim.client().await;
    node(&c, "n1").await;
    let cjs: Api<CronJob> = Api::namespaced(c.clone(), "default");
    let cj: CronJob = serde_json::from_value(json!({"metadata": {"name": "tick"}, "spec": {
        "schedule": "* * * * *", "successfulJobsHistoryLimit": 2,
        "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure",
            "containers": [{"name": "c", "image": "busybox"}]}}}}}}))
    .unwrap();
    let created = cjs.create(&PostParams::default(), &cj).await.unwrap();
    let spec = created.spec.unwrap();
    assert_eq!(spec.concurrency_policy.as_deref(), Some("Allow"));
    assert_eq!((spec.suspend, spec.failed_jobs_history_limit), (Some(false), Some(1)));
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    eventually(60, "three scheduled jobs ran", || async {
        cjs.get("tick").await.unwrap().status.and_then(|s| s.last_successful_time).is_some()
            && jobs
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .iter()
                .filter(|j| condition(j, "Complete").is_some())
                .count()
                >= 2
    })
    .await;
    // History is bounded, and every job is owned by the CronJob and named by its minute.
    eventually(60, "history limit applied", || async {
        let done: Vec<Job> = jobs
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|j| condition(j, "Complete").is_some())
            .collect();
        done.len() <= 2
    })
    .await;
    for j in jobs.list(&ListParams::default()).await.unwrap().items {
        let name = j.metadata.name.clone().unwrap();
        let minute: i64 = name.strip_prefix("tick-").unwrap().parse().unwrap();
        let at = j.metadata.annotations.as_ref().unwrap()["batch.kubernetes.io/cronjob-scheduled-timestamp"].clone();
        assert_eq!(at.parse::<jiff::Timestamp>().unwrap().as_second(), minute * 60, "{name}");
        assert_eq!(j.metadata.owner_references.unwrap()[0].kind, "CronJob");
    }
    // Suspended: no new jobs.
    let p = json!({"spec": {"suspend": true}});
    cjs.patch("tick", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&p)).await.unwrap();
    let last = cjs.get("tick").await.unwrap().status.unwrap().last_schedule_time;
    let before = jobs.list(&ListParams::default()).await.unwrap().items.len();
    // Wait for the control plane to have seen two more minutes (bounded, on a condition).
    let clock = sim.cluster.api().clock.clone();
    let until = clock.now() + jiff::SignedDuration::from_secs(150);
    eventually(30, "two simulated minutes", || async { clock.now() > until }).await;
    assert_eq!(cjs.get("tick").await.unwrap().status.unwrap().last_schedule_time, last);
    assert!(jobs.list(&ListParams::default()).await.unwrap().items.len() <= before);
}
