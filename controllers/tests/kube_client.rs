//! kube-rs, unchanged, against an in-process berth-apiserver: typed CRUD,
//! list with selectors, and a runtime watcher that sees changes.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;

async fn start() -> (kube::Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn berth_apiserver::store::Store> = Arc::new(
        berth_apiserver::store::embedded::EmbeddedStore::open(&dir.path().join("s.redb")).unwrap(),
    );
    let config = berth_apiserver::Config {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let server = berth_apiserver::build(&config, store).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(berth_apiserver::serve(
        listener,
        server,
        std::future::pending(),
    ));
    let config = kube::Config::new(format!("http://{address}").parse().unwrap());
    (kube::Client::try_from(config).unwrap(), dir)
}

#[tokio::test]
async fn kube_rs_crud_list_and_watch() {
    let (client, _dir) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("a".into());
    cm.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
    cm.data = Some([("k".to_string(), "v".to_string())].into());
    let created = api.create(&PostParams::default(), &cm).await.unwrap();
    assert!(created.metadata.uid.is_some());
    let listed = api
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);

    let mut events = watcher(api.clone(), watcher::Config::default()).boxed();
    // The initial list arrives first.
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            watcher::Event::InitDone => break,
            _ => continue,
        }
    }
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"data": {"k": "changed"}})),
    )
    .await
    .unwrap();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let watcher::Event::Apply(cm) = event {
            assert_eq!(cm.data.unwrap()["k"], "changed");
            break;
        }
    }
    let error = api.get("missing").await.unwrap_err();
    match error {
        kube::Error::Api(status) => assert_eq!(status.code, 404),
        other => panic!("{other}"),
    }
}
