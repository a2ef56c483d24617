//! The desired Endpoints and EndpointSlices of a Service, computed from the
//! pods its selector matches, as Kubernetes' endpoints and endpointslice
//! controllers compute them.
//!
//! Pure functions over `Service` and `Pod` values. This module owns which pod
//! addresses and ports a Service publishes and how they are grouped; it must
//! not watch, read or write the API (the controller does, comparing these
//! values with what is stored to skip no-op writes) and must not panic on any
//! input. Output is deterministic: addresses sorted by IP then pod UID, ports
//! by name, port and protocol, subsets and slices in a stable order with
//! stable names, so equal inputs give equal objects.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
    ServicePort,
};
use k8s_openapi::api::discovery::v1::{self as discovery, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Label naming the Service an EndpointSlice belongs to.
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
/// Label naming the controller that manages an EndpointSlice.
pub const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// Berth's value for [`LABEL_MANAGED_BY`]; slices with another value are not ours.
pub const MANAGED_BY: &str = "endpointslice-controller.berth.dev";
/// Label Kubernetes puts on the Endpoints and EndpointSlices of headless Services.
pub const LABEL_HEADLESS: &str = "service.kubernetes.io/headless";
/// Most endpoints one EndpointSlice holds (the Kubernetes default).
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

const CLUSTER_IP_NONE: &str = "None";
const IPV4: &str = "IPv4";
const IPV6: &str = "IPv6";
/// Letters Kubernetes uses for generated name suffixes (no vowels, no
/// look-alikes), so our suffixes look like theirs.
const NAME_SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
const NAME_SUFFIX_LENGTH: usize = 8;

/// The Endpoints object for a Service with a selector (None for selector-less
/// services: those are user-managed).
///
/// Pods are those in the service's namespace whose labels match the
/// selector. Pods without an IP, terminal pods (Succeeded/Failed) and, unless
/// `publishNotReadyAddresses`, pods being deleted are skipped. Ready pods go
/// to `addresses`, the others to `notReadyAddresses` (all to `addresses` with
/// `publishNotReadyAddresses`). Each service port resolves per pod (a named
/// `targetPort` through the pod's container ports; a pod lacking it is left
/// out of that port), and addresses with the same resolved port set share a
/// subset. A headless service without ports lists its pods with no ports.
pub fn endpoints_for(service: &Service, pods: &[Pod]) -> Option<Endpoints> {
    let selected = selected_pods(service, pods)?;
    let publish_not_ready = publish_not_ready_addresses(service);
    let service_ports = service_ports(service);
    let headless = cluster_ip(service) == Some(CLUSTER_IP_NONE);

    let mut by_ports: BTreeMap<Vec<ResolvedPort>, Vec<(EndpointAddress, bool)>> = BTreeMap::new();
    for pod in selected {
        if !should_pod_be_in_endpoints(pod, publish_not_ready) {
            continue;
        }
        let Some(ip) = legacy_endpoint_ip(service, pod) else {
            continue;
        };
        let ports = if service_ports.is_empty() {
            if !headless {
                continue;
            }
            Vec::new()
        } else {
            let resolved = resolve_ports(service_ports, pod);
            if resolved.is_empty() {
                continue;
            }
            resolved
        };
        let address = EndpointAddress {
            ip: ip.to_string(),
            hostname: hostname_for(service, pod),
            node_name: node_name_of(pod),
            target_ref: Some(pod_reference(pod)),
        };
        let ready = publish_not_ready || is_pod_ready(pod);
        by_ports.entry(ports).or_default().push((address, ready));
    }

    let subsets: Vec<EndpointSubset> = by_ports
        .into_iter()
        .map(|(ports, mut addresses)| {
            addresses
                .sort_by(|(left, _), (right, _)| address_order(left).cmp(&address_order(right)));
            let (ready, not_ready): (Vec<_>, Vec<_>) =
                addresses.into_iter().partition(|(_, ready)| *ready);
            let strip = |list: Vec<(EndpointAddress, bool)>| {
                let list: Vec<EndpointAddress> =
                    list.into_iter().map(|(address, _)| address).collect();
                (!list.is_empty()).then_some(list)
            };
            let ports: Vec<EndpointPort> =
                ports.iter().map(ResolvedPort::to_endpoint_port).collect();
            EndpointSubset {
                addresses: strip(ready),
                not_ready_addresses: strip(not_ready),
                ports: (!ports.is_empty()).then_some(ports),
            }
        })
        .collect();

    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    if headless {
        labels.insert(LABEL_HEADLESS.to_string(), String::new());
    } else {
        labels.remove(LABEL_HEADLESS);
    }
    Some(Endpoints {
        metadata: ObjectMeta {
            name: service.metadata.name.clone(),
            namespace: service.metadata.namespace.clone(),
            labels: (!labels.is_empty()).then_some(labels),
            ..ObjectMeta::default()
        },
        subsets: (!subsets.is_empty()).then_some(subsets),
    })
}

/// The EndpointSlices for the same Service (empty for selector-less services).
///
/// One address family per slice (each of `spec.ipFamilies`, IPv4 for a
/// plain IPv4 service), endpoints grouped by their resolved port set and cut
/// into slices of at most [`MAX_ENDPOINTS_PER_SLICE`]. Unlike Endpoints,
/// terminating pods stay in, with conditions `ready: false` (unless
/// `publishNotReadyAddresses`), `serving: <pod Ready>`, `terminating: true`.
/// A family with no endpoints gets one empty placeholder slice, as
/// Kubernetes keeps one. Names are "<service>-<suffix>" with a suffix hashed
/// from family, port set and chunk index, so they stay put between runs;
/// labels are the service's plus [`LABEL_SERVICE_NAME`] and
/// [`LABEL_MANAGED_BY`] = [`MANAGED_BY`] (and [`LABEL_HEADLESS`] for
/// headless services); the Service is the controlling owner when it has a UID.
pub fn endpoint_slices_for(service: &Service, pods: &[Pod]) -> Vec<EndpointSlice> {
    let Some(selected) = selected_pods(service, pods) else {
        return Vec::new();
    };
    let service_ports = service_ports(service);
    let publish_not_ready = publish_not_ready_addresses(service);
    let service_name = service.metadata.name.as_deref().unwrap_or("");

    let mut slices = Vec::new();
    let mut used_names = BTreeSet::new();
    for family in slice_address_types(service) {
        let mut by_ports: BTreeMap<Vec<ResolvedPort>, Vec<discovery::Endpoint>> = BTreeMap::new();
        for pod in &selected {
            if !should_pod_be_in_endpoints(pod, true) {
                continue;
            }
            let addresses: Vec<String> = pod_ips(pod)
                .into_iter()
                .filter(|ip| family_of(ip) == Some(family))
                .map(str::to_string)
                .collect();
            if addresses.is_empty() {
                continue;
            }
            let serving = is_pod_ready(pod);
            let terminating = pod.metadata.deletion_timestamp.is_some();
            let endpoint = discovery::Endpoint {
                addresses,
                conditions: Some(discovery::EndpointConditions {
                    ready: Some(publish_not_ready || (serving && !terminating)),
                    serving: Some(serving),
                    terminating: Some(terminating),
                }),
                hostname: hostname_for(service, pod),
                node_name: node_name_of(pod),
                target_ref: Some(pod_reference(pod)),
                ..discovery::Endpoint::default()
            };
            by_ports
                .entry(resolve_ports(service_ports, pod))
                .or_default()
                .push(endpoint);
        }

        if by_ports.is_empty() {
            let name = unique_slice_name(service_name, &[family, "placeholder"], &mut used_names);
            slices.push(new_slice(service, name, family, &[], Vec::new()));
            continue;
        }
        for (ports, mut endpoints) in by_ports {
            endpoints.sort_by(|left, right| endpoint_order(left).cmp(&endpoint_order(right)));
            let port_key = ports_key(&ports);
            let mut chunks: Vec<Vec<discovery::Endpoint>> = Vec::new();
            let mut rest = endpoints.into_iter().peekable();
            while rest.peek().is_some() {
                chunks.push(rest.by_ref().take(MAX_ENDPOINTS_PER_SLICE).collect());
            }
            for (index, chunk) in chunks.into_iter().enumerate() {
                let index = index.to_string();
                let name = unique_slice_name(
                    service_name,
                    &[family, port_key.as_str(), index.as_str()],
                    &mut used_names,
                );
                slices.push(new_slice(service, name, family, &ports, chunk));
            }
        }
    }
    slices.sort_by(|left, right| left.metadata.name.cmp(&right.metadata.name));
    slices
}

/// A service port resolved against one pod. Field order is the sort order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ResolvedPort {
    name: String,
    port: i32,
    protocol: String,
    app_protocol: Option<String>,
}

impl ResolvedPort {
    fn to_endpoint_port(&self) -> EndpointPort {
        EndpointPort {
            name: (!self.name.is_empty()).then(|| self.name.clone()),
            port: self.port,
            protocol: Some(self.protocol.clone()),
            app_protocol: self.app_protocol.clone(),
        }
    }

    fn to_slice_port(&self) -> discovery::EndpointPort {
        // Kubernetes always sets the name on slice ports, even when empty.
        discovery::EndpointPort {
            name: Some(self.name.clone()),
            port: Some(self.port),
            protocol: Some(self.protocol.clone()),
            app_protocol: self.app_protocol.clone(),
        }
    }
}

/// The pods the service selects, or `None` when the service has no selector
/// (an empty selector counts as none: the API omits it on the wire).
fn selected_pods<'a>(service: &Service, pods: &'a [Pod]) -> Option<Vec<&'a Pod>> {
    let selector = service
        .spec
        .as_ref()?
        .selector
        .as_ref()
        .filter(|selector| !selector.is_empty())?;
    let namespace = service.metadata.namespace.as_deref().unwrap_or("default");
    let selected = pods
        .iter()
        .filter(|pod| pod.metadata.namespace.as_deref().unwrap_or("default") == namespace)
        .filter(|pod| {
            let labels = pod.metadata.labels.as_ref();
            selector
                .iter()
                .all(|(key, value)| labels.and_then(|labels| labels.get(key)) == Some(value))
        })
        .collect();
    Some(selected)
}

/// Kubernetes' `ShouldPodBeInEndpoints`.
fn should_pod_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    let phase = pod
        .status
        .as_ref()
        .and_then(|status| status.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return false;
    }
    if pod_ips(pod).is_empty() {
        return false;
    }
    include_terminating || pod.metadata.deletion_timestamp.is_none()
}

fn is_pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|status| status.conditions.as_deref())
        .unwrap_or(&[])
        .iter()
        .any(|condition| condition.type_ == "Ready" && condition.status == "True")
}

/// status.podIPs, or status.podIP for agents that only set that.
fn pod_ips(pod: &Pod) -> Vec<&str> {
    let Some(status) = pod.status.as_ref() else {
        return Vec::new();
    };
    let listed: Vec<&str> = status
        .pod_ips
        .iter()
        .flatten()
        .map(|pod_ip| pod_ip.ip.as_str())
        .filter(|ip| !ip.is_empty())
        .collect();
    if !listed.is_empty() {
        return listed;
    }
    status
        .pod_ip
        .as_deref()
        .filter(|ip| !ip.is_empty())
        .into_iter()
        .collect()
}

fn family_of(ip: &str) -> Option<&'static str> {
    match ip.parse::<IpAddr>().ok()? {
        IpAddr::V4(_) => Some(IPV4),
        IpAddr::V6(_) => Some(IPV6),
    }
}

fn is_ipv6(ip: &str) -> bool {
    family_of(ip) == Some(IPV6)
}

/// The one address a pod gets in Endpoints: of the service's primary family
/// (spec.ipFamilies[0], else the clusterIP's, else the pod's own primary IP's).
fn legacy_endpoint_ip<'a>(service: &Service, pod: &'a Pod) -> Option<&'a str> {
    let spec = service.spec.as_ref();
    let ips = pod_ips(pod);
    let wants_ipv6 = match spec
        .and_then(|spec| spec.ip_families.as_deref())
        .and_then(<[String]>::first)
    {
        Some(family) => family == IPV6,
        None => match cluster_ip(service).filter(|ip| !ip.is_empty() && *ip != CLUSTER_IP_NONE) {
            Some(cluster_ip) => is_ipv6(cluster_ip),
            None => ips.first().is_some_and(|ip| is_ipv6(ip)),
        },
    };
    ips.into_iter().find(|ip| is_ipv6(ip) == wants_ipv6)
}

/// Kubernetes' `getAddressTypesForService`: the service's IP families; for
/// a service that states none, its clusterIP's family, or both for a
/// headless one.
fn slice_address_types(service: &Service) -> Vec<&'static str> {
    let mut families: Vec<&'static str> = Vec::new();
    for family in service
        .spec
        .as_ref()
        .and_then(|spec| spec.ip_families.as_deref())
        .unwrap_or(&[])
    {
        let known = match family.as_str() {
            IPV4 => IPV4,
            IPV6 => IPV6,
            _ => continue,
        };
        if !families.contains(&known) {
            families.push(known);
        }
    }
    if !families.is_empty() {
        return families;
    }
    match cluster_ip(service).filter(|ip| !ip.is_empty() && *ip != CLUSTER_IP_NONE) {
        Some(cluster_ip) if is_ipv6(cluster_ip) => vec![IPV6],
        Some(_) => vec![IPV4],
        None => vec![IPV4, IPV6],
    }
}

fn cluster_ip(service: &Service) -> Option<&str> {
    service.spec.as_ref()?.cluster_ip.as_deref()
}

fn publish_not_ready_addresses(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|spec| spec.publish_not_ready_addresses)
        .unwrap_or(false)
}

fn service_ports(service: &Service) -> &[ServicePort] {
    service
        .spec
        .as_ref()
        .and_then(|spec| spec.ports.as_deref())
        .unwrap_or(&[])
}

/// The service ports this pod serves, sorted; ports it cannot serve are left out.
fn resolve_ports(service_ports: &[ServicePort], pod: &Pod) -> Vec<ResolvedPort> {
    let mut resolved: Vec<ResolvedPort> = service_ports
        .iter()
        .filter_map(|service_port| {
            Some(ResolvedPort {
                name: service_port.name.clone().unwrap_or_default(),
                port: find_port(pod, service_port)?,
                protocol: protocol_of(service_port.protocol.as_deref()).to_string(),
                app_protocol: service_port.app_protocol.clone(),
            })
        })
        .collect();
    resolved.sort();
    resolved.dedup();
    resolved
}

/// Kubernetes' `FindPort`: a numeric targetPort as is (the service port when
/// unset), a named one through the container ports (sidecar init containers
/// included) with that name and the service port's protocol.
fn find_port(pod: &Pod, service_port: &ServicePort) -> Option<i32> {
    let name = match &service_port.target_port {
        None => return Some(service_port.port),
        Some(IntOrString::Int(port)) => return Some(*port),
        Some(IntOrString::String(name)) => name,
    };
    let protocol = protocol_of(service_port.protocol.as_deref());
    let spec = pod.spec.as_ref()?;
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|container| container.restart_policy.as_deref() == Some("Always"));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|container| container.ports.iter().flatten())
        .find(|port| {
            port.name.as_deref() == Some(name.as_str())
                && protocol_of(port.protocol.as_deref()) == protocol
        })
        .map(|port| port.container_port)
}

fn protocol_of(protocol: Option<&str>) -> &str {
    protocol
        .filter(|protocol| !protocol.is_empty())
        .unwrap_or("TCP")
}

/// The pod's hostname, when it asks to be addressable under this service
/// (spec.hostname set and spec.subdomain naming the service).
fn hostname_for(service: &Service, pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let hostname = spec.hostname.as_deref().filter(|name| !name.is_empty())?;
    let same_namespace = pod.metadata.namespace.as_deref().unwrap_or("default")
        == service.metadata.namespace.as_deref().unwrap_or("default");
    let names_service = spec.subdomain.is_some() && spec.subdomain == service.metadata.name;
    (same_namespace && names_service).then(|| hostname.to_string())
}

fn node_name_of(pod: &Pod) -> Option<String> {
    pod.spec
        .as_ref()?
        .node_name
        .clone()
        .filter(|name| !name.is_empty())
}

fn pod_reference(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".to_string()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        ..ObjectReference::default()
    }
}

fn target_uid(target: Option<&ObjectReference>) -> &str {
    target
        .and_then(|target| target.uid.as_deref())
        .unwrap_or("")
}

fn address_order(address: &EndpointAddress) -> (&str, &str) {
    (address.ip.as_str(), target_uid(address.target_ref.as_ref()))
}

fn endpoint_order(endpoint: &discovery::Endpoint) -> (&str, &str) {
    let first = endpoint.addresses.first().map_or("", String::as_str);
    (first, target_uid(endpoint.target_ref.as_ref()))
}

fn ports_key(ports: &[ResolvedPort]) -> String {
    ports
        .iter()
        .map(|port| {
            format!(
                "{}:{}/{}/{}",
                port.name,
                port.port,
                port.protocol,
                port.app_protocol.as_deref().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn new_slice(
    service: &Service,
    name: String,
    family: &str,
    ports: &[ResolvedPort],
    endpoints: Vec<discovery::Endpoint>,
) -> EndpointSlice {
    let service_name = service.metadata.name.clone().unwrap_or_default();
    let mut labels: BTreeMap<String, String> = service
        .metadata
        .labels
        .iter()
        .flatten()
        .filter(|(key, _)| key.as_str() != LABEL_SERVICE_NAME && key.as_str() != LABEL_MANAGED_BY)
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    // Kubernetes' IsServiceIPSet: an unset clusterIP counts as headless here.
    let has_cluster_ip =
        cluster_ip(service).is_some_and(|ip| !ip.is_empty() && ip != CLUSTER_IP_NONE);
    if has_cluster_ip {
        labels.remove(LABEL_HEADLESS);
    } else {
        labels.insert(LABEL_HEADLESS.to_string(), String::new());
    }
    labels.insert(LABEL_SERVICE_NAME.to_string(), service_name.clone());
    labels.insert(LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string());

    let owner = service
        .metadata
        .uid
        .as_ref()
        .filter(|uid| !uid.is_empty())
        .map(|uid| OwnerReference {
            api_version: "v1".to_string(),
            kind: "Service".to_string(),
            name: service_name,
            uid: uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        });
    EndpointSlice {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: service.metadata.namespace.clone(),
            labels: Some(labels),
            owner_references: owner.map(|owner| vec![owner]),
            ..ObjectMeta::default()
        },
        address_type: family.to_string(),
        endpoints: Some(endpoints),
        ports: Some(ports.iter().map(ResolvedPort::to_slice_port).collect()),
    }
}

/// "<service>-<suffix>", the suffix hashed from `parts`; rehashed with a
/// counter in the (unlikely) event two groups of one service collide.
fn unique_slice_name(service: &str, parts: &[&str], used: &mut BTreeSet<String>) -> String {
    let mut attempt: u64 = 0;
    loop {
        let mut hash = fnv1a(service.as_bytes(), 0xcbf2_9ce4_8422_2325);
        for part in parts {
            hash = fnv1a(&[0], hash);
            hash = fnv1a(part.as_bytes(), hash);
        }
        hash = fnv1a(&attempt.to_le_bytes(), hash);
        let name = format!("{service}-{}", name_suffix(hash));
        if used.insert(name.clone()) {
            return name;
        }
        attempt = attempt.wrapping_add(1);
    }
}

fn fnv1a(bytes: &[u8], mut hash: u64) -> u64 {
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

fn name_suffix(mut hash: u64) -> String {
    let base = NAME_SUFFIX_ALPHABET.len() as u64;
    (0..NAME_SUFFIX_LENGTH)
        .map(|_| {
            let index = usize::try_from(hash % base).unwrap_or(0);
            hash /= base;
            char::from(NAME_SUFFIX_ALPHABET.get(index).copied().unwrap_or(b'x'))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, ContainerPort, PodCondition, PodIP, PodSpec, PodStatus, ServiceSpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    /// A service "web" in "default" selecting app=web, clusterIP 10.96.0.10.
    fn service(name: &str) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some("default".to_string()),
                uid: Some(format!("svc-uid-{name}")),
                labels: Some(BTreeMap::from([("team".to_string(), "blue".to_string())])),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                selector: Some(BTreeMap::from([("app".to_string(), "web".to_string())])),
                cluster_ip: Some("10.96.0.10".to_string()),
                ports: Some(Vec::new()),
                ..ServiceSpec::default()
            }),
            status: None,
        }
    }

    trait ServiceFixture {
        fn spec_mut(&mut self) -> &mut ServiceSpec;
        fn port(self, name: &str, port: i32, target: Option<IntOrString>) -> Self;
        fn udp_port(self, name: &str, port: i32, target: Option<IntOrString>) -> Self;
        fn port_with_protocol(
            self,
            name: &str,
            port: i32,
            target: Option<IntOrString>,
            protocol: &str,
        ) -> Self;
        fn headless(self) -> Self;
        fn without_selector(self) -> Self;
        fn publish_not_ready(self) -> Self;
    }

    impl ServiceFixture for Service {
        fn spec_mut(&mut self) -> &mut ServiceSpec {
            self.spec.get_or_insert_with(ServiceSpec::default)
        }
        fn port(self, name: &str, port: i32, target: Option<IntOrString>) -> Self {
            self.port_with_protocol(name, port, target, "TCP")
        }
        fn udp_port(self, name: &str, port: i32, target: Option<IntOrString>) -> Self {
            self.port_with_protocol(name, port, target, "UDP")
        }
        fn port_with_protocol(
            mut self,
            name: &str,
            port: i32,
            target: Option<IntOrString>,
            protocol: &str,
        ) -> Self {
            self.spec_mut()
                .ports
                .get_or_insert_with(Vec::new)
                .push(ServicePort {
                    name: (!name.is_empty()).then(|| name.to_string()),
                    port,
                    target_port: target,
                    protocol: Some(protocol.to_string()),
                    ..ServicePort::default()
                });
            self
        }
        fn headless(mut self) -> Self {
            self.spec_mut().cluster_ip = Some("None".to_string());
            self
        }
        fn without_selector(mut self) -> Self {
            self.spec_mut().selector = None;
            self
        }
        fn publish_not_ready(mut self) -> Self {
            self.spec_mut().publish_not_ready_addresses = Some(true);
            self
        }
    }

    /// A Running, Ready pod labelled app=web on node n1 with the given IP.
    fn pod(name: &str, ip: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some("default".to_string()),
                uid: Some(format!("uid-{name}")),
                labels: Some(BTreeMap::from([("app".to_string(), "web".to_string())])),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: Some("n1".to_string()),
                containers: vec![Container {
                    name: "app".to_string(),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".to_string()),
                pod_ip: Some(ip.to_string()),
                pod_ips: Some(vec![PodIP { ip: ip.to_string() }]),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".to_string(),
                    status: "True".to_string(),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
        }
    }

    trait PodFixture {
        fn status_mut(&mut self) -> &mut PodStatus;
        fn not_ready(self) -> Self;
        fn phase(self, phase: &str) -> Self;
        fn deleting(self) -> Self;
        fn no_ip(self) -> Self;
        fn container_port(self, name: &str, port: i32) -> Self;
        fn label(self, key: &str, value: &str) -> Self;
        fn namespace(self, namespace: &str) -> Self;
    }

    impl PodFixture for Pod {
        fn status_mut(&mut self) -> &mut PodStatus {
            self.status.get_or_insert_with(PodStatus::default)
        }
        fn not_ready(mut self) -> Self {
            self.status_mut().conditions = Some(vec![PodCondition {
                type_: "Ready".to_string(),
                status: "False".to_string(),
                ..PodCondition::default()
            }]);
            self
        }
        fn phase(mut self, phase: &str) -> Self {
            self.status_mut().phase = Some(phase.to_string());
            self
        }
        fn deleting(mut self) -> Self {
            self.metadata.deletion_timestamp = Some(Time(Default::default()));
            self
        }
        fn no_ip(mut self) -> Self {
            self.status_mut().pod_ip = None;
            self.status_mut().pod_ips = None;
            self
        }
        fn container_port(mut self, name: &str, port: i32) -> Self {
            if let Some(container) = self
                .spec
                .get_or_insert_with(PodSpec::default)
                .containers
                .first_mut()
            {
                container
                    .ports
                    .get_or_insert_with(Vec::new)
                    .push(ContainerPort {
                        name: Some(name.to_string()),
                        container_port: port,
                        protocol: Some("TCP".to_string()),
                        ..ContainerPort::default()
                    });
            }
            self
        }
        fn label(mut self, key: &str, value: &str) -> Self {
            self.metadata
                .labels
                .get_or_insert_with(BTreeMap::new)
                .insert(key.to_string(), value.to_string());
            self
        }
        fn namespace(mut self, namespace: &str) -> Self {
            self.metadata.namespace = Some(namespace.to_string());
            self
        }
    }

    fn named(name: &str) -> Option<IntOrString> {
        Some(IntOrString::String(name.to_string()))
    }

    fn number(port: i32) -> Option<IntOrString> {
        Some(IntOrString::Int(port))
    }

    fn ips(addresses: Option<&Vec<EndpointAddress>>) -> Vec<&str> {
        addresses
            .map(|list| list.iter().map(|address| address.ip.as_str()).collect())
            .unwrap_or_default()
    }

    fn listed(slice: &EndpointSlice) -> &[discovery::Endpoint] {
        slice.endpoints.as_deref().unwrap_or(&[])
    }

    fn only_subset(endpoints: &Endpoints) -> &EndpointSubset {
        let subsets = endpoints.subsets.as_deref().unwrap_or(&[]);
        assert_eq!(subsets.len(), 1, "subsets: {subsets:?}");
        &subsets[0]
    }

    #[test]
    fn ready_and_not_ready_pods_split_into_addresses() {
        let svc = service("web").port("http", 80, number(8080));
        let pods = [
            pod("b", "10.0.0.2"),
            pod("a", "10.0.0.1"),
            pod("c", "10.0.0.3").not_ready(),
        ];
        let endpoints = endpoints_for(&svc, &pods).unwrap();
        let subset = only_subset(&endpoints);
        assert_eq!(ips(subset.addresses.as_ref()), ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(ips(subset.not_ready_addresses.as_ref()), ["10.0.0.3"]);
        assert_eq!(
            subset.ports,
            Some(vec![EndpointPort {
                name: Some("http".to_string()),
                port: 8080,
                protocol: Some("TCP".to_string()),
                app_protocol: None,
            }])
        );
        let first = &subset.addresses.as_ref().unwrap()[0];
        assert_eq!(first.node_name.as_deref(), Some("n1"));
        assert_eq!(
            first.target_ref,
            Some(ObjectReference {
                kind: Some("Pod".to_string()),
                name: Some("a".to_string()),
                namespace: Some("default".to_string()),
                uid: Some("uid-a".to_string()),
                ..ObjectReference::default()
            })
        );
        assert_eq!(endpoints.metadata.name.as_deref(), Some("web"));
        assert_eq!(endpoints.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(
            endpoints.metadata.labels,
            Some(BTreeMap::from([("team".to_string(), "blue".to_string())]))
        );
    }

    #[test]
    fn publish_not_ready_addresses_lists_every_pod_as_ready() {
        let svc = service("web").port("http", 80, None).publish_not_ready();
        let pods = [
            pod("a", "10.0.0.1").not_ready(),
            pod("b", "10.0.0.2").deleting(),
        ];
        let endpoints = endpoints_for(&svc, &pods).unwrap();
        let subset = only_subset(&endpoints);
        assert_eq!(ips(subset.addresses.as_ref()), ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(subset.not_ready_addresses, None);
        assert_eq!(subset.ports.as_ref().unwrap()[0].port, 80);
    }

    #[test]
    fn named_target_port_resolves_per_pod_and_pods_without_it_are_left_out() {
        let svc = service("web").port("http", 80, named("web"));
        let pods = [
            pod("old", "10.0.0.1").container_port("web", 8080),
            pod("new", "10.0.0.2").container_port("web", 9090),
            pod("bare", "10.0.0.3"),
        ];
        let endpoints = endpoints_for(&svc, &pods).unwrap();
        let subsets = endpoints.subsets.unwrap();
        assert_eq!(subsets.len(), 2);
        let summary: Vec<(Vec<&str>, i32)> = subsets
            .iter()
            .map(|subset| {
                (
                    ips(subset.addresses.as_ref()),
                    subset.ports.as_ref().unwrap()[0].port,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [(vec!["10.0.0.1"], 8080), (vec!["10.0.0.2"], 9090)]
        );
    }

    #[test]
    fn named_target_port_must_match_the_protocol() {
        let svc = service("dns").udp_port("dns", 53, named("dns"));
        let pods = [pod("a", "10.0.0.1").container_port("dns", 5353)];
        let endpoints = endpoints_for(&svc, &pods).unwrap();
        assert_eq!(endpoints.subsets, None);
    }

    #[test]
    fn multiple_ports_group_addresses_by_identical_port_sets() {
        let svc =
            service("web")
                .port("metrics", 9100, named("metrics"))
                .port("http", 80, number(8080));
        let pods = [
            pod("a", "10.0.0.1").container_port("metrics", 9100),
            pod("b", "10.0.0.2"),
            pod("c", "10.0.0.3").container_port("metrics", 9100),
        ];
        let endpoints = endpoints_for(&svc, &pods).unwrap();
        let subsets = endpoints.subsets.unwrap();
        let summary: Vec<(Vec<&str>, String)> = subsets
            .iter()
            .map(|subset| {
                let ports: Vec<String> = subset
                    .ports
                    .iter()
                    .flatten()
                    .map(|port| format!("{}:{}", port.name.as_deref().unwrap_or(""), port.port))
                    .collect();
                (ips(subset.addresses.as_ref()), ports.join(","))
            })
            .collect();
        assert_eq!(
            summary,
            [
                (vec!["10.0.0.2"], "http:8080".to_string()),
                (
                    vec!["10.0.0.1", "10.0.0.3"],
                    "http:8080,metrics:9100".to_string()
                ),
            ]
        );
    }

    #[test]
    fn selector_less_service_is_user_managed() {
        let svc = service("external")
            .port("http", 80, None)
            .without_selector();
        assert_eq!(endpoints_for(&svc, &[pod("a", "10.0.0.1")]), None);
        assert!(endpoint_slices_for(&svc, &[pod("a", "10.0.0.1")]).is_empty());
    }

    #[test]
    fn terminating_terminal_and_ip_less_pods_are_skipped() {
        let svc = service("web").port("http", 80, None);
        let pods = [
            pod("gone", "10.0.0.1").deleting(),
            pod("done", "10.0.0.2").phase("Succeeded"),
            pod("failed", "10.0.0.3").phase("Failed"),
            pod("pending", "").no_ip(),
            pod("live", "10.0.0.5"),
        ];
        let endpoints = endpoints_for(&svc, &pods).unwrap();
        let subset = only_subset(&endpoints);
        assert_eq!(ips(subset.addresses.as_ref()), ["10.0.0.5"]);
        assert_eq!(subset.not_ready_addresses, None);
    }

    #[test]
    fn only_matching_pods_in_the_service_namespace_count() {
        let svc = service("web").port("http", 80, None);
        let pods = [
            pod("elsewhere", "10.0.0.1").namespace("other"),
            pod("unrelated", "10.0.0.2").label("app", "db"),
            pod("match", "10.0.0.3"),
        ];
        let endpoints = endpoints_for(&svc, &pods).unwrap();
        assert_eq!(
            ips(only_subset(&endpoints).addresses.as_ref()),
            ["10.0.0.3"]
        );
    }

    #[test]
    fn no_matching_pods_give_empty_endpoints_and_a_placeholder_slice() {
        let svc = service("web").port("http", 80, None);
        let endpoints = endpoints_for(&svc, &[]).unwrap();
        assert_eq!(endpoints.subsets, None);
        let slices = endpoint_slices_for(&svc, &[]);
        assert_eq!(slices.len(), 1);
        assert_eq!(slices[0].endpoints, Some(Vec::new()));
        assert_eq!(slices[0].ports, Some(Vec::new()));
        assert_eq!(slices[0].address_type, "IPv4");
    }

    #[test]
    fn headless_service_without_ports_lists_pods_and_is_labelled() {
        let mut with_hostname = pod("db-0", "10.0.0.1");
        if let Some(spec) = with_hostname.spec.as_mut() {
            spec.hostname = Some("db-0".to_string());
            spec.subdomain = Some("db".to_string());
        }
        let svc = service("db").headless();
        let endpoints = endpoints_for(&svc, &[with_hostname.clone()]).unwrap();
        let subset = only_subset(&endpoints);
        assert_eq!(subset.ports, None);
        let address = &subset.addresses.as_ref().unwrap()[0];
        assert_eq!(address.hostname.as_deref(), Some("db-0"));
        assert_eq!(
            endpoints
                .metadata
                .labels
                .unwrap()
                .get(LABEL_HEADLESS)
                .map(String::as_str),
            Some("")
        );

        let slices = endpoint_slices_for(&svc, &[with_hostname]);
        let ipv4: Vec<&EndpointSlice> = slices
            .iter()
            .filter(|slice| slice.address_type == "IPv4")
            .collect();
        assert_eq!(ipv4.len(), 1);
        assert_eq!(listed(ipv4[0])[0].hostname.as_deref(), Some("db-0"));
        assert!(slices.iter().all(|slice| {
            slice
                .metadata
                .labels
                .as_ref()
                .unwrap()
                .get(LABEL_HEADLESS)
                .map(String::as_str)
                == Some("")
        }));
    }

    #[test]
    fn non_headless_service_without_ports_has_no_subsets() {
        let svc = service("web");
        let endpoints = endpoints_for(&svc, &[pod("a", "10.0.0.1")]).unwrap();
        assert_eq!(endpoints.subsets, None);
    }

    #[test]
    fn slices_carry_service_labels_owner_and_conditions() {
        let svc = service("web").port("http", 80, number(8080));
        let pods = [
            pod("ready", "10.0.0.1"),
            pod("starting", "10.0.0.2").not_ready(),
            pod("stopping", "10.0.0.3").deleting(),
        ];
        let slices = endpoint_slices_for(&svc, &pods);
        assert_eq!(slices.len(), 1);
        let slice = &slices[0];
        assert_eq!(slice.address_type, "IPv4");
        let name = slice.metadata.name.as_deref().unwrap();
        assert!(name.starts_with("web-") && name.len() == "web-".len() + NAME_SUFFIX_LENGTH);
        assert_eq!(slice.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(
            slice.metadata.labels,
            Some(BTreeMap::from([
                (LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string()),
                (LABEL_SERVICE_NAME.to_string(), "web".to_string()),
                ("team".to_string(), "blue".to_string()),
            ]))
        );
        let owner = &slice.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("Service", "svc-uid-web")
        );
        assert_eq!(owner.controller, Some(true));
        assert_eq!(
            slice.ports,
            Some(vec![discovery::EndpointPort {
                name: Some("http".to_string()),
                port: Some(8080),
                protocol: Some("TCP".to_string()),
                app_protocol: None,
            }])
        );
        let conditions: Vec<(&str, (bool, bool, bool))> = listed(slice)
            .iter()
            .map(|endpoint| {
                let conditions = endpoint.conditions.clone().unwrap();
                (
                    endpoint.addresses[0].as_str(),
                    (
                        conditions.ready.unwrap(),
                        conditions.serving.unwrap(),
                        conditions.terminating.unwrap(),
                    ),
                )
            })
            .collect();
        assert_eq!(
            conditions,
            [
                ("10.0.0.1", (true, true, false)),
                ("10.0.0.2", (false, false, false)),
                ("10.0.0.3", (false, true, true)),
            ]
        );
        let first = &listed(slice)[0];
        assert_eq!(first.node_name.as_deref(), Some("n1"));
        assert_eq!(
            first
                .target_ref
                .as_ref()
                .and_then(|target| target.name.as_deref()),
            Some("ready")
        );
    }

    #[test]
    fn slices_split_by_port_set_and_hold_at_most_a_hundred_endpoints() {
        let svc = service("web").port("http", 80, named("http"));
        let mut pods: Vec<Pod> = (0..250)
            .map(|index| {
                pod(
                    &format!("p{index}"),
                    &format!("10.0.{}.{}", index / 200, index % 200),
                )
                .container_port("http", 8080)
            })
            .collect();
        pods.push(pod("odd", "10.1.0.1").container_port("http", 9090));
        let slices = endpoint_slices_for(&svc, &pods);
        let mut sizes: Vec<(i32, usize)> = slices
            .iter()
            .map(|slice| {
                let port = slice.ports.as_ref().unwrap()[0].port.unwrap();
                (port, listed(slice).len())
            })
            .collect();
        sizes.sort();
        assert_eq!(sizes, [(8080, 50), (8080, 100), (8080, 100), (9090, 1)]);
        let names: BTreeSet<_> = slices
            .iter()
            .map(|slice| slice.metadata.name.clone())
            .collect();
        assert_eq!(names.len(), slices.len());
    }

    #[test]
    fn dual_stack_service_gets_a_slice_per_family_and_endpoints_use_the_primary() {
        let mut svc = service("web").port("http", 80, None);
        svc.spec_mut().ip_families = Some(vec!["IPv6".to_string(), "IPv4".to_string()]);
        let mut dual = pod("a", "10.0.0.1");
        dual.status_mut().pod_ips = Some(vec![
            PodIP {
                ip: "10.0.0.1".to_string(),
            },
            PodIP {
                ip: "fd00::1".to_string(),
            },
        ]);
        let endpoints = endpoints_for(&svc, std::slice::from_ref(&dual)).unwrap();
        assert_eq!(ips(only_subset(&endpoints).addresses.as_ref()), ["fd00::1"]);
        let slices = endpoint_slices_for(&svc, &[dual]);
        let mut families: Vec<(&str, &str)> = slices
            .iter()
            .map(|slice| {
                (
                    slice.address_type.as_str(),
                    listed(slice)[0].addresses[0].as_str(),
                )
            })
            .collect();
        families.sort();
        assert_eq!(families, [("IPv4", "10.0.0.1"), ("IPv6", "fd00::1")]);
    }

    #[test]
    fn output_is_deterministic_whatever_the_pod_order() {
        let svc = service("web")
            .port("http", 80, named("http"))
            .port("admin", 81, number(9000));
        let pods = vec![
            pod("a", "10.0.0.9").container_port("http", 8080),
            pod("b", "10.0.0.10")
                .container_port("http", 8080)
                .not_ready(),
            pod("c", "10.0.0.1"),
            pod("d", "10.0.0.5").container_port("http", 8081),
        ];
        let mut reversed = pods.clone();
        reversed.reverse();
        assert_eq!(endpoints_for(&svc, &pods), endpoints_for(&svc, &reversed));
        assert_eq!(
            endpoint_slices_for(&svc, &pods),
            endpoint_slices_for(&svc, &reversed)
        );
        assert_eq!(
            endpoint_slices_for(&svc, &pods),
            endpoint_slices_for(&svc, &pods)
        );
        // Addresses sort by IP text, as Kubernetes sorts them.
        let endpoints = endpoints_for(&svc, &pods).unwrap();
        let all: Vec<&str> = endpoints
            .subsets
            .iter()
            .flatten()
            .flat_map(|subset| ips(subset.addresses.as_ref()))
            .collect();
        assert_eq!(all, ["10.0.0.1", "10.0.0.9", "10.0.0.5"]);
        // Ports sort by name within a subset.
        let names: Vec<Option<String>> = endpoints.subsets.as_ref().unwrap()[1]
            .ports
            .iter()
            .flatten()
            .map(|port| port.name.clone())
            .collect();
        assert_eq!(names, [Some("admin".to_string()), Some("http".to_string())]);
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        let empty_service = Service::default();
        let empty_pod = Pod::default();
        let _ = endpoints_for(&empty_service, std::slice::from_ref(&empty_pod));
        let _ = endpoint_slices_for(&empty_service, std::slice::from_ref(&empty_pod));
        let mut odd = service("").port("", 0, named("")).headless();
        odd.spec_mut().ip_families = Some(vec!["IPv9".to_string()]);
        let weird = pod("w", "not-an-ip").container_port("", -1);
        let _ = endpoints_for(&odd, &[weird.clone(), empty_pod.clone()]);
        let slices = endpoint_slices_for(&odd, &[weird, empty_pod]);
        assert!(!slices.is_empty());
    }
}
