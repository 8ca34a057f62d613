"""`tools/call proc status` round-trip latency, over the `agnt mcp` bridge and straight on the
daemon socket, measured side by side in one run.

Usage: python3 benches/mcp/roundtrip.py <agnt binary> [calls]
Needs AGNT_SOCKET / AGNT_STATE_DIR pointing at a private daemon (the script starts one through
the bridge and stops it at the end). Prints a JSON line with p50/p99/mean in microseconds.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time

AGNT = sys.argv[1]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
project = tempfile.mkdtemp(prefix="agnt-bench")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def summary(name, xs):
    us = [x * 1e6 for x in xs]
    return {"path": name, "calls": len(us), "p50_us": round(pct(us, 0.50), 1), "p99_us": round(pct(us, 0.99), 1),
            "mean_us": round(sum(us) / len(us), 1)}


def line(i, method, params):
    return (json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params}) + "\n").encode()


init = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}
status = {"name": "proc", "arguments": {"action": "status", "process_id": "bench-sleeper"}}

bridge = subprocess.Popen([AGNT, "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=project)
rd = bridge.stdout


def call(i, method, params):
    bridge.stdin.write(line(i, method, params))
    bridge.stdin.flush()
    return json.loads(rd.readline())


call(1, "initialize", init)
call(2, "tools/call", {"name": "run", "arguments": {"raw": True, "command": "sleep", "args": ["600"], "id": "bench-sleeper"}})
for i in range(200):  # warm up
    call(10 + i, "tools/call", status)
times = []
for i in range(N):
    t = time.perf_counter()
    r = call(1000 + i, "tools/call", status)
    times.append(time.perf_counter() - t)
    assert r["result"]["structuredContent"]["state"] == "running", r
via_bridge = summary("bridge (agnt mcp, stdio)", times)

# Straight on the socket (what the bridge adds is the difference).
s = socket.socket(socket.AF_UNIX)
s.connect(os.environ["AGNT_SOCKET"])
f = s.makefile("rb")
meta = {"_meta": {"dev.agnt/project": os.path.realpath(project)}}


def scall(i, method, params):
    s.sendall(line(i, method, params))
    return json.loads(f.readline())


scall(1, "initialize", {**init, **meta})
for i in range(200):
    scall(10 + i, "tools/call", status)
times = []
for i in range(N):
    t = time.perf_counter()
    r = scall(1000 + i, "tools/call", status)
    times.append(time.perf_counter() - t)
    assert r["result"]["structuredContent"]["state"] == "running", r
direct = summary("daemon socket (direct)", times)

times = []
for i in range(N):
    t = time.perf_counter()
    scall(100000 + i, "ping", {})
    times.append(time.perf_counter() - t)
ping = summary("ping on the socket (protocol floor)", times)

call(3, "tools/call", {"name": "proc", "arguments": {"action": "stop", "process_id": "bench-sleeper", "force": True}})
bridge.stdin.close()
bridge.wait(timeout=10)
import shutil  # noqa: E402

shutil.rmtree(project, ignore_errors=True)
for r in (via_bridge, direct, ping):
    print(json.dumps(r))
