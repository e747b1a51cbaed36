#!/usr/bin/env bash
# The iptables service proxy at 10,000 services x 3 endpoints (issue 6): a full sync through
# labnode's proxier against iptables-restore loading the same rules from a file (the peer),
# and one endpoint change (a partial sync), same run.
#
#   Benchmarks/proxy.sh       (root; LABNODE=path/to/labnode to pick a build; SERVICES=N)
#
# Inside a network namespace this script creates. Writes Benchmarks/results/proxy.md.
set -euo pipefail
cd "$(dirname "$0")/.."
LABNODE=${LABNODE:-.build/release/labnode}
SERVICES=${SERVICES:-10000}
[ -x "$LABNODE" ] || { echo "bench: no labnode at $LABNODE; build it with: swift build -c release" >&2; exit 2; }
source Benchmarks/lib.sh
bench_start lnbench-proxy

result=$(in_ns "$LABNODE" bench proxy-sync --services "$SERVICES" --endpoints 3 --rules-file "$WORK/full.rules")
full=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['full_sync_ms'])" "$result")
one=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['one_change_ms'])" "$result")

# The peer: the kernel tool loading the very same rules from a file, into the tables the
# benchmark just emptied.
t0=$(date +%s%N)
in_ns iptables-restore -w 5 --noflush < "$WORK/full.rules"
t1=$(date +%s%N)
peer=$(( (t1 - t0) / 1000000 ))
rules=$(grep -c '^-A' "$WORK/full.rules")

mkdir -p Benchmarks/results
{
    echo "# service proxy benchmark ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(iptables --version))"
    echo
    echo "$SERVICES services x 3 endpoints: $rules rules."
    echo
    echo "| figure | labnode | peer in the same run | ratio | target |"
    echo "|---|---|---|---|---|"
    echo "| full sync (render + iptables-restore --noflush) | $full ms | iptables-restore of the same file: $peer ms | $(python3 -c "print('%.2f' % ($full / $peer))") | <= 1.2 |"
    echo "| one endpoint change (partial sync) | $one ms | - | - | < 80 ms |"
} > Benchmarks/results/proxy.md
cat Benchmarks/results/proxy.md
