//! The two per-model locks: `.train.lock` for a whole retrain, `.lock` for
//! the short moments that change what readers see.
//!
//! Both are OS file locks (`flock` through `File::try_lock`), so the kernel
//! frees them when the holder dies: there is no stale lock to clean up after
//! a crash. The train lock's file holds who took it (pid, host, start, run),
//! so a second process can say who it is waiting for. Lock files are never
//! deleted by normal operation: deleting a locked file lets the next process
//! lock a new inode beside the old holder. Only `registry unlock --force`
//! does that, on purpose.

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Who holds a train lock, as written into the lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub started_at: String,
    #[serde(default)]
    pub run_id: Option<String>,
}

/// This machine's host name, if it has one in UTF-8.
pub fn hostname() -> Option<String> {
    nix::unistd::gethostname().ok()?.into_string().ok()
}

impl Holder {
    /// This process, now.
    pub fn current(run_id: Option<&str>) -> Holder {
        let host = hostname().unwrap_or_else(|| "unknown-host".to_string());
        Holder {
            pid: std::process::id(),
            host,
            started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            run_id: run_id.map(str::to_string),
        }
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pid {} on {} since {}",
            self.pid, self.host, self.started_at
        )?;
        if let Some(run) = &self.run_id {
            write!(f, " (run {run})")?;
        }
        Ok(())
    }
}

/// A lock that could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{} is held by {}", path.display(), holder.as_ref().map_or("another process".to_string(), Holder::to_string))]
    Held {
        path: PathBuf,
        holder: Option<Holder>,
    },
    #[error("cannot lock {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// The held `.train.lock`; released when dropped (or by the kernel).
#[derive(Debug)]
pub struct TrainLock {
    file: File,
}

impl TrainLock {
    /// Takes the lock without waiting and records this process as holder.
    pub fn try_acquire(path: &Path, run_id: &str) -> Result<TrainLock, LockError> {
        let io_err = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut holder =
            serde_json::to_string(&Holder::current(Some(run_id))).expect("holder serialises");
        holder.push('\n');
        match crate::durable::lock_owned(path, &holder).map_err(io_err)? {
            crate::durable::Owned::Taken(file) => Ok(TrainLock { file }),
            crate::durable::Owned::Held(text) => Err(LockError::Held {
                path: path.to_path_buf(),
                holder: serde_json::from_str(text.trim()).ok(),
            }),
        }
    }
}

impl Drop for TrainLock {
    fn drop(&mut self) {
        // Clear the holder before the kernel lock goes, so a reader never sees
        // a free lock that names a holder. A failure here is harmless.
        let _ = self.file.set_len(0);
    }
}

/// What a lock file says about its lock, without changing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockState {
    /// No lock file.
    Absent,
    /// The file exists and nobody holds it.
    Free,
    /// Held, by the recorded holder if the file names one.
    Held(Option<Holder>),
}

/// Looks at a lock without keeping it.
pub fn probe(path: &Path) -> io::Result<LockState> {
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(LockState::Absent),
        Err(e) => return Err(e),
    };
    match file.try_lock() {
        Ok(()) => Ok(LockState::Free),
        Err(TryLockError::WouldBlock) => Ok(LockState::Held(read_holder(&mut file))),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

/// The held short `.lock`.
#[derive(Debug)]
pub struct ShortLock {
    _file: File,
}

impl ShortLock {
    /// How long to wait for another process's short lock. It is held for a
    /// rename or two; waiting longer means the holder is stuck.
    pub const WAIT: Duration = Duration::from_secs(10);

    /// Waits up to [`ShortLock::WAIT`] for the lock.
    pub fn acquire(path: &Path) -> Result<ShortLock, LockError> {
        let io_err = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = open(path).map_err(io_err)?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(ShortLock { _file: file }),
                Err(TryLockError::WouldBlock) if start.elapsed() < Self::WAIT => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(LockError::Held {
                        path: path.to_path_buf(),
                        holder: None,
                    });
                }
                Err(TryLockError::Error(e)) => return Err(io_err(e)),
            }
        }
    }
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_handle_sees_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".train.lock");
        let first = TrainLock::try_acquire(&path, "run-1").unwrap();
        match TrainLock::try_acquire(&path, "run-2") {
            Err(LockError::Held {
                holder: Some(h), ..
            }) => {
                assert_eq!(h.pid, std::process::id());
                assert_eq!(h.run_id.as_deref(), Some("run-1"));
            }
            other => panic!("expected Held, got {other:?}"),
        }
        assert!(matches!(probe(&path).unwrap(), LockState::Held(Some(_))));
        drop(first);
        assert_eq!(probe(&path).unwrap(), LockState::Free);
        TrainLock::try_acquire(&path, "run-3").unwrap();
    }

    #[test]
    fn probe_of_missing_lock() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(probe(&dir.path().join(".lock")).unwrap(), LockState::Absent);
    }
}
