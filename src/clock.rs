//! The source of "now", injected so time-dependent behaviour is testable.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

/// Tells the current instant.
pub trait Clock: Send + Sync + 'static {
    /// The current instant, truncated to microseconds (what PostgreSQL stores).
    fn now(&self) -> DateTime<Utc>;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        let now = Utc::now();
        now.duration_trunc(TimeDelta::microseconds(1))
            .unwrap_or(now)
    }
}
