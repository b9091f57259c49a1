//! Reading and parsing on a second thread, ahead of the pipeline.
//!
//! Parsing JSON is most of replay's work and the detectors are a small part,
//! so a second core pays off by running the [`FileSource`] on its own thread
//! and handing records to the pipeline in batches through a bounded channel.
//! Order is kept (one producer, one consumer), memory is bounded by the
//! channel's depth, and the pipeline itself stays a plain loop. This is the
//! only place replay uses a thread.
//!
//! Spent batches travel back to the reader, which drops their records and
//! refills the same vectors. Records share their file name, model id and
//! version as `Arc<str>`s made by the reader; were they dropped on the
//! pipeline's thread, every record would bounce those reference counts'
//! cache lines between the two cores, which once cost more CPU than the
//! second core saved.

use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::thread::JoinHandle;

use super::{FileSource, FileStats, Item};

/// Items per batch: large enough to make the channel cost vanish, small
/// enough that the progress bar and `--on-bad-record fail` stay prompt.
const BATCH: usize = 2048;
/// Batches in flight.
const DEPTH: usize = 8;

enum Message {
    /// Items in file order and the bytes read after the last of them.
    Items(Vec<Item>, u64),
    /// The source failed (after the items sent before).
    Failed(anyhow::Error),
    Done(Vec<FileStats>),
}

/// A [`FileSource`] running on its own thread; take its items batch by
/// batch with [`ReadAhead::next_batch`].
pub struct ReadAhead {
    rx: Receiver<Message>,
    /// Spent batches, back to the reader.
    spent: Sender<Vec<Item>>,
    batch: Vec<Item>,
    bytes: u64,
    stats: Vec<FileStats>,
    thread: Option<JoinHandle<()>>,
}

impl ReadAhead {
    pub fn spawn(source: FileSource) -> ReadAhead {
        let (tx, rx) = sync_channel(DEPTH);
        let (spent, recycled) = channel();
        let thread = std::thread::Builder::new()
            .name("mmon-read".into())
            .spawn(move || produce(source, &tx, &recycled))
            .ok();
        ReadAhead {
            rx,
            spent,
            batch: Vec::new(),
            bytes: 0,
            stats: Vec::new(),
            thread,
        }
    }

    /// The next items in file order, `Ok(None)` at the end of the input, or
    /// the error that stopped the source. The previous batch goes back to
    /// the reader thread.
    pub fn next_batch(&mut self) -> anyhow::Result<Option<&[Item]>> {
        let spent = std::mem::take(&mut self.batch);
        if spent.capacity() > 0 {
            // If the reader has finished it drops the batch here instead.
            let _ = self.spent.send(spent);
        }
        match self.rx.recv() {
            Ok(Message::Items(items, bytes)) => {
                self.batch = items;
                self.bytes = bytes;
                Ok(Some(&self.batch))
            }
            Ok(Message::Failed(e)) => Err(e),
            Ok(Message::Done(stats)) => {
                self.stats = stats;
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
                Ok(None)
            }
            Err(_) if self.thread.is_none() => Ok(None),
            Err(_) => {
                // The reader thread ended without saying so: it panicked.
                self.thread = None;
                anyhow::bail!("the reader thread stopped unexpectedly (a bug)")
            }
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

fn produce(mut source: FileSource, tx: &SyncSender<Message>, recycled: &Receiver<Vec<Item>>) {
    loop {
        // Reuse a spent batch: its records are dropped here, on the thread
        // that made them.
        let mut items = match recycled.try_recv() {
            Ok(mut spent) => {
                spent.clear();
                spent
            }
            Err(_) => Vec::with_capacity(BATCH),
        };
        let mut failed = None;
        for item in source.by_ref() {
            match item {
                Ok(item) => items.push(item),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
            if items.len() == BATCH {
                break;
            }
        }
        let last = failed.is_some() || items.len() < BATCH;
        if !items.is_empty() && tx.send(Message::Items(items, source.bytes_read())).is_err() {
            return; // the consumer stopped early
        }
        let end = match failed {
            Some(e) => Message::Failed(e),
            None => Message::Done(source.stats.clone()),
        };
        if last {
            let _ = tx.send(end);
            return;
        }
    }
}
