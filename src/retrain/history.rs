//! `.history/trials.jsonl`: every trial a model ever ran, for `tpe`.
//!
//! One JSON line per finished trial, appended by the retrainer; failures are
//! recorded too (with no value), since the tuner counts them as bad. A line
//! that does not parse is skipped, so a torn write costs one observation.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::durable;

/// One finished trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    pub at: DateTime<Utc>,
    pub run_id: String,
    /// The version this trial would have published.
    pub version: String,
    pub trial: u32,
    pub seed: u64,
    pub params: BTreeMap<String, Value>,
    pub ok: bool,
    /// The selected metric, when `select` is set and the trial succeeded.
    pub value: Option<f64>,
}

/// Every readable record, oldest first; a missing file has none.
pub fn read(path: &Path) -> io::Result<Vec<TrialRecord>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Appends one record, creating `.history/` if needed.
pub fn append(path: &Path, record: &TrialRecord) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    durable::append_line(
        path,
        &serde_json::to_string(record).expect("trial record serialises"),
    )
}
