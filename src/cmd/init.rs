//! `mmon init`: write the commented starter configuration.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::cli::InitArgs;
use crate::config::DEFAULT_TOML;
use crate::exit_code::{ExitCode, Failure};

pub fn run(args: &InitArgs) -> anyhow::Result<ExitCode> {
    if args.path == "-" {
        std::io::stdout().write_all(DEFAULT_TOML.as_bytes())?;
        return Ok(ExitCode::Success);
    }
    let path = Path::new(&args.path);
    let mut options = std::fs::File::options();
    options.write(true);
    if args.force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = match options.open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Failure::new(
                ExitCode::Usage,
                anyhow::anyhow!(
                    "{} already exists; use --force to overwrite it",
                    path.display()
                ),
            )
            .into());
        }
        other => other.with_context(|| format!("cannot create {}", path.display()))?,
    };
    file.write_all(DEFAULT_TOML.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(ExitCode::Success)
}
