//! The retrain sink: turns drift windows into training runs (SPEC §7).
//!
//! It observes the pipeline's window events like the reporter does. A window
//! that opens as a drift, or a warning window that escalates to one, starts
//! a retrain of its model through the [`Retrainer`]. The sink only observes:
//! it returns the outcome, and the run core puts it on the window when the
//! window closes, so the `closed` event and the final report carry it. Replay
//! and watch use the same sink; only the clock of the cooldown differs.

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::exit_code::{ExitCode, Failure};
use crate::report::RetrainCounts;
use crate::retrain::{
    ClockMode, FakeRunner, ProcessRunner, RetrainNote, RetrainOutcome, Retrainer, Runner,
};
use crate::window::{Event, EventKind, Severity};

pub struct RetrainTrigger {
    retrainer: Retrainer,
    counts: RetrainCounts,
    dry_run: bool,
}

/// How the sink should run trainings, from the command line.
#[derive(Debug, Clone, Default)]
pub struct TriggerOptions {
    pub dry_run: bool,
    /// A scripted fake runner (hidden `--fake-training`), for tests.
    pub fake: Option<String>,
    /// Set by a signal handler: ends a running training command.
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl RetrainTrigger {
    /// The sink for `config`, or a usage error if it has no `[retrain]`.
    pub fn new(
        config: &Config,
        options: &TriggerOptions,
        mode: ClockMode,
    ) -> anyhow::Result<RetrainTrigger> {
        let Some(cfg) = config.retrain.clone() else {
            let msg = format!(
                "{}: retraining needs a [retrain] section (see `mmon init`)",
                config.source
            );
            return Err(Failure::new(ExitCode::Usage, anyhow::anyhow!(msg)).into());
        };
        let runner: Box<dyn Runner> = match &options.fake {
            Some(spec) => {
                let metric = cfg
                    .select
                    .as_ref()
                    .map_or("val_accuracy", |s| s.metric.as_str());
                let fake = FakeRunner::from_spec(spec, metric).map_err(|e| {
                    Failure::new(
                        ExitCode::Usage,
                        anyhow::anyhow!("--fake-training: bad step {:?}", e.0),
                    )
                })?;
                Box::new(fake)
            }
            None => {
                let mut runner = ProcessRunner::new();
                if let Some(flag) = &options.cancel {
                    runner = runner.with_cancel(flag.clone());
                }
                Box::new(runner)
            }
        };
        let root = cfg.registry.clone();
        let retrainer = Retrainer::new(cfg, &root, runner, mode).dry_run(options.dry_run);
        Ok(RetrainTrigger {
            retrainer,
            counts: RetrainCounts::default(),
            dry_run: options.dry_run,
        })
    }

    pub fn counts(&self) -> RetrainCounts {
        self.counts
    }

    /// Whether any training failed (exit code 4 at the end of the run).
    pub fn any_failed(&self) -> bool {
        self.counts.failed > 0
    }

    /// One readable line about a failed retrain (or failed trials of a
    /// published one): the reason, and where the last failed trial's
    /// `train.log` was kept.
    fn failure_line(&self, outcome: &RetrainOutcome) -> String {
        let (model, run_id, trials, head) = match outcome {
            RetrainOutcome::Failed(f) => (
                &f.model_id,
                f.run_id.as_deref(),
                &f.trials,
                format!("retraining {} failed: {}", f.model_id, f.reason),
            ),
            RetrainOutcome::Published(p) => (
                &p.model_id,
                Some(p.run_id.as_str()),
                &p.trials,
                format!(
                    "retraining {} published {}, but {} trial(s) failed",
                    p.model_id,
                    p.version,
                    p.failed_trials()
                ),
            ),
            _ => return String::new(),
        };
        let last_failed = trials.iter().rev().find(|t| t.status != "ok");
        let log = match (run_id, last_failed, self.retrainer.registry().model(model)) {
            (Some(run), Some(t), Ok(dir)) => {
                let name = format!("{run}-t{}", t.trial);
                [dir.failed_dir(), dir.staging_dir()]
                    .into_iter()
                    .map(|d| d.join(&name).join(crate::retrain::runner::TRAIN_LOG))
                    .find(|p| p.is_file())
            }
            _ => None,
        };
        match (log, last_failed) {
            (Some(log), Some(t)) => format!("{head}; trial {}'s log: {}", t.trial, log.display()),
            _ => head,
        }
    }

    /// Starts a retrain for a window that became a drift, and returns what
    /// it came to, for the run core to match to the window by its id.
    pub fn observe(&mut self, event: &Event) -> Option<RetrainNote> {
        let w = &event.window;
        let starts = match event.kind {
            EventKind::Opened => w.severity == Severity::Drift,
            EventKind::Escalated => true,
            EventKind::Closed => false,
        };
        if !starts {
            return None;
        }
        let trigger = serde_json::to_value(w).unwrap_or_default();
        let at = w
            .detected
            .timestamp
            .map_or_else(Utc::now, DateTime::<Utc>::from_timestamp_nanos);
        let outcome =
            self.retrainer
                .on_drift(&w.model_id, w.model_version.as_deref(), &trigger, at);
        match &outcome {
            RetrainOutcome::Published(_) => self.counts.ok += 1,
            RetrainOutcome::DryRun(_) if self.dry_run => {
                let line = serde_json::json!({ "dry_run": outcome.to_json() });
                eprintln!("{line}");
            }
            _ => {}
        }
        if outcome.is_failure() {
            self.counts.failed += 1;
            log::warn!("{}", self.failure_line(&outcome));
        }
        Some(outcome.note())
    }
}
