#!/usr/bin/env bash
# proxy-vs-nginx.sh - our cluster's proxy beside nginx and HAProxy, in the same runs.
#
# Runs the shared side-by-side harness (peers.sh) twice, with Node workers and with one-thread
# hyper workers, adding `cluster start` as the "candidate" topology in spawn mode (the cluster
# starts its W workers itself), then prints per flavor a table of medians (req/s, p50, p99) with
# each row's ratio to nginx round robin measured in the same run. See docs/benchmarks.md.
#
#   benches/proxy-vs-nginx.sh                       # REPS=3 DURATION=10, about 6 minutes
#   REPS=1 DURATION=3 FLAVORS=rust benches/proxy-vs-nginx.sh
#
# Settings (environment):
#   REPS=3 DURATION=10      repetitions and seconds of measured load per run (peers.sh)
#   CONNS=64 W=2            wrk connections, workers behind the front port (peers.sh defaults)
#   FLAVORS="node rust"     which worker flavors to run, in order
#   TOPOLOGIES="direct nginx-rr nginx-lc haproxy-rr candidate"; peers.sh's `pm2` and
#                           `node-cluster` (node flavor only) may be listed too
#   CLUSTER_MODE=proxy      the candidate's `mode`: proxy | shared-socket (the workers accept on
#                           the front socket themselves, as under pm2 and Node's cluster module)
#   BASELINE                the topology the ratio columns divide by: nginx-rr when it ran, else
#                           pm2, else the first one
#   RUST_WORKER=harness     rust flavor worker: harness (the harness's rust-worker, comparable
#                           with its README baseline) | hello (our examples/hello)
#   BENCH_DIR=$ROOT/../shared/bench   the harness (read-only is fine)
#   BENCH_HOME=/tmp/cluster-bench     where the harness keeps tools, builds and results
#   SKIP_BUILD=1            do not run cargo (use binaries already built)
#   CLUSTER_PROXY_THREADS=auto  the primary's proxy threads (performance.proxyThreads): auto
#                           (the default: 2 on this 2-core machine) or a number
#   CLUSTER_UPSTREAM=tcp    how the candidate reaches its workers (`upstream`): tcp | unix (the
#                           workers listen on SOCKET_PATH; the harness's workers do)
#   CLUSTER_EXTRA_CONFIG    a JSON object merged over the candidate's config (candidate-config.py),
#                           e.g. '{"security":{"enableRateLimit":true,"rateLimitMax":1000000000}}'
#   CLUSTER_CANDIDATE_CMD   replaces the candidate command line; only for testing this script
#                           (e.g. with the harness's examples/candidate-spawn-node.js)
# Any other peers.sh setting (WARMUP, THREADS, REQ_PATH, KEEPALIVE, PROXY_WORKERS ...) passes
# through the environment.
#
# Results: $BENCH_HOME/results/<stamp>-proxy-vs-nginx-<flavor>/ (raw.tsv, summary.txt, logs/),
# and comparison.txt beside them with the tables printed at the end.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-$ROOT/../shared/bench}
BENCH_HOME=${BENCH_HOME:-/tmp/cluster-bench}
REPS=${REPS:-3}
DURATION=${DURATION:-10}
FLAVORS=${FLAVORS:-node rust}
TOPOLOGIES=${TOPOLOGIES:-direct nginx-rr nginx-lc haproxy-rr candidate}
RUST_WORKER=${RUST_WORKER:-harness}
SKIP_BUILD=${SKIP_BUILD:-0}
CLUSTER_PROXY_THREADS=${CLUSTER_PROXY_THREADS:-auto}
CLUSTER_MODE=${CLUSTER_MODE:-proxy}
STAMP=$(date +%Y%m%d-%H%M%S)
export BENCH_HOME REPS DURATION

die() { echo "proxy-vs-nginx.sh: $*" >&2; exit 2; }
log() { echo "## $*" >&2; }

[ -f "$BENCH_DIR/peers.sh" ] || die "harness not found at $BENCH_DIR (set BENCH_DIR)"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
command -v python3 >/dev/null || die "python3 not found"
case "$CLUSTER_MODE" in proxy | shared-socket) ;; *) die "CLUSTER_MODE must be proxy or shared-socket" ;; esac
for f in $FLAVORS; do
  case "$f" in node | rust) ;; *) die "FLAVORS may list node and rust, not '$f'" ;; esac
done

# ---- tools: the harness's setup.sh installs wrk, nginx, haproxy, pm2 and its rust worker ---------
HARNESS_WORKER=$BENCH_HOME/rust-worker/release/rust-worker
if ! command -v wrk >/dev/null || { ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; } ||
  [ ! -x "$HARNESS_WORKER" ]; then
  log "running $BENCH_DIR/setup.sh (wrk, nginx or the harness rust worker is missing)"
  bash "$BENCH_DIR/setup.sh"
fi

# ---- our binaries --------------------------------------------------------------------------
. "$ROOT/benches/lib/release-bins.sh"
release_bins "$ROOT"
[ -x "$CLUSTER_BIN" ] || die "$CLUSTER_BIN missing (build failed or SKIP_BUILD=1 without a build)"

case "$RUST_WORKER" in
  harness) ;;
  hello)
    [ -x "$HELLO_BIN" ] || die "$HELLO_BIN missing"
    export RUST_WORKER_BIN=$HELLO_BIN ;;
  *) die "RUST_WORKER must be harness or hello" ;;
esac

# peers.sh expands $FRONT_PORT, $W, $WORKER_CMD and $RUN_DIR when it runs the line (bash -c), so
# they stay literal here; the binary's path is quoted now. The worker command goes through a
# config file rather than the command line: peers.sh counts every process whose command line
# contains the worker's path as a worker, which would put the primary's CPU and memory in the
# workers' column.
# shellcheck disable=SC2016
CANDIDATE_CMD=${CLUSTER_CANDIDATE_CMD:-'python3 '"$(printf '%q' "$ROOT/benches/candidate-config.py")"' "$RUN_DIR/cluster.config.json" '"$CLUSTER_PROXY_THREADS"' $WORKER_CMD && exec '"$(printf '%q' "$CLUSTER_BIN")"' start --config "$RUN_DIR/cluster.config.json" --host 127.0.0.1 --port $FRONT_PORT --workers $W'}
[ -z "${CLUSTER_EXTRA_CONFIG:-}" ] || log "candidate config adds: $CLUSTER_EXTRA_CONFIG"
CLUSTER_UPSTREAM=${CLUSTER_UPSTREAM:-tcp}
case "$CLUSTER_UPSTREAM" in tcp | unix) ;; *) die "CLUSTER_UPSTREAM must be tcp or unix" ;; esac
export CLUSTER_EXTRA_CONFIG CLUSTER_UPSTREAM CLUSTER_MODE BASELINE
log "candidate: $CANDIDATE_CMD (mode $CLUSTER_MODE, upstream $CLUSTER_UPSTREAM)"

# ---- runs ----------------------------------------------------------------------------------
RESULTS=$BENCH_HOME/results
mkdir -p "$RESULTS"
RAWS=()
failed=0
for flavor in $FLAVORS; do
  out=$RESULTS/$STAMP-proxy-vs-nginx-$flavor
  log "flavor=$flavor reps=$REPS duration=${DURATION}s topologies: $TOPOLOGIES -> $out"
  if FLAVOR=$flavor OUT_DIR=$out TOPOLOGIES=$TOPOLOGIES CANDIDATE_MODE=spawn \
    CANDIDATE_NAME=cluster CANDIDATE_CMD=$CANDIDATE_CMD bash "$BENCH_DIR/peers.sh"; then :; else
    log "peers.sh failed for flavor=$flavor (exit $?); see $out/logs"
    failed=1
  fi
  [ -f "$out/raw.tsv" ] && RAWS+=("$out/raw.tsv")
done
[ ${#RAWS[@]} -gt 0 ] || die "no results"

# ---- comparison: medians per topology and ratios to nginx-rr of the same run -----------------
COMPARISON=$RESULTS/$STAMP-proxy-vs-nginx-comparison.txt
python3 - "${RAWS[@]}" <<'PY' | tee "$COMPARISON"
import csv, os, statistics, sys

def median(rows, key):
    vals = []
    for r in rows:
        try:
            vals.append(float(r[key]))
        except (TypeError, ValueError):
            pass  # NA: wrk produced no result
    return statistics.median(vals) if vals else None

def fmt(v, spec):
    return "-" if v is None else format(v, spec)

for path in sys.argv[1:]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if not rows:
        continue
    groups = {}
    for r in rows:
        groups.setdefault(r["topology"], []).append(r)
    med = {t: (median(rs, "rps"), median(rs, "p50_us"), median(rs, "p99_us")) for t, rs in groups.items()}
    wanted = os.environ.get("BASELINE") or next(
        (t for t in ("nginx-rr", "pm2") if t in med), next(iter(med)))
    base_name = wanted if wanted in med else next(iter(med))
    base = med[base_name]
    ratio = lambda a, b: None if a is None or not b else a / b
    r0 = rows[0]
    print(f"### flavor={r0['flavor']} W={r0['W']} wrk -c{r0['conns']} -t{r0['threads']} "
          f"path={r0['path']} reps={len({r['rep'] for r in rows})}   ({path})")
    print(f"cluster mode: {os.environ.get('CLUSTER_MODE', 'proxy')}")
    print(f"| topology | req/s | p50 ms | p99 ms | errors | rps ÷ {base_name} | p99 ÷ {base_name} |")
    print("|---|---|---|---|---|---|---|")
    for t, rs in groups.items():
        rps, p50, p99 = med[t]
        errors = sum(int(float(r["errors"])) for r in rs if r["errors"] not in ("", "NA"))
        print(f"| {t} | {fmt(rps, '.0f')} | {fmt(None if p50 is None else p50 / 1000, '.3f')} "
              f"| {fmt(None if p99 is None else p99 / 1000, '.3f')} | {errors} "
              f"| {fmt(ratio(rps, base[0]), '.2f')} | {fmt(ratio(p99, base[2]), '.2f')} |")
    ours = med.get("cluster")
    for peer in dict.fromkeys((base_name, "pm2", "node-cluster")):
        other = med.get(peer)
        if ours and other and other[0]:
            print(f"cluster vs {peer}: req/s x{fmt(ratio(ours[0], other[0]), '.2f')}, "
                  f"p99 x{fmt(ratio(ours[2], other[2]), '.2f')} (higher req/s and lower p99 are better)")
    if "cluster" not in med:
        print("cluster: no rows (not in TOPOLOGIES, or it failed to start: see logs/)")
    print()
PY
log "comparison saved to $COMPARISON"
exit "$failed"
