//! Helpers for the node agent integration tests.
#![allow(dead_code)]

pub mod registry;
