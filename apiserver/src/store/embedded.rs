//! The default, single-machine backend: a redb database file with the current
//! state of every key, plus a log of every revision (with the value it replaced)
//! that serves reads at past revisions and watches from a past revision until
//! compaction trims it.
//!
//! Writes are serialised through one lock so that revisions are assigned, made
//! durable (redb's `Durability::Immediate`: fsync before commit returns) and
//! published to live watchers in the same order. It owns no notion of objects.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::{
    Event, EventKind, KeyValue, ListOptions, ListResult, Result, Store, StoreError, WatchStream,
};

/// key -> [create_revision i64][mod_revision i64][value]
const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
/// revision -> encoded [`Event`]
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// "revision" (newest), "compacted" (history before it is gone: reads at it and
/// watches from it still work, as in etcd)
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

const LIVE_EVENT_BUFFER: usize = 4096;
const WATCH_CHANNEL: usize = 1024;

pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    /// Held across a write transaction and its publication, so revisions reach
    /// watchers in order.
    write_lock: Mutex<()>,
    live: broadcast::Sender<Arc<Event>>,
}

fn backend_error(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

impl EmbeddedStore {
    /// Open (or create) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(backend_error)?;
        }
        let db = Database::create(path).map_err(backend_error)?;
        let txn = db.begin_write().map_err(backend_error)?;
        {
            txn.open_table(KV).map_err(backend_error)?;
            txn.open_table(LOG).map_err(backend_error)?;
            txn.open_table(META).map_err(backend_error)?;
        }
        txn.commit().map_err(backend_error)?;
        let (live, _) = broadcast::channel(LIVE_EVENT_BUFFER);
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                write_lock: Mutex::new(()),
                live,
            }),
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(backend_error)?
    }
}

/// The outcome a write closure decides, given the key's current state.
enum WriteDecision {
    Put(Vec<u8>),
    Delete,
}

impl Inner {
    /// One write transaction on one key: `decide` sees the current state and either
    /// refuses (error) or says what to write; the change is committed durably,
    /// logged and published under the write lock.
    fn write(
        &self,
        key: &str,
        decide: impl FnOnce(Option<&KeyValue>) -> Result<WriteDecision>,
    ) -> Result<Event> {
        let _guard = self.write_lock.lock().map_err(backend_error)?;
        let txn = self.db.begin_write().map_err(backend_error)?;
        let event = {
            let mut kv = txn.open_table(KV).map_err(backend_error)?;
            let mut log = txn.open_table(LOG).map_err(backend_error)?;
            let mut meta = txn.open_table(META).map_err(backend_error)?;
            let current = kv
                .get(key)
                .map_err(backend_error)?
                .map(|v| decode_kv(key, v.value()))
                .transpose()?;
            let decision = decide(current.as_ref())?;
            let revision = meta
                .get("revision")
                .map_err(backend_error)?
                .map_or(0, |v| v.value())
                + 1;
            let rev = revision as i64;
            let event = match decision {
                WriteDecision::Put(value) => {
                    let create_revision = current.as_ref().map_or(rev, |c| c.create_revision);
                    let new = KeyValue {
                        key: key.to_string(),
                        value,
                        create_revision,
                        mod_revision: rev,
                    };
                    kv.insert(key, encode_kv(&new).as_slice())
                        .map_err(backend_error)?;
                    Event {
                        kind: EventKind::Put,
                        kv: new,
                        prev: current,
                    }
                }
                WriteDecision::Delete => {
                    let Some(prev) = current else {
                        return Err(StoreError::NotFound(key.to_string()));
                    };
                    kv.remove(key).map_err(backend_error)?;
                    Event {
                        kind: EventKind::Delete,
                        kv: KeyValue {
                            key: key.to_string(),
                            value: Vec::new(),
                            create_revision: prev.create_revision,
                            mod_revision: rev,
                        },
                        prev: Some(prev),
                    }
                }
            };
            log.insert(revision, encode_event(&event).as_slice())
                .map_err(backend_error)?;
            meta.insert("revision", revision).map_err(backend_error)?;
            event
        };
        // Durability::Immediate is redb's default: commit returns after fsync.
        txn.commit().map_err(backend_error)?;
        // No receivers is fine: nobody watches.
        let _ = self.live.send(Arc::new(event.clone()));
        Ok(event)
    }

    fn meta_value(&self, txn: &redb::ReadTransaction, name: &str) -> Result<u64> {
        let meta = txn.open_table(META).map_err(backend_error)?;
        Ok(meta
            .get(name)
            .map_err(backend_error)?
            .map_or(0, |v| v.value()))
    }

    fn list(&self, prefix: &str, options: &ListOptions) -> Result<ListResult> {
        let txn = self.db.begin_read().map_err(backend_error)?;
        let current = self.meta_value(&txn, "revision")? as i64;
        let compacted = self.meta_value(&txn, "compacted")? as i64;
        let revision = match options.revision {
            None | Some(0) => current,
            Some(r) if r > current => {
                return Err(StoreError::FutureRevision {
                    requested: r,
                    current,
                });
            }
            Some(r) if r < compacted => {
                return Err(StoreError::Compacted {
                    requested: r,
                    compacted,
                });
            }
            Some(r) => r,
        };
        let kv = txn.open_table(KV).map_err(backend_error)?;
        let start = options.start_after.as_deref().unwrap_or(prefix);
        // Keys whose state at `revision` differs from now: the first logged change
        // after `revision` holds what the key was then (its `prev`).
        let mut past: BTreeMap<String, Option<KeyValue>> = BTreeMap::new();
        if revision < current {
            let log = txn.open_table(LOG).map_err(backend_error)?;
            for entry in log
                .range((revision as u64 + 1)..=(current as u64))
                .map_err(backend_error)?
            {
                let (_, value) = entry.map_err(backend_error)?;
                let event = decode_event(value.value())?;
                if event.kv.key.starts_with(prefix) && !past.contains_key(&event.kv.key) {
                    past.insert(event.kv.key.clone(), event.prev);
                }
            }
        }
        let limit = options.limit.filter(|l| *l > 0);
        let mut items = Vec::new();
        let mut remaining = 0i64;
        let mut now_keys = kv.range(start..).map_err(backend_error)?;
        let mut past_keys = past
            .range::<str, _>((std::ops::Bound::Excluded(start), std::ops::Bound::Unbounded))
            .peekable();
        let mut next_now = next_in_prefix(&mut now_keys, prefix, options.start_after.as_deref())?;
        loop {
            // Merge the two ordered sources: the current table and the past overlay.
            let take_past = match (&next_now, past_keys.peek()) {
                (None, None) => break,
                (None, Some(_)) => true,
                (Some(_), None) => false,
                (Some(now), Some((past_key, _))) => past_key.as_str() <= now.key.as_str(),
            };
            let candidate = if take_past {
                let (past_key, past_value) = past_keys.next().expect("peeked");
                if next_now.as_ref().is_some_and(|n| &n.key == past_key) {
                    next_now =
                        next_in_prefix(&mut now_keys, prefix, options.start_after.as_deref())?;
                }
                past_value.clone()
            } else {
                let now = next_now.take();
                next_now = next_in_prefix(&mut now_keys, prefix, options.start_after.as_deref())?;
                now
            };
            let Some(item) = candidate else { continue };
            if !item.key.starts_with(prefix) {
                continue;
            }
            if limit.is_some_and(|l| items.len() >= l) {
                remaining += 1;
            } else {
                items.push(item);
            }
        }
        Ok(ListResult {
            items,
            revision,
            more: remaining > 0,
            remaining: Some(remaining),
        })
    }

    /// Logged events from `from` (inclusive) to the newest, for keys under `prefix`.
    fn log_since(&self, prefix: &str, from: i64) -> Result<(Vec<Event>, i64)> {
        let txn = self.db.begin_read().map_err(backend_error)?;
        let current = self.meta_value(&txn, "revision")? as i64;
        let compacted = self.meta_value(&txn, "compacted")? as i64;
        if from < compacted {
            return Err(StoreError::Compacted {
                requested: from,
                compacted,
            });
        }
        let log = txn.open_table(LOG).map_err(backend_error)?;
        let mut events = Vec::new();
        for entry in log.range(from as u64..).map_err(backend_error)? {
            let (_, value) = entry.map_err(backend_error)?;
            let event = decode_event(value.value())?;
            if event.kv.key.starts_with(prefix) {
                events.push(event);
            }
        }
        Ok((events, current))
    }
}

/// The next current key under `prefix` strictly after `after`.
fn next_in_prefix(
    range: &mut redb::Range<'_, &'static str, &'static [u8]>,
    prefix: &str,
    after: Option<&str>,
) -> Result<Option<KeyValue>> {
    for entry in range.by_ref() {
        let (key, value) = entry.map_err(backend_error)?;
        let key = key.value();
        if after == Some(key) {
            continue;
        }
        if !key.starts_with(prefix) {
            return Ok(None);
        }
        return decode_kv(key, value.value()).map(Some);
    }
    Ok(None)
}

#[async_trait]
impl Store for EmbeddedStore {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_string();
        self.blocking(move |inner| {
            let txn = inner.db.begin_read().map_err(backend_error)?;
            let kv = txn.open_table(KV).map_err(backend_error)?;
            kv.get(key.as_str())
                .map_err(backend_error)?
                .map(|v| decode_kv(&key, v.value()))
                .transpose()
        })
        .await
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult> {
        let prefix = prefix.to_string();
        self.blocking(move |inner| inner.list(&prefix, &options))
            .await
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        let key = key.to_string();
        self.blocking(move |inner| {
            inner
                .write(&key, |current| match current {
                    Some(_) => Err(StoreError::AlreadyExists(key.clone())),
                    None => Ok(WriteDecision::Put(value)),
                })
                .map(|event| event.kv)
        })
        .await
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected_revision: i64) -> Result<KeyValue> {
        let key = key.to_string();
        self.blocking(move |inner| {
            inner
                .write(&key, |current| match current {
                    None => Err(StoreError::NotFound(key.clone())),
                    Some(c) if c.mod_revision != expected_revision => Err(StoreError::Conflict {
                        key: key.clone(),
                        expected: expected_revision,
                        current: Some(c.clone()),
                    }),
                    Some(_) => Ok(WriteDecision::Put(value)),
                })
                .map(|event| event.kv)
        })
        .await
    }

    async fn delete(&self, key: &str, expected_revision: Option<i64>) -> Result<(KeyValue, i64)> {
        let key = key.to_string();
        self.blocking(move |inner| {
            let event = inner.write(&key, |current| match (current, expected_revision) {
                (None, _) => Err(StoreError::NotFound(key.clone())),
                (Some(c), Some(expected)) if c.mod_revision != expected => {
                    Err(StoreError::Conflict {
                        key: key.clone(),
                        expected,
                        current: Some(c.clone()),
                    })
                }
                (Some(_), _) => Ok(WriteDecision::Delete),
            })?;
            let revision = event.revision();
            Ok((event.prev.expect("delete carries prev"), revision))
        })
        .await
    }

    async fn watch(&self, prefix: &str, start_revision: i64) -> Result<WatchStream> {
        // Subscribe before reading the log so nothing falls between the two.
        let mut live = self.inner.live.subscribe();
        let inner = self.inner.clone();
        let prefix = prefix.to_string();
        let mut next = if start_revision > 0 {
            start_revision
        } else {
            let txn = inner.db.begin_read().map_err(backend_error)?;
            inner.meta_value(&txn, "revision")? as i64 + 1
        };
        // Fail fast on a compacted start, so the caller gets an error, not a stream.
        {
            let txn = inner.db.begin_read().map_err(backend_error)?;
            let compacted = inner.meta_value(&txn, "compacted")? as i64;
            if next < compacted {
                return Err(StoreError::Compacted {
                    requested: next,
                    compacted,
                });
            }
        }
        let (tx, rx) = mpsc::channel(WATCH_CHANNEL);
        tokio::spawn(async move {
            loop {
                // Catch up from the log, then follow live events; a gap (a lagging
                // receiver) sends us back to the log.
                let catch_up = {
                    let inner = inner.clone();
                    let prefix = prefix.clone();
                    tokio::task::spawn_blocking(move || inner.log_since(&prefix, next)).await
                };
                let (events, current) = match catch_up {
                    Ok(Ok(found)) => found,
                    Ok(Err(error)) => {
                        let _ = tx.send(Err(error)).await;
                        return;
                    }
                    Err(error) => {
                        let _ = tx.send(Err(backend_error(error))).await;
                        return;
                    }
                };
                for event in events {
                    if tx.send(Ok(event)).await.is_err() {
                        return;
                    }
                }
                next = next.max(current + 1);
                loop {
                    match live.recv().await {
                        Ok(event) => {
                            let revision = event.revision();
                            if revision < next {
                                continue;
                            }
                            if revision > next {
                                break; // missed some: back to the log
                            }
                            next = revision + 1;
                            if event.kv.key.starts_with(&prefix)
                                && tx.send(Ok((*event).clone())).await.is_err()
                            {
                                return;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => break,
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
            }
        });
        Ok(Box::pin(ReceiverStream::new(rx)))
    }

    async fn compact(&self, revision: i64) -> Result<()> {
        self.blocking(move |inner| {
            let _guard = inner.write_lock.lock().map_err(backend_error)?;
            let txn = inner.db.begin_write().map_err(backend_error)?;
            {
                let mut meta = txn.open_table(META).map_err(backend_error)?;
                let current = meta
                    .get("revision")
                    .map_err(backend_error)?
                    .map_or(0, |v| v.value()) as i64;
                let compacted = meta
                    .get("compacted")
                    .map_err(backend_error)?
                    .map_or(0, |v| v.value()) as i64;
                if revision > current {
                    return Err(StoreError::FutureRevision {
                        requested: revision,
                        current,
                    });
                }
                if revision <= compacted {
                    return Err(StoreError::Compacted {
                        requested: revision,
                        compacted,
                    });
                }
                let mut log = txn.open_table(LOG).map_err(backend_error)?;
                log.retain_in(..(revision as u64), |_, _| false)
                    .map_err(backend_error)?;
                meta.insert("compacted", revision as u64)
                    .map_err(backend_error)?;
            }
            txn.commit().map_err(backend_error)
        })
        .await
    }

    async fn current_revision(&self) -> Result<i64> {
        self.blocking(|inner| {
            let txn = inner.db.begin_read().map_err(backend_error)?;
            Ok(inner.meta_value(&txn, "revision")? as i64)
        })
        .await
    }
}

fn encode_kv(kv: &KeyValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + kv.value.len());
    out.extend_from_slice(&kv.create_revision.to_le_bytes());
    out.extend_from_slice(&kv.mod_revision.to_le_bytes());
    out.extend_from_slice(&kv.value);
    out
}

fn decode_kv(key: &str, bytes: &[u8]) -> Result<KeyValue> {
    let mut reader = Reader(bytes);
    let create_revision = reader.i64()?;
    let mod_revision = reader.i64()?;
    Ok(KeyValue {
        key: key.to_string(),
        value: reader.0.to_vec(),
        create_revision,
        mod_revision,
    })
}

/// [kind u8][key len u32][key][create i64][mod i64][value len u32][value]
/// [has prev u8]([create i64][mod i64][value len u32][value])
fn encode_event(event: &Event) -> Vec<u8> {
    let mut out = Vec::new();
    out.push(match event.kind {
        EventKind::Put => 0,
        EventKind::Delete => 1,
    });
    let put_bytes = |out: &mut Vec<u8>, bytes: &[u8]| {
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    };
    put_bytes(&mut out, event.kv.key.as_bytes());
    out.extend_from_slice(&event.kv.create_revision.to_le_bytes());
    out.extend_from_slice(&event.kv.mod_revision.to_le_bytes());
    put_bytes(&mut out, &event.kv.value);
    match &event.prev {
        None => out.push(0),
        Some(prev) => {
            out.push(1);
            out.extend_from_slice(&prev.create_revision.to_le_bytes());
            out.extend_from_slice(&prev.mod_revision.to_le_bytes());
            put_bytes(&mut out, &prev.value);
        }
    }
    out
}

fn decode_event(bytes: &[u8]) -> Result<Event> {
    let mut reader = Reader(bytes);
    let kind = match reader.u8()? {
        0 => EventKind::Put,
        1 => EventKind::Delete,
        other => return Err(StoreError::Backend(format!("corrupt log: kind {other}"))),
    };
    let key = String::from_utf8(reader.bytes()?.to_vec()).map_err(backend_error)?;
    let create_revision = reader.i64()?;
    let mod_revision = reader.i64()?;
    let value = reader.bytes()?.to_vec();
    let prev = match reader.u8()? {
        0 => None,
        _ => {
            let create_revision = reader.i64()?;
            let mod_revision = reader.i64()?;
            Some(KeyValue {
                key: key.clone(),
                value: reader.bytes()?.to_vec(),
                create_revision,
                mod_revision,
            })
        }
    };
    Ok(Event {
        kind,
        kv: KeyValue {
            key,
            value,
            create_revision,
            mod_revision,
        },
        prev,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(StoreError::Backend("corrupt record: truncated".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(
            self.take(8)?.try_into().map_err(backend_error)?,
        ))
    }
    fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().map_err(backend_error)?);
        self.take(len as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_encoding_round_trips() {
        let event = Event {
            kind: EventKind::Delete,
            kv: KeyValue {
                key: "/registry/pods/default/web".into(),
                value: vec![],
                create_revision: 3,
                mod_revision: 9,
            },
            prev: Some(KeyValue {
                key: "/registry/pods/default/web".into(),
                value: b"{}".to_vec(),
                create_revision: 3,
                mod_revision: 7,
            }),
        };
        assert_eq!(decode_event(&encode_event(&event)).unwrap(), event);
    }

    #[test]
    fn truncated_record_is_an_error_not_a_panic() {
        assert!(decode_event(&[0, 9, 0]).is_err());
        assert!(decode_kv("k", &[1, 2]).is_err());
    }
}
