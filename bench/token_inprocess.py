#!/usr/bin/env python3
"""CPU time per token of the token service alone, and of writing its sign-in rows (issue 18).

No HTTP, no TLS, no load generator: a fresh `keyless init` data directory (SQLite), a real
`ServerContext`, a resource, a client with a secret and a role, then rounds of `TokenService.handle`
with a `client_secret_basic` request (the shape `bench/peer_compare.py` sends), or with `--auth pkjwt` a
`private_key_jwt` request carrying a fresh client assertion (new jti, `x5t#S256` header, signed under the
client's registered certificate with the token's algorithm, all signed before the timed rounds), timed with
`time.process_time` (every thread of this process; other processes' load does not count), followed by
writing the rounds' sign-in events the way the batcher does (256 at a time). What the HTTP layer
costs on top is `bench/peer_compare.py`'s business; this isolates our own Python per token, so an A/B
of two builds (`PYTHONPATH` at an exported tree) in one sitting holds on a busy machine.

    .venv/bin/python bench/token_inprocess.py                       # ES256, 3 rounds x 3,000 tokens
    .venv/bin/python bench/token_inprocess.py --alg RS256 --profile   # cProfile of the last round
    .venv/bin/python bench/token_inprocess.py --auth pkjwt             # private_key_jwt, ES256 assertions
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
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

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
        if args.auth == "pkjwt":
            requests = await assertion_requests(ctx, tenant, client_id, args.alg, 200 + args.rounds * args.requests)
        else:
            basic = base64.b64encode(f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()).decode()
            scope = quote(f"{te.RESOURCE_URI}/.default", safe="")
            requests = [TokenHttpRequest(method="POST", content_type="application/x-www-form-urlencoded",
                                         authorization=f"Basic {basic}", query=b"", source="127.0.0.1",
                                         body=f"grant_type=client_credentials&scope={scope}".encode())]
        fresh = iter(requests) if args.auth == "pkjwt" else None
        for _ in range(200):  # warm the caches and the key ring
            result = await ctx.tokens.handle(tenant.id, next(fresh) if fresh is not None else requests[0])
            assert result.status == 200, result.body
        await drain(ctx)
        for round_no in range(1, args.rounds + 1):
            batch = [next(fresh) for _ in range(args.requests)] if fresh is not None else [requests[0]] * args.requests
            profile = cProfile.Profile() if args.profile and round_no == args.rounds else None
            if profile is not None:
                profile.enable()
            start = time.process_time()
            await handle_all(ctx, tenant.id, batch, args.concurrency)
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


async def handle_all(ctx: Any, tenant_id: str, requests: list[Any], concurrency: int) -> None:
    """Every request through `TokenService.handle`, `concurrency` at a time (a jti waits for its group
    commit, so private_key_jwt needs requests in flight together, as the listener has them at c=8);
    one at a time (the secret rounds as before), the loop yields every BATCH requests."""
    if concurrency <= 1:
        for n, request in enumerate(requests):
            await ctx.tokens.handle(tenant_id, request)
            if n % BATCH == 0:
                await asyncio.sleep(0)
        return
    queue = iter(requests)
    failed: list[bytes] = []

    async def worker() -> None:
        for request in queue:
            result = await ctx.tokens.handle(tenant_id, request)
            if result.status != 200:
                failed.append(result.body)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    if failed:
        raise SystemExit(f"{len(failed)} requests refused, e.g. {failed[0]!r}")


async def assertion_requests(ctx: Any, tenant: Any, client_id: str, alg: str, count: int) -> list[Any]:
    """A P-256 or RSA-2048 certificate registered on the client and `count` private_key_jwt requests, each
    with its own assertion (the shape `bench/token_endpoint.py` and `peer_compare.py` send)."""
    from keyless.crypto.certificates import load_certificate
    from keyless.crypto.client_keys import generate_client_key, self_signed_certificate
    from keyless.jose.jws import sign_with_headers
    from keyless.oauth.metadata import issuer
    from keyless.oauth.request import TokenHttpRequest

    key = generate_client_key(te.ASSERTION_KEY_KIND[alg])  # type: ignore[arg-type]
    pem = self_signed_certificate(key, f"bench-{alg}", now=time.time())
    await ctx.admin.add_certificate(tenant, client_id, pem, actor="bench")
    headers = {"typ": "JWT", "x5t#S256": load_certificate(pem).x5t_s256}
    audience = issuer(ctx.tokens._base_url, tenant)  # what the service takes as this tenant's issuer
    prefix = urlencode({"grant_type": "client_credentials", "client_id": client_id,
                        "client_assertion_type": te.ASSERTION_TYPE, "scope": f"{te.RESOURCE_URI}/.default"})
    now = int(time.time())
    out = []
    for _ in range(count):
        claims = {"iss": client_id, "sub": client_id, "aud": audience, "iat": now, "exp": now + te.ASSERTION_LIFETIME,
                  "jti": str(uuid.uuid4())}
        body = f"{prefix}&client_assertion={sign_with_headers(claims, key, alg=alg, headers=headers)}".encode()
        out.append(TokenHttpRequest(method="POST", content_type="application/x-www-form-urlencoded",
                                    authorization=None, query=b"", source="127.0.0.1", body=body))
    return out


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
    p.add_argument("--auth", default="secret", choices=("secret", "pkjwt"),
                   help="client_secret_basic (default) or private_key_jwt with a fresh assertion per request")
    p.add_argument("--concurrency", type=int, default=None,
                   help="requests in flight together (default 1 for secret, 8 for pkjwt: the jti group commit)")
    p.add_argument("--profile", action="store_true", help="print a cProfile of the last round")
    args = p.parse_args(argv)
    if args.concurrency is None:
        args.concurrency = 8 if args.auth == "pkjwt" else 1
    with tempfile.TemporaryDirectory(prefix="keyless-bench-inprocess-") as tmp:
        data = Path(tmp) / "data"
        subprocess.run(te.cli_command("init", "--data-dir", str(data), "--signing-alg", args.alg, "--output", "json"),
                       capture_output=True, check=True, timeout=120)
        asyncio.run(measure(args, data))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
