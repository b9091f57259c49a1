//! The resolved settings of a run: `mmon.toml` (or the embedded default)
//! with the command line on top, decided once before any input is read.
//!
//! Every choice that a flag and the configuration both make (`--fail-on`
//! over `report.fail_on`, `--format` over "a table for a terminal, JSON for
//! a program"), and every conflict between flags (two reports on stdout),
//! is settled here, so the run core and the sinks only read the outcome.

use std::path::{Path, PathBuf};

use crate::cli::RunArgs;
use crate::config::{Config, FailOn};
use crate::exit_code::{ExitCode, Failure};
use crate::output::Output;
use crate::rejects::OnBadRecord;
use crate::report::{self, files::ReportSpec};
use crate::trigger::TriggerOptions;

/// What a run does, flags and configuration merged.
#[derive(Debug)]
pub struct Settings {
    pub config: Config,
    /// The main report's format.
    pub format: report::Format,
    /// Where the main report goes; `None` is stdout.
    pub output: Option<PathBuf>,
    /// Which windows make the run exit 1 (and the HTML, markdown and
    /// GitHub reports say "failed").
    pub fail_on: FailOn,
    /// Which windows fail a JUnit test case: `--fail-on` when given, else
    /// drift (a CI gate on warnings is asked for on the command line).
    pub junit_fail_on: FailOn,
    pub reports: Vec<ReportSpec>,
    pub rejects: Option<PathBuf>,
    pub on_bad_record: OnBadRecord,
    /// Whether drift windows start training runs.
    pub retrain: bool,
    pub trigger: TriggerOptions,
    pub progress: bool,
    pub quiet: bool,
}

/// When a run retrains.
#[derive(Debug, Clone, Copy)]
pub enum Retrain {
    /// As the command line says (`replay --retrain`).
    Flag(bool),
    /// Whenever the configuration has a `[retrain]` section (`watch`).
    Configured,
}

impl Settings {
    /// Loads the configuration and resolves the flags of `run` on top of it;
    /// any problem is a usage error (exit 2).
    pub fn resolve(run: &RunArgs, quiet: bool, retrain: Retrain) -> anyhow::Result<Settings> {
        let config = Config::load(run.config.as_deref())
            .map_err(|e| anyhow::Error::from(Failure::new(ExitCode::Usage, e)))?;
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
        Settings::with_config(run, quiet, retrain, config, terminal)
    }

    /// [`Settings::resolve`] for a loaded `config`; `terminal` is whether
    /// stdout is one.
    pub fn with_config(
        run: &RunArgs,
        quiet: bool,
        retrain: Retrain,
        config: Config,
        terminal: bool,
    ) -> anyhow::Result<Settings> {
        let on_stdout = run.reports.iter().filter(|s| s.path == "-").count()
            + usize::from(run.output.is_none());
        if !run.reports.is_empty() && on_stdout > 1 {
            return Err(Failure::new(
                ExitCode::Usage,
                anyhow::anyhow!(
                    "--report KIND=- and the main report would both write to stdout: give --output FILE, or write the report to a file"
                ),
            )
            .into());
        }
        let format = run.format.unwrap_or(if run.output.is_none() && terminal {
            report::Format::Table
        } else {
            report::Format::Json
        });
        let retrain = run.dry_run
            || match retrain {
                Retrain::Flag(on) => on,
                Retrain::Configured => config.retrain.is_some(),
            };
        Ok(Settings {
            format,
            output: run.output.clone(),
            fail_on: run.fail_on.unwrap_or(config.report.fail_on),
            junit_fail_on: run.fail_on.unwrap_or(FailOn::Drift),
            reports: run.reports.clone(),
            rejects: run.rejects.clone(),
            on_bad_record: run.on_bad_record,
            retrain,
            trigger: TriggerOptions {
                dry_run: run.dry_run,
                fake: run.fake_training.clone(),
                cancel: None,
            },
            progress: !run.no_progress && !quiet,
            quiet,
            config,
        })
    }

    /// The files the run writes besides a checkpoint, with their flags.
    pub fn outputs(&self) -> Vec<Output<'_>> {
        let mut out = Vec::new();
        if let Some(path) = &self.output {
            out.push(Output {
                flag: "--output",
                path: path.as_path(),
            });
        }
        if let Some(path) = &self.rejects {
            out.push(Output {
                flag: "--rejects",
                path: path.as_path(),
            });
        }
        for spec in self.reports.iter().filter(|s| s.path != "-") {
            out.push(Output {
                flag: "--report",
                path: Path::new(&spec.path),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        run: RunArgs,
    }

    fn settings(flags: &[&str], toml: &str, terminal: bool) -> anyhow::Result<Settings> {
        let args = Args::try_parse_from(std::iter::once("mmon").chain(flags.iter().copied()))?;
        let text = format!("{toml}{MONITOR}");
        let config = Config::parse(&text, "mmon.toml").expect("test config is valid");
        Settings::with_config(&args.run, false, Retrain::Flag(false), config, terminal)
    }

    const FAIL_ON_WARNING: &str = "[report]\nfail_on = \"warning\"\n";
    const MONITOR: &str = "[[monitor]]\nmetric = \"accuracy\"\ndetector = \"adwin\"\n";

    #[test]
    fn fail_on_flag_wins_over_the_config_and_junit_defaults_to_drift() {
        let s = settings(&[], FAIL_ON_WARNING, false).unwrap();
        assert_eq!(
            (s.fail_on, s.junit_fail_on),
            (FailOn::Warning, FailOn::Drift)
        );
        let s = settings(&["--fail-on", "none"], FAIL_ON_WARNING, false).unwrap();
        assert_eq!((s.fail_on, s.junit_fail_on), (FailOn::None, FailOn::None));
    }

    #[test]
    fn format_is_a_table_for_a_terminal_and_json_for_a_program_or_a_file() {
        assert_eq!(
            settings(&[], "", true).unwrap().format,
            report::Format::Table
        );
        assert_eq!(
            settings(&[], "", false).unwrap().format,
            report::Format::Json
        );
        let to_file = settings(&["--output", "r.json"], "", true).unwrap();
        assert_eq!(to_file.format, report::Format::Json);
        let given = settings(&["--format", "csv"], "", true).unwrap();
        assert_eq!(given.format, report::Format::Csv);
    }

    #[test]
    fn two_reports_on_stdout_are_a_usage_error() {
        let e = settings(&["--report", "markdown=-"], "", false).unwrap_err();
        assert_eq!(crate::exit_code::code_of(&e), ExitCode::Usage);
        assert!(e.to_string().contains("--report KIND=-"), "{e}");
        let ok = settings(&["--report", "markdown=-", "--output", "r.json"], "", false);
        assert!(ok.is_ok());
    }

    #[test]
    fn dry_run_retrains_whatever_the_command_says() {
        let args = Args::try_parse_from(["mmon", "--dry-run"]).unwrap();
        let config = Config::parse(MONITOR, "mmon.toml").unwrap();
        let s = Settings::with_config(&args.run, false, Retrain::Flag(false), config, false);
        assert!(s.unwrap().retrain);
    }
}
