//! berth-nodeagent: the node's half of Berth. The CRI half pulls images
//! from OCI registries into a content store, unpacks their layers once for
//! overlayfs, runs pod sandboxes and containers (our own OCI runtime in
//! `container`, one shim per container) and serves CRI runtime.v1 over gRPC
//! on a unix socket. The kubelet half (pod workers, probes, volumes,
//! status) follows.

pub mod container;
pub mod cri;
pub mod image;
pub mod runtime;
