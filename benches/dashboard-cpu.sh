#!/usr/bin/env bash
# dashboard-cpu.sh - the primary's CPU with and without one dashboard page open.
#
#   benches/dashboard-cpu.sh 64 60     # 64 hello workers, 60 s per phase
#
# Starts a release cluster of hello workers with admin.listen on loopback, reads the
# primary's utime+stime from /proc over SECONDS, then opens /admin/cluster in a headless
# Chromium (Debian's `chromium`) and reads it again. Prints percent of one core per phase.
# Ports: PORT (default 38111) and ADMIN_PORT (default 39111) on 127.0.0.1.
set -euo pipefail
N=${1:-8}
S=${2:-60}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
PORT=${PORT:-38111}
ADMIN_PORT=${ADMIN_PORT:-39111}
[[ ${SKIP_BUILD:-} ]] || cargo build --release -q -p cluster-cli -p examples --example hello
D=$(mktemp -d /tmp/dashboard-cpu.XXXXXX)
cat > "$D/cluster.config.json" <<JSON
{ "workers": $N, "port": $PORT, "host": "127.0.0.1", "scaling": { "maxWorkers": $((N > 128 ? N : 128)) },
  "admin": { "listen": "127.0.0.1:$ADMIN_PORT" }, "runtimeDir": "$D/run" }
JSON
cd "$D"
"$TARGET_DIR/release/cluster" start -- "$TARGET_DIR/release/examples/hello" > cluster.out 2>&1 &
P=$!
C=
trap 'kill $C 2>/dev/null; kill -TERM $P 2>/dev/null; wait; sleep 1; rm -rf "$D" 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$ADMIN_PORT/api/admin/cluster/health" >/dev/null 2>&1 && break
  sleep 1
done
sleep 5
HZ=$(getconf CLK_TCK)
ticks() { awk '{print $14+$15}' "/proc/$P/stat"; }
measure() {
  local t0 t1
  t0=$(ticks); sleep "$S"; t1=$(ticks)
  python3 -c "print(f'{($t1-$t0)/$HZ/$S*100:.2f} % of a core')"
}
echo "workers=$N no page: $(measure)"
chromium --headless=new --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$D/chrome" --window-size=1280,900 \
  "http://127.0.0.1:$ADMIN_PORT/admin/cluster" > chrome.out 2>&1 &
C=$!
sleep 10
echo "connections from the page: $(ss -tn state established "( dport = :$ADMIN_PORT )" | tail -n +2 | wc -l)"
echo "workers=$N one page open: $(measure)"
