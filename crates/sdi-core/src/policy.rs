//! Who decides whether a move may happen (SPEC §5): the remote policy engine when
//! one is configured and answers well, otherwise `POLICY_FALLBACK` — the built-in
//! MALE policy, allow, or deny. The shell only asks; the resolution is here.

use serde::{Deserialize, Serialize};

use crate::male::Decision;

/// `POLICY_FALLBACK`: what decides when the remote engine cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fallback {
    /// The built-in MALE policy (default).
    #[default]
    Builtin,
    /// Allow every move (the original service's behaviour).
    Allow,
    /// Refuse every move.
    Deny,
}

impl Fallback {
    pub fn as_str(self) -> &'static str {
        match self {
            Fallback::Builtin => "builtin",
            Fallback::Allow => "allow",
            Fallback::Deny => "deny",
        }
    }
}

/// What asking the remote engine gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// No remote engine is configured.
    NotConfigured,
    /// It answered. A missing `reason` gets a default sentence.
    Answered { allowed: bool, reason: Option<String> },
    /// It could not be asked, or answered badly: why, in one sentence.
    Trouble(String),
}

/// Who decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    Remote,
    Builtin,
    FallbackBuiltin,
    FallbackAllow,
    FallbackDeny,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Remote => "remote",
            Source::Builtin => "builtin",
            Source::FallbackBuiltin => "fallback-builtin",
            Source::FallbackAllow => "fallback-allow",
            Source::FallbackDeny => "fallback-deny",
        }
    }
}

/// The decision on one move, with its reason and who made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub allowed: bool,
    pub reason: String,
    pub source: Source,
}

/// The verdict, given what the remote engine said and what the built-in policy
/// says about the same move.
pub fn resolve(asked: Asked, fallback: Fallback, builtin: &Decision) -> Verdict {
    let trouble = match asked {
        Asked::NotConfigured => {
            return Verdict { allowed: builtin.allowed, reason: builtin.reason.clone(), source: Source::Builtin };
        }
        Asked::Answered { allowed, reason } => {
            let reason = reason.unwrap_or_else(|| {
                if allowed { "allowed by the policy engine".into() } else { "denied by the policy engine".into() }
            });
            return Verdict { allowed, reason, source: Source::Remote };
        }
        Asked::Trouble(t) => t,
    };
    match fallback {
        Fallback::Builtin => Verdict {
            allowed: builtin.allowed,
            reason: format!("{trouble}; built-in policy: {}", builtin.reason),
            source: Source::FallbackBuiltin,
        },
        Fallback::Allow => Verdict {
            allowed: true,
            reason: format!("{trouble}; allowed (POLICY_FALLBACK=allow)"),
            source: Source::FallbackAllow,
        },
        Fallback::Deny => Verdict {
            allowed: false,
            reason: format!("{trouble}; denied (POLICY_FALLBACK=deny)"),
            source: Source::FallbackDeny,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin(allowed: bool) -> Decision {
        Decision { allowed, reason: if allowed { "A pods move freely".into() } else { "C: never".into() } }
    }

    #[test]
    fn without_an_engine_the_builtin_policy_decides() {
        for fallback in [Fallback::Builtin, Fallback::Allow, Fallback::Deny] {
            let v = resolve(Asked::NotConfigured, fallback, &builtin(false));
            assert_eq!(v, Verdict { allowed: false, reason: "C: never".into(), source: Source::Builtin });
        }
    }

    #[test]
    fn an_answer_wins_over_the_builtin_policy_and_gets_a_default_reason() {
        let v = resolve(Asked::Answered { allowed: true, reason: None }, Fallback::Deny, &builtin(false));
        assert_eq!(v, Verdict { allowed: true, reason: "allowed by the policy engine".into(), source: Source::Remote });
        let v = resolve(Asked::Answered { allowed: false, reason: None }, Fallback::Allow, &builtin(true));
        assert_eq!(v.reason, "denied by the policy engine");
        let v = resolve(
            Asked::Answered { allowed: false, reason: Some("quiet hours".into()) },
            Fallback::Allow,
            &builtin(true),
        );
        assert_eq!((v.allowed, v.reason.as_str(), v.source), (false, "quiet hours", Source::Remote));
    }

    #[test]
    fn trouble_goes_to_the_fallback_with_both_reasons() {
        let t = || Asked::Trouble("policy engine answered HTTP 500".into());
        let v = resolve(t(), Fallback::Builtin, &builtin(false));
        assert_eq!(
            v,
            Verdict {
                allowed: false,
                reason: "policy engine answered HTTP 500; built-in policy: C: never".into(),
                source: Source::FallbackBuiltin
            }
        );
        let v = resolve(t(), Fallback::Allow, &builtin(false));
        assert_eq!((v.allowed, v.source), (true, Source::FallbackAllow));
        assert!(v.reason.ends_with("allowed (POLICY_FALLBACK=allow)"), "{}", v.reason);
        let v = resolve(t(), Fallback::Deny, &builtin(true));
        assert_eq!((v.allowed, v.source), (false, Source::FallbackDeny));
        assert!(v.reason.starts_with("policy engine answered HTTP 500; denied"), "{}", v.reason);
    }
}
