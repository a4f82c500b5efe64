//! Simulated time. Every timestamp the simulator writes (creationTimestamp,
//! deletionTimestamp, conditions, heartbeats) and every delay it simulates
//! (graceful termination, start-up) reads this clock, so `--speed 10` makes the
//! whole cluster live ten times faster while staying self-consistent.

use std::time::{Duration, Instant};

use jiff::Timestamp;

#[derive(Debug, Clone)]
pub struct Clock {
    origin_wall: Timestamp,
    origin: Instant,
    speed: f64,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new(1.0)
    }
}

impl Clock {
    /// A clock that starts at the wall-clock time now and runs `speed` times as fast.
    pub fn new(speed: f64) -> Self {
        let speed = if speed.is_finite() && speed > 0.0 { speed } else { 1.0 };
        Clock { origin_wall: Timestamp::now(), origin: Instant::now(), speed }
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// Simulated time elapsed since the clock started.
    pub fn elapsed(&self) -> Duration {
        self.origin.elapsed().mul_f64(self.speed)
    }

    pub fn now(&self) -> Timestamp {
        let nanos = i128::try_from(self.elapsed().as_nanos()).unwrap_or(i128::MAX / 2);
        let span = jiff::SignedDuration::from_nanos_i128(nanos);
        self.origin_wall.checked_add(span).unwrap_or(self.origin_wall)
    }

    /// The real duration that corresponds to `simulated` on this clock.
    pub fn real(&self, simulated: Duration) -> Duration {
        simulated.div_f64(self.speed)
    }

    /// Sleep for a simulated duration.
    pub async fn sleep(&self, simulated: Duration) {
        tokio::time::sleep(self.real(simulated)).await;
    }

    /// RFC 3339 with second precision (`metav1.Time`).
    pub fn now_rfc3339(&self) -> String {
        format_time(self.now())
    }

    /// RFC 3339 with microseconds (`metav1.MicroTime`, e.g. Event `eventTime`).
    pub fn now_micro(&self) -> String {
        self.now().strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
    }
}

pub fn format_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn parse_time(s: &str) -> Option<Timestamp> {
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_upstream_shapes() {
        let c = Clock::default();
        let t = c.now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.ends_with('Z'));
        let m = c.now_micro();
        assert_eq!(m.len(), 27, "{m}");
        assert!(parse_time(&t).is_some() && parse_time(&m).is_some());
    }

    #[test]
    fn a_fast_clock_maps_simulated_to_real_durations() {
        let c = Clock::new(10.0);
        assert_eq!(c.real(Duration::from_secs(30)), Duration::from_secs(3));
        assert_eq!(Clock::new(-1.0).speed(), 1.0);
    }
}
