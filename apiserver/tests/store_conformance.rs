//! One conformance suite for every `Store` backend: the embedded redb store and
//! a real etcd process. Each behaviour is a function taking a fresh store; the
//! `conformance!` macro instantiates it for both backends.

mod support;

use std::sync::Arc;
use std::time::Duration;

use berth_apiserver::store::embedded::EmbeddedStore;
use berth_apiserver::store::etcd::EtcdStore;
use berth_apiserver::store::{EventKind, ListOptions, Store, StoreError};
use futures::StreamExt;

/// A backend under test plus whatever keeps it alive (the etcd process, the tempdir).
struct Backend {
    store: Arc<dyn Store>,
    _keep: Box<dyn std::any::Any + Send>,
}

fn embedded() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("store.redb")).unwrap();
    Backend {
        store: Arc::new(store),
        _keep: Box::new(dir),
    }
}

async fn etcd() -> Backend {
    let etcd = support::Etcd::start();
    let store = EtcdStore::connect(std::slice::from_ref(&etcd.endpoint))
        .await
        .unwrap();
    Backend {
        store: Arc::new(store),
        _keep: Box::new(etcd),
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod embedded_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let backend = super::embedded();
                    super::$name(backend.store.clone()).await;
                }
            )*
        }
        mod etcd_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let backend = super::etcd().await;
                    super::$name(backend.store.clone()).await;
                }
            )*
        }
    };
}

conformance!(
    create_get_update_delete_round_trip,
    create_refuses_existing_key,
    stale_update_is_a_conflict_and_changes_nothing,
    concurrent_compare_and_swap_loses_no_update,
    revisions_are_global_and_monotonic,
    list_pages_with_limit_and_continue,
    list_at_past_revision_sees_old_state,
    watch_delivers_events_in_revision_order_with_prev,
    watch_from_past_revision_replays_history,
    compaction_makes_old_revisions_unreadable,
    delete_with_stale_precondition_is_a_conflict,
);

async fn create_get_update_delete_round_trip(store: Arc<dyn Store>) {
    let created = store.create("/t/a", b"one".to_vec()).await.unwrap();
    assert_eq!(created.create_revision, created.mod_revision);
    let got = store.get("/t/a").await.unwrap().unwrap();
    assert_eq!(got.value, b"one");
    assert_eq!(got.mod_revision, created.mod_revision);
    let updated = store
        .update("/t/a", b"two".to_vec(), got.mod_revision)
        .await
        .unwrap();
    assert!(updated.mod_revision > got.mod_revision);
    assert_eq!(updated.create_revision, created.create_revision);
    let (deleted, revision) = store.delete("/t/a", None).await.unwrap();
    assert_eq!(deleted.value, b"two");
    assert!(revision > updated.mod_revision);
    assert_eq!(store.get("/t/a").await.unwrap(), None);
    assert!(matches!(
        store.delete("/t/a", None).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .update("/t/a", b"x".to_vec(), updated.mod_revision)
            .await,
        Err(StoreError::NotFound(_))
    ));
}

async fn create_refuses_existing_key(store: Arc<dyn Store>) {
    store.create("/t/a", b"one".to_vec()).await.unwrap();
    assert!(matches!(
        store.create("/t/a", b"two".to_vec()).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(store.get("/t/a").await.unwrap().unwrap().value, b"one");
}

async fn stale_update_is_a_conflict_and_changes_nothing(store: Arc<dyn Store>) {
    let first = store.create("/t/a", b"one".to_vec()).await.unwrap();
    store
        .update("/t/a", b"two".to_vec(), first.mod_revision)
        .await
        .unwrap();
    match store
        .update("/t/a", b"stale".to_vec(), first.mod_revision)
        .await
    {
        Err(StoreError::Conflict { current, .. }) => {
            assert_eq!(current.unwrap().value, b"two")
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(store.get("/t/a").await.unwrap().unwrap().value, b"two");
}

async fn concurrent_compare_and_swap_loses_no_update(store: Arc<dyn Store>) {
    store.create("/t/counter", b"0".to_vec()).await.unwrap();
    let workers = 8;
    let increments = 25;
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..increments {
                loop {
                    let current = store.get("/t/counter").await.unwrap().unwrap();
                    let n: u64 = String::from_utf8(current.value).unwrap().parse().unwrap();
                    match store
                        .update(
                            "/t/counter",
                            (n + 1).to_string().into_bytes(),
                            current.mod_revision,
                        )
                        .await
                    {
                        Ok(_) => break,
                        Err(StoreError::Conflict { .. }) => continue,
                        Err(other) => panic!("{other}"),
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let value = store.get("/t/counter").await.unwrap().unwrap().value;
    assert_eq!(
        String::from_utf8(value).unwrap(),
        (workers * increments).to_string()
    );
}

async fn revisions_are_global_and_monotonic(store: Arc<dyn Store>) {
    let start = store.current_revision().await.unwrap();
    let a = store.create("/t/a", vec![]).await.unwrap();
    let b = store.create("/u/b", vec![]).await.unwrap();
    assert!(a.mod_revision > start);
    assert_eq!(b.mod_revision, a.mod_revision + 1);
    assert_eq!(store.current_revision().await.unwrap(), b.mod_revision);
}

async fn list_pages_with_limit_and_continue(store: Arc<dyn Store>) {
    for i in 0..7 {
        store
            .create(&format!("/t/{i}"), vec![i as u8])
            .await
            .unwrap();
    }
    store.create("/tx/outside", vec![]).await.unwrap();
    let all = store.list("/t/", ListOptions::default()).await.unwrap();
    assert_eq!(all.items.len(), 7);
    assert!(!all.more);
    let first = store
        .list(
            "/t/",
            ListOptions {
                limit: Some(3),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(first.items.len(), 3);
    assert!(first.more);
    assert_eq!(first.remaining, Some(4));
    // A write between pages must not show in the next page: it is read at the
    // first page's revision.
    store.create("/t/5a", vec![]).await.unwrap();
    let second = store
        .list(
            "/t/",
            ListOptions {
                limit: Some(10),
                revision: Some(first.revision),
                start_after: Some(first.items.last().unwrap().key.clone()),
            },
        )
        .await
        .unwrap();
    let keys: Vec<_> = second.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/t/3", "/t/4", "/t/5", "/t/6"]);
    assert!(!second.more);
}

async fn list_at_past_revision_sees_old_state(store: Arc<dyn Store>) {
    let a = store.create("/t/a", b"a1".to_vec()).await.unwrap();
    store.create("/t/b", b"b1".to_vec()).await.unwrap();
    let before = store.current_revision().await.unwrap();
    store
        .update("/t/a", b"a2".to_vec(), a.mod_revision)
        .await
        .unwrap();
    store.delete("/t/b", None).await.unwrap();
    store.create("/t/c", b"c1".to_vec()).await.unwrap();
    let old = store
        .list(
            "/t/",
            ListOptions {
                revision: Some(before),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let seen: Vec<_> = old
        .items
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.as_slice()))
        .collect();
    assert_eq!(seen, [("/t/a", &b"a1"[..]), ("/t/b", &b"b1"[..])]);
    let now = store.list("/t/", ListOptions::default()).await.unwrap();
    let seen: Vec<_> = now.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(seen, ["/t/a", "/t/c"]);
    assert!(matches!(
        store
            .list(
                "/t/",
                ListOptions {
                    revision: Some(now.revision + 1000),
                    ..Default::default()
                }
            )
            .await,
        Err(StoreError::FutureRevision { .. })
    ));
}

async fn watch_delivers_events_in_revision_order_with_prev(store: Arc<dyn Store>) {
    let mut watch = store.watch("/t/", 0).await.unwrap();
    let writer = store.clone();
    tokio::spawn(async move {
        let a = writer.create("/t/a", b"1".to_vec()).await.unwrap();
        writer.create("/other/x", b"x".to_vec()).await.unwrap();
        writer
            .update("/t/a", b"2".to_vec(), a.mod_revision)
            .await
            .unwrap();
        writer.delete("/t/a", None).await.unwrap();
    });
    let mut events = Vec::new();
    while events.len() < 3 {
        let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("watch event in time")
            .unwrap()
            .unwrap();
        events.push(event);
    }
    assert_eq!(events[0].kind, EventKind::Put);
    assert_eq!(events[0].prev, None);
    assert_eq!(events[1].kind, EventKind::Put);
    assert_eq!(events[1].prev.as_ref().unwrap().value, b"1");
    assert_eq!(events[2].kind, EventKind::Delete);
    assert_eq!(events[2].prev.as_ref().unwrap().value, b"2");
    assert!(events.windows(2).all(|w| w[0].revision() < w[1].revision()));
    assert!(events.iter().all(|e| e.kv.key == "/t/a"));
}

async fn watch_from_past_revision_replays_history(store: Arc<dyn Store>) {
    let a = store.create("/t/a", b"1".to_vec()).await.unwrap();
    store
        .update("/t/a", b"2".to_vec(), a.mod_revision)
        .await
        .unwrap();
    store.create("/t/b", b"1".to_vec()).await.unwrap();
    let mut watch = store.watch("/t/", a.mod_revision + 1).await.unwrap();
    let first = watch.next().await.unwrap().unwrap();
    assert_eq!(first.kv.value, b"2");
    let second = watch.next().await.unwrap().unwrap();
    assert_eq!(second.kv.key, "/t/b");
    // Then live events follow without a gap.
    store.create("/t/c", vec![]).await.unwrap();
    let third = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(third.kv.key, "/t/c");
    assert_eq!(third.revision(), second.revision() + 1);
}

async fn compaction_makes_old_revisions_unreadable(store: Arc<dyn Store>) {
    let a = store.create("/t/a", b"1".to_vec()).await.unwrap();
    let b = store
        .update("/t/a", b"2".to_vec(), a.mod_revision)
        .await
        .unwrap();
    store
        .update("/t/a", b"3".to_vec(), b.mod_revision)
        .await
        .unwrap();
    store.compact(b.mod_revision).await.unwrap();
    let old = store
        .list(
            "/t/",
            ListOptions {
                revision: Some(a.mod_revision),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(old, Err(StoreError::Compacted { .. })), "{old:?}");
    let at_compaction = store
        .list(
            "/t/",
            ListOptions {
                revision: Some(b.mod_revision),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(at_compaction.items[0].value, b"2");
    let watch = store.watch("/t/", a.mod_revision).await;
    let compacted = match watch {
        Err(error) => Some(error),
        Ok(mut stream) => tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .unwrap()
            .and_then(|item| item.err()),
    };
    assert!(
        matches!(compacted, Some(StoreError::Compacted { .. })),
        "{compacted:?}"
    );
    assert_eq!(store.get("/t/a").await.unwrap().unwrap().value, b"3");
}

async fn delete_with_stale_precondition_is_a_conflict(store: Arc<dyn Store>) {
    let a = store.create("/t/a", b"1".to_vec()).await.unwrap();
    store
        .update("/t/a", b"2".to_vec(), a.mod_revision)
        .await
        .unwrap();
    assert!(matches!(
        store.delete("/t/a", Some(a.mod_revision)).await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(store.get("/t/a").await.unwrap().is_some());
}

/// The embedded store keeps its revision and history across a reopen, and a
/// watch resumes from a revision written before the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_watch_resumes_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let first = {
        let store = EmbeddedStore::open(&path).unwrap();
        let first = store.create("/t/a", b"1".to_vec()).await.unwrap();
        store
            .update("/t/a", b"2".to_vec(), first.mod_revision)
            .await
            .unwrap();
        first
    };
    let store = EmbeddedStore::open(&path).unwrap();
    assert_eq!(
        store.current_revision().await.unwrap(),
        first.mod_revision + 1
    );
    let mut watch = store.watch("/t/", first.mod_revision + 1).await.unwrap();
    let event = watch.next().await.unwrap().unwrap();
    assert_eq!(event.kv.value, b"2");
    store.create("/t/b", vec![]).await.unwrap();
    let event = watch.next().await.unwrap().unwrap();
    assert_eq!(event.kv.key, "/t/b");
}

/// The etcd backend: after etcd restarts on its data, a new store sees the
/// same revision and a watch resumes from a revision written before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_watch_resumes_after_restart() {
    let mut etcd = support::Etcd::start();
    let first = {
        let store = EtcdStore::connect(std::slice::from_ref(&etcd.endpoint))
            .await
            .unwrap();
        let first = store.create("/t/a", b"1".to_vec()).await.unwrap();
        store
            .update("/t/a", b"2".to_vec(), first.mod_revision)
            .await
            .unwrap();
        first
    };
    etcd.restart();
    let store = EtcdStore::connect(std::slice::from_ref(&etcd.endpoint))
        .await
        .unwrap();
    assert_eq!(
        store.current_revision().await.unwrap(),
        first.mod_revision + 1
    );
    let mut watch = store.watch("/t/", first.mod_revision + 1).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event.kv.value, b"2");
    store.create("/t/b", vec![]).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event.kv.key, "/t/b");
}
