//! NATS JetStream, the source of SPEC §10: the only asynchronous code in
//! mmon, behind the cargo feature `nats`.
//!
//! [`Client`] owns one current-thread tokio runtime and the `async-nats`
//! connection; everything here is a blocking call that runs its future on
//! that runtime with a timeout ([`Timeouts`]), so no `async` leaks out and
//! a server that went away is an error after a few seconds, never a hang.
//! The connection's background work (pings, reconnects, buffered
//! deliveries) runs only while some call is in progress: call something at
//! least every minute (a lease loop renewing every TTL/3 does). After a
//! lost connection async-nats reconnects by itself; calls in between time
//! out, and a [`Reader`] that failed is re-created from
//! [`Reader::next_seq`].
//!
//! What lives where:
//! - the records: the stream named in the URL, subjects `PREFIX.<model_id>`,
//!   read by [`Reader`] (one ordered consumer per instance over the whole
//!   subject, no acks; the caller keeps the messages of its partitions,
//!   [`NatsUrl::partition_of`]);
//! - leases and members: the KV bucket `mmon-leases-<STREAM>` ([`Leases`]),
//!   whose `max_age` is the lease TTL;
//! - checkpoints: the KV bucket `mmon-checkpoints-<STREAM>` ([`Checkpoints`]),
//!   written with the expected revision.
//!
//! Only JetStream features of nats-server 2.9 are used (Debian's package).

mod kv;
mod publish;
mod reader;
mod url;

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use kv::{Checkpoints, Holder, Lease, Leases, Stored, fair_share};
pub use publish::{Outgoing, PublishStats, StreamSettings};
pub use reader::{Message, Reader};
pub use url::{
    DEFAULT_PORT, DEFAULT_STREAM, DEFAULT_SUBJECT, MAX_PARTITIONS, NatsUrl, UrlError, is_name,
    is_subject_token, partition_of,
};

use async_nats::jetstream;

/// How long the blocking calls wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// To open the connection (TCP and the NATS handshake).
    pub connect: Duration,
    /// For one request or one publish acknowledgement; also the limit on
    /// any other single blocking call of this module.
    pub request: Duration,
}

impl Default for Timeouts {
    /// 5 s to connect, 5 s per request.
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(5),
        }
    }
}

/// What can go wrong talking to NATS; the variants callers branch on are
/// [`NatsError::Conflict`], [`NatsError::Held`] and [`NatsError::NoStream`].
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error(transparent)]
    Url(#[from] UrlError),
    #[error(
        "cannot connect to {server}: {reason}; start a server (`nats-server -js`) or fix the host and port of the URL"
    )]
    Connect { server: String, reason: String },
    #[error(
        "timed out after {after:?} on {server} while {what}; is the server up (it is retried by reconnecting)?"
    )]
    Timeout {
        server: String,
        what: String,
        after: Duration,
    },
    #[error(
        "JetStream is not enabled on {server}: start nats-server with -js (and a store folder, -sd DIR)"
    )]
    NoJetStream { server: String },
    #[error(
        "stream {stream} does not exist on {server}: create it, or publish with `mmon publish {server}/SUBJECT?stream={stream} FILE`"
    )]
    NoStream { stream: String, server: String },
    #[error("{what} on {server}: {reason}")]
    Server {
        server: String,
        what: String,
        reason: String,
    },
    /// A claim found the partition leased by a live holder.
    #[error("partition {partition} is leased by {holder} (revision {revision})")]
    Held {
        partition: u32,
        holder: String,
        revision: u64,
    },
    /// A revision-checked write found another revision: another instance
    /// wrote since (it took the lease over); the caller must drop the
    /// partition, not retry.
    #[error(
        "{bucket}/{key}: written by someone else since revision {}: this instance no longer owns it",
        expected.map_or_else(|| "none (it was expected not to exist)".to_string(), |r| r.to_string())
    )]
    Conflict {
        bucket: String,
        key: String,
        expected: Option<u64>,
    },
    #[error(
        "checkpoint of partition {partition} is {size} bytes compressed, over the server's max_payload of {max} bytes: raise max_payload in the nats-server configuration, or use more partitions"
    )]
    TooLarge {
        partition: u32,
        size: usize,
        max: usize,
    },
    #[error("{bucket}/{key} (revision {revision}) is not a gzip-compressed checkpoint: {reason}")]
    Corrupt {
        bucket: String,
        key: String,
        revision: u64,
        reason: String,
    },
    #[error(
        "bucket {bucket} has a TTL (max_age) of {existing:?}, not the {wanted:?} asked for: use the same lease TTL on every instance, or delete the bucket while no instance runs"
    )]
    TtlMismatch {
        bucket: String,
        existing: Duration,
        wanted: Duration,
    },
    #[error("invalid instance id {0:?}: expected letters, digits, '-' and '_'")]
    InstanceId(String),
}

/// What every handle of one connection shares: the runtime, the server's
/// name for messages, and the time limits.
#[derive(Clone)]
struct Link {
    rt: Arc<tokio::runtime::Runtime>,
    server: String,
    timeouts: Timeouts,
}

impl Link {
    /// Runs `fut` to its end on the runtime, or fails after the request
    /// timeout naming `what`.
    fn block<T>(
        &self,
        what: impl Fn() -> String,
        fut: impl Future<Output = Result<T, NatsError>>,
    ) -> Result<T, NatsError> {
        self.block_for(self.timeouts.request, what, fut)
    }

    fn block_for<T>(
        &self,
        after: Duration,
        what: impl Fn() -> String,
        fut: impl Future<Output = Result<T, NatsError>>,
    ) -> Result<T, NatsError> {
        self.rt
            .block_on(async { tokio::time::timeout(after, fut).await })
            .unwrap_or_else(|_| {
                Err(NatsError::Timeout {
                    server: self.server.clone(),
                    what: what(),
                    after,
                })
            })
    }

    /// Any other client error, with what was being done.
    fn server_error(&self, what: impl Into<String>, err: impl Display) -> NatsError {
        NatsError::Server {
            server: self.server.clone(),
            what: what.into(),
            reason: err.to_string(),
        }
    }
}

/// First and last sequence of the stream, and how many messages it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamInfo {
    /// The oldest sequence still stored (0 for an empty stream); a
    /// checkpoint whose next sequence is below it was trimmed away.
    pub first_seq: u64,
    /// The newest sequence (0 for an empty stream): `replay` reads up to
    /// the value it had at start.
    pub last_seq: u64,
    pub messages: u64,
}

/// Room left in a message for the headers it carries (message ids, KV
/// revisions) and the server adds.
pub const HEADER_ROOM: usize = 1024;

/// One connection to a NATS server with JetStream, for one mmon instance.
pub struct Client {
    link: Link,
    url: NatsUrl,
    instance: String,
    client: async_nats::Client,
    js: jetstream::Context,
}

impl Client {
    /// Connects to the server of `url` as instance `instance_id`
    /// (`[A-Za-z0-9_-]+`, unique among the instances sharing the stream,
    /// e.g. `host-pid`): fails fast on a refused connection and after
    /// `timeouts.connect` on a silent one.
    pub fn connect(
        url: &NatsUrl,
        instance_id: &str,
        timeouts: Timeouts,
    ) -> Result<Client, NatsError> {
        if !is_name(instance_id) {
            return Err(NatsError::InstanceId(instance_id.to_string()));
        }
        let server = url.server();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| NatsError::Connect {
                server: server.clone(),
                reason: format!("cannot start the I/O runtime: {e}"),
            })?;
        let link = Link {
            rt: Arc::new(rt),
            server: server.clone(),
            timeouts,
        };
        let options = async_nats::ConnectOptions::new()
            .name(format!("mmon {instance_id}"))
            .connection_timeout(timeouts.connect)
            .request_timeout(Some(timeouts.request))
            .event_callback(move |event| async move {
                match event {
                    async_nats::Event::Connected => log::info!("NATS: connected"),
                    async_nats::Event::Disconnected => {
                        log::warn!("NATS: disconnected; reconnecting")
                    }
                    other => log::debug!("NATS: {other}"),
                }
            });
        let address = format!("{}:{}", url.host, url.port);
        let client = link.block_for(
            timeouts.connect + Duration::from_millis(500),
            || "connecting".to_string(),
            async {
                options
                    .connect(address.as_str())
                    .await
                    .map_err(|e| NatsError::Connect {
                        server: server.clone(),
                        reason: e.to_string(),
                    })
            },
        )?;
        // The JetStream context starts a task of its own on the runtime.
        let js = {
            let _runtime = link.rt.enter();
            jetstream::new(client.clone())
        };
        Ok(Client {
            link,
            url: url.clone(),
            instance: instance_id.to_string(),
            client,
            js,
        })
    }

    pub fn url(&self) -> &NatsUrl {
        &self.url
    }

    pub fn instance_id(&self) -> &str {
        &self.instance
    }

    /// The largest payload worth sending: `max_payload` less
    /// [`HEADER_ROOM`] for the headers.
    pub fn usable_payload(&self) -> usize {
        self.max_payload().saturating_sub(HEADER_ROOM)
    }

    /// The largest message the server accepts (`max_payload`, 1 MiB by default).
    pub fn max_payload(&self) -> usize {
        self.client.server_info().max_payload
    }

    /// The stream's first and last sequence; [`NatsError::NoStream`] when
    /// it does not exist.
    pub fn stream_info(&self) -> Result<StreamInfo, NatsError> {
        self.link.block(
            || format!("reading the info of stream {}", self.url.stream),
            async {
                let stream = self.get_stream().await?;
                let state = &stream.cached_info().state;
                Ok(StreamInfo {
                    first_seq: if state.messages == 0 {
                        0
                    } else {
                        state.first_sequence
                    },
                    last_seq: state.last_sequence,
                    messages: state.messages,
                })
            },
        )
    }

    /// A reader of the URL's subject from stream sequence `start_seq` on
    /// (1 or 0: from the start).
    pub fn reader(&self, start_seq: u64) -> Result<Reader, NatsError> {
        let link = self.link.clone();
        let consumer = self.link.block(
            || format!("creating a consumer on stream {}", self.url.stream),
            async {
                let stream = self.get_stream().await?;
                reader::consumer(&link, &stream, &self.url.subject, start_seq).await
            },
        )?;
        Ok(Reader::new(link, consumer, start_seq.max(1)))
    }

    /// The lease bucket of this stream, created with `ttl` as its `max_age`
    /// when missing; [`NatsError::TtlMismatch`] when it exists with another.
    pub fn leases(&self, ttl: Duration) -> Result<Leases, NatsError> {
        Leases::open(self, ttl)
    }

    /// The checkpoint bucket of this stream, created when missing.
    pub fn checkpoints(&self) -> Result<Checkpoints, NatsError> {
        Checkpoints::open(self)
    }

    async fn get_stream(&self) -> Result<jetstream::stream::Stream, NatsError> {
        use jetstream::context::GetStreamErrorKind;
        self.js
            .get_stream(&self.url.stream)
            .await
            .map_err(|e| match e.kind() {
                GetStreamErrorKind::JetStream(j)
                    if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
                {
                    NatsError::NoStream {
                        stream: self.url.stream.clone(),
                        server: self.link.server.clone(),
                    }
                }
                _ => self.jetstream_error(format!("reading stream {}", self.url.stream), e),
            })
    }

    /// A JetStream request's error; "no responders" means JetStream is off.
    fn jetstream_error(&self, what: String, err: impl Display) -> NatsError {
        let text = err.to_string();
        if text.contains("no responders") {
            NatsError::NoJetStream {
                server: self.link.server.clone(),
            }
        } else {
            self.link.server_error(what, text)
        }
    }
}

impl Drop for Client {
    /// Sends what is buffered before the runtime goes away.
    fn drop(&mut self) {
        let client = self.client.clone();
        let _ = self
            .link
            .rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(1), client.flush()).await });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_connection_names_the_server_and_what_to_do() {
        // Bind and release a port: nothing listens there now.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = NatsUrl::parse(&format!("nats://127.0.0.1:{port}")).unwrap();
        let started = std::time::Instant::now();
        let err = Client::connect(&url, "t1", Timeouts::default())
            .err()
            .expect("nothing listens");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("cannot connect to nats://127.0.0.1:{port}: ")),
            "{text}"
        );
        assert!(text.contains("nats-server -js"), "{text}");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "refused is fast"
        );
    }

    #[test]
    fn an_instance_id_must_be_a_key_token() {
        let url = NatsUrl::parse("nats://127.0.0.1:1").unwrap();
        let err = Client::connect(&url, "a.b", Timeouts::default())
            .err()
            .unwrap();
        assert!(matches!(err, NatsError::InstanceId(_)), "{err}");
    }
}
