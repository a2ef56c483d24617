//! API semantics driven in-process through the HTTP edge (`ApiServer::handle`),
//! over a real embedded store in a temporary directory: the behaviours kubectl
//! does not exercise by itself (watch resume and 410, paging, finalizers,
//! graceful pod deletion, binding, size limits, patch types, dry run).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use berth_apiserver::server::ApiServer;
use berth_apiserver::store::Store;
use berth_apiserver::store::embedded::EmbeddedStore;
use futures::StreamExt;
use http_body_util::BodyExt;
use serde_json::{Value, json};

struct Harness {
    server: Arc<ApiServer>,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new() -> Self {
        Self::with_config(|_| {}).await
    }

    async fn with_config(adjust: impl FnOnce(&mut berth_apiserver::Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(EmbeddedStore::open(&dir.path().join("store.redb")).unwrap());
        let mut config = berth_apiserver::Config {
            data_dir: dir.path().to_path_buf(),
            ..Default::default()
        };
        adjust(&mut config);
        let server = berth_apiserver::build(&config, store.clone())
            .await
            .unwrap();
        Self {
            server,
            store,
            _dir: dir,
        }
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap();
        let response = self.server.clone().handle(request).await;
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, value)
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call(Method::GET, uri, "application/json", vec![])
            .await
    }
    async fn post(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            uri,
            "application/json",
            body.to_string().into_bytes(),
        )
        .await
    }
    async fn put(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.call(
            Method::PUT,
            uri,
            "application/json",
            body.to_string().into_bytes(),
        )
        .await
    }
    async fn patch(&self, uri: &str, content_type: &str, body: Value) -> (StatusCode, Value) {
        self.call(
            Method::PATCH,
            uri,
            content_type,
            body.to_string().into_bytes(),
        )
        .await
    }
    async fn delete(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.call(
            Method::DELETE,
            uri,
            "application/json",
            body.to_string().into_bytes(),
        )
        .await
    }

    /// Open a watch and return a function-like reader of its JSON lines.
    async fn watch(&self, uri: &str) -> WatchReader {
        let request = Request::builder().uri(uri).body(Body::empty()).unwrap();
        let response = self.server.clone().handle(request).await;
        assert_eq!(response.status(), StatusCode::OK);
        WatchReader {
            stream: Box::pin(response.into_body().into_data_stream()),
            buffer: Vec::new(),
        }
    }
}

struct WatchReader {
    stream: std::pin::Pin<
        Box<dyn futures::Stream<Item = Result<axum::body::Bytes, axum::Error>> + Send>,
    >,
    buffer: Vec<u8>,
}

impl WatchReader {
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return Some(serde_json::from_slice(&line).unwrap());
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.stream.next())
                .await
                .expect("watch event in time")?
                .ok()?;
            self.buffer.extend_from_slice(&chunk);
        }
    }
}

fn configmap(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": {"k": "v"}})
}

fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
}

const CM: &str = "/api/v1/namespaces/default/configmaps";
const PODS: &str = "/api/v1/namespaces/default/pods";

#[tokio::test]
async fn create_sets_server_metadata_and_refuses_duplicates() {
    let h = Harness::new().await;
    let (status, created) = h.post(CM, configmap("a", json!({}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let meta = &created["metadata"];
    assert!(meta["uid"].as_str().unwrap().len() >= 32);
    assert!(meta["creationTimestamp"].as_str().unwrap().ends_with('Z'));
    assert!(
        meta["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 0
    );
    assert_eq!(meta["generation"], 1);
    let (status, error) = h.post(CM, configmap("a", json!({}))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error["reason"], "AlreadyExists");
    assert_eq!(error["message"], "configmaps \"a\" already exists");
}

#[tokio::test]
async fn generate_name_makes_unique_names() {
    let h = Harness::new().await;
    let body =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "web-"}});
    let (_, first) = h.post(CM, body.clone()).await;
    let (_, second) = h.post(CM, body).await;
    let (a, b) = (
        first["metadata"]["name"].as_str().unwrap(),
        second["metadata"]["name"].as_str().unwrap(),
    );
    assert!(a.starts_with("web-") && a.len() == 9, "{a}");
    assert_ne!(a, b);
}

#[tokio::test]
async fn dry_run_validates_but_stores_nothing() {
    let h = Harness::new().await;
    let (status, _) = h
        .post(&format!("{CM}?dryRun=All"), configmap("dry", json!({})))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = h.get(&format!("{CM}/dry")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn create_in_missing_namespace_is_not_found() {
    let h = Harness::new().await;
    let (status, error) = h
        .post(
            "/api/v1/namespaces/nope/configmaps",
            configmap("a", json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["message"], "namespaces \"nope\" not found");
}

#[tokio::test]
async fn update_with_stale_resource_version_conflicts_and_generation_tracks_spec() {
    let h = Harness::new().await;
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
    let uri = "/apis/apps/v1/namespaces/default/deployments";
    let (_, created) = h.post(uri, deployment).await;
    let mut changed = created.clone();
    changed["spec"]["replicas"] = json!(3);
    let (status, updated) = h.put(&format!("{uri}/web"), changed.clone()).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["metadata"]["generation"], 2);
    // Same resourceVersion again: stale now.
    let (status, error) = h.put(&format!("{uri}/web"), changed).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error["reason"], "Conflict");
    // A label change is not a spec change.
    let (_, relabeled) = h
        .patch(
            &format!("{uri}/web"),
            "application/merge-patch+json",
            json!({"metadata": {"labels": {"x": "y"}}}),
        )
        .await;
    assert_eq!(relabeled["metadata"]["generation"], 2);
    // Status writes through the main resource are ignored; through /status they land.
    let (_, ignored) = h
        .patch(
            &format!("{uri}/web"),
            "application/merge-patch+json",
            json!({"status": {"replicas": 9}}),
        )
        .await;
    assert!(ignored["status"].get("replicas").is_none(), "{ignored}");
    let (status, with_status) = h
        .patch(
            &format!("{uri}/web/status"),
            "application/merge-patch+json",
            json!({"status": {"replicas": 9}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(with_status["status"]["replicas"], 9);
    assert_eq!(with_status["metadata"]["generation"], 2);
}

#[tokio::test]
async fn json_merge_and_strategic_patches_apply() {
    let h = Harness::new().await;
    h.post(PODS, json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "a", "image": "one", "env": [{"name": "X", "value": "1"}]}, {"name": "b", "image": "two"}]}}))
        .await;
    let uri = format!("{PODS}/p");
    let (status, patched) = h
        .patch(
            &uri,
            "application/strategic-merge-patch+json",
            json!({"spec": {"containers": [{"name": "b", "image": "three"}]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    let containers = patched["spec"]["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 2, "merge by name keeps container a");
    assert_eq!(containers[1]["image"], "three");
    let (_, patched) = h
        .patch(
            &uri,
            "application/json-patch+json",
            json!([{"op": "replace", "path": "/spec/containers/0/image", "value": "four"}]),
        )
        .await;
    assert_eq!(patched["spec"]["containers"][0]["image"], "four");
    let (status, error) = h
        .patch(
            &uri,
            "application/json-patch+json",
            json!([{"op": "test", "path": "/spec/containers/0/image", "value": "nope"}]),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    let (status, _) = h.patch(&uri, "text/plain", json!({})).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn list_pages_with_limit_and_continue() {
    let h = Harness::new().await;
    for i in 0..5 {
        h.post(
            CM,
            configmap(&format!("cm-{i}"), json!({"n": i.to_string()})),
        )
        .await;
    }
    let (_, first) = h.get(&format!("{CM}?limit=2")).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    assert_eq!(first["metadata"]["remainingItemCount"], 3);
    let token = first["metadata"]["continue"].as_str().unwrap().to_string();
    let (_, second) = h
        .get(&format!("{CM}?limit=2&continue={}", urlencode(&token)))
        .await;
    assert_eq!(second["items"][0]["metadata"]["name"], "cm-2");
    let (status, error) = h.get(&format!("{CM}?continue=garbage")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    let (_, selected) = h
        .get(&format!("{CM}?labelSelector={}", urlencode("n in (1,3)")))
        .await;
    let names: Vec<&str> = selected["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cm-1", "cm-3"]);
    let (status, _) = h
        .get(&format!("{CM}?labelSelector={}", urlencode("n in x")))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn watch_resumes_from_a_resource_version_and_filters_by_label() {
    let h = Harness::new().await;
    let (_, a) = h.post(CM, configmap("a", json!({"app": "web"}))).await;
    let rv = a["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    h.post(CM, configmap("b", json!({"app": "db"}))).await;
    h.patch(
        &format!("{CM}/a"),
        "application/merge-patch+json",
        json!({"data": {"k": "2"}}),
    )
    .await;
    let mut watch = h
        .watch(&format!(
            "{CM}?watch=true&resourceVersion={rv}&labelSelector=app%3Dweb"
        ))
        .await;
    let event = watch.next().await.unwrap();
    assert_eq!(event["type"], "MODIFIED");
    assert_eq!(event["object"]["data"]["k"], "2");
    // Relabelling out of the selection is a DELETED for this watcher.
    h.patch(
        &format!("{CM}/a"),
        "application/merge-patch+json",
        json!({"metadata": {"labels": {"app": "other"}}}),
    )
    .await;
    let event = watch.next().await.unwrap();
    assert_eq!(event["type"], "DELETED");
    h.post(CM, configmap("c", json!({"app": "web"}))).await;
    let event = watch.next().await.unwrap();
    assert_eq!(event["type"], "ADDED");
    assert_eq!(event["object"]["metadata"]["name"], "c");
}

#[tokio::test]
async fn watch_without_resource_version_starts_with_current_objects() {
    let h = Harness::new().await;
    h.post(CM, configmap("a", json!({}))).await;
    let mut watch = h
        .watch(&format!("{CM}?watch=1&fieldSelector=metadata.name%3Da"))
        .await;
    let event = watch.next().await.unwrap();
    assert_eq!(event["type"], "ADDED");
    h.delete(&format!("{CM}/a"), json!({})).await;
    let event = watch.next().await.unwrap();
    assert_eq!(event["type"], "DELETED");
}

#[tokio::test]
async fn watch_from_a_compacted_revision_is_410_gone() {
    let h = Harness::new().await;
    let (_, a) = h.post(CM, configmap("a", json!({}))).await;
    let old = a["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse::<i64>()
        .unwrap();
    for i in 0..3 {
        h.patch(
            &format!("{CM}/a"),
            "application/merge-patch+json",
            json!({"data": {"k": i.to_string()}}),
        )
        .await;
    }
    let current = h.store.current_revision().await.unwrap();
    h.store.compact(current).await.unwrap();
    let mut watch = h
        .watch(&format!("{CM}?watch=true&resourceVersion={old}"))
        .await;
    let event = watch.next().await.unwrap();
    assert_eq!(event["type"], "ERROR");
    assert_eq!(event["object"]["code"], 410);
    assert_eq!(event["object"]["reason"], "Expired");
}

#[tokio::test]
async fn watch_sends_bookmarks_when_asked() {
    let h =
        Harness::with_config(|config| config.watch_progress_interval = Duration::from_millis(100))
            .await;
    let (_, a) = h.post(CM, configmap("a", json!({}))).await;
    let rv: i64 = a["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut watch = h
        .watch(&format!(
            "{CM}?watch=true&resourceVersion={rv}&allowWatchBookmarks=true"
        ))
        .await;
    let event = watch.next().await.unwrap();
    assert_eq!(event["type"], "BOOKMARK");
    let bookmark: i64 = event["object"]["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(bookmark >= rv);
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let h = Harness::new().await;
    let mut cm = configmap("held", json!({}));
    cm["metadata"]["finalizers"] = json!(["example.com/hold"]);
    h.post(CM, cm).await;
    let (status, pending) = h.delete(&format!("{CM}/held"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        pending["metadata"]["deletionTimestamp"].is_string(),
        "{pending}"
    );
    let (status, _) = h.get(&format!("{CM}/held")).await;
    assert_eq!(status, StatusCode::OK, "still there while the finalizer is");
    h.patch(
        &format!("{CM}/held"),
        "application/merge-patch+json",
        json!({"metadata": {"finalizers": null}}),
    )
    .await;
    let (status, _) = h.get(&format!("{CM}/held")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn foreground_and_orphan_deletes_add_their_finalizers() {
    let h = Harness::new().await;
    h.post(CM, configmap("fg", json!({}))).await;
    h.post(CM, configmap("or", json!({}))).await;
    let (_, fg) = h
        .delete(
            &format!("{CM}/fg"),
            json!({"propagationPolicy": "Foreground"}),
        )
        .await;
    assert_eq!(fg["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    let (_, orphan) = h
        .delete(&format!("{CM}/or"), json!({"propagationPolicy": "Orphan"}))
        .await;
    assert_eq!(orphan["metadata"]["finalizers"], json!(["orphan"]));
    let (status, _) = h
        .delete(
            &format!("{CM}/or"),
            json!({"propagationPolicy": "Sideways"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn scheduled_pods_delete_gracefully_and_unscheduled_at_once() {
    let h = Harness::new().await;
    h.post(PODS, pod("unscheduled")).await;
    let (status, gone) = h.delete(&format!("{PODS}/unscheduled"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(gone["kind"], "Status");
    h.post(PODS, pod("running")).await;
    h.post(&format!("{PODS}/running/binding"), json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "running"}, "target": {"kind": "Node", "name": "n1"}})).await;
    let (status, terminating) = h.delete(&format!("{PODS}/running"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(terminating["metadata"]["deletionGracePeriodSeconds"], 30);
    assert!(terminating["metadata"]["deletionTimestamp"].is_string());
    let (status, _) = h.get(&format!("{PODS}/running")).await;
    assert_eq!(status, StatusCode::OK, "kept until the kubelet confirms");
    // The kubelet confirms with grace 0.
    h.delete(&format!("{PODS}/running"), json!({"gracePeriodSeconds": 0}))
        .await;
    let (status, _) = h.get(&format!("{PODS}/running")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn binding_sets_node_name_once() {
    let h = Harness::new().await;
    h.post(PODS, pod("p")).await;
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n1"}});
    let (status, _) = h.post(&format!("{PODS}/p/binding"), binding.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, bound) = h.get(&format!("{PODS}/p")).await;
    assert_eq!(bound["spec"]["nodeName"], "n1");
    let (status, error) = h.post(&format!("{PODS}/p/binding"), binding).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    let (_, pods) = h
        .get(&format!("{PODS}?fieldSelector=spec.nodeName%3Dn1"))
        .await;
    assert_eq!(pods["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn oversized_and_malformed_bodies_are_refused_without_side_effects() {
    let h = Harness::new().await;
    let huge = configmap("huge", json!({}));
    let mut huge = huge;
    huge["data"]["k"] = json!("x".repeat(4 * 1024 * 1024));
    let (status, error) = h.post(CM, huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{error}");
    assert_eq!(error["reason"], "RequestEntityTooLarge");
    let (status, error) = h
        .call(
            Method::POST,
            CM,
            "application/json",
            b"{\"kind\": ".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["kind"], "Status");
    let (status, _) = h
        .call(Method::POST, CM, "application/json", b"[1,2]".to_vec())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, list) = h.get(CM).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn services_get_distinct_cluster_ips_in_range() {
    let h = Harness::new().await;
    let mut ips = std::collections::HashSet::new();
    for i in 0..10 {
        let (status, svc) = h
            .post("/api/v1/namespaces/default/services", json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": format!("s{i}")}, "spec": {"ports": [{"port": 80}]}}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{svc}");
        let ip: std::net::Ipv4Addr = svc["spec"]["clusterIP"].as_str().unwrap().parse().unwrap();
        assert_eq!(ip.octets()[0], 10);
        assert!((96..112).contains(&ip.octets()[1]), "{ip}");
        assert!(ips.insert(ip));
    }
}

#[tokio::test]
async fn discovery_table_and_metadata_forms() {
    let h = Harness::new().await;
    h.post(CM, configmap("a", json!({}))).await;
    let request = Request::builder()
        .uri("/apis")
        .header(
            "accept",
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
        )
        .body(Body::empty())
        .unwrap();
    let response = h.server.clone().handle(request).await;
    assert_eq!(
        response.headers()["content-type"],
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    let request = Request::builder()
        .uri(CM)
        .header(
            "accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )
        .body(Body::empty())
        .unwrap();
    let response = h.server.clone().handle(request).await;
    let table: Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["columnDefinitions"][0]["name"], "Name");
    assert_eq!(table["rows"][0]["cells"][0], "a");
    assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    let (status, _) = h.get("/api/v1/namespaces/default/widgets").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, version) = h.get("/version").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(version["minor"], "32");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_patches_without_resource_version_all_land() {
    let h = Arc::new(Harness::new().await);
    h.post(CM, configmap("shared", json!({}))).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            let (status, body) = h
                .patch(
                    &format!("{CM}/shared"),
                    "application/merge-patch+json",
                    json!({"data": {format!("k{i}"): "v"}}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let (_, cm) = h.get(&format!("{CM}/shared")).await;
    assert_eq!(cm["data"].as_object().unwrap().len(), 21);
}

#[tokio::test]
async fn namespace_deletion_waits_for_its_finalizer_and_refuses_new_content() {
    let h = Harness::new().await;
    let (status, ns) = h
        .post(
            "/api/v1/namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]), "{ns}");
    let (_, terminating) = h.delete("/api/v1/namespaces/doomed", json!({})).await;
    assert_eq!(terminating["status"]["phase"], "Terminating");
    let (status, error) = h
        .post(
            "/api/v1/namespaces/doomed/configmaps",
            configmap("late", json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("because it is being terminated")
    );
    let mut finalized = terminating.clone();
    finalized["spec"]["finalizers"] = json!([]);
    let (status, _) = h.put("/api/v1/namespaces/doomed/finalize", finalized).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = h.get("/api/v1/namespaces/doomed").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn delete_collection_removes_only_the_selected_objects() {
    let h = Harness::new().await;
    for (name, tier) in [("a", "web"), ("b", "web"), ("c", "db")] {
        h.post(CM, configmap(name, json!({"tier": tier}))).await;
    }
    let (status, deleted) = h
        .delete(&format!("{CM}?labelSelector=tier%3Dweb"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(deleted["items"].as_array().unwrap().len(), 2);
    let (_, left) = h.get(CM).await;
    let names: Vec<&str> = left["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["c"]);
}

#[tokio::test]
async fn watch_ends_after_timeout_seconds() {
    let h = Harness::new().await;
    let started = std::time::Instant::now();
    let mut watch = h.watch(&format!("{CM}?watch=true&timeoutSeconds=1")).await;
    assert!(
        watch.next().await.is_none(),
        "no events, then the stream ends"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn metrics_count_requests_by_verb_resource_and_code() {
    let h = Harness::new().await;
    h.get(&format!("{CM}/missing")).await;
    let request = Request::builder()
        .uri("/metrics")
        .body(Body::empty())
        .unwrap();
    let response = h.server.clone().handle(request).await;
    let text = String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(
        text.contains(
            "apiserver_request_total{verb=\"GET\",resource=\"configmaps\",code=\"404\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("berth_store_revision{backend=\"embedded\"}"),
        "{text}"
    );
}
