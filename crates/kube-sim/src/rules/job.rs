//! The Job controller's arithmetic (upstream's `syncJob` for NonIndexed and
//! Indexed jobs without pod failure or success policies): how many pods to
//! start, and when the job is complete or has failed.

use k8s_openapi::api::batch::v1::JobSpec;

/// What the controller sees of a job's pods.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Pods neither finished nor being deleted.
    pub active: i32,
    pub ready: i32,
    pub succeeded: i32,
    /// Failed pods, plus container restarts of `OnFailure` pods (upstream counts both against the backoff limit).
    pub failed: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Keep going: start `create` pods (negative: delete that many active ones).
    Run { create: i32 },
    /// Every completion is done: `SuccessCriteriaMet`, then `Complete`.
    Complete,
    /// `FailureTarget`, then `Failed`, with upstream's reason and message.
    Fail { reason: &'static str, message: &'static str },
    /// Suspended: no pods may run.
    Suspended,
}

pub fn decide(spec: &JobSpec, c: Counts, past_deadline: bool) -> Decision {
    if spec.suspend == Some(true) {
        return Decision::Suspended;
    }
    let backoff = spec.backoff_limit.unwrap_or(6);
    if c.failed > backoff {
        return Decision::Fail {
            reason: "BackoffLimitExceeded",
            message: "Job has reached the specified backoff limit",
        };
    }
    if past_deadline {
        return Decision::Fail { reason: "DeadlineExceeded", message: "Job was active longer than specified deadline" };
    }
    let parallelism = spec.parallelism.unwrap_or(1).max(0);
    match spec.completions {
        Some(n) => {
            if c.succeeded >= n {
                return Decision::Complete;
            }
            let want = parallelism.min(n - c.succeeded);
            Decision::Run { create: want - c.active }
        }
        // A work queue: done once one pod succeeded and none runs any more.
        None => {
            if c.succeeded > 0 {
                if c.active == 0 {
                    return Decision::Complete;
                }
                return Decision::Run { create: 0 };
            }
            Decision::Run { create: parallelism - c.active }
        }
    }
}

/// Upstream's delay before a pod replaces a failed one: 10 s doubling per
/// failure, at most 6 minutes.
pub fn backoff_seconds(failed: i32) -> f64 {
    if failed <= 0 {
        return 0.0;
    }
    (10.0 * 2f64.powi((failed - 1).min(10))).min(360.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(completions: Option<i32>, parallelism: i32, backoff: i32) -> JobSpec {
        JobSpec { completions, parallelism: Some(parallelism), backoff_limit: Some(backoff), ..JobSpec::default() }
    }

    fn counts(active: i32, succeeded: i32, failed: i32) -> Counts {
        Counts { active, ready: 0, succeeded, failed }
    }

    #[test]
    fn runs_up_to_parallelism_and_never_more_than_remaining_completions() {
        assert_eq!(decide(&spec(Some(5), 2, 6), counts(0, 0, 0), false), Decision::Run { create: 2 });
        assert_eq!(decide(&spec(Some(5), 2, 6), counts(1, 3, 0), false), Decision::Run { create: 1 });
        assert_eq!(decide(&spec(Some(5), 2, 6), counts(1, 4, 0), false), Decision::Run { create: 0 });
        assert_eq!(decide(&spec(Some(5), 2, 6), counts(0, 4, 0), false), Decision::Run { create: 1 });
        assert_eq!(decide(&spec(Some(5), 2, 6), counts(0, 5, 0), false), Decision::Complete);
        // Parallelism lowered below the running pods: delete the excess.
        assert_eq!(decide(&spec(Some(5), 1, 6), counts(3, 0, 0), false), Decision::Run { create: -2 });
    }

    #[test]
    fn work_queues_complete_when_one_succeeded_and_none_runs() {
        assert_eq!(decide(&spec(None, 3, 6), counts(0, 0, 0), false), Decision::Run { create: 3 });
        assert_eq!(decide(&spec(None, 3, 6), counts(2, 1, 0), false), Decision::Run { create: 0 });
        assert_eq!(decide(&spec(None, 3, 6), counts(0, 1, 0), false), Decision::Complete);
    }

    #[test]
    fn failures_beyond_the_backoff_limit_and_deadlines_fail_the_job() {
        assert!(matches!(decide(&spec(Some(1), 1, 2), counts(0, 0, 2), false), Decision::Run { create: 1 }));
        assert_eq!(
            decide(&spec(Some(1), 1, 2), counts(0, 0, 3), false),
            Decision::Fail { reason: "BackoffLimitExceeded", message: "Job has reached the specified backoff limit" }
        );
        assert!(matches!(
            decide(&spec(Some(1), 1, 0), counts(1, 0, 0), true),
            Decision::Fail { reason: "DeadlineExceeded", .. }
        ));
        let mut s = spec(Some(1), 1, 6);
        s.suspend = Some(true);
        assert_eq!(decide(&s, counts(1, 0, 0), false), Decision::Suspended);
        assert_eq!(backoff_seconds(1), 10.0);
        assert_eq!(backoff_seconds(3), 40.0);
        assert_eq!(backoff_seconds(20), 360.0);
    }
}
