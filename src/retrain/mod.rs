//! Retraining on decay: the validated `[retrain]` config, the tuner that
//! proposes each trial's parameters, the runner that executes the team's
//! training command, and the [`Retrainer`] that ties them to the registry.
//!
//! The pipeline's retrain sink calls [`Retrainer::on_drift`] for each drift
//! window that should retrain a model; the call blocks until the retrain is
//! published, failed or skipped, and returns a [`RetrainOutcome`] whose
//! [`RetrainOutcome::to_json`] is the window's `retrain` field (SPEC §5).

pub mod config;
pub mod history;
mod retrainer;
pub mod runner;
pub mod template;
pub mod tuner;

pub use config::{ConfigError, RetrainConfig};
pub use retrainer::{
    Clock, ClockMode, DryRun, FailedRetrain, FixedClock, PlannedTrial, Published, RetrainOutcome,
    Retrainer, Skip, SystemClock,
};
pub use runner::{FakeRunner, FakeTrial, Job, ProcessRunner, RunReport, Runner, Termination};
