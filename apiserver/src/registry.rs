//! The generic registry: Kubernetes REST semantics for every resource over the
//! [`Store`]. It owns the metadata the server sets (uid, creationTimestamp,
//! resourceVersion, generation, deletionTimestamp), preconditions and
//! optimistic concurrency, defaulting and validation calls, graceful deletion
//! and finalizers, paging and selectors. It takes and returns plain JSON values
//! and [`ApiError`]s; it knows nothing about HTTP.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::Arc;

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, Cause, Subject};
use crate::resources::{Catalogue, Resource, Subresource};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{KeyValue, ListOptions, Store, StoreError};
use crate::watch_cache::WatchCaches;
use crate::{openapi, strategic_merge, validation};

/// How strictly unknown fields in a request body are treated (`fieldValidation=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

impl FieldValidation {
    pub fn parse(text: Option<&str>) -> Result<Self, ApiError> {
        match text.unwrap_or("") {
            "" | "Warn" => Ok(Self::Warn),
            "Ignore" => Ok(Self::Ignore),
            "Strict" => Ok(Self::Strict),
            other => Err(ApiError::BadRequest(format!(
                "fieldValidation parameter unsupported: {other}"
            ))),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_validation: FieldValidation,
}

/// A successful write: the object as stored and any warnings for the client.
#[derive(Debug)]
pub struct Written {
    pub object: Value,
    pub warnings: Vec<String>,
    pub created: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub label_selector: LabelSelector,
    pub field_selector: FieldSelector,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
}

#[derive(Debug)]
pub struct ListOutput {
    pub items: Vec<Value>,
    pub resource_version: i64,
    pub continue_token: Option<String>,
    pub remaining: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    pub dry_run: bool,
}

#[derive(Debug)]
pub enum Deleted {
    /// The object is gone; this was its last state.
    Gone(Value),
    /// Deletion started but waits (grace period, finalizers); the object as it is now.
    Pending(Value),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        match content_type.split(';').next().unwrap_or("").trim() {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// A PATCH request's body and how to read it.
#[derive(Debug, Clone, Copy)]
pub struct Patch<'a> {
    pub patch_type: PatchType,
    pub body: &'a [u8],
}

/// Admission defaults the server applies on create (kube-apiserver's
/// DefaultTolerationSeconds plugin).
#[derive(Debug, Clone, Copy)]
pub struct Admission {
    pub not_ready_toleration_seconds: i64,
    pub unreachable_toleration_seconds: i64,
}

impl Default for Admission {
    fn default() -> Self {
        Self {
            not_ready_toleration_seconds: 300,
            unreachable_toleration_seconds: 300,
        }
    }
}

/// Give a new pod NoExecute tolerations for not-ready and unreachable nodes
/// unless it has its own, so it is evicted from a dead node after a while.
fn default_toleration_seconds(admission: &Admission, pod: &mut Value) {
    let Some(spec) = pod.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    if spec.get("tolerations").is_none_or(Value::is_null) {
        spec["tolerations"] = json!([]);
    }
    let Some(list) = spec.get_mut("tolerations").and_then(Value::as_array_mut) else {
        return;
    };
    for (key, seconds) in [
        (
            "node.kubernetes.io/not-ready",
            admission.not_ready_toleration_seconds,
        ),
        (
            "node.kubernetes.io/unreachable",
            admission.unreachable_toleration_seconds,
        ),
    ] {
        let covered = list.iter().any(|t| {
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
            let operator = t.get("operator").and_then(Value::as_str).unwrap_or("Equal");
            let tkey = t.get("key").and_then(Value::as_str).unwrap_or("");
            (tkey == key || (tkey.is_empty() && operator == "Exists"))
                && (effect.is_empty() || effect == "NoExecute")
        });
        if !covered {
            list.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}));
        }
    }
}

pub struct Registry {
    pub store: Arc<dyn Store>,
    pub catalogue: Arc<Catalogue>,
    pub watch_caches: WatchCaches,
    service_cidr: (Ipv4Addr, u8),
    admission: Admission,
    /// Serialises cluster IP allocation with the create that claims the IP.
    service_ip_lock: tokio::sync::Mutex<()>,
}

/// RFC 3339 to the second, as Kubernetes writes metadata timestamps.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn subject(resource: &Resource, name: &str) -> Subject {
    Subject {
        qualified_resource: resource.qualified(),
        kind: resource.kind.to_string(),
        group: resource.group.to_string(),
        name: name.to_string(),
    }
}

fn not_found(resource: &Resource, name: &str) -> ApiError {
    ApiError::NotFound(subject(resource, name))
}

fn conflict(resource: &Resource, name: &str) -> ApiError {
    ApiError::Conflict {
        subject: subject(resource, name),
        message: "the object has been modified; please apply your changes to the latest version and try again".into(),
    }
}

/// A write or delete that names a uid the object no longer has (it was
/// deleted and recreated under the same name).
fn uid_precondition_failed(
    resource: &Resource,
    name: &str,
    uid: &str,
    current: &Value,
) -> ApiError {
    ApiError::Conflict {
        subject: subject(resource, name),
        message: format!(
            "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
            string_at(current, "/metadata/uid").unwrap_or("")
        ),
    }
}

fn invalid(resource: &Resource, name: &str, causes: Vec<Cause>) -> ApiError {
    ApiError::Invalid {
        subject: subject(resource, name),
        causes,
    }
}

fn field_cause(reason: &str, field: &str, message: impl Into<String>) -> Cause {
    Cause {
        reason: reason.into(),
        field: field.into(),
        message: message.into(),
    }
}

fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    object["metadata"]
        .as_object_mut()
        .expect("metadata was just made an object")
}

pub fn name_of(object: &Value) -> &str {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn string_at<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Decode a stored value, stamping its `resourceVersion` from the store revision.
pub fn decode(kv: &KeyValue) -> Result<Value, ApiError> {
    let mut object: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::internal(format!("corrupt object at {}: {e}", kv.key)))?;
    metadata_mut(&mut object).insert(
        "resourceVersion".into(),
        Value::String(kv.mod_revision.to_string()),
    );
    Ok(object)
}

fn encode(object: &Value) -> Result<Vec<u8>, ApiError> {
    let mut stored = object.clone();
    // The revision is the store's business: never persist a stale copy of it.
    metadata_mut(&mut stored).remove("resourceVersion");
    serde_json::to_vec(&stored).map_err(ApiError::internal)
}

fn parse_resource_version(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .ok()
        .filter(|v| *v >= 0)
        .ok_or_else(|| ApiError::BadRequest(format!("invalid resource version: {text}")))
}

/// Paths of fields present (and not null) in `original` but absent from the
/// type-checked `normalized` copy: the fields the type does not know.
fn unknown_fields(original: &Value, normalized: &Value, path: &str, out: &mut Vec<String>) {
    match (original, normalized) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                if value.is_null() {
                    continue;
                }
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match b.get(key) {
                    Some(other) => unknown_fields(value, other, &child, out),
                    None => out.push(child),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
                unknown_fields(x, y, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Which parts of an object hold its desired state (a change there bumps
/// `generation`): everything but metadata and status.
fn spec_of(object: &Value) -> Value {
    let mut spec = object.clone();
    if let Some(map) = spec.as_object_mut() {
        for key in ["metadata", "status", "apiVersion", "kind"] {
            map.remove(key);
        }
    }
    spec
}

/// Metadata fields only the server writes.
const SERVER_OWNED_METADATA: &[&str] = &[
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
];

fn pending_finalizers(resource: &Resource, object: &Value) -> bool {
    let metadata = object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    let namespace = resource.group.is_empty()
        && resource.kind == "Namespace"
        && object
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
    metadata || namespace
}

struct ContinueToken {
    revision: i64,
    start_after: String,
}

fn encode_continue(revision: i64, start_after: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(json!({"v": "meta.k8s.io/v1", "rv": revision, "start": start_after}).to_string())
}

fn decode_continue(token: &str) -> Result<ContinueToken, ApiError> {
    let bad = || ApiError::BadRequest("continue key is not valid: illegal base64 data".into());
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| bad())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok(ContinueToken {
        revision: value["rv"].as_i64().ok_or_else(bad)?,
        start_after: value["start"].as_str().ok_or_else(bad)?.to_string(),
    })
}

fn generate_suffix() -> String {
    use rand::Rng;
    // Kubernetes' alphabet: no vowels (no words), no look-alike characters.
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

impl Registry {
    pub fn new(
        store: Arc<dyn Store>,
        catalogue: Arc<Catalogue>,
        service_cidr: (Ipv4Addr, u8),
        watch_progress: std::time::Duration,
        admission: Admission,
    ) -> Self {
        Self {
            admission,
            watch_caches: WatchCaches::new(store.clone()).with_progress_every(watch_progress),
            store,
            catalogue,
            service_cidr,
            service_ip_lock: tokio::sync::Mutex::new(()),
        }
    }

    pub async fn get(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let kv = self
            .store
            .get(&resource.key(namespace, name))
            .await?
            .ok_or_else(|| not_found(resource, name))?;
        decode(&kv)
    }

    pub async fn list(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<ListOutput, ApiError> {
        let prefix = resource.namespace_prefix(namespace);
        let mut revision = None;
        let mut start_after = None;
        if let Some(token) = params.continue_token.as_deref().filter(|t| !t.is_empty()) {
            let token = decode_continue(token)?;
            revision = Some(token.revision);
            start_after = Some(token.start_after);
        } else if let Some(rv) = params.resource_version.as_deref().filter(|v| !v.is_empty()) {
            let requested = parse_resource_version(rv)?;
            match params.resource_version_match.as_deref() {
                Some("Exact") => revision = Some(requested),
                Some("NotOlderThan") | None | Some("") => {
                    let current = self.store.current_revision().await?;
                    if requested > current {
                        return Err(ApiError::Timeout(format!(
                            "Too large resource version: {requested}, current: {current}"
                        )));
                    }
                }
                Some(other) => {
                    return Err(ApiError::BadRequest(format!(
                        "resourceVersionMatch: Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\""
                    )));
                }
            }
        }
        // A single-name field selector reads one key, not the collection.
        if let Some(name) = params.field_selector.exact_name()
            && params.continue_token.is_none()
        {
            let key = resource.key(namespace, name);
            let result = self
                .store
                .list(
                    &key,
                    ListOptions {
                        revision,
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| self.list_error(e, params))?;
            let mut items = Vec::new();
            for kv in result.items.iter().filter(|kv| kv.key == key) {
                let object = decode(kv)?;
                if self.matches(params, &object) {
                    items.push(object);
                }
            }
            return Ok(ListOutput {
                items,
                resource_version: result.revision,
                continue_token: None,
                remaining: None,
            });
        }
        let limit = params.limit.filter(|l| *l > 0);
        let filtering = !params.label_selector.is_empty() || !params.field_selector.is_empty();
        let mut items = Vec::new();
        loop {
            let result = self
                .store
                .list(
                    &prefix,
                    ListOptions {
                        revision,
                        limit,
                        start_after: start_after.clone(),
                    },
                )
                .await
                .map_err(|e| self.list_error(e, params))?;
            revision = Some(result.revision);
            let last_key = result.items.last().map(|kv| kv.key.clone());
            for kv in &result.items {
                let object = decode(kv)?;
                if self.matches(params, &object) {
                    items.push(object);
                }
            }
            let full = limit.is_some_and(|l| items.len() >= l);
            if !result.more {
                return Ok(ListOutput {
                    items,
                    resource_version: result.revision,
                    continue_token: None,
                    remaining: None,
                });
            }
            if full || !filtering {
                let last = last_key.unwrap_or_default();
                return Ok(ListOutput {
                    items,
                    resource_version: result.revision,
                    continue_token: Some(encode_continue(result.revision, &last)),
                    remaining: if filtering { None } else { result.remaining },
                });
            }
            start_after = last_key;
        }
    }

    fn list_error(&self, error: StoreError, params: &ListParams) -> ApiError {
        match error {
            StoreError::Compacted { .. } if params.continue_token.is_some() => ApiError::Gone(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.".into(),
            ),
            other => other.into(),
        }
    }

    pub fn matches(&self, params: &ListParams, object: &Value) -> bool {
        params.label_selector.matches_object(object) && params.field_selector.matches(object)
    }

    /// Type-check a request body against the resource's type: wrong JSON types
    /// are a 400, unknown fields are dropped (and warned about or refused as
    /// `fieldValidation` says).
    pub fn normalize(
        &self,
        resource: &Resource,
        mut body: Value,
        field_validation: FieldValidation,
    ) -> Result<(Value, Vec<String>), ApiError> {
        if !body.is_object() {
            return Err(ApiError::BadRequest(format!(
                "{} in version \"{}\" cannot be handled as a {}: the body must be a JSON object",
                resource.kind, resource.version, resource.kind
            )));
        }
        let expected_version = resource.api_version();
        match body.get("apiVersion").and_then(Value::as_str) {
            None | Some("") => body["apiVersion"] = json!(expected_version),
            Some(v) if v == expected_version => {}
            Some(v) => {
                return Err(ApiError::BadRequest(format!(
                    "the API version in the data ({v}) does not match the expected API version ({expected_version})"
                )));
            }
        }
        match body.get("kind").and_then(Value::as_str) {
            None | Some("") => body["kind"] = json!(resource.kind),
            Some(k) if k == resource.kind => {}
            Some(k) => {
                return Err(ApiError::BadRequest(format!(
                    "the kind in the data ({k}) does not match the expected kind ({})",
                    resource.kind
                )));
            }
        }
        let normalized = (resource.round_trip)(body.clone()).map_err(|e| {
            ApiError::BadRequest(format!(
                "{} in version \"{}\" cannot be handled as a {}: {e}",
                resource.kind, resource.version, resource.kind
            ))
        })?;
        let mut unknown = Vec::new();
        if field_validation != FieldValidation::Ignore {
            unknown_fields(&body, &normalized, "", &mut unknown);
        }
        let warnings: Vec<String> = unknown
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect();
        if field_validation == FieldValidation::Strict && !warnings.is_empty() {
            return Err(ApiError::BadRequest(format!(
                "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                resource.kind,
                resource.version,
                resource.kind,
                warnings.join(", ")
            )));
        }
        Ok((normalized, warnings))
    }

    async fn check_namespace_open(
        &self,
        namespace: &str,
        resource: &Resource,
    ) -> Result<(), ApiError> {
        let namespaces = self
            .catalogue
            .by_kind("", "Namespace")
            .ok_or_else(|| ApiError::internal("no namespaces resource"))?;
        let ns = self
            .store
            .get(&namespaces.key(None, namespace))
            .await?
            .ok_or_else(|| not_found(namespaces, namespace))?;
        let ns = decode(&ns)?;
        if ns
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|v| !v.is_null())
        {
            return Err(ApiError::Forbidden(format!(
                "{} is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                resource.qualified()
            )));
        }
        Ok(())
    }

    fn validation_errors(errors: Vec<validation::FieldError>) -> Vec<Cause> {
        errors
            .into_iter()
            .map(|e| field_cause(e.reason, &e.field, e.message))
            .collect()
    }

    pub async fn create(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        body: Value,
        options: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let (mut object, warnings) = self.normalize(resource, body, options.field_validation)?;
        // Namespace: the URL's, which a body may repeat but not contradict.
        let body_namespace = string_at(&object, "/metadata/namespace").map(str::to_string);
        if resource.namespaced {
            let namespace = namespace.unwrap_or("default");
            if let Some(ns) = body_namespace.as_deref()
                && ns != namespace
            {
                return Err(ApiError::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request".into(),
                ));
            }
            metadata_mut(&mut object).insert("namespace".into(), json!(namespace));
        } else {
            metadata_mut(&mut object).remove("namespace");
        }
        let namespace = resource.namespaced.then(|| namespace.unwrap_or("default"));
        if string_at(&object, "/metadata/name").is_none() {
            match string_at(&object, "/metadata/generateName") {
                Some(prefix) => {
                    let name = format!("{prefix}{}", generate_suffix());
                    metadata_mut(&mut object).insert("name".into(), json!(name));
                }
                None => {
                    return Err(invalid(
                        resource,
                        "",
                        vec![field_cause(
                            "FieldValueRequired",
                            "metadata.name",
                            "Required value: name or generateName is required",
                        )],
                    ));
                }
            }
        }
        let name = name_of(&object).to_string();
        if let Some(ns) = namespace {
            self.check_namespace_open(ns, resource).await?;
        }
        {
            let metadata = metadata_mut(&mut object);
            for key in SERVER_OWNED_METADATA {
                metadata.remove(*key);
            }
            metadata.remove("resourceVersion");
            metadata.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            metadata.insert("creationTimestamp".into(), json!(now_rfc3339()));
            metadata.insert("generation".into(), json!(1));
        }
        prepare_for_create(resource, &mut object);
        validation::default_object(resource.group, resource.kind, &mut object);
        if resource.group.is_empty() && resource.kind == "Pod" {
            default_toleration_seconds(&self.admission, &mut object);
        }
        let errors = validation::validate_create(resource.group, resource.kind, &object);
        if !errors.is_empty() {
            return Err(invalid(resource, &name, Self::validation_errors(errors)));
        }
        let _ip_guard = if resource.group.is_empty() && resource.kind == "Service" {
            let guard = self.service_ip_lock.lock().await;
            self.allocate_cluster_ip(resource, &name, &mut object)
                .await?;
            Some(guard)
        } else {
            None
        };
        if options.dry_run {
            return Ok(Written {
                object,
                warnings,
                created: true,
            });
        }
        let kv = self
            .store
            .create(&resource.key(namespace, &name), encode(&object)?)
            .await
            .map_err(|e| match e {
                StoreError::AlreadyExists(_) => ApiError::AlreadyExists(subject(resource, &name)),
                other => other.into(),
            })?;
        Ok(Written {
            object: decode(&kv)?,
            warnings,
            created: true,
        })
    }

    async fn allocate_cluster_ip(
        &self,
        resource: &Resource,
        name: &str,
        object: &mut Value,
    ) -> Result<(), ApiError> {
        if string_at(object, "/spec/type") == Some("ExternalName") {
            return Ok(());
        }
        let (base, bits) = self.service_cidr;
        let size: u32 = 1u32 << (32 - bits as u32);
        let base = u32::from(base);
        let requested = string_at(object, "/spec/clusterIP").map(str::to_string);
        if requested.as_deref() == Some("None") {
            object["spec"]["clusterIPs"] = json!(["None"]);
            return Ok(());
        }
        let all = self.list(resource, None, &ListParams::default()).await?;
        let taken: HashSet<String> = all
            .items
            .iter()
            .filter_map(|s| string_at(s, "/spec/clusterIP").map(str::to_string))
            .collect();
        let ip = match requested {
            Some(ip) => {
                let parsed: Ipv4Addr = ip.parse().map_err(|_| {
                    invalid(resource, name, vec![field_cause("FieldValueInvalid", "spec.clusterIP", format!("Invalid value: \"{ip}\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))])
                })?;
                let offset = u32::from(parsed).wrapping_sub(base);
                if offset >= size {
                    return Err(invalid(
                        resource,
                        name,
                        vec![field_cause(
                            "FieldValueInvalid",
                            "spec.clusterIPs",
                            format!(
                                "Invalid value: [\"{ip}\"]: failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}/{bits}",
                                Ipv4Addr::from(base)
                            ),
                        )],
                    ));
                }
                if taken.contains(&ip) {
                    return Err(invalid(
                        resource,
                        name,
                        vec![field_cause(
                            "FieldValueInvalid",
                            "spec.clusterIPs",
                            format!(
                                "Invalid value: [\"{ip}\"]: failed to allocate IP {ip}: provided IP is already allocated"
                            ),
                        )],
                    ));
                }
                ip
            }
            None => {
                use rand::Rng;
                // Offsets 0 (network) and size-1 (broadcast) are never handed out;
                // 1 is the `kubernetes` Service's by convention.
                let usable = size.saturating_sub(3).max(1);
                let start = rand::rng().random_range(0..usable);
                (0..usable)
                    .map(|i| Ipv4Addr::from(base + 2 + (start + i) % usable).to_string())
                    .find(|ip| !taken.contains(ip))
                    .ok_or_else(|| {
                        ApiError::internal("failed to allocate a service IP: range is full")
                    })?
            }
        };
        object["spec"]["clusterIP"] = json!(ip);
        object["spec"]["clusterIPs"] = json!([ip]);
        Ok(())
    }

    /// Replace an object (PUT), or one of its subresources.
    pub async fn update(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        body: Value,
        subresource: Option<Subresource>,
        options: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let (body, warnings) = self.normalize(resource, body, options.field_validation)?;
        self.check_identity(resource, namespace, name, &body)?;
        let mut written = self
            .write_with(resource, namespace, name, subresource, options, |_| {
                Ok(body.clone())
            })
            .await?;
        written.warnings.extend(warnings);
        Ok(written)
    }

    fn check_identity(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        body: &Value,
    ) -> Result<(), ApiError> {
        let body_name = name_of(body);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if resource.namespaced
            && let (Some(url), Some(ns)) = (namespace, string_at(body, "/metadata/namespace"))
            && url != ns
        {
            return Err(ApiError::BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request".into(),
            ));
        }
        Ok(())
    }

    /// The stored object at `key` with its store record; 404 when absent.
    async fn load(
        &self,
        resource: &Resource,
        key: &str,
        name: &str,
    ) -> Result<(KeyValue, Value), ApiError> {
        let kv = self
            .store
            .get(key)
            .await?
            .ok_or_else(|| not_found(resource, name))?;
        let current = decode(&kv)?;
        Ok((kv, current))
    }

    /// Apply a patch of the given type.
    pub async fn patch(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        patch: Patch<'_>,
        subresource: Option<Subresource>,
        options: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let Patch {
            patch_type,
            body: patch,
        } = patch;
        let patch_value: Value = match patch_type {
            PatchType::Apply => serde_yaml::from_slice(patch)
                .map_err(|e| ApiError::BadRequest(format!("error decoding YAML: {e}")))?,
            _ => serde_json::from_slice(patch)
                .map_err(|e| ApiError::BadRequest(format!("error decoding patch: {e}")))?,
        };
        if patch_type == PatchType::Apply {
            let exists = self
                .store
                .get(&resource.key(namespace, name))
                .await?
                .is_some();
            if !exists {
                self.check_identity(resource, namespace, name, &patch_value)?;
                let mut body = patch_value;
                metadata_mut(&mut body).insert("name".into(), json!(name));
                return self.create(resource, namespace, body, options).await;
            }
        }
        let schema_doc = openapi::schema_definitions(&self.catalogue);
        let root = openapi::definition_name(resource);
        let field_validation = options.field_validation;
        // Only a patch that names a resourceVersion is a precondition; any other
        // patch is re-applied to the newest object when it loses a race.
        let pins_version = match patch_type {
            PatchType::Json => patch_value.as_array().is_some_and(|ops| {
                ops.iter().any(|op| {
                    op["path"]
                        .as_str()
                        .is_some_and(|p| p.starts_with("/metadata/resourceVersion"))
                })
            }),
            _ => patch_value
                .pointer("/metadata/resourceVersion")
                .is_some_and(|v| !v.is_null()),
        };
        let mut warnings = Vec::new();
        let mut written = self
            .write_with(resource, namespace, name, subresource, options, |current| {
                let patched = apply_patch(patch_type, current, &patch_value, &schema_doc, &root)?;
                let (mut normalized, found) =
                    self.normalize(resource, patched, field_validation)?;
                if !pins_version {
                    metadata_mut(&mut normalized).remove("resourceVersion");
                }
                warnings = found;
                Ok(normalized)
            })
            .await?;
        written.warnings.extend(warnings);
        Ok(written)
    }

    /// The update loop shared by PUT and PATCH: read, build the new object from
    /// the current one, enforce preconditions and server-owned fields, validate,
    /// and compare-and-swap; retry on a lost race unless the client pinned a
    /// resourceVersion.
    async fn write_with(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        subresource: Option<Subresource>,
        options: &WriteOptions,
        mut make: impl FnMut(&Value) -> Result<Value, ApiError>,
    ) -> Result<Written, ApiError> {
        let namespace = resource.namespaced.then(|| namespace.unwrap_or("default"));
        let key = resource.key(namespace, name);
        // As kube-apiserver's GuaranteedUpdate: an unpinned write retries until
        // it wins; a pinned one returns its conflict at once.
        loop {
            let (kv, current) = self.load(resource, &key, name).await?;
            let mut new = make(&current)?;
            self.check_identity(resource, namespace, name, &new)?;
            let pinned = string_at(&new, "/metadata/resourceVersion").map(str::to_string);
            if let Some(rv) = &pinned
                && rv != &kv.mod_revision.to_string()
            {
                return Err(conflict(resource, name));
            }
            if let Some(uid) = string_at(&new, "/metadata/uid")
                && Some(uid) != string_at(&current, "/metadata/uid")
            {
                return Err(uid_precondition_failed(resource, name, uid, &current));
            }
            new = merge_server_fields(resource, &current, new, subresource);
            validation::default_object(resource.group, resource.kind, &mut new);
            let errors = validation::validate_update(resource.group, resource.kind, &new, &current);
            if !errors.is_empty() {
                return Err(invalid(resource, name, Self::validation_errors(errors)));
            }
            if spec_of(&new) != spec_of(&current) {
                let generation = current
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                metadata_mut(&mut new).insert("generation".into(), json!(generation + 1));
            }
            let terminating = new
                .pointer("/metadata/deletionTimestamp")
                .is_some_and(|v| !v.is_null());
            // The last finalizer removed from a deleting object: it goes now.
            if terminating && !pending_finalizers(resource, &new) {
                if options.dry_run {
                    return Ok(Written {
                        object: new,
                        warnings: vec![],
                        created: false,
                    });
                }
                match self.store.delete(&key, Some(kv.mod_revision)).await {
                    Ok(_) => {
                        return Ok(Written {
                            object: new,
                            warnings: vec![],
                            created: false,
                        });
                    }
                    Err(StoreError::Conflict { .. }) if pinned.is_none() => continue,
                    Err(StoreError::Conflict { .. }) => return Err(conflict(resource, name)),
                    Err(StoreError::NotFound(_)) => return Err(not_found(resource, name)),
                    Err(other) => return Err(other.into()),
                }
            }
            let mut unchanged = new.clone();
            metadata_mut(&mut unchanged)
                .insert("resourceVersion".into(), json!(kv.mod_revision.to_string()));
            if unchanged == current || options.dry_run {
                return Ok(Written {
                    object: if options.dry_run { new } else { current },
                    warnings: vec![],
                    created: false,
                });
            }
            match self
                .store
                .update(&key, encode(&new)?, kv.mod_revision)
                .await
            {
                Ok(kv) => {
                    return Ok(Written {
                        object: decode(&kv)?,
                        warnings: vec![],
                        created: false,
                    });
                }
                Err(StoreError::Conflict { .. }) if pinned.is_none() => continue,
                Err(StoreError::Conflict { .. }) => return Err(conflict(resource, name)),
                Err(StoreError::NotFound(_)) => return Err(not_found(resource, name)),
                Err(other) => return Err(other.into()),
            }
        }
    }

    pub async fn delete(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        let namespace = resource.namespaced.then(|| namespace.unwrap_or("default"));
        let key = resource.key(namespace, name);
        // As kube-apiserver's GuaranteedUpdate: an unpinned write retries until
        // it wins; a pinned one returns its conflict at once.
        loop {
            let (kv, current) = self.load(resource, &key, name).await?;
            if let Some(uid) = options.precondition_uid.as_deref()
                && Some(uid) != string_at(&current, "/metadata/uid")
            {
                return Err(uid_precondition_failed(resource, name, uid, &current));
            }
            if let Some(rv) = options.precondition_resource_version.as_deref()
                && rv != kv.mod_revision.to_string()
            {
                return Err(ApiError::Conflict {
                    subject: subject(resource, name),
                    message: format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        kv.mod_revision
                    ),
                });
            }
            let mut next = current.clone();
            let now = now_rfc3339();
            let mut waits = false;
            // Graceful pod deletion: a scheduled, running pod gets a deadline and
            // is removed when its kubelet confirms with grace 0.
            if resource.group.is_empty() && resource.kind == "Pod" {
                let scheduled = string_at(&current, "/spec/nodeName").is_some();
                let finished = matches!(
                    string_at(&current, "/status/phase"),
                    Some("Succeeded" | "Failed")
                );
                let grace = options.grace_period_seconds.unwrap_or_else(|| {
                    current
                        .pointer("/spec/terminationGracePeriodSeconds")
                        .and_then(Value::as_i64)
                        .unwrap_or(30)
                });
                let existing = current
                    .pointer("/metadata/deletionGracePeriodSeconds")
                    .and_then(Value::as_i64);
                if scheduled && !finished && grace > 0 {
                    if existing.is_none_or(|e| grace < e) {
                        let deadline =
                            jiff::Timestamp::now() + jiff::SignedDuration::from_secs(grace);
                        let metadata = metadata_mut(&mut next);
                        metadata.insert(
                            "deletionTimestamp".into(),
                            json!(deadline.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
                        );
                        metadata.insert("deletionGracePeriodSeconds".into(), json!(grace));
                    }
                    waits = true;
                }
            }
            let policy = options.propagation_policy.as_deref();
            let finalizer = match policy {
                Some("Foreground") => Some("foregroundDeletion"),
                Some("Orphan") => Some("orphan"),
                Some("Background") | None => None,
                Some(other) => {
                    return Err(ApiError::BadRequest(format!(
                        "propagationPolicy: Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
                    )));
                }
            };
            let already_deleting = current
                .pointer("/metadata/deletionTimestamp")
                .is_some_and(|v| !v.is_null());
            if let Some(finalizer) = finalizer
                && !already_deleting
            {
                let metadata = metadata_mut(&mut next);
                let list = metadata.entry("finalizers").or_insert_with(|| json!([]));
                if let Some(list) = list.as_array_mut()
                    && !list.iter().any(|f| f == finalizer)
                {
                    list.push(json!(finalizer));
                }
            }
            if pending_finalizers(resource, &next) {
                waits = true;
                if !already_deleting {
                    let metadata = metadata_mut(&mut next);
                    metadata
                        .entry("deletionTimestamp")
                        .or_insert_with(|| json!(now));
                    metadata
                        .entry("deletionGracePeriodSeconds")
                        .or_insert_with(|| json!(0));
                }
                if resource.group.is_empty() && resource.kind == "Namespace" {
                    next["status"]["phase"] = json!("Terminating");
                }
            }
            if options.dry_run {
                return Ok(if waits {
                    Deleted::Pending(next)
                } else {
                    Deleted::Gone(current)
                });
            }
            if waits {
                if next == current {
                    return Ok(Deleted::Pending(current));
                }
                match self
                    .store
                    .update(&key, encode(&next)?, kv.mod_revision)
                    .await
                {
                    Ok(kv) => return Ok(Deleted::Pending(decode(&kv)?)),
                    Err(StoreError::Conflict { .. } | StoreError::NotFound(_)) => continue,
                    Err(other) => return Err(other.into()),
                }
            }
            match self.store.delete(&key, Some(kv.mod_revision)).await {
                Ok((last, _)) => return Ok(Deleted::Gone(decode(&last)?)),
                Err(StoreError::Conflict { .. }) => continue,
                Err(StoreError::NotFound(_)) => return Err(not_found(resource, name)),
                Err(other) => return Err(other.into()),
            }
        }
    }

    pub async fn delete_collection(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        params: &ListParams,
        options: &DeleteOptions,
    ) -> Result<Vec<Value>, ApiError> {
        let listed = self.list(resource, namespace, params).await?;
        let mut deleted = Vec::new();
        for object in listed.items {
            let ns = string_at(&object, "/metadata/namespace").map(str::to_string);
            match self
                .delete(resource, ns.as_deref(), name_of(&object), options)
                .await
            {
                Ok(Deleted::Gone(o) | Deleted::Pending(o)) => deleted.push(o),
                Err(ApiError::NotFound(_)) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(deleted)
    }

    /// Make sure the namespaces every cluster has exist.
    pub async fn ensure_system_namespaces(&self) -> Result<(), ApiError> {
        let namespaces = self
            .catalogue
            .by_kind("", "Namespace")
            .ok_or_else(|| ApiError::internal("no namespaces resource"))?
            .clone();
        for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            match self
                .create(&namespaces, None, body, &WriteOptions::default())
                .await
            {
                Ok(_) | Err(ApiError::AlreadyExists(_)) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(())
    }
}

/// Strategy hooks on create: status starts as the server says, not the client.
fn prepare_for_create(resource: &Resource, object: &mut Value) {
    if !resource.has(Subresource::Status) {
        return;
    }
    let kind = (resource.group, resource.kind);
    match kind {
        ("", "Pod") => {
            object["status"] = json!({"phase": "Pending"});
        }
        ("", "Namespace") => {
            object["status"] = json!({"phase": "Active"});
        }
        ("", "Service") => {
            object["status"] = json!({"loadBalancer": {}});
        }
        // Nodes register with the status their kubelet reports.
        ("", "Node") => {}
        _ => {
            if let Some(map) = object.as_object_mut() {
                map.insert("status".into(), json!({}));
            }
        }
    }
}

/// Keep what the client may not change: server-owned metadata always; `status`
/// on a main-resource write of a kind with a status subresource; everything but
/// `status` on a status write.
fn merge_server_fields(
    resource: &Resource,
    current: &Value,
    mut new: Value,
    subresource: Option<Subresource>,
) -> Value {
    if subresource == Some(Subresource::Finalize) {
        let mut merged = current.clone();
        merged["spec"]["finalizers"] = new
            .pointer("/spec/finalizers")
            .cloned()
            .unwrap_or(json!([]));
        if let Some(rv) = new.pointer("/metadata/resourceVersion").cloned() {
            metadata_mut(&mut merged).insert("resourceVersion".into(), rv);
        }
        return merged;
    }
    if subresource == Some(Subresource::Status) {
        let mut merged = current.clone();
        merged["status"] = new.get("status").cloned().unwrap_or(json!({}));
        if let Some(rv) = new.pointer("/metadata/resourceVersion").cloned() {
            metadata_mut(&mut merged).insert("resourceVersion".into(), rv);
        }
        return merged;
    }
    if resource.has(Subresource::Status) {
        match current.get("status") {
            Some(status) => new["status"] = status.clone(),
            None => {
                if let Some(map) = new.as_object_mut() {
                    map.remove("status");
                }
            }
        }
    }
    let current_meta = current.get("metadata").cloned().unwrap_or(json!({}));
    let metadata = metadata_mut(&mut new);
    for key in SERVER_OWNED_METADATA {
        match current_meta.get(*key) {
            Some(value) => {
                metadata.insert((*key).into(), value.clone());
            }
            None => {
                metadata.remove(*key);
            }
        }
    }
    for key in ["name", "namespace"] {
        if let Some(value) = current_meta.get(key) {
            metadata.insert(key.into(), value.clone());
        }
    }
    new
}

/// Apply a patch to the current object's JSON.
fn apply_patch(
    patch_type: PatchType,
    current: &Value,
    patch: &Value,
    definitions: &Map<String, Value>,
    root: &str,
) -> Result<Value, ApiError> {
    match patch_type {
        PatchType::Json => {
            let operations: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::BadRequest(format!("error decoding patch: {e}")))?;
            let mut target = current.clone();
            json_patch::patch(&mut target, &operations).map_err(|e| {
                ApiError::Invalid {
                    subject: Subject::default(),
                    causes: vec![field_cause("FieldValueInvalid", "", e.to_string())],
                }
                .to_bad_request()
            })?;
            Ok(target)
        }
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(ApiError::BadRequest(
                    "error decoding patch: a merge patch must be a JSON object".into(),
                ));
            }
            let mut target = current.clone();
            json_patch::merge(&mut target, patch);
            Ok(target)
        }
        PatchType::Strategic | PatchType::Apply => {
            let root_schema = json!({"$ref": format!("#/components/schemas/{root}")});
            let view = strategic_merge::SchemaView {
                definitions,
                node: &root_schema,
            };
            let view = definitions.contains_key(root).then_some(view);
            strategic_merge::apply(current, patch, view)
                .map_err(|e| ApiError::BadRequest(e.to_string()))
        }
    }
}

impl ApiError {
    fn to_bad_request(&self) -> ApiError {
        match self {
            ApiError::Invalid { causes, .. } => ApiError::BadRequest(
                causes
                    .iter()
                    .map(|c| c.message.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_reported_with_their_paths() {
        let original = json!({"spec": {"replicas": 1, "bogus": 2, "template": {"spec": {"containers": [{"name": "a", "imagePullPolcy": "x"}]}}}, "metadata": {"creationTimestamp": null}});
        let normalized = json!({"spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "a"}]}}}, "metadata": {}});
        let mut found = Vec::new();
        unknown_fields(&original, &normalized, "", &mut found);
        assert_eq!(
            found,
            [
                "spec.bogus",
                "spec.template.spec.containers[0].imagePullPolcy"
            ]
        );
    }

    #[test]
    fn pods_get_default_eviction_tolerations_unless_they_have_their_own() {
        let admission = Admission {
            not_ready_toleration_seconds: 300,
            unreachable_toleration_seconds: 60,
        };
        let mut pod = json!({"spec": {"containers": []}});
        default_toleration_seconds(&admission, &mut pod);
        assert_eq!(
            pod["spec"]["tolerations"][1],
            json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60})
        );
        let mut own = json!({"spec": {"tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1}]}});
        default_toleration_seconds(&admission, &mut own);
        let tolerations = own["spec"]["tolerations"].as_array().unwrap();
        assert_eq!(tolerations.len(), 2);
        assert_eq!(tolerations[0]["tolerationSeconds"], 1);
    }

    #[test]
    fn continue_tokens_round_trip_and_garbage_is_a_bad_request() {
        let token = decode_continue(&encode_continue(42, "/registry/core/pods/default/a")).unwrap();
        assert_eq!(token.revision, 42);
        assert_eq!(token.start_after, "/registry/core/pods/default/a");
        assert!(matches!(
            decode_continue("not base64!"),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn status_write_changes_only_status() {
        let catalogue = Catalogue::new(crate::resources::builtin());
        let deployments = catalogue.by_kind("apps", "Deployment").unwrap();
        let current = json!({"metadata": {"name": "web", "uid": "u1", "generation": 3}, "spec": {"replicas": 2}, "status": {"replicas": 1}});
        let new = json!({"metadata": {"name": "web", "labels": {"x": "y"}}, "spec": {"replicas": 9}, "status": {"replicas": 2}});
        let merged = merge_server_fields(deployments, &current, new, Some(Subresource::Status));
        assert_eq!(merged["spec"]["replicas"], 2);
        assert_eq!(merged["status"]["replicas"], 2);
        assert!(merged["metadata"].get("labels").is_none());
    }

    #[test]
    fn main_write_keeps_status_and_server_metadata() {
        let catalogue = Catalogue::new(crate::resources::builtin());
        let deployments = catalogue.by_kind("apps", "Deployment").unwrap();
        let current = json!({"metadata": {"name": "web", "uid": "u1", "generation": 3, "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"replicas": 2}, "status": {"replicas": 1}});
        let new = json!({"metadata": {"name": "web", "uid": "forged", "generation": 99}, "spec": {"replicas": 9}, "status": {"replicas": 7}});
        let merged = merge_server_fields(deployments, &current, new, None);
        assert_eq!(merged["spec"]["replicas"], 9);
        assert_eq!(merged["status"]["replicas"], 1);
        assert_eq!(merged["metadata"]["uid"], "u1");
        assert_eq!(merged["metadata"]["generation"], 3);
    }
}
