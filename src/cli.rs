//! The command line as typed: clap derive types, nothing else.
//!
//! `config.rs` turns these plus `mmon.toml` into what the commands use.

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
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read historical logs to the end and report drift windows.
    #[command(after_help = crate::exit_code::ExitCode::help_table())]
    Replay(ReplayArgs),
    /// Follow live log files like tail -F; --once for cron.
    #[command(after_help = crate::exit_code::ExitCode::help_table())]
    Watch(WatchArgs),
    /// Inspect and maintain the model registry.
    Registry(crate::cmd::registry::RegistryArgs),
    /// Write a commented starter mmon.toml (the embedded default).
    Init(InitArgs),
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    #[command(hide = true)]
    Man,
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
    pub fail_on: Option<FailOnArg>,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Print each training argv and environment that would run; run none.
    #[arg(long)]
    pub dry_run: bool,
    /// Tests only: play a script of training outcomes instead of running the
    /// command (e.g. "ok=0.91,exit=1,timeout,empty").
    #[arg(long, hide = true, value_name = "SCRIPT")]
    pub fake_training: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOnArg {
    None,
    Warning,
    Drift,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Log files (JSONL or CSV, optionally .gz); '-' reads stdin.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
    /// Run the [retrain] command when a model drifts, and publish the result.
    #[arg(long)]
    pub retrain: bool,
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
