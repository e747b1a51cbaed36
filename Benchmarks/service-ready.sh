#!/usr/bin/env bash
# A new Service's first connection (issue 6: within 100 ms of its creation), in each proxy mode,
# with the earliest moment any proxy could act measured from the same creation in the same run.
#
#   Benchmarks/service-ready.sh [--quick]     (root; LABNODE=path/to/labnode to pick a build)
#
# For each of --proxy-mode iptables, nftables (when nft is installed) and userspace: `labnode
# up` (without the DNS add-on), one ready busybox httpd pod, then 20 times (5 with --quick)
# Benchmarks/service_ready.py POSTs a new Service selecting it and connects to its cluster IP
# from the node until `GET /` answers: POST -> first answer is labnode's figure. The peer is
# POST -> the Service's EndpointSlice with a ready endpoint on a watch (the input every proxy
# waits for). `labnode down` between modes.
#
# Everything happens inside a network namespace this script creates (no route out); the
# machine's own netfilter tables are never touched. Writes Benchmarks/results/service-ready.md
# (and .json).
set -euo pipefail
cd "$(dirname "$0")/.."
LABNODE=${LABNODE:-.build/release/labnode}
KUBECTL=${KUBECTL:-kubectl}
COUNT=20
[ "${1:-}" = "--quick" ] && COUNT=5
MODES=${SERVICE_READY_MODES:-iptables nftables userspace}
missing=()
for t in python3 "$KUBECTL"; do command -v "$t" >/dev/null || missing+=("$t"); done
[ -x "$LABNODE" ] || missing+=("labnode ($LABNODE; build it with: scripts/setup --bench)")
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench: missing ${missing[*]}; \`sudo scripts/setup --bench\` installs the peers" >&2
    exit 2
fi
if ! command -v nft >/dev/null; then
    echo "bench: nft is missing (apt-get install nftables): the nftables mode is left out" >&2
    MODES=$(echo "$MODES" | sed 's/nftables//')
fi
source Benchmarks/lib.sh
bench_start lnbench-svc
say() { echo "$(date +%T.%3N) $*"; }

results=()
for mode in $MODES; do
    say "proxy mode $mode: labnode up"
    in_ns "$LABNODE" up --proxy-mode "$mode" --disable dns --data-dir "$WORK/data" --kubeconfig "$WORK/kubeconfig" >/dev/null
    say "the backend pod"
    # httpd as PID 1 would ignore SIGTERM and hold the deletion for the 30 s grace period.
    K create deployment web --image=busybox -- sh -c "echo ok > /tmp/index.html; trap 'exit 0' TERM; httpd -f -p 8080 -h /tmp & wait" >/dev/null
    K rollout status deployment/web --timeout=120s >/dev/null
    K wait pod -l app=web --for=condition=Ready --timeout=60s >/dev/null
    say "$COUNT new Services"
    json=$(in_ns python3 Benchmarks/service_ready.py "$WORK/kubeconfig" "$COUNT" app=web)
    echo "$json"
    results+=("$mode=$json")
    say "clean up"
    K delete deployment web --wait=true >/dev/null
    K wait pod -l app=web --for=delete --timeout=60s >/dev/null 2>&1 || true
    say "labnode down"
    in_ns "$LABNODE" down --data-dir "$WORK/data" >/dev/null
    say "proxy mode $mode done"
done

mkdir -p Benchmarks/results
python3 - "$COUNT" "${results[@]}" > Benchmarks/results/service-ready.json <<'PY'
import json, sys
print(json.dumps({"samples": int(sys.argv[1]), "modes": {a.split("=", 1)[0]: json.loads(a.split("=", 1)[1]) for a in sys.argv[2:]}}, indent=1))
PY
python3 - Benchmarks/results/service-ready.json "$(uname -r)" > Benchmarks/results/service-ready.md <<'PY'
import json, sys, time
d = json.load(open(sys.argv[1]))
def r(a, b): return "%.2f" % (a / b) if a and b else "n/a"
print("# New Service -> first connection benchmark (%s, kernel %s)\n" % (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), sys.argv[2]))
print("| proxy mode | POST Service -> first `GET /` through its cluster IP, p50 / p90 of %d | peer: POST -> ready EndpointSlice on a watch, p50 / p90 | ratio labnode/peer (p50 / p90) | target |" % d["samples"])
print("|---|---|---|---|---|")
for mode, m in d["modes"].items():
    print("| %s | %s / %s ms | %s / %s ms | %s / %s | < 100 ms |" % (
        mode, m["first_connection_ms_p50"], m["first_connection_ms_p90"], m["slice_ready_ms_p50"], m["slice_ready_ms_p90"],
        r(m["first_connection_ms_p50"], m["slice_ready_ms_p50"]), r(m["first_connection_ms_p90"], m["slice_ready_ms_p90"])))
print("\nOne ready busybox httpd pod; each sample POSTs a new Service selecting it (Python, the kubeconfig's")
print("client certificate) and connects to clusterIP:80 from the node every ~1 ms (50 ms connect timeout)")
print("until `GET /` answers. The peer is the same POST until a watch opened before it shows the Service's")
print("EndpointSlice with a ready endpoint: the earliest moment any proxy could program the Service.\n")
print("Failed attempts before the first answer, all samples (refused: a REJECT rule or no listener yet;")
print("timeout or unanswered: the SYN went nowhere, given up after 50 ms or still pending at the first answer):\n")
for mode, m in d["modes"].items():
    print("- %s: %s" % (mode, ", ".join("%s %d" % kv for kv in sorted(m["failed_attempts"].items())) or "none"))
print("\nAll samples (ms):\n")
for mode, m in d["modes"].items():
    print("- %s: labnode %s; peer %s" % (mode, m["first_connection_ms_all"], m["slice_ready_ms_all"]))
PY
cat Benchmarks/results/service-ready.md

peer="POST -> the Service's EndpointSlice with a ready endpoint on a watch (earliest any proxy could act)"
for mode in $MODES; do
    vals=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["modes"][sys.argv[2]]; print(m["first_connection_ms_p50"], m["slice_ready_ms_p50"], m["first_connection_ms_p90"], m["slice_ready_ms_p90"], json.dumps({"labnode": m["first_connection_ms_all"], "peer": m["slice_ready_ms_all"]}, separators=(",", ":")))' Benchmarks/results/service-ready.json "$mode")
    read -r ln50 peer50 ln90 peer90 samples <<<"$vals"
    row "service-first-connection-$mode" "new Service -> first connection through its cluster IP ($mode), p50 of $COUNT" "$ln50" ms "$peer" "$peer50" "$samples"
    row "service-first-connection-$mode-p90" "new Service -> first connection ($mode), p90 of $COUNT" "$ln90" ms "$peer" "$peer90"
done
