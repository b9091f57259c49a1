//! Retraining on decay: the validated `[retrain]` config, the tuner that
//! proposes each trial's parameters, the runner that executes the team's
//! training command, and the [`Retrainer`] that ties them to the registry.
//!
//! The pipeline's retrain sink calls [`Retrainer::on_drift`] for each drift
//! window that should retrain a model; the call blocks until the retrain is
//! published, failed or skipped, and returns a [`RetrainOutcome`] whose
//! [`RetrainOutcome::to_json`] is the window's `retrain` field (SPEC §5).
//!
//! ```no_run
//! use mmon::retrain::{ClockMode, ProcessRunner, RetrainConfig, Retrainer};
//!
//! let doc: toml::Table = std::fs::read_to_string("mmon.toml").unwrap().parse().unwrap();
//! let table = doc["retrain"].as_table().unwrap();
//! let cfg = RetrainConfig::from_toml(table, "mmon.toml").unwrap();
//! let root = cfg.registry.clone();
//! let mut retrainer = Retrainer::new(cfg, &root, Box::new(ProcessRunner::new()), ClockMode::Replay);
//! let window = serde_json::json!({"model_id": "churn", "metric": "accuracy"});
//! let outcome = retrainer.on_drift("churn", Some("1.4.2"), &window, chrono::Utc::now());
//! let exit_4 = outcome.is_failure();
//! let retrain_field = outcome.to_json();
//! # let _ = (exit_4, retrain_field);
//! ```

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
pub use config::RetrainConfig;
pub use fake::{FakeRunner, FakeTrial};
pub use outcome::{
    DryRun, FailedRetrain, PlannedTrial, Published, RetrainNote, RetrainOutcome, Skip, SkipNote,
    TrialNote,
};
pub use retrainer::Retrainer;
pub use runner::{Job, ProcessRunner, RunReport, Runner, Termination};
