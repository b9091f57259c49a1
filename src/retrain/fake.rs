//! A [`Runner`] that plays a script of outcomes: it starts nothing and
//! never sleeps, so retrain tests run in milliseconds, and the binary can
//! reach it from a hidden flag (STYLE 8).

use std::fs;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::runner::{Job, METRICS_JSON, RunReport, Runner, TRAIN_LOG, Termination};

/// One scripted outcome of [`FakeRunner`].
#[derive(Debug, Clone, PartialEq)]
pub enum FakeTrial {
    /// Exit 0, write `model.json` and, with a value, `metrics.json`.
    Ok(Option<f64>),
    /// Exit with this non-zero status after writing a log line.
    Exit(i32),
    /// Report a timeout without waiting for one.
    Timeout,
    /// Exit 0 having written nothing.
    Empty,
}

/// Plays a script of outcomes (cycling), starts nothing and never sleeps.
/// Every job it was given is kept for inspection.
#[derive(Debug, Clone)]
pub struct FakeRunner {
    script: Vec<FakeTrial>,
    metric: String,
    next: usize,
    jobs: Arc<Mutex<Vec<Job>>>,
}

impl FakeRunner {
    /// `metric` is the field that `Ok(Some(v))` writes into `metrics.json`.
    pub fn new(script: Vec<FakeTrial>, metric: &str) -> FakeRunner {
        FakeRunner {
            script,
            metric: metric.to_string(),
            next: 0,
            jobs: Arc::default(),
        }
    }

    /// Parses a script such as `ok=0.91,exit=1,timeout,empty,ok`.
    pub fn from_spec(spec: &str, metric: &str) -> Result<FakeRunner, FakeSpecError> {
        let mut script = Vec::new();
        for token in spec.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let bad = || FakeSpecError(token.to_string());
            script.push(match token.split_once('=') {
                None if token == "ok" => FakeTrial::Ok(None),
                None if token == "timeout" => FakeTrial::Timeout,
                None if token == "empty" => FakeTrial::Empty,
                Some(("ok", v)) => FakeTrial::Ok(Some(v.parse().map_err(|_| bad())?)),
                Some(("exit", v)) => {
                    FakeTrial::Exit(v.parse().ok().filter(|c| *c != 0).ok_or_else(bad)?)
                }
                _ => return Err(bad()),
            });
        }
        if script.is_empty() {
            return Err(FakeSpecError(spec.to_string()));
        }
        Ok(FakeRunner::new(script, metric))
    }

    /// The jobs run so far, shared with clones of this runner.
    pub fn jobs(&self) -> Arc<Mutex<Vec<Job>>> {
        Arc::clone(&self.jobs)
    }
}

/// A `--fake-training` script token that is not understood.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "fake training script: cannot understand {0:?}; expected ok, ok=VALUE, exit=CODE, timeout or empty, separated by commas"
)]
pub struct FakeSpecError(pub String);

impl Runner for FakeRunner {
    fn run(&mut self, job: &Job) -> RunReport {
        self.jobs
            .lock()
            .expect("fake runner jobs")
            .push(job.clone());
        let step = self.script[self.next % self.script.len()].clone();
        self.next += 1;
        let dir = &job.output_dir;
        let params = job
            .env
            .iter()
            .find(|(k, _)| k == "MMON_PARAMS")
            .map_or("{}", |(_, v)| v.as_str());
        let write = |name: &str, text: String| {
            let _ = fs::write(dir.join(name), text);
        };
        write(
            TRAIN_LOG,
            format!("fake training: {}\n", job.argv.join(" ")),
        );
        let termination = match step {
            FakeTrial::Ok(value) => {
                write("model.json", format!("{{\"params\": {params}}}\n"));
                if let Some(v) = value {
                    write(
                        METRICS_JSON,
                        serde_json::json!({ self.metric.as_str(): v }).to_string(),
                    );
                }
                Termination::Exited(0)
            }
            FakeTrial::Exit(code) => Termination::Exited(code),
            FakeTrial::Timeout => Termination::TimedOut,
            FakeTrial::Empty => Termination::Exited(0),
        };
        RunReport {
            termination,
            duration: Duration::from_millis(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(dir: &std::path::Path) -> Job {
        Job {
            argv: vec!["train".into()],
            workdir: dir.to_path_buf(),
            env: Vec::new(),
            output_dir: dir.to_path_buf(),
            timeout: Duration::from_secs(1),
            grace: Duration::from_secs(1),
        }
    }

    #[test]
    fn fake_runner_plays_its_script() {
        let dir = tempfile::tempdir().unwrap();
        let mut fake = FakeRunner::from_spec("ok=0.5, exit=2, timeout, empty", "acc").unwrap();
        let j = job(dir.path());
        let r = fake.run(&j);
        assert_eq!(r.termination, Termination::Exited(0));
        assert_eq!(
            fs::read_to_string(dir.path().join("metrics.json")).unwrap(),
            r#"{"acc":0.5}"#
        );
        assert_eq!(fake.run(&j).termination, Termination::Exited(2));
        assert_eq!(fake.run(&j).termination, Termination::TimedOut);
        assert_eq!(fake.run(&j).termination, Termination::Exited(0));
        assert_eq!(fake.jobs().lock().unwrap().len(), 4);
        assert!(FakeRunner::from_spec("exit=0", "acc").is_err());
        assert!(FakeRunner::from_spec("boom", "acc").is_err());
    }
}
