#!/usr/bin/env bash
# Installs everything Berth's build, demo and tests need on a Debian machine
# with Rust: Debian packages (only the missing ones) and the crates (cargo fetch).
# Idempotent; run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  etcd-server        # etcd backend tests and benchmarks
  protobuf-compiler  # protoc, for etcd-client's and CRI's generated code
  libprotobuf-dev    # google/protobuf/*.proto that protoc includes
  docker-registry    # local OCI registry for image tests
  busybox-static     # the tests build their images from it
  iproute2           # network namespaces, links, routes
  runc               # the CRI runtime benchmark compares against runc and crun
  crun
  git                # gitops tests
  ca-certificates
  curl               # demo script readiness checks
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts etcd and the registry as services on install; Berth starts its
# own instances on other ports, so the system ones are stopped if running.
for svc in etcd docker-registry; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done
pkill -x etcd 2>/dev/null || true
pkill -x docker-registry 2>/dev/null || true

command -v kubectl >/dev/null || echo "setup: warning: kubectl not found; kubectl e2e tests will fail" >&2
cargo fetch --locked 2>/dev/null || cargo fetch
