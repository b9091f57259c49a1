//! `mmon replay`: read logs to their end through the pipeline and report.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use crate::cli::{FailOnArg, ReplayArgs, RunArgs};
use crate::config::{Config, FailOn};
use crate::exit_code::{ExitCode, Failure};
use crate::pipeline::{Counts, Pipeline};
use crate::progress::Progress;
use crate::rejects::Rejects;
use crate::report::{self, Reporter, Summary};
use crate::retrain::ClockMode;
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
    if args.files.iter().filter(|f| *f == "-").count() > 1 {
        return Err(Failure::new(
            ExitCode::Usage,
            anyhow::anyhow!("'-' (stdin) can be given only once"),
        )
        .into());
    }
    // Every file must exist before anything is read; their sizes (unknown
    // for stdin and gzip) make the progress bar's total.
    let mut total = Some(0u64);
    for f in &args.files {
        if f == "-" {
            total = None;
            continue;
        }
        let size = std::fs::metadata(f)
            .with_context(|| format!("cannot open {f}"))?
            .len();
        total = total.filter(|_| !f.ends_with(".gz")).map(|t| t + size);
    }
    let mut trigger = if args.retrain || args.run.dry_run {
        Some(RetrainTrigger::new(
            &config,
            &trigger_options(&args.run),
            ClockMode::Replay,
        )?)
    } else {
        None
    };
    let out = open_output(&args.run)?;
    let format = report_format(&args.run);
    let mut reporter = Reporter::new(format, out, !quiet);
    let mut rejects = Rejects::new(args.run.on_bad_record, args.run.rejects.as_deref(), quiet)?;
    let mut pipeline = Pipeline::new(&config);
    let mut source = ReadAhead::new(FileSource::new(
        args.files.clone(),
        config.input.format,
        Arc::new(config.schema()),
    ));

    let progress = Progress::new(total, !args.run.no_progress && !quiet);
    let started = Instant::now();
    let mut events = Vec::new();
    let mut seen = 0u64;
    while let Some(batch) = source.next_batch()? {
        for item in batch {
            match item {
                Item::Record(record) => {
                    pipeline.process(record, &mut events);
                    for event in events.drain(..) {
                        if let Some(t) = &mut trigger {
                            t.observe(&event, &mut pipeline);
                        }
                        reporter.event(&event)?;
                    }
                }
                Item::Bad(bad) => rejects.add(bad)?,
            }
        }
        seen += batch.len() as u64;
        progress.update(source.bytes_read(), seen, started.elapsed().as_secs_f64());
    }
    pipeline.finish(&mut events);
    for event in events.drain(..) {
        reporter.event(&event)?;
    }
    progress.finish();
    rejects.finish()?;

    let counts = pipeline.counts();
    let summary = summary(
        &pipeline,
        counts,
        rejects.count(),
        trigger.as_ref(),
        started.elapsed().as_secs_f64(),
        source.bytes_read(),
        source.stats().to_vec(),
    );
    reporter
        .finish(&summary)
        .context("cannot write the report")?;

    Ok(exit_code(&args.run, &config, counts, trigger.as_ref()))
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
        versions: pipeline.versions(),
        elapsed_s,
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
    let fail_on = match run.fail_on {
        Some(FailOnArg::None) => FailOn::None,
        Some(FailOnArg::Warning) => FailOn::Warning,
        Some(FailOnArg::Drift) => FailOn::Drift,
        None => config.report.fail_on,
    };
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

/// Where the report goes; a file that cannot be created is a usage error,
/// found before any input is read.
pub fn open_output(run: &RunArgs) -> anyhow::Result<Box<dyn Write>> {
    Ok(match &run.output {
        None => Box::new(BufWriter::with_capacity(64 * 1024, std::io::stdout())),
        Some(path) => {
            let file = File::create(path)
                .with_context(|| format!("cannot create {}", Path::new(path).display()))
                .map_err(|e| Failure::new(ExitCode::Usage, e))?;
            Box::new(BufWriter::new(file))
        }
    })
}
