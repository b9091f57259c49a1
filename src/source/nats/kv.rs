//! Leases, members and checkpoints in JetStream key-value buckets.
//!
//! Every write that decides ownership is revision-checked by the server:
//! a claim creates the key (it fails while another holder's key lives), a
//! renewal or a checkpoint save updates it only at the revision the writer
//! last saw, so an instance that was paused while its lease expired and
//! was taken over gets [`NatsError::Conflict`] instead of overwriting the
//! new owner's state.
//!
//! Bucket `mmon-leases-<STREAM>` (history 1, `max_age` = the lease TTL):
//! - `partition.<N>`: the instance id holding partition N; a key not
//!   renewed within the TTL is removed by the server, which is how a dead
//!   instance's lease expires. The TTL is a property of the bucket, fixed
//!   when it is created: every instance must ask for the same one. Renew
//!   every TTL/3.
//! - `member.<ID>`: a live instance, announced again every TTL/3; the live
//!   members decide each one's fair share ([`fair_share`]).
//!
//! Bucket `mmon-checkpoints-<STREAM>` (history 1, no TTL):
//! - `partition.<N>`: the partition's checkpoint, gzip-compressed (the
//!   caller's bytes are opaque here). A compressed checkpoint over the
//!   server's `max_payload` is refused with [`NatsError::TooLarge`].

use std::io::{Read, Write};
use std::time::Duration;

use async_nats::jetstream::kv::{CreateErrorKind, Operation, Store, UpdateErrorKind};
use async_nats::jetstream::stream;
use futures_util::StreamExt;

use super::{Client, HEADER_ROOM, Link, NatsError};

/// A lease held by this instance: renew and release it with this value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub partition: u32,
    /// The key's revision after this instance's last write.
    pub revision: u64,
}

/// Who holds a partition now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub partition: u32,
    pub instance: String,
    pub revision: u64,
}

/// A checkpoint as stored, and the revision to save the next one at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub bytes: Vec<u8>,
    pub revision: u64,
}

/// The share of `partitions` that `me` should hold among the live
/// `members` (`me` counted even if not listed yet): members sorted by id,
/// the first `partitions % count` take one more than the others, so the
/// shares are the floor or the ceiling of `partitions / count` and add up
/// to `partitions`.
pub fn fair_share(partitions: u32, members: &[String], me: &str) -> u32 {
    let mut all: Vec<&str> = members.iter().map(String::as_str).collect();
    if !all.contains(&me) {
        all.push(me);
    }
    all.sort_unstable();
    all.dedup();
    let count = all.len() as u32;
    let index = all.iter().position(|m| *m == me).unwrap_or(0) as u32;
    partitions / count + u32::from(index < partitions % count)
}

fn partition_key(partition: u32) -> String {
    format!("partition.{partition}")
}

/// What a bucket is made of: `KV_<name>` with the stream settings that
/// async-nats' own `create_key_value` uses. Made by hand because that call
/// first reads the account info in a shape nats-server 2.9 does not send.
struct Bucket {
    name: String,
    description: &'static str,
    max_age: Duration,
}

/// Opens the bucket, creating it when missing; another instance creating
/// it at the same moment is fine.
async fn open_bucket(client: &Client, bucket: Bucket) -> Result<Store, NatsError> {
    if let Ok(store) = client.js.get_key_value(&bucket.name).await {
        return Ok(store);
    }
    let config = stream::Config {
        name: format!("KV_{}", bucket.name),
        description: Some(bucket.description.to_string()),
        subjects: vec![format!("$KV.{}.>", bucket.name)],
        max_messages_per_subject: 1,
        max_age: bucket.max_age,
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        num_replicas: 1,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    };
    let created = client.js.create_stream(config).await;
    client.js.get_key_value(&bucket.name).await.map_err(|e| {
        let what = format!("creating bucket {}", bucket.name);
        match created {
            Err(create) => client.jetstream_error(what, create),
            Ok(_) => client.jetstream_error(what, e),
        }
    })
}

/// The lease bucket of one stream, for one instance.
pub struct Leases {
    link: Link,
    store: Store,
    bucket: String,
    instance: String,
    partitions: u32,
    ttl: Duration,
}

impl Leases {
    pub(super) fn open(client: &Client, ttl: Duration) -> Result<Leases, NatsError> {
        let bucket = format!("mmon-leases-{}", client.url.stream);
        let config = Bucket {
            name: bucket.clone(),
            description: "mmon: partition leases and live members",
            max_age: ttl,
        };
        let link = &client.link;
        let store = link.block(|| format!("opening bucket {bucket}"), async {
            let store = open_bucket(client, config).await?;
            let existing = store
                .status()
                .await
                .map_err(|e| link.server_error(format!("reading bucket {bucket}"), e))?
                .max_age();
            if existing != ttl {
                return Err(NatsError::TtlMismatch {
                    bucket: bucket.clone(),
                    existing,
                    wanted: ttl,
                });
            }
            Ok(store)
        })?;
        Ok(Leases {
            link: link.clone(),
            store,
            bucket,
            instance: client.instance.clone(),
            partitions: client.url.partitions,
            ttl,
        })
    }

    /// The TTL of a lease and of a member's announcement (the bucket's `max_age`).
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Claims `partition` for this instance: [`NatsError::Held`] while
    /// another live key holds it (this instance's own included: renew that).
    pub fn claim(&self, partition: u32) -> Result<Lease, NatsError> {
        let key = partition_key(partition);
        self.link
            .block(|| format!("claiming {}/{key}", self.bucket), async {
                match self.store.create(&key, self.instance.clone().into()).await {
                    Ok(revision) => Ok(Lease {
                        partition,
                        revision,
                    }),
                    Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {
                        let holder = self.entry_holder(partition).await?;
                        Err(NatsError::Held {
                            partition,
                            holder: holder
                                .as_ref()
                                .map_or_else(|| "an instance".to_string(), |h| h.instance.clone()),
                            revision: holder.map_or(0, |h| h.revision),
                        })
                    }
                    Err(e) => Err(self
                        .link
                        .server_error(format!("claiming {}/{key}", self.bucket), e)),
                }
            })
    }

    /// Renews a lease this instance holds, restarting its TTL (take the
    /// lease's new deadline as `Instant::now()` before the call plus the
    /// TTL: past it, another instance may own the partition, so stop
    /// emitting for it):
    /// [`NatsError::Conflict`] when the key changed since (it expired and
    /// was claimed by another instance, or was released): stop emitting
    /// for the partition and drop it.
    pub fn renew(&self, lease: &Lease) -> Result<Lease, NatsError> {
        let key = partition_key(lease.partition);
        self.link
            .block(|| format!("renewing {}/{key}", self.bucket), async {
                let written = self
                    .store
                    .update(&key, self.instance.clone().into(), lease.revision)
                    .await;
                self.checked("renewing", &key, lease.revision, written)
                    .map(|revision| Lease {
                        partition: lease.partition,
                        revision,
                    })
            })
    }

    /// Hands a lease back (after the partition's last checkpoint), so
    /// another instance can claim it at once; [`NatsError::Conflict`] when
    /// it was no longer this instance's.
    pub fn release(&self, lease: Lease) -> Result<(), NatsError> {
        let key = partition_key(lease.partition);
        self.link
            .block(|| format!("releasing {}/{key}", self.bucket), async {
                let deleted = self
                    .store
                    .delete_expect_revision(&key, Some(lease.revision))
                    .await;
                self.checked("releasing", &key, lease.revision, deleted)
            })
    }

    /// A write checked against `expected`: [`NatsError::Conflict`] when the
    /// key has another revision, else the server's error for `doing` it.
    fn checked<T>(
        &self,
        doing: &str,
        key: &str,
        expected: u64,
        written: Result<T, async_nats::jetstream::kv::UpdateError>,
    ) -> Result<T, NatsError> {
        written.map_err(|e| {
            if e.kind() == UpdateErrorKind::WrongLastRevision {
                NatsError::Conflict {
                    bucket: self.bucket.clone(),
                    key: key.to_string(),
                    expected: Some(expected),
                }
            } else {
                self.link
                    .server_error(format!("{doing} {}/{key}", self.bucket), e)
            }
        })
    }

    /// The holder of every leased partition, in partition order.
    pub fn holders(&self) -> Result<Vec<Holder>, NatsError> {
        self.link.block(
            || format!("listing the holders in {}", self.bucket),
            async {
                let mut out = Vec::new();
                for partition in 0..self.partitions {
                    if let Some(h) = self.entry_holder(partition).await? {
                        out.push(h);
                    }
                }
                Ok(out)
            },
        )
    }

    async fn entry_holder(&self, partition: u32) -> Result<Option<Holder>, NatsError> {
        let key = partition_key(partition);
        let entry = self.store.entry(&key).await.map_err(|e| {
            self.link
                .server_error(format!("reading {}/{key}", self.bucket), e)
        })?;
        Ok(entry
            .filter(|e| e.operation == Operation::Put)
            .map(|e| Holder {
                partition,
                instance: String::from_utf8_lossy(&e.value).into_owned(),
                revision: e.revision,
            }))
    }

    /// Announces this instance as a live member for one TTL; repeat every
    /// TTL/3.
    pub fn announce(&self) -> Result<(), NatsError> {
        let key = format!("member.{}", self.instance);
        self.link
            .block(|| format!("announcing {}/{key}", self.bucket), async {
                self.store
                    .put(&key, self.instance.clone().into())
                    .await
                    .map(drop)
                    .map_err(|e| {
                        self.link
                            .server_error(format!("writing {}/{key}", self.bucket), e)
                    })
            })
    }

    /// Withdraws this instance's announcement (a graceful exit), so the
    /// others rebalance without waiting for the TTL.
    pub fn withdraw(&self) -> Result<(), NatsError> {
        let key = format!("member.{}", self.instance);
        self.link
            .block(|| format!("withdrawing {}/{key}", self.bucket), async {
                self.store.delete(&key).await.map_err(|e| {
                    self.link
                        .server_error(format!("deleting {}/{key}", self.bucket), e)
                })
            })
    }

    /// The ids of the live members, sorted.
    pub fn members(&self) -> Result<Vec<String>, NatsError> {
        self.link.block(
            || format!("listing the members in {}", self.bucket),
            async {
                let what = || format!("listing the keys of {}", self.bucket);
                let mut keys = self
                    .store
                    .keys()
                    .await
                    .map_err(|e| self.link.server_error(what(), e))?;
                let mut out = Vec::new();
                while let Some(key) = keys.next().await {
                    let key = key.map_err(|e| self.link.server_error(what(), e))?;
                    if let Some(id) = key.strip_prefix("member.") {
                        out.push(id.to_string());
                    }
                }
                out.sort();
                Ok(out)
            },
        )
    }
}

/// The checkpoint bucket of one stream.
pub struct Checkpoints {
    link: Link,
    store: Store,
    bucket: String,
    max_payload: usize,
}

impl Checkpoints {
    pub(super) fn open(client: &Client) -> Result<Checkpoints, NatsError> {
        let bucket = format!("mmon-checkpoints-{}", client.url.stream);
        let config = Bucket {
            name: bucket.clone(),
            description: "mmon: per-partition checkpoints",
            max_age: Duration::ZERO,
        };
        let store = client.link.block(
            || format!("opening bucket {bucket}"),
            open_bucket(client, config),
        )?;
        Ok(Checkpoints {
            link: client.link.clone(),
            store,
            bucket,
            max_payload: client.max_payload(),
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The partition's checkpoint and its revision; `None` when there is none.
    pub fn load(&self, partition: u32) -> Result<Option<Stored>, NatsError> {
        let key = partition_key(partition);
        let entry = self
            .link
            .block(|| format!("reading {}/{key}", self.bucket), async {
                self.store.entry(&key).await.map_err(|e| {
                    self.link
                        .server_error(format!("reading {}/{key}", self.bucket), e)
                })
            })?;
        let Some(entry) = entry.filter(|e| e.operation == Operation::Put) else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(&entry.value[..])
            .read_to_end(&mut bytes)
            .map_err(|e| NatsError::Corrupt {
                bucket: self.bucket.clone(),
                key,
                revision: entry.revision,
                reason: e.to_string(),
            })?;
        Ok(Some(Stored {
            bytes,
            revision: entry.revision,
        }))
    }

    /// Saves the partition's checkpoint: created when `expected` is `None`,
    /// else written only over revision `expected`. Returns the new revision
    /// (pass it to the next save); [`NatsError::Conflict`] when another
    /// instance wrote since, [`NatsError::TooLarge`] when the compressed
    /// bytes exceed the server's `max_payload`.
    pub fn save(
        &self,
        partition: u32,
        bytes: &[u8],
        expected: Option<u64>,
    ) -> Result<u64, NatsError> {
        let key = partition_key(partition);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let compressed = gz
            .write_all(bytes)
            .and_then(|()| gz.finish())
            .map_err(|e| self.link.server_error("compressing a checkpoint", e))?;
        let max = self.max_payload.saturating_sub(HEADER_ROOM);
        if compressed.len() > max {
            return Err(NatsError::TooLarge {
                partition,
                size: compressed.len(),
                max,
            });
        }
        let conflict = || NatsError::Conflict {
            bucket: self.bucket.clone(),
            key: key.clone(),
            expected,
        };
        self.link
            .block(|| format!("writing {}/{key}", self.bucket), async {
                let value = bytes::Bytes::from(compressed);
                match expected {
                    None => match self.store.create(&key, value).await {
                        Ok(revision) => Ok(revision),
                        Err(e) if e.kind() == CreateErrorKind::AlreadyExists => Err(conflict()),
                        Err(e) => Err(self
                            .link
                            .server_error(format!("writing {}/{key}", self.bucket), e)),
                    },
                    Some(revision) => match self.store.update(&key, value, revision).await {
                        Ok(revision) => Ok(revision),
                        Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => Err(conflict()),
                        Err(e) => Err(self
                            .link
                            .server_error(format!("writing {}/{key}", self.bucket), e)),
                    },
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn fair_shares_are_floor_or_ceiling_and_add_up() {
        let members = ids(&["c", "a", "b"]);
        let shares: Vec<u32> = ["a", "b", "c"]
            .iter()
            .map(|m| fair_share(8, &members, m))
            .collect();
        assert_eq!(shares, vec![3, 3, 2]);
        assert_eq!(fair_share(8, &[], "solo"), 8);
        // An instance not yet listed counts itself.
        assert_eq!(fair_share(4, &ids(&["a"]), "b"), 2);
        assert_eq!(fair_share(1, &ids(&["a", "b"]), "b"), 0);
    }
}
