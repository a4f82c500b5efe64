//! The migration job's state machine and the numbers behind `/api/v1/metrics`.
//!
//! pending → running → completed | failed | cancelled; pending may also be
//! cancelled or fail (a job that never got to run). Terminal states are final.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 5] =
        [JobStatus::Pending, JobStatus::Running, JobStatus::Completed, JobStatus::Failed, JobStatus::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled)
    }

    /// The original controller's message for a status (`getStatusMessage`), with
    /// the failure's reason appended so a client need not dig in `details`.
    pub fn message(self, error: Option<&str>) -> String {
        match (self, error) {
            (JobStatus::Pending, _) => "Migration is pending".into(),
            (JobStatus::Running, _) => "Migration is in progress".into(),
            (JobStatus::Completed, _) => "Migration completed successfully".into(),
            (JobStatus::Failed, Some(e)) if !e.is_empty() => format!("Migration failed: {e}"),
            (JobStatus::Failed, _) => "Migration failed".into(),
            (JobStatus::Cancelled, _) => "Migration was cancelled".into(),
        }
    }
}

/// What happens to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEvent {
    Start,
    Succeed,
    Fail,
    Cancel,
}

impl JobEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            JobEvent::Start => "start",
            JobEvent::Succeed => "succeed",
            JobEvent::Fail => "fail",
            JobEvent::Cancel => "cancel",
        }
    }
}

/// An event that does not apply to a job in its status (e.g. cancelling a
/// finished job). Callers answer it (a 409) or report it; they never overwrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {} job cannot {}", from.as_str(), event.as_str())]
pub struct TransitionError {
    pub from: JobStatus,
    pub event: JobEvent,
}

/// The next status, or why the event does not apply.
pub fn transition(from: JobStatus, event: JobEvent) -> Result<JobStatus, TransitionError> {
    use JobEvent::*;
    use JobStatus::*;
    match (from, event) {
        (Pending, Start) => Ok(Running),
        (Running, Succeed) => Ok(Completed),
        (Pending | Running, Fail) => Ok(Failed),
        (Pending | Running, Cancel) => Ok(Cancelled),
        _ => Err(TransitionError { from, event }),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Running,
    Completed,
    Failed,
    Skipped,
}

/// Measured usage of a pod: CPU in cores, memory in bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    pub cpu_cores: f64,
    pub memory_bytes: f64,
}

/// Running totals behind `GET /api/v1/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub total: u64,
    pub successful: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// Sum of durations of finished jobs, nanoseconds.
    duration_sum_ns: u128,
    finished: u64,
    /// Savings, per migration where usage was measured both before and after.
    cpu_savings: Vec<f64>,
    memory_savings: Vec<f64>,
}

impl Summary {
    /// A job was accepted.
    pub fn started(&mut self) {
        self.total += 1;
    }

    /// A job ended. Savings count only when both measurements exist; a migration
    /// that measured nothing contributes nothing (never an invented figure).
    pub fn finished(&mut self, status: JobStatus, duration_ns: u128, before: Option<Usage>, after: Option<Usage>) {
        match status {
            JobStatus::Completed => self.successful += 1,
            JobStatus::Failed => self.failed += 1,
            JobStatus::Cancelled => self.cancelled += 1,
            _ => return,
        }
        self.duration_sum_ns += duration_ns;
        self.finished += 1;
        if let (JobStatus::Completed, Some(b), Some(a)) = (status, before, after) {
            if b.cpu_cores > 0.0 {
                self.cpu_savings.push((b.cpu_cores - a.cpu_cores) / b.cpu_cores * 100.0);
            }
            if b.memory_bytes > 0.0 {
                self.memory_savings.push((b.memory_bytes - a.memory_bytes) / b.memory_bytes * 100.0);
            }
        }
    }

    /// Mean duration of finished jobs in nanoseconds (Go `time.Duration`).
    pub fn average_duration_ns(&self) -> u64 {
        if self.finished == 0 {
            0
        } else {
            u64::try_from(self.duration_sum_ns / self.finished as u128).unwrap_or(u64::MAX)
        }
    }

    pub fn cpu_savings_percentage(&self) -> f64 {
        mean(&self.cpu_savings)
    }

    pub fn memory_savings_percentage(&self) -> f64 {
        mean(&self.memory_savings)
    }
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() { 0.0 } else { xs.iter().sum::<f64>() / xs.len() as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        use JobEvent::*;
        use JobStatus::*;
        assert_eq!(transition(Pending, Start), Ok(Running));
        assert_eq!(transition(Running, Succeed), Ok(Completed));
        assert_eq!(
            transition(Pending, Succeed),
            Err(TransitionError { from: Pending, event: Succeed }),
            "a job that never ran cannot succeed"
        );
        assert_eq!(transition(Running, Cancel), Ok(Cancelled));
        assert_eq!(transition(Pending, Cancel), Ok(Cancelled));
        for t in [Completed, Failed, Cancelled] {
            for e in [Start, Succeed, Fail, Cancel] {
                assert!(transition(t, e).is_err(), "{t:?} is final");
            }
        }
        assert_eq!(transition(Completed, Cancel).unwrap_err().to_string(), "a completed job cannot cancel");
    }

    #[test]
    fn messages() {
        assert_eq!(JobStatus::Failed.message(Some("target NotReady")), "Migration failed: target NotReady");
        assert_eq!(JobStatus::Failed.message(None), "Migration failed");
        assert_eq!(JobStatus::Cancelled.message(None), "Migration was cancelled");
        assert_eq!(JobStatus::parse("running"), Some(JobStatus::Running));
    }

    #[test]
    fn savings_only_from_measurements() {
        let mut s = Summary::default();
        s.started();
        s.started();
        s.started();
        let u = |c, m| Some(Usage { cpu_cores: c, memory_bytes: m });
        s.finished(JobStatus::Completed, 2_000, u(1.0, 100.0), u(0.5, 100.0));
        s.finished(JobStatus::Completed, 4_000, u(1.0, 100.0), None);
        s.finished(JobStatus::Failed, 6_000, u(1.0, 100.0), u(0.0, 0.0));
        assert_eq!((s.total, s.successful, s.failed), (3, 2, 1));
        assert_eq!(s.average_duration_ns(), 4_000);
        assert_eq!(s.cpu_savings_percentage(), 50.0);
        assert_eq!(s.memory_savings_percentage(), 0.0);
        assert_eq!(Summary::default().cpu_savings_percentage(), 0.0);
    }
}
