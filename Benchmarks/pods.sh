#!/usr/bin/env bash
# Node agent figures (issue 4), with crun measured the same way in the same run.
#
#   Benchmarks/pods.sh [--quick]     (root; LABNODE=path/to/labnode to pick a build)
#
# --quick keeps the 20 sequential pods and crun, and leaves out the 100-pod burst and memory.
#
# Everything happens inside network namespaces this script creates (the bench node and one
# per crun pod), never in the machine's own. Writes Benchmarks/results/pods.json and pods.md.
#
# The peer row is the floor from ../shared/reference/peer-measurements.md: a network-ready
# pod with crun, i.e. a new netns, a veth created with its peer inside it and put on a bridge,
# addresses and links up (with `ip`, as a CNI plugin would), then `crun run` of /bin/true in
# the same busybox rootfs labnode runs. crun 1.8 refuses hybrid cgroup hosts, so it runs in a
# private mount namespace without the cgroup2 mount, as measured there.
set -euo pipefail
cd "$(dirname "$0")/.."
LABNODE=${LABNODE:-.build/release/labnode}
KUBECTL=${KUBECTL:-kubectl}
QUICK=""
[ "${1:-}" = "--quick" ] && QUICK=quick
missing=()
for t in crun python3; do command -v $t >/dev/null || missing+=($t); done
[ -x "$LABNODE" ] || missing+=("labnode ($LABNODE; build it with: scripts/setup --bench)")
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench: missing ${missing[*]}; \`sudo scripts/setup --bench\` installs the peers" >&2
    exit 2
fi
source Benchmarks/lib.sh
bench_start lnbench-p
PEER_NETNS=()
bench_on_exit 'for n in "${PEER_NETNS[@]}"; do ip netns del $n 2>/dev/null || true; done'

# Without the DNS add-on: busybox pods do not need it, and it would cost an image build.
in_ns "$LABNODE" up --data-dir "$WORK/data" --kubeconfig "$WORK/kubeconfig" --disable dns >/dev/null
PID=$(cat "$WORK/data/labnode.pid")
K create serviceaccount bench >/dev/null
K create clusterrolebinding bench --clusterrole=cluster-admin --serviceaccount=default:bench >/dev/null 2>&1 || true
TOKEN=$(K create token bench --duration=2h)
json=$(in_ns python3 Benchmarks/pods.py "$TOKEN" "$WORK/data/pki/ca.crt" "$PID" "$WORK/data" $QUICK)

# --- the crun peer, on the same busybox layer labnode unpacked ---
ROOTFS=""
for d in "$WORK"/data/images/unpacked/*; do [ -x "$d/bin/busybox" ] && ROOTFS=$d; done
[ -n "$ROOTFS" ] || { echo "bench: no unpacked busybox layer in $WORK/data/images" >&2; exit 1; }
BUNDLE=$WORK/crun-bundle
mkdir -p "$BUNDLE"
(cd "$BUNDLE" && crun spec)
python3 - "$BUNDLE/config.json" "$ROOTFS" <<'PY'
import json, sys
path, rootfs = sys.argv[1], sys.argv[2]
c = json.load(open(path))
c["root"] = {"path": rootfs, "readonly": True}
c["process"]["args"] = ["/bin/true"]
c["process"]["terminal"] = False
c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"] + [{"type": "network", "path": "NETNS"}]
json.dump(c, open(path, "w"))
PY
in_ns ip link add pbr0 type bridge
in_ns ip addr add 10.245.0.1/24 dev pbr0
in_ns ip link set pbr0 up
crun_ms=()
for i in $(seq 1 20); do
    n=lnbp-$$-$i
    PEER_NETNS+=($n)
    sed "s#\"NETNS\"#\"/run/netns/$n\"#" "$BUNDLE/config.json" > "$BUNDLE/config.$i.json"
    t0=$(date +%s%N)
    ip netns add $n
    in_ns ip link add pv$i type veth peer name eth0 netns $n
    in_ns ip link set pv$i master pbr0 up
    ip -n $n addr add 10.245.0.$((i + 1))/24 dev eth0
    ip -n $n link set eth0 up
    ip -n $n link set lo up
    ip -n $n route add default via 10.245.0.1
    unshare -m sh -c "umount /sys/fs/cgroup/unified 2>/dev/null; crun run -b $BUNDLE -f $BUNDLE/config.$i.json lnbp-$$-$i"
    t1=$(date +%s%N)
    crun_ms+=($(( (t1 - t0) / 1000 )))
done
crun_json=$(python3 -c 'import json,sys; v=sorted(int(x)/1000 for x in sys.argv[1:]); print(json.dumps({"crun_pod_ms_p50": round(v[len(v)//2],1), "crun_pod_ms_p99": round(v[-1],1), "crun_pod_ms_all": [round(int(x)/1000,1) for x in sys.argv[1:]]}))' "${crun_ms[@]}")

mkdir -p Benchmarks/results
python3 - "$json" "$crun_json" > Benchmarks/results/pods.json <<'PY'
import json, sys
d = json.loads(sys.argv[1]); d.update(json.loads(sys.argv[2])); print(json.dumps(d, indent=1))
PY
python3 - Benchmarks/results/pods.json > Benchmarks/results/pods.md <<'PY'
import json, sys, time
d = json.load(open(sys.argv[1]))
def r(a, b): return "%.2f" % (a / b) if a and b else "n/a"
print("# Node agent benchmark (%s)\n" % time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
print("| figure | labnode | crun in the same run | ratio labnode/crun | target |")
print("|---|---|---|---|---|")
print("| busybox pod: create -> Running on a watch, p50 (20 sequential) | %s ms | network-ready pod running /bin/true %s ms | %s | < 50 ms, <= 2x crun |" % (d["create_to_running_ms_p50"], d["crun_pod_ms_p50"], r(d["create_to_running_ms_p50"], d["crun_pod_ms_p50"])))
print("| same, p99 | %s ms | %s ms (max) | %s | < 150 ms |" % (d["create_to_running_ms_p99"], d["crun_pod_ms_p99"], r(d["create_to_running_ms_p99"], d["crun_pod_ms_p99"])))
if "burst_100_all_running_ms" in d:
    print("| 100 pods created at once -> all Running | %s ms | | | < 5000 ms |" % d["burst_100_all_running_ms"])
    delta = (d["daemon_rss_kb_21_pods"] - d["daemon_rss_kb_no_pods"]) / 1024
    print("| daemon RSS with 21 sleeping pods minus without | %.1f MB (%d -> %d KiB) | | | < 10 MB |" % (delta, d["daemon_rss_kb_no_pods"], d["daemon_rss_kb_21_pods"]))
    print("| other labnode processes (standby init; no shim per container): RSS / private | %.1f / %.1f MB for %d | | | |" % (d["helper_rss_kb_total"] / 1024, d["helper_private_kb_total"] / 1024, d["helpers"]))
print("\nlabnode's figure includes the API request, scheduling, the status write and the watch event;")
print("crun's includes none of those (it is the runtime floor a kubelet would add to).")
PY
cat Benchmarks/results/pods.md

p50=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["create_to_running_ms_p50"], d["crun_pod_ms_p50"], d["create_to_running_ms_p99"], d["crun_pod_ms_p99"])' Benchmarks/results/pods.json)
read -r ln50 crun50 ln99 crun99 <<<"$p50"
samples=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps({"labnode": d["create_to_running_ms_all"], "peer": d["crun_pod_ms_all"]}))' Benchmarks/results/pods.json)
crun_peer="crun: new netns, veth on a bridge, \`crun run\` of /bin/true in the same rootfs"
row pod-start-p50 "pod create -> Running on a watch, p50 of 20" "$ln50" ms "$crun_peer" "$crun50" "$samples"
row pod-start-p99 "pod create -> Running, p99 of 20 (the slowest)" "$ln99" ms "$crun_peer" "$crun99"
