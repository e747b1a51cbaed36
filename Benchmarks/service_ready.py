"""A new Service's first connection (issue 6: within 100 ms of its creation), with its peer.

  python3 service_ready.py KUBECONFIG COUNT SELECTOR_KEY=VALUE     (inside the bench node's netns)

COUNT times: POST a new ClusterIP Service (port 80 -> 8080) selecting the ready backend pod,
straight to the API server with the kubeconfig's client certificate (kubectl's own start-up
would dominate the figure); t0 is taken just before the POST. Then, from this network
namespace (the node's), TCP connects to clusterIP:80 in a tight loop (each attempt with a
50 ms timeout, the next ~1 ms after a failure) until one connects and `GET /` answers "ok":
t1 - t0 is labnode's figure.

The peer, from the same POST: a watch on the Service's EndpointSlices, opened before the POST,
reports a slice with a ready endpoint; that is the earliest moment any proxy could act.

Each service is deleted afterwards. Prints one JSON object (times in ms, and how the failed
attempts ended, which tells where the wait was: refused = a REJECT rule or no listener yet,
timeout = the SYN went nowhere).
"""
import base64, errno, http.client, json, os, selectors, socket, ssl, sys, tempfile, threading, time
from urllib.parse import urlparse

kubeconfig, count, selector = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sel_key, sel_value = selector.split("=", 1)
CONNECT_TIMEOUT = 0.05
RETRY_AFTER = 0.001
GIVE_UP = 10.0


def kubeconfig_fields(path):
    """The first server, CA and client certificate and key of a kubeconfig labnode wrote."""
    wanted = ("server", "certificate-authority-data", "client-certificate-data", "client-key-data")
    found = {}
    for line in open(path):
        key, _, value = line.strip().lstrip("- ").partition(":")
        if key in wanted and key not in found:
            found[key] = value.strip().strip('"')
    missing = [k for k in wanted if k not in found]
    if missing:
        sys.exit("service_ready.py: %s has no %s" % (path, ", ".join(missing)))
    return found


kc = kubeconfig_fields(kubeconfig)
url = urlparse(kc["server"])
tmp = tempfile.mkdtemp(prefix="service-ready.")
files = {}
for name in ("certificate-authority-data", "client-certificate-data", "client-key-data"):
    files[name] = os.path.join(tmp, name)
    with open(files[name], "wb") as f:
        f.write(base64.b64decode(kc[name]))
ctx = ssl.create_default_context(cafile=files["certificate-authority-data"])
ctx.check_hostname = False
ctx.load_cert_chain(files["client-certificate-data"], files["client-key-data"])
for path in files.values():
    os.remove(path)
os.rmdir(tmp)
H = {"Content-Type": "application/json", "Accept": "application/json"}
SVC = "/api/v1/namespaces/default/services"
SLICES = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"


def connect():
    c = http.client.HTTPSConnection(url.hostname, url.port or 443, context=ctx)
    c.connect()
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return c


api_conn = connect()


def api(method, path, body=None):
    api_conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=H)
    r = api_conn.getresponse()
    data = r.read()
    if r.status >= 300:
        raise RuntimeError("%s %s: %d %s" % (method, path, r.status, data[:300]))
    return json.loads(data)


class SliceWatch:
    """A watch on one Service's EndpointSlices; `ready_at` is when one with a ready endpoint came."""

    def __init__(self, name):
        self.ready_at = None
        self.event = threading.Event()
        self.deleted = threading.Event()
        q = "labelSelector=kubernetes.io%2Fservice-name%3D" + name
        rv = api("GET", SLICES + "?" + q)["metadata"]["resourceVersion"]
        self.conn = connect()
        self.conn.request("GET", SLICES + "?watch=1&allowWatchBookmarks=false&resourceVersion=%s&%s" % (rv, q), headers=H)
        self.resp = self.conn.getresponse()
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    return
                t = time.perf_counter()
                ev = json.loads(line)
                if ev.get("type") == "DELETED":
                    self.deleted.set()
                if ev.get("type") not in ("ADDED", "MODIFIED"):
                    continue
                for ep in ev["object"].get("endpoints") or []:
                    # An absent ready condition means ready (discovery.k8s.io/v1).
                    if (ep.get("conditions") or {}).get("ready", True) and self.ready_at is None:
                        self.ready_at = t
                        self.event.set()
        except Exception:
            return

    def close(self):
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except Exception:
            pass
        self.conn.close()


def get_ok(s):
    """GET / on a connected socket; True when the answer is "ok"."""
    s.setblocking(True)
    s.settimeout(1.0)
    s.sendall(b"GET /index.html HTTP/1.0\r\nHost: bench\r\n\r\n")
    reply = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
    return reply.startswith(b"HTTP/1.") and reply.rstrip().endswith(b"ok")


def first_answer(ip, deadline):
    """Connect to ip:80 until one attempt connects and GET / says ok; returns (time, failures).

    A new non-blocking attempt starts ~1 ms after the previous one failed or, when the previous
    one is still pending (its SYN went nowhere: no rule or listener yet), ~1 ms after it started;
    pending attempts are given up after 50 ms. So a dropped SYN costs no timeout, and the figure's
    resolution is ~1 ms.
    """
    failures = {}
    sel = selectors.DefaultSelector()
    pending = {}  # socket -> start time
    next_start = time.perf_counter()

    def fail(s, kind):
        failures[kind] = failures.get(kind, 0) + 1
        sel.unregister(s)
        del pending[s]
        s.close()

    try:
        while True:
            now = time.perf_counter()
            if now > deadline:
                raise RuntimeError("no answer from %s:80 within %.0f s (%s)" % (ip, GIVE_UP, failures))
            if now >= next_start:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                err = s.connect_ex((ip, 80))
                pending[s] = now
                sel.register(s, selectors.EVENT_WRITE)
                if err not in (0, errno.EINPROGRESS):
                    fail(s, "refused" if err == errno.ECONNREFUSED else "errno %d" % err)
                next_start = now + RETRY_AFTER
            for key, _ in sel.select(timeout=max(0.0, next_start - time.perf_counter())):
                s = key.fileobj
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err == 0:
                    try:
                        ok = get_ok(s)
                    except OSError as e:
                        ok = False
                    if ok:
                        return time.perf_counter(), failures
                    fail(s, "bad reply")
                else:
                    fail(s, "refused" if err == errno.ECONNREFUSED else "errno %d" % err)
            now = time.perf_counter()
            for s, started in list(pending.items()):
                if now - started > CONNECT_TIMEOUT:
                    fail(s, "timeout")
    finally:
        for s in list(pending):
            # Still waiting when another attempt got through: a SYN that went nowhere.
            failures["unanswered"] = failures.get("unanswered", 0) + 1
            s.close()
        sel.close()


def service(name):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": {"bench": "service-ready"}},
            "spec": {"selector": {sel_key: sel_value}, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}}


labnode, peer, attempts = [], [], {}
prefix = "sr%x" % (os.getpid() & 0xffff)
for i in range(count):
    name = "%s-%d" % (prefix, i)
    watch = SliceWatch(name)
    t0 = time.perf_counter()
    created = api("POST", SVC, service(name))
    ip = created["spec"]["clusterIP"]
    t1, failures = first_answer(ip, t0 + GIVE_UP)
    watch.event.wait(GIVE_UP)
    if watch.ready_at is None:
        raise RuntimeError("no ready EndpointSlice for %s on the watch within %.0f s" % (name, GIVE_UP))
    labnode.append(round((t1 - t0) * 1000, 1))
    peer.append(round((watch.ready_at - t0) * 1000, 1))
    for k, v in failures.items():
        attempts[k] = attempts.get(k, 0) + v
    api("DELETE", SVC + "/" + name)
    # The slice goes too (garbage collection); then the proxy gets time to apply both, so the
    # next sample does not find a sync of this one's removal under way.
    watch.deleted.wait(GIVE_UP)
    watch.close()
    time.sleep(0.3)


def pct(v, p):
    s = sorted(v)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


print(json.dumps({
    "samples": count,
    "first_connection_ms_p50": pct(labnode, 50), "first_connection_ms_p90": pct(labnode, 90),
    "slice_ready_ms_p50": pct(peer, 50), "slice_ready_ms_p90": pct(peer, 90),
    "first_connection_ms_all": labnode, "slice_ready_ms_all": peer,
    "failed_attempts": attempts,
}))
