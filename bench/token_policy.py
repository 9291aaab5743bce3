#!/usr/bin/env python3
"""Token endpoint throughput with a 5-rule credential policy against none, A/B in one sitting (issue 13:
within 5 %; docs/policies.md "Cost at sign-in").

One server (`keyless serve` pinned to CPU 0, the load generator to CPU 1, as bench/token_endpoint.py,
whose helpers this script uses), one client with a client secret, ES256 tokens. Runs alternate
A (no policy) and B (the tenant default below, every rule in force and passed by the bench client, so
each request pays the whole check: the effective policy from the cache, the credential's facts, five
rules) for --rounds rounds of --duration seconds at --concurrency, so drift on a shared machine hits
both sides alike. Reports each run, the median rate of each side and B/A; exit 2 when B/A < 0.95.

    .venv/bin/python bench/token_policy.py                           # c=8, 3 rounds of 8 s
    .venv/bin/python bench/token_policy.py --rounds 5 --duration 10 --wait-idle 30
    .venv/bin/python bench/token_policy.py --in-process              # CPU per token, no HTTP (below)

On a machine shared with other work the HTTP figures swing by more than the effect being measured.
`--in-process` measures what the policy adds where it runs: the token service itself
(`ServerContext.open` on a fresh `keyless init` data directory, real store and caches, ES256 signing),
`handle()` called N times per side in alternating rounds, timed in this process's CPU time
(`time.process_time`), so other processes' load does not count.

The policy (B): block new secrets (allow-list: the bench client), secrets at most 400 days, keys
RSA >= 3072 or EC >= 256, certificates from the internal CA (audit), sign-ins only from 127.0.0.0/8.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import token_endpoint as te  # the sibling script's server, client and generators


def policy_for(client_id: str) -> dict[str, Any]:
    return {
        "block_secrets": {"mode": "enforce", "allowed_apps": [client_id]},
        "max_lifetime": {"mode": "enforce", "secret": 400 * 86400},
        "key_types": {"mode": "enforce",
                      "allowed": [{"type": "RSA", "min_size": 3072}, {"type": "EC", "min_size": 256}]},
        "internal_ca": {"mode": "audit"},
        "source_networks": {"mode": "enforce", "networks": ["127.0.0.0/8", "::1/128"]},
    }


def set_policy(server: te.Server, document: dict[str, Any]) -> None:
    from keyless.cli.common import ManagementClient, resolve

    api = ManagementClient(resolve(server.data_dir, None, None))
    try:
        api.call("PUT", "/policy", json_body=document)
    finally:
        api.http.close()


async def _in_process(args: argparse.Namespace, tmp: Path) -> dict[str, list[float]]:
    """Tokens per CPU-second of `TokenService.handle`, without and with the policy, alternating."""
    import time

    from keyless.oauth.request import TokenHttpRequest
    from keyless.server.context import ServerContext
    from keyless.server.settings import ServerSettings

    data = tmp / "data"
    ctx = await ServerContext.open(ServerSettings(data_dir=data, vault_port=-1))
    rates: dict[str, list[float]] = {"none": [], "policy": []}
    try:
        tenant, client_id, secret = await te.register_in_process(ctx)
        request = TokenHttpRequest(method="POST", content_type="application/x-www-form-urlencoded",
                                   authorization=None, query=b"", body=te.token_body(client_id, secret),
                                   source="127.0.0.1")
        for round_no in range(args.rounds):
            for side in ("none", "policy"):
                document = policy_for(client_id) if side == "policy" else {}
                await ctx.admin.policies.set_policy(tenant, None, document, actor="bench")
                for _ in range(50):  # warm the caches after the write cleared them
                    assert (await ctx.tokens.handle(tenant.id, request)).status == 200
                start = time.process_time()
                for _ in range(args.requests):
                    result = await ctx.tokens.handle(tenant.id, request)
                spent = time.process_time() - start
                assert result.status == 200 and result.body.get("access_token"), result.body
                rates[side].append(args.requests / spent)
                print(f"round {round_no + 1} {side:>6}: {args.requests / spent:8.0f} tokens per CPU-second "
                      f"({spent / args.requests * 1e6:.1f} us each)", flush=True)
    finally:
        await ctx.close()
    return rates


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--alg", default="ES256", choices=("ES256", "RS256"))
    parser.add_argument("--generator", default="wrk" if te.shutil.which("wrk") else "python",
                        choices=tuple(te.GENERATORS))
    parser.add_argument("--wait-idle", type=float, default=0.0, help="wait up to this many seconds for quiet CPUs")
    parser.add_argument("--in-process", action="store_true", help="time TokenService.handle in CPU time, no HTTP")
    parser.add_argument("--requests", type=int, default=3000, help="requests per side and round (--in-process)")
    args = parser.parse_args(argv)
    run = te.GENERATORS[args.generator]
    rates: dict[str, list[float]] = {"none": [], "policy": []}
    if args.in_process:
        with tempfile.TemporaryDirectory(prefix="keyless-bench-policy-") as tmp:
            subprocess.run(te.cli_command("init", "--data-dir", str(Path(tmp) / "data"), "--signing-alg", args.alg,
                                          "--output", "json"), capture_output=True, check=True, timeout=120)
            rates = asyncio.run(_in_process(args, Path(tmp)))
        return _summary(args, rates, "in-process")
    with tempfile.TemporaryDirectory(prefix="keyless-bench-policy-") as tmp:
        server = te.Server(alg=args.alg, workdir=Path(tmp))
        server.start()
        try:
            client_id, secret = te.register_client(server)
            body = te.token_body(client_id, secret)
            te.sanity_check(server, body, args.alg)
            run(server.url + server.token_path, [body], args.concurrency, 2.0, 10**9, Path(tmp), "access_token")
            for round_no in range(args.rounds):
                for side in ("none", "policy"):
                    set_policy(server, policy_for(client_id) if side == "policy" else {})
                    te.sanity_check(server, body, args.alg)
                    if args.wait_idle:
                        te.wait_for_idle(args.wait_idle)
                    result = run(server.url + server.token_path, [body], args.concurrency, args.duration, 10**9,
                                 Path(tmp), "access_token")
                    if result.errors:
                        print(f"round {round_no + 1} {side}: {result.errors} errors {result.error_kinds}")
                        return 1
                    rates[side].append(result.rate)
                    print(f"round {round_no + 1} {side:>6}: {result.rate:8.0f} tokens/s  p50 {result.p50_ms:.2f} ms  "
                          f"p99 {result.p99_ms:.2f} ms", flush=True)
        finally:
            server.stop()
    return _summary(args, rates, args.generator)


def _summary(args: argparse.Namespace, rates: dict[str, list[float]], how: str) -> int:
    a, b = statistics.median(rates["none"]), statistics.median(rates["policy"])
    ratio = b / a if a else 0.0
    print(json.dumps({"alg": args.alg, "concurrency": args.concurrency, "generator": how,
                      "none_median": round(a), "policy_median": round(b), "ratio": round(ratio, 3),
                      "none": [round(r) for r in rates["none"]], "policy": [round(r) for r in rates["policy"]]}))
    return 0 if ratio >= 0.95 else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
