//! The default, single-machine backend: a redb database file with the current
//! state of every key, plus a log of every revision (with the value it replaced)
//! that serves reads at past revisions and watches from a past revision until
//! compaction trims it.
//!
//! Writes go through one writer thread that batches whatever is queued into a
//! single redb transaction (group commit): revisions are assigned in queue
//! order, the batch is made durable with one fsync (redb's
//! `Durability::Immediate`), and only then is each write acknowledged and
//! published to live watchers, in revision order. It owns no notion of objects.

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

/// Most writes committed in one transaction.
const MAX_BATCH: usize = 512;

pub struct EmbeddedStore {
    inner: Arc<Inner>,
    writer: Mutex<Option<std::sync::mpsc::Sender<WriteRequest>>>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

struct Inner {
    db: Database,
    live: broadcast::Sender<Arc<Event>>,
}

fn backend_error(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

/// One queued write.
enum WriteOp {
    Create {
        key: String,
        value: Vec<u8>,
    },
    Update {
        key: String,
        value: Vec<u8>,
        expected: i64,
    },
    Delete {
        key: String,
        expected: Option<i64>,
    },
    Compact {
        revision: i64,
    },
}

struct WriteRequest {
    op: WriteOp,
    reply: tokio::sync::oneshot::Sender<Result<Option<Event>>>,
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
        let inner = Arc::new(Inner { db, live });
        let (writer, queue) = std::sync::mpsc::channel();
        let writer_thread = std::thread::Builder::new()
            .name("berth-store-writer".into())
            .spawn({
                let inner = inner.clone();
                move || inner.write_loop(queue)
            })
            .map_err(backend_error)?;
        Ok(Self {
            inner,
            writer: Mutex::new(Some(writer)),
            writer_thread: Mutex::new(Some(writer_thread)),
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

    /// Queue a write and wait until it is durable (or refused).
    async fn submit(&self, op: WriteOp) -> Result<Option<Event>> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.writer
            .lock()
            .map_err(backend_error)?
            .as_ref()
            .ok_or_else(|| StoreError::Backend("store is closed".into()))?
            .send(WriteRequest { op, reply })
            .map_err(|_| StoreError::Backend("store writer stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Backend("store writer stopped".into()))?
    }
}

impl Drop for EmbeddedStore {
    /// Stop the writer and wait for it, so the database file is released when
    /// the store is dropped (a reopen in the same process then works).
    fn drop(&mut self) {
        if let Ok(mut writer) = self.writer.lock() {
            writer.take();
        }
        if let Ok(mut thread) = self.writer_thread.lock()
            && let Some(thread) = thread.take()
        {
            let _ = thread.join();
        }
    }
}

/// The tables of one write transaction.
struct Tables<'t> {
    kv: redb::Table<'t, &'static str, &'static [u8]>,
    log: redb::Table<'t, u64, &'static [u8]>,
    meta: redb::Table<'t, &'static str, u64>,
}

impl Inner {
    fn write_loop(&self, queue: std::sync::mpsc::Receiver<WriteRequest>) {
        while let Ok(first) = queue.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            let results = self.commit_batch(batch.iter().map(|r| &r.op));
            for (request, result) in batch.into_iter().zip(results) {
                if let Ok(Some(event)) = &result {
                    // No receivers is fine: nobody watches.
                    let _ = self.live.send(Arc::new(event.clone()));
                }
                let _ = request.reply.send(result);
            }
        }
    }

    /// Apply every op in one transaction and commit once; each op succeeds or
    /// fails on its own, but none is acknowledged before the commit is durable.
    fn commit_batch<'a>(
        &self,
        ops: impl ExactSizeIterator<Item = &'a WriteOp>,
    ) -> Vec<Result<Option<Event>>> {
        let count = ops.len();
        let fail_all = |error: StoreError| vec![Err(error); count];
        let txn = match self.db.begin_write() {
            Ok(txn) => txn,
            Err(error) => return fail_all(backend_error(error)),
        };
        let results = {
            let tables = (|| {
                Ok::<_, StoreError>(Tables {
                    kv: txn.open_table(KV).map_err(backend_error)?,
                    log: txn.open_table(LOG).map_err(backend_error)?,
                    meta: txn.open_table(META).map_err(backend_error)?,
                })
            })();
            let mut tables = match tables {
                Ok(tables) => tables,
                Err(error) => return fail_all(error),
            };
            ops.map(|op| apply_op(&mut tables, op)).collect::<Vec<_>>()
        };
        // Durability::Immediate is redb's default: commit returns after fsync.
        match txn.commit() {
            Ok(()) => results,
            Err(error) => fail_all(backend_error(error)),
        }
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

fn meta_get(meta: &redb::Table<'_, &'static str, u64>, name: &str) -> Result<i64> {
    Ok(meta
        .get(name)
        .map_err(backend_error)?
        .map_or(0, |v| v.value()) as i64)
}

/// One write inside a batch's transaction. A refused write (conflict, missing
/// key) changes nothing and takes no revision.
fn apply_op(tables: &mut Tables<'_>, op: &WriteOp) -> Result<Option<Event>> {
    let (key, decision) = match op {
        WriteOp::Compact { revision } => {
            let current = meta_get(&tables.meta, "revision")?;
            let compacted = meta_get(&tables.meta, "compacted")?;
            if *revision > current {
                return Err(StoreError::FutureRevision {
                    requested: *revision,
                    current,
                });
            }
            if *revision <= compacted {
                return Err(StoreError::Compacted {
                    requested: *revision,
                    compacted,
                });
            }
            tables
                .log
                .retain_in(..(*revision as u64), |_, _| false)
                .map_err(backend_error)?;
            tables
                .meta
                .insert("compacted", *revision as u64)
                .map_err(backend_error)?;
            return Ok(None);
        }
        WriteOp::Create { key, .. } | WriteOp::Update { key, .. } | WriteOp::Delete { key, .. } => {
            let current = tables
                .kv
                .get(key.as_str())
                .map_err(backend_error)?
                .map(|v| decode_kv(key, v.value()))
                .transpose()?;
            let decision = match (op, &current) {
                (WriteOp::Create { .. }, Some(_)) => {
                    return Err(StoreError::AlreadyExists(key.clone()));
                }
                (WriteOp::Create { value, .. }, None) => Some(value.clone()),
                (WriteOp::Update { .. } | WriteOp::Delete { .. }, None) => {
                    return Err(StoreError::NotFound(key.clone()));
                }
                (WriteOp::Update { expected, .. }, Some(c))
                | (
                    WriteOp::Delete {
                        expected: Some(expected),
                        ..
                    },
                    Some(c),
                ) if c.mod_revision != *expected => {
                    return Err(StoreError::Conflict {
                        key: key.clone(),
                        expected: *expected,
                        current: Some(c.clone()),
                    });
                }
                (WriteOp::Update { value, .. }, Some(_)) => Some(value.clone()),
                _ => None,
            };
            (key, (current, decision))
        }
    };
    let (current, put) = decision;
    let revision = meta_get(&tables.meta, "revision")? + 1;
    let event = match put {
        Some(value) => {
            let new = KeyValue {
                key: key.clone(),
                value,
                create_revision: current.as_ref().map_or(revision, |c| c.create_revision),
                mod_revision: revision,
            };
            tables
                .kv
                .insert(key.as_str(), encode_kv(&new).as_slice())
                .map_err(backend_error)?;
            Event {
                kind: EventKind::Put,
                kv: new,
                prev: current,
            }
        }
        None => {
            let prev = current.ok_or_else(|| StoreError::NotFound(key.clone()))?;
            tables.kv.remove(key.as_str()).map_err(backend_error)?;
            Event {
                kind: EventKind::Delete,
                kv: KeyValue {
                    key: key.clone(),
                    value: Vec::new(),
                    create_revision: prev.create_revision,
                    mod_revision: revision,
                },
                prev: Some(prev),
            }
        }
    };
    tables
        .log
        .insert(revision as u64, encode_event(&event).as_slice())
        .map_err(backend_error)?;
    tables
        .meta
        .insert("revision", revision as u64)
        .map_err(backend_error)?;
    Ok(Some(event))
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
        let op = WriteOp::Create {
            key: key.to_string(),
            value,
        };
        written(self.submit(op).await?).map(|event| event.kv)
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected_revision: i64) -> Result<KeyValue> {
        let op = WriteOp::Update {
            key: key.to_string(),
            value,
            expected: expected_revision,
        };
        written(self.submit(op).await?).map(|event| event.kv)
    }

    async fn delete(&self, key: &str, expected_revision: Option<i64>) -> Result<(KeyValue, i64)> {
        let op = WriteOp::Delete {
            key: key.to_string(),
            expected: expected_revision,
        };
        let event = written(self.submit(op).await?)?;
        let revision = event.revision();
        let prev = event
            .prev
            .ok_or_else(|| StoreError::Backend("delete without previous value".into()))?;
        Ok((prev, revision))
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
        self.submit(WriteOp::Compact { revision }).await.map(|_| ())
    }

    async fn current_revision(&self) -> Result<i64> {
        self.blocking(|inner| {
            let txn = inner.db.begin_read().map_err(backend_error)?;
            Ok(inner.meta_value(&txn, "revision")? as i64)
        })
        .await
    }
}

/// A key write always yields an event; only compaction yields none.
fn written(event: Option<Event>) -> Result<Event> {
    event.ok_or_else(|| StoreError::Backend("write produced no event".into()))
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
