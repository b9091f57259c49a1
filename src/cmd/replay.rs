//! `mmon replay`: read logs to their end through the pipeline and report.
//!
//! SIGINT or SIGTERM stops the reading after the record in hand; a running
//! training command gets `shutdown_grace` to end before its process group
//! is killed; the report of what was read is written, marked interrupted,
//! and the exit code is 130 or 143 (SPEC §6).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use crate::cli::{FailOnArg, ReplayArgs, RunArgs};
use crate::config::{Config, FailOn};
use crate::exit_code::{ExitCode, Failure};
use crate::output::{self, Output, ReportSink, output_failure};
use crate::pipeline::{Counts, Pipeline};
use crate::progress::Progress;
use crate::rejects::Rejects;
use crate::report::files::ReportFiles;
use crate::report::{self, Reporter, Summary};
use crate::retrain::ClockMode;
use crate::signals::Signals;
use crate::source::read_ahead::ReadAhead;
use crate::source::{FileSource, FileStats, Item};
use crate::trigger::{RetrainTrigger, TriggerOptions};

pub fn run(args: &ReplayArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let config = load_config(&args.run)?;
    log::info!(
        "configuration: {} ({} monitors)",
        config.source,
        config.monitors.len()
    );
    let files = crate::source::inputs::expand(&args.files)?;
    if files.iter().filter(|f| *f == "-").count() > 1 {
        return Err(Failure::new(
            ExitCode::Usage,
            anyhow::anyhow!("'-' (stdin) can be given only once"),
        )
        .into());
    }
    let inputs: Vec<PathBuf> = files.iter().map(PathBuf::from).collect();
    output::refuse_inputs(&outputs(&args.run), &inputs)?;
    // Every file must exist before anything is read; their sizes (unknown
    // for stdin and gzip) make the progress bar's total.
    let mut total = Some(0u64);
    for f in &files {
        if f == "-" {
            total = None;
            continue;
        }
        let size = std::fs::metadata(f)
            .with_context(|| format!("cannot open {f}"))?
            .len();
        total = total.filter(|_| !f.ends_with(".gz")).map(|t| t + size);
    }
    let signals = Signals::register()?;
    let mut options = trigger_options(&args.run);
    options.cancel = Some(signals.flag());
    let mut trigger = if args.retrain || args.run.dry_run {
        Some(RetrainTrigger::new(&config, &options, ClockMode::Replay)?)
    } else {
        None
    };
    let mut outputs = report_files(&args.run, &config)?;
    let out = open_output(&args.run)?;
    let format = report_format(&args.run);
    let mut reporter = Reporter::new(format, out, !quiet);
    let mut rejects = Rejects::new(args.run.on_bad_record, args.run.rejects.as_deref(), quiet)?;
    let mut pipeline = Pipeline::new(&config);
    let schema = Arc::new(config.schema());
    let files = if args.keep_order {
        files
    } else {
        in_time_order(files, config.input.format, &schema)?
    };
    let mut source = ReadAhead::new(FileSource::new(files.clone(), config.input.format, schema));

    let progress = Progress::new(total, !args.run.no_progress && !quiet);
    let started = Instant::now();
    let mut events = Vec::new();
    let mut seen = 0u64;
    'read: while let Some(batch) = source.next_batch()? {
        for item in batch {
            if signals.caught() {
                break 'read;
            }
            seen += 1;
            match item {
                Item::Record(record) => {
                    pipeline.process(record, &mut events);
                    outputs.observe(record);
                    for event in events.drain(..) {
                        if let Some(t) = &mut trigger {
                            t.observe(&event, &mut pipeline);
                        }
                        outputs.event(&event);
                        reporter.event(&event).map_err(output_failure)?;
                    }
                }
                Item::Bad(bad) => rejects.add(bad)?,
            }
        }
        progress.update(source.bytes_read(), seen, started.elapsed().as_secs_f64());
    }
    pipeline.finish(&mut events);
    for event in events.drain(..) {
        outputs.event(&event);
        reporter.event(&event).map_err(output_failure)?;
    }
    progress.finish();
    rejects.finish()?;
    for (earlier, later, n) in pipeline.overlaps() {
        log::warn!(
            "{later} overlaps {earlier} in time: {n} of its records are older than the last \
             record of their model in {earlier} (counted as out of order)"
        );
    }

    let counts = pipeline.counts();
    let mut summary = summary(
        &pipeline,
        counts,
        rejects.count(),
        trigger.as_ref(),
        started.elapsed().as_secs_f64(),
        source.bytes_read(),
        source.stats().to_vec(),
    );
    warn_unseen(&summary, &config);
    summary.interrupted = signals.name();
    if let Some(signal) = summary.interrupted {
        log::warn!("{signal}: stopped after {seen} records; reporting what was read");
    }
    reporter
        .finish(&summary)
        .map_err(output_failure)?
        .commit()?;
    outputs.write(&summary, summary.interrupted.is_some())?;
    if counts.records == 0 && summary.interrupted.is_none() {
        return Err(no_usable_record(&files, rejects.count()));
    }

    if let Some(code) = signals.exit_code() {
        return Ok(code);
    }
    Ok(exit_code(&args.run, &config, counts, trigger.as_ref()))
}

/// `files` sorted by the timestamp of their first record (SPEC §2).
fn in_time_order(
    files: Vec<String>,
    forced: Option<crate::source::Format>,
    schema: &crate::record::Schema,
) -> anyhow::Result<Vec<String>> {
    use crate::source::inputs;
    if files.len() < 2 {
        return Ok(files);
    }
    let firsts = files
        .iter()
        .map(|f| inputs::first_time(f, forced, schema))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let sorted = inputs::time_order(files.clone(), &firsts);
    if sorted != files {
        log::info!(
            "reading in time order (by first record): {}; --keep-order reads them as given",
            sorted.join(" ")
        );
    }
    Ok(sorted)
}

/// The input error of a run that read no usable record (SPEC §1): a CI gate
/// must not pass on garbage.
pub fn no_usable_record(files: &[String], rejected: u64) -> anyhow::Error {
    let input = match files {
        [one] if one == "-" => "stdin".to_string(),
        [one] => one.clone(),
        many => format!("{} files", many.len()),
    };
    let e = if rejected > 0 {
        let all = if rejected == 1 {
            "its one record was rejected".to_string()
        } else {
            format!("all {rejected} records were rejected")
        };
        anyhow::anyhow!("no usable record in {input}: {all} (the first are shown above)")
    } else {
        anyhow::anyhow!("no record in {input}: nothing to monitor")
    };
    Failure::new(ExitCode::Input, e).into()
}

/// Warns, once at the end of a run, about what the configuration names and
/// no record carried: a typo in a metric or field name is never a silent
/// miss (SPEC §1).
pub fn warn_unseen(summary: &Summary, config: &Config) {
    let source = if config.source == crate::config::EMBEDDED {
        "the embedded default; `mmon init` writes it to a file to edit".to_string()
    } else {
        config.source.clone()
    };
    for metric in &summary.unseen.metrics {
        log::warn!(
            "no record had the monitored metric {metric:?}, so its monitors saw nothing \
             (check [[monitor]] metric in {source})"
        );
    }
    for field in &summary.unseen.fields {
        log::warn!(
            "no record had the model-id field {field:?}, so every record was counted as model \
             \"default\" (check [input] model_id in {source}; a dotted name such as \
             \"labels.region\" reads a nested field)"
        );
    }
}

/// The summary of a run (replay or watch) that read `bytes` from `inputs`;
/// `counts` are this run's (watch subtracts what a checkpoint carried in).
pub fn summary(
    pipeline: &Pipeline,
    counts: Counts,
    rejected: u64,
    trigger: Option<&RetrainTrigger>,
    elapsed_s: f64,
    bytes: u64,
    inputs: Vec<FileStats>,
) -> Summary {
    Summary {
        files: inputs.len() as u64,
        bytes,
        records: counts.records,
        rejected,
        out_of_order: counts.out_of_order,
        streams: pipeline.streams(),
        windows: report::WindowCounts {
            warning: counts.windows_warning,
            drift: counts.windows_drift,
        },
        retrains: trigger.map(RetrainTrigger::counts).unwrap_or_default(),
        unseen: pipeline.unseen(),
        versions: pipeline.versions(),
        elapsed_s,
        interrupted: None,
        records_per_s: if elapsed_s > 0.0 {
            counts.records as f64 / elapsed_s
        } else {
            0.0
        },
        inputs,
    }
}

/// The exit code of a run that read its input: 1 for a window at the
/// `--fail-on` level (the flag, else the config's `report.fail_on`), 4 if a
/// training failed, whichever is worse.
pub fn exit_code(
    run: &RunArgs,
    config: &Config,
    counts: Counts,
    trigger: Option<&RetrainTrigger>,
) -> ExitCode {
    let fail_on = fail_on_flag(run).unwrap_or(config.report.fail_on);
    let found = match fail_on {
        FailOn::None => false,
        FailOn::Warning => counts.windows_warning + counts.windows_drift > 0,
        FailOn::Drift => counts.windows_drift > 0,
    };
    let mut code = if found {
        ExitCode::WindowFound
    } else {
        ExitCode::Success
    };
    if trigger.is_some_and(RetrainTrigger::any_failed) {
        code = code.worst(ExitCode::Training);
    }
    code
}

/// How the retrain sink runs trainings, from the shared flags.
pub fn trigger_options(run: &RunArgs) -> TriggerOptions {
    TriggerOptions {
        dry_run: run.dry_run,
        fake: run.fake_training.clone(),
        cancel: None,
    }
}

/// The `--report` files of a run; two reports on stdout are a usage error.
pub fn report_files(run: &RunArgs, config: &Config) -> anyhow::Result<ReportFiles> {
    let on_stdout =
        run.reports.iter().filter(|s| s.path == "-").count() + usize::from(run.output.is_none());
    if !run.reports.is_empty() && on_stdout > 1 {
        return Err(Failure::new(
            ExitCode::Usage,
            anyhow::anyhow!(
                "--report KIND=- and the main report would both write to stdout: give --output FILE, or write the report to a file"
            ),
        )
        .into());
    }
    Ok(ReportFiles::new(&run.reports, config, fail_on_flag(run)))
}

/// `--fail-on` as given on the command line.
fn fail_on_flag(run: &RunArgs) -> Option<FailOn> {
    run.fail_on.map(|f| match f {
        FailOnArg::None => FailOn::None,
        FailOnArg::Warning => FailOn::Warning,
        FailOnArg::Drift => FailOn::Drift,
    })
}

/// Loads and validates the configuration; any problem is a usage error.
pub fn load_config(run: &RunArgs) -> anyhow::Result<Config> {
    Config::load(run.config.as_deref()).map_err(|e| Failure::new(ExitCode::Usage, e).into())
}

/// The report format: the flag, else a table for a person, JSON for a program.
pub fn report_format(run: &RunArgs) -> report::Format {
    run.format
        .unwrap_or(if run.output.is_none() && std::io::stdout().is_terminal() {
            report::Format::Table
        } else {
            report::Format::Json
        })
}

/// Where the report goes; a file that cannot be created (its folder is
/// missing or read-only) is exit 4, found before any input is read.
pub fn open_output(run: &RunArgs) -> anyhow::Result<ReportSink> {
    ReportSink::open(run.output.as_deref())
}

/// The files a run writes besides its checkpoint, with their flags.
pub fn outputs(run: &RunArgs) -> Vec<Output<'_>> {
    let mut out = Vec::new();
    if let Some(path) = &run.output {
        out.push(Output {
            flag: "--output",
            path: path.as_path(),
        });
    }
    if let Some(path) = &run.rejects {
        out.push(Output {
            flag: "--rejects",
            path: path.as_path(),
        });
    }
    for spec in run.reports.iter().filter(|s| s.path != "-") {
        out.push(Output {
            flag: "--report",
            path: Path::new(&spec.path),
        });
    }
    out
}
