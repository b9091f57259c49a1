//! `mmon replay nats://…` and `mmon watch nats://…`: the run core fed from
//! NATS JetStream, with the models split into partitions that instances
//! lease (SPEC §10).
//!
//! Synchronous, like the rest of mmon: every call into [`crate::source::nats`]
//! blocks on that module's own runtime. One loop: renew leases and take a
//! fair share every TTL/3, read a batch from the lowest sequence any owned
//! partition still needs, apply each message to its partition's pipeline
//! (skipping what that partition already applied), and checkpoint every
//! interval. The checkpoint (pipeline state plus the last sequence applied)
//! is the only truth: no acks are sent, and a partition taken over resumes
//! at its checkpoint + 1, so no record reaches a detector twice or never.
//!
//! An instance stops emitting for a partition as soon as its lease deadline
//! (a monotonic clock, counted from before the last renewal) has passed,
//! and drops the partition when a renewal or a checkpoint write finds
//! another revision: a paused instance can never overwrite its successor.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::exit_code::{ExitCode, Failure};
use crate::pipeline::{self, Pipeline};
use crate::record::{Name, Position};
use crate::retrain::{ClockMode, RetrainNote};
use crate::session::{self, Pace, Session};
use crate::settings::Settings;
use crate::signals::Signals;
use crate::source::lines::Line;
use crate::source::nats::{
    Checkpoints, Client, Lease, Leases, Message, NatsError, NatsUrl, Reader, Timeouts, fair_share,
};
use crate::source::{BadRecord, Decoder, FieldError, FileStats, Format, Item};

/// The schema of a partition's checkpoint in the KV bucket.
const SCHEMA: &str = "mmon.nats-checkpoint/1";

/// How many messages one read takes, and how long it waits for the first.
const BATCH: usize = 1000;
const WAIT: Duration = Duration::from_millis(200);

/// How long a follower reads no new sequence before it asks the server
/// whether the stream has more than it read.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// What `watch nats://…` adds to the shared flags.
#[derive(Debug, Clone)]
pub struct Follow {
    /// Read up to the last sequence at start, then exit.
    pub once: bool,
    pub instance: String,
    pub lease_ttl: Duration,
    pub checkpoint_interval: Duration,
    pub reset_state: bool,
}

/// One partition's checkpoint.
#[derive(Serialize, Deserialize)]
struct Saved {
    schema: String,
    /// The fingerprint of the configuration that shapes the pipeline.
    config: String,
    /// The last stream sequence applied.
    seq: u64,
    pipeline: pipeline::State,
    #[serde(default)]
    retrains: BTreeMap<u64, RetrainNote>,
}

/// A partition this instance owns.
struct Owned {
    lease: Lease,
    /// Past this instant another instance may own it: emit nothing more.
    deadline: Instant,
    /// The last sequence applied to its pipeline.
    applied: u64,
    /// The checkpoint's revision to write over (`None`: none yet).
    revision: Option<u64>,
    dirty: bool,
}

fn input_error(e: impl std::fmt::Display) -> anyhow::Error {
    Failure::new(ExitCode::Input, anyhow::anyhow!("{e}")).into()
}

fn nats_failure(e: NatsError) -> anyhow::Error {
    let code = match e {
        NatsError::Url(_) | NatsError::InstanceId(_) | NatsError::TtlMismatch { .. } => {
            ExitCode::Usage
        }
        NatsError::NoStream { .. } => ExitCode::Input,
        NatsError::Corrupt { .. } => ExitCode::Checkpoint,
        _ => ExitCode::Training,
    };
    Failure::new(code, e).into()
}

/// Whether a call may work when tried again (the server is slow, away or
/// reconnecting), rather than being wrong.
fn transient(e: &NatsError) -> bool {
    matches!(
        e,
        NatsError::Timeout { .. } | NatsError::Server { .. } | NatsError::Connect { .. }
    )
}

/// The messages' records, decoded as JSONL lines of the "file" `name`
/// (the URL as given), each line numbered with its message's sequence.
struct Records {
    decoder: Decoder,
    schema: crate::record::Schema,
    name: Name,
    /// `[input] model_id`, for the message of a record on another's subject.
    model_field: String,
    bytes: u64,
    records: u64,
    rejected: u64,
}

impl Records {
    fn new(name: &str, settings: &Settings) -> Records {
        let name = Name::new(name);
        Records {
            decoder: Decoder::new(name, Format::Jsonl),
            schema: settings.config.schema(),
            name,
            model_field: settings.config.input.model_id.clone(),
            bytes: 0,
            records: 0,
            rejected: 0,
        }
    }

    /// Applies `msg` to `partition`'s pipeline; a record whose model is
    /// not the subject's is a bad record.
    fn apply(
        &mut self,
        msg: &Message,
        partition: u32,
        session: &mut Session,
    ) -> anyhow::Result<()> {
        self.bytes += msg.payload.len() as u64;
        for line in msg.payload.split(|&b| b == b'\n') {
            let text = Line::Text {
                bytes: line,
                number: msg.seq,
                offset: 0,
            };
            match self.decoder.decode(text, &self.schema) {
                None => {}
                Some(Item::Record(r)) if *r.model() == *msg.model => {
                    self.records += 1;
                    session.record_in(partition, &r)?;
                }
                Some(Item::Record(r)) => {
                    self.rejected += 1;
                    session.bad(&BadRecord {
                        pos: Position {
                            file: self.name,
                            line: msg.seq,
                            offset: 0,
                        },
                        error: FieldError::Bad {
                            field: self.model_field.clone(),
                            expected: format!(
                                "{:?}, the model of subject {}",
                                msg.model, msg.subject
                            ),
                            found: format!("{:?}", r.model().as_str()),
                        },
                        raw: line.to_vec(),
                    })?;
                }
                Some(Item::Bad(bad)) => {
                    self.rejected += 1;
                    session.bad(&bad)?;
                }
            }
        }
        Ok(())
    }

    fn stats(&self) -> Vec<FileStats> {
        vec![FileStats {
            path: self.name.to_string(),
            bytes: self.bytes,
            records: self.records,
            rejected: self.rejected,
            ..FileStats::default()
        }]
    }
}

/// `mmon replay nats://…`: every partition, from the stream's first
/// sequence to its last at start; no lease, no checkpoint.
pub fn replay(source: &str, settings: &Settings) -> anyhow::Result<ExitCode> {
    let url = NatsUrl::parse(source).map_err(|e| nats_failure(e.into()))?;
    let instance = format!("replay-{}", std::process::id());
    let client = Client::connect(&url, &instance, Timeouts::default()).map_err(nats_failure)?;
    let info = client.stream_info().map_err(nats_failure)?;
    let signals = Signals::register()?;
    let mut session = Session::partitioned(
        settings,
        url.partitions,
        ClockMode::Replay,
        signals.flag(),
        Pace::AtEnd,
    )?;
    for p in 0..url.partitions {
        session.adopt(p, Pipeline::new(&settings.config), BTreeMap::new());
    }
    let mut records = Records::new(source, settings);
    let started = Instant::now();
    if info.messages > 0 {
        let mut reader = client.reader(info.first_seq).map_err(nats_failure)?;
        'read: while reader.next_seq() <= info.last_seq {
            let batch = reader.next_batch(BATCH, WAIT * 10).map_err(nats_failure)?;
            if batch.is_empty() {
                return Err(nats_failure(NatsError::Timeout {
                    server: url.server(),
                    what: format!(
                        "reading stream {} at sequence {}",
                        url.stream,
                        reader.next_seq()
                    ),
                    after: WAIT * 10,
                }));
            }
            for msg in batch {
                if signals.caught() || msg.seq > info.last_seq {
                    break 'read;
                }
                records.apply(&msg, url.partition_of(&msg.model), &mut session)?;
            }
        }
    }
    session.end_of_input()?;
    session.close_rejects()?;
    let summary = session.summary(
        started.elapsed().as_secs_f64(),
        records.bytes,
        records.stats(),
    );
    session.conclude_replay(summary, &settings.config, &signals, source)
}

/// The instance's hold on the stream: leases, checkpoints and what it owns.
struct Member<'a> {
    url: &'a NatsUrl,
    client: &'a Client,
    leases: Leases,
    checkpoints: Checkpoints,
    fingerprint: String,
    settings: &'a Settings,
    follow: &'a Follow,
    owned: BTreeMap<u32, Owned>,
    /// The lowest sequence a partition adopted since the last read needs:
    /// the reader goes back there if it is past it.
    rewind: Option<u64>,
}

impl Member<'_> {
    /// Announces this instance, renews its leases, hands back what is over
    /// its fair share and claims free partitions up to it.
    fn housekeeping(&mut self, session: &mut Session) -> anyhow::Result<()> {
        if let Err(e) = self.leases.announce() {
            log::warn!("{e}; retrying");
            return Ok(());
        }
        let me = self.client.instance_id().to_string();
        let members = self.leases.members().unwrap_or_default();
        let share = fair_share(self.url.partitions, &members, &me) as usize;
        let partitions: Vec<u32> = self.owned.keys().copied().collect();
        for p in partitions {
            let before = Instant::now();
            let lease = self.owned[&p].lease;
            match self.leases.renew(&lease) {
                Ok(lease) => {
                    let o = self.owned.get_mut(&p).expect("owned");
                    o.lease = lease;
                    o.deadline = before + self.leases.ttl();
                }
                Err(e @ NatsError::Conflict { .. }) => self.lose(p, &e.to_string(), session),
                Err(e) => log::warn!("{e}; the lease of partition {p} is retried"),
            }
        }
        while self.owned.len() > share {
            let Some(&p) = self.owned.keys().next_back() else {
                break;
            };
            // Checkpoint first, so the next owner starts where this one stopped.
            if self.save(p, session).is_ok() {
                let o = self.owned.remove(&p).expect("owned");
                if let Err(e) = self.leases.release(o.lease) {
                    log::warn!("{e}");
                }
                session.release(p);
                log::info!("released partition {p} (over this instance's share of {share})");
            } else {
                break;
            }
        }
        if self.owned.len() < share {
            let held: Vec<u32> = match self.leases.holders() {
                Ok(h) => h.iter().map(|h| h.partition).collect(),
                Err(e) => {
                    log::warn!("{e}; retrying");
                    return Ok(());
                }
            };
            for p in 0..self.url.partitions {
                if self.owned.len() >= share {
                    break;
                }
                if held.contains(&p) || self.owned.contains_key(&p) {
                    continue;
                }
                let before = Instant::now();
                match self.leases.claim(p) {
                    Ok(lease) => self.adopt(p, lease, before, session)?,
                    Err(NatsError::Held { .. }) => {}
                    Err(e) => log::warn!("{e}; retrying"),
                }
            }
        }
        Ok(())
    }

    /// Takes over a claimed partition from its checkpoint.
    fn adopt(
        &mut self,
        p: u32,
        lease: Lease,
        claimed: Instant,
        session: &mut Session,
    ) -> anyhow::Result<()> {
        let (stored, info) = match (self.checkpoints.load(p), self.client.stream_info()) {
            (Ok(stored), Ok(info)) => (stored, info),
            (Err(e), _) | (_, Err(e)) if transient(&e) => {
                // Hand the claim back; the next round claims it again.
                log::warn!("{e}; partition {p} is claimed again later");
                if let Err(e) = self.leases.release(lease) {
                    log::warn!("{e}");
                }
                return Ok(());
            }
            (Err(e), _) | (_, Err(e)) => return Err(nats_failure(e)),
        };
        let config = &self.settings.config;
        let where_ = || format!("{}/partition.{p}", self.checkpoints.bucket());
        let corrupt = |why: String| -> anyhow::Error {
            Failure::new(
                ExitCode::Checkpoint,
                anyhow::anyhow!(
                    "{}: {why}; pass --reset-state to start the partition over",
                    where_()
                ),
            )
            .into()
        };
        let saved = match &stored {
            Some(s) => match serde_json::from_slice::<Saved>(&s.bytes) {
                Ok(saved) if saved.schema != SCHEMA => Err(format!(
                    "checkpoint schema {:?}, not {SCHEMA:?}",
                    saved.schema
                )),
                Ok(saved) if saved.config != self.fingerprint => Err(
                    "written with another configuration (monitors, detectors or [report])"
                        .to_string(),
                ),
                Ok(saved) => Ok(Some(saved)),
                Err(e) => Err(format!("does not parse: {e}")),
            },
            None => Ok(None),
        };
        let saved = match saved {
            Ok(s) => s,
            Err(why) if self.follow.reset_state => {
                log::warn!(
                    "{}: {why}; starting the partition afresh (--reset-state)",
                    where_()
                );
                None
            }
            Err(why) => return Err(corrupt(why)),
        };
        let (pipeline, applied, retrains) = match saved {
            Some(s) => {
                let pipeline =
                    Pipeline::restore(config, s.pipeline).map_err(|e| corrupt(e.to_string()))?;
                (pipeline, s.seq, s.retrains)
            }
            None => (
                Pipeline::new(config),
                info.first_seq.saturating_sub(1),
                BTreeMap::new(),
            ),
        };
        if info.messages > 0 && applied + 1 < info.first_seq {
            return Err(input_error(format!(
                "partition {p}'s checkpoint is at sequence {applied}, but stream {} now starts at sequence {}: sequences {} to {} were removed before they were read (raise the stream's retention, or pass --reset-state to go on from sequence {})",
                self.url.stream,
                info.first_seq,
                applied + 1,
                info.first_seq - 1,
                info.first_seq
            )));
        }
        session.adopt(p, pipeline, retrains);
        let from = applied + 1;
        self.rewind = Some(self.rewind.map_or(from, |r| r.min(from)));
        self.owned.insert(
            p,
            Owned {
                lease,
                deadline: claimed + self.leases.ttl(),
                applied,
                revision: stored.map(|s| s.revision),
                dirty: false,
            },
        );
        log::info!("claimed partition {p} (from sequence {})", applied + 1);
        Ok(())
    }

    /// Drops a partition another instance owns now: nothing more is
    /// emitted for it, and its state is not written.
    fn lose(&mut self, p: u32, why: &str, session: &mut Session) {
        if self.owned.remove(&p).is_some() {
            session.release(p);
            log::warn!("lost partition {p}: {why}");
        }
    }

    /// Writes partition `p`'s checkpoint over its last revision.
    fn save(&mut self, p: u32, session: &mut Session) -> Result<(), ()> {
        let Some(o) = self.owned.get(&p) else {
            return Err(());
        };
        if Instant::now() >= o.deadline {
            self.lose(
                p,
                "its lease deadline passed before the checkpoint",
                session,
            );
            return Err(());
        }
        let Some(pipeline) = session.pipeline_of(p) else {
            return Err(());
        };
        let saved = Saved {
            schema: SCHEMA.to_string(),
            config: self.fingerprint.clone(),
            seq: o.applied,
            pipeline: pipeline.save(),
            retrains: session.retrains_of(p),
        };
        let bytes = match serde_json::to_vec(&saved) {
            Ok(b) => b,
            Err(e) => {
                log::warn!("partition {p}: cannot encode its checkpoint: {e}");
                return Err(());
            }
        };
        match self.checkpoints.save(p, &bytes, o.revision) {
            Ok(revision) => {
                let o = self.owned.get_mut(&p).expect("owned");
                o.revision = Some(revision);
                o.dirty = false;
                Ok(())
            }
            Err(e @ NatsError::Conflict { .. }) => {
                self.lose(p, &e.to_string(), session);
                Err(())
            }
            Err(e) => {
                log::warn!("{e}; partition {p}'s previous checkpoint stays valid; retrying");
                Err(())
            }
        }
    }

    fn save_dirty(&mut self, session: &mut Session) {
        let dirty: Vec<u32> = self
            .owned
            .iter()
            .filter(|(_, o)| o.dirty)
            .map(|(p, _)| *p)
            .collect();
        for p in dirty {
            let _ = self.save(p, session);
        }
    }

    /// At exit: every partition checkpointed and handed back at once.
    fn leave(&mut self, session: &mut Session) {
        let partitions: Vec<u32> = self.owned.keys().copied().collect();
        for p in partitions {
            if self.save(p, session).is_ok()
                && let Some(o) = self.owned.remove(&p)
            {
                match self.leases.release(o.lease) {
                    Ok(()) => log::info!("released partition {p}"),
                    Err(e) => log::warn!("{e}"),
                }
            }
        }
        let _ = self.leases.withdraw();
    }
}

/// `mmon watch nats://…`: this instance's share of the partitions, until a
/// signal (or, with `--once`, the last sequence at start).
pub fn watch(source: &str, settings: &Settings, follow: &Follow) -> anyhow::Result<ExitCode> {
    let url = NatsUrl::parse(source).map_err(|e| nats_failure(e.into()))?;
    let client =
        Client::connect(&url, &follow.instance, Timeouts::default()).map_err(nats_failure)?;
    let info = client.stream_info().map_err(nats_failure)?;
    let end = follow.once.then_some(info.last_seq);
    let signals = Signals::register()?;
    let mut session = Session::partitioned(
        settings,
        url.partitions,
        ClockMode::Watch,
        signals.flag(),
        Pace::Live,
    )?;
    let mut member = Member {
        url: &url,
        client: &client,
        leases: client.leases(follow.lease_ttl).map_err(nats_failure)?,
        checkpoints: client.checkpoints().map_err(nats_failure)?,
        fingerprint: crate::checkpoint::fingerprint(&settings.config),
        settings,
        follow,
        owned: BTreeMap::new(),
        rewind: None,
    };
    let mut records = Records::new(source, settings);
    let started = Instant::now();
    let every = (follow.lease_ttl / 3).max(Duration::from_millis(50));
    let mut next_housekeeping = Instant::now();
    let mut last_save = Instant::now();
    let mut reader: Option<Reader> = None;
    // The newest sequence read, and when it was read.
    let (mut high, mut progressed) = (0u64, Instant::now());
    let outcome = (|| -> anyhow::Result<()> {
        loop {
            if signals.caught() {
                return Ok(());
            }
            if Instant::now() >= next_housekeeping {
                member.housekeeping(&mut session)?;
                next_housekeeping = Instant::now() + every;
            }
            if member.owned.is_empty() {
                if follow.once && started.elapsed() > follow.lease_ttl * 2 {
                    // Nothing to own: every partition is another's.
                    return Ok(());
                }
                std::thread::sleep(WAIT.min(every));
                continue;
            }
            let rewind = member.rewind.take();
            let from = match (&reader, rewind) {
                (None, _) => member.owned.values().map(|o| o.applied + 1).min(),
                (Some(r), Some(from)) if r.next_seq() > from => Some(from),
                _ => None,
            };
            if let Some(from) = from {
                match client.reader(from) {
                    Ok(r) => {
                        reader = Some(r);
                        // Reading again from below: what counts as new starts there.
                        (high, progressed) = (from - 1, Instant::now());
                    }
                    Err(e) if transient(&e) => {
                        // Without a reader, the next round starts one from
                        // the lowest sequence any partition needs.
                        log::warn!("{e}; trying again");
                        reader = None;
                        std::thread::sleep(WAIT);
                        continue;
                    }
                    Err(e) => return Err(nats_failure(e)),
                }
            }
            if let (Some(end), Some(r)) = (end, &reader)
                && r.next_seq() > end
            {
                return Ok(());
            }
            let r = reader.as_mut().expect("a reader");
            let batch = match r.next_batch(BATCH, WAIT) {
                Ok(b) => {
                    let newest = b.last().map_or(0, |m| m.seq);
                    if newest > high {
                        high = newest;
                        progressed = Instant::now();
                    } else if progressed.elapsed() >= IDLE_CHECK {
                        // No new sequence for a while: a server that
                        // restarted dropped the reader's consumer (which the
                        // client notices only much later), or the consumer
                        // went back over what was read. When the stream holds
                        // more, read it again from past the newest seen.
                        progressed = Instant::now();
                        let next = high.max(r.next_seq().saturating_sub(1)) + 1;
                        match client.stream_info() {
                            Ok(i) if i.last_seq >= next => {
                                log::info!(
                                    "reading again from sequence {next} (the stream has more)"
                                );
                                reader = client.reader(next).ok();
                                continue;
                            }
                            Ok(_) => {}
                            Err(e) => log::warn!("{e}"),
                        }
                    }
                    b
                }
                Err(e) => {
                    log::warn!("{e}; reading again from sequence {}", r.next_seq());
                    let next = r.next_seq();
                    reader = client.reader(next).ok();
                    std::thread::sleep(WAIT);
                    continue;
                }
            };
            // The last sequence handled: messages come in sequence order
            // from below every owned partition's next sequence, so each has
            // then seen all of its messages up to it, and its checkpoint
            // moves on even when none of them was its own.
            let mut read_to = None;
            for msg in &batch {
                if end.is_some_and(|end| msg.seq > end) || signals.caught() {
                    break;
                }
                read_to = Some(msg.seq);
                let p = url.partition_of(&msg.model);
                let Some(o) = member.owned.get_mut(&p) else {
                    continue;
                };
                if msg.seq <= o.applied {
                    continue;
                }
                if Instant::now() >= o.deadline {
                    member.lose(p, "its lease deadline passed", &mut session);
                    continue;
                }
                o.applied = msg.seq;
                o.dirty = true;
                records.apply(msg, p, &mut session)?;
            }
            if let Some(read_to) = read_to {
                for o in member.owned.values_mut() {
                    if o.applied < read_to {
                        o.applied = read_to;
                        o.dirty = true;
                    }
                }
            }
            if session.take_retrained() || last_save.elapsed() >= follow.checkpoint_interval {
                member.save_dirty(&mut session);
                last_save = Instant::now();
            }
        }
    })();
    let held: Vec<u32> = member.owned.keys().copied().collect();
    member.leave(&mut session);
    outcome?;
    session.close_rejects()?;
    let mut summary = session.summary(
        started.elapsed().as_secs_f64(),
        records.bytes,
        records.stats(),
    );
    summary.partitions = Some(held);
    let rejected = session.rejected();
    let code = session.finish(&summary, &settings.config, signals.exit_code().is_some())?;
    if let Some(code) = signals.exit_code() {
        return Ok(code);
    }
    if summary.records == 0 && rejected > 0 {
        return Err(session::no_usable_record(source, rejected));
    }
    Ok(code)
}
