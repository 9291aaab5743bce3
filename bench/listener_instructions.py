#!/usr/bin/env python3
"""Instructions per token POST spent by the listener alone, counted by callgrind (issue 18).

`bench/token_instructions.py` counts the whole server, where the token service (client
authentication, the signature, the sign-in rows) is most of the count and a change to the listener
moves the total by a few percent, within reach of its noise. This isolates the listener: a child
process runs the server's own protocol (`keyless.server.token_protocol.token_protocol`, so
`GuardedProtocol` and uvicorn's httptools protocol under it) on uvloop, as `keyless serve` does, but
with the token service replaced by one that returns a canned 200 (an access-token-shaped JSON body)
at once. Everything between the socket and the service is counted: parsing, routing, the header
pass (`routes.token.TokenHead`), the token metrics, JSON encoding and the response head, the
request-timing histogram and the write. TLS is left out (plain TCP): OpenSSL's share does not depend
on the listener's Python, and leaving it out makes a change here a larger, clearer fraction of the count.

The child runs under `valgrind --tool=callgrind` with counting off; this process warms it up, turns
counting on over a fixed number of token POSTs sent on --concurrency kept-alive connections, and
prints instructions per request (within ±0.5 % from run to run; ~15 s).

    .venv/bin/python bench/listener_instructions.py                 # 3,000 requests, c=8
    PYTHONPATH=/tmp/base/src .venv/bin/python bench/listener_instructions.py   # an older tree
    .venv/bin/python bench/listener_instructions.py --top 25        # and the costliest functions

Needs valgrind (Debian's `valgrind` package: callgrind_control and callgrind_annotate come with it).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from token_instructions import (  # the sibling whole-server count
    callgrind,
    costliest_and_clean_up,
    counted,
    have_valgrind,
    keep_alive_posts,
)

BODY = b"grant_type=client_credentials&scope=https%3A%2F%2Fapi.example%2F.default"
REQUEST = (b"POST /bench/oauth2/v2.0/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           b"Authorization: Basic YmVuY2gtY2xpZW50OnMzY3JldC1zM2NyZXQtczNjcmV0LXMzY3JldA==\r\n"
           b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY)
READY_TIMEOUT = 120.0


def serve(port: int) -> None:
    """The child: the server's listener on `port` with a canned token service, until killed."""
    import uvicorn
    import uvloop

    from keyless.listen import Guard, ListenerLimits
    from keyless.oauth.service import TokenResult
    from keyless.server.eager import Turn
    from keyless.server.observe import RouteObserver
    from keyless.server.token_protocol import token_protocol

    answer = {"access_token": "e" * 600, "token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599}

    class Canned:
        async def handle(self, tenant: str, http: Any) -> TokenResult:
            return TokenResult(status=200, body=answer)

    async def other(scope: Any, receive: Any, send: Any) -> None:  # uvicorn's path: not used here
        await send({"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    limits = ListenerLimits()
    ctx: Any = SimpleNamespace(tokens=Canned(), trusted_proxies=(), turn=Turn(),
                               settings=SimpleNamespace(vault_enabled=False, vault_port=0))
    config = uvicorn.Config(other, host="127.0.0.1", port=port, lifespan="off", access_log=False, log_config=None,
                            server_header=False, proxy_headers=False,
                            http=token_protocol(ctx, Guard(limits), RouteObserver("main", access_log=False)),
                            **limits.uvicorn_options())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(uvicorn.Server(config).serve())


async def send(port: int, count: int, concurrency: int) -> int:
    """`count` token POSTs over `concurrency` kept-alive connections (plain TCP); returns the 200s."""
    return await keep_alive_posts("127.0.0.1", port, REQUEST, count, concurrency)


def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the server did not start")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=3000, help="counted token requests (default 3000)")
    p.add_argument("--warmup", type=int, default=500, help="requests before counting starts (default 500)")
    p.add_argument("--concurrency", type=int, default=8, help="kept-alive connections (default 8)")
    p.add_argument("--top", type=int, default=0, help="also print the N costliest functions (exclusive)")
    p.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the child's side
    args = p.parse_args(argv)
    if args.serve is not None:
        serve(args.serve)
        return 0
    if not have_valgrind():
        return 2
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    work = Path(tempfile.mkdtemp(prefix="keyless-listener-instr-"))
    command = [*callgrind(work), sys.executable, __file__, "--serve", str(port)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, proc)
        warm = asyncio.run(send(port, args.warmup, args.concurrency))
        ok, total, files = counted(proc.pid, work, lambda: asyncio.run(send(port, args.requests, args.concurrency)))
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    print(f"listener under callgrind, canned token service, plain TCP, c={args.concurrency}: "
          f"warm-up {warm}/{args.warmup} ok, counted {ok}/{args.requests} ok")
    print(f"instructions per request: {total / max(ok, 1):,.0f}  (total {total:,})")
    costliest_and_clean_up(files, args.top, work)
    return 0 if ok == args.requests else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
