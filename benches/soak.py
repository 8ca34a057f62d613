"""Soak the daemon (not CI): mixed traffic for SOAK_SECS (default 600) through two proxies, a
chatty supervised process and a dozen MCP clients, sampling the daemon's RSS, open fds and
threads every SOAK_SAMPLE_SECS (default 10); prints the samples and the slope of each after the
warm-up (the first fifth), per minute. Goal: flat.

Usage: python3 benches/soak.py <agnt binary>
Runs a private daemon (its own socket and state dir in a temp dir) and stops it at the end.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

AGNT = sys.argv[1]
SECS = int(os.environ.get("SOAK_SECS", "600"))
SAMPLE = int(os.environ.get("SOAK_SAMPLE_SECS", "10"))
CLIENTS = 12

root = tempfile.mkdtemp(prefix="agnt-soak", dir="/tmp")
project = os.path.join(root, "proj")
os.makedirs(project)
env = dict(os.environ, AGNT_SOCKET=os.path.join(root, "run", "agnt.sock"), AGNT_STATE_DIR=os.path.join(root, "state"))
env.pop("AGNT_HTTP_PORT", None)
stop = threading.Event()


class Rpc:
    def __init__(self):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(env["AGNT_SOCKET"])
        self.r = self.s.makefile("rb")
        self.n = 0
        self.call_raw("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                     "clientInfo": {"name": "soak", "version": "0"}, "_meta": {"dev.agnt/project": project}})

    def call_raw(self, method, params):
        self.n += 1
        self.s.sendall((json.dumps({"jsonrpc": "2.0", "id": self.n, "method": method, "params": params}) + "\n").encode())
        while True:
            v = json.loads(self.r.readline())
            if v.get("id") == self.n:
                return v

    def tool(self, name, args):
        return self.call_raw("tools/call", {"name": name, "arguments": args})["result"].get("structuredContent", {})


def sample(pid):
    status = open(f"/proc/{pid}/status").read()
    field = lambda k: int(next(l.split()[1] for l in status.splitlines() if l.startswith(k + ":")))
    return {"t": round(time.time() - t0), "rss_kb": field("VmRSS"), "threads": field("Threads"),
            "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def slope(points, key):
    pts = points[len(points) // 5:]
    if len(pts) < 2:
        return 0.0
    xs = [p["t"] / 60 for p in pts]
    ys = [p[key] for p in pts]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs) or 1
    return round(sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den, 2)


def mcp_client(i, counts):
    c = Rpc()
    while not stop.is_set():
        c.tool("proc", {"action": "status", "process_id": "chatty"})
        c.tool("proc", {"action": "output", "process_id": "chatty", "tail": 20})
        c.tool("proxylog", {"proxy_id": "p%d" % (i % 2), "limit": 5})
        c.call_raw("tools/list", {})
        counts[i] += 4
        time.sleep(0.05)


def http_client(url, counts, i):
    while not stop.is_set():
        try:
            urllib.request.urlopen(url + "/", timeout=5).read()
            counts[i] += 1
        except Exception:
            pass
        time.sleep(0.01)


daemon = subprocess.Popen([AGNT, "daemon", "start", "--foreground"], env=env, cwd=project,
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    deadline = time.time() + 10
    while not os.path.exists(env["AGNT_SOCKET"]) and time.time() < deadline:
        time.sleep(0.05)
    c = Rpc()
    c.tool("run", {"raw": True, "id": "chatty", "command": "sh",
                   "args": ["-c", "i=0; while :; do echo chatty line $i; i=$((i+1)); sleep 0.001; done"]})
    urls = []
    for k in range(2):
        c.tool("run", {"raw": True, "id": f"up{k}", "command": "python3",
                       "args": ["-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", project]})
        port = None
        for _ in range(100):
            out = c.tool("proc", {"action": "output", "process_id": f"up{k}"}).get("output", "")
            if "port " in out:
                port = int(out.split("port ")[1].split()[0])
                break
            time.sleep(0.1)
        px = c.tool("proxy", {"action": "start", "id": f"p{k}", "target_url": f"http://127.0.0.1:{port}", "port": 0})
        urls.append(px.get("listen_url") or px.get("url") or f"http://127.0.0.1:{px['port']}")
    pid = int(open(env["AGNT_SOCKET"] + ".pid").read())
    counts = [0] * (CLIENTS + 4)
    threads = [threading.Thread(target=mcp_client, args=(i, counts), daemon=True) for i in range(CLIENTS)]
    threads += [threading.Thread(target=http_client, args=(urls[i % 2], counts, CLIENTS + i), daemon=True) for i in range(4)]
    t0 = time.time()
    for t in threads:
        t.start()
    samples = []
    while time.time() - t0 < SECS:
        samples.append(sample(pid))
        print(json.dumps(samples[-1]), flush=True)
        time.sleep(SAMPLE)
    samples.append(sample(pid))
    stop.set()
    print(json.dumps({"secs": SECS, "mcp_calls": sum(counts[:CLIENTS]), "http_requests": sum(counts[CLIENTS:]),
                      "rss_kb_per_min": slope(samples, "rss_kb"), "fds_per_min": slope(samples, "fds"),
                      "threads_per_min": slope(samples, "threads"),
                      "rss_kb_first_last": [samples[0]["rss_kb"], samples[-1]["rss_kb"]],
                      "fds_first_last": [samples[0]["fds"], samples[-1]["fds"]],
                      "threads_first_last": [samples[0]["threads"], samples[-1]["threads"]]}))
finally:
    stop.set()
    subprocess.run([AGNT, "daemon", "stop"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    daemon.wait(timeout=30)
