//! The wall clock, behind a trait so tests can fix it (STYLE 8).
//!
//! Cooldown in watch mode, `created_at` in manifests and the time of events
//! come from a [`Clock`]; replay's cooldown uses the drift's event time.

use chrono::{DateTime, Utc};

/// Which clock cooldown uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockMode {
    /// The drift's event time (replay of historical logs).
    Replay,
    /// The wall clock (watch).
    Watch,
}

/// The wall clock, behind a trait so tests can fix it.
pub trait Clock: Send {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that always says the same time.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}
