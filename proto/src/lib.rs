//! proto: the gRPC contracts Berth speaks. CRI runtime.v1 comes from the
//! `k8s-cri` crate (generated from the upstream api.proto with protoc at build
//! time) and is re-exported here so every crate names one version of it.
//! Protos of Berth's own will live beside it.

pub use k8s_cri::v1 as cri;
