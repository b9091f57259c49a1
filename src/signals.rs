//! SIGINT and SIGTERM as flags a run polls (SPEC §6): the handler only sets
//! them; the run stops reading after the record in hand, lets a running
//! training command end (the same flag cancels it), writes what it owes and
//! exits 130 or 143.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;

use crate::exit_code::ExitCode;

/// The SIGINT and SIGTERM flags, and one for either (which also cancels a
/// running training command).
pub struct Signals {
    int: Arc<AtomicBool>,
    term: Arc<AtomicBool>,
    any: Arc<AtomicBool>,
}

impl Signals {
    /// Installs the handlers; from now on the signals no longer kill mmon.
    pub fn register() -> anyhow::Result<Signals> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let s = Signals {
            int: Arc::new(AtomicBool::new(false)),
            term: Arc::new(AtomicBool::new(false)),
            any: Arc::new(AtomicBool::new(false)),
        };
        for (sig, flag) in [(SIGINT, &s.int), (SIGTERM, &s.term)] {
            signal_hook::flag::register(sig, flag.clone())
                .and_then(|_| signal_hook::flag::register(sig, s.any.clone()))
                .context("cannot install signal handlers")?;
        }
        Ok(s)
    }

    /// Whether either signal has arrived.
    pub fn caught(&self) -> bool {
        self.any.load(Ordering::Relaxed)
    }

    /// The flag set by either signal, for the training runner to watch.
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.any.clone()
    }

    /// The signal's name, if one arrived (SIGTERM wins over SIGINT).
    pub fn name(&self) -> Option<&'static str> {
        match self.exit_code()? {
            ExitCode::Terminated => Some("SIGTERM"),
            _ => Some("SIGINT"),
        }
    }

    /// 143 after SIGTERM, 130 after SIGINT, `None` without a signal.
    pub fn exit_code(&self) -> Option<ExitCode> {
        if self.term.load(Ordering::Relaxed) {
            Some(ExitCode::Terminated)
        } else if self.int.load(Ordering::Relaxed) {
            Some(ExitCode::Interrupted)
        } else {
            None
        }
    }
}
