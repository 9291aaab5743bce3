#!/usr/bin/env python3
"""`keyless posture` over 20,000 applications, end to end, on SQLite and PostgreSQL (issue 13: under 2 s).

For each backend the script makes a fresh installation (`keyless init`, and a new PostgreSQL database
for the second), seeds it straight into the database in batches (bounded: well under a minute), starts
`keyless serve` and times `keyless posture -o json` — the CLI getting its token, following every page
of `GET /posture` (1,000 workloads a page) and printing all of it — and the default table: once right
after the import (each certificate's CA signature is verified once and the verdict kept, migration
0017), then cold (a restarted server, nothing cached in memory) and warm (answered from the pages the
server keeps), the filtered report, and warm after a write (which drops the kept pages).

The seeded tenant (default 20,000 applications) is a mix meant to look like an estate in mid-climb:
45 % applications on secrets (a third with two secrets), 20 % on certificates (every one a distinct
certificate signed by the installation's own CA, so each costs a real signature check; one in ten a
foreign self-signed one), 10 % federated, 15 % user-assigned managed identities assigned to one of 50
hosts, 10 % resource APIs with no credential; and a 30-day sign-in log of 5 sign-ins per workload
plus the hosts' agents (about 100,000 rows) from 300 addresses, 50 of them hosts'.

    .venv/bin/python bench/posture.py                    # both backends (PostgreSQL where it answers)
    .venv/bin/python bench/posture.py --apps 2000 --backends sqlite

Prints one line per measurement and a summary table, with the server's and the CLI's CPU seconds
beside each wall time (on a shared machine the wall time includes waiting for a core; the CPU time
does not); exit status 2 when a cold or warm report (`-o json` or the table) takes 2 s or more of wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402
from tests.support.server import (  # noqa: E402
    RunningServer,
    cli_command,
    postgres_available,
    postgres_database,
    restart_server,
    start_server,
    stop_server,
)

from keyless.crypto import aead  # noqa: E402
from keyless.crypto.ca import IssuedCert, issue_client_certificate  # noqa: E402
from keyless.crypto.certificates import load_certificate  # noqa: E402
from keyless.crypto.client_keys import (  # noqa: E402
    certificate_signing_request,
    generate_client_key,
    self_signed_certificate,
)
from keyless.server.datadir import CA_KEY_AAD, DataDir, load_kek  # noqa: E402
from keyless.store import db  # noqa: E402
from keyless.store import tables as t  # noqa: E402

DAY = 86400.0
BATCH = 2000
HOSTS = 50
ADDRESSES = 300
TARGET = 2.0


def _ca(data_dir: Path) -> IssuedCert:
    data = DataDir(data_dir)
    key = aead.open_sealed(load_kek(data), data.ca_key.read_bytes(), CA_KEY_AAD)
    return IssuedCert(cert_pem=data.ca_cert.read_bytes(), key_der=key)


def _cert_row(pem: bytes, cert_id: str, owner_kind: str, owner: str, now: float) -> dict[str, Any]:
    info = load_certificate(pem)
    return {"id": cert_id, "owner_kind": owner_kind, "owner_id": owner, "x5t": info.x5t, "x5t_s256": info.x5t_s256,
            "der": info.der, "subject": info.subject, "key_type": info.key_type, "key_size": info.key_size,
            "not_before": info.not_before, "not_after": info.not_after, "created_at": now - 20 * DAY,
            "display_name": "", "last_used_at": now - DAY, "revoked_at": None}


def plan(tenant: str, apps: int, ca: IssuedCert, now: float, rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    """Every row to insert, by table (built in memory first so the timed part is the inserts only)."""
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in (
        "applications", "client_secrets", "certificates", "federated_credentials", "hosts", "managed_identities",
        "identity_assignments", "signin_log")}
    addresses = [f"10.{i // 250}.{i % 250}.{1 + i % 7}" for i in range(ADDRESSES)]
    host_ids = []
    csr = certificate_signing_request(generate_client_key("p256"), "bench")

    def app(cid: str, name: str, managed: str | None = None, uri: str | None = None) -> None:
        rows["applications"].append({
            "client_id": cid, "tenant_id": tenant, "object_id": str(uuid.uuid4()), "display_name": name,
            "enabled": True, "identifier_uri": uri, "open_to_tenant": False, "created_at": now - 200 * DAY,
            "managed_resource_id": managed})

    def signins(cid: str, cred: str, kind: str, sources: list[str], n: int = 5) -> None:
        for _ in range(n):
            rows["signin_log"].append({
                "time": now - rng.random() * 30 * DAY, "tenant_id": tenant, "client_id": cid, "credential_id": cred,
                "credential_type": kind, "resource": "api://bench", "result": "success", "source": rng.choice(sources),
                "grant_type": "client_credentials"})

    for h in range(HOSTS):
        hid, sys_id = str(uuid.uuid4()), str(uuid.uuid4())
        host_ids.append(hid)
        app(sys_id, f"host-{h:02d}", managed=f"/tenants/{tenant}/hosts/host-{h:02d}")
        rows["hosts"].append({"id": hid, "tenant_id": tenant, "name": f"host-{h:02d}", "system_client_id": sys_id,
                              "created_at": now - 200 * DAY, "enrolled_at": now - 200 * DAY})
        rows["managed_identities"].append({"client_id": sys_id, "tenant_id": tenant, "name": f"host-{h:02d}",
                                           "kind": "system", "resource_id": f"/h/{h}", "host_id": hid,
                                           "created_at": now - 200 * DAY})
        cert_id = str(uuid.uuid4())
        pem = issue_client_certificate(ca, csr, common_name=f"host:host-{h:02d}", now=now - DAY)
        rows["certificates"].append(_cert_row(pem, cert_id, "host", hid, now))
        signins(sys_id, cert_id, "certificate", [addresses[h]], n=20)
    for i in range(apps - HOSTS):
        cid, roll = str(uuid.uuid4()), rng.random()
        sources = [addresses[rng.randrange(ADDRESSES)] for _ in range(rng.choice((1, 1, 2, 5)))]
        if roll < 0.45:
            app(cid, f"secret-app-{i}")
            for s in range(2 if i % 3 == 0 else 1):
                sid = str(uuid.uuid4())
                rows["client_secrets"].append({
                    "id": sid, "client_id": cid, "hint": "kls_Ab3", "digest": os.urandom(32), "pepper_id": "p1",
                    "display_name": "", "created_at": now - (100 + s) * DAY,
                    "expires_at": now + rng.choice((20, 200)) * DAY, "last_used_at": now - DAY, "revoked_at": None})
                signins(cid, sid, "secret", sources)
        elif roll < 0.65:
            app(cid, f"cert-app-{i}")
            cert_id = str(uuid.uuid4())
            pem = (self_signed_certificate(generate_client_key("p256"), "foreign", now=now - DAY) if i % 10 == 0
                   else issue_client_certificate(ca, csr, common_name=f"cert-app-{i}", now=now - DAY))
            rows["certificates"].append(_cert_row(pem, cert_id, "application", cid, now))
            signins(cid, cert_id, "certificate", sources)
        elif roll < 0.75:
            app(cid, f"fed-app-{i}")
            fid = str(uuid.uuid4())
            rows["federated_credentials"].append({
                "id": fid, "tenant_id": tenant, "owner_type": "application", "owner_id": cid, "name": "gh",
                "issuer": "https://token.actions.githubusercontent.com",
                "subject": "repo:acme/*" if i % 5 == 0 else f"repo:acme/app{i}:ref:refs/heads/main",
                "subject_is_pattern": i % 5 == 0, "audience": "api://AzureADTokenExchange", "claims": "{}",
                "algorithms": "RS256", "replay": "reuse", "max_token_lifetime": 3600, "description": "",
                "created_at": now - 50 * DAY})
            signins(cid, fid, "federated", sources)
        elif roll < 0.90:
            app(cid, f"id-{i}", managed=f"/tenants/{tenant}/userAssignedIdentities/id-{i}")
            h = rng.randrange(HOSTS)
            rows["managed_identities"].append({"client_id": cid, "tenant_id": tenant, "name": f"id-{i}", "kind": "user",
                                               "resource_id": f"/u/{i}", "host_id": None, "created_at": now - 90 * DAY})
            rows["identity_assignments"].append({"host_id": host_ids[h], "identity_client_id": cid,
                                                 "created_at": now - 90 * DAY})
            signins(cid, rows["certificates"][h]["id"], "certificate", [addresses[h]])
        else:
            app(cid, f"api-{i}", uri=f"api://bench-{i}")
    return rows


async def seed(url: str, rows: dict[str, list[dict[str, Any]]]) -> None:
    engine = db.create_engine(url)
    try:
        for name, batch in rows.items():
            table = getattr(t, name)
            for start in range(0, len(batch), BATCH):
                async with engine.begin() as conn:
                    await conn.execute(insert(table), batch[start:start + BATCH])
    finally:
        await engine.dispose()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(args: list[str], env: dict[str, str], server_pid: int) -> tuple[float, float, float, int]:
    """(wall seconds, the server's CPU seconds, the CLI's CPU seconds, workloads printed)."""
    server_before = cpu_seconds(server_pid)
    started = time.perf_counter()
    before = os.times()
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - started
    after = os.times()
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {done.stderr}")
    cli = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    count = len(json.loads(done.stdout)["workloads"]) if done.stdout.startswith("{") else 0
    return elapsed, cpu_seconds(server_pid) - server_before, cli, count


@contextmanager
def backend(name: str) -> Iterator[str | None]:
    if name == "sqlite":
        yield None
        return
    with postgres_database() as url:
        yield url


def measure(name: str, apps: int, runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kl-posture-") as tmp, backend(name) as url:
        # The expiry scan (every 5 minutes, on one replica) would notice ~6,000 of this estate's credentials
        # on the first scan after each restart, in this process: a daily scan keeps it out of the figures.
        server = start_server(Path(tmp), database_url=url, env={"KEYLESS_NOTICE_SCAN_INTERVAL": "86400"})
        try:
            now, rng = time.time(), random.Random(7)
            started = time.perf_counter()
            rows = plan(server.tenant_id, apps, _ca(server.data_dir), now, rng)
            built = time.perf_counter() - started
            database = url or db.sqlite_url(server.data_dir / "keyless.db")
            started = time.perf_counter()
            asyncio.run(seed(database, rows))
            seeded = time.perf_counter() - started
            print(f"{name}: planned {sum(map(len, rows.values())):,} rows in {built:.1f} s, inserted in {seeded:.1f} s "
                  f"({len(rows['signin_log']):,} sign-ins)", flush=True)
            env = {**os.environ, "KEYLESS_DATA_DIR": str(server.data_dir)}
            full, table_cmd = cli_command("posture", "-o", "json"), cli_command("posture")
            # The first report after the import checks each certificate's CA signature once and keeps
            # the verdict (migration 0017); every later server start reads it.
            imported = timed(full, env, server.proc.pid)
            cold_table = timed(table_cmd, env, restart(server))  # a fresh server: nothing cached in memory
            cold = timed(full, env, restart(server))
            pid = server.proc.pid
            warm = [timed(full, env, pid) for _ in range(runs)]
            first = [timed(cli_command("posture", "--rung", "federated", "-o", "json"), env, pid)[0]
                     for _ in range(runs)]
            # The default output, the table people read (it cost 13 CLI CPU-seconds when rich laid it out).
            table = sorted(timed(table_cmd, env, pid) for _ in range(runs))[runs // 2]
            # Warm runs are answered from the pages the server keeps; a write drops them, so this is
            # what a report costs on a warm server after any change (a new application each time).
            changed = []
            for n in range(runs):
                subprocess.run(cli_command("app", "create", f"bench-touch-{n}", "-o", "json"), env=env,
                               capture_output=True, check=True, timeout=60)
                changed.append(timed(full, env, pid))
            after_write = sorted(changed)[runs // 2]
            median = sorted(warm)[len(warm) // 2]
            result = {"backend": name, "workloads": cold[3], "imported": imported[0],
                      "imported_server_cpu": imported[1], "cold": cold[0], "cold_server_cpu": cold[1],
                      "cold_cli_cpu": cold[2], "cold_table": cold_table[0], "cold_table_server_cpu": cold_table[1],
                      "warm": median[0], "warm_server_cpu": median[1], "warm_cli_cpu": median[2],
                      "filtered": statistics.median(first), "table": table[0], "table_server_cpu": table[1],
                      "table_cli_cpu": table[2], "after_write": after_write[0],
                      "after_write_server_cpu": after_write[1], "after_write_cli_cpu": after_write[2],
                      "load": os.getloadavg()[0]}
            print(f"{name}: {cold[3]:,} workloads; first report after the import {imported[0]:.2f} s (server CPU "
                  f"{imported[1]:.2f} s); cold {cold[0]:.2f} s (server CPU {cold[1]:.2f} s, CLI CPU {cold[2]:.2f} s), "
                  f"cold table {cold_table[0]:.2f} s (server CPU {cold_table[1]:.2f} s); warm median "
                  f"{median[0]:.2f} s (server CPU {median[1]:.2f} s, CLI CPU {median[2]:.2f} s), --rung federated "
                  f"{result['filtered']:.2f} s, table {table[0]:.2f} s (server CPU {table[1]:.2f} s, "
                  f"CLI CPU {table[2]:.2f} s); after a write {after_write[0]:.2f} s (server CPU "
                  f"{after_write[1]:.2f} s, CLI CPU {after_write[2]:.2f} s); load average {result['load']:.1f}",
                  flush=True)
            return result
        finally:
            stop_server(server)


def restart(server: RunningServer) -> int:
    """Stop and start `keyless serve` (a cold report: no cache in memory); the new process's pid, once
    the server is idle: its start-up work is not the report's cost."""
    stop_server(server)
    pid = restart_server(server).proc.pid
    deadline, before = time.monotonic() + 60, cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = cpu_seconds(pid)
        if now - before < 0.05:
            break
        before = now
    return pid


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--apps", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    results = []
    for name in args.backends.split(","):
        if name == "postgresql" and postgres_available() is not None:
            print("postgresql: skipped, no server answers", flush=True)
            continue
        results.append(measure(name, args.apps, args.runs))
    print("\n| backend | workloads | first after import (server CPU) | cold `-o json` (server CPU, CLI CPU) "
          "| cold table (server CPU) | warm `-o json` (server CPU, CLI CPU) | --rung federated "
          "| warm table (server CPU, CLI CPU) | `-o json` after a write (server CPU, CLI CPU) | load |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['backend']} | {r['workloads']:,} | {r['imported']:.2f} s ({r['imported_server_cpu']:.2f} s) "
              f"| {r['cold']:.2f} s ({r['cold_server_cpu']:.2f} s, {r['cold_cli_cpu']:.2f} s) "
              f"| {r['cold_table']:.2f} s ({r['cold_table_server_cpu']:.2f} s) "
              f"| {r['warm']:.2f} s ({r['warm_server_cpu']:.2f} s, {r['warm_cli_cpu']:.2f} s) "
              f"| {r['filtered']:.2f} s "
              f"| {r['table']:.2f} s ({r['table_server_cpu']:.2f} s, {r['table_cli_cpu']:.2f} s) "
              f"| {r['after_write']:.2f} s ({r['after_write_server_cpu']:.2f} s, {r['after_write_cli_cpu']:.2f} s) "
              f"| {r['load']:.1f} |")
    return 2 if any(r[k] >= TARGET for r in results
                    for k in ("cold", "cold_table", "warm", "table", "after_write")) else 0


if __name__ == "__main__":
    sys.exit(main())
