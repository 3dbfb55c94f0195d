#!/usr/bin/env bash
# compression-vs-nginx.sh - gzip on the proxy: our cluster beside nginx's gzip, same workers.
#
#   benches/compression-vs-nginx.sh                      # REPS=3 DURATION=8
#   REQ_PATH='/data.json?n=100' benches/compression-vs-nginx.sh
#
# Starts W Node workers (examples/node/server.js) once, then alternates, REPS times:
#   nginx   - round robin, upstream keep-alive, `gzip on`, comp level LEVEL, min length 1024,
#             text/html and application/json (the harness's nginx settings plus gzip);
#   cluster - `cluster start` with performance.enableCompression and compressionLevel LEVEL,
#             starting its own W workers of the same script.
# wrk sends `Accept-Encoding: gzip` (-t1 -c CONNS). Prints req/s, p99 and the response bytes
# per request of each run, then the medians and the ratio cluster/nginx.
#
# Settings (environment): REPS=3 DURATION=8 WARMUP=2 CONNS=64 W=2 LEVEL=6
#   REQ_PATH='/page?size=8000'  PORT=18480 (nginx and cluster front) WORKER_PORT=18490 (first)
#   SKIP_BUILD=1 (use the release binary already built)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPS=${REPS:-3}
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-64}
W=${W:-2}
LEVEL=${LEVEL:-6}
REQ_PATH=${REQ_PATH:-/page?size=8000}
PORT=${PORT:-18480}
WORKER_PORT=${WORKER_PORT:-18490}

for tool in nginx wrk node curl; do
  command -v "$tool" >/dev/null || { echo "$tool is needed (apt-get install nginx wrk nodejs curl)" >&2; exit 1; }
done
. "$ROOT/benches/lib/release-bins.sh"
release_bins "$ROOT"
SERVER_JS=$ROOT/examples/node/server.js

RUN=$(mktemp -d /tmp/compression-vs-nginx.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$RUN"
}
trap cleanup EXIT

wait_ready() { # port
  for _ in $(seq 1 100); do
    curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$1$REQ_PATH" && return 0
    sleep 0.1
  done
  echo "nothing answers on port $1" >&2
  return 1
}

# ---- nginx's workers, started once -----------------------------------------------------------
servers=""
for i in $(seq 0 $((W - 1))); do
  port=$((WORKER_PORT + i))
  WORKER_QUIET=1 PORT=$port HOST=127.0.0.1 node "$SERVER_JS" > "$RUN/worker-$i.log" 2>&1 &
  PIDS+=($!)
  servers+="server 127.0.0.1:$port;"$'\n'
done
for i in $(seq 0 $((W - 1))); do wait_ready $((WORKER_PORT + i)); done

mkdir -p "$RUN/nginx-tmp"
cat > "$RUN/nginx.conf" <<CONF
worker_processes 1;
pid $RUN/nginx.pid;
error_log $RUN/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $RUN/nginx-tmp/body;
    proxy_temp_path $RUN/nginx-tmp/proxy;
    fastcgi_temp_path $RUN/nginx-tmp/fastcgi;
    uwsgi_temp_path $RUN/nginx-tmp/uwsgi;
    scgi_temp_path $RUN/nginx-tmp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 65s;
    gzip on;
    gzip_comp_level $LEVEL;
    gzip_min_length 1024;
    gzip_proxied any;
    gzip_vary on;
    gzip_types text/html application/json;
    upstream workers {
        $servers
        keepalive 128;
        keepalive_requests 1000000;
        keepalive_timeout 60s;
    }
    server {
        listen 127.0.0.1:$PORT backlog=4096;
        location / {
            proxy_pass http://workers;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
CONF

cat > "$RUN/cluster.config.json" <<JSON
{"workers": $W, "host": "127.0.0.1", "port": $PORT, "runtimeDir": "$RUN/cluster-run",
 "command": "node", "args": ["$SERVER_JS"], "env": {"WORKER_QUIET": "1"},
 "performance": {"enableCompression": true, "compressionLevel": $LEVEL}}
JSON

cat > "$RUN/report.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("RESULT rps=%.0f p99_us=%d bytes_per_req=%.0f errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(99),
    summary.bytes / math.max(summary.requests, 1),
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.status + summary.errors.timeout))
end
LUA

load() { # seconds -> RESULT line
  wrk -t1 -c"$CONNS" -d"$1s" --timeout 5s -H 'Accept-Encoding: gzip' -s "$RUN/report.lua" \
    "http://127.0.0.1:$PORT$REQ_PATH" | grep '^RESULT'
}

start() { # nginx | cluster -> pid
  case $1 in
    nginx) nginx -c "$RUN/nginx.conf" -g 'daemon off;' > "$RUN/nginx.out" 2>&1 & ;;
    cluster) "$CLUSTER_BIN" start --config "$RUN/cluster.config.json" > "$RUN/cluster.out" 2>&1 & ;;
  esac
  echo $!
}

check_encoded() { # the front must gzip the response, or the comparison means nothing
  local enc
  enc=$(curl -s -o /dev/null -D - -H 'Accept-Encoding: gzip' "http://127.0.0.1:$PORT$REQ_PATH" |
    tr -d '\r' | awk -F': ' 'tolower($1) == "content-encoding" { print $2 }')
  [ "$enc" = gzip ] || { echo "$1 did not gzip $REQ_PATH (Content-Encoding: '${enc:-none}')" >&2; return 1; }
}

echo "path=$REQ_PATH level=$LEVEL W=$W conns=$CONNS reps=$REPS duration=${DURATION}s"
RESULTS=$RUN/results.tsv
for rep in $(seq 1 "$REPS"); do
  for front in nginx cluster; do
    pid=$(start $front)
    wait_ready "$PORT"
    check_encoded $front
    load "$WARMUP" > /dev/null
    line=$(load "$DURATION")
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
    echo "$front rep $rep: ${line#RESULT }"
    echo "$front ${line#RESULT }" >> "$RESULTS"
    sleep 1
  done
done

python3 - "$RESULTS" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    front, rest = line.split(" ", 1)
    rows.setdefault(front, []).append({k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", rest)})
med = {f: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for f, rs in rows.items()}
for f, m in med.items():
    print(f"{f:8} median req/s {m['rps']:9.0f}  p99 {m['p99_us'] / 1000:6.2f} ms  "
          f"{m['bytes_per_req']:6.0f} B/response  errors {m['errors']:.0f}")
n, c = med["nginx"], med["cluster"]
print(f"cluster / nginx: req/s {c['rps'] / n['rps']:.2f}x, p99 {c['p99_us'] / n['p99_us']:.2f}x")
PY
