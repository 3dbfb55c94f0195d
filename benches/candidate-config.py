#!/usr/bin/env python3
"""Writes the benchmark candidate's cluster.config.json.

    candidate-config.py OUT PROXY_THREADS WORKER_PROGRAM [WORKER_ARGS...]

PROXY_THREADS is a number or "auto" (the product's default).

The worker command goes into the file (not the command line: peers.sh counts every process whose
command line contains the worker's path as a worker). CLUSTER_EXTRA_CONFIG, when set, is a JSON
object merged in depth over the generated one, e.g. to run with a stage switched on:

    CLUSTER_EXTRA_CONFIG='{"performance":{"enableCompression":true}}'

CLUSTER_UPSTREAM, when set, is the `upstream` key: "unix" runs the workers on Unix sockets
(SOCKET_PATH) instead of loopback TCP ports, "tcp" is the default.
CLUSTER_MODE (proxy | shared-socket) sets `mode`; in shared-socket mode no proxy setting is
written (they would not apply, and the primary would warn).
"""
import json
import os
import sys


def merge(base, extra):
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


out, threads, program, *args = sys.argv[1:]
config = {
    "command": program,
    "args": args,
    "performance": {"proxyThreads": "auto" if threads == "auto" else int(threads)},
}
upstream = os.environ.get("CLUSTER_UPSTREAM", "").strip()
if upstream:
    config["upstream"] = upstream
# `mode: "shared-socket"`: the workers accept on the front socket (fd 3, LISTEN_FDS/LISTEN_PID),
# as under pm2 and Node's cluster module; the proxy settings above then do not apply.
mode = os.environ.get("CLUSTER_MODE", "").strip()
if mode == "shared-socket":
    config = {"command": program, "args": args, "mode": mode}
elif mode:
    config["mode"] = mode
extra = os.environ.get("CLUSTER_EXTRA_CONFIG", "").strip()
if extra:
    merge(config, json.loads(extra))
with open(out, "w") as fh:
    json.dump(config, fh, indent=2)
