#!/usr/bin/env bash
# kubectl exec end to end against kubectl get of the same pod (issue 5's figure), same run.
#
#   Benchmarks/exec.sh       (root; LABNODE=path/to/labnode to pick a build)
#
# Inside a network namespace this script creates. Writes Benchmarks/results/exec.md.
set -euo pipefail
cd "$(dirname "$0")/.."
LABNODE=${LABNODE:-.build/release/labnode}
KUBECTL=${KUBECTL:-kubectl}
[ -x "$LABNODE" ] || { echo "bench: no labnode at $LABNODE; build it with: scripts/setup --bench" >&2; exit 2; }
source Benchmarks/lib.sh
bench_start lnbench-x

in_ns "$LABNODE" up --data-dir "$WORK/data" --kubeconfig "$WORK/kubeconfig" >/dev/null
K run busybox --image=busybox -- sleep 3600 >/dev/null
for _ in $(seq 100); do [ "$(K get pod busybox -o jsonpath='{.status.phase}')" = Running ] && break; sleep 0.1; done
K exec busybox -- true   # warm the discovery cache

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }
execs=(); gets=()
for _ in $(seq 20); do
    execs+=($(time_ms K exec busybox -- true))
    gets+=($(time_ms K get pod busybox))
done
e=$(printf '%s\n' "${execs[@]}" | median)
g=$(printf '%s\n' "${gets[@]}" | median)
mkdir -p Benchmarks/results
{
    echo "# exec benchmark ($(date -u +%Y-%m-%dT%H:%M:%SZ), $($KUBECTL version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])'))"
    echo
    echo "| figure | median of 20 | target |"
    echo "|---|---|---|"
    echo "| \`kubectl exec busybox -- true\` | $e ms | |"
    echo "| \`kubectl get pod busybox\` (same run) | $g ms | |"
    echo "| ratio exec/get | $(python3 -c "print('%.2f' % ($e / $g))") | <= 1.3 |"
} > Benchmarks/results/exec.md
cat Benchmarks/results/exec.md
