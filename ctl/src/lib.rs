//! berth: the CLI (kubectl-like verbs plus `up`/`down`/`status` for the local
//! cluster and `image load`). Not built yet.
