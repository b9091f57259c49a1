//! Reading the stream from a sequence on: one ordered consumer, no acks.
//!
//! mmon's checkpoint is the only record of progress, so the server keeps
//! none: the consumer is ephemeral (in memory, removed by the server 30 s
//! after its reader is gone), delivers from a start sequence with
//! `AckPolicy::None`, and async-nats' ordered consumer re-creates it by
//! itself from the last delivered sequence when deliveries stop or a gap
//! appears (a server restart, a lost connection).

use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, pull},
};
use futures_util::StreamExt;

use super::{Link, NatsError};

/// One message of the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The stream sequence: the cursor a checkpoint keeps.
    pub seq: u64,
    pub subject: String,
    /// The subject's last token: the model id every record in the payload
    /// must carry.
    pub model: String,
    /// One or more JSONL records, newline-separated.
    pub payload: Vec<u8>,
    /// Messages of the subject after this one when it was delivered.
    pub pending: u64,
}

/// Messages of the URL's subject in sequence order, from a start sequence.
pub struct Reader {
    link: Link,
    messages: Option<pull::Ordered>,
    next_seq: u64,
    /// An error met after messages were already gathered, returned by the
    /// next call.
    failed: Option<NatsError>,
}

/// How long to keep gathering a batch once its first message came.
const LINGER: Duration = Duration::from_millis(2);

pub(super) async fn consumer(
    link: &Link,
    stream: &jetstream::stream::Stream,
    subject: &str,
    start_seq: u64,
) -> Result<pull::Ordered, NatsError> {
    let deliver_policy = if start_seq <= 1 {
        DeliverPolicy::All
    } else {
        DeliverPolicy::ByStartSequence {
            start_sequence: start_seq,
        }
    };
    let config = pull::OrderedConfig {
        filter_subject: subject.to_string(),
        deliver_policy,
        ..Default::default()
    };
    let consumer = stream
        .create_consumer(config)
        .await
        .map_err(|e| link.server_error(format!("creating a consumer of {subject}"), e))?;
    consumer
        .messages()
        .await
        .map_err(|e| link.server_error(format!("reading {subject}"), e))
}

impl Reader {
    pub(super) fn new(link: Link, messages: pull::Ordered, next_seq: u64) -> Reader {
        Reader {
            link,
            messages: Some(messages),
            next_seq,
            failed: None,
        }
    }

    /// The sequence after the last message returned (the start sequence
    /// before any): where a new reader resumes after an error.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Up to `max` messages: waits up to `wait` for the first, then takes
    /// what follows without waiting (an empty batch means nothing arrived
    /// in `wait`). An error is returned once messages already gathered
    /// were handed over; after an error, make a new reader from
    /// [`Reader::next_seq`].
    pub fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<Message>, NatsError> {
        if let Some(err) = self.failed.take() {
            return Err(err);
        }
        let Some(messages) = self.messages.as_mut() else {
            return Ok(Vec::new());
        };
        let link = &self.link;
        let mut out = Vec::new();
        let outcome = link.rt.block_on(async {
            let mut limit = wait.max(Duration::from_millis(1));
            while out.len() < max.max(1) {
                let next = match tokio::time::timeout(limit, messages.next()).await {
                    Err(_) => return Ok(()),
                    Ok(next) => next,
                };
                match next {
                    Some(Ok(m)) => out.push(convert(link, m)?),
                    Some(Err(e)) => return Err(link.server_error("reading the stream", e)),
                    None => {
                        return Err(link.server_error("reading the stream", "the consumer ended"));
                    }
                }
                limit = LINGER;
            }
            Ok(())
        });
        if let Some(last) = out.last() {
            self.next_seq = last.seq + 1;
        }
        match outcome {
            Ok(()) => Ok(out),
            Err(e) if out.is_empty() => Err(e),
            Err(e) => {
                self.failed = Some(e);
                Ok(out)
            }
        }
    }
}

fn convert(link: &Link, m: jetstream::Message) -> Result<Message, NatsError> {
    let info = m
        .info()
        .map_err(|e| link.server_error("reading a message's sequence", e))?;
    let (seq, pending) = (info.stream_sequence, info.pending);
    let subject = m.message.subject.to_string();
    let model = subject.rsplit('.').next().unwrap_or_default().to_string();
    Ok(Message {
        seq,
        model,
        subject,
        payload: m.message.payload.to_vec(),
        pending,
    })
}

impl Drop for Reader {
    /// Drops the consumer inside the runtime (its background pull task is
    /// aborted there).
    fn drop(&mut self) {
        let _guard = self.link.rt.enter();
        self.messages = None;
    }
}
