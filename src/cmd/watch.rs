//! `mmon watch`: follow live logs through the same pipeline as replay, with
//! a checkpoint to resume from and `--once` for cron (SPEC §6).
//!
//! One thread, one loop: scan the files, read every whole new line through
//! the pipeline, save the checkpoint when due, wait for an event or the poll
//! interval. A signal stops the loop after the record in hand; the checkpoint
//! is written and the exit code says which signal it was.
//!
//! A run with `--state` does not end the input: windows still open when it
//! stops stay open in the checkpoint and go on in the next run, so no
//! `"eof"` close is reported. Without `--state` the end of the run is the end
//! of the input, as in replay.
//!
//! A run that read lines but no usable record exits 3, as replay does; one
//! that found nothing new exits 0, since an empty increment is normal
//! under cron.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::checkpoint::{self, Body, Checkpoint, CheckpointError};
use crate::cli::WatchArgs;
use crate::exit_code::{ExitCode, Failure};
use crate::pipeline::Pipeline;
use crate::retrain::ClockMode;
use crate::session::{self, Pace, Session};
use crate::settings::{Retrain, Settings};
use crate::signals::Signals;
use crate::source::Item;
use crate::watch::{Flow, Follower, Wake};

/// The files a watch writes: the shared outputs and the checkpoint.
fn watch_outputs<'a>(
    args: &'a WatchArgs,
    settings: &'a Settings,
) -> Vec<crate::output::Output<'a>> {
    let mut out = settings.outputs();
    if let Some(path) = &args.state {
        out.push(crate::output::Output {
            flag: "--state",
            path,
        });
    }
    out
}

/// Exit 4 for a checkpoint that cannot be written (an output), 5 for one
/// that cannot be used (corrupt, foreign, locked).
fn checkpoint_failure(e: CheckpointError) -> anyhow::Error {
    let code = if e.is_io() {
        ExitCode::Training
    } else {
        ExitCode::Checkpoint
    };
    Failure::new(code, e).into()
}

fn usage(message: String) -> anyhow::Error {
    Failure::new(ExitCode::Usage, anyhow::anyhow!(message)).into()
}

/// The paths given that are not globs and exist but are not regular files
/// (a directory, a FIFO, a device), each with what to do instead.
fn not_files(paths: &[String]) -> Vec<(String, String)> {
    use std::os::unix::fs::FileTypeExt;
    let mut out = Vec::new();
    for p in paths {
        if p.contains(['*', '?', '[']) {
            continue;
        }
        let Ok(meta) = std::fs::metadata(p) else {
            continue;
        };
        let t = meta.file_type();
        let why = if t.is_dir() {
            let glob = Path::new(p).join("*.jsonl");
            format!(
                "{p} is a directory; mmon watch follows files: give the files, or a quoted glob such as '{}'",
                glob.display()
            )
        } else if t.is_file() {
            continue;
        } else {
            let kind = if t.is_fifo() {
                "a FIFO"
            } else if t.is_socket() {
                "a socket"
            } else {
                "a device"
            };
            format!(
                "{p} is {kind}, not a regular file; mmon watch follows regular files (use `mmon replay -` to read a pipe)"
            )
        };
        out.push((p.clone(), why));
    }
    out
}

pub fn run(args: &WatchArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let nats = super::nats_source::url(&args.paths);
    // A nats:// source keeps its checkpoints on the server.
    if args.once && args.state.is_none() && nats.is_none() {
        return Err(usage(
            "--once needs --state FILE: without a checkpoint each run starts at the end of the files and reads nothing new; add --state (or read whole files with `mmon replay`)".into(),
        ));
    }
    let settings = Settings::resolve(&args.run, quiet, Retrain::Configured)?;
    if let Some(source) = nats {
        return super::nats_source::watch(source, &settings, args);
    }
    let config = &settings.config;
    if args.poll_interval.is_zero() {
        return Err(usage("--poll-interval: must be more than 0".into()));
    }
    if args.checkpoint_failures == 0 {
        return Err(usage("--checkpoint-failures: must be at least 1".into()));
    }
    let mut paths = args.paths.clone();
    let refused = not_files(&paths);
    if !refused.is_empty() {
        paths.retain(|p| !refused.iter().any(|(r, _)| r == p));
        let why: Vec<&str> = refused.iter().map(|(_, w)| w.as_str()).collect();
        if paths.is_empty() {
            return Err(usage(why.join("\n")));
        }
        for w in why {
            log::warn!("{w}; following the other paths");
        }
    }
    crate::output::refuse_inputs(
        &watch_outputs(args, &settings),
        &crate::output::matching(&args.paths),
    )?;
    let signals = Signals::register()?;
    let soft_limit = crate::watch::raise_open_file_limit();

    let checkpoint = args
        .state
        .as_deref()
        .map(Checkpoint::lock)
        .transpose()
        .map_err(checkpoint_failure)?;
    let fingerprint = checkpoint::fingerprint(config);
    let saved = match checkpoint.as_ref().map(Checkpoint::load).transpose() {
        Ok(body) => body.flatten(),
        Err(e) if args.reset_state => {
            log::warn!("{e}; starting afresh (--reset-state)");
            None
        }
        Err(e) => return Err(checkpoint_failure(e)),
    };
    let saved = match saved {
        Some(b) if b.config != fingerprint => {
            let path = args.state.as_deref().unwrap_or(Path::new("")).display();
            let e = CheckpointError::Config {
                path: path.to_string(),
            };
            if !args.reset_state {
                return Err(checkpoint_failure(e));
            }
            log::warn!("{e}; starting afresh (--reset-state)");
            None
        }
        other => other,
    };
    // The pipeline state goes to the pipeline; the files and the open
    // windows' training outcomes stay for the follower and the session.
    let (pipeline, saved) = match saved {
        Some(Body {
            pipeline: state,
            files,
            retrains,
            ..
        }) => {
            let pipeline = Pipeline::restore(config, state).map_err(|e| {
                let path = args.state.as_deref().unwrap_or(Path::new("")).display();
                checkpoint_failure(CheckpointError::Corrupt {
                    path: path.to_string(),
                    reason: e.to_string(),
                })
            })?;
            (pipeline, Some((files, retrains)))
        }
        None => (Pipeline::new(config), None),
    };
    let known: Vec<&str> = saved
        .iter()
        .flat_map(|(files, _)| {
            files
                .iter()
                .flat_map(|f| [f.name.as_str(), f.path.as_str()])
        })
        .collect();
    for p in &paths {
        if !p.contains(['*', '?', '[']) && !Path::new(p).exists() && !known.contains(&p.as_str()) {
            return Err(anyhow::anyhow!("cannot open {p}: no such file"));
        }
    }

    // A table in watch prints each event as it happens (SPEC §5).
    let (files, retrains) = saved.unzip();
    let mut session = Session::new(
        &settings,
        pipeline,
        retrains.unwrap_or_default(),
        ClockMode::Watch,
        signals.flag(),
        Pace::Live,
    )?;

    let mut wake = Wake::new(args.poll_interval, !args.poll && !args.once);
    let mut follower = Follower::new(
        paths.clone(),
        config.input.format,
        Arc::new(config.schema()),
        crate::watch::follow::max_open_for(soft_limit),
    );
    // Watch before the first scan, so lines appended during catch-up wake us.
    wake.watch_dirs(follower.dirs().iter().map(|d| d.as_path()));
    match &files {
        Some(files) => follower.resume(files)?,
        None => follower.start(args.from_start)?,
    }
    wake.watch_dirs(follower.dirs().iter().map(|d| d.as_path()));
    let nothing = follower.open_count() == 0 && follower.matched == 0;
    if nothing && !args.once {
        log::warn!(
            "no file matches {} yet; waiting for one to appear",
            paths.join(" ")
        );
    }
    if !args.once {
        log::info!(
            "watching {} file(s) ({})",
            follower.open_count(),
            if wake.uses_events() {
                "file-system events and polling"
            } else {
                "polling"
            }
        );
    }

    let started = Instant::now();
    let save = |follower: &Follower, session: &Session| -> Result<(), CheckpointError> {
        if let Some(c) = &checkpoint {
            let body = Body {
                config: fingerprint.clone(),
                files: follower.states(),
                pipeline: session.pipeline().save(),
                retrains: session.retrains().clone(),
            };
            c.save(&body)?;
        }
        Ok(())
    };
    // Consecutive failed saves while watching: each is retried at the next
    // interval, the previous checkpoint staying valid (SPEC §6).
    let mut failures = 0u32;
    let mut last_save = Instant::now();
    let mut dirty = true;
    loop {
        let mut retrained = false;
        let due =
            |last: Instant| checkpoint.is_some() && last.elapsed() >= args.checkpoint_interval;
        let (read, flow) = follower.pass(&mut |item| {
            match item {
                Item::Record(record) => session.record(&record)?,
                Item::Bad(bad) => session.bad(&bad)?,
            }
            retrained |= session.take_retrained();
            // Stop to save the checkpoint: after a training run (SPEC §6),
            // and every interval during a long catch-up.
            Ok(if signals.caught() || retrained || due(last_save) {
                Flow::Stop
            } else {
                Flow::Continue
            })
        })?;
        dirty |= read;
        if retrained || (dirty && due(last_save)) {
            last_save = Instant::now();
            match save(&follower, &session) {
                Ok(()) => {
                    if failures > 0 {
                        log::warn!("checkpoint written again after {failures} failed attempt(s)");
                    }
                    failures = 0;
                    dirty = false;
                    if session.has_report_files() {
                        // Report files follow the checkpoint (SPEC §8).
                        session.write_report_files(&run_summary(&session, started, &follower))?;
                    }
                }
                Err(e) if e.is_io() => {
                    failures += 1;
                    if failures >= args.checkpoint_failures {
                        let e = anyhow::anyhow!(
                            "{e}; gave up after {failures} consecutive failed writes (--checkpoint-failures)"
                        );
                        return Err(Failure::new(ExitCode::Training, e).into());
                    }
                    log::warn!(
                        "{e}; the previous checkpoint stays valid; retrying in {:?} ({failures} of {} failures allowed in a row)",
                        args.checkpoint_interval,
                        args.checkpoint_failures
                    );
                }
                Err(e) => return Err(checkpoint_failure(e)),
            }
        }
        if signals.caught() {
            break;
        }
        if matches!(flow, Flow::Stop) {
            continue;
        }
        if args.once {
            break;
        }
        wake.wait();
        if signals.caught() {
            break;
        }
        follower.scan()?;
        wake.watch_dirs(follower.dirs().iter().map(|d| d.as_path()));
    }

    if checkpoint.is_none() {
        // Without a checkpoint, the end of the run is the end of the input.
        session.end_of_input()?;
    }
    save(&follower, &session).map_err(checkpoint_failure)?;
    session.close_rejects()?;

    let summary = run_summary(&session, started, &follower);
    if follower.truncations > 0 {
        log::warn!("{} truncation(s) seen", follower.truncations);
    }
    if follower.lost_bytes > 0 {
        log::warn!(
            "{} byte(s) of files deleted before they were read could not be read (lost_bytes in the summary's inputs)",
            follower.lost_bytes
        );
    }
    let rejected = session.rejected();
    // The main report of a watch stopped by a signal is not marked: it
    // ends as usual and its checkpoint goes on next run. The report files
    // say that the run was interrupted.
    let code = session.finish(&summary, config, signals.exit_code().is_some())?;
    if args.once && nothing {
        let e = anyhow::anyhow!(
            "nothing to read: no file matches {} (check the path, or quote a glob)",
            paths.join(" ")
        );
        return Err(Failure::new(ExitCode::Input, e).into());
    }

    if let Some(code) = signals.exit_code() {
        return Ok(code);
    }
    // Lines arrived and none was usable: an input error. A run that found
    // nothing new (an empty increment under cron) is not.
    if summary.records == 0 && rejected > 0 {
        return Err(session::no_usable_record(
            &session::inputs_name(&args.paths),
            rejected,
        ));
    }
    Ok(code)
}

/// The summary of what this run has read so far.
fn run_summary(session: &Session, started: Instant, follower: &Follower) -> crate::report::Summary {
    let inputs = follower.stats();
    let bytes = inputs.iter().map(|s| s.bytes).sum();
    session.summary(started.elapsed().as_secs_f64(), bytes, inputs)
}
