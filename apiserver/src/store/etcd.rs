//! The etcd backend (etcd 3.4+), for clusters that outgrow one machine. Each
//! operation maps onto one etcd request: compare-and-swap through a transaction
//! on `mod_revision` (or `create_revision == 0` for create), ranged reads with
//! `revision` and `limit`, watches with `start_revision` and `prev_kv`. etcd's
//! revision is the store revision as is.

use async_trait::async_trait;
use etcd_client::{
    Client, Compare, CompareOp, GetOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{
    Event, EventKind, KeyValue, ListOptions, ListResult, Result, Store, StoreError, WatchStream,
    prefix_end,
};

pub struct EtcdStore {
    client: Client,
}

fn backend_error(error: etcd_client::Error) -> StoreError {
    let text = error.to_string();
    if text.contains("required revision has been compacted") {
        return StoreError::Compacted {
            requested: 0,
            compacted: 0,
        };
    }
    if text.contains("future revision") {
        return StoreError::FutureRevision {
            requested: 0,
            current: 0,
        };
    }
    StoreError::Backend(text)
}

fn convert(kv: &etcd_client::KeyValue) -> Result<KeyValue> {
    Ok(KeyValue {
        key: kv
            .key_str()
            .map_err(|e| StoreError::Backend(format!("non-UTF-8 key: {e}")))?
            .to_string(),
        value: kv.value().to_vec(),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    })
}

impl EtcdStore {
    /// Connect to the given endpoints (`http://127.0.0.1:2379`, ...).
    pub async fn connect(endpoints: &[String]) -> Result<Self> {
        let options = etcd_client::ConnectOptions::new()
            .with_connect_timeout(std::time::Duration::from_secs(5))
            .with_timeout(std::time::Duration::from_secs(30));
        let client = Client::connect(endpoints, Some(options))
            .await
            .map_err(backend_error)?;
        let store = Self { client };
        // Fail at start-up, not on the first request, when etcd is unreachable.
        store.current_revision().await?;
        Ok(store)
    }

    /// A failed compare-and-swap: find out whether the key is gone or moved on.
    async fn explain_failed_compare(&self, key: &str, expected: i64) -> StoreError {
        match self.get(key).await {
            Ok(None) => StoreError::NotFound(key.to_string()),
            Ok(Some(current)) => StoreError::Conflict {
                key: key.to_string(),
                expected,
                current: Some(current),
            },
            Err(error) => error,
        }
    }
}

fn put_revision(response: &etcd_client::TxnResponse) -> i64 {
    response.header().map_or(0, |h| h.revision())
}

#[async_trait]
impl Store for EtcdStore {
    fn backend(&self) -> &'static str {
        "etcd"
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let response = self
            .client
            .kv_client()
            .get(key, None)
            .await
            .map_err(backend_error)?;
        response.kvs().first().map(convert).transpose()
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult> {
        let mut start = options
            .start_after
            .clone()
            .map(|k| {
                let mut bytes = k.into_bytes();
                bytes.push(0);
                bytes
            })
            .unwrap_or_else(|| prefix.as_bytes().to_vec());
        if start.as_slice() < prefix.as_bytes() {
            start = prefix.as_bytes().to_vec();
        }
        let mut get = GetOptions::new().with_range(prefix_end(prefix));
        if let Some(revision) = options.revision.filter(|r| *r > 0) {
            get = get.with_revision(revision);
        }
        if let Some(limit) = options.limit.filter(|l| *l > 0) {
            get = get.with_limit(limit as i64);
        }
        let response = self
            .client
            .kv_client()
            .get(start, Some(get))
            .await
            .map_err(|e| match backend_error(e) {
                StoreError::Compacted { .. } => StoreError::Compacted {
                    requested: options.revision.unwrap_or(0),
                    compacted: 0,
                },
                StoreError::FutureRevision { .. } => StoreError::FutureRevision {
                    requested: options.revision.unwrap_or(0),
                    current: 0,
                },
                other => other,
            })?;
        let items = response
            .kvs()
            .iter()
            .map(convert)
            .collect::<Result<Vec<_>>>()?;
        let revision = options
            .revision
            .filter(|r| *r > 0)
            .unwrap_or_else(|| response.header().map_or(0, |h| h.revision()));
        let remaining = response.count() - items.len() as i64;
        Ok(ListResult {
            items,
            revision,
            more: response.more(),
            remaining: Some(remaining.max(0)),
        })
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value.clone(), None)]);
        let response = self
            .client
            .kv_client()
            .txn(txn)
            .await
            .map_err(backend_error)?;
        if !response.succeeded() {
            return Err(StoreError::AlreadyExists(key.to_string()));
        }
        let revision = put_revision(&response);
        Ok(KeyValue {
            key: key.to_string(),
            value,
            create_revision: revision,
            mod_revision: revision,
        })
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected_revision: i64) -> Result<KeyValue> {
        let txn = Txn::new()
            .when([Compare::mod_revision(
                key,
                CompareOp::Equal,
                expected_revision,
            )])
            .and_then([TxnOp::put(
                key,
                value.clone(),
                Some(etcd_client::PutOptions::new().with_prev_key()),
            )]);
        let response = self
            .client
            .kv_client()
            .txn(txn)
            .await
            .map_err(backend_error)?;
        if !response.succeeded() {
            return Err(self.explain_failed_compare(key, expected_revision).await);
        }
        let revision = put_revision(&response);
        let create_revision = response
            .op_responses()
            .into_iter()
            .find_map(|op| match op {
                TxnOpResponse::Put(put) => put.prev_key().map(|p| p.create_revision()),
                _ => None,
            })
            .unwrap_or(revision);
        Ok(KeyValue {
            key: key.to_string(),
            value,
            create_revision,
            mod_revision: revision,
        })
    }

    async fn delete(&self, key: &str, expected_revision: Option<i64>) -> Result<(KeyValue, i64)> {
        let compare = match expected_revision {
            Some(expected) => Compare::mod_revision(key, CompareOp::Equal, expected),
            None => Compare::create_revision(key, CompareOp::Greater, 0),
        };
        let txn = Txn::new().when([compare]).and_then([TxnOp::delete(
            key,
            Some(etcd_client::DeleteOptions::new().with_prev_key()),
        )]);
        let response = self
            .client
            .kv_client()
            .txn(txn)
            .await
            .map_err(backend_error)?;
        if !response.succeeded() {
            return Err(match expected_revision {
                Some(expected) => self.explain_failed_compare(key, expected).await,
                None => StoreError::NotFound(key.to_string()),
            });
        }
        let revision = put_revision(&response);
        let prev = response
            .op_responses()
            .into_iter()
            .find_map(|op| match op {
                TxnOpResponse::Delete(delete) => delete.prev_kvs().first().map(convert),
                _ => None,
            })
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(key.to_string()))?;
        Ok((prev, revision))
    }

    async fn watch(&self, prefix: &str, start_revision: i64) -> Result<WatchStream> {
        let mut options = WatchOptions::new()
            .with_range(prefix_end(prefix))
            .with_prev_key();
        if start_revision > 0 {
            options = options.with_start_revision(start_revision);
        }
        let mut stream = self
            .client
            .watch_client()
            .watch(prefix, Some(options))
            .await
            .map_err(backend_error)?;
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(async move {
            while let Some(message) = stream.next().await {
                let response = match message {
                    Ok(response) => response,
                    Err(error) => {
                        let _ = tx.send(Err(backend_error(error))).await;
                        return;
                    }
                };
                if response.compact_revision() > 0 {
                    let _ = tx
                        .send(Err(StoreError::Compacted {
                            requested: start_revision,
                            compacted: response.compact_revision(),
                        }))
                        .await;
                    return;
                }
                if response.canceled() {
                    let _ = tx
                        .send(Err(StoreError::Backend(format!(
                            "etcd cancelled the watch: {}",
                            response.cancel_reason()
                        ))))
                        .await;
                    return;
                }
                for event in response.events() {
                    let Some(kv) = event.kv() else { continue };
                    let converted = convert(kv).and_then(|kv| {
                        Ok(Event {
                            kind: match event.event_type() {
                                etcd_client::EventType::Put => EventKind::Put,
                                etcd_client::EventType::Delete => EventKind::Delete,
                            },
                            kv,
                            prev: event.prev_kv().map(convert).transpose()?,
                        })
                    });
                    if tx.send(converted).await.is_err() {
                        return;
                    }
                }
            }
            let _ = tx
                .send(Err(StoreError::Backend("etcd watch stream ended".into())))
                .await;
        });
        Ok(Box::pin(ReceiverStream::new(rx)))
    }

    async fn compact(&self, revision: i64) -> Result<()> {
        self.client
            .kv_client()
            .compact(revision, None)
            .await
            .map_err(|e| match backend_error(e) {
                StoreError::Compacted { .. } => StoreError::Compacted {
                    requested: revision,
                    compacted: 0,
                },
                StoreError::FutureRevision { .. } => StoreError::FutureRevision {
                    requested: revision,
                    current: 0,
                },
                other => other,
            })?;
        Ok(())
    }

    async fn current_revision(&self) -> Result<i64> {
        let response = self
            .client
            .kv_client()
            .get("/", Some(GetOptions::new().with_count_only()))
            .await
            .map_err(backend_error)?;
        Ok(response.header().map_or(0, |h| h.revision()))
    }
}
