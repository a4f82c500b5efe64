//! The API's access control, against kube-sim enforcing RBAC: tokens are
//! checked with TokenReview (no token or a bad one: 401 with
//! `WWW-Authenticate`), permissions with SubjectAccessReview in the pod's
//! namespace (403 naming the missing permission), and an API server that
//! cannot answer shuts the door (503), never opens it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Env, http_with, request, settings};
use kube_sim::auth::TokenOptions;
use serde_json::{Value, json};

const TEAMS: &str = r#"
namespaces: [team-a, team-b]
workloads:
  - kind: Pod
    name: trainer
    namespace: team-a
    nodeName: w1
    containers: [{name: main, requests: {cpu: 100m, memory: 64Mi}}]
  - kind: Pod
    name: trainer
    namespace: team-b
    nodeName: w1
    containers: [{name: main, requests: {cpu: 100m, memory: 64Mi}}]
"#;

fn create(env: &Env, api_version: &str, plural: &str, ns: Option<&str>, obj: Value) {
    env.sim.dynamic(api_version, plural, ns).unwrap().create(obj).unwrap();
}

/// A Role in `ns` with `verbs` on podmigrations, bound to user `user`.
fn grant(env: &Env, ns: &str, user: &str, verbs: &[&str]) {
    let name = format!("{user}-podmigrations");
    create(
        env,
        "rbac.authorization.k8s.io/v1",
        "roles",
        Some(ns),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
               "metadata": {"name": name, "namespace": ns},
               "rules": [{"apiGroups": ["migration.sdi.keti.dev"], "resources": ["podmigrations"], "verbs": verbs}]}),
    );
    create(
        env,
        "rbac.authorization.k8s.io/v1",
        "rolebindings",
        Some(ns),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": name, "namespace": ns},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]}),
    );
}

/// Bind ClusterRole `role` (from `deploy/user-roles.yaml`) to `user` cluster-wide.
fn grant_cluster(env: &Env, role: &str, user: &str) {
    create(
        env,
        "rbac.authorization.k8s.io/v1",
        "clusterrolebindings",
        None,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": format!("{user}-{role}")},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]}),
    );
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value, String) {
    let mut r = http.request(method, url);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let code = r.status().as_u16();
    let challenge = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (code, r.json().await.unwrap_or(Value::Null), challenge)
}

async fn get(env: &Env, http: &reqwest::Client, path: &str) -> (u16, Value, String) {
    call(http, reqwest::Method::GET, env.url(path), None).await
}

async fn migrate(env: &Env, http: &reqwest::Client, ns: &str) -> (u16, Value, String) {
    call(http, reqwest::Method::POST, env.url("/api/v1/migrations"), Some(request("trainer", ns, "w1", "w2"))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_or_a_bad_one_is_401_with_a_challenge_and_probes_stay_open() {
    let env = Env::start(TEAMS).await;
    let anonymous = http_with("");
    let bogus = http_with("not-a-token");
    for path in [
        "/api/v1/migrations",
        "/api/v1/migrations/migration-00000000",
        "/api/v1/plan",
        "/api/v1/nodes",
        "/api/v1/metrics",
        "/api/v1/stream",
        "/metrics",
        "/nowhere",
    ] {
        for (who, http) in [("no token", &anonymous), ("a bad token", &bogus)] {
            let (code, body, challenge) = get(&env, http, path).await;
            assert_eq!(code, 401, "{who} GET {path}: {body}");
            assert!(challenge.starts_with("Bearer realm=\"sdi-migration\""), "{who} GET {path}: {challenge:?}");
            assert_eq!(body["error"], "Unauthorized");
        }
    }
    let (code, body, challenge) = migrate(&env, &anonymous, "team-a").await;
    assert_eq!((code, body["error"].as_str()), (401, Some("Unauthorized")));
    assert!(challenge.starts_with("Bearer"));
    let (_, _, challenge) = get(&env, &bogus, "/api/v1/plan").await;
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    // Probes, the API's description and the page's own files need nothing.
    for path in ["/health", "/ready", "/openapi.json", "/", "/ui/app.js"] {
        let (code, _, _) = get(&env, &anonymous, path).await;
        assert_eq!(code, 200, "GET {path} without a token");
    }
    // Nothing was created on the way.
    assert!(env.service().runner.store.list(&Default::default()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_decides_per_namespace_and_refusals_name_the_permission() {
    let env = Env::start(TEAMS).await;
    // A ServiceAccount without any rights: authenticated, refused everything.
    create(
        &env,
        "v1",
        "serviceaccounts",
        Some("team-a"),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "nobody", "namespace": "team-a"}}),
    );
    let nobody = env.sim.service_account_token("team-a", "nobody", &TokenOptions::default()).unwrap();
    let nobody = http_with(&nobody);
    let (code, body, _) = migrate(&env, &nobody, "team-a").await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(body["error"], "Forbidden");
    let details = body["details"].as_str().unwrap();
    assert!(
        details.contains("system:serviceaccount:team-a:nobody")
            && details.contains(r#"create podmigrations.migration.sdi.keti.dev in namespace "team-a""#),
        "{details}"
    );
    let (code, body, _) = get(&env, &nobody, "/api/v1/plan").await;
    assert_eq!(code, 403, "{body}");
    assert!(
        body["details"].as_str().unwrap().contains("get on the non-resource URL /sdi-migration/api/v1/plan"),
        "{body}"
    );

    // alice may create and read migrations in team-a only.
    let alice = env.sim.auth().new_token_user("alice", &["developers"]);
    let alice = http_with(&alice);
    grant(&env, "team-a", "alice", &["create", "get", "list"]);
    let (code, a, _) = migrate(&env, &alice, "team-a").await;
    assert_eq!(code, 202, "{a}");
    let (code, body, _) = migrate(&env, &alice, "team-b").await;
    assert_eq!(code, 403, "{body}");
    assert!(body["details"].as_str().unwrap().contains(r#"in namespace "team-b""#), "{body}");
    // No job was started for team-b.
    let jobs = env.service().runner.store.list(&Default::default());
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].request.pod_namespace, "team-a");

    // The administrator moves team-b's pod; alice can neither read nor cancel it.
    let (code, b) = env.migrate(request("trainer", "team-b", "w1", "w3")).await;
    assert_eq!(code, 202, "{b}");
    let (a_id, b_id) = (a["migration_id"].as_str().unwrap(), b["migration_id"].as_str().unwrap());
    assert_eq!(get(&env, &alice, &format!("/api/v1/migrations/{a_id}")).await.0, 200);
    assert_eq!(get(&env, &alice, &format!("/api/v1/migrations/{a_id}/status")).await.0, 200);
    let (code, body, _) = get(&env, &alice, &format!("/api/v1/migrations/{b_id}")).await;
    assert_eq!(code, 403, "{body}");
    let (code, body, _) =
        call(&alice, reqwest::Method::DELETE, env.url(&format!("/api/v1/migrations/{b_id}")), None).await;
    assert_eq!(code, 403, "{body}");
    assert!(body["details"].as_str().unwrap().contains("delete podmigrations"), "{body}");

    // A list shows the namespaces alice may list; asking for another is 403.
    let (code, list, _) = get(&env, &alice, "/api/v1/migrations").await;
    assert_eq!(code, 200, "{list}");
    let ids: Vec<&str> = list.as_array().unwrap().iter().map(|j| j["migration_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [a_id]);
    assert_eq!(get(&env, &alice, "/api/v1/migrations?namespace=team-a").await.0, 200);
    assert_eq!(get(&env, &alice, "/api/v1/migrations?namespace=team-b").await.0, 403);
    // Allowed cluster-wide (the aggregated `view` role), everything.
    let carol = env.sim.auth().new_token_user("carol", &[]);
    grant_cluster(&env, "view", "carol");
    let carol = http_with(&carol);
    common::wait_for(Duration::from_secs(10), "view to aggregate sdi-migration-view", || async {
        let (code, list, _) = get(&env, &carol, "/api/v1/migrations").await;
        match list.as_array().map(Vec::len) {
            Some(2) if code == 200 => Ok(()),
            _ => Err(format!("{code} {list}")),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_get_on_the_metrics_url() {
    let s = sdi_migration::config::Settings { auth_cache_ttl: 1, ..settings() };
    let env = Env::start_with(TEAMS, s, 5.0).await;
    let token = env.sim.auth().new_token_user("prometheus", &[]);
    let prometheus = http_with(&token);
    let (code, body, _) = get(&env, &prometheus, "/metrics").await;
    assert_eq!(code, 403, "{body}");
    assert!(body["details"].as_str().unwrap().contains("get on the non-resource URL /metrics"), "{body}");
    grant_cluster(&env, "sdi-migration-metrics-reader", "prometheus");
    // The refusal is remembered for AUTH_CACHE_TTL (1 s here): the grant takes effect after it.
    common::wait_for(Duration::from_secs(30), "the grant to take effect", || async {
        let r = prometheus.get(env.url("/metrics")).send().await.unwrap();
        match r.status().as_u16() {
            200 => Ok(r.text().await.unwrap()),
            code => Err(code.to_string()),
        }
    })
    .await;
    // The operator's views are another permission.
    assert_eq!(get(&env, &prometheus, "/api/v1/plan").await.0, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_that_cannot_answer_shuts_the_door() {
    let env = Env::start(TEAMS).await;
    let token = env.sim.auth().new_token_user("dave", &["system:masters"]);
    let dave = http_with(&token);
    env.faults(json!({"rules": [{"resources": ["tokenreviews"], "rate": 1.0, "error": {"type": "serverError"}}]}))
        .await;
    for path in ["/api/v1/plan", "/api/v1/migrations", "/metrics"] {
        let (code, body, _) = get(&env, &dave, path).await;
        assert_eq!(code, 503, "GET {path}: {body}");
        assert_eq!(body["error"], "Kubernetes API unavailable");
    }
    let (code, _, _) = migrate(&env, &dave, "team-a").await;
    assert_eq!(code, 503);
    assert!(env.service().runner.store.list(&Default::default()).is_empty(), "nothing started");
    // Authorization unreachable too: closed.
    env.faults(
        json!({"rules": [{"resources": ["subjectaccessreviews"], "rate": 1.0, "error": {"type": "serverError"}}]}),
    )
    .await;
    let (code, body, _) = get(&env, &dave, "/api/v1/nodes").await;
    assert_eq!(code, 503, "{body}");
    // Back: the same token works (failures are never cached).
    env.clear_faults();
    assert_eq!(get(&env, &dave, "/api/v1/nodes").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_refused_once_the_cache_period_is_over() {
    let s = sdi_migration::config::Settings { auth_cache_ttl: 1, ..settings() };
    let env = Env::start_with(TEAMS, s, 5.0).await;
    let token = env.sim.auth().new_token_user("erin", &["system:masters"]);
    let erin = http_with(&token);
    assert_eq!(get(&env, &erin, "/api/v1/plan").await.0, 200);
    env.sim.auth().remove_token(&token);
    common::wait_for(Duration::from_secs(20), "the revoked token to be refused", || async {
        match get(&env, &erin, "/api/v1/plan").await {
            (401, _, challenge) if challenge.starts_with("Bearer") => Ok(()),
            (code, body, _) => Err(format!("{code} {body}")),
        }
    })
    .await;
}

/// A stream outlives the check made when it opened: once its token is revoked
/// (and the cache period is over), the service ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_ends_an_open_stream() {
    use futures::StreamExt;
    let s = sdi_migration::config::Settings { auth_cache_ttl: 1, ..settings() };
    let env = Env::start_with(TEAMS, s, 5.0).await;
    let token = env.sim.auth().new_token_user("frank", &["system:masters"]);
    let r = http_with(&token).get(env.url("/api/v1/stream")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mut body = r.bytes_stream();
    let first =
        tokio::time::timeout(Duration::from_secs(20), body.next()).await.expect("the snapshot").unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("snapshot"), "{first:?}");
    // Still open a few checks later while the token is valid.
    let held = tokio::time::timeout(Duration::from_secs(3), async {
        while let Some(chunk) = body.next().await {
            chunk.unwrap();
        }
    })
    .await;
    assert!(held.is_err(), "the stream ended while its token was valid");
    env.sim.auth().remove_token(&token);
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(chunk) = body.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream of a revoked token is ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refused() {
    // 600 s (the shortest TokenRequest) plus upstream's minute of leeway pass in a few
    // seconds at 200×.
    let s = sdi_migration::config::Settings { auth_cache_ttl: 1, ..settings() };
    let env = Env::start_with(TEAMS, s, 200.0).await;
    create(
        &env,
        "v1",
        "serviceaccounts",
        Some("team-a"),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "ops", "namespace": "team-a"}}),
    );
    grant(&env, "team-a", "system:serviceaccount:team-a:ops", &["list"]);
    let opts = TokenOptions { expiration_seconds: 600, ..TokenOptions::default() };
    let token = env.sim.service_account_token("team-a", "ops", &opts).unwrap();
    let ops = http_with(&token);
    let (code, body, _) = get(&env, &ops, "/api/v1/migrations?namespace=team-a").await;
    assert_eq!(code, 200, "{body}");
    common::wait_for(Duration::from_secs(60), "the token to expire", || async {
        match get(&env, &ops, "/api/v1/migrations?namespace=team-a").await {
            (401, _, _) => Ok(()),
            (code, body, _) => Err(format!("{code} {body}")),
        }
    })
    .await;
}
