#!/usr/bin/env bash
# Controller figures (issue 3) against etcd measured the same way in the same run.
#
#   Benchmarks/controllers.sh       (root; LABNODE=path/to/labnode to pick a build)
#
# Runs inside a network namespace this script creates, on its loopback only. Writes
# Benchmarks/results/controllers.json and controllers.md.
set -euo pipefail
cd "$(dirname "$0")/.."
LABNODE=${LABNODE:-.build/release/labnode}
KUBECTL=${KUBECTL:-kubectl}
missing=()
for t in etcd python3; do command -v $t >/dev/null || missing+=($t); done
[ -x "$LABNODE" ] || missing+=("labnode ($LABNODE; build it with: scripts/setup --bench)")
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench: missing ${missing[*]}; \`sudo scripts/setup --bench\` installs the peers" >&2
    exit 2
fi
source Benchmarks/lib.sh
bench_start lnbench-c

in_ns "$LABNODE" up --data-dir "$WORK/data" --kubeconfig "$WORK/kubeconfig" >/dev/null
K create serviceaccount bench >/dev/null
TOKEN=$(K create token bench --duration=2h)
start_etcd

json=$(in_ns python3 Benchmarks/controllers.py "$TOKEN" "$WORK/data/pki/ca.crt" http://127.0.0.1:2379)
mkdir -p Benchmarks/results
echo "$json" > Benchmarks/results/controllers.json
python3 - "$json" > Benchmarks/results/controllers.md <<'PY'
import json, sys
d = json.loads(sys.argv[1])
def r(a, b): return "%.2f" % (a / b) if a and b else "n/a"
print("# Controller benchmark (%s)\n" % __import__("time").strftime("%Y-%m-%dT%H:%M:%SZ", __import__("time").gmtime()))
print("| figure | labnode | etcd in the same run | ratio labnode/etcd | target |")
print("|---|---|---|---|---|")
print("| 100-replica Deployment -> 100 pod objects | %s ms | 100 puts %s ms | %s | < 1000 ms |" % (d["deployment_100_pods_ms"], d["etcd_100_pod_puts_ms"], r(d["deployment_100_pods_ms"], d["etcd_100_pod_puts_ms"])))
print("| 1,000 NodePort Services allocated (16 clients; all unique: %s) | %s ms | 1,000 puts %s ms | %s | < 2000 ms |" % (d["services_unique"], d["services_1000_ms"], d["etcd_1000_service_puts_ms"], r(d["services_1000_ms"], d["etcd_1000_service_puts_ms"])))
print("| pod Ready change -> Endpoints (p50 / p99) | %s / %s ms | put -> watch %s / %s ms | %s | < 50 ms |" % (d["endpoints_latency_ms_p50"], d["endpoints_latency_ms_p99"], d["etcd_watch_latency_ms_p50"], d["etcd_watch_latency_ms_p99"], r(d["endpoints_latency_ms_p50"], d["etcd_watch_latency_ms_p50"])))
print("| pod Ready change -> EndpointSlice (p50 / p99) | %s / %s ms | | %s | < 50 ms |" % (d["slice_latency_ms_p50"], d["slice_latency_ms_p99"], r(d["slice_latency_ms_p50"], d["etcd_watch_latency_ms_p50"])))
print("\n(%s)" % d["flips_seen"])
PY
cat Benchmarks/results/controllers.md
