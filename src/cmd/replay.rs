//! `mmon replay`: read logs to their end through the pipeline and report.
//!
//! SIGINT or SIGTERM stops the reading after the record in hand; a running
//! training command gets `shutdown_grace` to end before its process group
//! is killed; the report of what was read is written, marked interrupted,
//! and the exit code is 130 or 143 (SPEC §6).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

use crate::cli::ReplayArgs;
use crate::exit_code::{ExitCode, Failure};
use crate::output;
use crate::progress::Progress;
use crate::retrain::ClockMode;
use crate::session::{self, Pace, Session};
use crate::settings::{Retrain, Settings};
use crate::signals::Signals;
use crate::source::read_ahead;
use crate::source::{FileSource, Item};

pub fn run(args: &ReplayArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let settings = Settings::resolve(&args.run, quiet, Retrain::Flag(args.retrain))?;
    let config = &settings.config;
    log::info!(
        "configuration: {} ({} monitors)",
        config.source,
        config.monitors.len()
    );
    if let Some(url) = super::nats_source::url(&args.files) {
        return super::nats_source::replay(url, &settings);
    }
    let files = crate::source::inputs::expand(&args.files)?;
    if files.iter().filter(|f| *f == "-").count() > 1 {
        return Err(Failure::new(
            ExitCode::Usage,
            anyhow::anyhow!("'-' (stdin) can be given only once"),
        )
        .into());
    }
    let inputs: Vec<PathBuf> = files.iter().map(PathBuf::from).collect();
    output::refuse_inputs(&settings.outputs(), &inputs)?;
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
    let pipeline = crate::pipeline::Pipeline::new(config);
    let mut session = Session::new(
        &settings,
        pipeline,
        Default::default(),
        ClockMode::Replay,
        signals.flag(),
        Pace::AtEnd,
    )?;
    let schema = std::sync::Arc::new(config.schema());
    let files = if args.keep_order {
        files
    } else {
        in_time_order(files, config.input.format, &schema)?
    };
    let mut source = read_ahead::start(FileSource::new(files.clone(), config.input.format, schema));

    let progress = Progress::new(total, settings.progress);
    let started = Instant::now();
    let mut seen = 0u64;
    'read: while let Some(batch) = source.next_batch()? {
        for item in batch {
            if signals.caught() {
                break 'read;
            }
            seen += 1;
            match item {
                Item::Record(record) => session.record(record)?,
                Item::Bad(bad) => session.bad(bad)?,
            }
        }
        progress.update(source.bytes_read(), seen, started.elapsed().as_secs_f64());
    }
    session.end_of_input()?;
    progress.finish();
    session.close_rejects()?;
    for (earlier, later, n) in session.pipeline().overlaps() {
        log::warn!(
            "{later} overlaps {earlier} in time: {n} of its records are older than the last \
             record of their model in {earlier} (counted as out of order)"
        );
    }

    let summary = session.summary(
        started.elapsed().as_secs_f64(),
        source.bytes_read(),
        source.stats().to_vec(),
    );
    session.conclude_replay(summary, config, &signals, &session::inputs_name(&files))
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
