#!/usr/bin/env bash
# The main job: build Berth, start it on this machine and run the demo app in it.
# Today that is berth-apiserver on the embedded store with the demo manifests
# applied through the real kubectl; the node agent and controllers join it as
# they land. `scripts/demo.sh stop` stops it again.
set -euo pipefail
cd "$(dirname "$0")/.."
data_dir=${BERTH_DATA_DIR:-$HOME/.berth}
port=${BERTH_PORT:-6443}
pid_file="$data_dir/apiserver.pid"

stop() {
  if [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
    kill "$(cat "$pid_file")"
    echo "stopped berth-apiserver (pid $(cat "$pid_file"))"
  fi
  rm -f "$pid_file"
}

if [ "${1:-}" = "stop" ]; then stop; exit 0; fi

./scripts/setup.sh
cargo build -p berth-apiserver
mkdir -p "$data_dir"
stop
./target/debug/berth-apiserver --data-dir "$data_dir" --port "$port" >"$data_dir/apiserver.log" 2>&1 &
echo $! >"$pid_file"
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 "$(cat "$pid_file")" 2>/dev/null || { echo "berth-apiserver exited; see $data_dir/apiserver.log" >&2; exit 1; }
  sleep 0.1
done
export KUBECONFIG="$data_dir/kubeconfig"
kubectl apply -f manifests/demo/
kubectl get all,configmaps -o wide
cat <<MSG

Berth is serving the Kubernetes API on http://127.0.0.1:$port (data in $data_dir).
  export KUBECONFIG=$data_dir/kubeconfig
  kubectl get all
Stop it with: scripts/demo.sh stop
MSG
