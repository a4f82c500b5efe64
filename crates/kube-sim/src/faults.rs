//! Fault injection: added latency and injected errors per verb and resource,
//! changeable at runtime (in-process, or over HTTP at `/_sim/faults`), so the
//! service's resilience can be tested against the failures real API servers
//! produce — 500s, 429s with `Retry-After`, slow answers and dropped watches.

use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The kind of error a rule injects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum InjectedError {
    /// 500 InternalError.
    ServerError,
    /// 429 TooManyRequests with `Retry-After`.
    TooManyRequests {
        #[serde(default = "one")]
        retry_after_seconds: u64,
    },
    /// 503 ServiceUnavailable.
    Unavailable,
}

fn one() -> u64 {
    1
}

/// One injection rule. Empty `verbs`/`resources` match everything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    /// Kubernetes verbs: get, list, watch, create, update, patch, delete, deletecollection.
    #[serde(default)]
    pub verbs: Vec<String>,
    /// Resource plurals, optionally with a subresource ("pods", "pods/eviction").
    #[serde(default)]
    pub resources: Vec<String>,
    /// Probability in [0, 1] that a matching request fails.
    pub rate: f64,
    pub error: InjectedError,
    /// Stop after this many injections (None: no limit).
    #[serde(default)]
    pub remaining: Option<u64>,
}

impl FaultRule {
    fn matches(&self, verb: &str, resource: &str, subresource: Option<&str>) -> bool {
        let verb_ok = self.verbs.is_empty() || self.verbs.iter().any(|v| v == verb);
        let full = subresource.map(|s| format!("{resource}/{s}"));
        let res_ok =
            self.resources.is_empty() || self.resources.iter().any(|r| r == resource || Some(r) == full.as_ref());
        verb_ok && res_ok && self.remaining != Some(0)
    }
}

/// The whole fault configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultConfig {
    /// Added to every API request.
    #[serde(default)]
    pub latency_ms: u64,
    #[serde(default)]
    pub rules: Vec<FaultRule>,
    /// Seed for the injection dice, for reproducible runs.
    #[serde(default)]
    pub seed: Option<u64>,
}

impl FaultConfig {
    /// Check that the configuration makes sense; errors name the field.
    pub fn validate(&self) -> Result<(), String> {
        for (i, r) in self.rules.iter().enumerate() {
            if !(0.0..=1.0).contains(&r.rate) || r.rate.is_nan() {
                return Err(format!("rules[{i}].rate: must be between 0 and 1, got {}", r.rate));
            }
        }
        Ok(())
    }
}

#[derive(Debug)]
pub struct Faults {
    config: RwLock<FaultConfig>,
    rng: Mutex<fastrand::Rng>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults { config: RwLock::new(FaultConfig::default()), rng: Mutex::new(fastrand::Rng::new()) }
    }
}

/// What to do to one request.
#[derive(Debug, Default)]
pub struct Decision {
    pub delay: Option<Duration>,
    pub error: Option<ApiError>,
}

impl Faults {
    pub fn get(&self) -> FaultConfig {
        self.config.read().clone()
    }

    pub fn set(&self, cfg: FaultConfig) -> Result<(), String> {
        cfg.validate()?;
        if let Some(seed) = cfg.seed {
            *self.rng.lock() = fastrand::Rng::with_seed(seed);
        }
        *self.config.write() = cfg;
        Ok(())
    }

    pub fn clear(&self) {
        *self.config.write() = FaultConfig::default();
    }

    /// Decide the fate of one request. Cheap when nothing is configured.
    pub fn decide(&self, verb: &str, resource: &str, subresource: Option<&str>) -> Decision {
        {
            let c = self.config.read();
            if c.latency_ms == 0 && c.rules.is_empty() {
                return Decision::default();
            }
        }
        let mut c = self.config.write();
        let delay = (c.latency_ms > 0).then(|| Duration::from_millis(c.latency_ms));
        let mut error = None;
        for rule in c.rules.iter_mut() {
            if !rule.matches(verb, resource, subresource) {
                continue;
            }
            if self.rng.lock().f64() < rule.rate {
                if let Some(n) = rule.remaining.as_mut() {
                    *n -= 1;
                }
                error = Some(match &rule.error {
                    InjectedError::ServerError => {
                        ApiError::internal(format!("injected fault: {verb} {resource} failed"))
                    }
                    InjectedError::TooManyRequests { retry_after_seconds } => ApiError::too_many_requests(
                        "injected fault: too many requests, please try again later",
                        Some(*retry_after_seconds),
                        vec![],
                    ),
                    InjectedError::Unavailable => ApiError::service_unavailable(
                        "injected fault: the server is currently unable to handle the request",
                    ),
                });
                break;
            }
        }
        Decision { delay, error }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_verbs_resources_and_run_out() {
        let f = Faults::default();
        f.set(FaultConfig {
            latency_ms: 0,
            rules: vec![FaultRule {
                verbs: vec!["create".into()],
                resources: vec!["pods/eviction".into()],
                rate: 1.0,
                error: InjectedError::TooManyRequests { retry_after_seconds: 3 },
                remaining: Some(2),
            }],
            seed: Some(7),
        })
        .unwrap();
        assert!(f.decide("create", "pods", None).error.is_none());
        assert!(f.decide("get", "pods", Some("eviction")).error.is_none());
        let e = f.decide("create", "pods", Some("eviction")).error.unwrap();
        assert_eq!((e.code, e.retry_after), (429, Some(3)));
        assert!(f.decide("create", "pods", Some("eviction")).error.is_some());
        assert!(f.decide("create", "pods", Some("eviction")).error.is_none(), "ran out after 2");
    }

    #[test]
    fn rates_are_probabilities_and_validated() {
        let f = Faults::default();
        let cfg = |rate| FaultConfig {
            latency_ms: 5,
            rules: vec![FaultRule {
                verbs: vec![],
                resources: vec![],
                rate,
                error: InjectedError::ServerError,
                remaining: None,
            }],
            seed: Some(1),
        };
        assert!(f.set(cfg(1.5)).unwrap_err().contains("rules[0].rate"));
        f.set(cfg(0.5)).unwrap();
        let fails = (0..1000).filter(|_| f.decide("get", "pods", None).error.is_some()).count();
        assert!((350..650).contains(&fails), "{fails}");
        assert_eq!(f.decide("get", "pods", None).delay, Some(Duration::from_millis(5)));
        let json = serde_json::to_string(&f.get()).unwrap();
        assert!(json.contains("\"type\":\"serverError\""), "{json}");
    }
}
