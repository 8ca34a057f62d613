"""Daemon RSS while one client has N pipelined `tools/list` requests pending and reads nothing.

Usage: python3 benches/mcp/unread.py <agnt binary> [N=15000] [hold_secs=10]
Starts a private daemon (temp socket and state dir), measures VmRSS before, then the peak over
`hold_secs` while the client is still connected and unread, and stops the daemon. Prints JSON.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

AGNT = sys.argv[1]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 15000
HOLD = float(sys.argv[3]) if len(sys.argv) > 3 else 10
root = tempfile.mkdtemp(prefix="agnt-unread", dir="/tmp")
env = dict(os.environ, AGNT_SOCKET=os.path.join(root, "run", "agnt.sock"), AGNT_STATE_DIR=os.path.join(root, "state"))
d = subprocess.Popen([AGNT, "daemon", "start", "--foreground"], env=env, stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    while not os.path.exists(env["AGNT_SOCKET"] + ".pid"):
        time.sleep(0.05)
    time.sleep(0.3)
    pid = int(open(env["AGNT_SOCKET"] + ".pid").read())
    rss = lambda: int(next(l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:")))
    base = rss()
    s = socket.socket(socket.AF_UNIX)
    s.connect(env["AGNT_SOCKET"])
    s.settimeout(3)
    line = b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}\n'
    sent = [0]

    def write():
        try:
            for _ in range(N):
                s.sendall(line)
                sent[0] += 1
        except OSError:
            pass

    threading.Thread(target=write, daemon=True).start()
    peak, t0 = base, time.time()
    while time.time() - t0 < HOLD:
        peak = max(peak, rss())
        time.sleep(0.05)
    print(json.dumps({"requests": N, "sent_before_pushback": sent[0], "rss_base_mb": round(base / 1024, 1),
                      "rss_peak_mb": round(peak / 1024, 1), "growth_mb": round((peak - base) / 1024, 1),
                      "hold_secs": HOLD}))
    s.close()
finally:
    subprocess.run([AGNT, "daemon", "stop"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        d.wait(timeout=20)
    except Exception:
        d.kill()
