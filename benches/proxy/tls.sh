#!/bin/sh
# HTTPS upstreams: what TLS toward the dev server costs. wrk (plain HTTP) against nginx serving
# a self-signed HTTPS upstream through: agnt, and nginx as a reverse proxy (proxy_ssl_verify off,
# keep-alive and session reuse on); plus agnt in front of the same files over plain HTTP as the
# no-TLS reference. All on 127.0.0.1, interleaved rounds, median shown. Needs wrk, nginx, openssl.
#
#   cargo build --release --example proxy && benches/proxy/tls.sh
#   DURATION=5s ROUNDS=5 benches/proxy/tls.sh
#   AGNT_BEFORE_BIN=/path/to/old/examples/proxy benches/proxy/tls.sh   # adds a "before-https" row
#
# Ports 18090-18095 must be free. Everything started here is stopped on exit.
set -eu
DURATION=${DURATION:-3s}
ROUNDS=${ROUNDS:-3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=$(mktemp -d /tmp/agnt-tls-bench.XXXXXX)
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    for f in "$W"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT INT TERM

TLS_UP=18090; PLAIN_UP=18091; AGNT_TLS=18092; NGX_TLS=18093; AGNT_PLAIN=18094; BEFORE_TLS=18095

mkdir -p "$W/www"
head -c 1024 /dev/zero | tr '\0' 'a' > "$W/www/small.txt"
head -c 102400 /dev/zero | tr '\0' 'b' > "$W/www/large.txt"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/key.pem" -out "$W/cert.pem" -days 2 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
chmod -R a+rX "$W"

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
nginx_conf up "server { listen 127.0.0.1:$TLS_UP ssl; ssl_certificate $W/cert.pem; ssl_certificate_key $W/key.pem; root $W/www; etag off; }
    server { listen 127.0.0.1:$PLAIN_UP; root $W/www; etag off; }"
nginx_conf rp "upstream u { server 127.0.0.1:$TLS_UP; keepalive 256; }
    server { listen 127.0.0.1:$NGX_TLS; location / { proxy_pass https://u; proxy_ssl_verify off; proxy_ssl_session_reuse on; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_buffer_size 16k; proxy_buffers 16 16k; proxy_busy_buffers_size 32k; } }"
nginx -c "$W/up/nginx.conf" -e "$W/up/error.log"
nginx -c "$W/rp/nginx.conf" -e "$W/rp/error.log"

AGNT_BIN=${AGNT_BIN:-$ROOT/target/release/examples/proxy}
"$AGNT_BIN" "https://127.0.0.1:$TLS_UP" "$AGNT_TLS" --quiet > "$W/agnt-tls.log" 2>&1 &
PIDS="$PIDS $!"
"$AGNT_BIN" "http://127.0.0.1:$PLAIN_UP" "$AGNT_PLAIN" --quiet > "$W/agnt-plain.log" 2>&1 &
PIDS="$PIDS $!"
SERVERS="agnt-https:$AGNT_TLS nginx-https:$NGX_TLS agnt-http:$AGNT_PLAIN"
NAMES="nginx-https agnt-http agnt-https"
if [ -n "${AGNT_BEFORE_BIN:-}" ]; then
    "$AGNT_BEFORE_BIN" "https://127.0.0.1:$TLS_UP" "$BEFORE_TLS" --quiet > "$W/before.log" 2>&1 &
    PIDS="$PIDS $!"
    SERVERS="$SERVERS before-https:$BEFORE_TLS"
    NAMES="$NAMES before-https"
fi
for s in $SERVERS; do p=${s#*:}
    i=0; until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$p/small.txt")" = 200 ]; do
        i=$((i+1)); [ $i -gt 100 ] && { echo "port $p not up" >&2; cat "$W"/*.log >&2; exit 1; }; sleep 0.1
    done
done

run() { # $1=port $2=path $3=conns -> "req/s p50"
    t=1; [ "$3" -gt 1 ] && t=2
    wrk -t$t -c"$3" -d"$DURATION" --latency "http://127.0.0.1:$1$2" > "$W/wrk.out" 2>&1 || true
    if grep -q "Non-2xx" "$W/wrk.out"; then echo "NON-2xx -"; return; fi
    echo "$(awk '/Requests\/sec/ {print $2}' "$W/wrk.out") $(awk '$1=="50%" {print $2}' "$W/wrk.out")"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| body | conns | server | req/s | p50 | vs nginx-https | vs agnt-http |"
echo "|---|---|---|---|---|---|---|"
for path in /small.txt /large.txt; do
    for c in 1 64; do
        : > "$W/res"
        r=0
        while [ $r -lt "$ROUNDS" ]; do
            for s in $SERVERS; do echo "${s%%:*} $(run "${s#*:}" "$path" "$c")" >> "$W/res"; done
            r=$((r+1))
        done
        for name in $NAMES; do
            eval "rps_$(echo $name | tr - _)=$(awk -v n=$name '$1==n {print $2}' "$W/res" | median)"
        done
        for name in $NAMES; do
            rps=$(eval echo "\$rps_$(echo $name | tr - _)")
            p50=$(awk -v n=$name '$1==n {print $3}' "$W/res" | sort | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
            vs_ngx=$(awk -v a="$rps" -v b="$rps_nginx_https" 'BEGIN{ if (b > 0) printf "%.2f", a/b }')
            vs_plain=$(awk -v a="$rps" -v b="$rps_agnt_http" 'BEGIN{ if (b > 0) printf "%.2f", a/b }')
            echo "| ${path#/} | $c | $name | $rps | $p50 | $vs_ngx | $vs_plain |"
        done
    done
done
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
