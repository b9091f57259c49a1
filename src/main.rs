//! The `mmon` binary: parse the command line, run the command, and turn its
//! outcome into the process exit code in one place.

use std::io::Write;

use clap::{CommandFactory, FromArgMatches};
use mmon::cli::{Cli, Color, Command};
use mmon::exit_code::{self, ExitCode};

fn main() -> std::process::ExitCode {
    let no_color = std::env::var_os("NO_COLOR");
    let color = Color::from_args(std::env::args_os()).resolve(no_color.as_deref());
    let cli = Cli::command()
        .color(match color {
            Color::Auto => clap::ColorChoice::Auto,
            Color::Always => clap::ColorChoice::Always,
            Color::Never => clap::ColorChoice::Never,
        })
        .get_matches();
    let cli = Cli::from_arg_matches(&cli).unwrap_or_else(|e| e.exit());
    init_logging(&cli, cli.color.resolve(no_color.as_deref()));
    let outcome = match &cli.command {
        Command::Replay(args) => mmon::cmd::replay::run(args, cli.quiet),
        Command::Watch(args) => mmon::cmd::watch::run(args, cli.quiet),
        #[cfg(feature = "nats")]
        Command::Publish(args) => mmon::cmd::publish::run(args, cli.quiet),
        Command::Init(args) => mmon::cmd::init::run(args),
        Command::Generate(args) => mmon::cmd::generate::run(args),
        Command::Eval(args) => mmon::cmd::eval::run(args),
        Command::Registry(args) => mmon::cmd::registry::run_with_config(args),
        Command::Completions { shell } => {
            let mut cmd = mmon::cli::documented();
            clap_complete::generate(*shell, &mut cmd, "mmon", &mut std::io::stdout());
            Ok(ExitCode::Success)
        }
        Command::Man { dir } => man(dir.as_deref()),
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

/// The top man page on stdout, or every command's page written to `dir`
/// (clap_mangen leaves hidden arguments and commands out of both).
fn man(dir: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    use mmon::exit_code::Failure;
    // Without a `help` command, no page names a `mmon-help(1)` that is not written.
    let cmd = Cli::command().disable_help_subcommand(true);
    match dir {
        None => clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?,
        Some(dir) => {
            let written = std::fs::create_dir_all(dir)
                .and_then(|()| clap_mangen::generate_to(cmd, dir))
                .with_context(|| format!("cannot write man pages to {}", dir.display()));
            written.map_err(|e| Failure::new(ExitCode::Training, e))?;
        }
    }
    Ok(ExitCode::Success)
}

fn init_logging(cli: &Cli, color: Color) {
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
        .write_style(match color {
            Color::Auto => env_logger::WriteStyle::Auto,
            Color::Always => env_logger::WriteStyle::Always,
            Color::Never => env_logger::WriteStyle::Never,
        })
        .init();
}
