#!/usr/bin/env python3
"""Tokens/s with 1, 2 and 3 `keyless serve` replicas on one PostgreSQL behind HAProxy, on this machine.

For each replica count this script starts the deployment the scale-out proof tests
(tests/support/cluster.py: PostgreSQL, `keyless init`, N replicas, HAProxy from
deploy/haproxy/haproxy.cfg), registers a resource, a client with a secret and a grant, warms up, and
drives POST /{tenant}/oauth2/v2.0/token (client_secret_post, ES256 tokens, TLS through HAProxy in
TCP mode, keep-alive) with wrk for --duration seconds at --connections connections. Nothing is
pinned: the replicas, PostgreSQL, HAProxy and wrk share every core, as they would on one small host.

Each row reports tokens/s, p50/p99 latency, non-200 answers, and the CPU each part used over the
run as a share of one core (from /proc: the replicas, PostgreSQL's processes, HAProxy, wrk), plus
"other": CPU used by processes that are not part of the run (on a shared machine, the noise), and
tokens per CPU-second the replicas used (the figure that other processes' noise disturbs least).

    .venv/bin/python bench/replicas.py                       # 1, 2, 3 replicas, 10 s each
    .venv/bin/python bench/replicas.py --replicas 1,3 --duration 5

Needs PostgreSQL on 127.0.0.1:5432 (trust), `haproxy` and `wrk` (Debian packages), Linux /proc.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.cluster import Cluster, replicas_behind_haproxy

from keyless.cli.common import ManagementClient, resolve

RESOURCE = "api://bench-replicas"
ENV = {"KEYLESS_SOURCE_FAILURE_BURST": "1000000", "KEYLESS_CLIENT_FAILURE_BURST": "1000000",
       "KEYLESS_SOURCE_CLIENT_FAILURE_BURST": "1000000"}
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a process and its reaped children used."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / TICKS


def _pids_named(name: str) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


def _machine_busy() -> float:
    """CPU seconds every core spent busy since boot."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]
    return (sum(parts[:8]) - idle) / TICKS


def _setup(cluster: Cluster) -> str:
    api = ManagementClient(resolve(cluster.data_dir, cluster.replicas[0].url, None))
    try:
        api.call("POST", "/applications", json_body={"display_name": "bench-api", "identifier_uri": RESOURCE,
                                                     "roles": ["Bench.Read"]})
        client = api.call("POST", "/applications", json_body={"display_name": "bench-client"})
        secret = api.call("POST", f"/applications/{client['client_id']}/secrets", json_body={})["secret"]
        api.call("POST", "/grants", json_body={"client_id": client["client_id"], "resource": RESOURCE,
                                               "role": "Bench.Read"})
    finally:
        api.close()
    return f"grant_type=client_credentials&client_id={client['client_id']}&client_secret={secret}" \
           f"&scope={RESOURCE}/.default"


def _lua(body: str, path: Path) -> Path:
    path.write_text(f'wrk.method = "POST"\nwrk.body = "{body}"\n'
                    'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n')
    return path


def _latency(report: str, pct: str) -> float:
    match = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s)", report, re.M)
    if not match:
        return float("nan")
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]


def run(count: int, duration: int, connections: int, haproxy: str, wrk: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, replicas_behind_haproxy(Path(tmp), haproxy, count=count,
                                                                        env=ENV) as cluster:
        script = _lua(_setup(cluster), Path(tmp) / "post.lua")
        subprocess.run([wrk, "-t1", "-c4", "-d2s", "-s", str(script), cluster.token_endpoint], capture_output=True,
                       check=False)  # warm-up: caches, connections, JIT-free but branch predictors and all
        ours = {"replicas": [r.proc.pid for r in cluster.replicas], "haproxy": [cluster.haproxy.pid],
                "postgres": _pids_named("postgres")}
        before = {k: sum(_cpu_of(p) for p in pids) for k, pids in ours.items()}
        busy_before, started = _machine_busy(), time.monotonic()
        usage_before = os.times()
        done = subprocess.run([wrk, "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script),
                               cluster.token_endpoint], capture_output=True, text=True, check=False)
        usage_after = os.times()
        elapsed = time.monotonic() - started
        busy = _machine_busy() - busy_before
        after = {k: sum(_cpu_of(p) for p in pids) for k, pids in ours.items()}
        report = done.stdout
        rate = re.search(r"Requests/sec:\s+([\d.]+)", report)
        bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", report)
        errors = re.search(r"Socket errors: (.*)", report)
        shares = {k: (after[k] - before[k]) / elapsed for k in ours}
        shares["wrk"] = ((usage_after.children_user + usage_after.children_system)
                         - (usage_before.children_user + usage_before.children_system)) / elapsed
        shares["other"] = max(0.0, busy / elapsed - sum(shares.values()))
        return {"count": count, "tokens_per_s": float(rate.group(1)) if rate else 0.0,
                "p50_ms": _latency(report, "50"), "p99_ms": _latency(report, "99"),
                "non_200": float(bad.group(1)) if bad else 0.0, "socket_errors": 1.0 if errors else 0.0, **shares}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", default="1,2,3")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    haproxy = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
    wrk = shutil.which("wrk")
    if not haproxy or not wrk:
        print("needs haproxy and wrk (apt-get install haproxy wrk)", file=sys.stderr)
        return 1
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} before the runs; "
          f"{args.connections} connections, {args.duration} s per run, ES256, client_secret_post via HAProxy")
    print("| replicas | tokens/s | p50 ms | p99 ms | non-200 | CPU: replicas | PostgreSQL | HAProxy | wrk | other "
          "| tokens per replica CPU-second |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    failed = False
    for count in (int(x) for x in args.replicas.split(",")):
        row = run(count, args.duration, args.connections, haproxy, wrk)
        failed |= bool(row["non_200"] or row["socket_errors"])
        print(f"| {count} | {row['tokens_per_s']:,.0f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | "
              f"{row['non_200']:.0f} | {row['replicas']:.2f} | {row['postgres']:.2f} | {row['haproxy']:.2f} | "
              f"{row['wrk']:.2f} | {row['other']:.2f} | {row['tokens_per_s'] / max(row['replicas'], 1e-9):,.0f} |",
              flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
