#!/usr/bin/env bash
# The whole test suite: installs what it needs, then formatting, lints, and
# every unit, integration and end-to-end test (root for the latter).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --no-fail-fast
