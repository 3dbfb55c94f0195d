#!/usr/bin/env bash
# CPU cost of the proxy per request, independent of machine load: instructions per request of
# the primary (callgrind) and system calls per request (strace -c), with the default
# configuration and with the edge stages users switch on.
#
#   benches/proxy-instructions.sh                 # MODES="default edge" DURATION=10 CONNS=16
#   MODES=edge DURATION=5 benches/proxy-instructions.sh
#   STRACE=0 benches/proxy-instructions.sh        # instructions only
#   CALLGRIND=0 benches/proxy-instructions.sh     # syscalls only
#   ANNOTATE=1 benches/proxy-instructions.sh      # also the top functions (callgrind_annotate)
#   CPUTIME=1 benches/proxy-instructions.sh       # also the primary's CPU time per request
#
# For each mode, the release `cluster` runs with `performance.proxyThreads: 1` and WORKERS (2)
# workers of WORKER (default: the shared harness's hyper worker, else examples/hello):
#
# 1. under `valgrind --tool=callgrind` (the workers run natively: valgrind does not follow
#    children): after a warm-up, the counters are zeroed (`callgrind_control -z`), wrk sends
#    requests for DURATION seconds, the counters are dumped (`callgrind_control -d`), and the
#    primary's instructions (all its threads: proxy, access log writer, supervisor), less its
#    idle work (measured for IDLE seconds before, 5 by default, scaled to DURATION), are
#    divided by the requests wrk completed. Callgrind runs the program about 50x slower and
#    counts instructions, not time, so the figure does not depend on the machine's load: it
#    is the number to compare before and after a change (same binary build settings);
# 2. natively, with `strace -c -f` attached to the primary for DURATION seconds of wrk:
#    system calls per request, by call;
# 3. with CPUTIME=1, natively: the primary's CPU time (user + system, from /proc) and minor
#    page faults per request over DURATION seconds of wrk. Unlike 1, it sees the kernel's share (page faults,
#    loopback TCP) but moves with the machine's load: compare runs made back to back.
#
# Modes:
# - default: `{}` besides the worker command;
# - edge: compression on (wrk sends no Accept-Encoding, so every response is only
#   examined), the rate limit with the local store (a quota no client reaches) and the
#   access log (JSON, to a file);
# - gzip: compressing for real: compression on (level 6), Node workers
#   (examples/node/server.js, whatever WORKER says), `GET /data.json?n=100` (about 5 KB of
#   chunked JSON) with `Accept-Encoding: gzip`; fewer requests, so DURATION counts more;
# - bare: not `cluster` but the floor it is measured against, the bare hyper proxy of
#   benches/examples/bare_proxy.rs (`cargo build --release -p benches --example bare_proxy`)
#   in front of WORKERS workers of WORKER on PORT+1.. (the worker must listen on PORT).
# EXTRA_CONFIG (a JSON object) is merged over the configuration of every mode.
#
# Needs valgrind, strace, wrk, python3 and a release build
# (`cargo build --release -p cluster-cli --bin cluster -p examples --example hello`;
# CARGO_TARGET_DIR is honoured). Output goes to stdout; each run's files (callgrind dumps,
# strace tables, logs) stay in OUT_DIR (default: a new directory under /tmp, printed).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
CLUSTER=${CLUSTER:-$TARGET_DIR/release/cluster}
BENCH_HOME=${BENCH_HOME:-/tmp/cluster-bench}
if [ -z "${WORKER:-}" ]; then
  if [ -x "$BENCH_HOME/rust-worker/release/rust-worker" ]; then
    WORKER=$BENCH_HOME/rust-worker/release/rust-worker
  else
    WORKER=$TARGET_DIR/release/examples/hello
  fi
fi
BARE_PROXY=${BARE_PROXY:-$TARGET_DIR/release/examples/bare_proxy}
WORKERS=${WORKERS:-2}
MODES=${MODES:-default edge}
DURATION=${DURATION:-10}
CONNS=${CONNS:-16}
REQ_PATH=${REQ_PATH:-/}
CALLGRIND=${CALLGRIND:-1}
CPUTIME=${CPUTIME:-0}
IDLE=${IDLE:-5}
STRACE=${STRACE:-1}
ANNOTATE=${ANNOTATE:-0}
EXTRA_CONFIG=${EXTRA_CONFIG:-}
OUT_DIR=${OUT_DIR:-$(mktemp -d /tmp/proxy-instructions.XXXXXX)}
mkdir -p "$OUT_DIR"

[ -x "$CLUSTER" ] || { echo "no release cluster at $CLUSTER: build it first" >&2; exit 2; }
[ -x "$WORKER" ] || { echo "no worker at $WORKER" >&2; exit 2; }
for tool in wrk python3 curl; do
  command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 2; }
done
[ "$CALLGRIND" = 0 ] || command -v callgrind_control >/dev/null || { echo "valgrind is needed" >&2; exit 2; }
[ "$STRACE" = 0 ] || command -v strace >/dev/null || { echo "strace is needed" >&2; exit 2; }

# Writes the configuration of mode $1 into directory $2.
write_config() {
  python3 - "$1" "$2/cluster.config.json" "$WORKER" "$EXTRA_CONFIG" "$ROOT/examples/node/server.js" <<'EOF'
import json, sys
mode, out, worker, extra, node_server = sys.argv[1:]
def merge(base, more):
    for k, v in more.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = v
    return base
config = {"command": worker, "performance": {"proxyThreads": 1}}
if mode == "edge":
    merge(config, {
        "performance": {"enableCompression": True},
        "security": {"enableRateLimit": True, "rateLimitStore": "local",
                     "rateLimitMax": 4000000000, "enableRequestLogging": True},
        "accessLog": {"format": "json", "path": "access.log"},
    })
elif mode == "gzip":
    config["command"] = "node"
    config["args"] = [node_server]
    config["env"] = {"WORKER_QUIET": "1"}
    merge(config, {"performance": {"enableCompression": True, "compressionLevel": 6}})
elif mode not in ("default", "bare"):
    sys.exit(f"unknown mode {mode!r} (expected default, edge, gzip or bare)")
if extra.strip():
    merge(config, json.loads(extra))
json.dump(config, open(out, "w"), indent=2)
EOF
}

PID=""
BARE_WORKERS=()
stop_cluster() {
  if [ -n "$PID" ]; then
    kill -TERM "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=""
  fi
  for w in "${BARE_WORKERS[@]}"; do kill -TERM "$w" 2>/dev/null || true; wait "$w" 2>/dev/null || true; done
  BARE_WORKERS=()
}
trap stop_cluster EXIT

# Starts the cluster of mode $1 in directory $2, with the command prefix in the rest of the
# arguments (valgrind or nothing); sets PID and PORT once it answers.
start_cluster() {
  local mode=$1 dir=$2
  shift 2
  PORT=$(( 20000 + RANDOM % 20000 ))
  if [ "$mode" = bare ]; then
    # The floor: the bare hyper proxy in front of WORKERS workers started here.
    local upstreams=() i wport
    for i in $(seq "$WORKERS"); do
      wport=$((PORT + i))
      PORT=$wport "$WORKER" >"$dir/worker-$i.log" 2>&1 &
      BARE_WORKERS+=($!)
      upstreams+=("127.0.0.1:$wport")
    done
    (cd "$dir" && exec "$@" "$BARE_PROXY" "127.0.0.1:$PORT" "${upstreams[@]}" \
        >"$dir/stdout" 2>"$dir/stderr") &
    PID=$!
  else
    write_config "$mode" "$dir"
    (cd "$dir" && LOG_LEVEL=warn exec "$@" "$CLUSTER" start --config cluster.config.json \
        --host 127.0.0.1 --port "$PORT" --workers "$WORKERS" >"$dir/stdout" 2>"$dir/stderr") &
    PID=$!
  fi
  for _ in $(seq 600); do
    curl -sf -o /dev/null "http://127.0.0.1:$PORT/" && return 0
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.2
  done
  echo "the cluster did not answer on port $PORT (see $dir/stderr)" >&2
  exit 1
}

# Requests completed by a wrk run whose output is in $1.
requests() { awk '/requests in/ { print $1 }' "$1"; }

check_wrk() { # $1: wrk output
  if grep -q "Non-2xx\|Socket errors" "$1"; then
    echo "  warning: wrk reported errors:" >&2
    grep "Non-2xx\|Socket errors" "$1" >&2
  fi
}

# The path and wrk's extra arguments for mode $1.
mode_request() {
  if [ "$1" = gzip ]; then
    URL_PATH='/data.json?n=100'
    WRK_EXTRA=(-H 'Accept-Encoding: gzip')
  else
    URL_PATH=$REQ_PATH
    WRK_EXTRA=()
  fi
}

# The instruction total of the newest callgrind dump in directory $1.
dump_total() {
  local dump
  dump=$(ls -t "$1"/callgrind.out.* 2>/dev/null | head -1)
  [ -n "$dump" ] || { echo "no callgrind dump in $1" >&2; exit 1; }
  awk '/^summary:|^totals:/ { print $2; exit }' "$dump"
}

measure_instructions() { # $1: mode
  local dir=$OUT_DIR/$1-callgrind reqs ir idle
  mkdir -p "$dir"
  mode_request "$1"
  start_cluster "$1" "$dir" valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" \
    --dump-instr=no --collect-jumps=no
  wrk -t1 -c"$CONNS" -d3s "${WRK_EXTRA[@]}" "http://127.0.0.1:$PORT$URL_PATH" >/dev/null   # warm up
  # What the primary does with no request (supervisor, metrics, health), per second of
  # wall clock: subtracted from the loaded run, so that a slower run (a busier machine)
  # does not count more of it per request.
  sleep 1
  callgrind_control -z "$PID" >/dev/null
  sleep "$IDLE"
  callgrind_control -d "$PID" >/dev/null
  idle=$(dump_total "$dir")
  callgrind_control -z "$PID" >/dev/null
  wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 10s "${WRK_EXTRA[@]}" "http://127.0.0.1:$PORT$URL_PATH" >"$dir/wrk.txt"
  callgrind_control -d "$PID" >/dev/null
  check_wrk "$dir/wrk.txt"
  reqs=$(requests "$dir/wrk.txt")
  ir=$(dump_total "$dir")
  awk -v m="$1" -v r="$reqs" -v i="$ir" -v idle="$idle" -v s="$IDLE" -v d="$DURATION" \
    'BEGIN { printf "%-8s instructions/request %9.0f   (%d requests, %.3g instructions, %.3g of them idle work)\n",
             m, (i - idle * d / s) / r, r, i, idle * d / s }'
  if [ "$ANNOTATE" = 1 ]; then
    callgrind_annotate --inclusive=no "$(ls -t "$dir"/callgrind.out.* | head -1)" 2>/dev/null \
      | sed -n '1,60p' >"$dir/annotate.txt"
    sed -n '/^Ir/,$p' "$dir/annotate.txt" | head -40
  fi
  stop_cluster
}

measure_syscalls() { # $1: mode
  local dir=$OUT_DIR/$1-strace reqs spid
  mkdir -p "$dir"
  mode_request "$1"
  start_cluster "$1" "$dir"
  wrk -t1 -c"$CONNS" -d2s "${WRK_EXTRA[@]}" "http://127.0.0.1:$PORT$URL_PATH" >/dev/null   # warm up
  strace -c -f -p "$PID" -o "$dir/strace.txt" 2>/dev/null &
  spid=$!
  sleep 1
  wrk -t1 -c"$CONNS" -d"${DURATION}s" "${WRK_EXTRA[@]}" "http://127.0.0.1:$PORT$URL_PATH" >"$dir/wrk.txt"
  kill -INT "$spid"
  wait "$spid" 2>/dev/null || true
  check_wrk "$dir/wrk.txt"
  reqs=$(requests "$dir/wrk.txt")
  awk -v m="$1" -v r="$reqs" '
    $1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" { c[$NF] = $4 }
    $NF == "total" { total = $4 }
    END {
      printf "%-8s syscalls/request %6.2f  (", m, total / r
      n = 0
      for (k in c) if (c[k] / r >= 0.05) { printf "%s%s %.2f", (n++ ? ", " : ""), k, c[k] / r }
      printf ")\n"
    }' "$dir/strace.txt"
  stop_cluster
}

measure_cputime() { # $1: mode
  local dir=$OUT_DIR/$1-cputime reqs before after fbefore fafter
  mkdir -p "$dir"
  mode_request "$1"
  start_cluster "$1" "$dir"
  wrk -t1 -c"$CONNS" -d2s "${WRK_EXTRA[@]}" "http://127.0.0.1:$PORT$URL_PATH" >/dev/null   # warm up
  before=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$PID/stat")
  ubefore=$(awk '{ sub(/^.*\) /, ""); print $12 }' "/proc/$PID/stat")
  fbefore=$(awk '{ sub(/^.*\) /, ""); print $8 }' "/proc/$PID/stat")
  wrk -t1 -c"$CONNS" -d"${DURATION}s" "${WRK_EXTRA[@]}" "http://127.0.0.1:$PORT$URL_PATH" >"$dir/wrk.txt"
  after=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$PID/stat")
  uafter=$(awk '{ sub(/^.*\) /, ""); print $12 }' "/proc/$PID/stat")
  fafter=$(awk '{ sub(/^.*\) /, ""); print $8 }' "/proc/$PID/stat")
  check_wrk "$dir/wrk.txt"
  reqs=$(requests "$dir/wrk.txt")
  awk -v m="$1" -v r="$reqs" -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v d="$DURATION" \
    -v f=$((fafter - fbefore)) -v u=$((uafter - ubefore)) \
    'BEGIN { printf "%-8s CPU us/request %7.2f (user %5.2f, system %5.2f)  page faults/request %6.2f  (%.0f req/s)\n",
             m, t * 1e6 / hz / r, u * 1e6 / hz / r, (t - u) * 1e6 / hz / r, f / r, r / d }'
  stop_cluster
}

echo "cluster: $CLUSTER"
echo "worker:  $WORKER x $WORKERS, wrk -t1 -c$CONNS ${DURATION}s, path $REQ_PATH; files in $OUT_DIR"
for mode in $MODES; do
  [ "$CALLGRIND" = 0 ] || measure_instructions "$mode"
  [ "$STRACE" = 0 ] || measure_syscalls "$mode"
  [ "$CPUTIME" = 0 ] || measure_cputime "$mode"
done
