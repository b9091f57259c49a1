//! Reading and parsing on a second thread, ahead of the pipeline, when
//! there is a second CPU to run it.
//!
//! Parsing JSON is most of replay's work and the detectors are a small part,
//! so a second core pays off by running the [`FileSource`] on its own thread
//! and handing records to the pipeline in batches through a bounded channel.
//! Order is kept (one producer, one consumer), memory is bounded by the
//! channel's depth, and the pipeline itself stays a plain loop. This is the
//! only place replay uses a thread. With one CPU (or if the thread cannot
//! start) the same batches are filled in place on the caller's thread,
//! reusing one vector: the pipeline sees no difference.
//!
//! Spent batches travel back to the reader, which refills the same vectors.

use std::sync::mpsc::{Receiver, SendError, Sender, SyncSender, channel, sync_channel};
use std::thread::JoinHandle;

use super::chunks::Chunked;
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

/// A [`FileSource`] read ahead on its own thread, or in place when the
/// process may use only one CPU; take its items batch by batch with
/// [`ReadAhead::next_batch`].
pub struct ReadAhead {
    mode: Mode,
    batch: Vec<Item>,
    bytes: u64,
    stats: Vec<FileStats>,
}

enum Mode {
    Thread {
        rx: Receiver<Message>,
        /// Spent batches, back to the reader.
        spent: Sender<Vec<Item>>,
        thread: Option<JoinHandle<()>>,
    },
    /// One CPU (say, under `taskset` or a one-CPU container): a second
    /// thread would only add context switches, so batches are filled on
    /// the caller's thread. `source` is `None` once it has ended; `failed`
    /// holds an error until the items read before it have been taken.
    Inline {
        source: Option<Box<FileSource>>,
        failed: Option<anyhow::Error>,
    },
    /// Chunks parsed on every CPU ([`super::chunks`]).
    Chunks(Box<Chunked>),
}

impl ReadAhead {
    /// Parses chunks on every CPU if the process may run on more than one
    /// (`std::thread::available_parallelism` honours the affinity mask and
    /// cgroup quota), in place otherwise.
    ///
    /// The caller's thread runs the pipeline and parses whenever the next
    /// chunk is not ready (and gzip chunks handed to it), so there is one
    /// worker fewer than CPUs: a thread more than cores only makes them
    /// take turns (measured on two cores: 0.15 s against 0.19 s for 1M
    /// records, 0.31 s against 0.42 s gzipped).
    pub fn new(source: FileSource) -> ReadAhead {
        match std::thread::available_parallelism().map(|n| n.get()) {
            Ok(cpus) if cpus > 1 => {
                let workers = cpus - 1;
                log::info!("{cpus} CPUs: parsing chunks on {workers} threads and the pipeline's");
                ReadAhead::chunked(source, workers)
            }
            Ok(_) => {
                log::info!("one CPU: parsing in place");
                ReadAhead::inline(source)
            }
            Err(e) => {
                log::info!("CPU count unknown ({e}): parsing in place");
                ReadAhead::inline(source)
            }
        }
    }

    /// Reads ahead on a second thread.
    pub fn spawn(source: FileSource) -> ReadAhead {
        let (tx, rx) = sync_channel(DEPTH);
        let (spent, recycled) = channel();
        // The source is handed over once the thread runs, so that a thread
        // that cannot start leaves it here to be read in place.
        let (hand, handed) = sync_channel::<FileSource>(1);
        let started = std::thread::Builder::new()
            .name("mmon-read".into())
            .spawn(move || {
                if let Ok(source) = handed.recv() {
                    produce(source, &tx, &recycled);
                }
            });
        let thread = match started {
            Ok(thread) => thread,
            Err(e) => {
                log::warn!("cannot start a reader thread ({e}): parsing in place");
                return ReadAhead::inline(source);
            }
        };
        if let Err(SendError(source)) = hand.send(source) {
            return ReadAhead::inline(source);
        }
        ReadAhead::with(Mode::Thread {
            rx,
            spent,
            thread: Some(thread),
        })
    }

    /// Parses chunks of the files on `workers` threads, and on the
    /// caller's while it waits.
    pub fn chunked(source: FileSource, workers: usize) -> ReadAhead {
        let chunked = Chunked::start(source.paths, source.forced, source.schema, workers);
        ReadAhead::with(Mode::Chunks(Box::new(chunked)))
    }

    /// Reads on the caller's thread, a batch per [`ReadAhead::next_batch`].
    pub fn inline(source: FileSource) -> ReadAhead {
        ReadAhead::with(Mode::Inline {
            source: Some(Box::new(source)),
            failed: None,
        })
    }

    fn with(mode: Mode) -> ReadAhead {
        ReadAhead {
            mode,
            batch: Vec::new(),
            bytes: 0,
            stats: Vec::new(),
        }
    }

    /// The next items in file order, `Ok(None)` at the end of the input, or
    /// the error that stopped the source (after the items read before it).
    /// The previous batch goes back to the reader thread, or is refilled in
    /// place.
    pub fn next_batch(&mut self) -> anyhow::Result<Option<&[Item]>> {
        let spent = std::mem::take(&mut self.batch);
        let (rx, spent_tx, thread) = match &mut self.mode {
            Mode::Thread { rx, spent, thread } => (rx, spent, thread),
            Mode::Chunks(chunked) => return chunked.next_batch(),
            Mode::Inline { source, failed } => {
                if let Some(e) = failed.take() {
                    return Err(e);
                }
                let Some(reader) = source else {
                    return Ok(None);
                };
                let mut items = spent;
                items.clear();
                *failed = fill(reader, &mut items);
                self.bytes = reader.bytes_read();
                if failed.is_some() || items.len() < BATCH {
                    self.stats = reader.stats.clone();
                    *source = None;
                }
                if items.is_empty() {
                    return failed.take().map_or(Ok(None), Err);
                }
                self.batch = items;
                return Ok(Some(&self.batch));
            }
        };
        if spent.capacity() > 0 {
            // If the reader has finished it drops the batch here instead.
            let _ = spent_tx.send(spent);
        }
        match rx.recv() {
            Ok(Message::Items(items, bytes)) => {
                self.batch = items;
                self.bytes = bytes;
                Ok(Some(&self.batch))
            }
            Ok(Message::Failed(e)) => Err(e),
            Ok(Message::Done(stats)) => {
                self.stats = stats;
                if let Some(t) = thread.take() {
                    let _ = t.join();
                }
                Ok(None)
            }
            Err(_) if thread.is_none() => Ok(None),
            Err(_) => {
                // The reader thread ended without saying so: it panicked.
                *thread = None;
                anyhow::bail!("the reader thread stopped unexpectedly (a bug)")
            }
        }
    }

    /// Bytes the reader has consumed so far (ahead of the pipeline).
    pub fn bytes_read(&self) -> u64 {
        match &self.mode {
            Mode::Chunks(chunked) => chunked.bytes_read(),
            _ => self.bytes,
        }
    }

    /// Per-file counters; complete once iteration has ended.
    pub fn stats(&self) -> &[FileStats] {
        match &self.mode {
            Mode::Chunks(chunked) => chunked.stats(),
            _ => &self.stats,
        }
    }
}

/// Moves items from `source` into `items` until there is a batch or the
/// source ends; returns the error that stopped the source, if one did.
fn fill(source: &mut FileSource, items: &mut Vec<Item>) -> Option<anyhow::Error> {
    for item in source.by_ref() {
        match item {
            Ok(item) => items.push(item),
            Err(e) => return Some(e),
        }
        if items.len() == BATCH {
            break;
        }
    }
    None
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
        let failed = fill(&mut source, &mut items);
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::Config;

    /// Every item, then the error or the per-file counts, as text.
    fn drain(mut source: ReadAhead) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            match source.next_batch() {
                Ok(Some(batch)) => out.extend(batch.iter().map(|item| format!("{item:?}"))),
                Ok(None) => {
                    out.push(format!("{:?}", source.stats()));
                    return out;
                }
                Err(e) => {
                    out.push(format!("error: {e:#}"));
                    return out;
                }
            }
        }
    }

    fn source(paths: &[&str]) -> FileSource {
        let schema = Config::embedded().schema();
        let paths = paths.iter().map(|p| format!("fixtures/{p}")).collect();
        FileSource::new(paths, None, Arc::new(schema))
    }

    #[test]
    fn both_ways_yield_the_same_items_in_the_same_order() {
        let files = ["metrics.jsonl", "bad.jsonl", "metrics.csv"];
        let threaded = drain(ReadAhead::spawn(source(&files)));
        assert!(threaded.len() > 3 * BATCH, "{}", threaded.len());
        assert_eq!(drain(ReadAhead::inline(source(&files))), threaded);
    }

    #[test]
    fn an_error_right_after_a_full_batch_comes_after_that_batch() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("full.jsonl");
        let line = "{\"timestamp\":1700000000,\"accuracy\":0.5}\n";
        std::fs::write(&log, line.repeat(BATCH)).unwrap();
        let paths = vec![
            log.display().to_string(),
            dir.path().join("missing.jsonl").display().to_string(),
        ];
        let schema = Arc::new(Config::embedded().schema());
        for threaded in [false, true] {
            let source = FileSource::new(paths.clone(), None, schema.clone());
            let mut read = if threaded {
                ReadAhead::spawn(source)
            } else {
                ReadAhead::inline(source)
            };
            assert_eq!(read.next_batch().unwrap().map(<[Item]>::len), Some(BATCH));
            let e = read.next_batch().err().map(|e| format!("{e:#}"));
            assert!(
                e.is_some_and(|e| e.starts_with("cannot open")),
                "{threaded}"
            );
        }
    }

    #[test]
    fn a_failing_file_ends_both_ways_after_the_items_before_it() {
        let files = ["bad.jsonl", "no-such-file.jsonl", "metrics.jsonl"];
        let threaded = drain(ReadAhead::spawn(source(&files)));
        let last = threaded.last().unwrap();
        assert!(
            last.starts_with("error: cannot open fixtures/no-such-file.jsonl"),
            "{last}"
        );
        assert!(threaded.len() > 2);
        assert_eq!(drain(ReadAhead::inline(source(&files))), threaded);
    }
}
