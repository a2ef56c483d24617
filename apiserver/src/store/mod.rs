//! The storage contract under the API server: a flat, ordered key space of byte
//! values with a global monotonic revision (which becomes every object's
//! `resourceVersion`), ranged reads at a past revision, compare-and-swap writes on
//! `mod_revision`, watches from a revision, and compaction of history.
//!
//! Two backends implement it: [`embedded::EmbeddedStore`] (redb, the default) and
//! [`etcd::EtcdStore`] (etcd 3.4+). This module knows nothing about Kubernetes
//! objects: keys and values are opaque here.

pub mod embedded;
pub mod etcd;

use std::pin::Pin;

use async_trait::async_trait;
use futures::Stream;

/// One stored key with the revisions that describe its history, as etcd reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// Revision of the write that created the key.
    pub create_revision: i64,
    /// Revision of the last write to the key; the `resourceVersion` of the object.
    pub mod_revision: i64,
}

/// What happened to a key at one revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change seen by a watch. For a `Delete`, `kv.value` is empty, `kv.mod_revision`
/// is the revision of the delete and `prev` holds the last value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub kv: KeyValue,
    pub prev: Option<KeyValue>,
}

impl Event {
    pub fn revision(&self) -> i64 {
        self.kv.mod_revision
    }
}

/// How to read a range of keys.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Read the range as it was at this revision; `None` reads the newest state.
    pub revision: Option<i64>,
    /// Return at most this many keys; `None` or 0 means no limit.
    pub limit: Option<usize>,
    /// Continue after this key (exclusive), for paging.
    pub start_after: Option<String>,
}

/// The result of a ranged read.
#[derive(Debug, Clone, Default)]
pub struct ListResult {
    pub items: Vec<KeyValue>,
    /// The revision the range was read at (for paging, pass it back as `revision`).
    pub revision: i64,
    /// Whether more keys follow the last one returned.
    pub more: bool,
    /// How many keys follow the last one returned, when the backend knows.
    pub remaining: Option<i64>,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    #[error("key {0} not found")]
    NotFound(String),
    #[error("key {0} already exists")]
    AlreadyExists(String),
    /// The compare-and-swap failed: the key moved on since the caller read it.
    /// Carries the key's current state so the caller can report or retry.
    #[error("key {key} was modified: expected revision {expected}, current {}", current.as_ref().map_or(0, |kv| kv.mod_revision))]
    Conflict {
        key: String,
        expected: i64,
        current: Option<KeyValue>,
    },
    /// The requested revision is older than the oldest history kept.
    #[error("required revision {requested} has been compacted (oldest available is {compacted})")]
    Compacted { requested: i64, compacted: i64 },
    /// The requested revision is newer than the store's current revision.
    #[error("revision {requested} is in the future (current {current})")]
    FutureRevision { requested: i64, current: i64 },
    #[error("storage backend: {0}")]
    Backend(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A stream of watch events in revision order. It ends with an error when the
/// watch can no longer continue (for example history was compacted under it).
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<Event>> + Send>>;

/// The storage contract. Every write is one revision; every acknowledged write is
/// durable.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A short name of the backend, for logs and metrics ("embedded", "etcd").
    fn backend(&self) -> &'static str;

    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Keys starting with `prefix`, in key order.
    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult>;

    /// Create `key` if absent; `AlreadyExists` otherwise.
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue>;

    /// Replace `key` if its `mod_revision` is still `expected_revision`.
    async fn update(&self, key: &str, value: Vec<u8>, expected_revision: i64) -> Result<KeyValue>;

    /// Delete `key`, if `expected_revision` is given only while its `mod_revision`
    /// still equals it. Returns the deleted state and the revision of the delete.
    async fn delete(&self, key: &str, expected_revision: Option<i64>) -> Result<(KeyValue, i64)>;

    /// Events for keys starting with `prefix` from `start_revision` (inclusive);
    /// 0 means from the next write on.
    async fn watch(&self, prefix: &str, start_revision: i64) -> Result<WatchStream>;

    /// Forget history before `revision`: reads at older revisions and watches
    /// starting before it fail with `Compacted` afterwards.
    async fn compact(&self, revision: i64) -> Result<()>;

    /// The newest revision.
    async fn current_revision(&self) -> Result<i64>;
}

/// The end of the key range that holds every key starting with `prefix`, as etcd
/// computes it: the prefix with its last byte below 0xff incremented.
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // An empty (or all-0xff) prefix spans the whole key space: etcd spells that "\0".
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_last_byte() {
        assert_eq!(prefix_end("/registry/pods/"), b"/registry/pods0".to_vec());
        assert_eq!(prefix_end(""), vec![0]);
    }
}
