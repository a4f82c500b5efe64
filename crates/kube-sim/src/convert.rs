//! Conversions between the stored form of an object and the views it is served
//! under, and the selectable fields a table indexes.
//!
//! Events are stored once, in core/v1 form, and also served as events.k8s.io/v1
//! (field renames as in upstream's `pkg/apis/events/v1` conversion), so an Event
//! written through either API shows up in both — `kubectl describe pod` reads
//! core/v1 while modern recorders write events.k8s.io/v1.

use serde_json::{Map, Value};

use crate::resources::{Conversion, GroupResource};

/// (events.k8s.io/v1 field, core/v1 field) pairs that are plain renames.
const EVENT_RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

/// Fields kept under the same name in both versions.
const EVENT_SHARED: &[&str] =
    &["metadata", "reason", "type", "action", "related", "reportingInstance", "eventTime", "series"];

/// Storage form → the form served by a view.
pub fn to_view(conversion: Conversion, obj: Value) -> Value {
    match conversion {
        Conversion::None => obj,
        Conversion::EventsV1 => {
            rename(obj, "events.k8s.io/v1", |k| EVENT_RENAMES.iter().find(|(_, core)| *core == k).map(|(v1, _)| *v1))
        }
    }
}

/// A view's form → storage form.
pub fn from_view(conversion: Conversion, obj: Value) -> Value {
    match conversion {
        Conversion::None => obj,
        Conversion::EventsV1 => rename(obj, "v1", |k| EVENT_RENAMES.iter().find(|(v1, _)| *v1 == k).map(|(_, c)| *c)),
    }
}

fn rename(obj: Value, api_version: &str, map: impl Fn(&str) -> Option<&'static str>) -> Value {
    let Value::Object(o) = obj else { return obj };
    let mut out = Map::new();
    for (k, v) in o {
        if k == "apiVersion" {
            out.insert(k, Value::String(api_version.into()));
        } else if k == "kind" || EVENT_SHARED.contains(&k.as_str()) {
            out.insert(k, v);
        } else if let Some(new) = map(&k) {
            out.insert(new.to_string(), v);
        }
        // Anything else has no counterpart in the other version and is dropped, as
        // a conversion through the internal type would drop it.
    }
    out.insert("apiVersion".into(), Value::String(api_version.into()));
    Value::Object(out)
}

/// A view's field-selector label → the stored object's label.
pub fn field_label_to_storage(conversion: Conversion, label: &str) -> String {
    match conversion {
        Conversion::EventsV1 => {
            if let Some(rest) = label.strip_prefix("regarding.") {
                format!("involvedObject.{rest}")
            } else if label == "reportingController" {
                "reportingComponent".into()
            } else {
                label.into()
            }
        }
        Conversion::None => label.into(),
    }
}

/// Index the selectable fields of a stored object (the store's `FieldIndexer`).
pub fn index_fields(gr: &GroupResource, obj: &Value) -> crate::store::Fields {
    let labels: &[&'static str] = match (gr.group.as_str(), gr.resource.as_str()) {
        ("", "pods") => crate::resources::POD_FIELDS,
        ("", "events") => crate::resources::EVENT_FIELDS,
        ("", "nodes") => &["spec.unschedulable"],
        ("", "secrets") => &["type"],
        ("", "namespaces") => &["status.phase"],
        ("apps", "replicasets") => &["status.replicas"],
        _ => &[],
    };
    crate::store::Fields::new(labels, labels.iter().map(|l| field_value(obj, l)))
}

/// The string form of a selectable field; unset booleans are "false" and unset
/// numbers "0", as upstream's field sets render Go zero values.
fn field_value(obj: &Value, label: &str) -> String {
    let path = match label {
        "source" => "source.component",
        other => other,
    };
    let v = path.split('.').try_fold(obj, |v, seg| v.get(seg));
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => String::new(),
        None => match label {
            "spec.unschedulable" | "spec.hostNetwork" => "false".into(),
            "status.replicas" => "0".into(),
            _ => String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_round_trip_between_versions() {
        let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "d"},
            "involvedObject": {"kind": "Pod", "name": "p"}, "message": "hi", "reason": "Started",
            "reportingComponent": "sdi-migration", "count": 2, "type": "Normal", "source": {"component": "x"}});
        let v1 = to_view(Conversion::EventsV1, core.clone());
        assert_eq!(v1["apiVersion"], "events.k8s.io/v1");
        assert_eq!(v1["regarding"]["name"], "p");
        assert_eq!(v1["note"], "hi");
        assert_eq!(v1["reportingController"], "sdi-migration");
        assert_eq!(v1["deprecatedCount"], 2);
        assert_eq!(from_view(Conversion::EventsV1, v1), core);
    }

    #[test]
    fn pod_fields_are_indexed_with_zero_values() {
        let f = index_fields(
            &GroupResource::new("", "pods"),
            &json!({"spec": {"nodeName": "n1"}, "status": {"phase": "Running"}}),
        );
        let get = |l: &str| f.get(l).map(str::to_string);
        assert_eq!(get("spec.nodeName").as_deref(), Some("n1"));
        assert_eq!(get("status.phase").as_deref(), Some("Running"));
        assert_eq!(get("spec.hostNetwork").as_deref(), Some("false"));
        assert_eq!(field_label_to_storage(Conversion::EventsV1, "regarding.name"), "involvedObject.name");
    }
}
