//! mmon: ML model monitoring from metric logs.
//!
//! Sources turn log files into records, the pipeline routes every record to
//! the detectors of its streams, windows turn detections into drift windows,
//! and reporters render them. `cmd` holds one module per subcommand.

pub mod checkpoint;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod detect;
pub mod durable;
pub mod episode;
pub mod eval;
pub mod exit_code;
pub mod generate;
pub mod output;
pub mod pipeline;
pub mod progress;
pub mod record;
pub mod registry;
pub mod rejects;
pub mod report;
pub mod retrain;
pub mod session;
pub mod settings;
pub mod signals;
pub mod source;
pub mod timestamp;
pub mod trigger;
pub mod watch;
pub mod window;
