//! The default roles and bindings a real API server creates at start
//! (upstream's bootstrap policy): `cluster-admin` for `system:masters`, the
//! user-facing `admin`, `edit` and `view` (filled by aggregation from the
//! `system:aggregate-to-*` roles, and aggregating into each other), discovery
//! and self-review for every authenticated user, the public health and
//! version endpoints for everyone, and `system:auth-delegator` /
//! `system:monitoring` for what services need. Kubelet, controller and
//! scheduler roles are left out: those components act in-process here.

use serde_json::{Value, json};

use super::rbac::GROUP;
use crate::apiserver::{ApiServer, WriteOptions};

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];
const ALL: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

type R = (&'static [&'static str], &'static [&'static str], &'static [&'static str]);

fn rules(resource_rules: &[R], urls: &[(&[&str], &[&str])]) -> Value {
    let mut out: Vec<Value> = resource_rules
        .iter()
        .map(|(groups, resources, verbs)| json!({"apiGroups": groups, "resources": resources, "verbs": verbs}))
        .collect();
    out.extend(urls.iter().map(|(paths, verbs)| json!({"nonResourceURLs": paths, "verbs": verbs})));
    Value::Array(out)
}

const AGG_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
const AGG_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
const AGG_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";

fn role(name: &str, labels: &[&str], rules: Value, aggregate_from: Option<&str>) -> Value {
    let mut l = serde_json::Map::new();
    l.insert("kubernetes.io/bootstrapping".into(), json!("rbac-defaults"));
    for k in labels {
        l.insert((*k).into(), json!("true"));
    }
    let mut v = json!({
        "apiVersion": format!("{GROUP}/v1"), "kind": "ClusterRole",
        "metadata": {"name": name, "labels": l,
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
    });
    match aggregate_from {
        Some(label) => {
            v["aggregationRule"] = json!({"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]});
            v["rules"] = json!([]);
        }
        None => v["rules"] = rules,
    }
    v
}

/// The bootstrap ClusterRoles.
pub fn cluster_roles() -> Vec<Value> {
    let discovery_urls: &[&str] = &[
        "/api",
        "/api/*",
        "/apis",
        "/apis/*",
        "/healthz",
        "/livez",
        "/openapi",
        "/openapi/*",
        "/readyz",
        "/version",
        "/version/",
    ];
    vec![
        role("cluster-admin", &[], rules(&[(&["*"], &["*"], &["*"])], &[(&["*"], &["*"])]), None),
        role("admin", &[], json!([]), Some(AGG_ADMIN)),
        role("edit", &[AGG_ADMIN], json!([]), Some(AGG_EDIT)),
        role("view", &[AGG_EDIT], json!([]), Some(AGG_VIEW)),
        role(
            "system:aggregate-to-admin",
            &[AGG_ADMIN],
            rules(
                &[
                    (&["authorization.k8s.io"], &["localsubjectaccessreviews"], &["create"]),
                    (&[GROUP], &["rolebindings", "roles"], ALL),
                ],
                &[],
            ),
            None,
        ),
        role(
            "system:aggregate-to-edit",
            &[AGG_EDIT],
            rules(
                &[
                    (
                        &[""],
                        &["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"],
                        READ,
                    ),
                    (&[""], &["serviceaccounts"], &["impersonate"]),
                    (&[""], &["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"], WRITE),
                    (&[""], &["pods/eviction"], &["create"]),
                    (
                        &[""],
                        &[
                            "configmaps",
                            "events",
                            "persistentvolumeclaims",
                            "replicationcontrollers",
                            "replicationcontrollers/scale",
                            "secrets",
                            "serviceaccounts",
                            "services",
                            "services/proxy",
                        ],
                        WRITE,
                    ),
                    (&[""], &["serviceaccounts/token"], &["create"]),
                    (
                        &["apps"],
                        &[
                            "daemonsets",
                            "deployments",
                            "deployments/rollback",
                            "deployments/scale",
                            "replicasets",
                            "replicasets/scale",
                            "statefulsets",
                            "statefulsets/scale",
                        ],
                        WRITE,
                    ),
                    (&["autoscaling"], &["horizontalpodautoscalers"], WRITE),
                    (&["batch"], &["cronjobs", "jobs"], WRITE),
                    (
                        &["extensions"],
                        &[
                            "daemonsets",
                            "deployments",
                            "deployments/rollback",
                            "deployments/scale",
                            "ingresses",
                            "networkpolicies",
                            "replicasets",
                            "replicasets/scale",
                            "replicationcontrollers/scale",
                        ],
                        WRITE,
                    ),
                    (&["policy"], &["poddisruptionbudgets"], WRITE),
                    (&["networking.k8s.io"], &["ingresses", "networkpolicies"], WRITE),
                    (&["coordination.k8s.io"], &["leases"], ALL),
                ],
                &[],
            ),
            None,
        ),
        role(
            "system:aggregate-to-view",
            &[AGG_VIEW],
            rules(
                &[
                    (
                        &[""],
                        &[
                            "configmaps",
                            "endpoints",
                            "persistentvolumeclaims",
                            "persistentvolumeclaims/status",
                            "pods",
                            "replicationcontrollers",
                            "replicationcontrollers/scale",
                            "serviceaccounts",
                            "services",
                            "services/status",
                        ],
                        READ,
                    ),
                    (
                        &[""],
                        &[
                            "bindings",
                            "events",
                            "limitranges",
                            "namespaces/status",
                            "pods/log",
                            "pods/status",
                            "replicationcontrollers/status",
                            "resourcequotas",
                            "resourcequotas/status",
                        ],
                        READ,
                    ),
                    (&[""], &["namespaces"], READ),
                    (&["discovery.k8s.io"], &["endpointslices"], READ),
                    (
                        &["apps"],
                        &[
                            "controllerrevisions",
                            "daemonsets",
                            "daemonsets/status",
                            "deployments",
                            "deployments/scale",
                            "deployments/status",
                            "replicasets",
                            "replicasets/scale",
                            "replicasets/status",
                            "statefulsets",
                            "statefulsets/scale",
                            "statefulsets/status",
                        ],
                        READ,
                    ),
                    (&["autoscaling"], &["horizontalpodautoscalers", "horizontalpodautoscalers/status"], READ),
                    (&["batch"], &["cronjobs", "cronjobs/status", "jobs", "jobs/status"], READ),
                    (
                        &["extensions"],
                        &[
                            "daemonsets",
                            "daemonsets/status",
                            "deployments",
                            "deployments/scale",
                            "deployments/status",
                            "ingresses",
                            "ingresses/status",
                            "networkpolicies",
                            "replicasets",
                            "replicasets/scale",
                            "replicasets/status",
                            "replicationcontrollers/scale",
                        ],
                        READ,
                    ),
                    (&["policy"], &["poddisruptionbudgets", "poddisruptionbudgets/status"], READ),
                    (&["networking.k8s.io"], &["ingresses", "ingresses/status", "networkpolicies"], READ),
                ],
                &[],
            ),
            None,
        ),
        role(
            "system:auth-delegator",
            &[],
            rules(
                &[
                    (&["authentication.k8s.io"], &["tokenreviews"], &["create"]),
                    (&["authorization.k8s.io"], &["subjectaccessreviews"], &["create"]),
                ],
                &[],
            ),
            None,
        ),
        role(
            "system:basic-user",
            &[],
            rules(
                &[
                    (&["authorization.k8s.io"], &["selfsubjectaccessreviews", "selfsubjectrulesreviews"], &["create"]),
                    (&["authentication.k8s.io"], &["selfsubjectreviews"], &["create"]),
                ],
                &[],
            ),
            None,
        ),
        role("system:discovery", &[], rules(&[], &[(discovery_urls, &["get"])]), None),
        role(
            "system:monitoring",
            &[],
            rules(
                &[],
                &[(
                    &[
                        "/healthz",
                        "/healthz/*",
                        "/livez",
                        "/livez/*",
                        "/metrics",
                        "/metrics/slis",
                        "/readyz",
                        "/readyz/*",
                    ],
                    &["get"],
                )],
            ),
            None,
        ),
        role(
            "system:public-info-viewer",
            &[],
            rules(&[], &[(&["/healthz", "/livez", "/readyz", "/version", "/version/"], &["get"])]),
            None,
        ),
        role(
            "system:service-account-issuer-discovery",
            &[],
            rules(&[], &[(&["/.well-known/openid-configuration", "/openid/v1/jwks"], &["get"])]),
            None,
        ),
    ]
}

fn binding(name: &str, role: &str, groups: &[&str]) -> Value {
    let subjects: Vec<Value> = groups.iter().map(|g| json!({"apiGroup": GROUP, "kind": "Group", "name": g})).collect();
    json!({
        "apiVersion": format!("{GROUP}/v1"), "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role},
        "subjects": subjects,
    })
}

/// The bootstrap ClusterRoleBindings.
pub fn cluster_role_bindings() -> Vec<Value> {
    vec![
        binding("cluster-admin", "cluster-admin", &[super::MASTERS]),
        binding("system:basic-user", "system:basic-user", &[super::AUTHENTICATED]),
        binding("system:discovery", "system:discovery", &[super::AUTHENTICATED]),
        binding("system:monitoring", "system:monitoring", &["system:monitoring"]),
        binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            &[super::AUTHENTICATED, super::UNAUTHENTICATED],
        ),
        binding(
            "system:service-account-issuer-discovery",
            "system:service-account-issuer-discovery",
            &[super::SERVICE_ACCOUNTS],
        ),
    ]
}

/// Create the bootstrap policy and fill the aggregated roles (at server start).
pub fn create(server: &ApiServer) {
    let opts = WriteOptions::manager("kube-apiserver");
    for (plural, objects) in [("clusterroles", cluster_roles()), ("clusterrolebindings", cluster_role_bindings())] {
        let res = server.res(GROUP, plural);
        for o in objects {
            let r = server.create(&res, None, o, &opts);
            debug_assert!(r.is_ok(), "{r:?}");
        }
    }
    super::aggregation::reconcile(server);
}
