"""Watch latency: how long after a write is acknowledged... measured from just before the write
is sent until its event arrives on an open watch. Prints "p50 / p99" in milliseconds."""
import http.client, json, ssl, sys, threading, time

token, ca, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
sent, seen = {}, {}
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
for i in range(n):
    name = "w%d" % i
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"watch": "bench"}}})
    sent[name] = time.perf_counter()
    w.request("POST", "/api/v1/namespaces/default/configmaps", body=body, headers=headers)
    w.getresponse().read()
    time.sleep(0.05)
t.join(5)
lat = sorted((seen[k] - sent[k]) * 1000 for k in seen)
if not lat:
    print("n/a")
else:
    print("%.2f / %.2f" % (lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]))
