"""Watch latency: measured from just before a write is sent until its event arrives on an open
watch, and from the write's acknowledgement until its event arrives (the first includes the
durable write itself, an fsync; the second is delivery alone, and can be below zero when the
event comes first). Prints "p50 / p99 (after the acknowledgement: p50 / p99)" in milliseconds."""
import http.client, json, ssl, sys, threading, time

token, ca, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
sent, seen, acked = {}, {}, {}
ready = threading.Event()

def watcher():
    c = http.client.HTTPSConnection("127.0.0.1", 6443, context=ctx)
    c.request("GET", "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=0&labelSelector=watch%3Dbench", headers=headers)
    r = c.getresponse()
    ready.set()
    while len(seen) < n:
        line = r.readline()
        if not line:
            break
        ev = json.loads(line)
        name = ev["object"]["metadata"]["name"]
        if ev["type"] == "ADDED" and name in sent:
            seen[name] = time.perf_counter()

t = threading.Thread(target=watcher, daemon=True)
t.start()
ready.wait(5)
time.sleep(0.2)
w = http.client.HTTPSConnection("127.0.0.1", 6443, context=ctx)
# The TLS handshake is the connection's cost, not the watch's: done before the first sample.
w.connect()
for i in range(n):
    name = "w%d" % i
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"watch": "bench"}}})
    sent[name] = time.perf_counter()
    w.request("POST", "/api/v1/namespaces/default/configmaps", body=body, headers=headers)
    w.getresponse().read()
    acked[name] = time.perf_counter()
    time.sleep(0.05)
t.join(5)
def p50_p99(values):
    v = sorted(values)
    return "%.2f / %.2f" % (v[len(v) // 2], v[min(len(v) - 1, int(len(v) * 0.99))])

if not seen:
    print("n/a")
else:
    print("%s (after the acknowledgement: %s)" % (p50_p99((seen[k] - sent[k]) * 1000 for k in seen),
                                                  p50_p99((seen[k] - acked[k]) * 1000 for k in seen)))
