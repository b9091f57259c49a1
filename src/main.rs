//! The `mmon` binary: parse the command line, run the command, and turn its
//! outcome into the process exit code in one place.

use std::io::Write;

use clap::{CommandFactory, Parser};
use mmon::cli::{Cli, Command};
use mmon::exit_code::{self, ExitCode};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let outcome = match &cli.command {
        Command::Replay(args) => mmon::cmd::replay::run(args, cli.quiet),
        Command::Watch(args) => mmon::cmd::watch::run(args, cli.quiet),
        Command::Init(args) => mmon::cmd::init::run(args),
        Command::Generate(args) => mmon::cmd::generate::run(args),
        Command::Eval(args) => mmon::cmd::eval::run(args),
        Command::Registry(args) => mmon::cmd::registry::run_with_config(args),
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "mmon", &mut std::io::stdout());
            Ok(ExitCode::Success)
        }
        Command::Man => clap_mangen::Man::new(Cli::command())
            .render(&mut std::io::stdout())
            .map(|()| ExitCode::Success)
            .map_err(Into::into),
    };
    let code = match outcome {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::Success,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "mmon: {err:#}");
            exit_code::code_of(&err)
        }
    };
    code.into()
}

/// Whether the error is a closed stdout (e.g. `mmon replay ... | head`).
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || e.downcast_ref::<serde_json::Error>()
                .and_then(|j| j.io_error_kind())
                .is_some_and(|k| k == std::io::ErrorKind::BrokenPipe)
    })
}

fn init_logging(cli: &Cli) {
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_target(false)
        .format_timestamp(None)
        .init();
}
