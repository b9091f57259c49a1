//! One module per subcommand; each returns the exit code of its outcome.

pub mod eval;
pub mod generate;
pub mod init;
#[cfg(feature = "nats")]
pub mod publish;
pub mod registry;
pub mod replay;
pub mod watch;
