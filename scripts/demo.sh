#!/usr/bin/env bash
# The main job: build Berth, start it on this machine and run the demo app in it.
# Today that is berth-apiserver on the embedded store plus berth-controllers
# (scheduler and controllers), with the demo manifests applied through the real
# kubectl: the Deployment gets its ReplicaSet and pods, which stay Pending until
# the node agent (an open issue) runs them. `scripts/demo.sh stop` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
data_dir=${BERTH_DATA_DIR:-$HOME/.berth}
port=${BERTH_PORT:-6443}
pid_file="$data_dir/apiserver.pid"
controllers_pid_file="$data_dir/controllers.pid"

stop() {
  for file in "$controllers_pid_file" "$pid_file"; do
    if [ -f "$file" ] && kill -0 "$(cat "$file")" 2>/dev/null; then
      kill "$(cat "$file")"
      echo "stopped $(basename "$file" .pid) (pid $(cat "$file"))"
    fi
    rm -f "$file"
  done
}

if [ "${1:-}" = "stop" ]; then stop; exit 0; fi

./scripts/setup.sh
cargo build -p berth-apiserver -p berth-controllers
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
./target/debug/berth-controllers --kubeconfig "$KUBECONFIG" >"$data_dir/controllers.log" 2>&1 &
echo $! >"$controllers_pid_file"
kubectl apply -f manifests/demo/
for _ in $(seq 1 100); do
  [ "$(kubectl get pods -l app=guestbook -o name 2>/dev/null | wc -l)" -ge 2 ] && break
  sleep 0.2
done
kubectl get all,configmaps -o wide
cat <<MSG

Berth is serving the Kubernetes API on http://127.0.0.1:$port (data in $data_dir).
  export KUBECONFIG=$data_dir/kubeconfig
  kubectl get all
Stop it with: scripts/demo.sh stop
MSG
