"""Controller figures for issue 3, each with etcd measured the same way in the same run.

  python3 controllers.py TOKEN CA_FILE ETCD_URL

1. a 100-replica Deployment: time from its POST until 100 pod objects exist (seen on a watch);
   peer: 100 pod-sized puts into etcd, 16 at a time (the writes any control plane must do);
2. 1,000 Services of type NodePort created by 16 clients, each with a ClusterIP and a NodePort;
   peer: 1,000 service-sized etcd puts, 16 at a time;
3. a pod's Ready status written -> its Endpoints and EndpointSlice updated (p50/p99 of 40 flips);
   peer: an etcd put -> its watch event.
Prints one JSON object.
"""
import base64, http.client, json, ssl, sys, threading, time, urllib.parse
from concurrent.futures import ThreadPoolExecutor

token, ca, etcd = sys.argv[1], sys.argv[2], urllib.parse.urlparse(sys.argv[3])
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
H = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
local = threading.local()


def api(method, path, body=None, ctype="application/json"):
    if not hasattr(local, "c"):
        local.c = http.client.HTTPSConnection("127.0.0.1", 6443, context=ctx)
    h = dict(H, **{"Content-Type": ctype})
    local.c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
    r = local.c.getresponse()
    data = r.read()
    if r.status >= 300:
        raise RuntimeError("%s %s: %d %s" % (method, path, r.status, data[:200]))
    return json.loads(data)


def etcd_put(key, value):
    if not hasattr(local, "e"):
        local.e = http.client.HTTPConnection(etcd.hostname, etcd.port)
    b = json.dumps({"key": base64.b64encode(key.encode()).decode(), "value": base64.b64encode(value.encode()).decode()})
    local.e.request("POST", "/v3/kv/put", body=b, headers={"Content-Type": "application/json"})
    local.e.getresponse().read()


def watch(path, on_event, ready):
    c = http.client.HTTPSConnection("127.0.0.1", 6443, context=ctx)
    c.request("GET", path, headers=H)
    r = c.getresponse()
    ready.set()
    while True:
        line = r.readline()
        if not line:
            return
        if on_event(json.loads(line)):
            return


def timed_parallel(n, fn):
    t0 = time.perf_counter()
    with ThreadPoolExecutor(16) as ex:
        list(ex.map(fn, range(n)))
    return (time.perf_counter() - t0) * 1000


NS = "/api/v1/namespaces/bench"
api("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}})
time.sleep(0.3)
out = {}

# 1. 100-replica deployment -> 100 pods
pods_seen, done = set(), threading.Event()
def on_pod(ev):
    if ev["type"] == "ADDED":
        pods_seen.add(ev["object"]["metadata"]["name"])
    if len(pods_seen) >= 100:
        done.set()
        return True
ready = threading.Event()
threading.Thread(target=watch, args=(NS + "/pods?watch=true&labelSelector=app%3Dscale", on_pod, ready), daemon=True).start()
ready.wait(5)
time.sleep(0.2)
t0 = time.perf_counter()
api("POST", "/apis/apps/v1/namespaces/bench/deployments", {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "scale"},
    "spec": {"replicas": 100, "selector": {"matchLabels": {"app": "scale"}},
             "template": {"metadata": {"labels": {"app": "scale"}},
                          "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})
done.wait(30)
out["deployment_100_pods_ms"] = round((time.perf_counter() - t0) * 1000, 1) if done.is_set() else None
pod_json = json.dumps(api("GET", NS + "/pods?limit=1")["items"][0])
out["etcd_100_pod_puts_ms"] = round(timed_parallel(100, lambda i: etcd_put("/registry/pods/bench/p%d" % i, pod_json)), 1)

# 2. 1,000 NodePort services
def make_service(i):
    s = api("POST", NS + "/services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s%d" % i},
                                       "spec": {"type": "NodePort", "selector": {"app": "none"}, "ports": [{"port": 80}]}})
    assert s["spec"]["clusterIP"] and s["spec"]["ports"][0]["nodePort"]
out["services_1000_ms"] = round(timed_parallel(1000, make_service), 1)
items = api("GET", NS + "/services")["items"]
ips = {s["spec"]["clusterIP"] for s in items}
ports = {s["spec"]["ports"][0]["nodePort"] for s in items}
out["services_unique"] = len(items) == 1000 and len(ips) == 1000 and len(ports) == 1000
svc_json = json.dumps(items[0])
out["etcd_1000_service_puts_ms"] = round(timed_parallel(1000, lambda i: etcd_put("/registry/services/specs/bench/s%d" % i, svc_json)), 1)
for i in range(1000):
    api("DELETE", NS + "/services/s%d" % i)

# 3. endpoint latency: flip a pod's Ready condition, time until Endpoints and the slice show it
api("POST", NS + "/services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ep"},
                               "spec": {"selector": {"app": "ep"}, "ports": [{"port": 80}]}})
api("POST", NS + "/pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ep", "labels": {"app": "ep"}},
                           "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
state = {"want": None, "t0": 0.0, "ep": None, "slice": None}
lock = threading.Lock()
def endpoints_ready(obj):
    subsets = obj.get("subsets") or []
    return any(s.get("addresses") for s in subsets)
def slice_ready(obj):
    return any((e.get("conditions") or {}).get("ready") for e in obj.get("endpoints") or [])
def on(kind, test):
    def handle(ev):
        with lock:
            if state["want"] is not None and state[kind] is None and test(ev["object"]) == state["want"]:
                state[kind] = time.perf_counter()
        return False
    return handle
r1, r2 = threading.Event(), threading.Event()
threading.Thread(target=watch, args=(NS + "/endpoints?watch=true&fieldSelector=metadata.name%3Dep", on("ep", endpoints_ready), r1), daemon=True).start()
threading.Thread(target=watch, args=("/apis/discovery.k8s.io/v1/namespaces/bench/endpointslices?watch=true&labelSelector=kubernetes.io%2Fservice-name%3Dep",
                                     on("slice", slice_ready), r2), daemon=True).start()
r1.wait(5); r2.wait(5)
time.sleep(0.3)
lat_ep, lat_slice = [], []
for i in range(40):
    ready_now = i % 2 == 0
    status = {"status": {"phase": "Running", "podIP": "10.244.0.9", "podIPs": [{"ip": "10.244.0.9"}],
                         "conditions": [{"type": "Ready", "status": "True" if ready_now else "False"}]}}
    with lock:
        state.update(want=ready_now, ep=None, slice=None, t0=time.perf_counter())
    api("PATCH", NS + "/pods/ep/status", status, ctype="application/merge-patch+json")
    deadline = time.time() + 2
    while time.time() < deadline:
        with lock:
            if state["ep"] and state["slice"]:
                break
        time.sleep(0.001)
    with lock:
        if state["ep"]: lat_ep.append((state["ep"] - state["t0"]) * 1000)
        if state["slice"]: lat_slice.append((state["slice"] - state["t0"]) * 1000)
    time.sleep(0.05)

def pct(v, p):
    v = sorted(v)
    return round(v[min(len(v) - 1, int(len(v) * p))], 2) if v else None
out["endpoints_latency_ms_p50"], out["endpoints_latency_ms_p99"] = pct(lat_ep, 0.5), pct(lat_ep, 0.99)
out["slice_latency_ms_p50"], out["slice_latency_ms_p99"] = pct(lat_slice, 0.5), pct(lat_slice, 0.99)
out["flips_seen"] = "%d/%d endpoints, %d/%d slices" % (len(lat_ep), 40, len(lat_slice), 40)

# peer: etcd put -> watch event
import socket
lat_etcd = []
wc = http.client.HTTPConnection(etcd.hostname, etcd.port)
key = base64.b64encode(b"/registry/bench/watch").decode()
wc.request("POST", "/v3/watch", body=json.dumps({"create_request": {"key": key}}), headers={"Content-Type": "application/json"})
wr = wc.getresponse()
wr.readline()  # the "created" message
for i in range(40):
    t0 = time.perf_counter()
    etcd_put("/registry/bench/watch", "v%d" % i)
    while True:
        msg = json.loads(wr.readline())
        if msg.get("result", {}).get("events"):
            lat_etcd.append((time.perf_counter() - t0) * 1000)
            break
    time.sleep(0.02)
out["etcd_watch_latency_ms_p50"], out["etcd_watch_latency_ms_p99"] = pct(lat_etcd, 0.5), pct(lat_etcd, 0.99)
print(json.dumps(out))
