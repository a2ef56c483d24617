//! Shared informers: one watch per resource kind for the whole controller
//! manager, a reflector store every controller reads, and subscriptions that
//! fan the watch's objects out to the controllers that asked before start.
//! Controllers never list the API server themselves on the hot path.

use std::fmt::Debug;
use std::sync::Arc;

use futures::StreamExt;
use kube::runtime::reflector::{self, ReflectHandle, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

const BUFFER: usize = 4096;

/// One resource kind's shared watch and cache.
pub struct Informer<K: Resource<DynamicType = ()> + Clone + 'static> {
    pub store: Store<K>,
    writer: Option<reflector::store::Writer<K>>,
    api: Api<K>,
}

impl<K> Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    pub fn new(client: &Client) -> Self {
        let (store, writer) = reflector::store_shared(BUFFER);
        Self {
            store,
            writer: Some(writer),
            api: Api::all(client.clone()),
        }
    }

    /// A stream of every object the watch applies, for one consumer. Take
    /// subscriptions before `start`, and consume each one: an unread
    /// subscription holds the whole informer back.
    pub fn subscribe(&self) -> ReflectHandle<K> {
        self.writer
            .as_ref()
            .and_then(|w| w.subscribe())
            .expect("subscribe before the informer starts")
    }

    /// The watch, to be polled for as long as the informer should run (the
    /// caller owns it, so stopping the caller stops the watch).
    pub fn run(&mut self) -> futures::future::BoxFuture<'static, ()> {
        let Some(writer) = self.writer.take() else {
            return Box::pin(async {});
        };
        let stream = watcher(self.api.clone(), watcher::Config::default())
            .default_backoff()
            .reflect_shared(writer);
        Box::pin(async move {
            stream
                .for_each(|event| async move {
                    if let Err(error) = event {
                        tracing::warn!(%error, kind = %K::kind(&()), "informer watch error");
                    }
                })
                .await;
        })
    }
}

/// The objects in a store, cloned out of their `Arc`s, that satisfy `keep`.
pub fn objects<K: Resource<DynamicType = ()> + Clone>(
    store: &Store<K>,
    keep: impl Fn(&K) -> bool,
) -> Vec<K> {
    store
        .state()
        .into_iter()
        .filter(|o| keep(o))
        .map(|o| Arc::unwrap_or_clone(o))
        .collect()
}
