# Sourced by the benchmark scripts: the release binaries they run.
#
#   . "$ROOT/benches/lib/release-bins.sh"
#   release_bins "$ROOT"     # builds unless SKIP_BUILD=1; sets CLUSTER_BIN and HELLO_BIN
#
# The target directory comes from `cargo metadata`, so CARGO_TARGET_DIR and a workspace
# `target-dir` setting are honoured.

release_bins() {
  local root=$1 target
  if [ "${SKIP_BUILD:-0}" != 1 ]; then
    echo "## building cluster and the hello example (release)" >&2
    cargo build --release --manifest-path "$root/Cargo.toml" -p cluster-cli --bin cluster \
      -p examples --example hello
  fi
  target=$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  CLUSTER_BIN=$target/release/cluster
  HELLO_BIN=$target/release/examples/hello
}
