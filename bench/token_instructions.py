#!/usr/bin/env python3
"""Instructions per token of the whole `keyless serve` process, counted by callgrind (issue 18).

Throughput on a shared or throttled machine moves with the neighbours (hypervisor steal, other
processes); an instruction count does not. This starts `keyless serve` (SQLite, the given signing
algorithm) under `valgrind --tool=callgrind` with counting off, registers the benchmark client
(`bench/token_endpoint.py`'s resource, role and secret), warms up, then counts every instruction of
every server thread over a fixed number of client_secret_basic token requests sent over TLS with
keep-alive on --concurrency connections, and prints instructions per token. Everything the server does
is in the count: TLS, HTTP parsing, the token service, the signature, the sign-in rows (flushed before
counting stops). Instructions are not time (cache misses and system calls cost more than their count),
so confirm a gain end to end with `bench/peer_compare.py` on a quiet machine; but an A/B of two builds
here holds whatever else runs.

    .venv/bin/python bench/token_instructions.py                          # ES256, 2,000 tokens, c=8
    PYTHONPATH=/tmp/base/src .venv/bin/python bench/token_instructions.py  # an exported older tree
    .venv/bin/python bench/token_instructions.py --top 25                  # and the costliest functions
    .venv/bin/python bench/token_instructions.py --auth private_key_jwt    # an assertion per token

Needs valgrind (Debian's `valgrind` package: callgrind_control and callgrind_annotate come with it).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

import token_endpoint as te  # the sibling script: init, registration, request shapes

READY_TIMEOUT = 300.0  # the server's start-up runs under valgrind


async def send(server: te.Server, bodies: list[bytes], basic: str | None, count: int, concurrency: int) -> int:
    """`count` token POSTs over `concurrency` kept-alive TLS connections, the bodies taken in turn (a
    client assertion's `jti` may be used once); returns the 200s."""
    auth = f"Authorization: Basic {basic}\r\n" if basic else ""
    requests = [(f"POST {server.token_path} HTTP/1.1\r\nHost: {te.HOST}:{server.port}\r\n{auth}"
                 f"Content-Type: application/x-www-form-urlencoded\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n").encode("ascii") + body for body in bodies]
    return await keep_alive_posts(te.HOST, server.port, requests, count, concurrency,
                                  ssl.create_default_context(cafile=server.ca))


async def keep_alive_posts(host: str, port: int, request: bytes | list[bytes], count: int, concurrency: int,
                           tls: ssl.SSLContext | None = None) -> int:
    """`request` (or each of a list in turn, round and round) sent `count` times over `concurrency`
    kept-alive connections, each answer read to its end before the next request on that connection;
    returns how many were 200s."""
    requests = request if isinstance(request, list) else [request]
    left = [count]
    ok = [0]

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port, ssl=tls)
        try:
            while left[0] > 0:
                left[0] -= 1
                writer.write(requests[left[0] % len(requests)])
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
                await reader.readexactly(length)
                ok[0] += head.startswith(b"HTTP/1.1 200")
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return ok[0]


def costliest_and_clean_up(files: list[Path], top: int, work: Path) -> None:
    """Print the `top` costliest functions of the counted dump (self cost), then remove the work
    directory unless KEEP is set in the environment."""
    if top and files:
        biggest = max(files, key=lambda path: path.stat().st_size)  # the counted dump (annotate takes one)
        annotate = subprocess.run(["callgrind_annotate", "--inclusive=no", str(biggest)],
                                  capture_output=True, text=True, check=False)
        lines = [line for line in annotate.stdout.splitlines() if re.match(r"^\s*[\d,]+ \(", line)]
        print("\n".join(lines[:top]))
    if os.environ.get("KEEP"):
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


def callgrind_control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True, timeout=120)


def have_valgrind() -> bool:
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("needs valgrind (apt-get install valgrind)", file=sys.stderr)
        return False
    return True


def callgrind(out_dir: Path) -> list[str]:
    """The command prefix: callgrind with counting off until `counted` turns it on, all threads in one
    count, dumps in `out_dir`."""
    return ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--separate-threads=no",
            f"--callgrind-out-file={out_dir}/callgrind.out.%p"]


def counted(pid: int, out_dir: Path, run: Callable[[], int], settle: float = 0.0) -> tuple[int, int, list[Path]]:
    """Count every instruction of process `pid` while `run` runs (and `settle` seconds after, for the
    batched log rows it caused): (what `run` returned, the instructions, the dump files)."""
    callgrind_control(pid, "-z")
    callgrind_control(pid, "-i", "on")
    ok = run()
    time.sleep(settle)
    callgrind_control(pid, "-i", "off")
    callgrind_control(pid, "-d")
    total, files = total_instructions(out_dir)
    return ok, total, files


def total_instructions(out_dir: Path) -> tuple[int, list[Path]]:
    """Sum of the `totals:` line (the `summary:` one when there is none) over the dump files callgrind
    wrote; the file written at exit counts nothing (counting was off by then)."""
    files = sorted(out_dir.glob("callgrind.out.*"))
    total = 0
    for path in files:
        counts = {key: int(value) for key, value in re.findall(r"^(summary|totals): (\d+)", path.read_text(
            errors="replace"), flags=re.MULTILINE)}
        total += counts.get("totals", counts.get("summary", 0))
    return total, files


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--alg", default="ES256", choices=("ES256", "RS256"), help="the tenant's signing algorithm")
    p.add_argument("--auth", default="secret", choices=("secret", "private_key_jwt"),
                   help="client_secret_basic, or private_key_jwt with a fresh assertion per request")
    p.add_argument("--requests", type=int, default=2000, help="counted token requests (default 2000)")
    p.add_argument("--warmup", type=int, default=300, help="requests before counting starts (default 300)")
    p.add_argument("--concurrency", type=int, default=8, help="kept-alive connections (default 8)")
    p.add_argument("--top", type=int, default=0, help="also print the N costliest functions (inclusive)")
    args = p.parse_args(argv)
    if not have_valgrind():
        return 2

    work = Path(tempfile.mkdtemp(prefix="keyless-instr-"))
    out_dir = work / "callgrind"
    out_dir.mkdir()
    server = te.Server(alg=args.alg, workdir=work)
    valgrind = callgrind(out_dir)
    original = te.cli_command
    te.cli_command = lambda *a: [*valgrind, *original(*a)] if a and a[0] == "serve" else original(*a)  # type: ignore[assignment]
    started = time.monotonic()
    try:
        server.ready_timeout = READY_TIMEOUT
        server.start()
        client_id, secret = te.register_client(server)
        basic: str | None = None
        if args.auth == "secret":
            body = f"grant_type=client_credentials&scope={quote(te.RESOURCE_URI + '/.default', safe='')}".encode()
            basic = base64.b64encode(f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()).decode()
            warm_bodies, bodies = [body], [body]
        else:  # one assertion per request, the same kind as the token's signing algorithm
            workload = te.JwtWorkload(server, client_id, args.alg)  # not `work`: that is the directory to remove
            workload.register()
            warm_bodies, bodies = workload.bodies(args.warmup), workload.bodies(args.requests)
        assert server.proc is not None
        pid = server.proc.pid
        warm = asyncio.run(send(server, warm_bodies, basic, args.warmup, args.concurrency))
        time.sleep(1.0)  # the warm-up's sign-in rows are written
        ok, total, files = counted(pid, out_dir, lambda: asyncio.run(send(server, bodies, basic, args.requests,
                                                                          args.concurrency)),
                                   settle=1.0)  # the sign-in batch interval (0.5 s): this run's rows count
    finally:
        te.cli_command = original  # type: ignore[assignment]
        server.stop()
    method = "client_secret_basic" if args.auth == "secret" else "private_key_jwt"
    print(f"keyless serve under callgrind, {args.alg}, {method}, c={args.concurrency}: "
          f"warm-up {warm}/{args.warmup} ok, counted {ok}/{args.requests} ok ({time.monotonic() - started:.0f} s)")
    print(f"instructions per token: {total / max(ok, 1):,.0f}  (total {total:,}, {len(files)} dump file(s))")
    costliest_and_clean_up(files, args.top, work)
    return 0 if ok == args.requests else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
