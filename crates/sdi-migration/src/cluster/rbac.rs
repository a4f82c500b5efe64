//! Every Kubernetes API call this service makes, as RBAC rules: the source of
//! truth for `deploy/clusterrole.yaml` (a test compares the two), so the role is
//! least-privilege by construction and a new call without a rule fails CI.

/// (API group, resource, verbs), sorted by group then resource.
pub const RULES: &[(&str, &str, &[&str])] = &[
    // Strategies and snapshot: read, watch, create copies, relabel, delete originals.
    ("", "pods", &["create", "delete", "get", "list", "patch", "watch"]),
    // `evict`.
    ("", "pods/eviction", &["create"]),
    // The cluster cache (pre-flight, waits, the snapshot); a node the cache does not know is read.
    ("", "nodes", &["get", "list", "watch"]),
    // Kubelet checkpoint API through the node proxy (`POST .../proxy/checkpoint/...`).
    ("", "nodes/proxy", &["create"]),
    // `recreate` with `preserve_pv`: checkpoint PVCs, deleted on undo; repair lists them.
    ("", "persistentvolumeclaims", &["create", "delete", "list"]),
    // `pin` edits Deployments and waits for their rollout (cache); repair lists them.
    ("apps", "deployments", &["get", "list", "patch", "watch"]),
    // Owners (cache): selectors and the Deployment behind a ReplicaSet.
    ("apps", "replicasets", &["get", "list", "watch"]),
    // Leader election (one Lease, `sdi-migration`, in LEASE_NAMESPACE).
    ("coordination.k8s.io", "leases", &["create", "get", "update"]),
    // Events on migrated pods (the recorder creates, then patches a series).
    ("events.k8s.io", "events", &["create", "patch"]),
    // Migrations as objects: created by the API and the rebalancer, watched by every
    // replica, run by the leader's controller (finalizer, cancel annotation), and
    // deleted after MIGRATION_HISTORY_TTL.
    ("migration.sdi.keti.dev", "podmigrations", &["create", "delete", "get", "list", "patch", "watch"]),
    // One status write per step.
    ("migration.sdi.keti.dev", "podmigrations/status", &["patch"]),
    // Usage, before and after a move, and for pressure.
    ("metrics.k8s.io", "pods", &["get", "list"]),
    ("metrics.k8s.io", "nodes", &["list"]),
    // The snapshot's budgets.
    ("policy", "poddisruptionbudgets", &["list", "watch"]),
];

/// What checking the API's callers needs (`AUTH_MODE=kubernetes`): exactly the
/// built-in ClusterRole `system:auth-delegator`, which `deploy/` binds to the
/// ServiceAccount rather than copying into the service's own role.
pub const DELEGATED_AUTH_ROLE: &str = "system:auth-delegator";
/// The rules of [`DELEGATED_AUTH_ROLE`], as the service uses them.
pub const DELEGATED_AUTH_RULES: &[(&str, &str, &[&str])] = &[
    ("authentication.k8s.io", "tokenreviews", &["create"]),
    ("authorization.k8s.io", "subjectaccessreviews", &["create"]),
];

/// Every API call the node agent (`sdi-migration agent`) makes: the source of
/// truth for `deploy/agent.yaml` (a test compares them). Cluster-wide: it
/// watches PodMigrations for requests addressed to its node and answers on
/// them. Its Lease is in its own namespace only (`AGENT_NAMESPACE_RULES`, a Role).
pub const AGENT_RULES: &[(&str, &str, &[&str])] =
    &[("migration.sdi.keti.dev", "podmigrations", &["get", "list", "patch", "watch"])];

/// The agent's presence: one Lease per node, in the agent's namespace.
pub const AGENT_NAMESPACE_RULES: &[(&str, &str, &[&str])] =
    &[("coordination.k8s.io", "leases", &["create", "get", "update"])];
