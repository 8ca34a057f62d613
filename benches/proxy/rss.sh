#!/bin/sh
# Proxy memory under non-reading clients (issue 11): N clients each ask a 7.8 MB HTML page
# through the proxy and read nothing; prints the proxy's RSS growth (VmHWM, the peak, minus the
# RSS after one warm-up request) and how many upstream connections it holds.
#
#   benches/proxy/rss.sh                                   # target/release/examples/proxy
#   AGNT_BIN=/path/to/examples/proxy CLIENTS=100 benches/proxy/rss.sh
#
# Needs python3. Port 18090 (upstream) and 18091 (proxy) must be free.
set -eu
CLIENTS=${CLIENTS:-100}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
AGNT_BIN=${AGNT_BIN:-$ROOT/target/release/examples/proxy}
W=$(mktemp -d /tmp/agnt-rss.XXXXXX)
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT INT TERM

python3 - "$W" <<'PY'
import sys
row = "<div class=row><span>alpha beta gamma delta lorem ipsum dolor sit amet</span></div>\n"
body = row * (7_800_000 // len(row))
open(sys.argv[1] + "/page.html", "w").write("<!doctype html><html><head><title>big</title></head><body>\n" + body + "</body></html>\n")
PY
(cd "$W" && exec python3 -m http.server 18090 --bind 127.0.0.1) >/dev/null 2>&1 &
PIDS="$PIDS $!"
"$AGNT_BIN" http://127.0.0.1:18090 18091 --quiet >/dev/null 2>&1 &
PX=$!
PIDS="$PIDS $PX"
python3 - "$PX" "$CLIENTS" <<'PY'
import os, socket, sys, time
pid, n = int(sys.argv[1]), int(sys.argv[2])
def field(name):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(name):
            return int(line.split()[1])
def get(read):
    for _ in range(100):
        try:
            s = socket.create_connection(("127.0.0.1", 18091))
            break
        except OSError:
            time.sleep(0.1)
    s.sendall(b"GET /page.html HTTP/1.1\r\nHost: bench\r\nAccept: text/html\r\n\r\n")
    if read:
        s.settimeout(30)
        got = 0
        while got < 7_800_000:
            d = s.recv(1 << 16)
            if not d:
                break
            got += len(d)
        s.close()
    return s
for _ in range(100):  # the upstream is up before the warm-up
    try:
        socket.create_connection(("127.0.0.1", 18090)).close()
        break
    except OSError:
        time.sleep(0.1)
get(True)
base = field("VmRSS:")
held = [get(False) for _ in range(n)]
# Wait until the proxy's RSS stops growing (every pipe full or every page held).
last, still = -1, 0
for _ in range(120):
    time.sleep(0.5)
    now = field("VmRSS:")
    still = still + 1 if now == last else 0
    last = now
    if still >= 4:
        break
peak = field("VmHWM:")
ups = sum(1 for l in open("/proc/net/tcp").readlines()[1:] if l.split()[2].endswith(":46AA") and l.split()[3] == "01")
print(f"clients={n} base_rss_mib={base/1024:.1f} peak_rss_mib={peak/1024:.1f} growth_mib={(peak-base)/1024:.1f} rss_now_mib={last/1024:.1f} upstream_conns={ups}")
for s in held:
    s.close()
PY
