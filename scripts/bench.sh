#!/usr/bin/env bash
# Benchmarks, printed as tables (release build). Speed targets live here, never in tests.
#   berth-apiserver: create/get/list/watch throughput and p50/p99 per backend,
#                    next to raw etcd put throughput in the same run.
# Sizes: BERTH_BENCH_OBJECTS (2000), BERTH_BENCH_CONCURRENCY (16).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo bench -p berth-apiserver --bench api
#   berth-controllers: a 1,000-replica Deployment over 10 simulated nodes: time to
#                    all bound and all Running, scheduler pods/s, API requests per pod.
#                    Sizes: BERTH_BENCH_REPLICAS (1000), BERTH_BENCH_NODES (10).
cargo bench -p berth-controllers --bench scale
#   berth-nodeagent (root): container create+start+delete over 100 runs with Berth's
#                    runtime, runc and crun on one bundle; CRI sandbox+container start
#                    p50/p99; pull+unpack of a 256 MiB image from a local registry.
#                    Sizes: BERTH_BENCH_RUNS (100), BERTH_BENCH_IMAGE_MB (256).
cargo bench -p berth-nodeagent --bench runtime
