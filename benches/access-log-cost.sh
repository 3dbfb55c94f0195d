#!/usr/bin/env bash
# CPU cost of the access log per request: the primary's CPU time (user + system, all its
# threads) per request under wrk, with the access log off, in the combined format and in JSON,
# alternating, in the same run; and the writer thread's own share.
#
#   benches/access-log-cost.sh            # REPS=3 DURATION=8 CONNS=64 WORKERS=2
#
# Needs wrk and a release build (`cargo build --release -p cluster-cli --bin cluster -p examples
# --example hello`; CARGO_TARGET_DIR is honoured). The difference between "off" and a format is
# what a line costs, on the request path and on the writer thread together.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
CLUSTER=$TARGET_DIR/release/cluster
HELLO=$TARGET_DIR/release/examples/hello
REPS=${REPS:-3}
DURATION=${DURATION:-8}
CONNS=${CONNS:-64}
WORKERS=${WORKERS:-2}
TICK=$(getconf CLK_TCK)

[ -x "$CLUSTER" ] && [ -x "$HELLO" ] || { echo "build the release binaries first" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk is needed" >&2; exit 2; }

# utime + stime of a /proc stat file, in clock ticks.
ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "$1"; }

run() { # $1: off|combined|json
  local dir port pid writer before wbefore after wafter out reqs
  dir=$(mktemp -d)
  port=$(( 20000 + RANDOM % 20000 ))
  case $1 in
    off) echo '{}' > "$dir/cluster.config.json" ;;
    *) printf '{"security":{"enableRequestLogging":true},"accessLog":{"format":"%s","path":"access.log"}}' \
         "$1" > "$dir/cluster.config.json" ;;
  esac
  (cd "$dir" && LOG_LEVEL=warn exec "$CLUSTER" start --host 127.0.0.1 --port "$port" \
     --workers "$WORKERS" -- "$HELLO" >/dev/null 2>"$dir/stderr") &
  pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
  wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$port/" >/dev/null   # warm up
  writer=""
  for t in /proc/$pid/task/*; do
    [ "$(cat "$t/comm")" = "cluster-access-" ] && writer=$t/stat
  done
  before=$(ticks /proc/$pid/stat); wbefore=${writer:+$(ticks "$writer")}
  out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$port/")
  after=$(ticks /proc/$pid/stat); wafter=${writer:+$(ticks "$writer")}
  reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
  awk -v m="$1" -v r="$reqs" -v c=$((after - before)) -v w=$(( ${wafter:-0} - ${wbefore:-0} )) \
      -v tick="$TICK" -v d="$DURATION" \
      'BEGIN { printf "%-9s %9.0f req/s  primary %6.2f us/req  writer thread %5.2f us/line\n",
               m, r / d, c * 1e6 / tick / r, w * 1e6 / tick / r }'
  if [ "$1" != off ]; then
    local lines; lines=$(wc -l < "$dir/access.log")
    echo "          ($lines lines written for $reqs requests measured + warm-up)"
  fi
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
}

for rep in $(seq "$REPS"); do
  echo "rep $rep"
  for mode in off combined json; do run "$mode"; done
done
