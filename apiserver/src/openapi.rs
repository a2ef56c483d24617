//! The OpenAPI v3 documents kubectl reads for `apply` (patch metadata),
//! field validation and `explain`: one document per group/version, built from
//! the `k8s-openapi` types' JSON schemas (schemars), tagged with
//! `x-kubernetes-group-version-kind`, and with the patch merge keys and
//! strategies Kubernetes publishes. The same definitions drive the server's
//! strategic merge patch, so client and server agree on list semantics.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::resources::{Catalogue, Resource, Subresource};

/// (definition, property) -> (x-kubernetes-patch-strategy, x-kubernetes-patch-merge-key),
/// as the Kubernetes API types declare them in their struct tags.
const PATCH_METADATA: &[(&str, &str, &str, Option<&str>)] = &[
    (
        "io.k8s.api.core.v1.PodSpec",
        "containers",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "initContainers",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "ephemeralContainers",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "volumes",
        "merge,retainKeys",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "imagePullSecrets",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "hostAliases",
        "merge",
        Some("ip"),
    ),
    (
        "io.k8s.api.core.v1.Container",
        "ports",
        "merge",
        Some("containerPort"),
    ),
    ("io.k8s.api.core.v1.Container", "env", "merge", Some("name")),
    (
        "io.k8s.api.core.v1.Container",
        "volumeMounts",
        "merge",
        Some("mountPath"),
    ),
    (
        "io.k8s.api.core.v1.Container",
        "volumeDevices",
        "merge",
        Some("devicePath"),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "ports",
        "merge",
        Some("containerPort"),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "env",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeMounts",
        "merge",
        Some("mountPath"),
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "ports",
        "merge",
        Some("port"),
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "podIPs",
        "merge",
        Some("ip"),
    ),
    (
        "io.k8s.api.core.v1.NodeStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.core.v1.NodeStatus",
        "addresses",
        "merge",
        Some("type"),
    ),
    ("io.k8s.api.core.v1.NodeSpec", "podCIDRs", "merge", None),
    (
        "io.k8s.api.core.v1.NamespaceStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.apps.v1.DeploymentSpec",
        "strategy",
        "retainKeys",
        None,
    ),
    (
        "io.k8s.api.apps.v1.DeploymentStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.apps.v1.ReplicaSetStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
        "merge",
        None,
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
        "merge",
        Some("uid"),
    ),
];

/// The schema definition name of a resource's type.
pub fn definition_name(resource: &Resource) -> String {
    let mut generator = SchemaSettings::openapi3().into_generator();
    (resource.schema)(&mut generator)
}

fn gvk(resource: &Resource) -> Value {
    json!({"group": resource.group, "version": resource.version, "kind": resource.kind})
}

/// `components.schemas` for the built-in resources, built once.
pub fn schema_definitions(catalogue: &Catalogue) -> Arc<Map<String, Value>> {
    static DEFINITIONS: OnceLock<Arc<Map<String, Value>>> = OnceLock::new();
    DEFINITIONS
        .get_or_init(|| Arc::new(build_definitions(catalogue.all())))
        .clone()
}

fn build_definitions(resources: &[Resource]) -> Map<String, Value> {
    let mut generator = SchemaSettings::openapi3().into_generator();
    let mut kinds: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for resource in resources {
        let name = (resource.schema)(&mut generator);
        kinds.entry(name).or_default().push(gvk(resource));
    }
    let mut definitions = generator.take_definitions(true);
    for (name, gvks) in kinds {
        if let Some(schema) = definitions.get_mut(&name).and_then(Value::as_object_mut) {
            schema.insert("x-kubernetes-group-version-kind".into(), Value::Array(gvks));
        }
    }
    for (definition, property, strategy, merge_key) in PATCH_METADATA {
        let Some(property) = definitions
            .get_mut(*definition)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(*property))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        property.insert("x-kubernetes-patch-strategy".into(), json!(strategy));
        if let Some(key) = merge_key {
            property.insert("x-kubernetes-patch-merge-key".into(), json!(key));
        }
    }
    definitions.insert(
        "io.k8s.apimachinery.pkg.apis.meta.v1.Patch".into(),
        json!({"type": "object", "description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body."}),
    );
    definitions.insert(
        "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions".into(),
        json!({"type": "object", "description": "DeleteOptions may be provided when deleting an API object."}),
    );
    definitions
}

fn parameter(name: &str, location: &str, description: &str) -> Value {
    json!({
        "name": name, "in": location, "description": description,
        "schema": {"type": "string", "uniqueItems": true},
        "required": location == "path",
    })
}

fn write_parameters() -> Vec<Value> {
    vec![
        parameter(
            "dryRun",
            "query",
            "When present, indicates that modifications should not be persisted.",
        ),
        parameter(
            "fieldManager",
            "query",
            "fieldManager is a name associated with the actor or entity that is making these changes.",
        ),
        parameter(
            "fieldValidation",
            "query",
            "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: Ignore, Warn, Strict.",
        ),
    ]
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn response(schema: &Value) -> Value {
    json!({"200": {"description": "OK", "content": {
        "application/json": {"schema": schema},
        "application/yaml": {"schema": schema},
    }}, "401": {"description": "Unauthorized"}})
}

fn operation(
    resource: &Resource,
    action: &str,
    id: &str,
    schema: &Value,
    extra: Vec<Value>,
) -> Value {
    json!({
        "operationId": id,
        "tags": [if resource.group.is_empty() { format!("core_{}", resource.version) } else { format!("{}_{}", resource.group.replace('.', "_"), resource.version) }],
        "parameters": extra,
        "responses": response(schema),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk(resource),
    })
}

fn patch_operation(resource: &Resource, id: &str, schema: &Value) -> Value {
    let mut parameters = write_parameters();
    parameters.push(parameter(
        "force",
        "query",
        "Force is going to \"force\" Apply requests.",
    ));
    let mut op = operation(resource, "patch", id, schema, parameters);
    let patch = reference("io.k8s.apimachinery.pkg.apis.meta.v1.Patch");
    op["requestBody"] = json!({"required": true, "content": {
        "application/apply-patch+yaml": {"schema": patch},
        "application/json-patch+json": {"schema": patch},
        "application/merge-patch+json": {"schema": patch},
        "application/strategic-merge-patch+json": {"schema": patch},
    }});
    op
}

fn paths_for(resource: &Resource, definition: &str) -> Vec<(String, Value)> {
    let kind = resource.kind;
    let object = reference(definition);
    let list =
        json!({"type": "object", "properties": {"items": {"type": "array", "items": object}}});
    let ns_part = if resource.namespaced {
        "Namespaced"
    } else {
        ""
    };
    let namespace_param = parameter(
        "namespace",
        "path",
        "object name and auth scope, such as for teams and projects",
    );
    let name_param = parameter("name", "path", &format!("name of the {kind}"));
    let scoped = |extra: Vec<Value>| {
        let mut all = extra;
        if resource.namespaced {
            all.push(namespace_param.clone());
        }
        all
    };
    let collection = resource.collection_path(resource.namespaced.then_some("{namespace}"));
    let mut paths = Vec::new();
    let body_op = |action: &str, id: String| {
        let mut op = operation(resource, action, &id, &object, write_parameters());
        op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": object}, "application/yaml": {"schema": object}}});
        op
    };
    paths.push((
        collection.clone(),
        json!({
            "get": operation(resource, "list", &format!("list{ns_part}{kind}"), &list, vec![]),
            "post": body_op("post", format!("create{ns_part}{kind}")),
            "delete": operation(resource, "deletecollection", &format!("deleteCollection{ns_part}{kind}"), &object, vec![]),
            "parameters": scoped(vec![]),
        }),
    ));
    paths.push((
        format!("{collection}/{{name}}"),
        json!({
            "get": operation(resource, "get", &format!("read{ns_part}{kind}"), &object, vec![]),
            "put": body_op("put", format!("replace{ns_part}{kind}")),
            "patch": patch_operation(resource, &format!("patch{ns_part}{kind}"), &object),
            "delete": operation(resource, "delete", &format!("delete{ns_part}{kind}"), &object, vec![]),
            "parameters": scoped(vec![name_param.clone()]),
        }),
    ));
    for sub in resource.subresources {
        let (schema, suffix) = match sub {
            Subresource::Status => (object.clone(), "Status"),
            Subresource::Scale => (json!({"type": "object"}), "Scale"),
            Subresource::Binding | Subresource::Finalize => continue,
        };
        paths.push((
            format!("{collection}/{{name}}/{}", sub.name()),
            json!({
                "get": operation(resource, "get", &format!("read{ns_part}{kind}{suffix}"), &schema, vec![]),
                "put": body_op("put", format!("replace{ns_part}{kind}{suffix}")),
                "patch": patch_operation(resource, &format!("patch{ns_part}{kind}{suffix}"), &schema),
                "parameters": scoped(vec![name_param.clone()]),
            }),
        ));
    }
    if resource.namespaced {
        paths.push((
            resource.collection_path(None),
            json!({"get": operation(resource, "list", &format!("list{kind}ForAllNamespaces"), &list, vec![])}),
        ));
    }
    paths
}

pub const V2_PROTOBUF_CONTENT_TYPE: &str =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// A valid OpenAPI v2 document in gnostic's protobuf form (the only form kubectl
/// reads v2 in) with no paths or definitions: Berth publishes its schemas in v3.
/// kubectl asks for v2 only when v3 lacks a kind; an empty document lets it go on
/// to its own "no matches for kind" error, and lets kubectl 1.27's client-side
/// apply fall back to the patch metadata compiled into it.
pub fn minimal_v2_protobuf() -> Vec<u8> {
    fn field(out: &mut Vec<u8>, number: u8, bytes: &[u8]) {
        // Wire type 2 (length-delimited); every length here is below 128.
        out.push((number << 3) | 2);
        out.push(bytes.len() as u8);
        out.extend_from_slice(bytes);
    }
    let mut info = Vec::new();
    field(&mut info, 1, b"Kubernetes"); // Info.title
    field(&mut info, 2, b"v1.32.0"); // Info.version
    let mut document = Vec::new();
    field(&mut document, 1, b"2.0"); // Document.swagger
    field(&mut document, 2, &info); // Document.info
    document
}

/// The path of a group/version document: "api/v1", "apis/apps/v1".
pub fn group_version_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The serialised documents, one per group/version, and the index pointing to them.
pub struct Documents {
    pub index: Vec<u8>,
    pub by_path: BTreeMap<String, Vec<u8>>,
}

pub fn documents(catalogue: &Catalogue) -> Arc<Documents> {
    static DOCUMENTS: OnceLock<Arc<Documents>> = OnceLock::new();
    DOCUMENTS
        .get_or_init(|| Arc::new(build_documents(catalogue)))
        .clone()
}

fn build_documents(catalogue: &Catalogue) -> Documents {
    let definitions = schema_definitions(catalogue);
    let mut by_path = BTreeMap::new();
    let mut index = Map::new();
    for (group, versions) in catalogue.groups() {
        for version in versions {
            let mut paths = Map::new();
            for resource in catalogue
                .all()
                .iter()
                .filter(|r| r.group == group && r.version == version)
            {
                let definition = definition_name(resource);
                for (path, item) in paths_for(resource, &definition) {
                    paths.insert(path, item);
                }
            }
            let document = json!({
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes", "version": "v1.32.0"},
                "paths": paths,
                "components": {"schemas": &*definitions},
            });
            let bytes = serde_json::to_vec(&document).unwrap_or_default();
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            bytes.hash(&mut hasher);
            let path = group_version_path(group, version);
            index.insert(
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={:016X}", hasher.finish())}),
            );
            by_path.insert(path, bytes);
        }
    }
    Documents {
        index: serde_json::to_vec(&json!({"paths": index})).unwrap_or_default(),
        by_path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::builtin;

    #[test]
    fn definitions_carry_gvk_and_patch_merge_keys() {
        let catalogue = Catalogue::new(builtin());
        let definitions = schema_definitions(&catalogue);
        let deployment = &definitions["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            deployment["x-kubernetes-group-version-kind"][0]["kind"],
            "Deployment"
        );
        let containers = &definitions["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    }

    #[test]
    fn patch_operations_declare_field_validation_and_gvk() {
        let catalogue = Catalogue::new(builtin());
        let docs = documents(&catalogue);
        let apps: Value = serde_json::from_slice(&docs.by_path["apis/apps/v1"]).unwrap();
        let patch =
            &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        let index: Value = serde_json::from_slice(&docs.index).unwrap();
        assert!(
            index["paths"]["apis/apps/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with("/openapi/v3/apis/apps/v1?hash=")
        );
    }
}
