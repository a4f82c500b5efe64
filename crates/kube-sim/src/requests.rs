//! Who asked what: when enabled, every request is counted by client (its
//! `User-Agent`), authenticated user, Kubernetes verb, API group and resource
//! — so a test can hold a client to a request budget ("a move costs its writes
//! plus two reads, an idle cycle none") and prove least privilege (the exact
//! set of (verb, group, resource) a ServiceAccount used). Requests refused
//! with 401 or 403 are counted too, and also apart ([`RequestLog::denied`]).
//! Off by default: then the cost is one atomic load per request.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use serde::Serialize;

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RequestKey {
    /// The `User-Agent` header (empty when the client sent none).
    pub agent: String,
    /// The authenticated user (`system:serviceaccount:<ns>:<name>`,
    /// `system:anonymous`…; empty when authentication failed).
    pub user: String,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`; for paths that are not resources, the lower-case
    /// HTTP method (`get`, `post`…), as RBAC sees them.
    pub verb: String,
    /// The API group (`""` for the core group and for non-resource paths).
    pub group: String,
    /// `pods`, `pods/eviction`, `deployments`… or the path (`/api`, `/version`).
    pub resource: String,
}

#[derive(Debug, Default)]
pub struct RequestLog {
    enabled: AtomicBool,
    counts: Mutex<BTreeMap<RequestKey, u64>>,
    denied: Mutex<BTreeMap<RequestKey, u64>>,
}

impl RequestLog {
    pub fn enable(&self) {
        self.enabled.store(true, Ordering::Relaxed);
    }

    pub fn disable(&self) {
        self.enabled.store(false, Ordering::Relaxed);
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    pub fn reset(&self) {
        self.counts.lock().clear();
        self.denied.lock().clear();
    }

    /// Count a request of no particular user.
    pub fn record(&self, agent: &str, verb: &str, resource: &str) {
        let key = RequestKey {
            agent: agent.into(),
            user: String::new(),
            verb: verb.into(),
            group: String::new(),
            resource: resource.into(),
        };
        self.record_key(key, false);
    }

    /// Count a request; `denied` when it was refused (401/403).
    pub fn record_key(&self, key: RequestKey, denied: bool) {
        if denied {
            *self.denied.lock().entry(key.clone()).or_insert(0) += 1;
        }
        *self.counts.lock().entry(key).or_insert(0) += 1;
    }

    /// Every (client, user, verb, group, resource) seen since the last reset, with its count.
    pub fn counts(&self) -> Vec<(RequestKey, u64)> {
        self.counts.lock().iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// The requests refused with 401 or 403 since the last reset.
    pub fn denied(&self) -> Vec<(RequestKey, u64)> {
        self.denied.lock().iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// Requests of clients whose `User-Agent` starts with `agent`, since the last reset.
    pub fn total(&self, agent: &str) -> u64 {
        self.counts.lock().iter().filter(|(k, _)| k.agent.starts_with(agent)).map(|(_, v)| v).sum()
    }

    /// The distinct (verb, group, resource) that `user` was allowed, since
    /// the last reset: compare it with the rules of the user's role.
    pub fn used_by(&self, user: &str) -> BTreeSet<(String, String, String)> {
        let counts = self.counts.lock();
        let denied = self.denied.lock();
        counts
            .keys()
            .filter(|k| k.user == user && !denied.contains_key(*k))
            .map(|k| (k.verb.clone(), k.group.clone(), k.resource.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_agent_verb_and_resource() {
        let log = RequestLog::default();
        log.record("a/1", "get", "pods");
        log.record("a/1", "get", "pods");
        log.record("b", "create", "pods/eviction");
        assert_eq!(log.total("a/"), 2);
        assert_eq!(log.total(""), 3);
        let counts = log.counts();
        assert_eq!(
            counts[0],
            (
                RequestKey {
                    agent: "a/1".into(),
                    user: String::new(),
                    verb: "get".into(),
                    group: String::new(),
                    resource: "pods".into()
                },
                2
            )
        );
        log.reset();
        assert_eq!(log.total(""), 0);
    }

    #[test]
    fn users_and_refusals() {
        let log = RequestLog::default();
        let key = |user: &str, verb: &str, group: &str, resource: &str| RequestKey {
            agent: "svc".into(),
            user: user.into(),
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
        };
        log.record_key(key("sa", "list", "", "pods"), false);
        log.record_key(key("sa", "create", "", "pods/eviction"), false);
        log.record_key(key("sa", "delete", "apps", "deployments"), true);
        log.record_key(key("other", "get", "", "nodes"), false);
        let used: Vec<_> = log.used_by("sa").into_iter().collect();
        assert_eq!(
            used,
            vec![
                ("create".to_string(), String::new(), "pods/eviction".to_string()),
                ("list".to_string(), String::new(), "pods".to_string())
            ]
        );
        assert_eq!(log.denied().len(), 1);
        assert_eq!(log.total("svc"), 4);
    }
}
