# Shared by the benchmark scripts: a private network namespace with no route out, a scratch
# directory, and a cleanup that stops what the script started and removes both.
#
#   source Benchmarks/lib.sh; bench_start NAME      (sets NS and WORK; LABNODE must be set)
#   PIDS+=(pid)                                     (processes to SIGKILL on exit)
#   bench_on_exit 'commands'                        (extra cleanup, run first)
#   row ID "figure" VALUE UNIT "peer" PEER_VALUE [SAMPLES]   (a result for `labnode bench`)
#   cluster_pids                                    (the daemon and every process under it)

PIDS=()
BENCH_EXTRA_CLEANUP=":"
in_ns() { nsenter --net=/run/netns/$NS "$@"; }
sleep_until_gone() { for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
K() { KUBECONFIG=$WORK/kubeconfig HOME=$WORK/home in_ns ${KUBECTL:-kubectl} "$@"; }
bench_on_exit() { BENCH_EXTRA_CLEANUP="$1"; }

bench_cleanup() {
    eval "$BENCH_EXTRA_CLEANUP"
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    # nsenter may have forked: stop our etcd by its (unique) data dir too.
    pkill -9 -f "etcd --data-dir $WORK/etcd" 2>/dev/null || true
    in_ns "$LABNODE" down --data-dir "$WORK/data" >/dev/null 2>&1 || true
    [ -d "$WORK/api-only" ] && { in_ns "$LABNODE" down --data-dir "$WORK/api-only" >/dev/null 2>&1 || true; }
    ip netns del $NS 2>/dev/null || true
    rm -rf "$WORK"
}

bench_start() {
    NS=$1-$$
    WORK=$(mktemp -d /tmp/labnode-bench.XXXXXX)
    trap bench_cleanup EXIT
    ip netns add $NS
    ip -n $NS link set lo up
    ip -n $NS link add eth0 type veth peer name eth0peer
    ip -n $NS addr add 172.31.251.2/24 dev eth0
    ip -n $NS link set eth0peer up && ip -n $NS link set eth0 up
}

# Starts etcd (the peer store) on the namespace's loopback and waits until it answers.
start_etcd() {
    in_ns etcd --data-dir "$WORK/etcd" --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
        --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
        --initial-cluster default=http://127.0.0.1:2380 >"$WORK/etcd.log" 2>&1 &
    PIDS+=($!)
    disown $!
    for _ in $(seq 50); do in_ns curl -s http://127.0.0.1:2379/health 2>/dev/null | grep -q true && break; sleep 0.1; done
}

# Appends one result to $BENCH_ROWS, the file `labnode bench` reads (nothing when unset):
#   row ID "figure" LABNODE_VALUE UNIT "peer in the same run" PEER_VALUE ['{"labnode": [...], "peer": [...]}']
# An empty value is a figure that was not measured; the ratio is then left out.
row() {
    [ -n "${BENCH_ROWS:-}" ] || return 0
    python3 - "$@" >> "$BENCH_ROWS" <<'PY'
import json, sys
a = sys.argv[1:] + [""] * 7
def num(s):
    try: return float(s)
    except ValueError: return None
r = {"id": a[0], "figure": a[1], "labnode": num(a[2]), "unit": a[3], "peer": a[4], "peer_value": num(a[5])}
if a[6]: r["samples"] = json.loads(a[6])
print(json.dumps(r))
PY
}

# The labnode daemon of $WORK/data and every process under it (pods, the standby init), one
# PID per line, the daemon first.
cluster_pids() {
    python3 - "$(cat "$WORK/data/labnode.pid")" <<'PY'
import os, sys
children = {}
for p in filter(str.isdigit, os.listdir("/proc")):
    try:
        stat = open("/proc/%s/stat" % p).read()
    except OSError:
        continue
    children.setdefault(int(stat[stat.rindex(")") + 2:].split()[1]), []).append(int(p))
todo = [int(sys.argv[1])]
while todo:
    p = todo.pop(0)
    print(p)
    todo += children.get(p, [])
PY
}
