//! Kubernetes Events (events.k8s.io/v1) on the pods a job moves, so
//! `kubectl describe pod` tells the story without our API.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

#[derive(Clone)]
pub struct Events {
    recorder: Recorder,
}

impl Events {
    pub fn new(client: kube::Client) -> Self {
        let instance = std::env::var("POD_NAME").ok().or_else(|| std::env::var("HOSTNAME").ok());
        Events { recorder: Recorder::new(client, Reporter { controller: "sdi-migration".into(), instance }) }
    }

    /// Record an event on a node (the target of a migration): node events tell
    /// what arrived, for `kubectl describe node`.
    pub async fn node(&self, node: &str, warning: bool, reason: &str, note: String) {
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node.into()),
            ..Default::default()
        };
        self.publish(&reference, warning, reason, note).await;
    }

    /// Record an event on the pod.
    pub async fn pod(&self, namespace: &str, pod: &str, uid: Option<&str>, warning: bool, reason: &str, note: String) {
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(pod.into()),
            namespace: Some(namespace.into()),
            uid: uid.map(str::to_string),
            ..Default::default()
        };
        self.publish(&reference, warning, reason, note).await;
    }

    /// Failures are logged, never fatal — an Event is a courtesy, and a
    /// migration must not fail because one could not be written.
    async fn publish(&self, reference: &ObjectReference, warning: bool, reason: &str, note: String) {
        let event = Event {
            type_: if warning { EventType::Warning } else { EventType::Normal },
            reason: reason.into(),
            note: Some(note.chars().take(1000).collect()),
            action: "Migrate".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, reference).await {
            let kind = reference.kind.as_deref().unwrap_or_default();
            let name = reference.name.as_deref().unwrap_or_default();
            tracing::warn!(kind, name, reason, error = %e, "could not record event");
        }
    }
}
