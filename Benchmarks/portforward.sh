#!/usr/bin/env bash
# kubectl port-forward throughput (issue 5: at least 200 MB/s on loopback), against the same
# download straight from the pod's address (the peer: no forwarding at all), same run.
#
#   Benchmarks/portforward.sh       (root; LABNODE=path/to/labnode to pick a build)
#
# Inside a network namespace this script creates. Writes Benchmarks/results/portforward.md.
set -euo pipefail
cd "$(dirname "$0")/.."
LABNODE=${LABNODE:-.build/release/labnode}
KUBECTL=${KUBECTL:-kubectl}
[ -x "$LABNODE" ] || { echo "bench: no labnode at $LABNODE; build it with: scripts/setup --bench" >&2; exit 2; }
source Benchmarks/lib.sh
bench_start lnbench-pf

in_ns "$LABNODE" up --data-dir "$WORK/data" --kubeconfig "$WORK/kubeconfig" >/dev/null
# busybox's httpd serves a 256 MiB file from the pod's /tmp.
K run web --image=busybox -- sh -c 'dd if=/dev/zero of=/tmp/big bs=1M count=256 2>/dev/null; httpd -f -p 8080 -h /tmp' >/dev/null
for _ in $(seq 200); do [ "$(K get pod web -o jsonpath='{.status.phase}')" = Running ] && break; sleep 0.1; done
IP=$(K get pod web -o jsonpath='{.status.podIP}')
for _ in $(seq 100); do in_ns curl -s -o /dev/null -r 0-0 "http://$IP:8080/big" && break; sleep 0.2; done

# MB/s of one download (curl's average speed), best of three.
speed() {
    local best=0 s
    for _ in 1 2 3; do
        s=$(in_ns curl -s -o /dev/null -w '%{speed_download}' "$1")
        best=$(python3 -c "print(max($best, $s / 1e6))")
    done
    printf '%.0f' "$best"
}
direct=$(speed "http://$IP:8080/big")

# One kubectl port-forward per transport: WebSocket-carried SPDY (1.31+), raw SPDY (1.30).
declare -A via
for k in "$KUBECTL" "$(dirname "$(readlink -f "$(command -v "$KUBECTL")")")/kubectl.1.30"; do
    [ -x "$(command -v "$k")" ] || continue
    # nsenter execs kubectl, so $! is kubectl itself.
    KUBECONFIG=$WORK/kubeconfig HOME=$WORK/home nsenter --net=/run/netns/$NS "$k" port-forward pod/web 18080:8080 >"$WORK/pf.log" 2>&1 &
    pid=$!; PIDS+=($pid)
    for _ in $(seq 100); do grep -q "Forwarding from 127.0.0.1" "$WORK/pf.log" && break; sleep 0.1; done
    grep -q "Forwarding from 127.0.0.1" "$WORK/pf.log" || { echo "bench: port-forward with $k did not start:" >&2; cat "$WORK/pf.log" >&2; exit 1; }
    via[$($k version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])')]=$(speed http://127.0.0.1:18080/big)
    kill $pid; sleep_until_gone $pid
done

mkdir -p Benchmarks/results
{
    echo "# port-forward benchmark ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
    echo
    echo "256 MiB over HTTP from busybox httpd in a pod; best of three downloads each."
    echo
    echo "| path | MB/s | ratio to direct | target |"
    echo "|---|---|---|---|"
    echo "| straight to the pod's address (peer, same run) | $direct | 1.00 | |"
    for v in "${!via[@]}"; do
        echo "| \`kubectl port-forward\` $v | ${via[$v]} | $(python3 -c "print('%.2f' % (${via[$v]} / $direct))") | >= 200 MB/s |"
    done
} > Benchmarks/results/portforward.md
cat Benchmarks/results/portforward.md
