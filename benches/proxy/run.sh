#!/bin/sh
# Proxy benchmarks: wrk against upstream direct, agnt, nginx and Go's httputil.ReverseProxy,
# all on 127.0.0.1, side by side in one run. Needs wrk, nginx, go, python3.
#
#   benches/proxy/run.sh            # from the repository root; prints a Markdown table
#   DURATION=5s benches/proxy/run.sh
#   AGNT_BEFORE_BIN=/path/to/old/examples/proxy benches/proxy/run.sh   # adds a "before" row
#
# Ports 18080-18084 must be free. ROUNDS (default 3) interleaved rounds per cell, median shown. Everything started here is stopped on exit.
set -eu
DURATION=${DURATION:-3s}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=$(mktemp -d /tmp/agnt-bench.XXXXXX)
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    [ -f "$W/up.pid" ] && kill "$(cat "$W/up.pid")" 2>/dev/null || true
    [ -f "$W/rp.pid" ] && kill "$(cat "$W/rp.pid")" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT INT TERM

UP=18080; AGNT=18081; NGX=18082; GO=18083; BEFORE=18085

# --- content -----------------------------------------------------------------
mkdir -p "$W/www"
head -c 1024 /dev/zero | tr '\0' 'a' > "$W/www/small.txt"
head -c 102400 /dev/zero | tr '\0' 'b' > "$W/www/large.txt"
python3 - "$W/www" <<'PY'
import sys, gzip, random
random.seed(1)
words = ["alpha", "beta", "gamma", "delta", "lorem", "ipsum", "dolor", "sit", "amet"]
body = "".join("<div class=row><span>%s</span></div>\n" % " ".join(random.choice(words) for _ in range(8)) for _ in range(2200))
html = "<!doctype html><html><head><title>bench</title></head><body>\n" + body + "</body></html>\n"
html = html[:102400 - 20] + "</body></html>\n"
for name in ("page.html", "page.txt"):
    open(sys.argv[1] + "/" + name, "w").write(html)
    open(sys.argv[1] + "/" + name + ".gz", "wb").write(gzip.compress(html.encode(), 6))
PY

chmod -R a+rX "$W"   # nginx workers run as an unprivileged user

nginx_conf() { # $1=name $2=server block
    mkdir -p "$W/$1"
    cat > "$W/$1/nginx.conf" <<NGX
worker_processes 1;
daemon on;
pid $W/$1.pid;
error_log $W/$1/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $W/$1/cb; proxy_temp_path $W/$1/pt; fastcgi_temp_path $W/$1/ft;
    uwsgi_temp_path $W/$1/ut; scgi_temp_path $W/$1/st;
    types { text/html html; text/plain txt; }
    default_type application/octet-stream;
    keepalive_requests 1000000;
    $2
}
NGX
}
nginx_conf up "server { listen 127.0.0.1:$UP; root $W/www; gzip_static on; etag off; }"
nginx_conf rp "upstream u { server 127.0.0.1:$UP; keepalive 256; }
    server { listen 127.0.0.1:$NGX; location / { proxy_pass http://u; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_buffer_size 16k; proxy_buffers 16 16k; proxy_busy_buffers_size 32k; } }"
nginx -c "$W/up/nginx.conf" -e "$W/up/error.log"
nginx -c "$W/rp/nginx.conf" -e "$W/rp/error.log"
mv "$W/up.pid" "$W/up.pid" 2>/dev/null || true

(cd "$ROOT/benches/go/reverseproxy" && GOFLAGS=-mod=mod go build -o "$W/goproxy" .)
"$W/goproxy" "127.0.0.1:$GO" "http://127.0.0.1:$UP" 2>"$W/go.log" &
PIDS="$PIDS $!"
AGNT_BIN=${AGNT_BIN:-$ROOT/target/release/examples/proxy}
"$AGNT_BIN" "http://127.0.0.1:$UP" "$AGNT" --quiet > "$W/agnt.log" 2>&1 &
AGNT_PID=$!
PIDS="$PIDS $AGNT_PID"
SERVERS="direct:$UP nginx:$NGX agnt:$AGNT go:$GO"
if [ -n "${AGNT_BEFORE_BIN:-}" ]; then
    # Another build of the same proxy (e.g. the commit before a refactor), in the same rounds.
    "$AGNT_BEFORE_BIN" "http://127.0.0.1:$UP" "$BEFORE" --quiet > "$W/before.log" 2>&1 &
    PIDS="$PIDS $!"
    SERVERS="$SERVERS before:$BEFORE"
fi

for s in $SERVERS; do p=${s#*:}
    i=0; until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$p/small.txt")" = 200 ]; do i=$((i+1)); [ $i -gt 100 ] && { echo "port $p not up" >&2; exit 1; }; sleep 0.1; done
done

# wrk output -> "req/s p50 p99"
run() { # $1=port $2=path $3=conns [$4...=extra wrk args]
    port=$1; path=$2; c=$3; shift 3
    t=1; [ "$c" -gt 1 ] && t=2
    wrk -t$t -c$c -d"$DURATION" --latency "$@" "http://127.0.0.1:$port$path" > "$W/wrk.out" 2>&1 || true
    rps=$(awk '/Requests\/sec/ {print $2}' "$W/wrk.out")
    p50=$(awk '$1=="50%" {print $2}' "$W/wrk.out")
    p99=$(awk '$1=="99%" {print $2}' "$W/wrk.out")
    if grep -q "Non-2xx" "$W/wrk.out"; then
        echo "wrk saw non-2xx responses from port $port $path:" >&2
        cat "$W/wrk.out" >&2
        echo "NON-2xx - -"
        return
    fi
    echo "$rps $p50 $p99"
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
# Interleaved rounds (every server once per round), median per server: the machine is shared,
# so load swings hit all servers alike instead of whichever happened to run then.
ROUNDS=${ROUNDS:-3}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "| body | conns | server | req/s | p50 | p99 | vs nginx req/s | added p50 vs direct |"
echo "|---|---|---|---|---|---|---|---|"
for path in /small.txt /large.txt; do
    for c in 1 64; do
        : > "$W/res"
        r=0
        while [ $r -lt "$ROUNDS" ]; do
            for s in $SERVERS; do
                echo "${s%%:*} $(run "${s#*:}" "$path" "$c")" >> "$W/res"
            done
            r=$((r+1))
        done
        # p50/p99 to microseconds for the medians.
        us() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); print v} else if (v ~ /ms$/) {sub(/ms$/,"",v); print v*1000} else if (v ~ /s$/) {sub(/s$/,"",v); print v*1000000} else print v}'; }
        for name in $(for s in $SERVERS; do echo "${s%%:*}"; done); do
            rps=$(awk -v n=$name '$1==n {print $2}' "$W/res" | median)
            p50=$(awk -v n=$name '$1==n {print $3}' "$W/res" | us | median)
            p99=$(awk -v n=$name '$1==n {print $4}' "$W/res" | us | median)
            eval "rps_$name=$rps; p50_$name=$p50"
            ratio=""; added=""
            [ "$name" != direct ] && ratio=$(awk -v a="$rps" -v b="$rps_nginx" 'BEGIN{ if (b > 0) printf "%.2f", a/b }')
            [ "$name" != direct ] && added="$(awk -v a="$p50" -v b="$p50_direct" 'BEGIN{printf "%+d us", a-b}')"
            [ "$name" = nginx ] && ratio=1.00
            echo "| ${path#/} | $c | $name | $rps | ${p50}us | ${p99}us | $ratio | $added |"
        done
        # Each round's req/s ratio to that round's nginx (the regression rule reads these).
        for name in agnt before; do
            grep -q "^$name " "$W/res" || continue
            per=$(awk -v n=$name '$1=="nginx" {ng[++i]=$2} $1==n {me[++j]=$2} END {for (k=1;k<=j;k++) printf "%s%.2f", (k>1?" ":""), (ng[k]>0?me[k]/ng[k]:0)}' "$W/res")
            echo "|  |  | $name/nginx per round | $per |  |  |  |  |"
        done
    done
done

echo
echo "HTML injection (100 KiB page, gzip from upstream; agnt decodes, injects, sends identity):"
echo
echo "| case | conns | req/s | p50 | p99 |"
echo "|---|---|---|---|---|"
for c in 1 16; do
    set -- $(run $AGNT /page.txt "$c" -H "Accept-Encoding: gzip" -H "Accept: text/html")
    echo "| agnt pass-through (text/plain, gzip) | $c | $1 | $2 | $3 |"
    set -- $(run $AGNT /page.html "$c" -H "Accept-Encoding: gzip" -H "Accept: text/html")
    echo "| agnt inject (text/html, gzip) | $c | $1 | $2 | $3 |"
done

echo
echo "RSS with 1000 idle keep-alive connections (fresh agnt instance; nginx reverse-proxy worker):"
echo
"$AGNT_BIN" "http://127.0.0.1:$UP" 18084 --quiet > "$W/agnt2.log" 2>&1 &
AGNT2_PID=$!
PIDS="$PIDS $AGNT2_PID"
i=0; until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:18084/small.txt")" = 200 ]; do i=$((i+1)); [ $i -gt 100 ] && exit 1; sleep 0.1; done
python3 - "$AGNT2_PID" 18084 $NGX "$(cat "$W/rp.pid" 2>/dev/null || echo 0)" <<'PY'
import socket, sys
def rss(pid):
    for line in open("/proc/%s/status" % pid):
        if line.startswith("VmRSS"):
            return int(line.split()[1])
    return 0
def nginx_worker(master):
    import os
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                st = open("/proc/%s/stat" % p).read().split()
                if st[3] == str(master):
                    return p
            except OSError:
                pass
    return master
for name, pid, port in (("agnt", sys.argv[1], int(sys.argv[2])), ("nginx worker", nginx_worker(sys.argv[4]), int(sys.argv[3]))):
    before = rss(pid)
    socks = []
    for i in range(1000):
        s = socket.create_connection(("127.0.0.1", port))
        s.settimeout(5)
        s.sendall(b"GET /small.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        got = b""
        try:
            while b"\r\n\r\n" not in got or len(got) < 1024:
                d = s.recv(65536)
                if not d:
                    raise OSError("closed")
                got += d
        except OSError as e:
            print("| %s | connection %d failed: %s |" % (name, i, e))
            break
        socks.append(s)
    after = rss(pid)
    print("| %s | RSS before %d KiB | with %d idle keep-alive conns %d KiB | %.1f KiB/conn |" % (name, before, len(socks), after, (after - before) / max(1, len(socks))))
    for s in socks:
        s.close()
PY
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
