//! berth-nodeagent: the node's half of Berth. The CRI half (this crate today)
//! pulls images from OCI registries into a content store, unpacks their layers
//! once for overlayfs, and serves CRI runtime.v1 over gRPC on a unix socket.
//! The kubelet half (pod workers, probes, volumes, status) and the runtime
//! service (sandboxes, containers, namespaces, cgroups, shims) follow.

pub mod cri;
pub mod image;
