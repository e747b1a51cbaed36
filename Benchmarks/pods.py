"""Node agent figures for issue 4 (the crun peer is measured by pods.sh in the same run).

  python3 pods.py TOKEN CA_FILE DAEMON_PID DATA_DIR [quick]

1. 20 busybox pods one after another: from the POST of each until a watch reports it Running;
2. 100 busybox pods POSTed at once (16 clients): from the first POST until all are Running;
3. the daemon's RSS with no pods and with 21 sleeping pods, and every other labnode process
   (shims, standby inits) with its private memory.
With "quick", only 1. Prints one JSON object.
"""
import http.client, json, os, ssl, sys, threading, time
from concurrent.futures import ThreadPoolExecutor

token, ca, daemon_pid, data_dir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
quick = sys.argv[5:] == ["quick"]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
H = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
local = threading.local()
NS = "/api/v1/namespaces/default/pods"


def api(method, path, body=None):
    if not hasattr(local, "c"):
        local.c = http.client.HTTPSConnection("127.0.0.1", 6443, context=ctx)
    local.c.request(method, path, body=json.dumps(body) if body is not None else None, headers=H)
    r = local.c.getresponse()
    data = r.read()
    if r.status >= 300:
        raise RuntimeError("%s %s: %d %s" % (method, path, r.status, data[:200]))
    return json.loads(data)


def pod(name):
    # The shell stops at once on SIGTERM, so clean-up between phases is quick.
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"bench": "pods"}},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                                     "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]}]}}


class Watcher:
    """One watch on the namespace's pods; records when each pod is first seen Running."""

    def __init__(self):
        self.running = {}
        self.cond = threading.Condition()
        ready = threading.Event()
        rv = api("GET", NS)["metadata"]["resourceVersion"]
        threading.Thread(target=self.loop, args=(rv, ready), daemon=True).start()
        ready.wait()

    def loop(self, rv, ready):
        c = http.client.HTTPSConnection("127.0.0.1", 6443, context=ctx)
        c.request("GET", NS + "?watch=1&resourceVersion=" + rv, headers=H)
        r = c.getresponse()
        ready.set()
        while True:
            line = r.readline()
            if not line:
                return
            obj = json.loads(line)["object"]
            if obj.get("status", {}).get("phase") == "Running":
                t = time.perf_counter()
                with self.cond:
                    self.running.setdefault(obj["metadata"]["name"], t)
                    self.cond.notify_all()

    def wait(self, names, timeout):
        deadline = time.perf_counter() + timeout
        with self.cond:
            while not all(n in self.running for n in names):
                left = deadline - time.perf_counter()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True


def delete_all_and_wait():
    api("DELETE", NS + "?labelSelector=bench%3Dpods")
    for _ in range(600):
        if not api("GET", NS + "?labelSelector=bench%3Dpods")["items"]:
            return
        time.sleep(0.1)


def rss_kb(pid):
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def labnode_helpers():
    """labnode processes besides the daemon (a standby init; shims exit once a container runs)."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == daemon_pid:
            continue
        try:
            args = open("/proc/%s/cmdline" % p, "rb").read().split(b"\0")
            stat = open("/proc/%s/stat" % p).read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if len(args) > 2 and args[1] == b"init" and ppid == daemon_pid:
            out.append(int(p))
    return out


def private_kb(pid):
    """Memory only this process holds (Private_Clean + Private_Dirty): what one more shim costs."""
    total = 0
    try:
        for line in open("/proc/%d/smaps_rollup" % pid):
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1])
    except OSError:
        pass
    return total


def pct(values, q):
    s = sorted(values)
    return round(s[min(len(s) - 1, int(round(q * (len(s) - 1))))], 1)


w = Watcher()
# Warm-up: the first pod builds nothing (images are built at start) but fills caches.
api("POST", NS, pod("warm"))
w.wait(["warm"], 60)

sequential = []
for i in range(20):
    name = "seq-%d" % i
    t0 = time.perf_counter()
    api("POST", NS, pod(name))
    if not w.wait([name], 30):
        raise SystemExit("pod %s did not reach Running" % name)
    sequential.append((w.running[name] - t0) * 1000)

sequential_figures = {
    "create_to_running_ms_p50": pct(sequential, 0.5),
    "create_to_running_ms_p99": pct(sequential, 0.99),
    "create_to_running_ms_all": [round(v, 1) for v in sequential],
}
if quick:
    print(json.dumps(sequential_figures))
    sys.exit(0)

# 21 sleeping pods now (warm + 20): the idle overhead.
time.sleep(3)
rss_with_pods = rss_kb(daemon_pid)
shim_pids = labnode_helpers()
shim_rss = sum(rss_kb(p) for p in shim_pids)
shim_private = sum(private_kb(p) for p in shim_pids)
delete_all_and_wait()
time.sleep(3)
rss_without_pods = rss_kb(daemon_pid)

names = ["burst-%d" % i for i in range(100)]
t0 = time.perf_counter()
with ThreadPoolExecutor(16) as ex:
    list(ex.map(lambda n: api("POST", NS, pod(n)), names))
all_running = w.wait(names, 60)
burst_ms = (max(w.running[n] for n in names) - t0) * 1000 if all_running else None
delete_all_and_wait()

print(json.dumps(dict(sequential_figures, **{
    "burst_100_all_running_ms": round(burst_ms) if burst_ms else None,
    "daemon_rss_kb_no_pods": rss_without_pods,
    "daemon_rss_kb_21_pods": rss_with_pods,
    "helpers": len(shim_pids),
    "helper_rss_kb_total": shim_rss,
    "helper_private_kb_total": shim_private,
})))
