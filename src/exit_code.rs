//! The process exit codes of SPEC §1, the same for every command.
//!
//! Commands return an [`ExitCode`] or an error that carries one
//! ([`Failure`]); `main` turns it into the process status in one place.

use std::fmt;

/// One of the documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExitCode {
    /// Ran to the end; no window at the `--fail-on` level.
    Success,
    /// A window at or above the `--fail-on` level was found.
    WindowFound,
    /// Usage or configuration error; nothing was read or written.
    Usage,
    /// A file missing or unreadable, or a bad record under `--on-bad-record fail`.
    Input,
    /// A training run failed or timed out, the registry failed `verify`, or
    /// an output (report, rejects file, registry, checkpoint) could not be
    /// written: a missing or read-only folder, a full disk. One rule for
    /// every output; a mistake found before any I/O is [`ExitCode::Usage`].
    Training,
    /// Checkpoint corrupt, of an unknown version, or locked by another run.
    Checkpoint,
    /// Interrupted by SIGINT after a clean shutdown.
    Interrupted,
    /// Terminated by SIGTERM after a clean shutdown.
    Terminated,
    /// A panic: always a bug.
    Panic,
}

impl ExitCode {
    pub const ALL: [ExitCode; 9] = [
        ExitCode::Success,
        ExitCode::WindowFound,
        ExitCode::Usage,
        ExitCode::Input,
        ExitCode::Training,
        ExitCode::Checkpoint,
        ExitCode::Interrupted,
        ExitCode::Terminated,
        ExitCode::Panic,
    ];

    pub fn code(self) -> i32 {
        match self {
            ExitCode::Success => 0,
            ExitCode::WindowFound => 1,
            ExitCode::Usage => 2,
            ExitCode::Input => 3,
            ExitCode::Training => 4,
            ExitCode::Checkpoint => 5,
            ExitCode::Interrupted => 130,
            ExitCode::Terminated => 143,
            ExitCode::Panic => 101,
        }
    }

    pub fn meaning(self) -> &'static str {
        match self {
            ExitCode::Success => "ran to the end; no window at the --fail-on level",
            ExitCode::WindowFound => "a window at or above the --fail-on level was found",
            ExitCode::Usage => "usage or configuration error (nothing was read or written)",
            ExitCode::Input => {
                "input error: a file missing or unreadable, or a bad record under --on-bad-record fail"
            }
            ExitCode::Training => {
                "a training run failed or timed out, the registry failed verify, or an output (report, rejects, registry, checkpoint) could not be written"
            }
            ExitCode::Checkpoint => {
                "checkpoint corrupt, of an unknown format version, or locked by another run"
            }
            ExitCode::Interrupted => "interrupted by SIGINT, after a clean shutdown",
            ExitCode::Terminated => "interrupted by SIGTERM, after a clean shutdown",
            ExitCode::Panic => "a panic: always a bug",
        }
    }

    /// The more severe of two outcomes, for commands that collect several:
    /// an error code beats a found window, which beats success.
    pub fn worst(self, other: ExitCode) -> ExitCode {
        self.max(other)
    }

    /// The table printed at the end of `--help`.
    pub fn help_table() -> String {
        let mut s = String::from("Exit codes:\n");
        for c in ExitCode::ALL {
            s.push_str(&format!("  {:>3}  {}\n", c.code(), c.meaning()));
        }
        s
    }
}

impl fmt::Display for ExitCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(c: ExitCode) -> std::process::ExitCode {
        std::process::ExitCode::from(c.code() as u8)
    }
}

/// An error that decides the exit code; anything else in the chain is context.
///
/// Commands wrap their errors in a `Failure` where the code is not the
/// default for errors (3, input), e.g. `Failure::new(ExitCode::Usage, e)`.
///
/// The wrapped error is rendered whole (with its causes) by `Display` and is
/// deliberately not exposed as `source()`, so `{:#}` prints it once.
#[derive(Debug, thiserror::Error)]
#[error("{error:#}")]
pub struct Failure {
    pub code: ExitCode,
    pub error: anyhow::Error,
}

impl Failure {
    pub fn new(code: ExitCode, error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code,
            error: error.into(),
        }
    }

    /// An output that could not be written: exit 4, whatever the output.
    pub fn output(error: impl Into<anyhow::Error>) -> Failure {
        Failure::new(ExitCode::Training, error)
    }
}

/// The exit code for an error that reached `main`: the code of the first
/// [`Failure`] in its chain, else 3 (an input error).
pub fn code_of(err: &anyhow::Error) -> ExitCode {
    err.chain()
        .find_map(|e| e.downcast_ref::<Failure>().map(|f| f.code))
        .unwrap_or(ExitCode::Input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_numbers() {
        let codes: Vec<i32> = ExitCode::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(codes, vec![0, 1, 2, 3, 4, 5, 130, 143, 101]);
    }

    #[test]
    fn worst_prefers_errors_over_windows_over_success() {
        assert_eq!(
            ExitCode::Success.worst(ExitCode::WindowFound),
            ExitCode::WindowFound
        );
        assert_eq!(
            ExitCode::WindowFound.worst(ExitCode::Training),
            ExitCode::Training
        );
        assert_eq!(
            ExitCode::Training.worst(ExitCode::Success),
            ExitCode::Training
        );
    }

    #[test]
    fn failure_code_is_found_through_context() {
        let err = anyhow::Error::new(Failure::new(ExitCode::Usage, anyhow::anyhow!("bad key")))
            .context("loading mmon.toml");
        assert_eq!(code_of(&err), ExitCode::Usage);
        assert_eq!(code_of(&anyhow::anyhow!("no such file")), ExitCode::Input);
        assert_eq!(format!("{err:#}"), "loading mmon.toml: bad key");
    }

    #[test]
    fn help_lists_every_code() {
        let help = ExitCode::help_table();
        for c in ExitCode::ALL {
            assert!(help.contains(c.meaning()));
        }
    }
}
