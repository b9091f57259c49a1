//! `mmon publish`: JSONL records into NATS JetStream, on `PREFIX.<model_id>`.
//!
//! The stream is created when missing. Files are read in the order replay
//! reads them (by the timestamp of their first record), each line parsed
//! with the configuration's `[input]` fields, so a record's model is the
//! one replay would see (`default` when it has none). `--batch N` puts up
//! to N consecutive records of one model in a message (newline-terminated
//! JSONL lines).
//!
//! A line that is not a valid record (not JSON, a bad timestamp, a line
//! over `max_line_bytes`, ...) or whose model id cannot be a subject token
//! (empty, or holding `.`, `*`, `>` or white space) is published alone on
//! `PREFIX._bad`, as it is (an overlong line: its first bytes): a reader
//! then reports it as a bad record with its stream sequence, as replay
//! reports it with its file and line, and nothing is dropped on the way.
//!
//! Every message carries a `Nats-Msg-Id` chained over the file's messages
//! (a hash of the previous id, the subject and the payload), so publishing
//! the same file again with the same `--batch` within the stream's
//! duplicate window stores nothing twice, and publishing it again after it
//! grew stores only what is new.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::exit_code::{ExitCode, Failure};
use crate::record::{Name, Schema};
use crate::source::lines::LineReader;
use crate::source::nats::{
    Client, NatsUrl, Outgoing, PublishStats, StreamSettings, Timeouts, is_subject_token,
};
use crate::source::{Decoder, Format, Item, inputs};

/// The model token of the subject that refused lines are published on.
pub const BAD_MODEL: &str = "_bad";

/// Messages sent before their acknowledgements are awaited.
const CHUNK: usize = 512;

/// `mmon publish`: where to, what, and how many records per message.
#[derive(Debug, clap::Args)]
#[command(after_help = PUBLISH_EXAMPLES)]
pub struct PublishArgs {
    /// nats://HOST[:PORT][/PREFIX.>][?stream=NAME] (defaults: port 4222, metrics.>, METRICS).
    #[arg(value_name = "URL")]
    pub url: String,
    /// JSONL files (optionally .gz) or quoted globs; '-' reads stdin.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
    /// Up to N consecutive records of the same model in one message.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub batch: u64,
    /// Configuration file, for its [input] fields [default: $MMON_CONFIG, else ./mmon.toml, else the embedded default]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// How long the server drops a message id it already has (a stream this command creates).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
    pub duplicate_window: Duration,
}

const PUBLISH_EXAMPLES: &str = "Examples:
  mmon publish nats://127.0.0.1:4222/metrics.> m.jsonl
  mmon publish 'nats://127.0.0.1/metrics.>?stream=METRICS' --batch 100 logs/*.jsonl.gz
  mmon generate --events 1000 | mmon publish nats://127.0.0.1 -

Prints how many messages and records were stored. Lines that are not valid
records go to PREFIX._bad, one per message, for the readers to report.";

pub fn run(args: &PublishArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let usage = |e: anyhow::Error| Failure::new(ExitCode::Usage, e);
    let url = NatsUrl::parse(&args.url).map_err(|e| usage(e.into()))?;
    let config = Config::load(args.config.as_deref()).map_err(|e| usage(e.into()))?;
    let schema = config.schema();
    let files = inputs::expand(&args.files)?;
    if files.iter().filter(|f| *f == "-").count() > 1 {
        return Err(usage(anyhow!("'-' (stdin) can be given only once")).into());
    }
    for f in files.iter().filter(|f| *f != "-") {
        std::fs::metadata(f).with_context(|| format!("cannot open {f}"))?;
        if Format::from_path(f) == Some(Format::Csv) {
            return Err(usage(anyhow!(
                "{f}: mmon publish reads JSONL (one JSON record per line), not CSV"
            ))
            .into());
        }
    }
    let files = in_time_order(files, &schema)?;
    let instance = format!("publish-{}", std::process::id());
    let client = Client::connect(&url, &instance, Timeouts::default()).map_err(Failure::output)?;
    let settings = StreamSettings {
        duplicate_window: args.duplicate_window,
    };
    let (_, created) = client.ensure_stream(settings).map_err(Failure::output)?;
    if created && !quiet {
        eprintln!(
            "mmon: created stream {} (subjects {}, file storage, duplicate window {})",
            url.stream,
            url.subject,
            humantime::format_duration(args.duplicate_window)
        );
    }
    let started = Instant::now();
    let mut publisher = Publisher {
        client: &client,
        url: &url,
        batch: args.batch as usize,
        max_payload: client.usable_payload(),
        chunk: Vec::with_capacity(CHUNK),
        stats: PublishStats::default(),
        counts: Counts::default(),
        quiet,
    };
    for file in &files {
        publisher.file(file, &schema)?;
    }
    publisher.send()?;
    let Publisher { stats, counts, .. } = publisher;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "published {} messages ({} records, {} bad lines on {}) to stream {} on {}; {} duplicate messages dropped by the server; {:.0} records/s",
        stats.stored,
        counts.records,
        counts.bad,
        url.model_subject(BAD_MODEL),
        url.stream,
        url.server(),
        stats.duplicates,
        (counts.records + counts.bad) as f64 / seconds.max(1e-9),
    );
    if counts.records == 0 {
        return Err(anyhow!(
            "no record read from {} ({} bad lines)",
            files.join(", "),
            counts.bad
        ));
    }
    Ok(ExitCode::Success)
}

/// `files` sorted by the timestamp of their first record, as replay reads them.
fn in_time_order(files: Vec<String>, schema: &Schema) -> anyhow::Result<Vec<String>> {
    if files.len() < 2 {
        return Ok(files);
    }
    let firsts = files
        .iter()
        .map(|f| inputs::first_time(f, Some(Format::Jsonl), schema))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(inputs::time_order(files, &firsts))
}

#[derive(Debug, Default)]
struct Counts {
    records: u64,
    bad: u64,
}

/// Lines grouped into messages, messages sent in chunks.
struct Publisher<'a> {
    client: &'a Client,
    url: &'a NatsUrl,
    batch: usize,
    max_payload: usize,
    chunk: Vec<Outgoing>,
    stats: PublishStats,
    counts: Counts,
    quiet: bool,
}

/// The message being filled: its model, its lines, how many.
struct Pending {
    model: Name,
    payload: Vec<u8>,
    records: usize,
}

impl Publisher<'_> {
    fn file(&mut self, path: &str, schema: &Schema) -> anyhow::Result<()> {
        let reader = crate::source::open(path, Some(Format::Jsonl))?.reader;
        let name = Name::new(if path == "-" { "<stdin>" } else { path });
        let mut decoder = Decoder::new(name, Format::Jsonl);
        let mut lines = LineReader::new(reader, schema.max_line_bytes, 0, 1);
        let mut chain = [0u8; 16];
        let mut pending: Option<Pending> = None;
        while let Some(line) = lines
            .next_line()
            .with_context(|| format!("cannot read {name}"))?
        {
            let (text, number) = match &line {
                crate::source::lines::Line::Text { bytes, number, .. } => (bytes.to_vec(), *number),
                crate::source::lines::Line::TooLong { head, number, .. } => (head.clone(), *number),
            };
            let model = match decoder.decode(line, schema) {
                None => continue,
                Some(Item::Record(r)) if is_subject_token(&r.model()) => Some(r.model()),
                Some(_) => None,
            };
            // A record too big for one message cannot travel whole.
            let model = model.filter(|_| text.len() < self.max_payload);
            let fits = |p: &Pending| p.payload.len() + text.len() < self.max_payload;
            match model {
                Some(model) => {
                    self.counts.records += 1;
                    let joins = pending
                        .as_ref()
                        .is_some_and(|p| p.model == model && p.records < self.batch && fits(p));
                    if !joins && let Some(p) = pending.take() {
                        self.push(&mut chain, &p.model, p.payload)?;
                    }
                    let p = pending.get_or_insert_with(|| Pending {
                        model,
                        payload: Vec::new(),
                        records: 0,
                    });
                    p.payload.extend_from_slice(&text);
                    p.payload.push(b'\n');
                    p.records += 1;
                }
                None => {
                    self.counts.bad += 1;
                    if let Some(p) = pending.take() {
                        self.push(&mut chain, &p.model, p.payload)?;
                    }
                    let mut text = text;
                    if text.len() >= self.max_payload {
                        if !self.quiet {
                            eprintln!(
                                "mmon: {name}:{number}: line of {} bytes is over the server's max_payload; its first {} bytes go to {}",
                                text.len(),
                                crate::source::lines::HEAD_BYTES,
                                self.url.model_subject(BAD_MODEL)
                            );
                        }
                        text.truncate(crate::source::lines::HEAD_BYTES);
                    }
                    text.push(b'\n');
                    self.push(&mut chain, BAD_MODEL, text)?;
                }
            }
        }
        if let Some(p) = pending.take() {
            self.push(&mut chain, &p.model, p.payload)?;
        }
        Ok(())
    }

    /// Queues one message, its id chained to the file's previous one.
    fn push(&mut self, chain: &mut [u8; 16], model: &str, payload: Vec<u8>) -> anyhow::Result<()> {
        let subject = self.url.model_subject(model);
        let mut h = Sha256::new();
        h.update(*chain);
        h.update(subject.as_bytes());
        h.update([0]);
        h.update(&payload);
        chain.copy_from_slice(&h.finalize()[..16]);
        let msg_id = crate::registry::manifest::hex(&chain[..]);
        self.chunk.push(Outgoing {
            subject,
            msg_id,
            payload,
        });
        if self.chunk.len() >= CHUNK {
            self.send()?;
        }
        Ok(())
    }

    fn send(&mut self) -> anyhow::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK));
        let stats = self.client.publish(chunk).map_err(Failure::output)?;
        self.stats.add(stats);
        Ok(())
    }
}
