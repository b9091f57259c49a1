//! Publishing records: the stream created when missing, messages sent with
//! a `Nats-Msg-Id` so the server drops a re-sent one, acknowledgements
//! awaited.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};

use super::{Client, NatsError, StreamInfo};

/// How a stream that `mmon publish` creates is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSettings {
    /// How long the server remembers a `Nats-Msg-Id` to drop duplicates.
    pub duplicate_window: Duration,
}

impl Default for StreamSettings {
    /// A duplicate window of 10 minutes.
    fn default() -> StreamSettings {
        StreamSettings {
            duplicate_window: Duration::from_secs(600),
        }
    }
}

/// One message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub subject: String,
    /// The `Nats-Msg-Id`: the same id within the duplicate window is
    /// stored once.
    pub msg_id: String,
    pub payload: Vec<u8>,
}

/// What the server acknowledged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishStats {
    /// Messages stored.
    pub stored: u64,
    /// Messages the server had already (same `Nats-Msg-Id`), not stored again.
    pub duplicates: u64,
}

impl PublishStats {
    pub fn add(&mut self, other: PublishStats) {
        self.stored += other.stored;
        self.duplicates += other.duplicates;
    }
}

impl Client {
    /// The stream's info, after creating it when missing (subjects: the
    /// URL's subject, file storage, `settings`'s duplicate window); the
    /// flag says whether it was created.
    pub fn ensure_stream(&self, settings: StreamSettings) -> Result<(StreamInfo, bool), NatsError> {
        match self.stream_info() {
            Ok(info) => return Ok((info, false)),
            Err(NatsError::NoStream { .. }) => {}
            Err(e) => return Err(e),
        }
        let config = stream::Config {
            name: self.url.stream.clone(),
            subjects: vec![self.url.subject.clone()],
            storage: stream::StorageType::File,
            duplicate_window: settings.duplicate_window,
            ..Default::default()
        };
        let created = self
            .link
            .block(|| format!("creating stream {}", self.url.stream), async {
                self.js.create_stream(config).await.map(drop).map_err(|e| {
                    self.jetstream_error(format!("creating stream {}", self.url.stream), e)
                })
            });
        match created {
            Ok(()) => Ok((self.stream_info()?, true)),
            // Someone else created it meanwhile.
            Err(e) => match self.stream_info() {
                Ok(info) => Ok((info, false)),
                Err(_) => Err(e),
            },
        }
    }

    /// Publishes `messages` in order and waits for every acknowledgement
    /// (each within the request timeout); sends them all before awaiting
    /// the first, so a batch costs about one round trip.
    pub fn publish(&self, messages: Vec<Outgoing>) -> Result<PublishStats, NatsError> {
        let link = &self.link;
        let limit = link.timeouts.request;
        let timed_out = |what: String| NatsError::Timeout {
            server: link.server.clone(),
            what,
            after: limit,
        };
        link.rt.block_on(async {
            let mut acks = Vec::with_capacity(messages.len());
            for m in messages {
                let mut headers = HeaderMap::new();
                headers.insert(async_nats::header::NATS_MESSAGE_ID, m.msg_id.as_str());
                let what = || format!("publishing to {}", m.subject);
                let sent = tokio::time::timeout(
                    limit,
                    self.js
                        .publish_with_headers(m.subject.clone(), headers, m.payload.into()),
                )
                .await
                .map_err(|_| timed_out(what()))?
                .map_err(|e| self.jetstream_error(what(), e))?;
                acks.push((m.subject, sent));
            }
            let mut stats = PublishStats::default();
            for (subject, ack) in acks {
                let what = || format!("waiting for the acknowledgement of a message on {subject}");
                let ack: jetstream::publish::PublishAck = tokio::time::timeout(limit, ack)
                    .await
                    .map_err(|_| timed_out(what()))?
                    .map_err(|e| self.jetstream_error(what(), e))?;
                if ack.duplicate {
                    stats.duplicates += 1;
                } else {
                    stats.stored += 1;
                }
            }
            Ok(stats)
        })
    }
}
