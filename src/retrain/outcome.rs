//! What one retrain came to, and its JSON for the report's `retrain` field.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
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

    /// The window's `retrain` field in reports, as JSON.
    pub fn to_json(&self) -> Value {
        self.note().to_value()
    }

    /// What the window's `retrain` field says about this outcome.
    pub fn note(&self) -> RetrainNote {
        match self {
            RetrainOutcome::Published(p) => RetrainNote::Published {
                model_id: p.model_id.clone(),
                version: p.version.clone(),
                parent: p.parent.clone(),
                run_id: p.run_id.clone(),
                trial: p.trial,
                value: p.value,
                failed_trials: p.failed_trials(),
            },
            RetrainOutcome::Failed(f) => RetrainNote::Failed {
                model_id: f.model_id.clone(),
                version: f.version.clone(),
                run_id: f.run_id.clone(),
                reason: f.reason.clone(),
            },
            RetrainOutcome::Skipped(Skip::Cooldown { last, until }) => {
                RetrainNote::Skipped(SkipNote::Cooldown {
                    last: last.to_rfc3339(),
                    until: until.to_rfc3339(),
                })
            }
            RetrainOutcome::Skipped(Skip::Locked { holder }) => {
                RetrainNote::Skipped(SkipNote::Locked {
                    holder: holder.clone(),
                })
            }
            RetrainOutcome::DryRun(d) => RetrainNote::DryRun {
                model_id: d.model_id.clone(),
                version: d.version.clone(),
                trials: d
                    .trials
                    .iter()
                    .map(|t| TrialNote {
                        trial: t.trial,
                        argv: t.argv.clone(),
                        workdir: t.workdir.clone(),
                        env: t.env.iter().cloned().collect(),
                    })
                    .collect(),
            },
        }
    }
}

/// A window's `retrain` field: what its training run came to, as the
/// reports show it and a checkpoint keeps it for a window still open.
///
/// It is written with its keys in alphabetical order, as reports always
/// had them; reading accepts any order.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum RetrainNote {
    Published {
        model_id: String,
        version: String,
        parent: Option<String>,
        run_id: String,
        trial: u32,
        value: Option<f64>,
        failed_trials: usize,
    },
    Failed {
        model_id: String,
        version: Option<String>,
        run_id: Option<String>,
        reason: String,
    },
    Skipped(SkipNote),
    DryRun {
        model_id: String,
        version: String,
        trials: Vec<TrialNote>,
    },
}

/// Why a drift started no training run, in a [`RetrainNote`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "why", rename_all = "lowercase")]
pub enum SkipNote {
    /// RFC 3339 times of the last training run and the end of the cooldown.
    Cooldown {
        last: String,
        until: String,
    },
    Locked {
        holder: Option<Holder>,
    },
}

/// One planned trial of a dry run, in a [`RetrainNote`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialNote {
    pub trial: u32,
    pub argv: Vec<String>,
    pub workdir: PathBuf,
    pub env: BTreeMap<String, String>,
}

impl RetrainNote {
    /// The note as JSON, keys in alphabetical order.
    pub fn to_value(&self) -> Value {
        match self {
            RetrainNote::Published {
                model_id,
                version,
                parent,
                run_id,
                trial,
                value,
                failed_trials,
            } => json!({
                "status": "published",
                "model_id": model_id,
                "version": version,
                "parent": parent,
                "run_id": run_id,
                "trial": trial,
                "value": value,
                "failed_trials": failed_trials,
            }),
            RetrainNote::Failed {
                model_id,
                version,
                run_id,
                reason,
            } => json!({
                "status": "failed",
                "model_id": model_id,
                "version": version,
                "run_id": run_id,
                "reason": reason,
            }),
            RetrainNote::Skipped(SkipNote::Cooldown { last, until }) => json!({
                "status": "skipped",
                "why": "cooldown",
                "last": last,
                "until": until,
            }),
            RetrainNote::Skipped(SkipNote::Locked { holder }) => json!({
                "status": "skipped",
                "why": "locked",
                "holder": holder,
            }),
            RetrainNote::DryRun {
                model_id,
                version,
                trials,
            } => json!({
                "status": "dry-run",
                "model_id": model_id,
                "version": version,
                "trials": trials,
            }),
        }
    }
}

impl Serialize for RetrainNote {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_reads_back_as_it_was_written() {
        let notes = [
            RetrainNote::Published {
                model_id: "churn".into(),
                version: "1.5.0".into(),
                parent: None,
                run_id: "r1".into(),
                trial: 2,
                value: Some(0.93),
                failed_trials: 1,
            },
            RetrainNote::Failed {
                model_id: "churn".into(),
                version: None,
                run_id: Some("r2".into()),
                reason: "exit 1".into(),
            },
            RetrainNote::Skipped(SkipNote::Cooldown {
                last: "2024-03-01T10:00:00+00:00".into(),
                until: "2024-03-01T11:00:00+00:00".into(),
            }),
            RetrainNote::Skipped(SkipNote::Locked { holder: None }),
            RetrainNote::DryRun {
                model_id: "churn".into(),
                version: "1.5.0".into(),
                trials: vec![TrialNote {
                    trial: 1,
                    argv: vec!["python3".into(), "train.py".into()],
                    workdir: PathBuf::from("/tmp"),
                    env: BTreeMap::from([("MMON_TRIAL".into(), "1".into())]),
                }],
            },
        ];
        for note in notes {
            let text = serde_json::to_string(&note).unwrap();
            let back: RetrainNote = serde_json::from_str(&text).unwrap();
            assert_eq!(back, note, "{text}");
            assert_eq!(serde_json::to_string(&back).unwrap(), text);
        }
    }

    #[test]
    fn keys_are_written_in_alphabetical_order() {
        let note = RetrainNote::Failed {
            model_id: "m".into(),
            version: None,
            run_id: None,
            reason: "r".into(),
        };
        assert_eq!(
            serde_json::to_string(&note).unwrap(),
            r#"{"model_id":"m","reason":"r","run_id":null,"status":"failed","version":null}"#
        );
    }
}
