//! proto: the gRPC contracts, CRI runtime.v1 (re-exported from the `k8s-cri`
//! crate) and any protos of Berth's own. Not built yet: it arrives with the CRI
//! runtime.
