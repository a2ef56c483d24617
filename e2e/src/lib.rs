//! Whole-cluster tests: see tests/.
