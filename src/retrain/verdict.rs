//! Whether a finished trial succeeded, by SPEC §7, and why not.

use std::fs;
use std::io;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;

use super::config::Select;
use super::runner::{Job, METRICS_JSON, PARAMS_JSON, RunReport, TRAIN_LOG, Termination};

/// Why a trial failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrialFailure {
    #[error("{0}")]
    SpawnFailed(String),
    #[error("exited with status {0}")]
    Exited(i32),
    #[error("killed by signal {0}")]
    Signaled(String),
    #[error("timed out after {}", humantime::format_duration(*.0))]
    TimedOut(Duration),
    #[error("stopped because mmon was shutting down")]
    Interrupted,
    #[error("exited 0 but wrote no file besides params.json and train.log")]
    NoOutput,
    #[error("output holds {0}, which is not a regular file; a version holds regular files only")]
    NotRegular(String),
    #[error("no metrics.json in the output (select needs {0:?})")]
    MetricsMissing(String),
    #[error("metrics.json is not a JSON object: {0}")]
    MetricsInvalid(String),
    #[error("metrics.json has no finite number {metric:?} (found {found})")]
    MetricNotFinite { metric: String, found: String },
}

/// A successful trial's selected value and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialSuccess {
    pub value: Option<f64>,
    pub metrics: Option<Value>,
}

/// Judges a finished trial by SPEC §7: exit 0, at least one file besides
/// mmon's own, and with `select` a `metrics.json` object whose selected
/// metric is a finite number.
pub fn judge(
    report: &RunReport,
    job: &Job,
    select: Option<&Select>,
) -> Result<TrialSuccess, TrialFailure> {
    match &report.termination {
        Termination::Exited(0) => {}
        Termination::Exited(code) => return Err(TrialFailure::Exited(*code)),
        Termination::Signaled(sig) => {
            let name =
                Signal::try_from(*sig).map_or_else(|_| sig.to_string(), |s| format!("{sig} ({s})"));
            return Err(TrialFailure::Signaled(name));
        }
        Termination::TimedOut => return Err(TrialFailure::TimedOut(job.timeout)),
        Termination::Interrupted => return Err(TrialFailure::Interrupted),
        Termination::SpawnFailed(msg) => return Err(TrialFailure::SpawnFailed(msg.clone())),
    }
    let entries = crate::registry::manifest::walk(&job.output_dir)
        .map_err(|e| TrialFailure::SpawnFailed(format!("cannot list the output folder: {e}")))?;
    if let Some(bad) = entries.iter().find(|e| !e.regular) {
        return Err(TrialFailure::NotRegular(bad.path.clone()));
    }
    if !entries
        .iter()
        .any(|e| e.path != PARAMS_JSON && e.path != TRAIN_LOG)
    {
        return Err(TrialFailure::NoOutput);
    }
    let metrics = read_metrics(&job.output_dir, select)?;
    let value = match select {
        None => None,
        Some(s) => {
            let found = metrics.as_ref().and_then(|m| m.get(&s.metric));
            match found.and_then(Value::as_f64).filter(|v| v.is_finite()) {
                Some(v) => Some(v),
                None => {
                    let found = found.map_or("nothing".to_string(), Value::to_string);
                    return Err(TrialFailure::MetricNotFinite {
                        metric: s.metric.clone(),
                        found,
                    });
                }
            }
        }
    };
    Ok(TrialSuccess { value, metrics })
}

fn read_metrics(dir: &Path, select: Option<&Select>) -> Result<Option<Value>, TrialFailure> {
    let text = match fs::read_to_string(dir.join(METRICS_JSON)) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return match select {
                Some(s) => Err(TrialFailure::MetricsMissing(s.metric.clone())),
                None => Ok(None),
            };
        }
        Err(e) => return Err(TrialFailure::MetricsInvalid(e.to_string())),
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(v @ Value::Object(_)) => Ok(Some(v)),
        Ok(other) => Err(TrialFailure::MetricsInvalid(format!(
            "found {}",
            short(&other.to_string())
        ))),
        // Without `select` the metrics are informational; a broken file is
        // still a broken trial, since the team's trainer meant to write it.
        Err(e) => Err(TrialFailure::MetricsInvalid(e.to_string())),
    }
}

fn short(s: &str) -> String {
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s.to_string()
    }
}
