//! The retrain of one model after a drift: cooldown, lock, version, trials,
//! selection, publication.
//!
//! One call of [`Retrainer::on_drift`] is one retrain, run to its end on the
//! calling thread (a plain loop over trials, no threads; watch may call it
//! the same way). Order of work, per SPEC §7:
//!
//! 1. cooldown: the last retrain of the model (from `events.jsonl`, and from
//!    this process's memory, which also covers `--dry-run`) is compared with
//!    the drift's event time in replay, with the wall clock in watch;
//! 2. `.train.lock` is taken without waiting (a holder means another process
//!    retrains this model: skip and say who); the debris of killed runs is
//!    cleared; the new version is computed;
//! 3. each trial gets parameters from the tuner, a staging folder with
//!    `params.json`, and a run of the command; failures go to `.failed/`
//!    with their log and a `failure.json`, and every trial is appended to
//!    `.history/trials.jsonl`;
//! 4. the best successful trial is published atomically (see
//!    `registry::publish`); the other successful ones are discarded.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::clock::{Clock, ClockMode, SystemClock};
use super::config::{Goal, RetrainConfig};
use super::history::{self, TrialRecord};
use super::outcome::{DryRun, FailedRetrain, PlannedTrial, Published, RetrainOutcome, Skip};
use super::runner::{Job, PARAMS_JSON, Runner, Termination};
use super::{tuner, verdict};
use crate::durable;
use crate::registry::manifest::{Selected, TrialEntry};
use crate::registry::version::next_version;
use crate::registry::{
    Event, LockError, Manifest, ModelDir, PublishHook, PublishStep, Registry, RegistryError, events,
};

/// Retrains models on drift and publishes them into one registry.
pub struct Retrainer {
    cfg: RetrainConfig,
    registry: Registry,
    runner: Box<dyn Runner>,
    mode: ClockMode,
    clock: Box<dyn Clock>,
    dry_run: bool,
    hook: Option<PublishHook>,
    /// Retrains started by this process: (event time, wall time) per model.
    started: HashMap<String, (DateTime<Utc>, DateTime<Utc>)>,
    runs: u32,
}

impl Retrainer {
    /// A retrainer publishing into `registry_root` (made absolute here, since
    /// the command runs in `workdir` and gets absolute output paths).
    pub fn new(
        cfg: RetrainConfig,
        registry_root: &Path,
        runner: Box<dyn Runner>,
        mode: ClockMode,
    ) -> Retrainer {
        let root =
            std::path::absolute(registry_root).unwrap_or_else(|_| registry_root.to_path_buf());
        Retrainer {
            cfg,
            registry: Registry::new(root),
            runner,
            mode,
            clock: Box::new(SystemClock),
            dry_run: false,
            hook: None,
            started: HashMap::new(),
            runs: 0,
        }
    }

    /// Plans instead of running (`--dry-run`): nothing is started or written.
    pub fn dry_run(mut self, yes: bool) -> Retrainer {
        self.dry_run = yes;
        self
    }

    pub fn with_clock(mut self, clock: Box<dyn Clock>) -> Retrainer {
        self.clock = clock;
        self
    }

    /// Calls `hook` before each publish step; for crash tests only.
    #[doc(hidden)]
    pub fn with_publish_hook(mut self, hook: PublishHook) -> Retrainer {
        self.hook = Some(hook);
        self
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Retrains `model_id` after a drift: `log_version` is the
    /// `model_version` the log carried (the parent), `trigger` the drift
    /// window as JSON, `event_time` the window's detection time.
    pub fn on_drift(
        &mut self,
        model_id: &str,
        log_version: Option<&str>,
        trigger: &Value,
        event_time: DateTime<Utc>,
    ) -> RetrainOutcome {
        let failed = |reason: String| {
            RetrainOutcome::Failed(FailedRetrain {
                model_id: model_id.to_string(),
                version: None,
                run_id: None,
                reason,
                trials: Vec::new(),
            })
        };
        let model = match self.registry.model(model_id) {
            Ok(m) => m,
            Err(e) => return failed(e.to_string()),
        };
        let wall = self.clock.now();
        match self.cooldown(&model, event_time, wall) {
            Ok(Some(skip)) => return RetrainOutcome::Skipped(skip),
            Ok(None) => {}
            Err(e) => return failed(e.to_string()),
        }
        if self.dry_run {
            self.started
                .insert(model_id.to_string(), (event_time, wall));
            return match self.plan(&model, log_version, trigger) {
                Ok(plan) => RetrainOutcome::DryRun(plan),
                Err(e) => failed(e.to_string()),
            };
        }
        self.runs += 1;
        let run_id = format!(
            "{}-p{}-{}",
            wall.format("%Y%m%dT%H%M%SZ"),
            std::process::id(),
            self.runs
        );
        let lock = match model.try_train_lock(&run_id) {
            Ok(lock) => lock,
            Err(RegistryError::Lock(LockError::Held { holder, .. })) => {
                return RetrainOutcome::Skipped(Skip::Locked { holder });
            }
            Err(e) => return failed(e.to_string()),
        };
        // Another process may have finished a retrain of this model between
        // the first look and taking the lock: look again under the lock.
        match self.cooldown(&model, event_time, wall) {
            Ok(Some(skip)) => return RetrainOutcome::Skipped(skip),
            Ok(None) => {}
            Err(e) => return failed(e.to_string()),
        }
        self.started
            .insert(model_id.to_string(), (event_time, wall));
        let outcome = self.retrain(&model, &run_id, log_version, trigger, event_time, &lock);
        drop(lock);
        outcome
    }

    fn cooldown(
        &self,
        model: &ModelDir,
        event_time: DateTime<Utc>,
        wall: DateTime<Utc>,
    ) -> Result<Option<Skip>, RegistryError> {
        let (mut last_event, mut last_wall) = events::last_retrain(&model.events()?);
        if let Some((e, w)) = self.started.get(model.id()) {
            last_event = last_event.max(Some(*e));
            last_wall = last_wall.max(Some(*w));
        }
        let (last, now) = match self.mode {
            ClockMode::Replay => (last_event, event_time),
            ClockMode::Watch => (last_wall, wall),
        };
        let Some(last) = last else { return Ok(None) };
        let cooldown =
            chrono::Duration::from_std(self.cfg.cooldown).unwrap_or(chrono::Duration::MAX);
        let until = last
            .checked_add_signed(cooldown)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        // Earlier than the last retrain counts as inside the cooldown, so a
        // second replay of the same log does not retrain again.
        Ok((now < until).then_some(Skip::Cooldown { last, until }))
    }

    fn plan(
        &self,
        model: &ModelDir,
        log_version: Option<&str>,
        trigger: &Value,
    ) -> Result<DryRun, RegistryError> {
        let next = next_version(model.versions()?.last(), log_version, self.cfg.bump);
        let history = history::read(&model.history_path())
            .map_err(RegistryError::io("cannot read", &model.history_path()))?;
        let run_id = "dry-run";
        let mut trials = Vec::new();
        for k in 1..=self.cfg.trials {
            let proposal = tuner::propose(
                &self.cfg.search,
                self.goal(),
                model.id(),
                &next.new.to_string(),
                k,
                &history,
            );
            let staging = model.staging_dir().join(format!("{run_id}-t{k}"));
            let ctx = Context {
                model,
                run_id,
                log_version,
                base: next.base.as_ref(),
                new: &next.new,
                trigger,
            };
            let job = self.job(&ctx, k, &proposal, &staging);
            trials.push(PlannedTrial {
                trial: k,
                argv: job.argv,
                workdir: job.workdir,
                env: job.env,
            });
        }
        Ok(DryRun {
            model_id: model.id().to_string(),
            version: next.new.to_string(),
            trials,
        })
    }

    fn goal(&self) -> Option<Goal> {
        self.cfg.select.as_ref().map(|s| s.goal)
    }

    fn retrain(
        &mut self,
        model: &ModelDir,
        run_id: &str,
        log_version: Option<&str>,
        trigger: &Value,
        event_time: DateTime<Utc>,
        lock: &crate::registry::TrainLock,
    ) -> RetrainOutcome {
        let started = Instant::now();
        let mut fail = FailedRetrain {
            model_id: model.id().to_string(),
            version: None,
            run_id: Some(run_id.to_string()),
            reason: String::new(),
            trials: Vec::new(),
        };
        let give_up = |mut f: FailedRetrain, reason: String| {
            f.reason = reason;
            RetrainOutcome::Failed(f)
        };
        // A group an earlier, killed run left training would write into
        // staging and compete with this run: end it before clearing.
        model.stop_orphans(self.cfg.shutdown_grace);
        if let Err(e) = model.clear_debris(lock) {
            return give_up(
                fail,
                format!("cannot clear the debris of an earlier run: {e}"),
            );
        }
        let next = match model.versions() {
            Ok(v) => next_version(v.last(), log_version, self.cfg.bump),
            Err(e) => return give_up(fail, e.to_string()),
        };
        let new = next.new.to_string();
        fail.version = Some(new.clone());
        let history_path = model.history_path();
        let mut history = match history::read(&history_path) {
            Ok(h) => h,
            Err(e) => return give_up(fail, format!("cannot read {}: {e}", history_path.display())),
        };
        let ctx = Context {
            model,
            run_id,
            log_version,
            base: next.base.as_ref(),
            new: &next.new,
            trigger,
        };

        let mut entries = Vec::new();
        let mut winners: Vec<Candidate> = Vec::new();
        let mut last_reason = String::new();
        for k in 1..=self.cfg.trials {
            let proposal =
                tuner::propose(&self.cfg.search, self.goal(), model.id(), &new, k, &history);
            let staging = model.staging_dir().join(format!("{run_id}-t{k}"));
            let job = self.job(&ctx, k, &proposal, &staging);
            let params_text =
                serde_json::to_string_pretty(&proposal.params).expect("params serialise") + "\n";
            if let Err(e) = fs::create_dir_all(&staging).and_then(|_| {
                durable::write_synced(&staging.join(PARAMS_JSON), params_text.as_bytes())
            }) {
                fail.trials = entries;
                return give_up(fail, format!("cannot prepare {}: {e}", staging.display()));
            }
            let report = self.runner.run(&job);
            let verdict = verdict::judge(&report, &job, self.cfg.select.as_ref());
            let (exit_code, signal) = match report.termination {
                Termination::Exited(c) => (Some(c), None),
                Termination::Signaled(s) => (None, Some(s)),
                _ => (None, None),
            };
            let mut entry = TrialEntry {
                trial: k,
                params: json!(proposal.params),
                status: "ok".into(),
                value: None,
                exit_code,
                signal,
                timed_out: report.termination == Termination::TimedOut,
                duration_s: report.duration.as_secs_f64(),
                reason: None,
            };
            match verdict {
                Ok(success) => {
                    entry.value = success.value;
                    winners.push(Candidate {
                        trial: k,
                        value: success.value,
                        metrics: success.metrics,
                        staging,
                        argv: job.argv.clone(),
                        params: proposal.params.clone(),
                    });
                }
                Err(why) => {
                    entry.status = "failed".into();
                    entry.reason = Some(why.to_string());
                    last_reason = format!("trial {k}: {why}");
                    self.keep_failed(model, &staging, &entry, &new, run_id, event_time);
                }
            }
            let interrupted = report.termination == Termination::Interrupted;
            let record = TrialRecord {
                at: self.clock.now(),
                run_id: run_id.to_string(),
                version: new.clone(),
                trial: k,
                seed: proposal.seed,
                params: proposal.params,
                ok: entry.status == "ok",
                value: entry.value,
            };
            if let Err(e) = history::append(&history_path, &record) {
                log::warn!("cannot append to {}: {e}", history_path.display());
            }
            history.push(record);
            entries.push(entry);
            if interrupted {
                // mmon is shutting down: start no further trial.
                break;
            }
        }

        let goal = self.goal();
        let best = winners
            .iter()
            .enumerate()
            .fold(None::<usize>, |best, (i, w)| match (best, goal) {
                (None, _) => Some(i),
                (Some(b), Some(g))
                    if g.better(
                        w.value.unwrap_or(f64::NAN),
                        winners[b].value.unwrap_or(f64::NAN),
                    ) =>
                {
                    Some(i)
                }
                (b, _) => b,
            });
        let Some(best) = best else {
            fail.trials = entries;
            let reason = if self.cfg.trials == 1 {
                last_reason
            } else {
                format!("all {} trials failed; last {last_reason}", self.cfg.trials)
            };
            let _ = model.append_event(
                self.clock.now(),
                Event::Failed {
                    version: new.clone(),
                    run_id: run_id.into(),
                    trigger_time: Some(event_time),
                    trial: None,
                    reason: reason.clone(),
                },
            );
            return give_up(fail, reason);
        };
        let Candidate {
            trial,
            value,
            metrics,
            staging,
            argv,
            params,
        } = winners.swap_remove(best);
        for other in &winners {
            let _ = durable::remove_any(&other.staging);
        }
        let select = self.cfg.select.as_ref();
        let manifest = Manifest {
            schema: crate::registry::manifest::SCHEMA.to_string(),
            model_id: model.id().to_string(),
            version: new.clone(),
            parent: log_version.map(str::to_string),
            base_version: next.base.as_ref().map(ToString::to_string),
            run_id: run_id.to_string(),
            created_at: self
                .clock
                .now()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            trigger: trigger.clone(),
            params: json!(params),
            selected: Selected {
                trial,
                metric: select.map(|s| s.metric.clone()),
                goal: select.map(|s| s.goal.as_str().to_string()),
                value,
            },
            metrics,
            trials: entries.clone(),
            command: argv,
            duration_s: started.elapsed().as_secs_f64(),
            files: Vec::new(),
            tree_sha256: String::new(),
        };
        let event = Event::Published {
            version: new.clone(),
            run_id: run_id.to_string(),
            trigger_time: Some(event_time),
            parent: log_version.map(str::to_string),
            trial,
            value,
        };
        let mut no_hook = |_: PublishStep| Ok(());
        let hook: &mut dyn FnMut(PublishStep) -> std::io::Result<()> = match self.hook.as_mut() {
            Some(h) => h,
            None => &mut no_hook,
        };
        match model.publish(&staging, &next.new, manifest, event, self.clock.now(), hook) {
            Ok(_) => RetrainOutcome::Published(Published {
                model_id: model.id().to_string(),
                version: new.clone(),
                parent: log_version.map(str::to_string),
                base_version: next.base.as_ref().map(ToString::to_string),
                run_id: run_id.to_string(),
                path: model.version_dir(&next.new),
                trial,
                value,
                trials: entries,
            }),
            Err(e) => {
                fail.trials = entries;
                give_up(fail, format!("cannot publish {} {new}: {e}", model.id()))
            }
        }
    }

    /// Moves a failed trial's folder to `.failed/` with a `failure.json`.
    fn keep_failed(
        &self,
        model: &ModelDir,
        staging: &Path,
        entry: &TrialEntry,
        version: &str,
        run_id: &str,
        event_time: DateTime<Utc>,
    ) {
        let failed_dir = model.failed_dir();
        let dest = failed_dir.join(staging.file_name().unwrap_or_default());
        let moved = fs::create_dir_all(&failed_dir).and_then(|_| fs::rename(staging, &dest));
        let where_ = if moved.is_ok() {
            dest
        } else {
            staging.to_path_buf()
        };
        let failure = json!({
            "model_id": model.id(),
            "version": version,
            "run_id": run_id,
            "trial": entry,
        });
        let _ = fs::write(
            where_.join("failure.json"),
            serde_json::to_string_pretty(&failure).unwrap_or_default() + "\n",
        );
        let _ = model.append_event(
            self.clock.now(),
            Event::Failed {
                version: version.to_string(),
                run_id: run_id.to_string(),
                trigger_time: Some(event_time),
                trial: Some(entry.trial),
                reason: entry.reason.clone().unwrap_or_default(),
            },
        );
        // A bad spell must not fill the disk: keep only the newest ones.
        match model.prune_failed(self.cfg.keep_failed) {
            Ok(removed) if !removed.is_empty() => log::info!(
                "{}: removed {} old failed trial(s) from .failed/ (keep_failed = {})",
                model.id(),
                removed.len(),
                self.cfg.keep_failed
            ),
            Ok(_) => {}
            Err(e) => log::warn!("{}: cannot prune .failed/: {e}", model.id()),
        }
    }

    fn job(&self, ctx: &Context, trial: u32, proposal: &tuner::Proposal, staging: &Path) -> Job {
        let opt = |v: Option<String>| v.unwrap_or_default();
        let mut values: BTreeMap<String, String> = proposal
            .params
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    },
                )
            })
            .collect();
        let output_dir = staging.display().to_string();
        let builtins = [
            ("output_dir", output_dir.clone()),
            ("model_id", ctx.model.id().to_string()),
            ("parent_version", opt(ctx.log_version.map(str::to_string))),
            ("base_version", opt(ctx.base.map(ToString::to_string))),
            ("new_version", ctx.new.to_string()),
            ("run_id", ctx.run_id.to_string()),
        ];
        for (k, v) in &builtins {
            values.insert(k.to_string(), v.clone());
        }
        let argv = self.cfg.command.iter().map(|t| t.fill(&values)).collect();
        let env = vec![
            ("MMON_MODEL_ID".to_string(), ctx.model.id().to_string()),
            (
                "MMON_PARENT_VERSION".to_string(),
                opt(ctx.log_version.map(str::to_string)),
            ),
            (
                "MMON_BASE_VERSION".to_string(),
                opt(ctx.base.map(ToString::to_string)),
            ),
            ("MMON_NEW_VERSION".to_string(), ctx.new.to_string()),
            ("MMON_OUTPUT_DIR".to_string(), output_dir),
            (
                "MMON_PARAMS".to_string(),
                json!(proposal.params).to_string(),
            ),
            ("MMON_TRIGGER".to_string(), ctx.trigger.to_string()),
            ("MMON_RUN_ID".to_string(), ctx.run_id.to_string()),
            ("MMON_TRIAL".to_string(), trial.to_string()),
            ("MMON_SEED".to_string(), proposal.seed.to_string()),
        ];
        Job {
            argv,
            workdir: self.cfg.workdir.clone(),
            env,
            output_dir: staging.to_path_buf(),
            timeout: self.cfg.timeout,
            grace: self.cfg.shutdown_grace,
        }
    }
}

/// A successful trial, competing to be published.
struct Candidate {
    trial: u32,
    value: Option<f64>,
    metrics: Option<Value>,
    staging: PathBuf,
    argv: Vec<String>,
    params: BTreeMap<String, Value>,
}

/// What every trial of one retrain shares.
struct Context<'a> {
    model: &'a ModelDir,
    run_id: &'a str,
    log_version: Option<&'a str>,
    base: Option<&'a semver::Version>,
    new: &'a semver::Version,
    trigger: &'a Value,
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_retrainer_can_move_to_another_thread() {
        fn send<T: Send>() {}
        send::<super::Retrainer>();
    }
}
