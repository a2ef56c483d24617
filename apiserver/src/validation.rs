//! Defaulting and validation of built-in objects on create and update, as
//! kube-apiserver does it (`pkg/apis/*/v1/defaults.go`, `pkg/apis/*/validation`):
//! the defaults `kubectl get -o yaml` shows, and field errors with Kubernetes'
//! own paths and messages, which the registry turns into a 422 `Status`. It
//! works on JSON values that already passed type checking; it does no I/O and
//! never decides anything about storage.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value, json};

/// One invalid field, as a Kubernetes `StatusCause`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// "FieldValueRequired", "FieldValueInvalid", "FieldValueNotSupported",
    /// "FieldValueDuplicate", "FieldValueForbidden", "FieldValueTooLong", "FieldValueNotFound".
    pub reason: &'static str,
    /// Field path as Kubernetes prints it: "spec.template.spec.containers[0].image".
    pub field: String,
    /// Kubernetes' text, e.g. `Required value`.
    pub message: String,
}

impl FieldError {
    /// "field: message", as in Kubernetes' aggregate error.
    pub fn to_string_with_field(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}

const DNS1123_SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1123_LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_LABEL: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const LABEL_VALUE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const QUALIFIED_NAME: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const CONFIG_KEY: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
const ENV_VAR_NAME: &str = "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')";
const QUANTITY: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

// ---------------------------------------------------------------- formats

fn is_dns1123_label(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

fn is_dns1123_subdomain(text: &str) -> bool {
    !text.is_empty() && text.split('.').all(is_dns1123_label)
}

fn is_dns1035_label(text: &str) -> bool {
    is_dns1123_label(text) && text.as_bytes()[0].is_ascii_lowercase()
}

/// Kubernetes' messages for a name that must be a DNS-1123 subdomain.
pub fn dns1123_subdomain_errors(text: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if text.len() > 253 {
        errors.push("must be no more than 253 characters".to_string());
    }
    if !is_dns1123_subdomain(text) {
        errors.push(DNS1123_SUBDOMAIN.to_string());
    }
    errors
}

pub fn dns1123_label_errors(text: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if text.len() > 63 {
        errors.push("must be no more than 63 characters".to_string());
    }
    if !is_dns1123_label(text) {
        errors.push(DNS1123_LABEL.to_string());
    }
    errors
}

fn dns1035_label_errors(text: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if text.len() > 63 {
        errors.push("must be no more than 63 characters".to_string());
    }
    if !is_dns1035_label(text) {
        errors.push(DNS1035_LABEL.to_string());
    }
    errors
}

fn is_label_value(text: &str) -> bool {
    text.is_empty()
        || (text.len() <= 63
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && text.as_bytes()[0].is_ascii_alphanumeric()
            && text.as_bytes()[text.len() - 1].is_ascii_alphanumeric())
}

/// A qualified name (`prefix/name` with a DNS subdomain prefix), as label and
/// annotation keys must be.
fn qualified_name_errors(text: &str) -> Vec<String> {
    let (prefix, name) = match text.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, text),
    };
    let mut errors = Vec::new();
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            errors.push("prefix part must be non-empty".to_string());
        } else {
            errors.extend(
                dns1123_subdomain_errors(prefix)
                    .into_iter()
                    .map(|e| format!("prefix part {e}")),
            );
        }
    }
    if name.is_empty() {
        errors.push("name part must be non-empty".to_string());
    } else {
        if name.len() > 63 {
            errors.push("name part must be no more than 63 characters".to_string());
        }
        let ok = name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && name.as_bytes()[0].is_ascii_alphanumeric()
            && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
        if !ok {
            errors.push(QUALIFIED_NAME.to_string());
        }
    }
    errors
}

fn is_config_key(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && text != "."
        && text != ".."
}

fn is_env_var_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && !text.as_bytes()[0].is_ascii_digit()
}

/// A Kubernetes quantity ("100m", "1.5", "128Mi", "1G", "1e3") in base units.
pub fn parse_quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    if number.is_empty() || number == "+" || number == "-" || number.matches('.').count() > 1 {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let multiplier = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exponent if exponent.starts_with(['e', 'E']) => {
            let power: i32 = exponent[1..].parse().ok()?;
            10f64.powi(power)
        }
        _ => return None,
    };
    Some(value * multiplier)
}

// ---------------------------------------------------------------- errors

/// Collects field errors with Kubernetes' message shapes.
#[derive(Default)]
struct Errors(Vec<FieldError>);

fn quoted(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

impl Errors {
    fn required(&mut self, field: &str, detail: &str) {
        let message = if detail.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {detail}")
        };
        self.push("FieldValueRequired", field, message);
    }
    fn invalid(&mut self, field: &str, value: &Value, detail: &str) {
        self.push(
            "FieldValueInvalid",
            field,
            format!("Invalid value: {}: {detail}", quoted(value)),
        );
    }
    fn not_supported(&mut self, field: &str, value: &str, supported: &[&str]) {
        let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        self.push(
            "FieldValueNotSupported",
            field,
            format!(
                "Unsupported value: {value:?}: supported values: {}",
                list.join(", ")
            ),
        );
    }
    fn duplicate(&mut self, field: &str, value: &Value) {
        self.push(
            "FieldValueDuplicate",
            field,
            format!("Duplicate value: {}", quoted(value)),
        );
    }
    fn not_found(&mut self, field: &str, value: &Value) {
        self.push(
            "FieldValueNotFound",
            field,
            format!("Not found: {}", quoted(value)),
        );
    }
    fn forbidden(&mut self, field: &str, detail: &str) {
        self.push("FieldValueForbidden", field, format!("Forbidden: {detail}"));
    }
    fn too_long(&mut self, field: &str, max: usize) {
        self.push(
            "FieldValueTooLong",
            field,
            format!("Too long: must have at most {max} bytes"),
        );
    }
    fn push(&mut self, reason: &'static str, field: &str, message: String) {
        self.0.push(FieldError {
            reason,
            field: field.to_string(),
            message,
        });
    }
}

fn str_at<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

fn array_at<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn object_at<'a>(value: &'a Value, key: &str) -> Option<&'a Map<String, Value>> {
    value.get(key).and_then(Value::as_object)
}

// ---------------------------------------------------------------- defaulting

fn set_default(object: &mut Value, key: &str, value: Value) {
    if let Some(map) = object.as_object_mut()
        && map.get(key).is_none_or(Value::is_null)
    {
        map.insert(key.to_string(), value);
    }
}

/// The object at `key`, made an empty object first if missing; None when
/// either is not an object (defaulting then leaves it alone).
fn child<'a>(object: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    set_default(object, key, json!({}));
    object
        .as_object_mut()?
        .get_mut(key)
        .filter(|v| v.is_object())
}

fn image_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn default_container(container: &mut Value) {
    let image = str_at(container, "image").unwrap_or("").to_string();
    set_default(
        container,
        "imagePullPolicy",
        json!(image_pull_policy(&image)),
    );
    set_default(
        container,
        "terminationMessagePath",
        json!("/dev/termination-log"),
    );
    set_default(container, "terminationMessagePolicy", json!("File"));
    set_default(container, "resources", json!({}));
    if let Some(ports) = container.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter(|p| p.is_object()) {
            set_default(port, "protocol", json!("TCP"));
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(probe) = container.get_mut(probe).filter(|p| p.is_object()) {
            set_default(probe, "timeoutSeconds", json!(1));
            set_default(probe, "periodSeconds", json!(10));
            set_default(probe, "successThreshold", json!(1));
            set_default(probe, "failureThreshold", json!(3));
            if let Some(http) = probe.get_mut("httpGet").filter(|p| p.is_object()) {
                set_default(http, "path", json!("/"));
                set_default(http, "scheme", json!("HTTP"));
            }
        }
    }
}

fn default_pod_spec(spec: &mut Value) {
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "enableServiceLinks", json!(true));
    for list in ["containers", "initContainers"] {
        if let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for container in containers.iter_mut().filter(|c| c.is_object()) {
                default_container(container);
            }
        }
    }
    if let Some(volumes) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
        for volume in volumes.iter_mut().filter(|v| v.is_object()) {
            for source in ["configMap", "secret"] {
                if let Some(source) = volume.get_mut(source).filter(|s| s.is_object()) {
                    set_default(source, "defaultMode", json!(420));
                }
            }
            if volume.get("emptyDir").is_some_and(Value::is_null) {
                volume["emptyDir"] = json!({});
            }
        }
    }
}

fn default_template(spec: &mut Value) {
    let Some(template) = child(spec, "template") else {
        return;
    };
    set_default(template, "metadata", json!({}));
    if let Some(pod_spec) = child(template, "spec") {
        default_pod_spec(pod_spec);
    }
}

/// The QoS class Kubernetes computes from requests and limits.
fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = array_at(spec, "containers")
        .iter()
        .chain(array_at(spec, "initContainers"))
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for container in containers {
        let resources = container.get("resources").cloned().unwrap_or(json!({}));
        let requests = resources.get("requests").and_then(Value::as_object);
        let limits = resources.get("limits").and_then(Value::as_object);
        if requests.is_some_and(|r| !r.is_empty()) || limits.is_some_and(|l| !l.is_empty()) {
            any = true;
        }
        for resource in ["cpu", "memory"] {
            let limit = limits.and_then(|l| l.get(resource));
            let request = requests.and_then(|r| r.get(resource)).or(limit);
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

/// Fill defaults in place, as kube-apiserver's defaulting for that kind does.
pub fn default_object(group: &str, kind: &str, object: &mut Value) {
    if !object.is_object() {
        return;
    }
    match (group, kind) {
        ("", "Pod") => {
            if let Some(spec) = child(object, "spec") {
                default_pod_spec(spec);
                set_default(spec, "serviceAccountName", json!("default"));
                set_default(spec, "serviceAccount", json!("default"));
                set_default(spec, "priority", json!(0));
                set_default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
            }
            let qos = qos_class(object.get("spec").unwrap_or(&Value::Null));
            if let Some(status) = child(object, "status") {
                set_default(status, "phase", json!("Pending"));
                set_default(status, "qosClass", json!(qos));
            }
        }
        ("apps", "Deployment") => {
            let Some(spec) = child(object, "spec") else {
                return;
            };
            set_default(spec, "replicas", json!(1));
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(spec, "progressDeadlineSeconds", json!(600));
            if let Some(strategy) = child(spec, "strategy") {
                set_default(strategy, "type", json!("RollingUpdate"));
                if str_at(strategy, "type") == Some("RollingUpdate")
                    && let Some(rolling) = child(strategy, "rollingUpdate")
                {
                    set_default(rolling, "maxUnavailable", json!("25%"));
                    set_default(rolling, "maxSurge", json!("25%"));
                }
            }
            default_template(spec);
        }
        ("apps", "ReplicaSet") => {
            let Some(spec) = child(object, "spec") else {
                return;
            };
            set_default(spec, "replicas", json!(1));
            default_template(spec);
        }
        ("", "Service") => {
            let Some(spec) = child(object, "spec") else {
                return;
            };
            set_default(spec, "type", json!("ClusterIP"));
            let service_type = str_at(spec, "type").unwrap_or("ClusterIP").to_string();
            if service_type != "ExternalName" {
                set_default(spec, "sessionAffinity", json!("None"));
                set_default(spec, "internalTrafficPolicy", json!("Cluster"));
                set_default(spec, "ipFamilies", json!(["IPv4"]));
                set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
            }
            if matches!(service_type.as_str(), "NodePort" | "LoadBalancer") {
                set_default(spec, "externalTrafficPolicy", json!("Cluster"));
            }
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for port in ports.iter_mut().filter(|p| p.is_object()) {
                    set_default(port, "protocol", json!("TCP"));
                    if let Some(number) = port.get("port").cloned() {
                        set_default(port, "targetPort", number);
                    }
                }
            }
        }
        ("", "Secret") => set_default(object, "type", json!("Opaque")),
        ("", "Namespace") => {
            if let Some(spec) = child(object, "spec") {
                set_default(spec, "finalizers", json!(["kubernetes"]));
            }
            if let Some(status) = child(object, "status") {
                set_default(status, "phase", json!("Active"));
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------- validation

/// Name rules by kind; Kubernetes' messages.
pub fn validate_name(group: &str, kind: &str, name: &str) -> Vec<String> {
    match (group, kind) {
        ("", "Namespace") => dns1123_label_errors(name),
        ("", "Service") => dns1035_label_errors(name),
        _ => {
            let mut errors = dns1123_subdomain_errors(name);
            if matches!(name, "." | "..") {
                errors.push(format!("may not be '{name}'"));
            }
            errors
        }
    }
}

fn validate_metadata(group: &str, kind: &str, object: &Value, errors: &mut Errors) {
    let metadata = object.get("metadata").cloned().unwrap_or(json!({}));
    match str_at(&metadata, "name") {
        None | Some("") => errors.required("metadata.name", "name or generateName is required"),
        Some(name) => {
            for message in validate_name(group, kind, name) {
                errors.invalid("metadata.name", &json!(name), &message);
            }
        }
    }
    if let Some(namespace) = str_at(&metadata, "namespace").filter(|n| !n.is_empty()) {
        for message in dns1123_label_errors(namespace) {
            errors.invalid("metadata.namespace", &json!(namespace), &message);
        }
    }
    if let Some(labels) = object_at(&metadata, "labels") {
        for (key, value) in labels {
            for message in qualified_name_errors(key) {
                errors.invalid("metadata.labels", &json!(key), &message);
            }
            let text = value.as_str().unwrap_or("");
            if text.len() > 63 {
                errors.invalid(
                    "metadata.labels",
                    value,
                    "must be no more than 63 characters",
                );
            } else if !is_label_value(text) {
                errors.invalid("metadata.labels", value, LABEL_VALUE);
            }
        }
    }
    if let Some(annotations) = object_at(&metadata, "annotations") {
        let mut total = 0;
        for (key, value) in annotations {
            for message in qualified_name_errors(&key.to_lowercase()) {
                errors.invalid("metadata.annotations", &json!(key), &message);
            }
            total += key.len() + value.as_str().map_or(0, str::len);
        }
        if total > 256 * 1024 {
            errors.too_long("metadata.annotations", 256 * 1024);
        }
    }
}

fn validate_selector_labels(selector: &Value, path: &str, errors: &mut Errors) {
    if let Some(labels) = object_at(selector, "matchLabels") {
        for (key, value) in labels {
            for message in qualified_name_errors(key) {
                errors.invalid(&format!("{path}.matchLabels"), &json!(key), &message);
            }
            if !is_label_value(value.as_str().unwrap_or("")) {
                errors.invalid(&format!("{path}.matchLabels"), value, LABEL_VALUE);
            }
        }
    }
    for (i, expression) in array_at(selector, "matchExpressions").iter().enumerate() {
        let field = format!("{path}.matchExpressions[{i}]");
        let operator = str_at(expression, "operator").unwrap_or("");
        let values = array_at(expression, "values");
        match operator {
            "In" | "NotIn" if values.is_empty() => errors.required(
                &format!("{field}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            ),
            "Exists" | "DoesNotExist" if !values.is_empty() => errors.forbidden(
                &format!("{field}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            ),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => errors.not_supported(
                &format!("{field}.operator"),
                other,
                &["In", "NotIn", "Exists", "DoesNotExist"],
            ),
        }
    }
}

/// Whether a `metav1.LabelSelector` selects these labels.
fn selector_matches(selector: &Value, labels: &Map<String, Value>) -> bool {
    let label = |key: &str| labels.get(key).and_then(Value::as_str);
    let match_labels = object_at(selector, "matchLabels")
        .into_iter()
        .flatten()
        .all(|(k, v)| label(k) == v.as_str());
    let match_expressions = array_at(selector, "matchExpressions").iter().all(|e| {
        let key = str_at(e, "key").unwrap_or("");
        let values: Vec<&str> = array_at(e, "values")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        match str_at(e, "operator") {
            Some("In") => label(key).is_some_and(|v| values.contains(&v)),
            Some("NotIn") => label(key).is_none_or(|v| !values.contains(&v)),
            Some("Exists") => label(key).is_some(),
            Some("DoesNotExist") => label(key).is_none(),
            _ => false,
        }
    });
    match_labels && match_expressions
}

fn selector_is_empty(selector: &Value) -> bool {
    object_at(selector, "matchLabels").is_none_or(Map::is_empty)
        && array_at(selector, "matchExpressions").is_empty()
}

fn validate_resources(resources: &Value, path: &str, errors: &mut Errors) {
    let mut parsed: BTreeMap<(&str, String), f64> = BTreeMap::new();
    for section in ["limits", "requests"] {
        for (name, value) in object_at(resources, section).into_iter().flatten() {
            let field = format!("{path}.{section}[{name}]");
            let text = value
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| value.to_string());
            match parse_quantity(&text) {
                Some(q) if q < 0.0 => {
                    errors.invalid(&field, &json!(text), "must be greater than or equal to 0")
                }
                Some(q) => {
                    parsed.insert((section, name.clone()), q);
                }
                None => errors.invalid(&field, &json!(text), QUANTITY),
            }
        }
    }
    for ((section, name), request) in &parsed {
        if *section != "requests" {
            continue;
        }
        if let Some(limit) = parsed.get(&("limits", name.clone()))
            && request > limit
        {
            let text = resources["requests"][name.as_str()].clone();
            let limit_text = resources["limits"][name.as_str()]
                .as_str()
                .unwrap_or("")
                .to_string();
            errors.invalid(
                &format!("{path}.requests"),
                &text,
                &format!("must be less than or equal to {name} limit of {limit_text}"),
            );
        }
    }
}

fn validate_port_number(port: &Value, field: &str, errors: &mut Errors) {
    match port.as_i64() {
        Some(p) if (1..=65535).contains(&p) => {}
        Some(_) => errors.invalid(field, port, "must be between 1 and 65535, inclusive"),
        None => errors.required(field, ""),
    }
}

fn validate_protocol(container_port: &Value, field: &str, errors: &mut Errors) {
    if let Some(protocol) = str_at(container_port, "protocol")
        && !matches!(protocol, "TCP" | "UDP" | "SCTP")
    {
        errors.not_supported(field, protocol, &["SCTP", "TCP", "UDP"]);
    }
}

fn validate_container(
    container: &Value,
    path: &str,
    volumes: &HashSet<String>,
    errors: &mut Errors,
) {
    match str_at(container, "name") {
        None | Some("") => errors.required(&format!("{path}.name"), ""),
        Some(name) => {
            for message in dns1123_label_errors(name) {
                errors.invalid(&format!("{path}.name"), &json!(name), &message);
            }
        }
    }
    if str_at(container, "image").is_none_or(|i| i.trim().is_empty()) {
        errors.required(&format!("{path}.image"), "");
    }
    if let Some(policy) = str_at(container, "imagePullPolicy")
        && !matches!(policy, "Always" | "IfNotPresent" | "Never")
    {
        errors.not_supported(
            &format!("{path}.imagePullPolicy"),
            policy,
            &["Always", "IfNotPresent", "Never"],
        );
    }
    let mut port_names = HashSet::new();
    for (i, port) in array_at(container, "ports").iter().enumerate() {
        let field = format!("{path}.ports[{i}]");
        validate_port_number(
            port.get("containerPort").unwrap_or(&Value::Null),
            &format!("{field}.containerPort"),
            errors,
        );
        if let Some(host) = port.get("hostPort").filter(|h| h.as_i64() != Some(0)) {
            validate_port_number(host, &format!("{field}.hostPort"), errors);
        }
        validate_protocol(port, &format!("{field}.protocol"), errors);
        if let Some(name) = str_at(port, "name").filter(|n| !n.is_empty()) {
            let valid = name.len() <= 15
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && name.bytes().any(|b| b.is_ascii_lowercase())
                && !name.starts_with('-')
                && !name.ends_with('-')
                && !name.contains("--");
            if !valid {
                errors.invalid(&format!("{field}.name"), &json!(name), "must be no more than 15 characters, contain only lowercase alphanumeric characters or '-', contain at least one letter, and not start or end with '-' or contain '--'");
            }
            if !port_names.insert(name.to_string()) {
                errors.duplicate(&format!("{field}.name"), &json!(name));
            }
        }
    }
    for (i, env) in array_at(container, "env").iter().enumerate() {
        let name = str_at(env, "name").unwrap_or("");
        if name.is_empty() {
            errors.required(&format!("{path}.env[{i}].name"), "");
        } else if !is_env_var_name(name) {
            errors.invalid(&format!("{path}.env[{i}].name"), &json!(name), ENV_VAR_NAME);
        }
    }
    for (i, mount) in array_at(container, "volumeMounts").iter().enumerate() {
        let field = format!("{path}.volumeMounts[{i}]");
        match str_at(mount, "name") {
            None | Some("") => errors.required(&format!("{field}.name"), ""),
            Some(name) if !volumes.contains(name) => {
                errors.not_found(&format!("{field}.name"), &json!(name))
            }
            Some(_) => {}
        }
        if str_at(mount, "mountPath").is_none_or(str::is_empty) {
            errors.required(&format!("{field}.mountPath"), "");
        }
    }
    if let Some(resources) = container.get("resources") {
        validate_resources(resources, &format!("{path}.resources"), errors);
    }
}

fn validate_pod_spec(spec: &Value, path: &str, errors: &mut Errors) {
    let mut volumes = HashSet::new();
    for (i, volume) in array_at(spec, "volumes").iter().enumerate() {
        let field = format!("{path}.volumes[{i}].name");
        match str_at(volume, "name") {
            None | Some("") => errors.required(&field, ""),
            Some(name) => {
                for message in dns1123_label_errors(name) {
                    errors.invalid(&field, &json!(name), &message);
                }
                if !volumes.insert(name.to_string()) {
                    errors.duplicate(&field, &json!(name));
                }
            }
        }
    }
    let containers = array_at(spec, "containers");
    if containers.is_empty() {
        errors.required(&format!("{path}.containers"), "");
    }
    let mut names = HashSet::new();
    for (list, items) in [
        ("initContainers", array_at(spec, "initContainers")),
        ("containers", containers),
    ] {
        for (i, container) in items.iter().enumerate() {
            let container_path = format!("{path}.{list}[{i}]");
            validate_container(container, &container_path, &volumes, errors);
            if let Some(name) = str_at(container, "name").filter(|n| !n.is_empty())
                && !names.insert(name.to_string())
            {
                errors.duplicate(&format!("{container_path}.name"), &json!(name));
            }
        }
    }
    if let Some(policy) = str_at(spec, "restartPolicy")
        && !matches!(policy, "Always" | "OnFailure" | "Never")
    {
        errors.not_supported(
            &format!("{path}.restartPolicy"),
            policy,
            &["Always", "OnFailure", "Never"],
        );
    }
    if let Some(policy) = str_at(spec, "dnsPolicy")
        && !matches!(
            policy,
            "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None"
        )
    {
        errors.not_supported(
            &format!("{path}.dnsPolicy"),
            policy,
            &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"],
        );
    }
    if let Some(grace) = spec
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64)
        && grace < 0
    {
        errors.invalid(
            &format!("{path}.terminationGracePeriodSeconds"),
            &json!(grace),
            "must be greater than or equal to 0",
        );
    }
}

/// Replicated workloads: selector, template labels, pod template.
fn validate_workload(spec: &Value, errors: &mut Errors) {
    let selector = spec.get("selector").cloned().unwrap_or(Value::Null);
    if selector.is_null() {
        errors.required("spec.selector", "");
    } else {
        validate_selector_labels(&selector, "spec.selector", errors);
        if selector_is_empty(&selector) {
            errors.invalid(
                "spec.selector",
                &selector,
                "empty selector is invalid for deployment",
            );
        }
    }
    if let Some(replicas) = spec.get("replicas").and_then(Value::as_i64)
        && replicas < 0
    {
        errors.invalid(
            "spec.replicas",
            &json!(replicas),
            "must be greater than or equal to 0",
        );
    }
    let template = spec.get("template").cloned().unwrap_or(json!({}));
    let labels = template
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if !selector.is_null() && !selector_is_empty(&selector) && !selector_matches(&selector, &labels)
    {
        errors.invalid(
            "spec.template.metadata.labels",
            &Value::Object(labels.clone()),
            "`selector` does not match template `labels`",
        );
    }
    match template.get("spec") {
        Some(pod_spec) => validate_pod_spec(pod_spec, "spec.template.spec", errors),
        None => errors.required("spec.template.spec.containers", ""),
    }
    if let Some(min_ready) = spec.get("minReadySeconds").and_then(Value::as_i64)
        && min_ready < 0
    {
        errors.invalid(
            "spec.minReadySeconds",
            &json!(min_ready),
            "must be greater than or equal to 0",
        );
    }
}

fn int_or_percent(value: Option<&Value>) -> Option<Result<(i64, bool), ()>> {
    match value? {
        Value::Number(n) => Some(n.as_i64().map(|n| (n, false)).ok_or(())),
        Value::String(s) => Some(
            s.strip_suffix('%')
                .and_then(|p| p.parse::<i64>().ok())
                .map(|p| (p, true))
                .ok_or(()),
        ),
        _ => Some(Err(())),
    }
}

fn validate_deployment(spec: &Value, errors: &mut Errors) {
    validate_workload(spec, errors);
    let strategy = spec.get("strategy").cloned().unwrap_or(json!({}));
    match str_at(&strategy, "type") {
        Some("Recreate") => {
            if strategy.get("rollingUpdate").is_some_and(|r| !r.is_null()) {
                errors.forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                );
            }
        }
        Some("RollingUpdate") | None => {
            let rolling = strategy.get("rollingUpdate").cloned().unwrap_or(json!({}));
            let mut zero = 0;
            for key in ["maxUnavailable", "maxSurge"] {
                let field = format!("spec.strategy.rollingUpdate.{key}");
                match int_or_percent(rolling.get(key)) {
                    None => {}
                    Some(Err(())) => errors.invalid(
                        &field,
                        &rolling[key],
                        "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                    ),
                    Some(Ok((value, percent))) => {
                        if value < 0 {
                            errors.invalid(&field, &rolling[key], "must be greater than or equal to 0");
                        }
                        if percent && key == "maxUnavailable" && value > 100 {
                            errors.invalid(&field, &rolling[key], "must not be greater than 100%");
                        }
                        if value == 0 {
                            zero += 1;
                        }
                    }
                }
            }
            if zero == 2 {
                errors.invalid(
                    "spec.strategy.rollingUpdate.maxUnavailable",
                    &rolling["maxUnavailable"],
                    "may not be 0 when `maxSurge` is 0",
                );
            }
        }
        Some(other) => {
            errors.not_supported("spec.strategy.type", other, &["Recreate", "RollingUpdate"])
        }
    }
    for key in ["revisionHistoryLimit", "progressDeadlineSeconds"] {
        if let Some(value) = spec.get(key).and_then(Value::as_i64)
            && value < 0
        {
            errors.invalid(
                &format!("spec.{key}"),
                &json!(value),
                "must be greater than or equal to 0",
            );
        }
    }
}

fn validate_service(spec: &Value, errors: &mut Errors) {
    let service_type = str_at(spec, "type").unwrap_or("ClusterIP");
    if !matches!(
        service_type,
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName"
    ) {
        errors.not_supported(
            "spec.type",
            service_type,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        );
    }
    let ports = array_at(spec, "ports");
    if service_type == "ExternalName" {
        match str_at(spec, "externalName") {
            None | Some("") => errors.required("spec.externalName", ""),
            Some(name) => {
                for message in dns1123_subdomain_errors(name.trim_end_matches('.')) {
                    errors.invalid("spec.externalName", &json!(name), &message);
                }
            }
        }
    } else if ports.is_empty() && str_at(spec, "clusterIP") != Some("None") {
        errors.required("spec.ports", "");
    }
    let mut names = HashSet::new();
    let mut seen = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let field = format!("spec.ports[{i}]");
        let name = str_at(port, "name").unwrap_or("");
        if ports.len() > 1 && name.is_empty() {
            errors.required(&format!("{field}.name"), "");
        } else if !name.is_empty() {
            for message in dns1123_label_errors(name) {
                errors.invalid(&format!("{field}.name"), &json!(name), &message);
            }
            if !names.insert(name.to_string()) {
                errors.duplicate(&format!("{field}.name"), &json!(name));
            }
        }
        validate_port_number(
            port.get("port").unwrap_or(&Value::Null),
            &format!("{field}.port"),
            errors,
        );
        validate_protocol(port, &format!("{field}.protocol"), errors);
        let key = (
            port.get("port").and_then(Value::as_i64),
            str_at(port, "protocol").unwrap_or("TCP").to_string(),
        );
        if !seen.insert(key) {
            errors.duplicate(&field, &json!({"port": port["port"], "protocol": str_at(port, "protocol").unwrap_or("TCP")}));
        }
        if let Some(target) = port.get("targetPort") {
            match target {
                Value::Number(_) => {
                    validate_port_number(target, &format!("{field}.targetPort"), errors)
                }
                Value::String(s) if s.is_empty() => {}
                Value::String(_) => {}
                _ => errors.invalid(
                    &format!("{field}.targetPort"),
                    target,
                    "must be a number or a name",
                ),
            }
        }
        if let Some(node_port) = port.get("nodePort").filter(|n| n.as_i64() != Some(0)) {
            if !matches!(service_type, "NodePort" | "LoadBalancer") {
                errors.forbidden(
                    &format!("{field}.nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                );
            }
            validate_port_number(node_port, &format!("{field}.nodePort"), errors);
        }
    }
    if let Some(affinity) = str_at(spec, "sessionAffinity")
        && !matches!(affinity, "None" | "ClientIP")
    {
        errors.not_supported("spec.sessionAffinity", affinity, &["ClientIP", "None"]);
    }
}

fn validate_config_data(object: &Value, errors: &mut Errors) {
    let mut total = 0;
    let data = object_at(object, "data");
    let binary = object_at(object, "binaryData");
    for (section, map) in [("data", data), ("binaryData", binary)] {
        for (key, value) in map.into_iter().flatten() {
            if !is_config_key(key) {
                errors.invalid(&format!("{section}[{key}]"), &json!(key), CONFIG_KEY);
            }
            total += value.as_str().map_or(0, str::len);
        }
    }
    if let (Some(data), Some(binary)) = (data, binary) {
        for key in data.keys().filter(|k| binary.contains_key(*k)) {
            errors.invalid(
                &format!("data[{key}]"),
                &json!(key),
                "duplicate of key present in binaryData",
            );
        }
    }
    if total > 1024 * 1024 {
        errors.too_long("data", 1024 * 1024);
    }
}

fn validate_kind(group: &str, kind: &str, object: &Value, errors: &mut Errors) {
    let spec = object.get("spec").cloned().unwrap_or(json!({}));
    match (group, kind) {
        ("", "Pod") => validate_pod_spec(&spec, "spec", errors),
        ("apps", "Deployment") => validate_deployment(&spec, errors),
        ("apps", "ReplicaSet") => validate_workload(&spec, errors),
        ("", "Service") => validate_service(&spec, errors),
        ("", "ConfigMap") => validate_config_data(object, errors),
        ("", "Secret") => {
            validate_config_data(object, errors);
            if let Some(string_data) = object_at(object, "stringData") {
                for key in string_data.keys().filter(|k| !is_config_key(k)) {
                    errors.invalid(&format!("stringData[{key}]"), &json!(key), CONFIG_KEY);
                }
            }
        }
        ("", "Event") if object.get("involvedObject").is_none_or(Value::is_null) => {
            errors.required("involvedObject", "");
        }
        ("discovery.k8s.io", "EndpointSlice") => match str_at(object, "addressType") {
            None | Some("") => errors.required("addressType", ""),
            Some("IPv4" | "IPv6" | "FQDN") => {}
            Some(other) => errors.not_supported("addressType", other, &["FQDN", "IPv4", "IPv6"]),
        },
        _ => {}
    }
}

/// Validate a new object.
pub fn validate_create(group: &str, kind: &str, object: &Value) -> Vec<FieldError> {
    let mut errors = Errors::default();
    validate_metadata(group, kind, object, &mut errors);
    validate_kind(group, kind, object, &mut errors);
    errors.0
}

fn immutable(errors: &mut Errors, field: &str, new: Option<&Value>, old: Option<&Value>) {
    if new != old {
        errors.invalid(field, new.unwrap_or(&Value::Null), "field is immutable");
    }
}

/// Validate an update: everything `validate_create` checks, plus immutable
/// fields against `old`.
pub fn validate_update(group: &str, kind: &str, object: &Value, old: &Value) -> Vec<FieldError> {
    let mut errors = Errors::default();
    validate_metadata(group, kind, object, &mut errors);
    validate_kind(group, kind, object, &mut errors);
    for field in ["name", "namespace"] {
        immutable(
            &mut errors,
            &format!("metadata.{field}"),
            object.pointer(&format!("/metadata/{field}")),
            old.pointer(&format!("/metadata/{field}")),
        );
    }
    match (group, kind) {
        ("apps", "Deployment" | "ReplicaSet") => immutable(
            &mut errors,
            "spec.selector",
            object.pointer("/spec/selector"),
            old.pointer("/spec/selector"),
        ),
        ("", "Service") => {
            let old_ip = old.pointer("/spec/clusterIP").and_then(Value::as_str);
            let was_external =
                old.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName");
            let is_external =
                object.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName");
            if old_ip.is_some_and(|ip| !ip.is_empty()) && !was_external && !is_external {
                immutable(
                    &mut errors,
                    "spec.clusterIP",
                    object.pointer("/spec/clusterIP"),
                    old.pointer("/spec/clusterIP"),
                );
            }
        }
        ("", "Secret") => immutable(&mut errors, "type", object.get("type"), old.get("type")),
        ("", "Pod") => {
            // Only a few pod spec fields may change after creation.
            let strip = |pod: &Value| {
                let mut spec = pod.get("spec").cloned().unwrap_or(json!({}));
                if let Some(map) = spec.as_object_mut() {
                    for key in [
                        "activeDeadlineSeconds",
                        "tolerations",
                        "terminationGracePeriodSeconds",
                        "nodeName",
                    ] {
                        map.remove(key);
                    }
                    for list in ["containers", "initContainers"] {
                        if let Some(containers) = map.get_mut(list).and_then(Value::as_array_mut) {
                            for c in containers {
                                if let Some(c) = c.as_object_mut() {
                                    c.remove("image");
                                }
                            }
                        }
                    }
                }
                spec
            };
            if strip(object) != strip(old) {
                errors.forbidden("spec", "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)");
            }
            let old_node = old
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty());
            if old_node.is_some() {
                immutable(
                    &mut errors,
                    "spec.nodeName",
                    object.pointer("/spec/nodeName"),
                    old.pointer("/spec/nodeName"),
                );
            }
        }
        _ => {}
    }
    if matches!((group, kind), ("", "ConfigMap" | "Secret"))
        && old.get("immutable") == Some(&json!(true))
    {
        for field in ["data", "binaryData"] {
            if object.get(field) != old.get(field) {
                errors.forbidden(field, "field is immutable when `immutable` is set");
            }
        }
        if object.get("immutable") != Some(&json!(true)) {
            errors.forbidden("immutable", "field is immutable when `immutable` is set");
        }
    }
    errors.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}]}]}}}})
    }

    fn messages(errors: &[FieldError]) -> Vec<String> {
        errors
            .iter()
            .map(FieldError::to_string_with_field)
            .collect()
    }

    #[test]
    fn a_minimal_deployment_gets_kubernetes_defaults() {
        let mut d = deployment();
        default_object("apps", "Deployment", &mut d);
        let spec = &d["spec"];
        assert_eq!(spec["replicas"], 1);
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(spec["progressDeadlineSeconds"], 600);
        assert_eq!(
            spec["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        let pod = &spec["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Always");
        assert_eq!(pod["dnsPolicy"], "ClusterFirst");
        assert_eq!(pod["schedulerName"], "default-scheduler");
        assert_eq!(pod["terminationGracePeriodSeconds"], 30);
        let container = &pod["containers"][0];
        assert_eq!(container["imagePullPolicy"], "Always");
        assert_eq!(container["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(container["ports"][0]["protocol"], "TCP");
        assert!(validate_create("apps", "Deployment", &d).is_empty());
    }

    #[test]
    fn image_pull_policy_follows_the_tag() {
        assert_eq!(image_pull_policy("nginx"), "Always");
        assert_eq!(image_pull_policy("nginx:latest"), "Always");
        assert_eq!(image_pull_policy("nginx:1.25"), "IfNotPresent");
        assert_eq!(image_pull_policy("localhost:5000/nginx"), "Always");
        assert_eq!(image_pull_policy("localhost:5000/nginx:1"), "IfNotPresent");
        assert_eq!(image_pull_policy("nginx@sha256:abc"), "IfNotPresent");
    }

    #[test]
    fn bad_name_gets_the_kubernetes_message() {
        let errors = validate_create("", "ConfigMap", &json!({"metadata": {"name": "Web_1"}}));
        assert_eq!(
            messages(&errors),
            [format!(
                "metadata.name: Invalid value: \"Web_1\": {DNS1123_SUBDOMAIN}"
            )]
        );
        let errors = validate_create(
            "",
            "Service",
            &json!({"metadata": {"name": "1web"}, "spec": {"ports": [{"port": 80}]}}),
        );
        assert!(messages(&errors)[0].contains("DNS-1035 label"));
    }

    #[test]
    fn missing_image_and_duplicate_containers_are_reported() {
        let mut d = deployment();
        d["spec"]["template"]["spec"]["containers"] =
            json!([{"name": "a"}, {"name": "a", "image": "x"}]);
        let errors = messages(&validate_create("apps", "Deployment", &d));
        assert!(
            errors.contains(&"spec.template.spec.containers[0].image: Required value".to_string()),
            "{errors:?}"
        );
        assert!(
            errors.contains(
                &"spec.template.spec.containers[1].name: Duplicate value: \"a\"".to_string()
            ),
            "{errors:?}"
        );
    }

    #[test]
    fn selector_must_match_template_labels_and_is_immutable() {
        let mut d = deployment();
        d["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
        let errors = messages(&validate_create("apps", "Deployment", &d));
        assert_eq!(
            errors,
            [
                "spec.template.metadata.labels: Invalid value: {\"app\":\"other\"}: `selector` does not match template `labels`"
            ]
        );
        let old = deployment();
        let mut new = deployment();
        new["spec"]["selector"] = json!({"matchLabels": {"app": "web", "v": "2"}});
        new["spec"]["template"]["metadata"]["labels"] = json!({"app": "web", "v": "2"});
        let errors = messages(&validate_update("apps", "Deployment", &new, &old));
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("spec.selector: Invalid value:")
                && errors[0].ends_with("field is immutable")
        );
    }

    #[test]
    fn quantities_parse_and_bad_ones_are_invalid() {
        assert_eq!(parse_quantity("100m"), Some(0.1));
        assert_eq!(parse_quantity("128Mi"), Some(134217728.0));
        assert_eq!(parse_quantity("1G"), Some(1e9));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(parse_quantity("1.5"), Some(1.5));
        assert_eq!(parse_quantity("abc"), None);
        assert_eq!(parse_quantity("1Qi"), None);
        let mut d = deployment();
        d["spec"]["template"]["spec"]["containers"][0]["resources"] =
            json!({"requests": {"cpu": "lots", "memory": "2Gi"}, "limits": {"memory": "1Gi"}});
        let errors = messages(&validate_create("apps", "Deployment", &d));
        assert!(
            errors.iter().any(
                |e| e.contains("requests[cpu]: Invalid value: \"lots\": quantities must match")
            ),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("must be less than or equal to memory limit of 1Gi")),
            "{errors:?}"
        );
    }

    #[test]
    fn service_without_ports_and_configmap_bad_key_are_invalid() {
        let errors = messages(&validate_create(
            "",
            "Service",
            &json!({"metadata": {"name": "web"}, "spec": {}}),
        ));
        assert_eq!(errors, ["spec.ports: Required value"]);
        let errors = messages(&validate_create(
            "",
            "ConfigMap",
            &json!({"metadata": {"name": "c"}, "data": {"bad key": "x"}}),
        ));
        assert_eq!(
            errors,
            [format!(
                "data[bad key]: Invalid value: \"bad key\": {CONFIG_KEY}"
            )]
        );
    }

    #[test]
    fn label_value_too_long_is_invalid() {
        let long = "a".repeat(64);
        let errors = messages(&validate_create(
            "",
            "ConfigMap",
            &json!({"metadata": {"name": "c", "labels": {"k": long}}}),
        ));
        assert_eq!(
            errors,
            [format!(
                "metadata.labels: Invalid value: \"{long}\": must be no more than 63 characters"
            )]
        );
    }

    #[test]
    fn rolling_update_may_not_have_both_zero() {
        let mut d = deployment();
        d["spec"]["strategy"] =
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}});
        let errors = messages(&validate_create("apps", "Deployment", &d));
        assert_eq!(
            errors,
            [
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"
            ]
        );
    }

    #[test]
    fn pods_get_qos_and_status_defaults() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}});
        default_object("", "Pod", &mut pod);
        assert_eq!(pod["status"]["qosClass"], "Guaranteed");
        assert_eq!(pod["status"]["phase"], "Pending");
        assert_eq!(pod["spec"]["serviceAccountName"], "default");
    }

    #[test]
    fn odd_inputs_never_panic() {
        for value in [
            json!(null),
            json!([]),
            json!("x"),
            json!({"spec": []}),
            json!({"metadata": 1, "spec": {"containers": "no"}}),
        ] {
            for (group, kind) in [
                ("", "Pod"),
                ("apps", "Deployment"),
                ("", "Service"),
                ("", "ConfigMap"),
                ("", "Namespace"),
            ] {
                let mut v = value.clone();
                default_object(group, kind, &mut v);
                let _ = validate_create(group, kind, &v);
                let _ = validate_update(group, kind, &v, &value);
            }
        }
    }
}
