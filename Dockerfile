# syntax=docker/dockerfile:1
#
# The `cluster` binary on a slim Debian, run as a non-root user (docs/deploy.md).
#
#   docker build -t cluster .
#   docker run --rm -p 3000:3000 --cpus 2 cluster         # one built-in demo worker per CPU (2)
#   docker run --rm -p 3000:3000 cluster start --workers 4
#
# tini is PID 1: it forwards `docker stop`'s SIGTERM to `cluster` (a graceful drain) and reaps
# the orphaned processes the kernel hands to PID 1, which `cluster` itself does not wait for.
# The healthcheck asks the running primary over its control socket (`cluster health`: the
# /api/admin/cluster/health route), so the image needs neither curl nor a network.
# deploy/docker/sveltekit/Dockerfile builds an app image on top of this one.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
WORKDIR /src
# The whole workspace: cargo loads every member's manifest, even to build one package.
COPY Cargo.toml Cargo.lock ./
COPY cluster-core cluster-core
COPY cluster-balancer cluster-balancer
COPY cluster-health cluster-health
COPY cluster-admin cluster-admin
COPY cluster-cli cluster-cli
COPY examples examples
COPY benches benches
# The registry and target/ are BuildKit caches: a rebuild after a source change recompiles
# the workspace's crates only. The binary is copied out of the cache mount.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p cluster-cli --bin cluster \
    && install -D -m 0755 target/release/cluster /out/cluster

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# One account for the primary and its workers (uid 10001, no login, no password); the
# directories it writes: /app (the default working directory), /run/cluster (control socket
# and pid file) and /var/log/cluster (the access log, a volume in docker-compose.yml).
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini=0.19.* \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 cluster \
    && useradd --system --uid 10001 --gid cluster --home-dir /app --shell /usr/sbin/nologin cluster \
    && install -d -o cluster -g cluster /app /run/cluster /var/log/cluster
COPY --from=build /out/cluster /usr/local/bin/cluster
WORKDIR /app
USER 10001:10001
ENV CLUSTER_RUNTIME_DIR=/run/cluster
EXPOSE 3000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["cluster", "health"]
ENTRYPOINT ["tini", "--", "cluster"]
CMD ["start"]
