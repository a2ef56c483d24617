//! berth-controllers: the scheduler and the controller manager (Deployment,
//! ReplicaSet, Endpoints, garbage collection, namespace deletion, node lifecycle,
//! GitOps), each a kube-rs `runtime::Controller` that talks only to the API
//! server. Not built yet: see the open issue for the controllers.
