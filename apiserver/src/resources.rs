//! The catalogue of resources the server serves: for each, its group, version,
//! kind, plural and singular names, scope, short names, categories and
//! subresources (what discovery publishes), how its JSON is type-checked against
//! the `k8s-openapi` type, and which fields a field selector may name. It holds
//! no objects and does no I/O.

use schemars::SchemaGenerator;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use k8s_openapi::api::{apps, coordination, core, discovery};

/// Decode JSON into the typed object and encode it again: type errors surface,
/// unknown fields drop out.
pub type RoundTrip = fn(Value) -> Result<Value, serde_json::Error>;
/// Register the type's schema in a generator and return its definition name.
pub type SchemaOf = fn(&mut SchemaGenerator) -> String;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    Status,
    Scale,
    Binding,
    /// `namespaces/{name}/finalize`: writes only `spec.finalizers`.
    Finalize,
}

impl Subresource {
    pub fn name(self) -> &'static str {
        match self {
            Subresource::Status => "status",
            Subresource::Scale => "scale",
            Subresource::Binding => "binding",
            Subresource::Finalize => "finalize",
        }
    }
}

#[derive(Clone)]
pub struct Resource {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub subresources: &'static [Subresource],
    pub round_trip: RoundTrip,
    pub schema: SchemaOf,
    /// Fields beyond metadata.name/namespace a field selector may use.
    pub selectable_fields: &'static [&'static str],
}

impl std::fmt::Debug for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.qualified())
    }
}

impl Resource {
    /// "deployments.apps", or "pods" for the core group, as Kubernetes names a
    /// resource in its messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    pub fn has(&self, subresource: Subresource) -> bool {
        self.subresources.contains(&subresource)
    }

    /// The key prefix of every object of this resource (all namespaces).
    pub fn key_prefix(&self) -> String {
        let group = if self.group.is_empty() {
            "core"
        } else {
            self.group
        };
        format!("/registry/{group}/{}/", self.plural)
    }

    /// The key prefix of one namespace's objects, or of all cluster-scoped ones.
    pub fn namespace_prefix(&self, namespace: Option<&str>) -> String {
        match namespace.filter(|_| self.namespaced) {
            Some(ns) => format!("{}{ns}/", self.key_prefix()),
            None => self.key_prefix(),
        }
    }

    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        format!("{}{name}", self.namespace_prefix(namespace))
    }

    pub fn field_selectable(&self, field: &str) -> bool {
        matches!(field, "metadata.name" | "metadata.namespace")
            || self.selectable_fields.contains(&field)
    }

    /// URL path of the collection: `/api/v1/namespaces/NS/pods`.
    pub fn collection_path(&self, namespace: Option<&str>) -> String {
        let root = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match namespace.filter(|_| self.namespaced) {
            Some(ns) => format!("{root}/namespaces/{ns}/{}", self.plural),
            None => format!("{root}/{}", self.plural),
        }
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(value: Value) -> Result<Value, serde_json::Error> {
    let typed: T = serde_json::from_value(value)?;
    serde_json::to_value(typed)
}

fn schema_of<T: schemars::JsonSchema>(generator: &mut SchemaGenerator) -> String {
    generator.subschema_for::<T>();
    T::schema_name().into_owned()
}

macro_rules! resource {
    ($ty:ty, $group:expr, $version:expr, $kind:expr, $plural:expr, $singular:expr, $namespaced:expr,
     short: [$($short:expr),*], categories: [$($cat:expr),*], sub: [$($sub:expr),*], fields: [$($field:expr),*]) => {
        Resource {
            group: $group,
            version: $version,
            kind: $kind,
            plural: $plural,
            singular: $singular,
            namespaced: $namespaced,
            short_names: &[$($short),*],
            categories: &[$($cat),*],
            subresources: &[$($sub),*],
            round_trip: round_trip::<$ty>,
            schema: schema_of::<$ty>,
            selectable_fields: &[$($field),*],
        }
    };
}

use Subresource::{Binding, Finalize, Scale, Status};

/// Every built-in resource, in discovery order.
pub fn builtin() -> Vec<Resource> {
    vec![
        resource!(core::v1::Namespace, "", "v1", "Namespace", "namespaces", "namespace", false,
            short: ["ns"], categories: [], sub: [Status, Finalize], fields: ["status.phase"]),
        resource!(core::v1::Pod, "", "v1", "Pod", "pods", "pod", true,
            short: ["po"], categories: ["all"], sub: [Status, Binding],
            fields: ["spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                     "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"]),
        resource!(core::v1::Service, "", "v1", "Service", "services", "service", true,
            short: ["svc"], categories: ["all"], sub: [Status], fields: []),
        resource!(core::v1::Endpoints, "", "v1", "Endpoints", "endpoints", "endpoints", true,
            short: ["ep"], categories: [], sub: [], fields: []),
        resource!(core::v1::ConfigMap, "", "v1", "ConfigMap", "configmaps", "configmap", true,
            short: ["cm"], categories: [], sub: [], fields: []),
        resource!(core::v1::Secret, "", "v1", "Secret", "secrets", "secret", true,
            short: [], categories: [], sub: [], fields: ["type"]),
        resource!(core::v1::Node, "", "v1", "Node", "nodes", "node", false,
            short: ["no"], categories: [], sub: [Status], fields: ["spec.unschedulable"]),
        resource!(core::v1::Event, "", "v1", "Event", "events", "event", true,
            short: ["ev"], categories: [], sub: [],
            fields: ["involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                     "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                     "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"]),
        resource!(core::v1::ServiceAccount, "", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", true,
            short: ["sa"], categories: [], sub: [], fields: []),
        resource!(apps::v1::Deployment, "apps", "v1", "Deployment", "deployments", "deployment", true,
            short: ["deploy"], categories: ["all"], sub: [Status, Scale], fields: []),
        resource!(apps::v1::ReplicaSet, "apps", "v1", "ReplicaSet", "replicasets", "replicaset", true,
            short: ["rs"], categories: ["all"], sub: [Status, Scale], fields: ["status.replicas"]),
        resource!(coordination::v1::Lease, "coordination.k8s.io", "v1", "Lease", "leases", "lease", true,
            short: [], categories: [], sub: [], fields: []),
        resource!(discovery::v1::EndpointSlice, "discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", true,
            short: [], categories: [], sub: [], fields: []),
    ]
}

/// The catalogue with lookups by the names a URL or a kubectl user may use.
pub struct Catalogue {
    resources: Vec<Resource>,
}

impl Catalogue {
    pub fn new(resources: Vec<Resource>) -> Self {
        Self { resources }
    }

    pub fn all(&self) -> &[Resource] {
        &self.resources
    }

    pub fn by_plural(&self, group: &str, version: &str, plural: &str) -> Option<&Resource> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    pub fn by_kind(&self, group: &str, kind: &str) -> Option<&Resource> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.kind == kind)
    }

    /// Groups with their versions, in the order first seen (core "" first).
    pub fn groups(&self) -> Vec<(&'static str, Vec<&'static str>)> {
        let mut groups: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
        for r in &self.resources {
            match groups.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, versions)) if !versions.contains(&r.version) => versions.push(r.version),
                Some(_) => {}
                None => groups.push((r.group, vec![r.version])),
            }
        }
        groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_drops_unknown_fields_and_rejects_wrong_types() {
        let catalogue = Catalogue::new(builtin());
        let deployments = catalogue.by_plural("apps", "v1", "deployments").unwrap();
        let normalized = (deployments.round_trip)(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"replicas": 2, "bogus": true, "selector": {}, "template": {}}
        }))
        .unwrap();
        assert_eq!(normalized["spec"]["replicas"], 2);
        assert!(normalized["spec"].get("bogus").is_none());
        assert!(
            (deployments.round_trip)(json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web"}, "spec": {"replicas": "two", "selector": {}, "template": {}}
            }))
            .is_err()
        );
    }

    #[test]
    fn keys_separate_namespaces_and_groups() {
        let catalogue = Catalogue::new(builtin());
        let pods = catalogue.by_plural("", "v1", "pods").unwrap();
        assert_eq!(
            pods.key(Some("default"), "web"),
            "/registry/core/pods/default/web"
        );
        let nodes = catalogue.by_plural("", "v1", "nodes").unwrap();
        assert_eq!(nodes.key(Some("ignored"), "n1"), "/registry/core/nodes/n1");
        assert_eq!(
            catalogue.groups()[0],
            ("", vec!["v1"]),
            "core group comes first"
        );
    }
}
