//! berth-nodeagent: the kubelet half (pod workers, probes, volumes, status,
//! log/exec server) and the CRI half (image service with registry pulls,
//! content store and overlay snapshots; runtime service with sandboxes,
//! containers, namespaces, cgroups and shims). Not built yet: see the open
//! issue for the CRI runtime.
