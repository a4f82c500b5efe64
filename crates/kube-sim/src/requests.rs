//! Who asked what: when enabled, every request is counted by client (its
//! `User-Agent`), Kubernetes verb and resource — so a test can hold a client to
//! a request budget ("a move costs its writes plus two reads, an idle cycle
//! none"). Off by default: then the cost is one atomic load per request.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use serde::Serialize;

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RequestKey {
    /// The `User-Agent` header (empty when the client sent none).
    pub agent: String,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`; `get` for paths that are not resources.
    pub verb: String,
    /// `pods`, `pods/eviction`, `deployments`… or the path (`/api`, `/version`).
    pub resource: String,
}

#[derive(Debug, Default)]
pub struct RequestLog {
    enabled: AtomicBool,
    counts: Mutex<BTreeMap<RequestKey, u64>>,
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
    }

    pub fn record(&self, agent: &str, verb: &str, resource: &str) {
        let key = RequestKey { agent: agent.into(), verb: verb.into(), resource: resource.into() };
        *self.counts.lock().entry(key).or_insert(0) += 1;
    }

    /// Every (client, verb, resource) seen since the last reset, with its count.
    pub fn counts(&self) -> Vec<(RequestKey, u64)> {
        self.counts.lock().iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// Requests of clients whose `User-Agent` starts with `agent`, since the last reset.
    pub fn total(&self, agent: &str) -> u64 {
        self.counts.lock().iter().filter(|(k, _)| k.agent.starts_with(agent)).map(|(_, v)| v).sum()
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
        assert_eq!(counts[0], (RequestKey { agent: "a/1".into(), verb: "get".into(), resource: "pods".into() }, 2));
        log.reset();
        assert_eq!(log.total(""), 0);
    }
}
