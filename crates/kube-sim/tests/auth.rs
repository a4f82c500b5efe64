//! Authentication and authorization as a real API server enforces them:
//! 401 and 403 with upstream's bodies, RBAC rules (namespaces, resourceNames,
//! subresources, nonResourceURLs, groups, aggregation), ServiceAccount tokens
//! (TokenRequest, audiences, expiry, revocation with their pod), the review
//! APIs, impersonation, client certificates over TLS with kubectl and the
//! `kube` crate, `kubectl auth can-i` with every kubectl the image ships, and
//! the per-user request log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Sim, eventually};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, PostParams};
use kube_sim::auth::{BoundObject, TokenOptions};
use kube_sim::{AuthConfig, Credentials, ServerConfig};
use reqwest::Method;
use serde_json::{Value, json};

const RBAC: &str = "rbac.authorization.k8s.io/v1";

fn rbac(simulate: bool) -> ServerConfig {
    ServerConfig { simulate, auth: AuthConfig::rbac(), ..ServerConfig::default() }
}

/// A request as `token` (anonymous when `None`): (status, JSON body).
async fn call(sim: &Sim, token: Option<&str>, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = sim.http().request(method, sim.url(path));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.header("content-type", "application/json").body(b.to_string());
    }
    let resp = r.send().await.expect("request");
    let code = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (code, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn get(sim: &Sim, token: Option<&str>, path: &str) -> (u16, Value) {
    call(sim, token, Method::GET, path, None).await
}

/// Create an object in-process (as the cluster itself: no authorization).
fn create(sim: &Sim, api_version: &str, plural: &str, ns: Option<&str>, obj: Value) -> Value {
    sim.cluster.dynamic(api_version, plural, ns).unwrap().create(obj).unwrap()
}

fn namespace(sim: &Sim, name: &str) {
    create(sim, "v1", "namespaces", None, json!({"metadata": {"name": name}}));
}

/// A ServiceAccount and a token for it.
fn service_account(sim: &Sim, ns: &str, name: &str) -> String {
    create(sim, "v1", "serviceaccounts", Some(ns), json!({"metadata": {"name": name}}));
    sim.cluster.service_account_token(ns, name, &TokenOptions::default()).unwrap()
}

fn role(sim: &Sim, ns: &str, name: &str, rules: Value) {
    create(sim, RBAC, "roles", Some(ns), json!({"metadata": {"name": name}, "rules": rules}));
}

fn cluster_role(sim: &Sim, name: &str, labels: Value, rules: Value) {
    create(sim, RBAC, "clusterroles", None, json!({"metadata": {"name": name, "labels": labels}, "rules": rules}));
}

fn role_binding(sim: &Sim, ns: &str, name: &str, role_kind: &str, role: &str, subject: Value) {
    create(
        sim,
        RBAC,
        "rolebindings",
        Some(ns),
        json!({"metadata": {"name": name}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
            "subjects": [subject]}),
    );
}

fn cluster_role_binding(sim: &Sim, name: &str, role: &str, subject: Value) {
    create(
        sim,
        RBAC,
        "clusterrolebindings",
        None,
        json!({"metadata": {"name": name}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [subject]}),
    );
}

fn sa_subject(ns: &str, name: &str) -> Value {
    json!({"kind": "ServiceAccount", "name": name, "namespace": ns})
}

fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
}

/// A SelfSubjectReview as `token`: (status, body).
async fn whoami(sim: &Sim, token: &str) -> (u16, Value) {
    let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});
    call(sim, Some(token), Method::POST, "/apis/authentication.k8s.io/v1/selfsubjectreviews", Some(body)).await
}

/// A SelfSubjectAccessReview as `token`: allowed?
async fn can_i(sim: &Sim, token: &str, attributes: Value) -> bool {
    let (code, body) = call(
        sim,
        Some(token),
        Method::POST,
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        Some(json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": attributes})),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    body["status"]["allowed"].as_bool().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_requests_get_upstreams_401_and_anonymous_ones_are_authorized() {
    let unauthorized = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Unauthorized", "reason": "Unauthorized", "code": 401});
    // Anonymous requests refused outright.
    let sim = Sim::start_with(ServerConfig {
        simulate: false,
        auth: AuthConfig { anonymous: false, ..AuthConfig::rbac() },
        ..ServerConfig::default()
    })
    .await;
    for path in ["/api/v1/namespaces", "/version", "/api"] {
        assert_eq!(get(&sim, None, path).await, (401, unauthorized.clone()), "{path}");
    }
    assert_eq!(get(&sim, Some("not-a-token"), "/api/v1/pods").await, (401, unauthorized.clone()));
    let admin = sim.cluster.auth().admin_token().to_string();
    assert_eq!(get(&sim, Some(&admin), "/api/v1/namespaces").await.0, 200);

    // Anonymous requests allowed (upstream's default): system:anonymous, whom RBAC
    // lets read health and version only; a bad token is still 401.
    let sim = Sim::start_with(rbac(false)).await;
    assert_eq!(get(&sim, None, "/version").await.0, 200);
    assert_eq!(get(&sim, None, "/healthz").await.0, 200);
    let (code, body) = get(&sim, None, "/api").await;
    assert_eq!(code, 403);
    assert_eq!(body["message"], "forbidden: User \"system:anonymous\" cannot get path \"/api\"");
    assert_eq!(body["details"], json!({}));
    let (code, body) = get(&sim, None, "/api/v1/namespaces/default/pods").await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        "pods is forbidden: User \"system:anonymous\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
    );
    let forged = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
    for token in ["garbage", forged] {
        assert_eq!(get(&sim, Some(token), "/version").await, (401, unauthorized.clone()), "{token}");
    }
    // The kubeconfig an RBAC server writes carries the administrator's token.
    let client = sim.client().await;
    assert!(Api::<Pod>::all(client).list(&ListParams::default()).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_grants_create_pods_in_its_namespace_only_with_upstreams_403() {
    let sim = Sim::start_with(rbac(false)).await;
    namespace(&sim, "team-a");
    namespace(&sim, "team-b");
    let token = service_account(&sim, "team-a", "app");
    let user = "system:serviceaccount:team-a:app";

    // Nothing granted yet: 403 with upstream's body.
    let (code, body) = call(&sim, Some(&token), Method::POST, "/api/v1/namespaces/team-a/pods", Some(pod("p1"))).await;
    assert_eq!(code, 403);
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("pods is forbidden: User \"{user}\" cannot create resource \"pods\" in API group \"\" in the namespace \"team-a\""),
            "reason": "Forbidden", "details": {"kind": "pods"}, "code": 403})
    );

    role(&sim, "team-a", "pod-creator", json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}]));
    role_binding(&sim, "team-a", "app-creates-pods", "Role", "pod-creator", sa_subject("team-a", "app"));
    let (code, body) = call(&sim, Some(&token), Method::POST, "/api/v1/namespaces/team-a/pods", Some(pod("p1"))).await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = call(&sim, Some(&token), Method::POST, "/api/v1/namespaces/team-b/pods", Some(pod("p1"))).await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        format!(
            "pods is forbidden: User \"{user}\" cannot create resource \"pods\" in API group \"\" in the namespace \"team-b\""
        )
    );
    // create does not grant get, nor delete; and a named object's 403 names it.
    let (code, body) = get(&sim, Some(&token), "/api/v1/namespaces/team-a/pods/p1").await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        format!(
            "pods \"p1\" is forbidden: User \"{user}\" cannot get resource \"pods\" in API group \"\" in the namespace \"team-a\""
        )
    );
    assert_eq!(body["details"], json!({"name": "p1", "kind": "pods"}));

    // A binding to a missing role says so, as upstream's RBAC reason does.
    role_binding(&sim, "team-a", "dangling", "Role", "nope", sa_subject("team-a", "app"));
    let (_, body) = get(&sim, Some(&token), "/api/v1/namespaces/team-a/secrets").await;
    assert!(
        body["message"].as_str().unwrap().ends_with(": RBAC: role.rbac.authorization.k8s.io \"nope\" not found"),
        "{body}"
    );
    // A subject in a RoleBinding may leave its namespace out (the binding's).
    role(&sim, "team-a", "lister", json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]));
    role_binding(&sim, "team-a", "local", "Role", "lister", json!({"kind": "ServiceAccount", "name": "app"}));
    assert_eq!(get(&sim, Some(&token), "/api/v1/namespaces/team-a/configmaps").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_names_subresources_wildcards_and_groups() {
    let sim = Sim::start_with(rbac(false)).await;
    namespace(&sim, "team-a");
    namespace(&sim, "team-b");
    let token = service_account(&sim, "team-a", "app");
    for name in ["cm1", "cm2"] {
        create(&sim, "v1", "configmaps", Some("team-a"), json!({"metadata": {"name": name}}));
    }
    role(
        &sim,
        "team-a",
        "one-configmap",
        json!([{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cm1"], "verbs": ["get", "list", "watch"]}]),
    );
    role_binding(&sim, "team-a", "b1", "Role", "one-configmap", sa_subject("team-a", "app"));
    assert_eq!(get(&sim, Some(&token), "/api/v1/namespaces/team-a/configmaps/cm1").await.0, 200);
    assert_eq!(get(&sim, Some(&token), "/api/v1/namespaces/team-a/configmaps/cm2").await.0, 403);
    assert_eq!(get(&sim, Some(&token), "/api/v1/namespaces/team-a/configmaps").await.0, 403, "a list has no name");
    let (code, body) =
        get(&sim, Some(&token), "/api/v1/namespaces/team-a/configmaps?fieldSelector=metadata.name%3Dcm1").await;
    assert_eq!(code, 200, "a list of one object by name is that object's: {body}");
    assert_eq!(body["items"].as_array().unwrap().len(), 1);

    // Subresources: pods does not grant pods/eviction; */status grants every status.
    create(&sim, "v1", "pods", Some("team-a"), pod("p1"));
    cluster_role(
        &sim,
        "evictor",
        json!({}),
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
               {"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["get"]}]),
    );
    cluster_role_binding(
        &sim,
        "evictors",
        "evictor",
        json!({"kind": "Group", "name": "system:serviceaccounts:team-a"}),
    );
    let eviction =
        json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "p1", "namespace": "team-a"}});
    let path = "/api/v1/namespaces/team-a/pods/p1/eviction";
    let (code, body) = call(&sim, Some(&token), Method::POST, path, Some(eviction.clone())).await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        "pods \"p1\" is forbidden: User \"system:serviceaccount:team-a:app\" cannot create resource \"pods/eviction\" in API group \"\" in the namespace \"team-a\""
    );
    assert_eq!(get(&sim, Some(&token), "/api/v1/namespaces/team-b/pods").await.0, 200, "a group-bound ClusterRole");
    assert_eq!(get(&sim, Some(&token), "/api/v1/namespaces/team-a/pods/p1/status").await.0, 200);
    assert_eq!(get(&sim, Some(&token), "/apis/apps/v1/namespaces/team-a/deployments/x/status").await.0, 404);
    assert_eq!(get(&sim, Some(&token), "/apis/apps/v1/namespaces/team-a/deployments/x").await.0, 403);
    cluster_role(
        &sim,
        "evict",
        json!({}),
        json!([{"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]}]),
    );
    cluster_role_binding(&sim, "evict", "evict", json!({"kind": "Group", "name": "system:serviceaccounts"}));
    let (code, body) = call(&sim, Some(&token), Method::POST, path, Some(eviction)).await;
    assert_eq!(code, 201, "{body}");

    // nodes/proxy is its own permission.
    create(&sim, "v1", "nodes", None, json!({"metadata": {"name": "n1"}}));
    assert_eq!(get(&sim, Some(&token), "/api/v1/nodes/n1/proxy/healthz").await.0, 403);
    cluster_role(
        &sim,
        "proxy",
        json!({}),
        json!([{"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]}]),
    );
    cluster_role_binding(&sim, "proxy", "proxy", json!({"kind": "User", "name": "system:serviceaccount:team-a:app"}));
    assert_ne!(get(&sim, Some(&token), "/api/v1/nodes/n1/proxy/healthz").await.0, 403);
    assert_eq!(get(&sim, Some(&token), "/api/v1/nodes/n1").await.0, 403);

    // system:authenticated reaches every authenticated user.
    let other = service_account(&sim, "team-b", "other");
    assert_eq!(get(&sim, Some(&other), "/api/v1/namespaces").await.0, 403);
    cluster_role(
        &sim,
        "ns-reader",
        json!({}),
        json!([{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]}]),
    );
    cluster_role_binding(&sim, "everyone", "ns-reader", json!({"kind": "Group", "name": "system:authenticated"}));
    assert_eq!(get(&sim, Some(&other), "/api/v1/namespaces").await.0, 200);
    assert_eq!(get(&sim, None, "/api/v1/namespaces").await.0, 403, "anonymous is not authenticated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_resource_urls_are_authorized_by_path() {
    let sim = Sim::start_with(rbac(false)).await;
    let token = sim.cluster.auth().new_token_user("prometheus", &[]);
    // Discovery is every authenticated user's (system:discovery).
    for path in ["/api", "/apis", "/api/v1", "/apis/apps/v1", "/openapi/v3", "/version"] {
        assert_eq!(get(&sim, Some(&token), path).await.0, 200, "{path}");
    }
    let (code, body) = get(&sim, Some(&token), "/metrics").await;
    assert_eq!(code, 403);
    assert_eq!(body["message"], "forbidden: User \"prometheus\" cannot get path \"/metrics\"");
    cluster_role(&sim, "scraper", json!({}), json!([{"nonResourceURLs": ["/metrics", "/debug/*"], "verbs": ["get"]}]));
    cluster_role_binding(&sim, "scraper", "scraper", json!({"kind": "User", "name": "prometheus"}));
    // Allowed now: the path itself is not served (404), but no longer forbidden.
    assert_eq!(get(&sim, Some(&token), "/metrics").await.0, 404);
    assert_eq!(get(&sim, Some(&token), "/debug/pprof/heap").await.0, 404);
    assert_eq!(get(&sim, Some(&token), "/metricsz").await.0, 403);
    let (code, _) = call(&sim, Some(&token), Method::POST, "/metrics", Some(json!({}))).await;
    assert_eq!(code, 403, "the verb of a path is its method");
    // A Role cannot carry nonResourceURLs.
    namespace(&sim, "team-a");
    let r = sim.cluster.dynamic(RBAC, "roles", Some("team-a")).unwrap().create(json!({"metadata": {"name": "bad"},
        "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]}));
    let e = r.unwrap_err();
    assert_eq!(e.code, 422);
    assert!(e.message.contains("namespaced rules cannot apply to non-resource URLs"), "{}", e.message);
    // The OIDC documents of the issuer are the service accounts'.
    let sa = {
        namespace(&sim, "team-b");
        service_account(&sim, "team-b", "x")
    };
    let (code, jwks) = get(&sim, Some(&sa), "/openid/v1/jwks").await;
    assert_eq!(code, 200);
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
    assert_eq!(get(&sim, Some(&token), "/openid/v1/jwks").await.0, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregated_cluster_roles_follow_their_selectors() {
    let sim = Sim::start_with(rbac(false)).await;
    namespace(&sim, "team-a");
    let token = service_account(&sim, "team-a", "app");
    role_binding(&sim, "team-a", "viewers", "ClusterRole", "view", sa_subject("team-a", "app"));
    // The bootstrap view role was filled at start.
    assert_eq!(get(&sim, Some(&token), "/api/v1/namespaces/team-a/pods").await.0, 200);
    assert_eq!(get(&sim, Some(&token), "/api/v1/namespaces/team-a/secrets").await.0, 403, "view does not read secrets");
    let list_robots = json!({"resourceAttributes": {"namespace": "team-a", "verb": "list", "group": "example.com", "resource": "robots"}});
    assert!(!can_i(&sim, &token, list_robots.clone()).await);

    cluster_role(
        &sim,
        "robots-view",
        json!({"rbac.authorization.k8s.io/aggregate-to-view": "true"}),
        json!([{"apiGroups": ["example.com"], "resources": ["robots"], "verbs": ["get", "list", "watch"]}]),
    );
    eventually(10, "view to aggregate robots-view", || async { can_i(&sim, &token, list_robots.clone()).await }).await;
    // ... and through view, edit and admin (view aggregates to edit, edit to admin).
    let roles = sim.cluster.dynamic(RBAC, "clusterroles", None).unwrap();
    eventually(10, "admin to include the robots rule", || async {
        roles.get("admin").unwrap()["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["apiGroups"] == json!(["example.com"]))
    })
    .await;

    // A role of one's own, aggregated, and emptied when its source goes.
    create(
        &sim,
        RBAC,
        "clusterroles",
        None,
        json!({"metadata": {"name": "monitoring"},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"example.com/aggregate-to-monitoring": "true"}}]},
            "rules": []}),
    );
    cluster_role(
        &sim,
        "monitoring-endpoints",
        json!({"example.com/aggregate-to-monitoring": "true"}),
        json!([{"apiGroups": [""], "resources": ["endpoints"], "verbs": ["list"]}]),
    );
    eventually(10, "monitoring to aggregate", || async {
        roles.get("monitoring").unwrap()["rules"]
            == json!([{"apiGroups": [""], "resources": ["endpoints"], "verbs": ["list"]}])
    })
    .await;
    roles.delete("monitoring-endpoints", &Default::default()).unwrap();
    eventually(10, "monitoring to lose the rule", || async {
        roles.get("monitoring").unwrap()["rules"].as_array().is_none_or(Vec::is_empty)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_requests_honour_audiences_expiry_and_their_bound_objects() {
    // Simulated time runs 600× faster: a ten-minute token expires in a second.
    let sim = Sim::start_clock(rbac(false), kube_sim::Clock::new(600.0)).await;
    namespace(&sim, "team-a");
    create(&sim, "v1", "serviceaccounts", Some("team-a"), json!({"metadata": {"name": "app"}}));
    let admin = sim.cluster.auth().admin_token().to_string();
    let request = |spec: Value| {
        call(
            &sim,
            Some(admin.as_str()),
            Method::POST,
            "/api/v1/namespaces/team-a/serviceaccounts/app/token",
            Some(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})),
        )
    };
    let (code, body) = request(json!({"expirationSeconds": 599})).await;
    assert_eq!(code, 422);
    assert_eq!(
        body["message"],
        "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes"
    );
    let (code, body) = call(
        &sim,
        Some(&admin),
        Method::POST,
        "/api/v1/namespaces/team-a/serviceaccounts/ghost/token",
        Some(json!({"spec": {}})),
    )
    .await;
    assert_eq!(code, 404);
    assert_eq!(body["message"], "serviceaccounts \"ghost\" not found");

    let (code, body) = request(json!({"expirationSeconds": 600})).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["spec"]["audiences"], json!(["https://kubernetes.default.svc.cluster.local"]));
    assert_eq!(body["metadata"]["name"], "app");
    let token = body["status"]["token"].as_str().unwrap().to_string();
    let review = |t: String, audiences: Value| {
        call(
            &sim,
            Some(admin.as_str()),
            Method::POST,
            "/apis/authentication.k8s.io/v1/tokenreviews",
            Some(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                "spec": {"token": t, "audiences": audiences}})),
        )
    };
    let (code, r) = review(token.clone(), json!([])).await;
    assert_eq!(code, 201);
    assert_eq!(r["status"]["authenticated"], true);
    assert_eq!(r["status"]["user"]["username"], "system:serviceaccount:team-a:app");
    assert_eq!(
        r["status"]["user"]["groups"],
        json!(["system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated"])
    );
    assert!(
        r["status"]["user"]["extra"]["authentication.kubernetes.io/credential-id"][0]
            .as_str()
            .unwrap()
            .starts_with("JTI=")
    );
    // Expired after its ten minutes (and upstream's minute of leeway) of simulated time.
    eventually(10, "the token to expire", || async {
        let (_, r) = review(token.clone(), json!([])).await;
        r["status"]["authenticated"].as_bool() != Some(true)
    })
    .await;
    let (_, r) = review(token.clone(), json!([])).await;
    assert_eq!(r["status"]["error"], "[invalid bearer token, service account token has expired]");
    assert_eq!(r["status"]["user"], json!({}));
    assert_eq!(get(&sim, Some(&token), "/version").await.0, 401);

    // Another audience: the API refuses it, a TokenReview for that audience accepts it.
    let (_, body) = request(json!({"audiences": ["vault"]})).await;
    let vault = body["status"]["token"].as_str().unwrap().to_string();
    assert_eq!(get(&sim, Some(&vault), "/version").await.0, 401);
    let (_, r) = review(vault.clone(), json!(["vault"])).await;
    assert_eq!(
        (r["status"]["authenticated"].clone(), r["status"]["audiences"].clone()),
        (json!(true), json!(["vault"]))
    );
    let (_, r) = review(vault, json!([])).await;
    assert!(r["status"]["error"].as_str().unwrap().contains("is invalid for the target audiences"), "{r}");

    // Bound to a pod: revoked when the pod goes; the kubelet's token is the same kind.
    create(
        &sim,
        "v1",
        "pods",
        Some("team-a"),
        json!({"metadata": {"name": "p1"}, "spec": {"serviceAccountName": "app",
        "containers": [{"name": "c", "image": "busybox"}]}}),
    );
    let bound = sim
        .cluster
        .service_account_token(
            "team-a",
            "app",
            &TokenOptions {
                bound: Some(BoundObject { kind: "Pod".into(), name: "p1".into(), uid: None }),
                ..TokenOptions::default()
            },
        )
        .unwrap();
    let kubelet = sim.cluster.pod_token("team-a", "p1").unwrap();
    let (code, me) = whoami(&sim, &kubelet).await;
    assert_eq!(code, 201, "{me}");
    assert_eq!(me["status"]["userInfo"]["extra"]["authentication.kubernetes.io/pod-name"], json!(["p1"]));
    assert_eq!(whoami(&sim, &bound).await.0, 201);
    let (code, body) =
        request(json!({"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p1", "uid": "wrong"}})).await;
    assert_eq!(code, 409, "{body}");
    sim.cluster.dynamic("v1", "pods", Some("team-a")).unwrap().delete("p1", &Default::default()).unwrap();
    assert_eq!(whoami(&sim, &bound).await.0, 401);
    assert_eq!(whoami(&sim, &kubelet).await.0, 401);

    // A deleted ServiceAccount's tokens stop working; a removed static token too.
    let (_, body) = request(json!({})).await;
    let t = body["status"]["token"].as_str().unwrap().to_string();
    assert_eq!(whoami(&sim, &t).await.0, 201);
    sim.cluster.dynamic("v1", "serviceaccounts", Some("team-a")).unwrap().delete("app", &Default::default()).unwrap();
    assert_eq!(whoami(&sim, &t).await.0, 401);
    let s = sim.cluster.auth().new_token_user("bob", &["dev"]);
    assert_eq!(whoami(&sim, &s).await.0, 201);
    sim.cluster.auth().remove_token(&s);
    assert_eq!(whoami(&sim, &s).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_token_secrets_are_filled_and_die_with_their_secret() {
    use base64::Engine as _;
    let sim = Sim::start_with(rbac(false)).await;
    namespace(&sim, "team-a");
    create(&sim, "v1", "serviceaccounts", Some("team-a"), json!({"metadata": {"name": "app"}}));
    create(
        &sim,
        "v1",
        "secrets",
        Some("team-a"),
        json!({"metadata": {"name": "app-token", "annotations": {"kubernetes.io/service-account.name": "app"}},
            "type": "kubernetes.io/service-account-token"}),
    );
    let secrets = sim.cluster.dynamic("v1", "secrets", Some("team-a")).unwrap();
    eventually(10, "the token controller to fill the Secret", || async {
        secrets.get("app-token").unwrap().pointer("/data/token").is_some()
    })
    .await;
    let secret = secrets.get("app-token").unwrap();
    let decode = |k: &str| {
        let b = base64::engine::general_purpose::STANDARD.decode(secret["data"][k].as_str().unwrap()).unwrap();
        String::from_utf8(b).unwrap()
    };
    assert_eq!(decode("namespace"), "team-a");
    assert!(secret["metadata"]["annotations"]["kubernetes.io/service-account.uid"].is_string());
    let token = decode("token");
    let (code, me) = whoami(&sim, &token).await;
    assert_eq!(code, 201, "{me}");
    assert_eq!(me["status"]["userInfo"]["username"], "system:serviceaccount:team-a:app");
    secrets.delete("app-token", &Default::default()).unwrap();
    assert_eq!(whoami(&sim, &token).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delegating_service_reviews_tokens_and_access() {
    let sim = Sim::start_with(rbac(false)).await;
    namespace(&sim, "sdi");
    namespace(&sim, "team-a");
    let service = service_account(&sim, "sdi", "sdi-migration");
    let caller = service_account(&sim, "team-a", "alice");
    let reviews = |kind: &str, group: &str, plural: &str, spec: Value| {
        let path = format!("/apis/{group}/v1/{plural}");
        let body = json!({"apiVersion": format!("{group}/v1"), "kind": kind, "spec": spec});
        let service = service.clone();
        let sim = &sim;
        async move { call(sim, Some(&service), Method::POST, &path, Some(body)).await }
    };
    // Not yet a delegator: TokenReview and SubjectAccessReview are forbidden.
    let (code, body) = reviews("TokenReview", "authentication.k8s.io", "tokenreviews", json!({"token": caller})).await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        "tokenreviews.authentication.k8s.io is forbidden: User \"system:serviceaccount:sdi:sdi-migration\" cannot create resource \"tokenreviews\" in API group \"authentication.k8s.io\" at the cluster scope"
    );
    cluster_role_binding(&sim, "sdi-delegator", "system:auth-delegator", sa_subject("sdi", "sdi-migration"));
    let (code, r) = reviews("TokenReview", "authentication.k8s.io", "tokenreviews", json!({"token": caller})).await;
    assert_eq!(code, 201, "{r}");
    let user = r["status"]["user"].clone();
    assert_eq!(user["username"], "system:serviceaccount:team-a:alice");
    let (_, r) = reviews("TokenReview", "authentication.k8s.io", "tokenreviews", json!({"token": "bogus"})).await;
    assert_eq!(r["status"]["authenticated"], Value::Null);
    assert_eq!(r["status"]["error"], "invalid bearer token");

    let sar = |verb: &str, ns: &str| {
        json!({"user": user["username"], "groups": user["groups"], "uid": user["uid"],
            "resourceAttributes": {"namespace": ns, "verb": verb, "group": "migration.sdi.keti.dev", "resource": "podmigrations"}})
    };
    let (code, r) =
        reviews("SubjectAccessReview", "authorization.k8s.io", "subjectaccessreviews", sar("create", "team-a")).await;
    assert_eq!(code, 201, "{r}");
    assert_eq!(r["status"], json!({"allowed": false}));
    role(
        &sim,
        "team-a",
        "migrator",
        json!([{"apiGroups": ["migration.sdi.keti.dev"], "resources": ["podmigrations"], "verbs": ["create"]}]),
    );
    role_binding(&sim, "team-a", "alice-migrates", "Role", "migrator", sa_subject("team-a", "alice"));
    let (_, r) =
        reviews("SubjectAccessReview", "authorization.k8s.io", "subjectaccessreviews", sar("create", "team-a")).await;
    assert_eq!(
        r["status"],
        json!({"allowed": true, "reason": "RBAC: allowed by RoleBinding \"alice-migrates/team-a\" of Role \"migrator\" to ServiceAccount \"alice/team-a\""})
    );
    let (_, r) =
        reviews("SubjectAccessReview", "authorization.k8s.io", "subjectaccessreviews", sar("create", "team-b")).await;
    assert_eq!(r["status"]["allowed"], false);
    // Non-resource attributes, and upstream's validation.
    let metrics = json!({"user": user["username"], "nonResourceAttributes": {"path": "/metrics", "verb": "get"}});
    let (_, r) = reviews("SubjectAccessReview", "authorization.k8s.io", "subjectaccessreviews", metrics).await;
    assert_eq!(r["status"]["allowed"], false);
    let (code, r) =
        reviews("SubjectAccessReview", "authorization.k8s.io", "subjectaccessreviews", json!({"user": "x"})).await;
    assert_eq!(code, 422);
    assert_eq!(
        r["message"],
        "SubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified"
    );
    // Every authenticated user may ask about themselves.
    let (code, r) = call(&sim, Some(&caller), Method::POST, "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        Some(json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": "team-a"}}))).await;
    assert_eq!(code, 201, "{r}");
    assert!(r["status"]["resourceRules"].as_array().unwrap().contains(
        &json!({"verbs": ["create"], "apiGroups": ["migration.sdi.keti.dev"], "resources": ["podmigrations"]})
    ));
    assert_eq!(r["status"]["incomplete"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impersonation_is_itself_authorized() {
    let sim = Sim::start_with(rbac(false)).await;
    namespace(&sim, "team-a");
    let app = service_account(&sim, "team-a", "app");
    let admin = sim.cluster.auth().admin_token().to_string();
    let as_user = |token: String, user: &'static str| {
        let r = sim
            .http()
            .get(sim.url("/api/v1/namespaces/team-a/pods"))
            .bearer_auth(token)
            .header("Impersonate-User", user);
        async move { r.send().await.unwrap() }
    };
    assert_eq!(as_user(admin.clone(), "system:serviceaccount:team-a:app").await.status(), 403, "app may not list pods");
    role(&sim, "team-a", "reader", json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]));
    role_binding(&sim, "team-a", "app-reads", "Role", "reader", sa_subject("team-a", "app"));
    assert_eq!(as_user(admin, "system:serviceaccount:team-a:app").await.status(), 200);
    let r = as_user(app, "system:admin").await;
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["message"],
        "users \"system:admin\" is forbidden: User \"system:serviceaccount:team-a:app\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_one_grants_more_than_they_hold() {
    let sim = Sim::start_with(rbac(false)).await;
    namespace(&sim, "team-a");
    let token = service_account(&sim, "team-a", "app");
    role_binding(&sim, "team-a", "app-admin", "ClusterRole", "admin", sa_subject("team-a", "app"));
    let roles = "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/roles";
    let bindings = "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/rolebindings";
    let a_role = |name: &str, resource: &str, verb: &str| {
        json!({"apiVersion": RBAC, "kind": "Role", "metadata": {"name": name},
            "rules": [{"apiGroups": [""], "resources": [resource], "verbs": [verb]}]})
    };
    // What admin holds in team-a can be granted; what it does not, cannot.
    let (code, body) = call(&sim, Some(&token), Method::POST, roles, Some(a_role("reader", "pods", "get"))).await;
    assert_eq!(code, 201, "{body}");
    let (code, body) =
        call(&sim, Some(&token), Method::POST, roles, Some(a_role("quota", "resourcequotas", "create"))).await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        "roles.rbac.authorization.k8s.io \"quota\" is forbidden: user \"system:serviceaccount:team-a:app\" (groups=[\"system:serviceaccounts\" \"system:serviceaccounts:team-a\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"resourcequotas\"], Verbs:[\"create\"]}"
    );
    // A patch is judged by the object it would make.
    let patch = json!({"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]});
    let r = sim
        .http()
        .patch(sim.url(&format!("{roles}/reader")))
        .bearer_auth(&token)
        .header("content-type", "application/merge-patch+json")
        .body(patch.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Binding a role one does not hold is refused; one within one's rights is not.
    let binding = |name: &str, role: &str| {
        json!({"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": "team-a"}]})
    };
    let (code, body) = call(&sim, Some(&token), Method::POST, bindings, Some(binding("root", "cluster-admin"))).await;
    assert_eq!(code, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("rolebindings.rbac.authorization.k8s.io \"root\" is forbidden: user")
    );
    let (code, body) = call(&sim, Some(&token), Method::POST, bindings, Some(binding("viewer", "view"))).await;
    assert_eq!(code, 201, "{body}");
    // escalate on roles and bind on a role lift the checks, as upstream.
    cluster_role(
        &sim,
        "escalator",
        json!({}),
        json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["escalate"]},
               {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["cluster-admin"]}]),
    );
    role_binding(&sim, "team-a", "app-escalates", "ClusterRole", "escalator", sa_subject("team-a", "app"));
    let (code, body) =
        call(&sim, Some(&token), Method::POST, roles, Some(a_role("quota", "resourcequotas", "create"))).await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = call(&sim, Some(&token), Method::POST, bindings, Some(binding("root", "cluster-admin"))).await;
    assert_eq!(code, 201, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_log_names_each_user_and_what_was_refused() {
    let sim = Sim::start_with(rbac(false)).await;
    namespace(&sim, "team-a");
    let token = service_account(&sim, "team-a", "app");
    role(
        &sim,
        "team-a",
        "worker",
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "create"]},
        {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]}]),
    );
    role_binding(&sim, "team-a", "app-works", "Role", "worker", sa_subject("team-a", "app"));
    let log = &sim.cluster.api().requests;
    log.enable();
    assert_eq!(get(&sim, Some(&token), "/api/v1/namespaces/team-a/pods").await.0, 200);
    assert_eq!(call(&sim, Some(&token), Method::POST, "/api/v1/namespaces/team-a/pods", Some(pod("p"))).await.0, 201);
    assert_eq!(
        call(&sim, Some(&token), Method::DELETE, "/apis/apps/v1/namespaces/team-a/deployments/d", None).await.0,
        403
    );
    assert_eq!(get(&sim, Some("bad"), "/api/v1/namespaces/team-a/pods").await.0, 401);
    let user = "system:serviceaccount:team-a:app";
    let used: Vec<(String, String, String)> = log.used_by(user).into_iter().collect();
    let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(used, vec![s("create", "", "pods"), s("list", "", "pods")]);
    let denied = log.denied();
    assert!(
        denied
            .iter()
            .any(|(k, _)| k.user == user && k.verb == "delete" && k.group == "apps" && k.resource == "deployments")
    );
    assert!(denied.iter().any(|(k, _)| k.user.is_empty() && k.verb == "list"), "{denied:?}");
    // The same over HTTP.
    let (_, body) = sim.get("/_sim/requests").await;
    assert!(body["requests"].as_array().unwrap().iter().any(|r| r["user"] == user && r["verb"] == "create"));
    assert!(body["denied"].as_array().unwrap().iter().any(|r| r["user"] == user && r["group"] == "apps"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulated_control_plane_runs_under_rbac() {
    let sim = Sim::start_clock(rbac(true), kube_sim::Clock::new(10.0)).await;
    let client = sim.client().await;
    let node: Node = serde_json::from_value(json!({"metadata": {"name": "n1"},
        "status": {"capacity": {"cpu": "8", "memory": "16Gi", "pods": "110"}}}))
    .unwrap();
    Api::<Node>::all(client.clone()).create(&PostParams::default(), &node).await.unwrap();
    let d: Deployment = serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {"replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}))
    .unwrap();
    Api::<Deployment>::namespaced(client.clone(), "default").create(&PostParams::default(), &d).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "default");
    eventually(30, "two running pods scheduled by the simulated control plane", || async {
        let list = pods.list(&ListParams::default().labels("app=web")).await.unwrap();
        list.items.len() == 2
            && list.items.iter().all(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
    })
    .await;
}

// ----- kubectl ---------------------------------------------------------------------

async fn kubectl(bin: &str, kubeconfig: &std::path::Path, cache: &std::path::Path, args: &[&str]) -> (bool, String) {
    common::run_kubectl(bin, kubeconfig, cache, args, 60).await
}

fn kubectl_bin(version: &str) -> Option<String> {
    let bin = format!("/usr/lib/google-cloud-sdk/bin/kubectl.{version}");
    if std::path::Path::new(&bin).exists() {
        return Some(bin);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{bin} is missing: the machine image ships kubectl 1.27..1.33"
    );
    eprintln!("skipping kubectl {version}: {bin} is not installed");
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_auth_can_i_whoami_and_create_token_with_every_version() {
    // kubectl sends credentials over HTTPS only (over plain HTTP it would be anonymous).
    let sim = Sim::start_with(ServerConfig {
        simulate: false,
        auth: AuthConfig { tls: true, ..AuthConfig::rbac() },
        ..ServerConfig::default()
    })
    .await;
    namespace(&sim, "team-a");
    namespace(&sim, "team-b");
    let token = service_account(&sim, "team-a", "app");
    role(&sim, "team-a", "pod-creator", json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}]));
    role_binding(&sim, "team-a", "app-creates-pods", "Role", "pod-creator", sa_subject("team-a", "app"));
    let app_kc = sim.dir.path().join("app.kubeconfig");
    std::fs::write(&app_kc, sim.server.kubeconfig_for(&Credentials::Token(token))).unwrap();
    let admin_kc = sim.kubeconfig_path();
    for version in ["1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33"] {
        let Some(bin) = kubectl_bin(version) else { continue };
        let cache = sim.dir.path().join(format!("cache-{version}"));
        let run = |kc: &std::path::Path, args: &[&str]| {
            let (bin, kc, cache) = (bin.clone(), kc.to_path_buf(), cache.clone());
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            async move {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                kubectl(&bin, &kc, &cache, &args).await
            }
        };
        let (ok, out) = run(&app_kc, &["auth", "can-i", "create", "pods", "-n", "team-a"]).await;
        assert!(ok && out.trim() == "yes", "kubectl {version}: {out}");
        let (ok, out) = run(&app_kc, &["auth", "can-i", "create", "pods", "-n", "team-b"]).await;
        assert!(!ok && out.trim() == "no", "kubectl {version}: {out}");
        let (ok, out) = run(&app_kc, &["auth", "can-i", "delete", "pods", "-n", "team-a"]).await;
        assert!(!ok && out.trim() == "no", "kubectl {version}: {out}");
        let (ok, out) = run(&app_kc, &["auth", "can-i", "--list", "-n", "team-a"]).await;
        assert!(
            ok && out.lines().any(|l| l.starts_with("pods ") && l.contains("[create]")),
            "kubectl {version}: {out}"
        );
        let (ok, out) = run(&app_kc, &["get", "pods", "-n", "team-b"]).await;
        assert!(
            !ok && out.contains("pods is forbidden: User \"system:serviceaccount:team-a:app\" cannot list resource \"pods\" in API group \"\" in the namespace \"team-b\""),
            "kubectl {version}: {out}"
        );
        let (ok, out) = run(
            &admin_kc,
            &["auth", "can-i", "create", "pods", "-n", "team-a", "--as", "system:serviceaccount:team-a:app"],
        )
        .await;
        assert!(ok && out.trim() == "yes", "kubectl {version} --as: {out}");
        let (ok, out) = run(&admin_kc, &["create", "token", "app", "-n", "team-a", "--duration", "10m"]).await;
        assert!(ok, "kubectl {version} create token: {out}");
        let (ok, out) =
            run(&admin_kc, &["--token", out.trim(), "auth", "can-i", "create", "pods", "-n", "team-a"]).await;
        assert!(ok && out.trim() == "yes", "kubectl {version} with a created token: {out}");
        if version != "1.27" {
            // 1.27 knows SelfSubjectReview only in v1alpha1/v1beta1, which a v1.32 server no longer serves.
            let (ok, out) = run(&app_kc, &["auth", "whoami", "-o", "json"]).await;
            assert!(ok, "kubectl {version} whoami: {out}");
            let me: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("kubectl {version}: {e}: {out}"));
            assert_eq!(me["status"]["userInfo"]["username"], "system:serviceaccount:team-a:app", "kubectl {version}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_over_tls_with_kubectl_and_kube() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = Sim::start_with(ServerConfig {
        simulate: false,
        auth: AuthConfig { tls: true, ..AuthConfig::rbac() },
        ..ServerConfig::default()
    })
    .await;
    assert!(sim.server.url().starts_with("https://127.0.0.1:"));
    // The administrator's kubeconfig: CA and client certificate (kubernetes-admin, system:masters).
    let client = sim.client().await;
    assert!(Api::<Pod>::all(client).list(&ListParams::default()).await.is_ok());
    namespace(&sim, "team-a");
    // alice in group dev, which may view team-a.
    let alice = sim.cluster.auth().issue_client_certificate("alice", &["dev"]).unwrap();
    role_binding(&sim, "team-a", "dev-view", "ClusterRole", "view", json!({"kind": "Group", "name": "dev"}));
    let kc =
        kube::config::Kubeconfig::from_yaml(&sim.server.kubeconfig_for(&Credentials::ClientCertificate(alice.clone())))
            .unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
    let alice_client = kube::Client::try_from(config).unwrap();
    let pods: Api<Pod> = Api::namespaced(alice_client.clone(), "team-a");
    assert!(pods.list(&ListParams::default()).await.is_ok());
    let err = pods.create(&PostParams::default(), &serde_json::from_value(pod("p")).unwrap()).await.unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 403);
            assert_eq!(
                s.message,
                "pods is forbidden: User \"alice\" cannot create resource \"pods\" in API group \"\" in the namespace \"team-a\""
            );
        }
        other => panic!("expected 403, got {other}"),
    }
    // The kube-root-ca.crt of every namespace is the CA that signed the server.
    let cm = sim.cluster.dynamic("v1", "configmaps", Some("team-a")).unwrap().get("kube-root-ca.crt").unwrap();
    assert_eq!(cm["data"]["ca.crt"].as_str(), sim.server.ca_pem());

    let Some(bin) = kubectl_bin("1.33") else { return };
    let cache = sim.dir.path().join("cache");
    let (ok, out) = kubectl(&bin, &sim.kubeconfig_path(), &cache, &["auth", "whoami"]).await;
    assert!(ok && out.contains("kubernetes-admin") && out.contains("system:masters"), "{out}");
    let alice_kc = sim.dir.path().join("alice.kubeconfig");
    std::fs::write(&alice_kc, sim.server.kubeconfig_for(&Credentials::ClientCertificate(alice))).unwrap();
    let (ok, out) = kubectl(&bin, &alice_kc, &cache, &["get", "pods", "-n", "team-a"]).await;
    assert!(ok, "{out}");
    let (ok, out) = kubectl(&bin, &alice_kc, &cache, &["auth", "whoami"]).await;
    assert!(ok && out.contains("alice") && out.contains("[dev system:authenticated]"), "{out}");
    // A certificate from another CA: 401, as upstream's x509 authenticator answers.
    let mallory = kube_sim::auth::tls::Pki::generate().unwrap().issue_client("mallory", &["system:masters"]).unwrap();
    let mallory_kc = sim.dir.path().join("mallory.kubeconfig");
    std::fs::write(&mallory_kc, sim.server.kubeconfig_for(&Credentials::ClientCertificate(mallory))).unwrap();
    let (ok, out) = kubectl(&bin, &mallory_kc, &cache, &["get", "namespaces"]).await;
    assert!(!ok && out.contains("Unauthorized"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_to_the_auth_apis_is_a_4xx_never_a_5xx() {
    let sim = Sim::start_with(rbac(false)).await;
    namespace(&sim, "team-a");
    create(&sim, "v1", "serviceaccounts", Some("team-a"), json!({"metadata": {"name": "app"}}));
    let admin = sim.cluster.auth().admin_token().to_string();
    let paths = [
        "/api/v1/namespaces/team-a/serviceaccounts/app/token",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        "/apis/authorization.k8s.io/v1/namespaces/team-a/localsubjectaccessreviews",
    ];
    let bodies: [(&str, &[u8]); 9] = [
        ("application/json", b""),
        ("application/json", b"null"),
        ("application/json", b"[]"),
        ("application/json", b"{}"),
        ("application/json", br#"{"spec": 5, "metadata": "x"}"#),
        (
            "application/json",
            br#"{"spec": {"expirationSeconds": "soon", "boundObjectRef": 1, "token": 7, "resourceAttributes": 3}}"#,
        ),
        ("application/json", b"\x00\xff{"),
        ("application/vnd.kubernetes.protobuf", b"k8s\x00\xff\xff\xff"),
        ("text/plain", b"hello"),
    ];
    for path in paths {
        for (ct, body) in bodies {
            let r = sim
                .http()
                .post(sim.url(path))
                .bearer_auth(&admin)
                .header("content-type", ct)
                .body(body.to_vec())
                .send()
                .await
                .unwrap();
            let code = r.status().as_u16();
            assert!(code == 201 || (400..500).contains(&code), "{path} {ct} {body:?}: {code}");
        }
    }
    // Impersonating groups without a user, and odd credentials, are refused cleanly.
    let r = sim.http().get(sim.url("/api")).bearer_auth(&admin).header("Impersonate-Group", "x").send().await.unwrap();
    assert_eq!(r.status(), 400);
    for auth in ["Bearer", "Basic dXNlcjpwdw==", "Bearer a.b.c", "Bearer e30.e30.e30"] {
        let code =
            sim.http().get(sim.url("/api")).header("authorization", auth).send().await.unwrap().status().as_u16();
        assert!((400..500).contains(&code), "{auth}: {code}");
    }
}
