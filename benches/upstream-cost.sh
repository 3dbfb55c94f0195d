#!/usr/bin/env bash
# upstream-cost.sh - CPU per request of the primary (and of its workers) with TCP upstreams and
# with Unix-socket upstreams (`upstream: "unix"`), same load, interleaved repetitions.
#
# For each repetition and each upstream in turn, starts `cluster start` with W workers, warms up,
# runs wrk for DURATION seconds and reads the user and system CPU time of the primary and of its
# workers (/proc/<pid>/stat) before and after; the CPU time divided by the requests wrk completed
# is the cost per request. CPU time per request barely depends on how fast the machine happens to
# be while other work competes for it, unlike req/s; the table still gives req/s for reference.
# The kernel's share is the point: loopback TCP work shows up as system time of the process that
# writes (perf's instruction counters are not available on every VM, and callgrind sees no kernel).
#
#   benches/upstream-cost.sh                        # REPS=3 DURATION=8 FLAVORS="rust node"
#   REPS=1 DURATION=3 FLAVORS=rust benches/upstream-cost.sh
#
# Settings (environment): REPS=3 DURATION=8 WARMUP=2 CONNS=64 THREADS=1 W=2 FLAVORS="rust node"
# REQ_PATH=/ UPSTREAMS="tcp unix" SKIP_BUILD=1 (use the release binaries already built).
# rust = examples/hello (one runtime thread), node = examples/node/server.js.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPS=${REPS:-3}
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-64}
THREADS=${THREADS:-1}
W=${W:-2}
FLAVORS=${FLAVORS:-rust node}
UPSTREAMS=${UPSTREAMS:-tcp unix}
REQ_PATH=${REQ_PATH:-/}
SKIP_BUILD=${SKIP_BUILD:-0}

die() { echo "upstream-cost.sh: $*" >&2; exit 2; }
log() { echo "## $*" >&2; }
command -v wrk >/dev/null || die "wrk not found"
command -v python3 >/dev/null || die "python3 not found"

. "$ROOT/benches/lib/release-bins.sh"
release_bins "$ROOT"
[ -x "$CLUSTER_BIN" ] && [ -x "$HELLO_BIN" ] || die "release binaries missing"

WORK=$(mktemp -d)
PRIMARY=
cleanup() {
  [ -z "$PRIMARY" ] || kill -TERM "$PRIMARY" 2>/dev/null || true
  sleep 0.5
  [ -z "$PRIMARY" ] || kill -KILL "$PRIMARY" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# User and system CPU ticks of `pid` (all its threads).
ticks() { awk '{ print $14, $15 }' "/proc/$1/stat" 2>/dev/null || echo "0 0"; }
# Summed user and system ticks of the primary's children (its workers).
child_ticks() {
  local u=0 s=0 pid t
  for pid in $(pgrep -P "$1"); do
    read -r -a t <<<"$(ticks "$pid")"
    u=$((u + t[0])); s=$((s + t[1]))
  done
  echo "$u $s"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

RAW=$WORK/raw.tsv
printf 'flavor\tupstream\trep\trequests\tseconds\tp_user\tp_sys\tw_user\tw_sys\n' >"$RAW"
HZ=$(getconf CLK_TCK)
for flavor in $FLAVORS; do
  case "$flavor" in
    rust) program=$HELLO_BIN; args='[]' ;;
    node) program=$(command -v node); args="[\"$ROOT/examples/node/server.js\"]" ;;
    *) die "FLAVORS may list rust and node" ;;
  esac
  for rep in $(seq "$REPS"); do
    for upstream in $UPSTREAMS; do
      dir=$WORK/$flavor-$upstream-$rep
      mkdir -p "$dir"
      printf '{"command": "%s", "args": %s, "upstream": "%s", "logLevel": "warn"}\n' \
        "$program" "$args" "$upstream" >"$dir/cluster.config.json"
      port=$(free_port)
      (cd "$dir" && WORKER_QUIET=1 exec "$CLUSTER_BIN" start --host 127.0.0.1 --port "$port" \
        --workers "$W" >"$dir/cluster.log" 2>&1) &
      PRIMARY=$!
      for _ in $(seq 200); do
        [ "$(cd "$dir" && "$CLUSTER_BIN" health 2>/dev/null | grep -c "healthy: $W of $W")" = 1 ] && break
        sleep 0.1
      done
      wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" "http://127.0.0.1:$port$REQ_PATH" >/dev/null
      read -r pu0 ps0 <<<"$(ticks "$PRIMARY")"
      read -r wu0 ws0 <<<"$(child_ticks "$PRIMARY")"
      out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$port$REQ_PATH")
      read -r pu1 ps1 <<<"$(ticks "$PRIMARY")"
      read -r wu1 ws1 <<<"$(child_ticks "$PRIMARY")"
      requests=$(sed -n 's/^ *\([0-9]*\) requests in \([0-9.]*\)s.*/\1/p' <<<"$out")
      seconds=$(sed -n 's/^ *\([0-9]*\) requests in \([0-9.]*\)s.*/\2/p' <<<"$out")
      if grep -q "Non-2xx\|Socket errors" <<<"$out"; then log "$flavor $upstream: errors: $out"; fi
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$flavor" "$upstream" "$rep" "$requests" \
        "$seconds" $((pu1 - pu0)) $((ps1 - ps0)) $((wu1 - wu0)) $((ws1 - ws0)) >>"$RAW"
      log "$(tail -n1 "$RAW")"
      kill -TERM "$PRIMARY"
      wait "$PRIMARY" 2>/dev/null || true
      PRIMARY=
    done
  done
done

python3 - "$RAW" "$HZ" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
hz = float(sys.argv[2])
us = lambda ticks, n: ticks / hz * 1e6 / n
groups = {}
for r in rows:
    groups.setdefault((r["flavor"], r["upstream"]), []).append(r)
print("| workers | upstream | runs | req/s | primary user µs/req | primary sys µs/req | primary µs/req | workers µs/req |")
print("|---|---|---|---|---|---|---|---|")
med = {}
for (flavor, upstream), rs in groups.items():
    m = lambda f: statistics.median(f(r) for r in rs)
    n = lambda r: int(r["requests"])
    rps = m(lambda r: n(r) / float(r["seconds"]))
    pu = m(lambda r: us(int(r["p_user"]), n(r)))
    ps = m(lambda r: us(int(r["p_sys"]), n(r)))
    pt = m(lambda r: us(int(r["p_user"]) + int(r["p_sys"]), n(r)))
    wt = m(lambda r: us(int(r["w_user"]) + int(r["w_sys"]), n(r)))
    med[(flavor, upstream)] = (pt, wt)
    print(f"| {flavor} | {upstream} | {len(rs)} | {rps:.0f} | {pu:.1f} | {ps:.1f} | {pt:.1f} | {wt:.1f} |")
for flavor in sorted({f for f, _ in med}):
    if (flavor, "tcp") in med and (flavor, "unix") in med:
        (pt, wt), (pu, wu) = med[(flavor, "tcp")], med[(flavor, "unix")]
        print(f"{flavor}: unix saves {pt - pu:.1f} µs/req in the primary ({(pt - pu) / pt:.0%}) "
              f"and {wt - wu:.1f} µs/req in the workers ({(wt - wu) / wt:.0%})")
PY
