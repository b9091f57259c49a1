//! The `--state` checkpoint of `watch`: how far each file was read and the
//! whole pipeline state, so a later run continues as if it never stopped
//! (SPEC §6).
//!
//! On disk it is one JSON document `{"schema", "sha256", "body"}` whose
//! checksum covers the body's canonical text (sorted keys), so a torn or
//! edited file is refused instead of silently restarting. It is replaced
//! atomically: temp file, fsync, the old one hard-linked to `FILE.prev`,
//! rename, fsync of the folder; at every instant `FILE` is a complete old or
//! new version. A run holds an OS lock on `FILE.lock` for its whole life; the
//! kernel frees it if the process dies, so a stale lock never needs cleaning.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::durable::{self, AtomicFile};
use crate::pipeline::{self, RestoreError};

/// The format name and version written into every checkpoint.
///
/// 2: the pipeline state inside is typed ([`pipeline::State`], format
/// [`pipeline::STATE_FORMAT`] 3, detector states tagged by name).
pub const SCHEMA: &str = "mmon.checkpoint/2";

/// What can be wrong with a checkpoint: exit code 5, except that one that
/// cannot be written ([`CheckpointError::Write`], [`CheckpointError::Io`])
/// is an output error, exit code 4.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: checkpoint is locked by another mmon run (pid {pid})")]
    Locked { path: String, pid: String },
    #[error("{path}: not an mmon checkpoint ({reason}); fix or remove it, or pass --reset-state")]
    Corrupt { path: String, reason: String },
    #[error(
        "{path}: checkpoint format {found:?} is not supported (expected {SCHEMA:?}); pass --reset-state to start over"
    )]
    Version { path: String, found: String },
    /// The envelope is current but the pipeline state inside is of another
    /// [`pipeline::STATE_FORMAT`]; the message says to pass `--reset-state`.
    #[error("{path}: {error}")]
    State { path: String, error: RestoreError },
    #[error(
        "{path}: checkpoint was written with a different configuration (monitors or input changed); pass --reset-state to start over"
    )]
    Config { path: String },
    /// The OS error is part of the message, not a `source`, so `{:#}`
    /// prints it once.
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("cannot write checkpoint {path}: {error}")]
    Write { path: String, error: std::io::Error },
}

impl CheckpointError {
    /// Whether this is an output that could not be written (exit 4), not a
    /// checkpoint that cannot be used (exit 5).
    pub fn is_io(&self) -> bool {
        matches!(
            self,
            CheckpointError::Io { .. } | CheckpointError::Write { .. }
        )
    }
}

/// Where one followed file was, as the checkpoint records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileState {
    /// The name records are reported under (the name when first opened).
    pub name: String,
    /// The path it was last seen at (it may have been renamed since).
    pub path: String,
    pub dev: u64,
    pub ino: u64,
    /// Length and sha256 of the first bytes (up to 4 KiB) of the content.
    pub head_len: u64,
    pub head_sha256: String,
    /// Just past the last whole line processed (decompressed stream for .gz).
    pub offset: u64,
    /// The 1-based number of the line at `offset`.
    pub line: u64,
    /// Length and sha256 of the bytes just before `offset` (up to 4 KiB).
    pub guard_len: u64,
    pub guard_sha256: String,
    /// The file's size when the checkpoint was written: if the file is gone
    /// by the next run, the bytes past `offset` are reported as lost.
    #[serde(default)]
    pub size: u64,
}

/// The checkpoint's body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Body {
    /// A fingerprint of the configuration that shapes the pipeline.
    pub config: String,
    pub files: Vec<FileState>,
    /// Checked against the configuration by [`pipeline::Pipeline::restore`].
    pub pipeline: pipeline::State,
    /// The training outcomes of windows still open, by window id: the
    /// `closed` event of a later run carries them.
    #[serde(default)]
    pub retrains: std::collections::BTreeMap<u64, crate::retrain::RetrainNote>,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    schema: String,
    sha256: String,
    body: serde_json::Value,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fingerprint of whatever in the configuration decides what a saved
/// pipeline means: input fields, monitors and report settings.
pub fn fingerprint(config: &crate::config::Config) -> String {
    let text = format!(
        "{:?}|{:?}|{:?}",
        config.input, config.monitors, config.report
    );
    sha256_hex(text.as_bytes())
}

/// The checkpoint file of a run, locked for the run's life.
#[derive(Debug)]
pub struct Checkpoint {
    path: PathBuf,
    _lock: File,
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |error| CheckpointError::Io {
        path: path.display().to_string(),
        error,
    }
}

/// Whether `name` is `{base}.tmp.<pid>` or `{base}.prev.tmp.<pid>`: a temp
/// file of a save.
fn is_temp_of(name: &str, base: &str) -> bool {
    let Some(rest) = name.strip_prefix(base) else {
        return false;
    };
    let pid = rest
        .strip_prefix(".tmp.")
        .or_else(|| rest.strip_prefix(".prev.tmp."));
    pid.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

impl Checkpoint {
    /// Takes the run's lock on `path`; fails with [`CheckpointError::Locked`]
    /// naming the holder's pid when another run has it.
    pub fn lock(path: &Path) -> Result<Checkpoint, CheckpointError> {
        let lock_path = sibling(path, ".lock");
        let pid = std::process::id().to_string();
        let lock = match durable::lock_owned(&lock_path, &pid).map_err(io_err(&lock_path))? {
            durable::Owned::Taken(file) => file,
            durable::Owned::Held(holder) => {
                let pid = holder.trim();
                return Err(CheckpointError::Locked {
                    path: path.display().to_string(),
                    pid: if pid.is_empty() { "unknown" } else { pid }.to_string(),
                });
            }
        };
        let c = Checkpoint {
            path: path.to_path_buf(),
            _lock: lock,
        };
        c.remove_stale_temps();
        Ok(c)
    }

    /// Removes temp files of saves by runs that were killed (`FILE.tmp.<pid>`);
    /// holding the lock, no other run can be writing one.
    fn remove_stale_temps(&self) {
        let base = self.path.file_name().unwrap_or_default().to_string_lossy();
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        let mine = std::process::id().to_string();
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if !is_temp_of(&name, &base) || name.ends_with(&format!(".{mine}")) {
                continue;
            }
            if e.file_type().is_ok_and(|t| t.is_file()) && fs::remove_file(e.path()).is_ok() {
                log::info!("removed {}, left by an interrupted run", e.path().display());
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved body, `None` if there is no checkpoint yet.
    pub fn load(&self) -> Result<Option<Body>, CheckpointError> {
        let name = self.path.display().to_string();
        let text = match fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&self.path)(e)),
        };
        decode(&text).map(Some).map_err(|e| match e {
            Decode::Corrupt(reason) => CheckpointError::Corrupt { path: name, reason },
            Decode::Version(found) => CheckpointError::Version { path: name, found },
            Decode::State(error) => CheckpointError::State { path: name, error },
        })
    }

    /// Replaces the checkpoint atomically, keeping the previous one as `.prev`.
    ///
    /// Any failure is [`CheckpointError::Write`] naming the checkpoint (the
    /// previous one stays valid) and leaves no temp file behind.
    pub fn save(&self, body: &Body) -> Result<(), CheckpointError> {
        let text = encode(body);
        let write = || -> std::io::Result<()> {
            let mut f = AtomicFile::create(&self.path)?;
            f.write_all(text.as_bytes())?;
            f.commit_with(|path| {
                if path.exists() {
                    // A hard link keeps FILE in place while .prev is replaced.
                    let prev = sibling(path, ".prev");
                    let prev_tmp = sibling(path, &format!(".prev.tmp.{}", std::process::id()));
                    let _ = fs::remove_file(&prev_tmp);
                    if fs::hard_link(path, &prev_tmp).is_ok() {
                        fs::rename(&prev_tmp, &prev)?;
                    }
                }
                Ok(())
            })
        };
        write().map_err(|error| CheckpointError::Write {
            path: self.path.display().to_string(),
            error,
        })
    }
}

enum Decode {
    Corrupt(String),
    Version(String),
    State(RestoreError),
}

fn encode(body: &Body) -> String {
    let body = serde_json::to_value(body).unwrap_or(serde_json::Value::Null);
    let canonical = body.to_string();
    let envelope = serde_json::json!({
        "schema": SCHEMA,
        "sha256": sha256_hex(canonical.as_bytes()),
        "body": body,
    });
    let mut text = envelope.to_string();
    text.push('\n');
    text
}

fn decode(text: &[u8]) -> Result<Body, Decode> {
    let value: serde_json::Value =
        serde_json::from_slice(text).map_err(|e| Decode::Corrupt(format!("not JSON: {e}")))?;
    let schema = value
        .get("schema")
        .and_then(|s| s.as_str())
        .ok_or_else(|| Decode::Corrupt("no \"schema\" field".into()))?;
    if schema != SCHEMA {
        if schema.starts_with("mmon.checkpoint/") {
            return Err(Decode::Version(schema.to_string()));
        }
        return Err(Decode::Corrupt(format!("schema {schema:?}")));
    }
    let envelope: Envelope =
        serde_json::from_value(value).map_err(|e| Decode::Corrupt(format!("bad envelope: {e}")))?;
    if sha256_hex(envelope.body.to_string().as_bytes()) != envelope.sha256 {
        return Err(Decode::Corrupt("checksum mismatch".into()));
    }
    let state = envelope
        .body
        .get("pipeline")
        .ok_or_else(|| Decode::Corrupt("no \"pipeline\" in the body".into()))?;
    pipeline::State::check_format(state).map_err(Decode::State)?;
    serde_json::from_value(envelope.body).map_err(|e| Decode::Corrupt(format!("bad body: {e}")))
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::pipeline::Pipeline;
    use crate::record::{Position, Record, Values};

    /// A pipeline state holding floats that need every digit (0.1, 1e-300),
    /// so the checksum is computed over text that parses back the same.
    fn state() -> pipeline::State {
        let config = crate::config::Config::parse(
            "[[monitor]]\nmetric = \"accuracy\"\ndetector = \"decay\"\nparams = { window = 5, threshold = 0.1 }\n",
            "t.toml",
        )
        .unwrap();
        let mut p = Pipeline::new(&config);
        let mut events = Vec::new();
        for (i, x) in [1.5, 0.1, 1e-300, 0.7].into_iter().enumerate() {
            let mut values = Values::new();
            values.push(x);
            let r = Record {
                time_ns: i as i64,
                model_id: Some(crate::record::Name::new("m")),
                version: None,
                values,
                pos: Position {
                    file: crate::record::Name::new("app.jsonl"),
                    line: i as u64 + 1,
                    offset: i as u64 * 10,
                },
            };
            p.process(&r, &mut events);
        }
        p.save()
    }

    /// A body as its JSON, to compare (detector states hold floats).
    fn json(body: Option<Body>) -> serde_json::Value {
        serde_json::to_value(body).unwrap()
    }

    fn body() -> Body {
        Body {
            config: "abc".into(),
            files: vec![FileState {
                name: "app.jsonl".into(),
                path: "app.jsonl".into(),
                dev: 1,
                ino: 2,
                head_len: 10,
                head_sha256: sha256_hex(b"0123456789"),
                offset: 10,
                line: 3,
                guard_len: 10,
                guard_sha256: sha256_hex(b"0123456789"),
                size: 12,
            }],
            pipeline: state(),
            retrains: Default::default(),
        }
    }

    #[test]
    fn round_trips_and_keeps_the_previous_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let c = Checkpoint::lock(&path).unwrap();
        assert!(c.load().unwrap().is_none());
        let mut b = body();
        c.save(&b).unwrap();
        assert_eq!(json(c.load().unwrap()), json(Some(b.clone())));
        assert!(json(Some(b.clone())).to_string().contains("1e-300"));
        b.files[0].offset = 20;
        c.save(&b).unwrap();
        assert_eq!(json(c.load().unwrap()), json(Some(b)));
        let prev = decode(&fs::read(dir.path().join("state.json.prev")).unwrap()).ok();
        assert_eq!(prev.map(|p| p.files[0].offset), Some(10));
    }

    #[test]
    fn garbage_a_wrong_checksum_and_an_unknown_version_are_refused() {
        assert!(matches!(decode(b"\x00garbage"), Err(Decode::Corrupt(_))));
        let good = encode(&body());
        let tampered = good.replace("\"offset\":10", "\"offset\":11");
        assert_ne!(good, tampered);
        assert!(matches!(
            decode(tampered.as_bytes()),
            Err(Decode::Corrupt(r)) if r.contains("checksum")
        ));
        let future = good.replace(SCHEMA, "mmon.checkpoint/9");
        assert!(matches!(decode(future.as_bytes()), Err(Decode::Version(_))));
        let old = good.replace(SCHEMA, "mmon.checkpoint/1");
        assert!(matches!(decode(old.as_bytes()), Err(Decode::Version(_))));
        let foreign = br#"{"schema": "other/1"}"#;
        assert!(matches!(decode(foreign), Err(Decode::Corrupt(_))));
        assert!(matches!(
            decode(&good.as_bytes()[..good.len() / 2]),
            Err(Decode::Corrupt(_))
        ));
    }

    #[test]
    fn temp_files_of_killed_runs_are_recognised_and_removed() {
        assert!(is_temp_of("state.json.tmp.123", "state.json"));
        assert!(is_temp_of("state.json.prev.tmp.9", "state.json"));
        assert!(!is_temp_of("state.json.tmp.", "state.json"));
        assert!(!is_temp_of("state.json.tmp.x1", "state.json"));
        assert!(!is_temp_of("other.json.tmp.1", "state.json"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(dir.path().join("state.json.tmp.77"), "torn").unwrap();
        fs::write(dir.path().join("state.json.tmp.keep"), "mine").unwrap();
        let _c = Checkpoint::lock(&path).unwrap();
        assert!(!dir.path().join("state.json.tmp.77").exists());
        assert!(dir.path().join("state.json.tmp.keep").exists());
    }

    #[test]
    fn a_failed_save_names_the_checkpoint_and_its_error_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let c = Checkpoint::lock(&path).unwrap();
        let tmp = dir
            .path()
            .join(format!("state.json.tmp.{}", std::process::id()));
        fs::create_dir(&tmp).unwrap();
        let e = c.save(&body()).unwrap_err();
        assert!(e.is_io());
        let text = format!("{:#}", anyhow::Error::new(e));
        assert!(text.starts_with("cannot write checkpoint "), "{text}");
        assert_eq!(text.matches("os error").count(), 1, "{text}");
    }

    #[test]
    fn a_second_lock_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let _held = Checkpoint::lock(&path).unwrap();
        match Checkpoint::lock(&path) {
            Err(CheckpointError::Locked { pid, .. }) => {
                assert_eq!(pid, std::process::id().to_string())
            }
            other => panic!("expected Locked, got {other:?}"),
        }
    }
}
