//! Who may call what on the service's HTTP API: the permission each operation
//! needs, in Kubernetes RBAC terms, so the cluster's RBAC decides for the REST
//! API exactly as it does for `kubectl` on PodMigrations.
//!
//! Migrations are checked against the PodMigration resource in the pod's
//! namespace. The cluster-wide views (plan, nodes, stream, totals, the policy
//! check) are non-resource URLs, because they show every namespace at once and
//! can only be granted by a ClusterRole. Their RBAC paths are the API's paths
//! under `/sdi-migration`: the API server's bootstrap role `system:discovery`
//! lets every authenticated user `get /api/*`, which would otherwise open
//! `/api/v1/plan` to all. Prometheus metrics follow kube-rbac-proxy's
//! convention, `get` on `/metrics`. Probes, the OpenAPI document and the web
//! page's static files are open: they hold no cluster data.

use std::fmt;

/// The API group of PodMigrations.
pub const GROUP: &str = "migration.sdi.keti.dev";
/// The resource (plural) of PodMigrations.
pub const RESOURCE: &str = "podmigrations";

/// An operation of the HTTP API, with what the permission depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// `POST /api/v1/migrations` for a pod in `namespace`.
    CreateMigration { namespace: String },
    /// `GET /api/v1/migrations/{id}` (and `/status`) of a migration in `namespace`.
    GetMigration { namespace: String, name: String },
    /// `DELETE /api/v1/migrations/{id}`: cancel.
    CancelMigration { namespace: String, name: String },
    /// `GET /api/v1/migrations` restricted to `namespace`, or every namespace (`None`).
    ListMigrations { namespace: Option<String> },
    /// Any other route, by HTTP method and path.
    Route { method: String, path: String },
}

/// What an operation needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permission {
    /// Anyone, even without credentials (probes, static files).
    Open,
    /// A verb on a resource, in a namespace (`""`: cluster-wide).
    Resource { verb: &'static str, group: &'static str, resource: &'static str, namespace: String, name: String },
    /// A verb on a non-resource URL (lower-case HTTP method, as Kubernetes does).
    NonResource { verb: &'static str, path: &'static str },
}

impl Permission {
    fn podmigrations(verb: &'static str, namespace: &str, name: &str) -> Permission {
        Permission::Resource { verb, group: GROUP, resource: RESOURCE, namespace: namespace.into(), name: name.into() }
    }
}

/// The routes whose permission is a non-resource URL: (method, path, verb, URL).
const NON_RESOURCE: &[(&str, &str, &str, &str)] = &[
    ("GET", "/api/v1/plan", "get", "/sdi-migration/api/v1/plan"),
    ("GET", "/api/v1/nodes", "get", "/sdi-migration/api/v1/nodes"),
    ("GET", "/api/v1/stream", "get", "/sdi-migration/api/v1/stream"),
    ("GET", "/api/v1/metrics", "get", "/sdi-migration/api/v1/metrics"),
    ("POST", "/api/v1/migration/policy", "create", "/sdi-migration/api/v1/migration/policy"),
    ("GET", "/metrics", "get", "/metrics"),
];

/// Paths anyone may read: liveness and readiness (the kubelet sends no
/// token), the API's description, and the web page's own files (the page asks
/// for a token and sends it with its data requests).
const OPEN: &[&str] = &["/health", "/ready", "/openapi.json", "/", "/ui/app.css", "/ui/app.js"];

/// The permission `op` needs. Unknown routes need nothing beyond
/// authentication: they answer 404 or 405 and show nothing.
pub fn required(op: &Operation) -> Option<Permission> {
    Some(match op {
        Operation::CreateMigration { namespace } => Permission::podmigrations("create", namespace, ""),
        Operation::GetMigration { namespace, name } => Permission::podmigrations("get", namespace, name),
        Operation::CancelMigration { namespace, name } => Permission::podmigrations("delete", namespace, name),
        Operation::ListMigrations { namespace } => {
            Permission::podmigrations("list", namespace.as_deref().unwrap_or(""), "")
        }
        Operation::Route { method, path } => {
            let method = if method == "HEAD" { "GET" } else { method.as_str() };
            if method == "GET" && OPEN.contains(&path.as_str()) {
                return Some(Permission::Open);
            }
            let (_, _, verb, url) = NON_RESOURCE.iter().find(|(m, p, _, _)| *m == method && p == path)?;
            Permission::NonResource { verb, path: url }
        }
    })
}

/// Whether a route's permission depends on the migration it concerns (and so
/// is checked once that is known, not from the path alone).
pub fn is_migration_route(path: &str) -> bool {
    path == "/api/v1/migrations" || path.starts_with("/api/v1/migrations/")
}

/// Every non-resource URL the API guards, with its verb: what the ClusterRoles
/// in `deploy/` grant.
pub fn non_resource_urls() -> impl Iterator<Item = (&'static str, &'static str)> {
    NON_RESOURCE.iter().map(|(_, _, verb, url)| (*verb, *url))
}

/// How a caller's namespaces filter a list of migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListScope {
    /// Allowed cluster-wide: everything.
    All,
    /// Only these namespaces (possibly none).
    Namespaces(Vec<String>),
}

impl ListScope {
    pub fn admits(&self, namespace: &str) -> bool {
        match self {
            ListScope::All => true,
            ListScope::Namespaces(ns) => ns.iter().any(|n| n == namespace),
        }
    }
}

impl fmt::Display for Permission {
    /// As a refusal names it, in `kubectl auth can-i` terms:
    /// `create podmigrations.migration.sdi.keti.dev in namespace "team-b"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Permission::Open => f.write_str("nothing"),
            Permission::Resource { verb, group, resource, namespace, name } => {
                write!(f, "{verb} {resource}.{group}")?;
                if !name.is_empty() {
                    write!(f, " {name:?}")?;
                }
                if namespace.is_empty() {
                    f.write_str(" in all namespaces")
                } else {
                    write!(f, " in namespace {namespace:?}")
                }
            }
            Permission::NonResource { verb, path } => write!(f, "{verb} on the non-resource URL {path}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, path: &str) -> Option<Permission> {
        required(&Operation::Route { method: method.into(), path: path.into() })
    }

    #[test]
    fn migrations_need_the_verb_on_podmigrations_in_the_pods_namespace() {
        let p = required(&Operation::CreateMigration { namespace: "team-a".into() }).unwrap();
        assert_eq!(p, Permission::podmigrations("create", "team-a", ""));
        assert_eq!(p.to_string(), r#"create podmigrations.migration.sdi.keti.dev in namespace "team-a""#);
        let p = required(&Operation::CancelMigration { namespace: "b".into(), name: "m".into() }).unwrap();
        assert_eq!(p.to_string(), r#"delete podmigrations.migration.sdi.keti.dev "m" in namespace "b""#);
        let p = required(&Operation::GetMigration { namespace: "b".into(), name: "m".into() }).unwrap();
        assert!(matches!(p, Permission::Resource { verb: "get", .. }));
        let all = required(&Operation::ListMigrations { namespace: None }).unwrap();
        assert_eq!(all.to_string(), "list podmigrations.migration.sdi.keti.dev in all namespaces");
    }

    #[test]
    fn views_are_non_resource_urls_and_probes_are_open() {
        assert_eq!(route("GET", "/metrics"), Some(Permission::NonResource { verb: "get", path: "/metrics" }));
        assert_eq!(
            route("HEAD", "/api/v1/plan"),
            Some(Permission::NonResource { verb: "get", path: "/sdi-migration/api/v1/plan" })
        );
        assert_eq!(
            route("POST", "/api/v1/migration/policy").unwrap().to_string(),
            "create on the non-resource URL /sdi-migration/api/v1/migration/policy"
        );
        // Never under /api or /apis, which system:discovery opens to every authenticated user.
        for (_, url) in non_resource_urls() {
            assert!(!url.starts_with("/api"), "{url}");
        }
        for open in ["/health", "/ready", "/", "/ui/app.js", "/openapi.json"] {
            assert_eq!(route("GET", open), Some(Permission::Open), "{open}");
        }
        // Writing to an open path is not open (it answers 405 to a caller only).
        assert_eq!(route("POST", "/health"), None);
        assert_eq!(route("GET", "/nowhere"), None);
        assert_eq!(non_resource_urls().count(), NON_RESOURCE.len());
    }

    #[test]
    fn migration_routes_are_recognised() {
        assert!(is_migration_route("/api/v1/migrations"));
        assert!(is_migration_route("/api/v1/migrations/migration-0a1b2c3d/status"));
        assert!(!is_migration_route("/api/v1/migration/policy"));
        assert!(!is_migration_route("/api/v1/migrationsx"));
    }

    #[test]
    fn list_scope() {
        assert!(ListScope::All.admits("x"));
        let s = ListScope::Namespaces(vec!["a".into()]);
        assert!(s.admits("a") && !s.admits("b"));
    }
}
