//! The built-in MALE policy (SPEC §5): how important a pod is, and whether it
//! may be moved.
//!
//! MALE = Accuracy, Latency, Energy. A pod's values come from its labels or
//! annotations `male.keti.dev/accuracy`, `male.keti.dev/latency`,
//! `male.keti.dev/energy` (each 0–1) and `male.keti.dev/mixed-score`.
//!
//! - [`criticality`] uses accuracy and latency only, exactly as the MALE operator
//!   defines the classes. Energy is parsed and carried for reporting.
//! - The mixed score and the pod's priority never change the class or the
//!   decision. The planner uses them only as tie-breaks when it orders the
//!   candidates of one node: among moves of the same class and the same relief,
//!   the lower priority goes first, then the lower mixed score (missing = 0).
//! - [`decide`] applies the rules: C is never moved automatically, B only if a
//!   running replica is kept throughout or a checkpoint is taken, A freely.

use serde::{Deserialize, Serialize};

use crate::strategy::Strategy;

pub const ACCURACY: &str = "male.keti.dev/accuracy";
pub const LATENCY: &str = "male.keti.dev/latency";
pub const ENERGY: &str = "male.keti.dev/energy";
pub const MIXED_SCORE: &str = "male.keti.dev/mixed-score";

/// A pod's MALE values. `None` = absent or invalid; it counts as 0 in [`criticality`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Male {
    pub accuracy: Option<f32>,
    pub latency: Option<f32>,
    pub energy: Option<f32>,
    pub mixed_score: Option<f32>,
}

/// The MALE operator's classes, most critical first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub enum Criticality {
    /// Safety-critical: never moved automatically.
    C,
    /// Mission-critical: moved only while a running replica is kept (or with a checkpoint).
    B,
    /// Best-effort: moved freely.
    A,
}

impl Criticality {
    pub fn as_str(self) -> &'static str {
        match self {
            Criticality::C => "C",
            Criticality::B => "B",
            Criticality::A => "A",
        }
    }

    /// "class C (safety-critical)" and so on.
    pub fn describe(self) -> &'static str {
        match self {
            Criticality::C => "class C (safety-critical)",
            Criticality::B => "class B (mission-critical)",
            Criticality::A => "class A (best-effort)",
        }
    }

    /// Order in which the planner considers candidates: A (0), B (1), C (2).
    pub fn move_rank(self) -> u8 {
        match self {
            Criticality::A => 0,
            Criticality::B => 1,
            Criticality::C => 2,
        }
    }
}

impl std::fmt::Display for Criticality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Values are written in decimal (`0.7`) and stored as `f32`, whose sums can land a
/// hair below the decimal boundary (`0.2 + 0.7`); comparisons allow this much.
const TOLERANCE: f64 = 1e-6;

fn at_least(v: f64, bound: f64) -> bool {
    v >= bound - TOLERANCE
}

/// The class, by the MALE operator's rules (missing values count as 0):
/// **C** if L ≥ 0.9, or L ≥ 0.7 and A ≥ 0.5, or A ≥ 0.6 and L ≥ 0.3, or A + L ≥ 0.9;
/// otherwise **B** if L ≥ 0.5 or A ≥ 0.5; otherwise **A**.
///
/// (With values in 0–1 the sum rule implies the other three — each of them has
/// A + L ≥ 0.9 — so C is exactly A + L ≥ 0.9. The rules are kept as the operator
/// states them.)
pub fn criticality(m: &Male) -> Criticality {
    let a = f64::from(m.accuracy.unwrap_or(0.0));
    let l = f64::from(m.latency.unwrap_or(0.0));
    let c = at_least(l, 0.9)
        || (at_least(l, 0.7) && at_least(a, 0.5))
        || (at_least(a, 0.6) && at_least(l, 0.3))
        || at_least(a + l, 0.9);
    if c {
        Criticality::C
    } else if at_least(l, 0.5) || at_least(a, 0.5) {
        Criticality::B
    } else {
        Criticality::A
    }
}

/// Reads the MALE values through `get` (the shell decides where from; annotations
/// should win over labels). Invalid values become `None`; [`parse_male_checked`]
/// also says why, for the log.
pub fn parse_male<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Male {
    parse_male_checked(get).0
}

/// [`parse_male`], plus one sentence per value that was present but unusable.
/// Accuracy, latency and energy must be numbers in 0–1; the mixed score a finite
/// number ≥ 0 (its scale is the policy engine's, so no upper bound is assumed).
pub fn parse_male_checked<'a>(get: impl Fn(&str) -> Option<&'a str>) -> (Male, Vec<String>) {
    let mut problems = Vec::new();
    let mut read = |key: &str, max: f32| -> Option<f32> {
        let raw = get(key)?;
        match raw.trim().parse::<f32>() {
            Ok(v) if v.is_finite() && (0.0..=max).contains(&v) => Some(v),
            Ok(_) if max.is_finite() => {
                problems.push(format!("{key}={raw:?} is outside 0–1; ignored"));
                None
            }
            Ok(_) => {
                problems.push(format!("{key}={raw:?} must be a finite number ≥ 0; ignored"));
                None
            }
            Err(_) => {
                problems.push(format!("{key}={raw:?} is not a number; ignored"));
                None
            }
        }
    };
    let male = Male {
        accuracy: read(ACCURACY, 1.0),
        latency: read(LATENCY, 1.0),
        energy: read(ENERGY, 1.0),
        mixed_score: read(MIXED_SCORE, f32::INFINITY),
    };
    (male, problems)
}

/// What the policy needs to know about one move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyInput {
    pub criticality: Criticality,
    /// Planned by the rebalancer (`true`) rather than requested through the API (`false`).
    pub automatic: bool,
    /// The strategy the move will use, if known. `Surge` keeps a running replica by itself.
    pub strategy: Option<Strategy>,
    /// Another Ready replica of the workload stays up during the move (or the strategy is surge).
    pub keeps_replica: bool,
    /// A checkpoint of the pod is taken before it moves.
    pub checkpoint: bool,
}

/// The answer, in the remote policy engine's shape (`{"allowed","reason"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

/// Whether [`decide`] allows the move, without building its reason.
pub fn allows(input: &PolicyInput) -> bool {
    match input.criticality {
        Criticality::C => !input.automatic,
        Criticality::B => input.strategy == Some(Strategy::Surge) || input.keeps_replica || input.checkpoint,
        Criticality::A => true,
    }
}

/// The MALE rules, each answer with a sentence naming the class and the rule.
pub fn decide(input: &PolicyInput) -> Decision {
    let class = input.criticality.describe();
    let (allowed, reason) = match input.criticality {
        Criticality::C if input.automatic => (
            false,
            format!("{class} pods are never moved automatically; only an explicit API request can move this pod"),
        ),
        Criticality::C => {
            (true, format!("{class} pod: allowed because the move was requested explicitly through the API"))
        }
        Criticality::B => {
            let surge = input.strategy == Some(Strategy::Surge);
            if surge {
                (true, format!("{class} pod: allowed because the surge strategy keeps a running replica throughout"))
            } else if input.keeps_replica {
                (true, format!("{class} pod: allowed because another Ready replica keeps running throughout the move"))
            } else if input.checkpoint {
                (true, format!("{class} pod: allowed because a checkpoint is taken before the move"))
            } else {
                (
                    false,
                    format!(
                        "{class} pods move only if a running replica is kept throughout (surge, or another Ready \
                         replica) or a checkpoint is taken; neither holds for this pod"
                    ),
                )
            }
        }
        Criticality::A => (true, format!("{class} pods move freely")),
    };
    debug_assert_eq!(allowed, allows(input));
    Decision { allowed, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(a: f32, l: f32) -> Male {
        Male { accuracy: Some(a), latency: Some(l), ..Male::default() }
    }

    #[test]
    fn criticality_table_with_boundaries() {
        use Criticality::*;
        let table: &[(f32, f32, Criticality)] = &[
            // L ≥ 0.9
            (0.0, 0.9, C),
            (0.0, 0.89, B),
            (0.0, 1.0, C),
            // L ≥ 0.7 and A ≥ 0.5
            (0.5, 0.7, C),
            (0.49, 0.7, C), // A + L = 1.19: the sum rule covers what the L ≥ 0.7 rule misses
            (0.19, 0.7, B),
            (0.1, 0.7, B),
            // A ≥ 0.6 and L ≥ 0.3
            (0.6, 0.3, C),
            (0.6, 0.29, B),
            (0.59, 0.3, B),
            // A + L ≥ 0.9, including sums that are a hair short in f32
            (0.2, 0.7, C),
            (0.4, 0.5, C),
            (0.45, 0.45, C),
            (0.9, 0.0, C),
            (0.3, 0.59, B),
            (0.89, 0.0, B),
            // B: L ≥ 0.5 or A ≥ 0.5
            (0.0, 0.5, B),
            (0.5, 0.0, B),
            (0.3, 0.5, B),
            (0.55, 0.2, B),
            // A
            (0.49, 0.0, A),
            (0.0, 0.49, A),
            (0.4, 0.4, A),
            (0.2, 0.1, A),
            (0.0, 0.0, A),
        ];
        for &(a, l, want) in table {
            assert_eq!(criticality(&m(a, l)), want, "accuracy {a}, latency {l}");
        }
    }

    #[test]
    fn missing_values_count_as_zero() {
        assert_eq!(criticality(&Male::default()), Criticality::A);
        assert_eq!(criticality(&Male { latency: Some(0.95), ..Male::default() }), Criticality::C);
        assert_eq!(criticality(&Male { accuracy: Some(0.5), ..Male::default() }), Criticality::B);
        // Energy and mixed score do not change the class.
        let e = Male { energy: Some(1.0), mixed_score: Some(1.0), ..Male::default() };
        assert_eq!(criticality(&e), Criticality::A);
    }

    #[test]
    fn parse_reads_the_four_keys_and_rejects_bad_values() {
        let map = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| *v)
        };
        let male = parse_male(map(&[
            ("male.keti.dev/accuracy", "0.6"),
            ("male.keti.dev/latency", " 0.3 "),
            ("male.keti.dev/energy", "1"),
            ("male.keti.dev/mixed-score", "42.5"),
        ]));
        assert_eq!(male, Male { accuracy: Some(0.6), latency: Some(0.3), energy: Some(1.0), mixed_score: Some(42.5) });
        assert_eq!(criticality(&male), Criticality::C);

        let (male, problems) = parse_male_checked(map(&[
            ("male.keti.dev/accuracy", "1.5"),
            ("male.keti.dev/latency", "high"),
            ("male.keti.dev/energy", "-0.1"),
            ("male.keti.dev/mixed-score", "NaN"),
        ]));
        assert_eq!(male, Male::default());
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].contains("male.keti.dev/accuracy") && problems[0].contains("outside 0–1"));
        assert!(problems[1].contains("not a number"));
        assert!(problems[3].contains("finite"));
        assert_eq!(parse_male(|_| None), Male::default());
    }

    #[test]
    fn annotations_win_when_the_closure_says_so() {
        let labels = [(LATENCY, "0.1")];
        let annotations = [(LATENCY, "0.95")];
        let get = |k: &str| annotations.iter().chain(labels.iter()).find(|(key, _)| *key == k).map(|(_, v)| *v);
        assert_eq!(criticality(&parse_male(get)), Criticality::C);
    }

    fn input(criticality: Criticality) -> PolicyInput {
        PolicyInput { criticality, automatic: true, strategy: None, keeps_replica: false, checkpoint: false }
    }

    #[test]
    fn c_only_by_explicit_request() {
        let d = decide(&input(Criticality::C));
        assert!(!d.allowed);
        assert!(d.reason.contains("class C (safety-critical)") && d.reason.contains("never moved automatically"));
        let d = decide(&PolicyInput { keeps_replica: true, checkpoint: true, ..input(Criticality::C) });
        assert!(!d.allowed, "no replica or checkpoint makes an automatic C move acceptable");
        let d = decide(&PolicyInput { automatic: false, ..input(Criticality::C) });
        assert!(d.allowed && d.reason.contains("requested explicitly"), "{}", d.reason);
    }

    #[test]
    fn b_needs_a_replica_or_a_checkpoint() {
        let d = decide(&input(Criticality::B));
        assert!(!d.allowed && d.reason.contains("class B (mission-critical)"), "{}", d.reason);
        let d = decide(&PolicyInput { automatic: false, ..input(Criticality::B) });
        assert!(!d.allowed, "the B rule holds for explicit requests too");
        let d = decide(&PolicyInput { strategy: Some(Strategy::Surge), ..input(Criticality::B) });
        assert!(d.allowed && d.reason.contains("surge"), "{}", d.reason);
        let d = decide(&PolicyInput { strategy: Some(Strategy::Evict), keeps_replica: true, ..input(Criticality::B) });
        assert!(d.allowed && d.reason.contains("another Ready replica"), "{}", d.reason);
        let d = decide(&PolicyInput { checkpoint: true, ..input(Criticality::B) });
        assert!(d.allowed && d.reason.contains("checkpoint"), "{}", d.reason);
    }

    #[test]
    fn allows_agrees_with_decide() {
        for criticality in [Criticality::A, Criticality::B, Criticality::C] {
            for bits in 0..16u8 {
                let input = PolicyInput {
                    criticality,
                    automatic: bits & 1 != 0,
                    strategy: if bits & 2 != 0 { Some(Strategy::Surge) } else { Some(Strategy::Evict) },
                    keeps_replica: bits & 4 != 0,
                    checkpoint: bits & 8 != 0,
                };
                assert_eq!(allows(&input), decide(&input).allowed, "{input:?}");
            }
        }
    }

    #[test]
    fn a_moves_freely() {
        let d = decide(&input(Criticality::A));
        assert!(d.allowed && d.reason.contains("class A (best-effort)"), "{}", d.reason);
    }

    #[test]
    fn decision_has_the_remote_engine_shape() {
        let d = decide(&input(Criticality::A));
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["allowed"], true);
        assert!(v["reason"].is_string());
    }
}
