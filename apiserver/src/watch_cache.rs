//! The watch cache: one store watch per resource, fanned out to every client
//! watch on that resource, with a window of recent events so a client resuming
//! from a recent resourceVersion is served without touching the store. A client
//! asking for a revision older than the window gets a direct store watch (which
//! answers `Compacted` when history is gone). It does not decode objects or
//! apply selectors: the HTTP layer does.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::store::{Event, Store, StoreError};

const WINDOW: usize = 2048;
const FAN_OUT_BUFFER: usize = 4096;
const CLIENT_BUFFER: usize = 256;

/// What a client watch yields: an event, or word that every event up to a
/// revision has been passed on (the basis for BOOKMARKs).
#[derive(Debug, Clone)]
pub enum WatchItem {
    Event(Event),
    Progress(i64),
}

pub type ClientStream = std::pin::Pin<Box<dyn Stream<Item = Result<WatchItem, StoreError>> + Send>>;

pub struct WatchCaches {
    store: Arc<dyn Store>,
    caches: Mutex<HashMap<String, Arc<WatchCache>>>,
    progress_every: Duration,
}

struct WatchCache {
    state: Mutex<State>,
}

struct State {
    /// Every event with a revision >= `window_start` is in `events` (or not yet
    /// happened).
    window_start: i64,
    latest: i64,
    events: VecDeque<Arc<Event>>,
    live: broadcast::Sender<Arc<Event>>,
}

impl WatchCaches {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            caches: Mutex::new(HashMap::new()),
            progress_every: Duration::from_secs(30),
        }
    }

    /// How often a quiet client watch reports progress (for bookmarks).
    pub fn with_progress_every(mut self, every: Duration) -> Self {
        self.progress_every = every;
        self
    }

    /// Watch keys under `key_prefix` (which lies inside `resource_prefix`) from
    /// `start_revision` (inclusive).
    pub async fn watch(
        &self,
        resource_prefix: &str,
        key_prefix: &str,
        start_revision: i64,
    ) -> Result<ClientStream, StoreError> {
        let cache = self.cache_for(resource_prefix).await?;
        // Decide under the lock, await after it: the guard must not live across
        // an await.
        let served = {
            let state = cache
                .state
                .lock()
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            (start_revision >= state.window_start).then(|| {
                let replay: Vec<Arc<Event>> = state
                    .events
                    .iter()
                    .filter(|e| e.revision() >= start_revision)
                    .cloned()
                    .collect();
                (
                    replay,
                    state.live.subscribe(),
                    start_revision.max(state.latest + 1),
                    state.latest,
                )
            })
        };
        let Some((replay, live, next, latest)) = served else {
            let stream = self.store.watch(key_prefix, start_revision).await?;
            return Ok(Box::pin(stream.map(|r| r.map(WatchItem::Event))));
        };
        let (tx, rx) = mpsc::channel(CLIENT_BUFFER);
        let key_prefix = key_prefix.to_string();
        let progress_every = self.progress_every;
        tokio::spawn(forward(
            replay,
            live,
            next,
            latest,
            key_prefix,
            tx,
            progress_every,
        ));
        Ok(Box::pin(ReceiverStream::new(rx)))
    }

    /// The newest revision the cache for a resource has seen.
    pub fn latest(&self, resource_prefix: &str) -> Option<i64> {
        let caches = self.caches.lock().ok()?;
        let cache = caches.get(resource_prefix)?;
        cache.state.lock().ok().map(|s| s.latest)
    }

    async fn cache_for(&self, resource_prefix: &str) -> Result<Arc<WatchCache>, StoreError> {
        if let Some(cache) = self
            .caches
            .lock()
            .map_err(|e| StoreError::Backend(e.to_string()))?
            .get(resource_prefix)
        {
            return Ok(cache.clone());
        }
        let current = self.store.current_revision().await?;
        let (live, _) = broadcast::channel(FAN_OUT_BUFFER);
        let cache = Arc::new(WatchCache {
            state: Mutex::new(State {
                window_start: current + 1,
                latest: current,
                events: VecDeque::new(),
                live,
            }),
        });
        {
            let mut caches = self
                .caches
                .lock()
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            if let Some(existing) = caches.get(resource_prefix) {
                return Ok(existing.clone());
            }
            caches.insert(resource_prefix.to_string(), cache.clone());
        }
        tokio::spawn(feed(
            self.store.clone(),
            resource_prefix.to_string(),
            cache.clone(),
            current + 1,
        ));
        Ok(cache)
    }
}

/// Keep one store watch running for the resource and push its events into the
/// cache. When the store watch fails, start again; when history was lost under
/// it, reset the window and close every client watch so clients relist.
async fn feed(store: Arc<dyn Store>, prefix: String, cache: Arc<WatchCache>, mut next: i64) {
    loop {
        let mut stream = match store.watch(&prefix, next).await {
            Ok(stream) => stream,
            Err(StoreError::Compacted { .. }) => {
                next = reset(&store, &cache).await;
                continue;
            }
            Err(error) => {
                tracing::warn!(%prefix, %error, "watch cache: store watch failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => {
                    let revision = event.revision();
                    let Ok(mut state) = cache.state.lock() else {
                        return;
                    };
                    let event = Arc::new(event);
                    state.events.push_back(event.clone());
                    while state.events.len() > WINDOW {
                        state.events.pop_front();
                    }
                    if let Some(front) = state.events.front() {
                        state.window_start = front.revision();
                    }
                    state.latest = revision;
                    let _ = state.live.send(event);
                    next = revision + 1;
                }
                Err(StoreError::Compacted { .. }) => {
                    next = reset(&store, &cache).await;
                    break;
                }
                Err(error) => {
                    tracing::warn!(%prefix, %error, "watch cache: store watch ended; resuming");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
            }
        }
    }
}

async fn reset(store: &Arc<dyn Store>, cache: &Arc<WatchCache>) -> i64 {
    let current = store.current_revision().await.unwrap_or(0);
    if let Ok(mut state) = cache.state.lock() {
        state.events.clear();
        state.window_start = current + 1;
        state.latest = current;
        // Dropping the old sender ends every client watch: they must relist.
        let (live, _) = broadcast::channel(FAN_OUT_BUFFER);
        state.live = live;
    }
    current + 1
}

async fn forward(
    replay: Vec<Arc<Event>>,
    mut live: broadcast::Receiver<Arc<Event>>,
    mut next: i64,
    latest: i64,
    key_prefix: String,
    tx: mpsc::Sender<Result<WatchItem, StoreError>>,
    progress_every: Duration,
) {
    let mut processed = latest.max(next - 1);
    for event in replay {
        processed = processed.max(event.revision());
        if event.kv.key.starts_with(&key_prefix)
            && tx
                .send(Ok(WatchItem::Event((*event).clone())))
                .await
                .is_err()
        {
            return;
        }
    }
    let mut ticker = tokio::time::interval(progress_every);
    ticker.tick().await;
    loop {
        tokio::select! {
            received = live.recv() => match received {
                Ok(event) => {
                    let revision = event.revision();
                    if revision < next {
                        continue;
                    }
                    next = revision + 1;
                    processed = revision;
                    if event.kv.key.starts_with(&key_prefix)
                        && tx.send(Ok(WatchItem::Event((*event).clone()))).await.is_err()
                    {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // This client fell behind the fan-out: end its watch so it
                    // resumes from its last resourceVersion.
                    let _ = tx
                        .send(Err(StoreError::Backend("watch client fell behind".into())))
                        .await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = ticker.tick() => {
                if tx.send(Ok(WatchItem::Progress(processed))).await.is_err() {
                    return;
                }
            }
            _ = tx.closed() => return,
        }
    }
}
