"""What a `bench/peer_compare.py` run allows at best: each row's ceiling ratio on the day's machine.

Issue 18's ratio targets were set on a machine where RSA-2048 signed in 250 µs and a raw TLS request
cost 42 µs. On another machine the two servers pay the same public-key operations (both call OpenSSL)
and a different HTTP cost, so a target can lie beyond what a server paying the raw request's cost
could reach there. This module measures, on the servers' CPU while they are stopped, the signature of a
token and the verification of a client assertion for each algorithm (through `keyless.jose.jws`, as
the token endpoint does them), and prints per row:

- the floor: the run's raw ASGI request (HTTP) + the row's public-key work (sign; for private_key_jwt
  also verify), with none of our own work at all;
- the ceiling: the peer's CPU per token over that floor, the best ratio this machine allows a server
  whose request costs what the raw ASGI request does;
- our own work now (Keyless's CPU per token less the floor) and what the target leaves for it;
- the latency floor: with c connections on one saturated core a request waits for the c - 1 before it
  (Little's law: mean latency = c / throughput), so the p99 target needs a token under 10 ms / c.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import token_endpoint as te

ROUNDS = 5
COUNTS = {"ES256": 2000, "RS256": 300}  # an RSA signature costs ~30x an ECDSA one

_CODE = """
import json, statistics, sys, time
from keyless.crypto.keys import generate
from keyless.jose.jws import sign, verify_with_key
claims = {'aud': 'api://bench', 'iss': 'https://127.0.0.1:8443/t/v2.0', 'iat': 1, 'nbf': 1, 'exp': 3601,
          'sub': 'o' * 36, 'oid': 'o' * 36, 'tid': 't' * 36, 'client_id': 'c' * 36, 'azp': 'c' * 36,
          'appid': 'c' * 36, 'azpacr': '1', 'idtyp': 'app', 'ver': '2.0', 'jti': 'j' * 22, 'roles': ['Bench.Read']}
assertion = {'iss': 'c' * 36, 'sub': 'c' * 36, 'aud': 'https://127.0.0.1:8443/t/oauth2/v2.0/token',
             'jti': 'j' * 36, 'iat': 1, 'nbf': 1, 'exp': 601}
rounds, counts = int(sys.argv[1]), json.loads(sys.argv[2])
def timed(count, work):
    spans = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(count):
            work()
        spans.append((time.process_time() - start) / count * 1e6)
    return statistics.median(spans)
out = {}
for alg, count in counts.items():
    key = generate(alg)
    token = sign(assertion, key, alg=alg, kid='k1', typ='JWT')
    public = key.public_key()
    out[alg] = {'sign_us': timed(count, lambda: sign(claims, key, alg=alg, kid='k1', typ='at+jwt')),
                'verify_us': timed(count, lambda: verify_with_key(token, public, alg=alg))}
print(json.dumps(out))
"""


def measure_crypto() -> dict[str, dict[str, float]]:
    """Per algorithm, µs of CPU for a token's signature and an assertion's verification, in a process
    pinned to the servers' CPU (the medians of a few rounds)."""
    out = subprocess.run(["taskset", "-c", str(te.SERVER_CPU), sys.executable, "-c", _CODE, str(ROUNDS),
                          json.dumps(COUNTS)], capture_output=True, text=True, check=True, timeout=300)
    result: dict[str, dict[str, float]] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def fastest(*measured: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per algorithm and operation, the lowest of several `measure_crypto` results of one sitting: the
    machine was at least that fast during it (`peer_compare` measures before and after its rows)."""
    return {alg: {op: min(m[alg][op] for m in measured) for op in measured[0][alg]} for alg in measured[0]}


def _per_token_us(run: dict[str, Any]) -> float:
    return 1e6 * max(run["server_cpu"], 1e-9) / run["rate"] if run["rate"] else 0.0


def ceilings(results: list[dict[str, Any]], http_us: float, crypto: dict[str, dict[str, float]],
             concurrency: int, p99_target_ms: float) -> list[dict[str, Any]]:
    """Each row's floor, ceiling and room for our own work (see the module docstring); printed too."""
    print(f"\nceilings (this machine: HTTP {http_us:.1f} us; " + "; ".join(
        f"{alg} sign {c['sign_us']:.1f}, verify {c['verify_us']:.1f} us" for alg, c in crypto.items()) + "):")
    print(f"{'row':<13} {'peer us':>8} {'ours us':>8} {'floor us':>9} {'ceiling':>8} {'target':>7} "
          f"{'own now':>8} {'own allowed':>12} {'latency floor':>14}")
    out = []
    for r in results:
        auth, alg = r["row"].split("-")
        costs = crypto[alg]
        floor = http_us + costs["sign_us"] + (costs["verify_us"] if auth == "pkjwt" else 0.0)
        peer, ours = _per_token_us(r["peer_median"]), _per_token_us(r["keyless_median"])
        ceiling = peer / floor if floor else 0.0
        allowed = peer / r["target"] - floor
        latency_floor_ms = concurrency * floor / 1000
        row = {"row": r["row"], "peer_us": peer, "keyless_us": ours, "floor_us": floor, "ceiling": ceiling,
               "target": r["target"], "own_us": ours - floor, "own_allowed_us": allowed,
               "ratio_reachable": ceiling >= r["target"], "latency_floor_ms": latency_floor_ms,
               "p99_reachable": latency_floor_ms < p99_target_ms}
        out.append(row)
        note = "" if row["ratio_reachable"] else "  (target beyond this machine)"
        print(f"{r['row']:<13} {peer:>8.0f} {ours:>8.0f} {floor:>9.0f} {ceiling:>7.2f}x {r['target']:>6.1f}x "
              f"{ours - floor:>8.0f} {allowed:>12.0f} {latency_floor_ms:>11.1f} ms{note}")
    print(f"  floor: HTTP + public-key work, none of our own; ceiling = peer / floor; own allowed = peer / target "
          f"- floor; latency floor = c x floor (c={concurrency}: p99 < {p99_target_ms:.0f} ms needs "
          f"< {1000 * p99_target_ms / concurrency:.0f} us a token)")
    return out
