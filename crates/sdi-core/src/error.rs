//! Failure categories: one bounded vocabulary for why a migration was refused or
//! ended badly. The shell's typed errors map onto it, and it is the label of the
//! failure metric, the reason of the failure Event and the job's `error_category`
//! — low-cardinality by construction, unlike the messages beside it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// The request or the pod cannot be migrated as asked (validation, strategy, configuration).
    Invalid,
    /// An object the migration needs does not exist (any more).
    NotFound,
    /// The cluster changed under the migration (pod moved, object modified, job already running).
    Conflict,
    /// A PodDisruptionBudget refused the disruption.
    Budget,
    /// The target node cannot take the pod, or stopped being usable during the move.
    Target,
    /// The new pod failed, or its controller did not behave as the strategy needs.
    Workload,
    /// A checkpoint was required and could not be taken.
    Checkpoint,
    /// The job's timeout ran out.
    Timeout,
    /// Somebody cancelled the migration.
    Cancelled,
    /// The policy refused the move.
    Policy,
    /// The API server refused for lack of permission (RBAC).
    Forbidden,
    /// The API server did not answer, or answered with a server error.
    ApiUnavailable,
    /// This replica lost its lease mid-migration; the new leader takes the migration over.
    Leadership,
    /// A defect of this service (it should not happen; it is reported, not hidden).
    Internal,
}

impl Category {
    pub const ALL: [Category; 14] = [
        Category::Invalid,
        Category::NotFound,
        Category::Conflict,
        Category::Budget,
        Category::Target,
        Category::Workload,
        Category::Checkpoint,
        Category::Timeout,
        Category::Cancelled,
        Category::Policy,
        Category::Forbidden,
        Category::ApiUnavailable,
        Category::Leadership,
        Category::Internal,
    ];

    /// The label value (`not-found`, `api-unavailable`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Invalid => "invalid",
            Category::NotFound => "not-found",
            Category::Conflict => "conflict",
            Category::Budget => "budget",
            Category::Target => "target",
            Category::Workload => "workload",
            Category::Checkpoint => "checkpoint",
            Category::Timeout => "timeout",
            Category::Cancelled => "cancelled",
            Category::Policy => "policy",
            Category::Forbidden => "forbidden",
            Category::ApiUnavailable => "api-unavailable",
            Category::Leadership => "leadership",
            Category::Internal => "internal",
        }
    }

    /// CamelCase, as Kubernetes Event reasons are written (`NotFound`, `ApiUnavailable`).
    pub fn camel(self) -> &'static str {
        match self {
            Category::Invalid => "Invalid",
            Category::NotFound => "NotFound",
            Category::Conflict => "Conflict",
            Category::Budget => "Budget",
            Category::Target => "Target",
            Category::Workload => "Workload",
            Category::Checkpoint => "Checkpoint",
            Category::Timeout => "Timeout",
            Category::Cancelled => "Cancelled",
            Category::Policy => "Policy",
            Category::Forbidden => "Forbidden",
            Category::ApiUnavailable => "ApiUnavailable",
            Category::Leadership => "Leadership",
            Category::Internal => "Internal",
        }
    }

    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The category of an answer from the Kubernetes API with this HTTP status:
    /// what the status means for a migration, not for HTTP.
    pub fn of_api_status(code: u16) -> Category {
        match code {
            404 | 410 => Category::NotFound,
            409 => Category::Conflict,
            429 => Category::Budget,
            401 | 403 => Category::Forbidden,
            400 | 405 | 415 | 422 => Category::Invalid,
            _ => Category::ApiUnavailable,
        }
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_and_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for c in Category::ALL {
            assert_eq!(Category::parse(c.as_str()), Some(c));
            assert!(seen.insert(c.as_str()));
            assert_eq!(c.camel().to_lowercase(), c.as_str().replace('-', ""));
            let json = serde_json::to_value(c).unwrap();
            assert_eq!(json, c.as_str());
        }
    }

    #[test]
    fn api_statuses() {
        assert_eq!(Category::of_api_status(404), Category::NotFound);
        assert_eq!(Category::of_api_status(409), Category::Conflict);
        assert_eq!(Category::of_api_status(429), Category::Budget);
        assert_eq!(Category::of_api_status(403), Category::Forbidden);
        assert_eq!(Category::of_api_status(422), Category::Invalid);
        assert_eq!(Category::of_api_status(503), Category::ApiUnavailable);
        assert_eq!(Category::of_api_status(500), Category::ApiUnavailable);
    }
}
