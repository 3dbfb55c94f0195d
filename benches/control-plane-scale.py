#!/usr/bin/env python3
"""control-plane-scale.py - the primary's control plane with many workers.

Starts `cluster start` (release build) with N `examples/hello` workers and the admin API on a
loopback port, waits until all N are ready, then measures:

  * GET /api/admin/cluster/status and GET /metrics: latency seen by a keep-alive client on
    loopback (median, p99, max of REQUESTS requests each) and the response size;
  * the health tick: the primary logs, at debug level, how long sampling /proc took, when the
    last liveness probe answered and how long judging took (cluster::health target); the
    median and max over the ticks seen in TICK_SECONDS at a 1 s interval;
  * the primary's idle CPU (utime+stime from /proc over IDLE_SECONDS, no traffic) and its RSS.

    benches/control-plane-scale.py 256            # one size
    benches/control-plane-scale.py 8 64 256       # several sizes: RSS growth per worker
    SKIP_BUILD=1 IDLE_SECONDS=60 benches/control-plane-scale.py 64

Settings (environment): SKIP_BUILD=1, REQUESTS=200, TICK_SECONDS=20, IDLE_SECONDS=30,
HEALTH_INTERVAL_MS=1000 (the idle CPU is measured at the default 5000 ms interval in a second
phase unless IDLE_AT_DEFAULT=0), CARGO_TARGET_DIR. Results are printed as a Markdown table.
Processes are stopped (SIGTERM, then the cluster's own graceful stop) when it exits.
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
CLUSTER = os.path.join(TARGET, "release", "cluster")
HELLO = os.path.join(TARGET, "release", "examples", "hello")
REQUESTS = int(os.environ.get("REQUESTS", "200"))
TICK_SECONDS = float(os.environ.get("TICK_SECONDS", "20"))
IDLE_SECONDS = float(os.environ.get("IDLE_SECONDS", "30"))
HEALTH_INTERVAL_MS = int(os.environ.get("HEALTH_INTERVAL_MS", "1000"))
HZ = os.sysconf("SC_CLK_TCK")
TICK = re.compile(r"health tick (sampled|judged).*?workers=(\d+)(.*)")
FIELD = re.compile(r"(\w+_ms)=([0-9.]+)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def get(conn, path):
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"GET {path}: {resp.status}")
    return body


def timed(admin_port, path):
    conn = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=10)
    get(conn, path)  # warm the connection
    times, size = [], 0
    for _ in range(REQUESTS):
        t0 = time.perf_counter()
        size = len(get(conn, path))
        times.append((time.perf_counter() - t0) * 1e3)
    conn.close()
    return times, size


def ready_count(admin_port):
    conn = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=10)
    status = json.loads(get(conn, "/api/admin/cluster/status"))
    conn.close()
    return status.get("readyWorkers", 0)


def run(n, interval_ms, log_level):
    d = tempfile.mkdtemp(prefix="control-plane-scale.")
    port, admin_port = free_port(), free_port()
    config = {
        "workers": n,
        "port": port,
        "host": "127.0.0.1",
        "scaling": {"maxWorkers": max(n, 128)},
        "admin": {"listen": f"127.0.0.1:{admin_port}"},
        "runtimeDir": os.path.join(d, "run"),
        "healthCheckInterval": interval_ms,
        "logLevel": log_level,
    }
    with open(os.path.join(d, "cluster.config.json"), "w") as f:
        json.dump(config, f)
    log = open(os.path.join(d, "cluster.out"), "w+")
    proc = subprocess.Popen([CLUSTER, "start", "--", HELLO], cwd=d, stdout=log, stderr=log)
    return d, proc, log, admin_port


def stop(d, proc, log):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()
    shutil.rmtree(d, ignore_errors=True)


def wait_ready(proc, admin_port, n):
    t0 = time.monotonic()
    while time.monotonic() - t0 < 300:
        if proc.poll() is not None:
            raise RuntimeError("the cluster exited before it was ready")
        try:
            if ready_count(admin_port) == n:
                return time.monotonic() - t0
        except (OSError, RuntimeError, ValueError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{n} workers were not ready within 300 s")


def ticks_from(log):
    log.flush()
    log.seek(0)
    phases = {}
    for line in log:
        m = TICK.search(line)
        if m and int(m.group(2)) > 0:
            for key, value in FIELD.findall(m.group(3)):
                phases.setdefault(key, []).append(float(value))
    return phases


def measure(n):
    row = {"workers": n}
    d, proc, log, admin_port = run(n, HEALTH_INTERVAL_MS, "info,cluster::health=debug")
    try:
        row["ready s"] = wait_ready(proc, admin_port, n)
        time.sleep(2)
        for name, path in (("status", "/api/admin/cluster/status"), ("metrics", "/metrics")):
            times, size = timed(admin_port, path)
            row[f"{name} ms p50/p99/max"] = (statistics.median(times), pct(times, 99), max(times))
            row[f"{name} KiB"] = size / 1024
        time.sleep(TICK_SECONDS)
        for key, values in sorted(ticks_from(log).items()):
            row[f"tick {key} p50/max"] = (statistics.median(values), max(values))
        row["rss MiB"] = rss_mib(proc.pid)
        if os.environ.get("IDLE_AT_DEFAULT", "1") == "1":
            stop(d, proc, log)
            d, proc, log, admin_port = run(n, 5000, "info")
            wait_ready(proc, admin_port, n)
            time.sleep(5)
        t0, c0 = time.monotonic(), cpu_ticks(proc.pid)
        time.sleep(IDLE_SECONDS)
        used = (cpu_ticks(proc.pid) - c0) / HZ
        row["idle cpu %"] = used / (time.monotonic() - t0) * 100
        row["idle rss MiB"] = rss_mib(proc.pid)
    finally:
        stop(d, proc, log)
    return row


def cell(value):
    if isinstance(value, tuple):
        return " / ".join(f"{v:.2f}" for v in value)
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [256]
    if os.environ.get("SKIP_BUILD") != "1":
        subprocess.run(
            ["cargo", "build", "--release", "-q", "-p", "cluster-cli", "--bin", "cluster",
             "-p", "examples", "--example", "hello"],
            cwd=ROOT, check=True)
    rows = []
    for n in sizes:
        print(f"## {n} workers", file=sys.stderr)
        rows.append(measure(n))
        print(json.dumps(rows[-1], default=str), file=sys.stderr)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(cell(r.get(k, "")) for k in keys) + " |")
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        growth = (b["idle rss MiB"] - a["idle rss MiB"]) / (b["workers"] - a["workers"]) * 1024
        print(f"\nprimary RSS growth: {growth:.0f} KiB per worker "
              f"({a['workers']} -> {b['workers']} workers, idle)")


if __name__ == "__main__":
    main()
