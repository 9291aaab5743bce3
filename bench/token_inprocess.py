#!/usr/bin/env python3
"""CPU time per token of the token service alone, and of writing its sign-in rows (issue 18).

No HTTP, no TLS, no load generator: a fresh `keyless init` data directory (SQLite), a real
`ServerContext`, a resource, a client with a secret and a role, then rounds of `TokenService.handle`
with a `client_secret_basic` request (the shape `bench/peer_compare.py` sends), timed with
`time.process_time` (every thread of this process; other processes' load does not count), followed by
writing the rounds' sign-in events the way the batcher does (256 at a time). What the HTTP layer
costs on top is `bench/peer_compare.py`'s business; this isolates our own Python per token, so an A/B
of two builds (`PYTHONPATH` at an exported tree) in one sitting holds on a busy machine.

    .venv/bin/python bench/token_inprocess.py                       # ES256, 3 rounds x 3,000 tokens
    .venv/bin/python bench/token_inprocess.py --alg RS256 --profile   # cProfile of the last round
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

import token_endpoint as te  # the sibling script: the CLI command, resource and role names

BATCH = 256  # what `keyless.server.batching.FLUSH_AT` writes at once


async def measure(args: argparse.Namespace, data: Path) -> None:
    from keyless.oauth.request import TokenHttpRequest
    from keyless.server.context import ServerContext
    from keyless.server.settings import ServerSettings

    ctx = await ServerContext.open(ServerSettings(data_dir=data, vault_port=-1))
    try:
        tenant, client_id, secret = await te.register_in_process(ctx)
        basic = base64.b64encode(f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()).decode()
        scope = quote(f"{te.RESOURCE_URI}/.default", safe="")
        request = TokenHttpRequest(method="POST", content_type="application/x-www-form-urlencoded",
                                   authorization=f"Basic {basic}", query=b"", source="127.0.0.1",
                                   body=f"grant_type=client_credentials&scope={scope}".encode())
        for _ in range(200):  # warm the caches and the key ring
            result = await ctx.tokens.handle(tenant.id, request)
            assert result.status == 200, result.body
        await drain(ctx)
        for round_no in range(1, args.rounds + 1):
            profile = cProfile.Profile() if args.profile and round_no == args.rounds else None
            if profile is not None:
                profile.enable()
            start = time.process_time()
            for n in range(args.requests):
                await ctx.tokens.handle(tenant.id, request)
                if n % BATCH == 0:
                    await asyncio.sleep(0)
            handled = time.process_time() - start
            start = time.process_time()
            written = await drain(ctx)
            writing = time.process_time() - start
            if profile is not None:
                profile.disable()
            print(f"round {round_no}: TokenService.handle {handled / args.requests * 1e6:6.1f} us per token, "
                  f"sign-in rows {writing / max(written, 1) * 1e6:5.1f} us per token ({written} written)", flush=True)
            if profile is not None:
                pstats.Stats(profile).sort_stats("tottime").print_stats(30)
    finally:
        await ctx.close()


async def drain(ctx: object) -> int:
    """Write what the token service queued, in the batcher's batch size; how many events that was."""
    batcher = ctx.signins  # type: ignore[attr-defined]
    pending = batcher._pending  # the bench writes the queue itself, outside the batcher's timer task
    count = len(pending)
    while pending:
        batch, pending[:BATCH] = pending[:BATCH], []
        await batcher._write(batch)
    return count


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--alg", default="ES256", choices=("ES256", "RS256"), help="the tenant's signing algorithm")
    p.add_argument("--requests", type=int, default=3000, help="tokens per round (default 3000)")
    p.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    p.add_argument("--profile", action="store_true", help="print a cProfile of the last round")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="keyless-bench-inprocess-") as tmp:
        data = Path(tmp) / "data"
        subprocess.run(te.cli_command("init", "--data-dir", str(data), "--signing-alg", args.alg, "--output", "json"),
                       capture_output=True, check=True, timeout=120)
        asyncio.run(measure(args, data))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
