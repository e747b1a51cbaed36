#!/usr/bin/env bash
# API server figures against peers measured in the same run (issue: the foundation).
#
#   Benchmarks/api.sh [--quick]      (root; LABNODE=path/to/labnode to pick a build)
#
# Everything runs inside a network namespace this script creates, on its loopback only.
# Peers: nginx serving the very JSON labnode returns, over TLS with labnode's certificate;
# etcd 3.4 through its JSON gateway, fsync on (as the store is; not with --quick). Prints a
# table of ratios and writes Benchmarks/results/api.json and api.md (and rows for `labnode bench`).
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=15; RUNS=3; QUICK=0
[ "${1:-}" = "--quick" ] && { DUR=3; RUNS=1; QUICK=1; }
LABNODE=${LABNODE:-.build/release/labnode}
KUBECTL=${KUBECTL:-kubectl}

missing=()
for t in wrk nginx python3 curl dig; do command -v $t >/dev/null || missing+=($t); done
[ $QUICK -eq 1 ] || command -v etcd >/dev/null || missing+=(etcd)
[ -x "$LABNODE" ] || missing+=("labnode ($LABNODE; build it with: scripts/setup --bench)")
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench: missing ${missing[*]}; \`sudo scripts/setup --bench\` installs the peers (wrk, nginx-light, etcd-server, dnsutils)" >&2
    exit 2
fi

source Benchmarks/lib.sh
bench_start lnbench
# nginx: SIGTERM to the master, which stops its workers (SIGKILL would orphan them).
bench_on_exit 'if [ -f "$WORK/nginx/nginx.pid" ]; then master=$(cat "$WORK/nginx/nginx.pid"); kill -TERM "$master" 2>/dev/null || true; sleep_until_gone "$master"; fi'

# --- start-up and idle memory -------------------------------------------------------------
# `labnode up` returns once the API, the node, the proxy and DNS are ready (DNS: kube-dns
# answers a query). The first start in a new data dir also builds the images.
t0=$(now_ms)
in_ns "$LABNODE" up --data-dir "$WORK/data" --kubeconfig "$WORK/kubeconfig" >/dev/null
t1=$(now_ms)
first_up_ms=$((t1 - t0))
in_ns "$LABNODE" down --data-dir "$WORK/data" >/dev/null
# The second start, and when its API first answers /readyz (polled every ~2 ms from the
# moment `labnode up` is typed: the daemon's exec and start-up included).
t0=$(now_ms)
in_ns "$LABNODE" up --data-dir "$WORK/data" --kubeconfig "$WORK/kubeconfig" >/dev/null &
UP=$!
api_ready_ms=""
while [ -z "$api_ready_ms" ] && kill -0 $UP 2>/dev/null; do
    if in_ns curl -sk --max-time 0.5 https://127.0.0.1:6443/readyz 2>/dev/null | grep -q '^ok'; then
        api_ready_ms=$(( $(now_ms) - t0 ))
    fi
    sleep 0.002
done
wait $UP
t1=$(now_ms)
second_up_ms=$((t1 - t0))
[ -n "$api_ready_ms" ] || api_ready_ms=$second_up_ms
# Ready means answering: ask kube-dns from the node, as a pod would.
dns_ip=$(K get service kube-dns -n kube-system -o jsonpath='{.spec.clusterIP}')
in_ns dig +short +time=2 +tries=1 @"$dns_ip" kubernetes.default.svc.cluster.local | grep -q . ||
    { echo "bench: labnode up returned but kube-dns ($dns_ip) does not answer" >&2; exit 1; }
# Idle memory once the periodic work has run (leases every 10 s, node status, the proxy's 30 s
# resync): start-up's memory is given back when `up` returns, and what idle work needs comes back.
IDLE=60; [ $QUICK -eq 1 ] && IDLE=5
# Beside it, idling the same time: a daemon with only the API (every other component disabled),
# which the target is about. It first serves a trainee's few commands, so that its figure is not
# that of a server nobody has talked to.
in_ns "$LABNODE" up --data-dir "$WORK/api-only" --kubeconfig "$WORK/kubeconfig-api" --api-port 6444 \
    --disable controllers,node-agent,kube-proxy,dns >/dev/null
KA() { KUBECONFIG=$WORK/kubeconfig-api HOME=$WORK/home in_ns ${KUBECTL:-kubectl} "$@"; }
KA create deployment web --image=nginx >/dev/null
KA create configmap settings --from-literal=a=1 >/dev/null
KA get all -A >/dev/null
KA get deployment web -o yaml >/dev/null
sleep $IDLE
API_ONLY=$(cat "$WORK/api-only/labnode.pid")
api_only_rss_kb=$(awk '/VmRSS/{print $2}' /proc/$API_ONLY/status)
api_only_anon_kb=$(awk '/RssAnon/{print $2}' /proc/$API_ONLY/status)
in_ns "$LABNODE" down --data-dir "$WORK/api-only" >/dev/null
DAEMON=$(cat "$WORK/data/labnode.pid")
rss_kb=$(awk '/VmRSS/{print $2}' /proc/$DAEMON/status)
anon_kb=$(awk '/RssAnon/{print $2}' /proc/$DAEMON/status)
# The whole cluster: the daemon and every process under it (the DNS pod, a standby init), as
# PSS, so the pages they share (one binary) count once.
cluster_pss_kb=$(for p in $(cluster_pids); do awk '/^Pss:/ {print $2}' /proc/$p/smaps_rollup 2>/dev/null; done |
    awk '{t += $1} END {print t + 0}')

# --- the object both servers serve ----------------------------------------------------------
K create serviceaccount bench >/dev/null
TOKEN=$(K create token bench --duration=2h)
value=$(head -c 600 /dev/zero | tr '\0' 'x')
K create configmap bench --from-literal=payload="$value" >/dev/null
URL=https://127.0.0.1:6443/api/v1/namespaces/default/configmaps/bench
in_ns curl -sk -H "Authorization: Bearer $TOKEN" "$URL" > "$WORK/bench.json"
bytes=$(wc -c < "$WORK/bench.json")

mkdir -p "$WORK/www" "$WORK/nginx"
cp "$WORK/bench.json" "$WORK/www/bench.json"
# nginx's workers run as www-data: they must be able to read the page.
chmod 755 "$WORK" "$WORK/www" && chmod 644 "$WORK/www/bench.json"
cat > "$WORK/nginx/nginx.conf" <<NGINX
worker_processes auto;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    default_type application/json;
    server {
        listen 127.0.0.1:8443 ssl;
        ssl_certificate $WORK/data/pki/apiserver.crt;
        ssl_certificate_key $WORK/data/pki/apiserver.key;
        root $WORK/www;
    }
}
NGINX
in_ns nginx -c "$WORK/nginx/nginx.conf"
sleep 0.3

[ $QUICK -eq 1 ] || start_etcd

# --- wrk scripts ----------------------------------------------------------------------------
cat > "$WORK/get.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $TOKEN"
LUA
cat > "$WORK/create.lua" <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $TOKEN"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"generateName":"b-"},"data":{"payload":"$value"}}'
LUA
cat > "$WORK/put.lua" <<'LUA'
local n = 0
local value = string.rep("x", 600)
request = function()
  n = n + 1
  local key = "/registry/configmaps/default/b-" .. math.random(1, 1e9) .. "-" .. n
  local body = '{"key":"' .. enc(key) .. '","value":"' .. enc(value) .. '"}'
  return wrk.format("POST", "/v3/kv/put", {["Content-Type"] = "application/json"}, body)
end
local b = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
function enc(data)
  return ((data:gsub('.', function(x)
    local r, c = '', x:byte()
    for i = 8, 1, -1 do r = r .. (c % 2 ^ i - c % 2 ^ (i - 1) > 0 and '1' or '0') end
    return r end) .. '0000'):gsub('%d%d?%d?%d?%d?%d?', function(x)
      if #x < 6 then return '' end
      local c = 0
      for i = 1, 6 do c = c + (x:sub(i, i) == '1' and 2 ^ (6 - i) or 0) end
      return b:sub(c + 1, c + 1) end) .. ({ '', '==', '=' })[#data % 3 + 1])
end
LUA

# wrk_run ARGS... -> "requests/s p50_ms", the median run of $RUNS
wrk_run() {
    local best=()
    for _ in $(seq $RUNS); do
        out=$(in_ns wrk --latency "$@" 2>&1)
        rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
        p50=$(echo "$out" | awk '$1=="50%"{v=$2; if (v ~ /us$/) {sub("us","",v); v=v/1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v=v*1000}; print v}')
        non2xx=$(echo "$out" | awk '/Non-2xx/{print $NF}')
        [ -n "$non2xx" ] && echo "bench: $non2xx non-2xx answers in: wrk $*" >&2
        best+=("$rps $p50")
    done
    printf '%s\n' "${best[@]}" | sort -n | awk -v n=$RUNS 'NR==int((n+1)/2)'
}

read get_rps get_p50 < <(wrk_run -t2 -c50 -d${DUR}s -s "$WORK/get.lua" "$URL")
read nginx_rps nginx_p50 < <(wrk_run -t2 -c50 -d${DUR}s https://127.0.0.1:8443/bench.json)
row up-first "\`labnode up\` to ready (API, node, proxy, DNS answering), first start: builds the images" "$first_up_ms" ms "" ""
row up-second "\`labnode up\` to ready, second start (images already built)" "$second_up_ms" ms "" ""
row up-second-api "second \`labnode up\` to API ready (/readyz answers)" "$api_ready_ms" ms "" ""
row idle-rss "idle RSS, the daemon, after ${IDLE} s idle" "$((rss_kb / 1024))" MB "" ""
row idle-rss-api-only "idle RSS, a daemon with only the API (--disable controllers,node-agent,kube-proxy,dns), after ${IDLE} s idle" "$((api_only_rss_kb / 1024))" MB "" ""
row idle-cluster "idle memory, whole cluster (PSS of the daemon and its pods)" "$((cluster_pss_kb / 1024))" MB "" ""
row api-get "GET one ${bytes}-byte object over TLS, wrk -t2 -c50" "$get_rps" req/s "nginx, the same JSON as a static file over TLS" "$nginx_rps"

create_rps=""; create_p50=""; etcd_rps=""; watch_ms="(not with --quick)"
if [ $QUICK -eq 0 ]; then
    read create_rps create_p50 < <(wrk_run -t2 -c16 -d${DUR}s -s "$WORK/create.lua" https://127.0.0.1:6443/api/v1/namespaces/default/configmaps)
    read etcd_rps etcd_p50 < <(wrk_run -t2 -c16 -d${DUR}s -s "$WORK/put.lua" http://127.0.0.1:2379)
    row api-create "create a ConfigMap, 16 connections, durable" "$create_rps" req/s "etcd 3.4 put through its JSON gateway" "$etcd_rps"
    # --- watch latency: time from sending a write (and from its acknowledgement) to its event ---
    watch_ms=$(in_ns python3 Benchmarks/watch_latency.py "$TOKEN" "$WORK/data/pki/ca.crt" 100)
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
mkdir -p Benchmarks/results
cat > Benchmarks/results/api.md <<MD
# API server benchmark ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, ${DUR}s x ${RUNS} runs, median)

| figure | labnode | peer in the same run | ratio labnode/peer | target |
|---|---|---|---|---|
| first \`labnode up\` to ready (API, node, proxy, DNS answering; builds images) | ${first_up_ms} ms | - | - | |
| second \`labnode up\` to ready | ${second_up_ms} ms | - | - | |
| second \`labnode up\` to API ready (/readyz answers, from the command) | ${api_ready_ms} ms | - | - | < 300 ms |
| idle RSS, a daemon with only the API (\`--disable controllers,node-agent,kube-proxy,dns\`), after ${IDLE} s idle | $((api_only_rss_kb / 1024)) MB (anonymous $((api_only_anon_kb / 1024)) MB) | - | - | < 30 MB |
| idle RSS, the whole daemon (API, controllers, node agent, proxy), after ${IDLE} s idle | $((rss_kb / 1024)) MB (anonymous $((anon_kb / 1024)) MB) | - | - | |
| idle memory, whole cluster (PSS: daemon, DNS pod, standby init), same moment | $((cluster_pss_kb / 1024)) MB | - | - | |
| GET one ${bytes}-byte object, TLS, wrk -t2 -c50 | ${get_rps} req/s, p50 ${get_p50} ms | nginx ${nginx_rps} req/s, p50 ${nginx_p50} ms | $(ratio "$get_rps" "$nginx_rps") | >= 0.3, p50 < 1 ms |
| create ConfigMap, 16 connections, durable | ${create_rps} req/s, p50 ${create_p50} ms | etcd JSON gateway put ${etcd_rps} req/s | $(ratio "$create_rps" "$etcd_rps") | >= 1.0 |
| watch event after a write (p50 / p99 of 100, from sending the durable write; in brackets from its acknowledgement) | ${watch_ms} ms | - | - | < 5 ms |
MD
cat > Benchmarks/results/api.json <<JSON
{"first_up_ms": $first_up_ms, "second_up_ms": $second_up_ms, "second_up_api_ready_ms": $api_ready_ms, "idle_rss_kb": $rss_kb, "idle_anon_kb": $anon_kb, "api_only_idle_rss_kb": $api_only_rss_kb, "api_only_idle_anon_kb": $api_only_anon_kb, "cluster_pss_kb": $cluster_pss_kb,
 "get_rps": ${get_rps:-0}, "get_p50_ms": ${get_p50:-0}, "nginx_tls_rps": ${nginx_rps:-0}, "nginx_p50_ms": ${nginx_p50:-0},
 "create_rps": ${create_rps:-0}, "etcd_put_rps": ${etcd_rps:-0}, "watch_ms_p50_p99": "$watch_ms"}
JSON
cat Benchmarks/results/api.md
