//! The progress bar: bytes read and records per second, on stderr only when
//! a person is watching (stderr is a terminal and `CI` is unset).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar over `total` bytes (a spinner when unknown), or nothing.
    pub fn new(total: Option<u64>, wanted: bool) -> Progress {
        let show = wanted && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        if !show {
            return Progress { bar: None };
        }
        let bar = match total {
            Some(t) => ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr()),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
        };
        let template = if total.is_some() {
            "{bar:30} {bytes}/{total_bytes} {msg} ({eta})"
        } else {
            "{spinner} {bytes} {msg}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        Progress { bar: Some(bar) }
    }

    /// Updates the position; cheap enough to call every few thousand records.
    pub fn update(&self, bytes: u64, records: u64, elapsed_s: f64) {
        if let Some(bar) = &self.bar {
            bar.set_position(bytes);
            if elapsed_s > 0.0 {
                bar.set_message(format!("{:.0} records/s", records as f64 / elapsed_s));
            }
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
