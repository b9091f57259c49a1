//! Reading and parsing on a second thread, ahead of the pipeline.
//!
//! Parsing JSON is most of replay's work and the detectors are a small part,
//! so a second core pays off by running the [`FileSource`] on its own thread
//! and handing records to the pipeline in batches through a bounded channel.
//! Order is kept (one producer, one consumer), memory is bounded by the
//! channel's depth, and the pipeline itself stays a plain loop. This is the
//! only place replay uses a thread.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use super::{FileSource, FileStats, Item};

/// Items per batch: large enough to make the channel cost vanish, small
/// enough that the progress bar and `--on-bad-record fail` stay prompt.
const BATCH: usize = 2048;
/// Batches in flight.
const DEPTH: usize = 8;

enum Message {
    Items(Vec<anyhow::Result<Item>>, u64),
    Done(Vec<FileStats>),
}

/// A [`FileSource`] running on its own thread; iterate it like the source.
pub struct ReadAhead {
    rx: Receiver<Message>,
    batch: std::vec::IntoIter<anyhow::Result<Item>>,
    bytes: u64,
    stats: Vec<FileStats>,
    thread: Option<JoinHandle<()>>,
}

impl ReadAhead {
    pub fn spawn(source: FileSource) -> ReadAhead {
        let (tx, rx) = sync_channel(DEPTH);
        let thread = std::thread::Builder::new()
            .name("mmon-read".into())
            .spawn(move || produce(source, &tx))
            .ok();
        ReadAhead {
            rx,
            batch: Vec::new().into_iter(),
            bytes: 0,
            stats: Vec::new(),
            thread,
        }
    }

    /// Bytes the reader has consumed so far (ahead of the pipeline).
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// Per-file counters; complete once iteration has ended.
    pub fn stats(&self) -> &[FileStats] {
        &self.stats
    }
}

fn produce(mut source: FileSource, tx: &SyncSender<Message>) {
    loop {
        let mut items = Vec::with_capacity(BATCH);
        let mut ended = false;
        for item in source.by_ref() {
            let fatal = item.is_err();
            items.push(item);
            if fatal || items.len() == BATCH {
                ended = fatal;
                break;
            }
        }
        let last = ended || items.len() < BATCH;
        if tx.send(Message::Items(items, source.bytes_read())).is_err() {
            return; // the consumer stopped early
        }
        if last {
            let _ = tx.send(Message::Done(source.stats.clone()));
            return;
        }
    }
}

impl Iterator for ReadAhead {
    type Item = anyhow::Result<Item>;

    fn next(&mut self) -> Option<anyhow::Result<Item>> {
        loop {
            if let Some(item) = self.batch.next() {
                return Some(item);
            }
            match self.rx.recv() {
                Ok(Message::Items(items, bytes)) => {
                    self.batch = items.into_iter();
                    self.bytes = bytes;
                }
                Ok(Message::Done(stats)) => {
                    self.stats = stats;
                    if let Some(t) = self.thread.take() {
                        let _ = t.join();
                    }
                    return None;
                }
                Err(_) => {
                    // The reader thread ended without saying so: it panicked.
                    let msg = "the reader thread stopped unexpectedly (a bug)";
                    return self.thread.take().map(|_| Err(anyhow::anyhow!(msg)));
                }
            }
        }
    }
}
