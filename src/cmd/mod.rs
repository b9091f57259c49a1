//! One module per subcommand; each returns the exit code of its outcome.

pub mod eval;
pub mod generate;
pub mod init;
#[cfg(feature = "nats")]
pub mod nats;
#[cfg(feature = "nats")]
pub mod publish;
pub mod registry;
pub mod replay;
pub mod watch;

/// The `nats://` forms of replay and watch, or, in a build without the
/// `nats` feature, a usage error that says so.
pub mod nats_source {
    use crate::cli::WatchArgs;
    use crate::exit_code::ExitCode;
    use crate::settings::Settings;

    #[cfg(feature = "nats")]
    pub use super::nats::replay;

    /// The one `nats://` URL among a command's inputs, if that is what
    /// they are.
    pub fn url(inputs: &[String]) -> Option<&str> {
        match inputs {
            [one] if one.starts_with("nats://") => Some(one),
            _ => None,
        }
    }

    #[cfg(feature = "nats")]
    pub fn watch(source: &str, settings: &Settings, args: &WatchArgs) -> anyhow::Result<ExitCode> {
        let instance = args.instance.clone().unwrap_or_else(|| {
            let host = crate::registry::lock::hostname().unwrap_or_else(|| "mmon".into());
            let host: String = host
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            format!("{host}-{}", std::process::id())
        });
        let follow = super::nats::Follow {
            once: args.once,
            instance,
            lease_ttl: args.lease_ttl,
            checkpoint_interval: args.checkpoint_interval,
            reset_state: args.reset_state,
        };
        super::nats::watch(source, settings, &follow)
    }

    #[cfg(not(feature = "nats"))]
    fn not_built(source: &str) -> anyhow::Error {
        crate::exit_code::Failure::new(
            ExitCode::Usage,
            anyhow::anyhow!(
                "{source}: this mmon was built without the `nats` feature (build with default features)"
            ),
        )
        .into()
    }

    #[cfg(not(feature = "nats"))]
    pub fn replay(source: &str, _: &Settings) -> anyhow::Result<ExitCode> {
        Err(not_built(source))
    }

    #[cfg(not(feature = "nats"))]
    pub fn watch(source: &str, _: &Settings, _: &WatchArgs) -> anyhow::Result<ExitCode> {
        Err(not_built(source))
    }
}
