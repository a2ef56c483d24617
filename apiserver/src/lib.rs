//! berth-apiserver (in progress)
pub mod store;
