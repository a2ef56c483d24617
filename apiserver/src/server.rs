//! The HTTP edge: parses Kubernetes API paths and query parameters, negotiates
//! the response form (JSON object, `metav1.Table`, `PartialObjectMetadata`),
//! streams watches, and turns every [`ApiError`] into a `Status` response. The
//! REST semantics live in [`crate::registry`]; this module only adapts HTTP to
//! them.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri, header};
use futures::StreamExt;
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::auth::{Authenticator, User};
use crate::error::ApiError;
use crate::registry::{
    DeleteOptions, Deleted, FieldValidation, ListParams, Patch, PatchType, Registry, WriteOptions,
    decode, name_of,
};
use crate::resources::{Resource, Subresource};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{EventKind, StoreError};
use crate::watch_cache::WatchItem;
use crate::{discovery, openapi, printers};

/// Request bodies above this are refused with 413, as kube-apiserver does (3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

pub struct ApiServer {
    pub registry: Arc<Registry>,
    pub authenticator: Arc<dyn Authenticator>,
    pub server_address: String,
    pub metrics: Metrics,
    pub ready: std::sync::atomic::AtomicBool,
}

type HttpResponse = Response<Body>;

/// Request counters by verb, resource and code, and latency sums, for `/metrics`.
/// (verb, resource, code) -> (count, seconds spent).
type RequestCounts = BTreeMap<(String, String, u16), (u64, f64)>;

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<RequestCounts>,
}

impl Metrics {
    fn record(&self, verb: &str, resource: &str, code: u16, elapsed: Duration) {
        if let Ok(mut requests) = self.requests.lock() {
            let entry = requests
                .entry((verb.to_string(), resource.to_string(), code))
                .or_default();
            entry.0 += 1;
            entry.1 += elapsed.as_secs_f64();
        }
    }

    fn render(&self, revision: i64, backend: &str) -> String {
        let mut text = String::from(
            "# HELP apiserver_request_total Requests by verb, resource and HTTP code.\n# TYPE apiserver_request_total counter\n",
        );
        let requests = self.requests.lock().map(|r| r.clone()).unwrap_or_default();
        for ((verb, resource, code), (count, _)) in &requests {
            text.push_str(&format!(
                "apiserver_request_total{{verb=\"{verb}\",resource=\"{resource}\",code=\"{code}\"}} {count}\n"
            ));
        }
        text.push_str("# HELP apiserver_request_duration_seconds Time to answer, by verb and resource.\n# TYPE apiserver_request_duration_seconds summary\n");
        let mut durations: BTreeMap<(String, String), (u64, f64)> = BTreeMap::new();
        for ((verb, resource, _), (count, seconds)) in &requests {
            let entry = durations
                .entry((verb.clone(), resource.clone()))
                .or_default();
            entry.0 += count;
            entry.1 += seconds;
        }
        for ((verb, resource), (count, seconds)) in durations {
            text.push_str(&format!(
                "apiserver_request_duration_seconds_sum{{verb=\"{verb}\",resource=\"{resource}\"}} {seconds}\napiserver_request_duration_seconds_count{{verb=\"{verb}\",resource=\"{resource}\"}} {count}\n"
            ));
        }
        text.push_str(&format!(
            "# HELP berth_store_revision Newest store revision.\n# TYPE berth_store_revision gauge\nberth_store_revision{{backend=\"{backend}\"}} {revision}\n"
        ));
        text
    }
}

fn json_response(code: StatusCode, value: &Value) -> HttpResponse {
    bytes_response(
        code,
        "application/json",
        serde_json::to_vec(value).unwrap_or_default(),
    )
}

fn bytes_response(code: StatusCode, content_type: &str, body: Vec<u8>) -> HttpResponse {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = code;
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

fn error_response(error: &ApiError) -> HttpResponse {
    let code = StatusCode::from_u16(error.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, &error.to_status())
}

fn with_warnings(mut response: HttpResponse, warnings: &[String]) -> HttpResponse {
    for warning in warnings {
        let text = format!("299 - \"{}\"", warning.replace('"', "'"));
        if let Ok(value) = HeaderValue::from_str(&text) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

/// The parsed query string; repeated keys keep the last value.
struct Query(BTreeMap<String, String>);

impl Query {
    fn parse(uri: &Uri) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(uri.query().unwrap_or(""))
            .map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))?;
        Ok(Self(pairs.into_iter().collect()))
    }
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
    fn dry_run(&self) -> Result<bool, ApiError> {
        match self.get("dryRun") {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::BadRequest(format!(
                "dryRun: Unsupported value: \"{other}\": supported values: \"All\""
            ))),
        }
    }
    fn write_options(&self) -> Result<WriteOptions, ApiError> {
        Ok(WriteOptions {
            dry_run: self.dry_run()?,
            field_validation: FieldValidation::parse(self.get("fieldValidation"))?,
        })
    }
    fn list_params(&self, resource: &Resource) -> Result<ListParams, ApiError> {
        let label_selector = LabelSelector::parse(self.get("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let field_selector = FieldSelector::parse(self.get("fieldSelector").unwrap_or(""), |f| {
            resource.field_selectable(f)
        })
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let limit =
            match self.get("limit") {
                None | Some("") => None,
                Some(text) => Some(text.parse::<usize>().map_err(|_| {
                    ApiError::BadRequest(format!("limit: Invalid value: \"{text}\""))
                })?),
            };
        Ok(ListParams {
            label_selector,
            field_selector,
            limit,
            continue_token: self.get("continue").map(str::to_string),
            resource_version: self.get("resourceVersion").map(str::to_string),
            resource_version_match: self.get("resourceVersionMatch").map(str::to_string),
        })
    }
}

/// What form the client asked the response in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Object,
    Table,
    Metadata,
}

fn negotiate(headers: &HeaderMap) -> Form {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // The first acceptable media range wins, as in kube-apiserver.
    for range in accept.split(',') {
        let range = range.replace(' ', "");
        if range.contains("as=Table") {
            return Form::Table;
        }
        if range.contains("as=PartialObjectMetadata") {
            return Form::Metadata;
        }
        if range.starts_with("application/json")
            || range.starts_with("*/*")
            || range.starts_with("application/yaml")
        {
            return Form::Object;
        }
    }
    Form::Object
}

/// One parsed resource request.
struct Target<'a> {
    resource: &'a Resource,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

impl ApiServer {
    /// Entry point for every request.
    pub async fn handle(self: Arc<Self>, request: axum::extract::Request) -> HttpResponse {
        let started = Instant::now();
        let method = request.method().clone();
        let uri = request.uri().clone();
        let (parts, body) = request.into_parts();
        let user = match self.authenticator.authenticate(&parts) {
            Ok(user) => user,
            Err(error) => return error_response(&error),
        };
        let mut label = "other".to_string();
        let response = match self
            .route(&method, &uri, &parts.headers, body, &user, &mut label)
            .await
        {
            Ok(response) => response,
            Err(error) => {
                if error.code() >= 500 {
                    tracing::warn!(%method, %uri, %error, "request failed");
                }
                error_response(&error)
            }
        };
        self.metrics.record(
            method.as_str(),
            &label,
            response.status().as_u16(),
            started.elapsed(),
        );
        tracing::debug!(%method, %uri, code = response.status().as_u16(), elapsed_ms = started.elapsed().as_millis() as u64);
        response
    }

    async fn route(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Body,
        _user: &User,
        label: &mut String,
    ) -> Result<HttpResponse, ApiError> {
        let path = uri.path().trim_end_matches('/');
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let catalogue = &self.registry.catalogue;
        let aggregated = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .and_then(discovery::aggregated_version);
        match segments.as_slice() {
            [] => Ok(json_response(
                StatusCode::OK,
                &json!({"paths": ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/metrics", "/openapi/v3", "/readyz", "/version"]}),
            )),
            ["version"] => Ok(json_response(StatusCode::OK, &version())),
            ["healthz"] | ["livez"] => {
                Ok(bytes_response(StatusCode::OK, "text/plain", b"ok".to_vec()))
            }
            ["readyz"] => {
                if self.ready.load(std::sync::atomic::Ordering::SeqCst) {
                    Ok(bytes_response(StatusCode::OK, "text/plain", b"ok".to_vec()))
                } else {
                    Ok(bytes_response(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "text/plain",
                        b"not ready".to_vec(),
                    ))
                }
            }
            ["metrics"] => {
                let revision = self.registry.store.current_revision().await.unwrap_or(-1);
                Ok(bytes_response(
                    StatusCode::OK,
                    "text/plain; version=0.0.4",
                    self.metrics
                        .render(revision, self.registry.store.backend())
                        .into_bytes(),
                ))
            }
            ["openapi", "v3"] => Ok(bytes_response(
                StatusCode::OK,
                "application/json",
                openapi::documents(catalogue).index.clone(),
            )),
            ["openapi", "v3", rest @ ..] => {
                let documents = openapi::documents(catalogue);
                documents
                    .by_path
                    .get(&rest.join("/"))
                    .map(|doc| bytes_response(StatusCode::OK, "application/json", doc.clone()))
                    .ok_or_else(not_found_path)
            }
            ["openapi", "v2"] => Ok(bytes_response(
                StatusCode::OK,
                openapi::V2_PROTOBUF_CONTENT_TYPE,
                openapi::minimal_v2_protobuf(),
            )),
            ["api"] if aggregated.is_some() => Ok(aggregated_response(catalogue, true, aggregated)),
            ["api"] => Ok(json_response(
                StatusCode::OK,
                &discovery::api_versions(&self.server_address),
            )),
            ["apis"] if aggregated.is_some() => {
                Ok(aggregated_response(catalogue, false, aggregated))
            }
            ["apis"] => Ok(json_response(
                StatusCode::OK,
                &discovery::api_group_list(catalogue),
            )),
            ["api", version] => discovery::api_resource_list(catalogue, "", version)
                .map(|d| json_response(StatusCode::OK, &d))
                .ok_or_else(not_found_path),
            ["apis", group] => discovery::api_group(catalogue, group)
                .map(|d| json_response(StatusCode::OK, &d))
                .ok_or_else(not_found_path),
            ["apis", group, version] => discovery::api_resource_list(catalogue, group, version)
                .map(|d| json_response(StatusCode::OK, &d))
                .ok_or_else(not_found_path),
            ["api", version, rest @ ..] => {
                let target = self.target("", version, rest)?;
                *label = target.resource.plural.to_string();
                self.serve(method, uri, headers, body, target).await
            }
            ["apis", group, version, rest @ ..] => {
                let target = self.target(group, version, rest)?;
                *label = target.resource.plural.to_string();
                self.serve(method, uri, headers, body, target).await
            }
            _ => Err(not_found_path()),
        }
    }

    fn target<'a>(
        &'a self,
        group: &str,
        version: &str,
        rest: &[&str],
    ) -> Result<Target<'a>, ApiError> {
        let catalogue = &self.registry.catalogue;
        let lookup = |plural: &str| {
            catalogue
                .by_plural(group, version, plural)
                .ok_or_else(not_found_path)
        };
        let owned = |s: Option<&&str>| s.map(|s| s.to_string());
        // /namespaces/NS/PLURAL/... unless it is a namespace's own subresource.
        let namespaced_path = rest.len() >= 3
            && rest[0] == "namespaces"
            && !(rest.len() == 3 && matches!(rest[2], "status" | "finalize"));
        let target = if namespaced_path {
            let resource = lookup(rest[2])?;
            if !resource.namespaced {
                return Err(not_found_path());
            }
            Target {
                resource,
                namespace: Some(rest[1].to_string()),
                name: owned(rest.get(3)),
                subresource: owned(rest.get(4)),
            }
        } else {
            let plural = rest.first().ok_or_else(not_found_path)?;
            Target {
                resource: lookup(plural)?,
                namespace: None,
                name: owned(rest.get(1)),
                subresource: owned(rest.get(2)),
            }
        };
        if rest.len() > if namespaced_path { 5 } else { 3 } {
            return Err(not_found_path());
        }
        Ok(target)
    }

    async fn serve(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Body,
        target: Target<'_>,
    ) -> Result<HttpResponse, ApiError> {
        let query = Query::parse(uri)?;
        let resource = target.resource;
        let namespace = target.namespace.as_deref();
        let form = negotiate(headers);
        let subresource = match target.subresource.as_deref() {
            None => None,
            Some(name) => Some(
                resource
                    .subresources
                    .iter()
                    .copied()
                    .find(|s| s.name() == name)
                    .ok_or_else(not_found_path)?,
            ),
        };
        let registry = &self.registry;
        match (method.clone(), target.name.as_deref(), subresource) {
            (Method::GET, None, None) => {
                let params = query.list_params(resource)?;
                if query.flag("watch") {
                    return self.watch(resource, namespace, params, &query, form).await;
                }
                let list = registry.list(resource, namespace, &params).await?;
                let mut metadata = json!({"resourceVersion": list.resource_version.to_string()});
                if let Some(token) = &list.continue_token {
                    metadata["continue"] = json!(token);
                }
                if let Some(remaining) = list.remaining.filter(|r| *r > 0) {
                    metadata["remainingItemCount"] = json!(remaining);
                }
                let body = match form {
                    Form::Table => {
                        table(resource, &list.items, metadata, query.get("includeObject"))
                    }
                    Form::Metadata => json!({
                        "kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                        "metadata": metadata,
                        "items": list.items.iter().map(partial_metadata).collect::<Vec<_>>(),
                    }),
                    Form::Object => json!({
                        "kind": resource.list_kind(), "apiVersion": resource.api_version(),
                        "metadata": metadata, "items": list.items,
                    }),
                };
                Ok(json_response(StatusCode::OK, &body))
            }
            (Method::GET, Some(name), sub) => {
                let object = registry.get(resource, namespace, name).await?;
                if sub == Some(Subresource::Scale) {
                    return Ok(json_response(StatusCode::OK, &scale_of(&object)?));
                }
                let body = match form {
                    Form::Table => table(
                        resource,
                        std::slice::from_ref(&object),
                        json!({"resourceVersion": object["metadata"]["resourceVersion"]}),
                        query.get("includeObject"),
                    ),
                    Form::Metadata => partial_metadata(&object),
                    Form::Object => object,
                };
                Ok(json_response(StatusCode::OK, &body))
            }
            (Method::POST, None, None) => {
                let body = read_body(headers, body).await?;
                let written = registry
                    .create(resource, namespace, body, &query.write_options()?)
                    .await?;
                Ok(with_warnings(
                    json_response(StatusCode::CREATED, &written.object),
                    &written.warnings,
                ))
            }
            (Method::POST, Some(name), Some(Subresource::Binding)) => {
                let body = read_body(headers, body).await?;
                self.bind(resource, namespace, name, body, &query).await
            }
            (Method::PUT, Some(name), Some(Subresource::Scale)) => {
                let body = read_body(headers, body).await?;
                self.update_scale(
                    resource,
                    namespace,
                    name,
                    ScaleChange::Replace(body),
                    &query,
                )
                .await
            }
            (Method::PATCH, Some(name), Some(Subresource::Scale)) => {
                let patch_type = patch_type(headers)?;
                let patch = read_bytes(body).await?;
                self.update_scale(
                    resource,
                    namespace,
                    name,
                    ScaleChange::Patch(patch_type, patch),
                    &query,
                )
                .await
            }
            (
                Method::PUT,
                Some(name),
                sub @ (None | Some(Subresource::Status) | Some(Subresource::Finalize)),
            ) => {
                let body = read_body(headers, body).await?;
                let written = registry
                    .update(
                        resource,
                        namespace,
                        name,
                        body,
                        sub,
                        &query.write_options()?,
                    )
                    .await?;
                Ok(with_warnings(
                    json_response(StatusCode::OK, &written.object),
                    &written.warnings,
                ))
            }
            (Method::PATCH, Some(name), sub @ (None | Some(Subresource::Status))) => {
                let patch_type = patch_type(headers)?;
                let patch = read_bytes(body).await?;
                let written = registry
                    .patch(
                        resource,
                        namespace,
                        name,
                        Patch {
                            patch_type,
                            body: &patch,
                        },
                        sub,
                        &query.write_options()?,
                    )
                    .await?;
                let code = if written.created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                Ok(with_warnings(
                    json_response(code, &written.object),
                    &written.warnings,
                ))
            }
            (Method::DELETE, Some(name), None) => {
                let options = delete_options(headers, body, &query).await?;
                match registry.delete(resource, namespace, name, &options).await? {
                    Deleted::Gone(object) => Ok(json_response(
                        StatusCode::OK,
                        &success_status(resource, &object),
                    )),
                    Deleted::Pending(object) => Ok(json_response(StatusCode::OK, &object)),
                }
            }
            (Method::DELETE, None, None) => {
                let options = delete_options(headers, body, &query).await?;
                let params = query.list_params(resource)?;
                let items = registry
                    .delete_collection(resource, namespace, &params, &options)
                    .await?;
                Ok(json_response(
                    StatusCode::OK,
                    &json!({
                        "kind": resource.list_kind(), "apiVersion": resource.api_version(),
                        "metadata": {}, "items": items,
                    }),
                ))
            }
            _ => Err(ApiError::MethodNotAllowed(format!(
                "the server does not allow this method on the requested resource ({method})"
            ))),
        }
    }

    async fn bind(
        &self,
        pods: &Resource,
        namespace: Option<&str>,
        name: &str,
        binding: Value,
        query: &Query,
    ) -> Result<HttpResponse, ApiError> {
        let node = binding
            .pointer("/target/name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ApiError::BadRequest("binding target name is required".into()))?
            .to_string();
        let patch = json!({"spec": {"nodeName": node}});
        let current = self.registry.get(pods, namespace, name).await?;
        if let Some(existing) = current
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            return Err(ApiError::Conflict {
                subject: crate::error::Subject {
                    qualified_resource: "pods/binding".into(),
                    kind: "Binding".into(),
                    group: String::new(),
                    name: name.into(),
                },
                message: format!("pod {name} is already assigned to node \"{existing}\""),
            });
        }
        let mut patch_with_rv = patch;
        patch_with_rv["metadata"] =
            json!({"resourceVersion": current["metadata"]["resourceVersion"]});
        self.registry
            .patch(
                pods,
                namespace,
                name,
                Patch {
                    patch_type: PatchType::Merge,
                    body: patch_with_rv.to_string().as_bytes(),
                },
                None,
                &query.write_options()?,
            )
            .await?;
        Ok(json_response(
            StatusCode::CREATED,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        ))
    }

    async fn update_scale(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        change: ScaleChange,
        query: &Query,
    ) -> Result<HttpResponse, ApiError> {
        let current = self.registry.get(resource, namespace, name).await?;
        let scale = scale_of(&current)?;
        let new_scale = match change {
            ScaleChange::Replace(body) => body,
            ScaleChange::Patch(PatchType::Json, patch) => {
                let operations: json_patch::Patch = serde_json::from_slice(&patch)
                    .map_err(|e| ApiError::BadRequest(format!("error decoding patch: {e}")))?;
                let mut target = scale.clone();
                json_patch::patch(&mut target, &operations)
                    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
                target
            }
            ScaleChange::Patch(_, patch) => {
                let patch: Value = serde_json::from_slice(&patch)
                    .map_err(|e| ApiError::BadRequest(format!("error decoding patch: {e}")))?;
                let mut target = scale.clone();
                json_patch::merge(&mut target, &patch);
                target
            }
        };
        let replicas = new_scale
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .ok_or_else(|| ApiError::BadRequest("Scale spec.replicas must be an integer".into()))?;
        if replicas < 0 {
            return Err(ApiError::Invalid {
                subject: crate::error::Subject {
                    qualified_resource: resource.qualified(),
                    kind: "Scale".into(),
                    group: "autoscaling".into(),
                    name: name.into(),
                },
                causes: vec![crate::error::Cause {
                    reason: "FieldValueInvalid".into(),
                    field: "spec.replicas".into(),
                    message: format!(
                        "Invalid value: {replicas}: must be greater than or equal to 0"
                    ),
                }],
            });
        }
        let mut patch = json!({"spec": {"replicas": replicas}});
        // A Scale carrying a resourceVersion is a precondition on the object.
        if let Some(rv) = new_scale
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            patch["metadata"] = json!({"resourceVersion": rv});
        }
        let written = self
            .registry
            .patch(
                resource,
                namespace,
                name,
                Patch {
                    patch_type: PatchType::Merge,
                    body: patch.to_string().as_bytes(),
                },
                None,
                &query.write_options()?,
            )
            .await?;
        Ok(json_response(StatusCode::OK, &scale_of(&written.object)?))
    }

    async fn watch(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        params: ListParams,
        query: &Query,
        form: Form,
    ) -> Result<HttpResponse, ApiError> {
        let bookmarks = query.flag("allowWatchBookmarks");
        let timeout = query
            .get("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
            .map(Duration::from_secs)
            .unwrap_or(Duration::from_secs(1800));
        let requested = params.resource_version.clone().unwrap_or_default();
        let mut initial = Vec::new();
        let start = if requested.is_empty() || requested == "0" {
            // "Get state and start at most recent": the current objects as ADDED.
            let list = self
                .registry
                .list(
                    resource,
                    namespace,
                    &ListParams {
                        resource_version: None,
                        limit: None,
                        continue_token: None,
                        ..params.clone()
                    },
                )
                .await?;
            initial = list.items.into_iter().map(|o| ("ADDED", o)).collect();
            list.resource_version + 1
        } else {
            requested.parse::<i64>().map_err(|_| {
                ApiError::BadRequest(format!("invalid resource version: {requested}"))
            })? + 1
        };
        let key_prefix = match params.field_selector.exact_name() {
            Some(name) => resource.key(namespace, name),
            None => resource.namespace_prefix(namespace),
        };
        let stream = match self
            .registry
            .watch_caches
            .watch(&resource.key_prefix(), &key_prefix, start)
            .await
        {
            Ok(stream) => stream,
            Err(StoreError::Compacted {
                requested,
                compacted,
            }) => {
                // As kube-apiserver: a 200 whose only event is a 410 Status.
                let status = ApiError::Gone(format!(
                    "too old resource version: {} ({})",
                    requested - 1,
                    compacted
                ))
                .to_status();
                let line = format!("{}\n", json!({"type": "ERROR", "object": status}));
                return Ok(bytes_response(
                    StatusCode::OK,
                    "application/json",
                    line.into_bytes(),
                ));
            }
            Err(other) => return Err(other.into()),
        };
        let resource = resource.clone();
        let exact_key = params
            .field_selector
            .exact_name()
            .map(|_| key_prefix.clone());
        let include_object = query.get("includeObject").map(str::to_string);
        let render = move |kind: &str, object: Value| -> Bytes {
            let object = match form {
                Form::Table => table(
                    &resource,
                    std::slice::from_ref(&object),
                    json!({"resourceVersion": object["metadata"]["resourceVersion"]}),
                    include_object.as_deref(),
                ),
                Form::Metadata => partial_metadata(&object),
                Form::Object => object,
            };
            let mut line =
                serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
            line.push(b'\n');
            Bytes::from(line)
        };
        let bookmark_kind = (self.registry.catalogue.clone(), params.clone());
        let render_initial = render.clone();
        let initial = futures::stream::iter(
            initial
                .into_iter()
                .map(move |(kind, object)| render_initial(kind, object)),
        );
        let events = stream
            .filter_map(move |item| {
                let render = render.clone();
                let (_, params) = &bookmark_kind;
                let out = match item {
                    Ok(WatchItem::Event(event)) => {
                        if exact_key.as_deref().is_some_and(|k| k != event.kv.key) {
                            None
                        } else {
                            watch_event(&event, params).map(|(kind, object)| Ok(render(kind, object)))
                        }
                    }
                    Ok(WatchItem::Progress(revision)) if bookmarks => {
                        let _ = render;
                        Some(Ok(Bytes::from(format!(
                            "{}\n",
                            json!({"type": "BOOKMARK", "object": {"kind": bookmark_object_kind(&params.label_selector, &bookmark_kind.0, ""), "apiVersion": "", "metadata": {"resourceVersion": revision.to_string()}}})
                        ))))
                    }
                    Ok(WatchItem::Progress(_)) => None,
                    Err(StoreError::Compacted { requested, compacted }) => {
                        let status = ApiError::Gone(format!("too old resource version: {requested} ({compacted})")).to_status();
                        Some(Err(Bytes::from(format!("{}\n", json!({"type": "ERROR", "object": status})))))
                    }
                    Err(_) => Some(Err(Bytes::new())),
                };
                async move { out }
            })
            // An error item is the last thing sent.
            .scan(false, |done, item: Result<Bytes, Bytes>| {
                let out = if *done {
                    None
                } else {
                    match item {
                        Ok(bytes) => Some(bytes),
                        Err(bytes) => {
                            *done = true;
                            Some(bytes)
                        }
                    }
                };
                async move { out }
            });
        let body_stream = initial
            .chain(events)
            .take_until(tokio::time::sleep(timeout))
            .map(Ok::<Bytes, Infallible>);
        let mut response = Response::new(Body::from_stream(body_stream));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(response)
    }
}

/// A bookmark's object kind: kubectl and client-go only read its resourceVersion.
fn bookmark_object_kind(
    _: &LabelSelector,
    _: &Arc<crate::resources::Catalogue>,
    kind: &str,
) -> String {
    kind.to_string()
}

enum ScaleChange {
    Replace(Value),
    Patch(PatchType, Vec<u8>),
}

/// The watch event a client sees for one store event, after its selectors: a
/// modification that moves an object into the selection is ADDED, out of it
/// DELETED.
fn watch_event(event: &crate::store::Event, params: &ListParams) -> Option<(&'static str, Value)> {
    let previous = event.prev.as_ref().and_then(|kv| decode(kv).ok());
    let was = previous.as_ref().map(|p| params_match(params, p));
    match event.kind {
        EventKind::Put => {
            let object = decode(&event.kv).ok()?;
            let is = params_match(params, &object);
            match (was, is) {
                (None, true) | (Some(false), true) => Some(("ADDED", object)),
                (Some(true), true) => Some(("MODIFIED", object)),
                (Some(true), false) => Some(("DELETED", object)),
                _ => None,
            }
        }
        EventKind::Delete => {
            let mut object = previous?;
            if was != Some(true) {
                return None;
            }
            object["metadata"]["resourceVersion"] = json!(event.kv.mod_revision.to_string());
            Some(("DELETED", object))
        }
    }
}

fn params_match(params: &ListParams, object: &Value) -> bool {
    params.label_selector.matches_object(object) && params.field_selector.matches(object)
}

fn aggregated_response(
    catalogue: &crate::resources::Catalogue,
    legacy: bool,
    version: Option<&'static str>,
) -> HttpResponse {
    let version = version.unwrap_or("v2");
    let mut document = discovery::aggregated(catalogue, legacy);
    document["apiVersion"] = json!(format!("apidiscovery.k8s.io/{version}"));
    bytes_response(
        StatusCode::OK,
        &discovery::aggregated_content_type(version),
        serde_json::to_vec(&document).unwrap_or_default(),
    )
}

fn not_found_path() -> ApiError {
    ApiError::NotFound(crate::error::Subject::default())
}

fn version() -> Value {
    json!({
        "major": "1", "minor": "32", "gitVersion": "v1.32.0-berth",
        "gitCommit": env!("CARGO_PKG_VERSION"), "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "rust",
        "compiler": "rustc", "platform": "linux/amd64",
    })
}

fn partial_metadata(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object.get("metadata").cloned().unwrap_or(json!({})),
    })
}

fn table(
    resource: &Resource,
    items: &[Value],
    metadata: Value,
    include_object: Option<&str>,
) -> Value {
    let now = jiff::Timestamp::now();
    let columns: Vec<Value> = printers::columns(resource.kind)
        .iter()
        .map(|c| c.to_json())
        .collect();
    let rows: Vec<Value> = items
        .iter()
        .map(|item| {
            let mut row = json!({"cells": printers::cells(resource.kind, item, now)});
            match include_object.unwrap_or("Metadata") {
                "None" => {}
                "Object" => row["object"] = item.clone(),
                _ => row["object"] = partial_metadata(item),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata, "columnDefinitions": columns, "rows": rows,
    })
}

fn scale_of(object: &Value) -> Result<Value, ApiError> {
    let selector = object
        .pointer("/spec/selector")
        .map(|s| {
            crate::selectors::LabelSelector::from_label_selector_json(s)
                .map(|_| label_selector_text(s))
        })
        .transpose()
        .map_err(|e| ApiError::internal(e.to_string()))?
        .unwrap_or_default();
    let metadata = &object["metadata"];
    Ok(json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": metadata["name"], "namespace": metadata["namespace"], "uid": metadata["uid"],
            "resourceVersion": metadata["resourceVersion"], "creationTimestamp": metadata["creationTimestamp"],
        },
        "spec": {"replicas": object.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {"replicas": object.pointer("/status/replicas").cloned().unwrap_or(json!(0)), "selector": selector},
    }))
}

/// A `metav1.LabelSelector` as the text form Scale.status.selector carries.
fn label_selector_text(selector: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(map) = selector.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in map {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    for expression in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = expression["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = expression["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        match expression["operator"].as_str().unwrap_or_default() {
            "In" => parts.push(format!("{key} in ({})", values.join(","))),
            "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
            "Exists" => parts.push(key.to_string()),
            "DoesNotExist" => parts.push(format!("!{key}")),
            _ => {}
        }
    }
    parts.join(",")
}

fn success_status(resource: &Resource, object: &Value) -> Value {
    let mut details =
        json!({"name": name_of(object), "kind": resource.plural, "uid": object["metadata"]["uid"]});
    if !resource.group.is_empty() {
        details["group"] = json!(resource.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

fn patch_type(headers: &HeaderMap) -> Result<PatchType, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    PatchType::from_content_type(content_type).ok_or_else(|| {
        ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got \"{content_type}\")"
        ))
    })
}

async fn read_bytes(body: Body) -> Result<Vec<u8>, ApiError> {
    let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(error) => {
            if error
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(ApiError::RequestEntityTooLarge(
                    "Request entity too large: limit is 3145728".into(),
                ))
            } else {
                Err(ApiError::BadRequest(format!(
                    "reading request body: {error}"
                )))
            }
        }
    }
}

/// Decode a request body as JSON or YAML, by Content-Type (none means JSON).
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    let bytes = read_bytes(body).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let media = content_type.split(';').next().unwrap_or("").trim();
    match media {
        "" | "application/json" | "*/*" => serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::BadRequest(format!("error decoding JSON body: {e}"))),
        "application/yaml" | "application/x-yaml" | "text/yaml" => serde_yaml::from_slice(&bytes)
            .map_err(|e| ApiError::BadRequest(format!("error decoding YAML body: {e}"))),
        // kubectl's `create <generator>` commands send protobuf; the answer is JSON.
        crate::protobuf::CONTENT_TYPE => crate::protobuf::decode(&bytes)
            .map_err(|e| ApiError::BadRequest(format!("error decoding protobuf body: {e}"))),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got \"{other}\")"
        ))),
    }
}

async fn delete_options(
    headers: &HeaderMap,
    body: Body,
    query: &Query,
) -> Result<DeleteOptions, ApiError> {
    let bytes = read_bytes(body).await?;
    let body: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        let _ = headers;
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::BadRequest(format!("error decoding DeleteOptions: {e}")))?
    };
    let dry_run = query.dry_run()?
        || body["dryRun"]
            .as_array()
            .is_some_and(|d| d.iter().any(|v| v == "All"));
    Ok(DeleteOptions {
        grace_period_seconds: body["gracePeriodSeconds"]
            .as_i64()
            .or_else(|| query.get("gracePeriodSeconds").and_then(|g| g.parse().ok())),
        propagation_policy: body["propagationPolicy"]
            .as_str()
            .map(str::to_string)
            .or_else(|| query.get("propagationPolicy").map(str::to_string))
            .or_else(|| match body["orphanDependents"].as_bool() {
                Some(true) => Some("Orphan".into()),
                Some(false) => Some("Background".into()),
                None => None,
            }),
        precondition_uid: body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string),
        precondition_resource_version: body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string),
        dry_run,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_prefers_the_first_acceptable_range() {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"));
        assert_eq!(negotiate(&headers), Form::Table);
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/vnd.kubernetes.protobuf,application/json"),
        );
        assert_eq!(negotiate(&headers), Form::Object);
    }

    #[test]
    fn selector_text_of_a_deployment() {
        let selector = json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]});
        assert_eq!(label_selector_text(&selector), "app=web,tier in (a,b)");
    }
}
