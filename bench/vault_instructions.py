#!/usr/bin/env python3
"""Instructions per vault read of the whole `keyless serve` process, counted by callgrind (issue 18).

The vault's throughput on this machine class moves by ±15 % within minutes; an instruction count does
not. This starts `keyless serve` (SQLite, or --database-url) with its vault port under
`valgrind --tool=callgrind` with counting off, makes the vault, a 64-byte secret, a reader and its
token as `bench/vault.py` does, warms up, then counts every instruction of every server thread over a
fixed number of reads (`GET /secrets/db-password/`, what `SecretClient.get_secret` sends) over TLS with
keep-alive on --concurrency connections, and prints instructions per read: TLS, HTTP parsing, the
bearer check, the grant check, the decryption and the read's audit row (flushed before counting
stops). An A/B of two trees here holds whatever else runs; confirm a gain end to end with
`bench/vault.py`.

    .venv/bin/python bench/vault_instructions.py                           # 2,000 reads, c=8
    PYTHONPATH=/tmp/base/src:. .venv/bin/python bench/vault_instructions.py  # an exported older tree
    .venv/bin/python bench/vault_instructions.py --top 25                  # and the costliest functions

Needs valgrind (Debian's `valgrind` package).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import token_endpoint as te  # the sibling scripts: ports, the CLI command, the kept-alive loop, callgrind
from token_instructions import (
    READY_TIMEOUT,
    callgrind,
    costliest_and_clean_up,
    counted,
    have_valgrind,
    keep_alive_posts,
)
from vault import setup, wait_ready


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=2000, help="counted reads (default 2000)")
    p.add_argument("--warmup", type=int, default=300, help="reads before counting starts (default 300)")
    p.add_argument("--concurrency", type=int, default=8, help="kept-alive connections (default 8)")
    p.add_argument("--database-url", default=None, help="a PostgreSQL database to use (default: SQLite)")
    p.add_argument("--top", type=int, default=0, help="also print the N costliest functions (self cost)")
    args = p.parse_args(argv)
    if not have_valgrind():
        return 2

    work = Path(tempfile.mkdtemp(prefix="keyless-vault-instr-"))
    out_dir = work / "callgrind"
    out_dir.mkdir()
    port, vault_port = te.free_port(), te.free_port()
    data_dir = work / "data"
    init = te.cli_command("init", "--data-dir", str(data_dir), "--port", str(port), "--output", "json")
    subprocess.run(init + (["--database-url", args.database_url] if args.database_url else []),
                   check=True, capture_output=True, timeout=120)
    valgrind = callgrind(out_dir)
    log = work / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*valgrind, *te.cli_command("serve", "--data-dir", str(data_dir), "--port", str(port),
                                                            "--vault-port", str(vault_port))],
                                stdout=out, stderr=subprocess.STDOUT)
    started = time.monotonic()
    try:
        url, vault_url = f"https://{te.HOST}:{port}", f"https://{te.HOST}:{vault_port}"
        ca = str(data_dir / "ca" / "ca.pem")
        wait_ready(url, ca, proc, log, timeout=READY_TIMEOUT)
        token = setup(data_dir, url, vault_url, f"https://vault.localhost:{vault_port}")
        request = (f"GET /secrets/db-password/?api-version=7.6 HTTP/1.1\r\nHost: {te.HOST}:{vault_port}\r\n"
                   f"Authorization: Bearer {token}\r\n\r\n").encode("ascii")
        tls = ssl.create_default_context(cafile=ca)
        warm = asyncio.run(keep_alive_posts(te.HOST, vault_port, request, args.warmup, args.concurrency, tls))
        time.sleep(1.0)  # the warm-up's audit rows are written
        ok, total, files = counted(proc.pid, out_dir, lambda: asyncio.run(keep_alive_posts(
            te.HOST, vault_port, request, args.requests, args.concurrency, tls)),
            settle=1.0)  # the audit batch interval (0.5 s): this run's rows count
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(f"keyless serve under callgrind, vault read, {backend}, c={args.concurrency}: warm-up {warm}/{args.warmup} "
          f"ok, counted {ok}/{args.requests} ok ({time.monotonic() - started:.0f} s)")
    print(f"instructions per read: {total / max(ok, 1):,.0f}  (total {total:,}, {len(files)} dump file(s))")
    costliest_and_clean_up(files, args.top, work)
    return 0 if ok == args.requests else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
