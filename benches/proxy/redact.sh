#!/bin/sh
# Redaction cost end to end: wrk against two agnt proxies in front of the same nginx upstream,
# one redacting (the default) and one started with --no-redact, in interleaved rounds of one
# run (the machine is shared: load swings hit both alike). Every request carries secrets the
# pass must find: a bearer token, a session cookie and ?access_token= in the URL; the answer
# is a 10 KiB JSON body with secret fields (the same body as `cargo bench --bench proxy`
# `redact_json_10kib`). Needs wrk, nginx, python3 and the release example:
#
#   cargo build --release --example proxy && benches/proxy/redact.sh
#   ROUNDS=7 DURATION=5s benches/proxy/redact.sh
#
# Ports 18090-18092 must be free. Everything started here is stopped on exit.
set -eu
DURATION=${DURATION:-3s}
ROUNDS=${ROUNDS:-5}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=$(mktemp -d /tmp/agnt-redact-bench.XXXXXX)
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    [ -f "$W/up.pid" ] && kill "$(cat "$W/up.pid")" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT INT TERM
UP=18090; ON=18091; OFF=18092

mkdir -p "$W/www" "$W/up"
python3 - "$W/www/api.json" <<'PY'
import sys
items, i = [], 0
while True:
    item = ('{"id":%d,"name":"item %d","status":"active","statusCode":200,"tags":["a","b","c"],'
            '"owner":{"login":"user%d","session":{"id":"s%d","expires":1700000000}},'
            '"price":{"amount":%d.5,"currency":"EUR"},"description":"lorem ipsum dolor sit amet consectetur"}') % (i, i, i, i, i)
    if sum(map(len, items)) + len(item) > 10 * 1024 - 200:
        break
    items.append(item); i += 1
open(sys.argv[1], "w").write('{"access_token":"eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.abc","user":{"password":"hunter2"},"items":[%s]}' % ",".join(items))
PY
chmod -R a+rX "$W"
cat > "$W/up/nginx.conf" <<NGX
worker_processes 1;
daemon on;
pid $W/up.pid;
error_log $W/up/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $W/up/cb; proxy_temp_path $W/up/pt; fastcgi_temp_path $W/up/ft;
    uwsgi_temp_path $W/up/ut; scgi_temp_path $W/up/st;
    types { application/json json; }
    keepalive_requests 1000000;
    server { listen 127.0.0.1:$UP; root $W/www; etag off; }
}
NGX
nginx -c "$W/up/nginx.conf" -e "$W/up/error.log"
AGNT_BIN=${AGNT_BIN:-$ROOT/target/release/examples/proxy}
"$AGNT_BIN" "http://127.0.0.1:$UP" "$ON" --quiet > "$W/on.log" 2>&1 &
PIDS="$PIDS $!"
"$AGNT_BIN" "http://127.0.0.1:$UP" "$OFF" --quiet --no-redact > "$W/off.log" 2>&1 &
PIDS="$PIDS $!"
for p in $UP $ON $OFF; do
    i=0; until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$p/api.json")" = 200 ]; do i=$((i+1)); [ $i -gt 100 ] && { echo "port $p not up" >&2; exit 1; }; sleep 0.1; done
done

PATH_Q="/api.json?page=2&access_token=abc123def456&sort=name"
run() { # $1=port $2=conns -> "req/s p50"
    t=1; [ "$2" -gt 1 ] && t=2
    wrk -t$t -c"$2" -d"$DURATION" --latency -H "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig" \
        -H "Cookie: theme=dark; sid=0123456789abcdef" "http://127.0.0.1:$1$PATH_Q" > "$W/wrk.out" 2>&1 || true
    grep -q "Non-2xx" "$W/wrk.out" && { cat "$W/wrk.out" >&2; exit 1; }
    echo "$(awk '/Requests\/sec/ {print $2}' "$W/wrk.out") $(awk '$1=="50%" {print $2}' "$W/wrk.out")"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| conns | redact | req/s (median of $ROUNDS) | p50 (median) | per round req/s | on/off per round |"
echo "|---|---|---|---|---|---|"
for c in 1 32; do
    : > "$W/res"
    r=0
    while [ $r -lt "$ROUNDS" ]; do
        # Alternate which one goes first, so neither always runs on the warmer machine.
        if [ $((r % 2)) -eq 0 ]; then order="on:$ON off:$OFF"; else order="off:$OFF on:$ON"; fi
        for s in $order; do echo "$r ${s%%:*} $(run "${s#*:}" "$c")" >> "$W/res"; done
        r=$((r+1))
    done
    ratios=$(awk '$2=="on" {on[$1]=$3} $2=="off" {off[$1]=$3} END {for (k=0;k<length(on);k++) printf "%s%.2f", (k?" ":""), on[k]/off[k]}' "$W/res")
    for name in on off; do
        rps=$(awk -v n=$name '$2==n {print $3}' "$W/res" | median)
        p50=$(awk -v n=$name '$2==n {print $4}' "$W/res" | median)
        per=$(awk -v n=$name '$2==n {printf "%s%d", (c++?" ":""), $3}' "$W/res")
        echo "| $c | $name | $rps | $p50 | $per | $([ $name = on ] && echo "$ratios") |"
    done
done
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
