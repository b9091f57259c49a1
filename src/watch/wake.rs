//! Waking the follower: file-system events when they work, a timer always.
//!
//! Events from `notify` on the parent directories only say "look again";
//! the follower decides everything from `stat`. The timer (the poll
//! interval) runs in every mode, so a lost event, a queue overflow, or a file
//! system without events costs at most one interval, never data.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};

pub struct Wake {
    interval: Duration,
    watcher: Option<(notify::RecommendedWatcher, Receiver<()>)>,
    /// Watched directories and the (dev, inode) they had, so a directory
    /// that is removed and created again gets a fresh watch.
    watched: HashMap<PathBuf, (u64, u64)>,
    /// `MMON_MAX_WATCHES`: at most this many directories get a kernel watch
    /// (beyond it, as when the kernel's own limit is reached: polling).
    max_watches: usize,
}

impl Wake {
    /// Polling only when `events` is false or no watcher can be made.
    pub fn new(interval: Duration, events: bool) -> Wake {
        let watcher = if events {
            let (tx, rx) = channel();
            let handler = move |res: notify::Result<notify::Event>| {
                match &res {
                    Ok(ev) if ev.need_rescan() => {
                        log::warn!("file-system events were lost (queue overflow); rescanning")
                    }
                    Err(e) => log::warn!("file-system events failed ({e}); polling covers it"),
                    // mmon's own reads of files and of the directory are
                    // access events; waking on them would spin.
                    Ok(ev) if matches!(ev.kind, EventKind::Access(a) if a != AccessKind::Close(AccessMode::Write)) =>
                    {
                        return;
                    }
                    Ok(_) => {}
                }
                let _ = tx.send(());
            };
            match notify::recommended_watcher(handler) {
                Ok(w) => Some((w, rx)),
                Err(e) => {
                    log::warn!("cannot use file-system events ({e}); falling back to polling");
                    None
                }
            }
        } else {
            None
        };
        let max_watches = std::env::var("MMON_MAX_WATCHES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(usize::MAX);
        Wake {
            interval,
            watcher,
            watched: HashMap::new(),
            max_watches,
        }
    }

    /// Makes sure every directory in `dirs` is watched.
    pub fn watch_dirs<'a>(&mut self, dirs: impl IntoIterator<Item = &'a Path>) {
        let Some((watcher, _)) = &mut self.watcher else {
            return;
        };
        for dir in dirs {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            let Ok(meta) = std::fs::metadata(dir) else {
                self.watched.remove(dir);
                continue;
            };
            let id = super::identity::dev_ino(&meta);
            if self.watched.get(dir) == Some(&id) {
                continue;
            }
            let _ = watcher.unwatch(dir);
            let result = if self.watched.len() >= self.max_watches {
                Err(notify::Error::generic("MMON_MAX_WATCHES reached"))
            } else {
                watcher.watch(dir, RecursiveMode::NonRecursive)
            };
            match result {
                Ok(()) => {
                    self.watched.insert(dir.to_path_buf(), id);
                }
                Err(e) => {
                    log::warn!(
                        "cannot watch {} ({e}); falling back to polling every {:?}",
                        dir.display(),
                        self.interval
                    );
                    self.watcher = None;
                    return;
                }
            }
        }
    }

    /// Waits for an event or the poll interval, whichever comes first.
    pub fn wait(&mut self) {
        match &self.watcher {
            Some((_, rx)) => match rx.recv_timeout(self.interval) {
                Ok(()) => {
                    // Let a burst of events settle into one wake-up.
                    while rx.try_recv().is_ok() {}
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(self.interval),
            },
            None => std::thread::sleep(self.interval),
        }
    }

    pub fn uses_events(&self) -> bool {
        self.watcher.is_some()
    }
}
