//! Helpers for the node agent integration tests.
#![allow(dead_code)]

pub mod agent;
pub mod registry;
