//! `mmon eval`: every configuration and grid point checked first, the truth
//! and the logs read once, the runs replayed and scored in parallel, and
//! the report rendered (SPEC §9).

use std::collections::BTreeMap;
use std::io::{BufWriter, IsTerminal, Write};
use std::time::Instant;

use anyhow::{Context, anyhow};

use crate::cli::EvalArgs;
use crate::config::{Config, DEFAULT_TOML, EMBEDDED};
use crate::eval::grid::{self, Axis};
use crate::eval::output::{self, View};
use crate::eval::records::Records;
use crate::eval::truth::{self, Truth};
use crate::eval::{self, ChangesByStream, Format, Run, runs};
use crate::exit_code::{ExitCode, Failure};

fn usage(e: impl Into<anyhow::Error>) -> anyhow::Error {
    Failure::new(ExitCode::Usage, e).into()
}

pub fn run(args: &EvalArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let axes = axes(args)?;
    let runs = configurations(args, &axes)?;
    let first = &runs[0].config;
    if args.files.iter().filter(|f| *f == "-").count() > 1 {
        return Err(usage(anyhow!("'-' (stdin) can be given only once")));
    }
    for f in args.files.iter().filter(|f| *f != "-") {
        std::fs::metadata(f).with_context(|| format!("cannot open {f}"))?;
    }
    let truth_path = args.truth.display().to_string();
    let text = std::fs::read_to_string(&args.truth)
        .with_context(|| format!("cannot read the truth file {truth_path}"))?;
    let truth = Truth::parse(&text, &truth_path, first.input.unit).map_err(usage)?;

    // One parse for every run: the union of the monitored metrics.
    let mut schema = first.schema();
    let mut metrics: Vec<String> = Vec::new();
    for r in &runs {
        for m in r.config.schema().metrics {
            if !metrics.contains(&m) {
                metrics.push(m);
            }
        }
    }
    schema.ranges = metrics
        .iter()
        .map(|m| first.input.valid.get(m).copied())
        .collect();
    schema.metrics = metrics;
    let records = Records::read(&args.files, first, schema)?;
    if records.is_empty() {
        return Err(anyhow!(
            "no usable record in {} ({} rejected): nothing to score",
            args.files.join(", "),
            records.rejected
        ));
    }
    log::info!(
        "{} records read in {:.2} s; {} runs",
        records.len(),
        started.elapsed().as_secs_f64(),
        runs.len()
    );

    let (located, warnings) = truth::locate(&truth, &records, &args.files).map_err(usage)?;
    for w in warnings {
        log::warn!("{w}");
    }
    let mut changes: ChangesByStream = BTreeMap::new();
    for l in &located {
        changes
            .entry((l.model.clone(), l.slot))
            .or_default()
            .push(l.change);
    }

    let jobs = args.jobs.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |j| j as usize,
    );
    let configs: Vec<&Config> = runs.iter().map(|r| &r.config).collect();
    let found = runs::run_all(&records, &configs, jobs);
    let lengths = records.stream_lengths();
    let scored: Vec<eval::Scored> = runs
        .iter()
        .zip(&found)
        .map(|(r, f)| eval::score_run(&r.config, f, &records, &lengths, &changes, args.max_delay))
        .collect();
    let order = eval::rank(&scored);
    log::info!(
        "{} runs scored in {:.2} s",
        runs.len(),
        started.elapsed().as_secs_f64()
    );

    let view = View {
        logs: &args.files,
        records: records.len() as u64,
        rejected: records.rejected,
        truth_file: &truth_path,
        truth_format: truth.format,
        truth_changes: truth.changes.len(),
        located: located.len(),
        max_delay: args.max_delay,
        axes: &axes,
        runs: &runs,
        scored: &scored,
        order: &order,
        elapsed_s: started.elapsed().as_secs_f64(),
    };
    let format = args.format.unwrap_or(if std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Json
    });
    let mut out = BufWriter::new(std::io::stdout().lock());
    output::write(format, &view, &mut out).context("cannot write the report")?;
    out.flush().context("cannot write the report")?;
    Ok(ExitCode::Success)
}

fn axes(args: &EvalArgs) -> anyhow::Result<Vec<Axis>> {
    let axes: Vec<Axis> = args
        .grid
        .iter()
        .map(|g| Axis::parse(g))
        .collect::<Result<_, _>>()
        .map_err(usage)?;
    for (i, a) in axes.iter().enumerate() {
        if axes[..i].iter().any(|b| b.path == a.path) {
            return Err(usage(anyhow!(
                "--grid {:?}: {} has a grid already; give all its values in one --grid",
                a.spec,
                a.path
            )));
        }
    }
    Ok(axes)
}

/// Every configuration at every grid point, validated before anything is
/// read: any problem is a usage error naming the file, the key and the grid.
fn configurations(args: &EvalArgs, axes: &[Axis]) -> anyhow::Result<Vec<Run>> {
    let points = grid::points(axes).map_err(usage)?;
    let read = |path: &std::path::Path| -> anyhow::Result<(String, String)> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| usage(anyhow!("cannot read config {file}: {e}")))?;
        Ok((file, text))
    };
    let sources: Vec<(String, String)> = if args.config.is_empty() {
        match Config::locate(None) {
            Some(path) => vec![read(&path)?],
            None => vec![(EMBEDDED.to_string(), DEFAULT_TOML.to_string())],
        }
    } else {
        args.config
            .iter()
            .map(|p| read(p))
            .collect::<anyhow::Result<_>>()?
    };
    let mut runs = Vec::new();
    for (file, text) in &sources {
        let table = Config::table(text, file).map_err(usage)?;
        for point in &points {
            let mut t = table.clone();
            let chosen: Vec<(&Axis, &(String, toml::Value))> = axes
                .iter()
                .zip(point)
                .map(|(a, &v)| (a, &a.values[v]))
                .collect();
            for (a, (_, value)) in &chosen {
                a.apply(&mut t, value)
                    .map_err(|e| usage(anyhow!("--grid {:?}: {file}: {e}", a.spec)))?;
            }
            let config = Config::from_table(t.clone(), file).map_err(|e| {
                let with: Vec<String> = chosen
                    .iter()
                    .map(|(a, (typed, _))| format!("{}={typed}", a.path))
                    .collect();
                usage(anyhow!("{e} (with --grid {})", with.join(" --grid ")))
            })?;
            runs.push(Run {
                config,
                point: chosen
                    .iter()
                    .map(|(a, (_, v))| (a.path.clone(), v.clone()))
                    .collect(),
                block: (!axes.is_empty()).then(|| grid::toml_block(&t, axes)),
            });
        }
    }
    if let Some(other) = runs.iter().find(|r| r.config.input != runs[0].config.input) {
        return Err(usage(anyhow!(
            "{}: its [input] differs from that of {}; eval reads the logs once for every configuration, so [input] must be the same in all",
            other.config.source,
            runs[0].config.source
        )));
    }
    Ok(runs)
}
