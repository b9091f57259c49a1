//! Retraining on decay: the validated `[retrain]` config, the tuner that
//! proposes each trial's parameters, the runner that executes the team's
//! training command, and the [`Retrainer`] that ties them to the registry.
//!
//! The pipeline's retrain sink calls [`Retrainer::on_drift`] for each drift
//! window that should retrain a model; the call blocks until the retrain is
//! published, failed or skipped, and returns a [`RetrainOutcome`] whose
//! [`RetrainOutcome::to_json`] is the window's `retrain` field (SPEC §5).

mod clock;
pub mod config;
pub mod fake;
pub mod history;
mod outcome;
mod retrainer;
pub mod runner;
pub mod search;
pub mod template;
pub mod tuner;
pub mod verdict;

pub use clock::{Clock, ClockMode, FixedClock, SystemClock};
pub use config::{ConfigError, RetrainConfig};
pub use fake::{FakeRunner, FakeTrial};
pub use outcome::{DryRun, FailedRetrain, PlannedTrial, Published, RetrainOutcome, Skip};
pub use retrainer::Retrainer;
pub use runner::{Job, ProcessRunner, RunReport, Runner, Termination};
