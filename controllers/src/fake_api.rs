//! A fake API server for reconcile unit tests (kube-rs style: no cluster, no
//! network): a `kube::Client` over an in-memory service that records every
//! request and answers from a handler the test gives, plus reflector stores
//! filled by hand.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response};
use http_body_util::BodyExt;
use kube::Client;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use serde_json::Value;

/// One request the fake saw: method, path with query, JSON body (or Null).
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub body: Value,
}

pub type Handler = dyn Fn(&Method, &str, &Value) -> (u16, Value) + Send + Sync;

/// A client whose every request goes to `handler`; returns it and the log.
pub fn client(
    handler: impl Fn(&Method, &str, &Value) -> (u16, Value) + Send + Sync + 'static,
) -> (Client, Arc<Mutex<Vec<Recorded>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let handler: Arc<Handler> = Arc::new(handler);
    let recorded = log.clone();
    let service = tower::service_fn(move |request: Request<kube::client::Body>| {
        let (handler, log) = (handler.clone(), recorded.clone());
        async move {
            let (parts, body) = request.into_parts();
            let bytes = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let path = parts
                .uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default();
            let (status, answer) = handler(&parts.method, &path, &body);
            log.lock().unwrap().push(Recorded {
                method: parts.method,
                path,
                body,
            });
            Ok::<_, Infallible>(
                Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(kube::client::Body::from(
                        serde_json::to_vec(&answer).unwrap(),
                    ))
                    .unwrap(),
            )
        }
    });
    (Client::new(service, "default"), log)
}

/// The apiVersion and kind a path's resource holds.
fn type_of(path: &str) -> (&'static str, &'static str) {
    let segments: Vec<&str> = path.split('?').next().unwrap_or("").split('/').collect();
    const TYPES: &[(&str, &str, &str)] = &[
        ("pods", "v1", "Pod"),
        ("nodes", "v1", "Node"),
        ("services", "v1", "Service"),
        ("endpoints", "v1", "Endpoints"),
        ("events", "v1", "Event"),
        ("serviceaccounts", "v1", "ServiceAccount"),
        ("namespaces", "v1", "Namespace"),
        ("replicasets", "apps/v1", "ReplicaSet"),
        ("deployments", "apps/v1", "Deployment"),
        ("endpointslices", "discovery.k8s.io/v1", "EndpointSlice"),
        ("leases", "coordination.k8s.io/v1", "Lease"),
    ];
    // The last segment naming a resource type wins (namespaces/x/pods/y -> Pod).
    segments
        .iter()
        .rev()
        .find_map(|s| TYPES.iter().find(|(plural, _, _)| plural == s))
        .map_or(("v1", "Status"), |(_, version, kind)| (*version, *kind))
}

/// Echo the request body back with a name and type filled in: what a create
/// or patch of a simple object returns. GETs are 404 (nothing exists).
pub fn echo(method: &Method, path: &str, body: &Value) -> (u16, Value) {
    let mut body = body.clone();
    if body.is_object() {
        if body.pointer("/metadata/name").is_none() {
            let prefix = body
                .pointer("/metadata/generateName")
                .and_then(Value::as_str)
                .unwrap_or("x-")
                .to_string();
            body["metadata"]["name"] = Value::String(format!("{prefix}abcde"));
        }
        let (api_version, kind) = type_of(path);
        body["apiVersion"] = api_version.into();
        body["kind"] = kind.into();
    }
    match *method {
        Method::GET => (
            404,
            serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": format!("{path} not found")}),
        ),
        Method::POST => (201, body),
        Method::DELETE => (
            200,
            serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
        ),
        _ => (200, body),
    }
}

/// A reflector store holding `objects`.
pub fn store<K>(objects: Vec<K>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    let (reader, mut writer) = reflector::store();
    writer.apply_watcher_event(&watcher::Event::Init);
    for object in objects {
        writer.apply_watcher_event(&watcher::Event::InitApply(object));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    reader
}

/// The requests with this method whose path contains `part`.
pub fn requests(log: &Arc<Mutex<Vec<Recorded>>>, method: Method, part: &str) -> Vec<Recorded> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|r| r.method == method && r.path.contains(part))
        .cloned()
        .collect()
}
