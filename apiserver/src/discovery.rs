//! API discovery documents built from the resource catalogue: the aggregated
//! `apidiscovery.k8s.io/v2` list kubectl 1.26+ asks for first, and the legacy
//! `APIVersions`, `APIGroupList`, `APIGroup` and `APIResourceList` documents.
//! Pure functions from the catalogue to JSON.

use serde_json::{Value, json};

use crate::resources::{Catalogue, Resource, Subresource};

/// The aggregated discovery version the client asks for first in its Accept
/// header (kubectl 1.27 asks for v2beta1, 1.30+ for v2), if it asks for one.
pub fn aggregated_version(accept: &str) -> Option<&'static str> {
    accept
        .split(',')
        .map(|range| range.replace(' ', ""))
        .find(|range| {
            range.contains("as=APIGroupDiscoveryList") && range.contains("g=apidiscovery.k8s.io")
        })
        .and_then(|range| {
            if range.contains("v=v2beta1") {
                Some("v2beta1")
            } else if range.contains("v=v2") {
                Some("v2")
            } else {
                None
            }
        })
}

/// The Content-Type that tells client-go the body is aggregated discovery;
/// without it every type is lost.
pub fn aggregated_content_type(version: &str) -> String {
    format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList")
}

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn subresource_kind(resource: &Resource, sub: Subresource) -> (Value, Vec<&'static str>) {
    match sub {
        Subresource::Status => (
            json!({"group": resource.group, "version": resource.version, "kind": resource.kind}),
            vec!["get", "patch", "update"],
        ),
        Subresource::Scale => (
            json!({"group": "autoscaling", "version": "v1", "kind": "Scale"}),
            vec!["get", "patch", "update"],
        ),
        Subresource::Binding => (
            json!({"group": "", "version": "v1", "kind": "Binding"}),
            vec!["create"],
        ),
        Subresource::Finalize => (
            json!({"group": "", "version": "v1", "kind": "Namespace"}),
            vec!["update"],
        ),
    }
}

fn aggregated_resource(resource: &Resource) -> Value {
    let subresources: Vec<Value> = resource
        .subresources
        .iter()
        .map(|sub| {
            let (kind, verbs) = subresource_kind(resource, *sub);
            json!({"subresource": sub.name(), "responseKind": kind, "verbs": verbs})
        })
        .collect();
    let mut entry = json!({
        "resource": resource.plural,
        "responseKind": {"group": resource.group, "version": resource.version, "kind": resource.kind},
        "scope": if resource.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": resource.singular,
        "verbs": VERBS,
    });
    if !resource.short_names.is_empty() {
        entry["shortNames"] = json!(resource.short_names);
    }
    if !resource.categories.is_empty() {
        entry["categories"] = json!(resource.categories);
    }
    if !subresources.is_empty() {
        entry["subresources"] = json!(subresources);
    }
    entry
}

/// The aggregated discovery list for the core group (`legacy`) or every named group.
pub fn aggregated(catalogue: &Catalogue, legacy: bool) -> Value {
    let items: Vec<Value> = catalogue
        .groups()
        .into_iter()
        .filter(|(group, _)| group.is_empty() == legacy)
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|version| {
                    let resources: Vec<Value> = catalogue
                        .all()
                        .iter()
                        .filter(|r| r.group == group && r.version == *version)
                        .map(aggregated_resource)
                        .collect();
                    json!({"version": version, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_document(group: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": versions, "preferredVersion": versions.first().cloned().unwrap_or(Value::Null)})
}

pub fn api_group_list(catalogue: &Catalogue) -> Value {
    let groups: Vec<Value> = catalogue
        .groups()
        .into_iter()
        .filter(|(group, _)| !group.is_empty())
        .map(|(group, versions)| group_document(group, &versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn api_group(catalogue: &Catalogue, group: &str) -> Option<Value> {
    let (name, versions) = catalogue
        .groups()
        .into_iter()
        .find(|(g, _)| *g == group && !g.is_empty())?;
    let mut document = group_document(name, &versions);
    document["kind"] = json!("APIGroup");
    document["apiVersion"] = json!("v1");
    Some(document)
}

pub fn api_resource_list(catalogue: &Catalogue, group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for resource in catalogue
        .all()
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let mut entry = json!({
            "name": resource.plural,
            "singularName": resource.singular,
            "namespaced": resource.namespaced,
            "kind": resource.kind,
            "verbs": VERBS,
        });
        if !resource.short_names.is_empty() {
            entry["shortNames"] = json!(resource.short_names);
        }
        if !resource.categories.is_empty() {
            entry["categories"] = json!(resource.categories);
        }
        resources.push(entry);
        for sub in resource.subresources {
            let (kind, verbs) = subresource_kind(resource, *sub);
            let mut entry = json!({
                "name": format!("{}/{}", resource.plural, sub.name()),
                "singularName": "",
                "namespaced": resource.namespaced,
                "kind": kind["kind"],
                "verbs": verbs,
            });
            if kind["group"] != json!(resource.group) {
                entry["group"] = kind["group"].clone();
                entry["version"] = kind["version"].clone();
            }
            resources.push(entry);
        }
    }
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::builtin;

    #[test]
    fn aggregated_version_follows_the_first_range_asked_for() {
        assert_eq!(
            aggregated_version(
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
            ),
            Some("v2")
        );
        assert_eq!(
            aggregated_version(
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
            ),
            Some("v2beta1")
        );
        assert_eq!(aggregated_version("application/json"), None);
    }

    #[test]
    fn aggregated_discovery_has_what_kubectl_needs() {
        let catalogue = Catalogue::new(builtin());
        let apps = aggregated(&catalogue, false);
        let apps_group = apps["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["metadata"]["name"] == "apps")
            .unwrap();
        let deployments = apps_group["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "deployments")
            .unwrap();
        assert_eq!(deployments["responseKind"]["kind"], "Deployment");
        assert_eq!(deployments["categories"][0], "all");
        let scale = deployments["subresources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["subresource"] == "scale")
            .unwrap();
        assert_eq!(scale["responseKind"]["group"], "autoscaling");
        let core = aggregated(&catalogue, true);
        assert_eq!(core["items"][0]["metadata"]["name"], "");
        assert_eq!(core["items"][0]["versions"][0]["freshness"], "Current");
    }
}
