//! mmon: ML model monitoring from metric logs.
//!
//! Sources turn log files into records, the pipeline routes every record to
//! the detectors of its streams, windows turn detections into drift windows,
//! and reporters render them. `cmd` holds one module per subcommand.

pub mod cmd;
pub mod detect;
pub mod exit_code;
pub mod registry;
pub mod retrain;
