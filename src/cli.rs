//! The command line as typed: clap derive types, nothing else.
//!
//! `settings.rs` resolves these over `mmon.toml` (read by `config.rs`)
//! into what a run uses.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::rejects::OnBadRecord;
use crate::report::Format;

#[derive(Debug, Parser)]
#[command(
    name = "mmon",
    version,
    about = "Monitor ML models from their metric logs: drift windows, retraining, a model registry",
    after_help = crate::exit_code::ExitCode::help_table()
)]
pub struct Cli {
    /// Only errors on stderr (no progress, no summary, no bad-record lines).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More detail on stderr; repeat for more (RUST_LOG also works).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Colour on stderr and in help: auto (on a terminal, unless NO_COLOR is set), always or never.
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "WHEN",
        default_value = "auto"
    )]
    pub color: Color,
    #[command(subcommand)]
    pub command: Command,
}

/// When to colour what mmon prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

impl Color {
    /// `auto` made definite by `NO_COLOR` (no-color.org): set and not
    /// empty, it turns colour off; a flag given on the command line wins.
    pub fn resolve(self, no_color: Option<&std::ffi::OsStr>) -> Color {
        match self {
            Color::Auto if no_color.is_some_and(|v| !v.is_empty()) => Color::Never,
            other => other,
        }
    }

    /// The colour choice of `--color` among the raw arguments, for clap's
    /// own help and errors (rendered before the arguments are parsed).
    pub fn from_args<I: IntoIterator<Item = std::ffi::OsString>>(args: I) -> Color {
        let mut color = Color::Auto;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let value = match arg.to_str() {
                Some("--") => break,
                Some("--color") => args.next(),
                Some(a) => a.strip_prefix("--color=").map(Into::into),
                None => None,
            };
            if let Some(v) = value {
                color = match v.to_str() {
                    Some("always") => Color::Always,
                    Some("never") => Color::Never,
                    _ => Color::Auto,
                };
            }
        }
        color
    }
}

/// The command as documented: hidden arguments and subcommands (test
/// hooks such as `--fake-training`) left out, for shell completions.
pub fn documented() -> clap::Command {
    visible(&<Cli as clap::CommandFactory>::command())
}

fn visible(cmd: &clap::Command) -> clap::Command {
    let mut out = clap::Command::new(cmd.get_name().to_string())
        .args(cmd.get_arguments().filter(|a| !a.is_hide_set()).cloned())
        .subcommands(
            cmd.get_subcommands()
                .filter(|c| !c.is_hide_set())
                .map(visible),
        );
    if let Some(about) = cmd.get_about() {
        out = out.about(about.clone());
    }
    if let Some(version) = cmd.get_version() {
        out = out.version(version.to_string());
    }
    out
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read historical logs to the end and report drift windows.
    #[command(after_help = crate::exit_code::ExitCode::help_table())]
    Replay(ReplayArgs),
    /// Follow live log files like tail -F; --once for cron.
    #[command(after_help = crate::exit_code::ExitCode::help_table())]
    Watch(WatchArgs),
    /// Publish JSONL records to NATS JetStream, on PREFIX.<model_id>.
    #[cfg(feature = "nats")]
    Publish(crate::cmd::publish::PublishArgs),
    /// Inspect and maintain the model registry.
    Registry(RegistryArgs),
    /// Write a commented starter mmon.toml (the embedded default).
    Init(InitArgs),
    /// Write a synthetic log with known drifts, and its ground truth.
    #[command(after_help = GENERATE_EXAMPLES)]
    Generate(GenerateArgs),
    /// Score monitors against known change points, beside two baselines.
    #[command(after_help = EVAL_EXAMPLES)]
    Eval(EvalArgs),
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff); with --dir, write one page per command there.
    Man {
        /// Write mmon.1, mmon-replay.1, mmon-watch.1, ... into this folder.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// Options shared by replay and watch.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Configuration file [default: $MMON_CONFIG, else ./mmon.toml, else the embedded default]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Report format [default: table on a terminal, json otherwise]
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write the report here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Append every bad record here as JSONL {file, line, offset, error, raw}.
    #[arg(long, value_name = "FILE")]
    pub rejects: Option<PathBuf>,
    /// Skip bad records (counted and reported) or stop at the first (exit 3).
    #[arg(long, value_enum, default_value = "skip")]
    pub on_bad_record: OnBadRecord,
    /// Exit 1 when a window at this level or above is found [default: the config's report.fail_on]
    #[arg(long, value_enum)]
    pub fail_on: Option<crate::config::FailOn>,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Also write a report of KIND (html, junit, markdown, github, json, jsonl, csv, table) to PATH ('-' is stdout); repeatable.
    #[arg(long = "report", value_name = "KIND=PATH")]
    pub reports: Vec<crate::report::files::ReportSpec>,
    /// Print each training argv and environment that would run; run none.
    #[arg(long)]
    pub dry_run: bool,
    /// Tests only: play a script of training outcomes instead of running the
    /// command (e.g. "ok=0.91,exit=1,timeout,empty").
    #[arg(long, hide = true, value_name = "SCRIPT")]
    pub fake_training: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Log files or quoted globs (JSONL or CSV, optionally .gz); '-' reads stdin.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
    #[arg(
        long,
        help = "Run the [retrain] command when a model drifts, and publish the result"
    )]
    pub retrain: bool,
    /// Read the files in the order given, not sorted by their first record's time.
    #[arg(long)]
    pub keep_order: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Files or globs to follow (quote globs so mmon sees new files).
    #[arg(required = true, value_name = "PATH|GLOB")]
    pub paths: Vec<String>,
    /// Keep a checkpoint here: resume where the last run stopped.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Read what is new since the checkpoint, then exit (for cron).
    #[arg(long)]
    pub once: bool,
    /// Without a checkpoint, read existing files from their start, not their end.
    #[arg(long)]
    pub from_start: bool,
    /// Poll only; no file-system events.
    #[arg(long)]
    pub poll: bool,
    /// How often to look for changes (polling is always on as a safety net).
    #[arg(long, value_name = "DURATION", default_value = "250ms", value_parser = humantime::parse_duration)]
    pub poll_interval: std::time::Duration,
    /// Start afresh when the checkpoint is corrupt, foreign or of another configuration.
    #[arg(long)]
    pub reset_state: bool,
    /// How often a running watch saves its checkpoint when anything changed.
    #[arg(long, hide = true, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub checkpoint_interval: std::time::Duration,
    /// Exit 4 after this many checkpoint writes in a row have failed (disk
    /// full, read-only folder); each failure is a warning and is retried.
    #[arg(long, value_name = "N", default_value_t = 12)]
    pub checkpoint_failures: u32,
    /// For a nats:// source: this instance's name among those sharing the stream [default: HOST-PID].
    #[arg(long, value_name = "NAME")]
    pub instance: Option<String>,
    /// For a nats:// source: how long a partition's lease lasts unrenewed (the same on every instance).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub lease_ttl: std::time::Duration,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write it ('-' for stdout).
    #[arg(default_value = "mmon.toml")]
    pub path: String,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

const GENERATE_EXAMPLES: &str = "Examples:
  mmon generate --events 300000 --out m.jsonl                 # and m.jsonl.truth.json
  mmon generate --drift-at none --seed 3 --out stationary.jsonl
  mmon generate --drift-at 0.3 --drift-models churn --drop 0.1 --recover-after 20000 --out r.jsonl
  mmon generate --canary churn:1.5.0:0.1 --malformed-rate 0.001 --format csv --out c.csv

Each event is one line: timestamp, model_id, model_version, request_id, score,
correct (0/1), accuracy (the rolling mean of correct over --acc-window events
of the same model version) and latency_ms (log-normal around the model's
median). A drift lowers the stable version's probability of a correct
prediction by --drop and multiplies its latency median by --latency-factor.
The same arguments give byte-identical files.";

/// `mmon generate`: the log's shape, its drifts and where it goes.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Number of well-formed events.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Output format [default: csv when --out ends in .csv, else jsonl]
    #[arg(long, value_enum)]
    pub format: Option<crate::generate::LogFormat>,
    /// Write the log here ('-' is stdout).
    #[arg(long, value_name = "FILE", default_value = "-")]
    pub out: String,
    /// Write the ground truth (JSON) here ('-' is stderr) [default: OUT.truth.json when --out is a file, else none]
    #[arg(long, value_name = "FILE")]
    pub truth: Option<String>,
    /// Random seed: the same seed and arguments give the same bytes.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Number of models (churn, fraud, ranker, ltv, search, reco, spam, eta, model8, ...); model k of N has weight N - k.
    #[arg(long, default_value_t = 3)]
    pub models: usize,
    /// Comma-separated fractions of the log where a drift starts, or 'none'.
    #[arg(long, value_name = "FRACTIONS", default_value = "0.5,0.8")]
    pub drift_at: String,
    /// Comma-separated model ids, one per drift or one for all [default: drift k hits model k mod --models]
    #[arg(long, value_name = "IDS")]
    pub drift_models: Option<String>,
    /// Drop of the probability of a correct prediction: one value or one per drift.
    #[arg(long, value_name = "DROPS", default_value = "0.08")]
    pub drop: String,
    /// Latency median multiplier after a drift: one value or one per drift.
    #[arg(long, value_name = "FACTORS", default_value = "1.5")]
    pub latency_factor: String,
    /// 0 for sudden drifts; W > 0 makes each change (and recovery) a linear ramp over W events.
    #[arg(long, value_name = "W", default_value_t = 0)]
    pub drift_width: u64,
    /// Events after its start at which a drift ends and the model recovers: one value or one per drift, 'none' for no recovery.
    #[arg(long, value_name = "EVENTS", default_value = "none")]
    pub recover_after: String,
    /// A canary version taking SHARE of MODEL's events from fraction FROM of the log on (repeatable); it keeps the base rates.
    #[arg(long, value_name = "MODEL:VERSION:SHARE[:FROM]")]
    pub canary: Vec<String>,
    /// Window of the logged rolling accuracy, in events of the same model version.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub acc_window: usize,
    /// Timestamp of the first event (RFC 3339).
    #[arg(long, value_name = "TIME", default_value = "2024-03-01T00:00:00.000Z")]
    pub start: String,
    /// Mean gap between events in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 100)]
    pub interval_ms: u64,
    /// Uniform jitter of the gap, +/- milliseconds (gaps stay >= 1 ms).
    #[arg(long, value_name = "MS", default_value_t = 40)]
    pub jitter_ms: u64,
    /// Probability of an extra malformed line before each event (the events stay the same).
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub malformed_rate: f64,
}

const EVAL_EXAMPLES: &str = "Examples:
  mmon generate --events 300000 --out m.jsonl
  mmon eval m.jsonl --truth m.jsonl.truth.json
  mmon eval m.jsonl --truth m.jsonl.truth.json --grid 'monitor[1].params.delta=1e-3,1e-4,1e-5'
  mmon eval prod.jsonl --truth incidents.jsonl --config a.toml --config b.toml --format markdown

A hand-written truth is JSONL, one change per line:
  {\"model_id\": \"churn\", \"metric\": \"accuracy\", \"timestamp\": \"2024-03-02T10:00:00Z\"}
  {\"model_id\": \"churn\", \"metric\": \"latency_ms\", \"line\": 51234, \"end\": 60000}
  {\"model_id\": \"fraud\", \"metric\": \"correct\", \"index\": 8000, \"before\": 0.87, \"after\": 0.79}";

/// `mmon eval`: the logs, their truth, and what to score.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Log files (JSONL or CSV, optionally .gz); '-' reads stdin.
    #[arg(required = true, value_name = "LOG")]
    pub files: Vec<String>,
    /// The known changes: the truth JSON of `mmon generate`, or JSONL of {model_id, metric, index | line | timestamp, end?}.
    #[arg(long, value_name = "TRUTH")]
    pub truth: PathBuf,
    /// A configuration to score (repeatable) [default: $MMON_CONFIG, else ./mmon.toml, else the embedded default]
    #[arg(long, value_name = "FILE")]
    pub config: Vec<PathBuf>,
    /// PATH=V1,V2,...: score each value of a configuration key (repeatable: the product of the grids).
    #[arg(long, value_name = "SPEC")]
    pub grid: Vec<String>,
    /// A detection counts for the change it follows within this many records of the stream.
    #[arg(long, value_name = "N", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_delay: u64,
    /// Output format [default: table on a terminal, json otherwise]
    #[arg(long, value_enum)]
    pub format: Option<crate::eval::Format>,
    /// Runs at a time [default: the CPUs available]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub jobs: Option<u64>,
}

/// `mmon registry ...`
#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        help = "The registry folder [default: the config's [retrain] registry, else ./registry]"
    )]
    pub registry: Option<PathBuf>,
    /// Output format
    #[arg(long, global = true, value_enum, default_value_t = RegistryFormat::Table)]
    pub format: RegistryFormat,
    #[command(subcommand)]
    pub command: RegistryCommand,
}

/// How a registry command prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RegistryFormat {
    Table,
    Json,
}

#[derive(Debug, clap::Subcommand)]
pub enum RegistryCommand {
    /// List models with their versions, LATEST and aliases
    List,
    /// Show a version's manifest (MODEL for the newest, MODEL@VERSION or MODEL@ALIAS)
    Show {
        #[arg(value_name = "MODEL[@VERSION]")]
        target: String,
    },
    /// Re-hash every file and check every pointer; exit 4 on any finding
    Verify {
        /// Only this model
        model: Option<String>,
    },
    /// Point an alias (e.g. prod) at a published version
    Promote {
        model: String,
        version: String,
        #[arg(long, value_name = "NAME")]
        alias: String,
    },
    /// Remove old versions (never LATEST or an aliased one) and clear debris
    Gc {
        /// How many of the newest versions, and of the failed trials in .failed/, to keep per model
        #[arg(long, value_name = "N")]
        keep: usize,
        /// Say what would be removed; remove nothing
        #[arg(long)]
        dry_run: bool,
        /// Only this model
        model: Option<String>,
    },
    /// Break a model's locks by removing the lock files
    Unlock {
        model: String,
        /// Required: breaking a held lock lets a second retrain run beside the first
        #[arg(long)]
        force: bool,
    },
}
