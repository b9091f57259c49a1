//! What one retrain came to, and its JSON for the report's `retrain` field.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::exit_code::ExitCode;
use crate::registry::Holder;
use crate::registry::manifest::TrialEntry;

/// A published retrain.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub model_id: String,
    pub version: String,
    pub parent: Option<String>,
    pub base_version: Option<String>,
    pub run_id: String,
    pub path: PathBuf,
    /// The winning trial and its selected value.
    pub trial: u32,
    pub value: Option<f64>,
    pub trials: Vec<TrialEntry>,
}

impl Published {
    /// Trials that failed on the way (each one makes the run exit 4).
    pub fn failed_trials(&self) -> usize {
        self.trials.iter().filter(|t| t.status != "ok").count()
    }
}

/// A retrain that published nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedRetrain {
    pub model_id: String,
    /// The version it would have published, when it got that far.
    pub version: Option<String>,
    pub run_id: Option<String>,
    pub reason: String,
    pub trials: Vec<TrialEntry>,
}

/// Why a drift started no retrain.
#[derive(Debug, Clone, PartialEq)]
pub enum Skip {
    /// The model retrained recently.
    Cooldown {
        last: DateTime<Utc>,
        until: DateTime<Utc>,
    },
    /// Another process holds the model's `.train.lock`.
    Locked { holder: Option<Holder> },
}

/// What a retrain would run, with `--dry-run`.
#[derive(Debug, Clone, PartialEq)]
pub struct DryRun {
    pub model_id: String,
    pub version: String,
    pub trials: Vec<PlannedTrial>,
}

/// One trial's command, as it would run.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedTrial {
    pub trial: u32,
    pub argv: Vec<String>,
    pub workdir: PathBuf,
    /// The `MMON_*` variables (added to the inherited environment).
    pub env: Vec<(String, String)>,
}

/// The result of one [`Retrainer::on_drift`](super::Retrainer::on_drift).
#[derive(Debug, Clone, PartialEq)]
pub enum RetrainOutcome {
    Published(Published),
    Failed(FailedRetrain),
    Skipped(Skip),
    DryRun(DryRun),
}

impl RetrainOutcome {
    /// Whether the run should end with exit code 4: the retrain failed, or
    /// one of its trials did (SPEC §7: every failed trial is reported and
    /// makes the run exit 4, even when another trial was published).
    pub fn is_failure(&self) -> bool {
        match self {
            RetrainOutcome::Failed(_) => true,
            RetrainOutcome::Published(p) => p.failed_trials() > 0,
            RetrainOutcome::Skipped(_) | RetrainOutcome::DryRun(_) => false,
        }
    }

    /// [`ExitCode::Training`] for a failure, else success.
    pub fn exit_code(&self) -> ExitCode {
        if self.is_failure() {
            ExitCode::Training
        } else {
            ExitCode::Success
        }
    }

    /// The window's `retrain` field in reports.
    pub fn to_json(&self) -> Value {
        match self {
            RetrainOutcome::Published(p) => json!({
                "status": "published",
                "model_id": p.model_id,
                "version": p.version,
                "parent": p.parent,
                "run_id": p.run_id,
                "trial": p.trial,
                "value": p.value,
                "failed_trials": p.failed_trials(),
            }),
            RetrainOutcome::Failed(f) => json!({
                "status": "failed",
                "model_id": f.model_id,
                "version": f.version,
                "run_id": f.run_id,
                "reason": f.reason,
            }),
            RetrainOutcome::Skipped(Skip::Cooldown { last, until }) => json!({
                "status": "skipped",
                "why": "cooldown",
                "last": last.to_rfc3339(),
                "until": until.to_rfc3339(),
            }),
            RetrainOutcome::Skipped(Skip::Locked { holder }) => json!({
                "status": "skipped",
                "why": "locked",
                "holder": holder,
            }),
            RetrainOutcome::DryRun(d) => json!({
                "status": "dry-run",
                "model_id": d.model_id,
                "version": d.version,
                "trials": d.trials.iter().map(|t| json!({
                    "trial": t.trial,
                    "argv": t.argv,
                    "workdir": t.workdir,
                    "env": t.env.iter().cloned().collect::<BTreeMap<_, _>>(),
                })).collect::<Vec<_>>(),
            }),
        }
    }
}
