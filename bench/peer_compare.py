#!/usr/bin/env python3
"""Keyless's token endpoint side by side with the reference peer, node-oidc-provider (issue 18 scope 1-2).

One command, one sitting: for each row (client secret RS256 / ES256, private_key_jwt ES256 / RS256)
it starts `keyless serve` and the peer (`../shared/peers`, prepared by its `setup.sh`; nothing of it is
kept in this repository) for that signing algorithm, both pinned to CPU 0, and drives them with wrk on
CPU 1 (TLS, keep-alive, -t1, c=8 by default) using the kit's own Lua scripts (`static.lua`, `cycle.lua`,
plus `report.lua`): a warm-up run of each, then --runs runs of each, alternating Keyless / peer, and
prints the median tokens/s of each, their ratio (Keyless / peer: the target is a ratio, so a noisy
machine does not move it) and the p99 latency. Both get the same request shape: `client_secret_basic`
with a fixed body, or a fresh private_key_jwt assertion (new jti, same algorithm as the token) on every
request, signed before each run on CPU 1.

The federated rows (`fed-RS256`, `fed-ES256`) are Keyless's alone: node-oidc-provider has no client
authentication by another issuer's token. Keyless trusts an OIDC issuer that this script runs on
loopback (`federated_issuer.py`) through a federated credential with the default `replay: reuse`, and
gets a fresh issuer token on every request; those rows print Keyless's figures and no ratio, so one run
covers every credential kind of the token endpoint.

Unless --no-floor, it also measures the floor of the day: a raw ASGI app on uvicorn + uvloop + httptools
over TLS, on CPU 0, answering every request with a canned token-sized JSON body (the HTTP part), and the
ES256 signature through `keyless.jose.jws.sign` in a process pinned to CPU 0, once before the rows and
once after them, and uses the lower of each (a guest drifts within a sitting). Issue 18's ES256 floor per
token is HTTP + signature + 15 us of our own work; the script prints it and Keyless secret ES256's share
of it, both per CPU-second (target >= 70 %), then every target of the issue against this run, and
each row's ceiling on the day's machine (`peer_ceiling`: the floor of HTTP plus the row's signature and
assertion verification, with none of our own work; the peer over it is the best ratio possible there
for a server whose request costs what the raw ASGI one does).

    .venv/bin/python bench/peer_compare.py                          # 6 rows + floor, 3 x 10 s: ~13 min
    .venv/bin/python bench/peer_compare.py --rows secret-ES256 --runs 1 --duration 5
    .venv/bin/python bench/peer_compare.py --json /tmp/peer.json

Needs Linux with 2+ CPUs, taskset, wrk, and the peer kit (`../shared/peers/setup.sh` prints its path;
--kit or $KEYLESS_PEERS_DIR overrides). Exit status 0 when every request succeeded, 1 otherwise.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peer_ceiling  # the sibling module: what the day's machine allows at best
import token_endpoint as te  # the sibling script: server start-up, registration, machine info
from federated_issuer import BenchIssuer, FederatedWorkload  # the sibling module: the federated rows' issuer

ROWS = ("secret-RS256", "secret-ES256", "pkjwt-ES256", "pkjwt-RS256", "fed-RS256", "fed-ES256")
KEYLESS_ONLY = frozenset({"fed"})  # federated credentials: the peer authenticates clients by their own credentials only
TARGETS = {"secret-ES256": 2.3, "secret-RS256": 1.5, "pkjwt-ES256": 2.0, "pkjwt-RS256": 1.4}  # issue 18
TARGET_P99_MS = 10.0
FLOOR_SHARE = 0.70  # of the ES256 floor (issue 18 scope 2)
PEER_SCOPE = "api:read"
ASSERTION_TYPE = te.ASSERTION_TYPE
DEFAULT_KIT = Path(os.environ.get("KEYLESS_PEERS_DIR", Path.home() / ".cache" / "keyless-peers"))
# The rate a warm-up's single-use assertions are made for (x 2.5, as for a run): above the fastest
# assertion row seen (private_key_jwt ES256 passed 5,000 tokens/s on a Zen 5 guest, and ran out of the
# 2,000/s-sized set it had then: the replays were counted as errors).
WARM_RATE = 8000.0


def lua(kit: Path, workdir: Path, name: str) -> Path:
    """The kit's request script with its report appended (how the kit's README says to run wrk)."""
    out = workdir / f"{name}-report.lua"
    out.write_text((kit / "lua" / f"{name}.lua").read_text() + "\n" + (kit / "lua" / "report.lua").read_text())
    return out


@dataclass
class Run:
    rate: float
    p99_ms: float
    p50_ms: float
    errors: int
    server_cpu: float
    other_cpu: float


def wrk(url: str, script: Path, script_args: list[str], concurrency: int, duration: float, pid: int) -> Run:
    seconds = max(1, round(duration))
    cmd = ["taskset", "-c", str(te.LOAD_CPU), "wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency",
           "--timeout", "5s", "-s", str(script), url, "--", *script_args]
    cpu0, sys0, gen0, t0 = te.proc_cpu_seconds(pid), te.cpu_times(), te.children_cpu(), time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    wall = time.monotonic() - t0
    server_cpu = (te.proc_cpu_seconds(pid) - cpu0) / wall
    gen_cpu = (te.children_cpu() - gen0) / wall
    sys1 = te.cpu_times()
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    r = json.loads(line.removeprefix("WRKJSON "))
    errors = sum(int(r[k]) for k in ("err_connect", "err_read", "err_write", "err_status", "err_timeout"))
    elapsed = r["duration_us"] / 1e6
    # What else ran on cores 0+1 (neither server nor wrk) is the machine's noise, as a fraction of a core.
    other = max(0.0, (sys1["task"] - sys0["task"]) / wall - server_cpu - gen_cpu)
    return Run(rate=(r["requests"] - errors) / elapsed, p99_ms=r["p99_us"] / 1000, p50_ms=r["p50_us"] / 1000,
               errors=errors, server_cpu=server_cpu, other_cpu=other)


@dataclass
class Target:
    """One server for one row: its URL, pid, and how to make the wrk arguments for a run."""

    name: str
    url: str
    pid: int
    static: tuple[str, str] | None = None  # (Authorization or "-", body) for static.lua
    make_bodies: Any = None  # count -> list[bytes] for cycle.lua
    runs: list[Run] = field(default_factory=list)

    def measure(self, kit: Path, workdir: Path, concurrency: int, duration: float, expected: float) -> Run:
        if self.static is not None:
            return wrk(self.url, lua(kit, workdir, "static"), list(self.static), concurrency, duration, self.pid)
        # Every assertion may be used once: enough for 2.5 x the fastest rate seen so far (the kit's
        # cycle.lua would wrap around and replay them, which both servers refuse as errors).
        count = int(max(expected, max((r.rate for r in self.runs), default=0.0), 600.0) * 2.5 * duration) + concurrency
        bodies = workdir / f"{self.name}-bodies.txt"
        bodies.write_bytes(b"\n".join(self.make_bodies(count)) + b"\n")
        return wrk(self.url, lua(kit, workdir, "cycle"), [str(bodies)], concurrency, duration, self.pid)


def peer_assertions(kit: Path, alg: str, audience: str) -> Any:
    import jwt

    jwk = json.loads((kit / "keys" / f"client_{alg.lower()}_private.json").read_text())
    key = jwt.PyJWK(jwk).key
    client_id = f"svc-pkjwt-{alg.lower()}"
    prefix = urlencode({"grant_type": "client_credentials", "scope": PEER_SCOPE, "client_id": client_id,
                        "client_assertion_type": ASSERTION_TYPE}).encode() + b"&client_assertion="
    headers = {"kid": jwk["kid"]} if "kid" in jwk else None

    def make(count: int) -> list[bytes]:
        now = int(time.time())
        affinity = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {te.LOAD_CPU})
        try:
            return [prefix + jwt.encode({"iss": client_id, "sub": client_id, "aud": audience, "iat": now,
                                         "exp": now + 600, "jti": str(uuid.uuid4())}, key, algorithm=alg,
                                        headers=headers).encode() for _ in range(count)]
        finally:
            os.sched_setaffinity(0, affinity)

    return make


def start_peer(kit: Path, alg: str, workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    import httpx

    port = te.free_port()
    log = (workdir / f"peer-{alg}.log").open("wb")
    proc = subprocess.Popen([str(kit / "oidc-provider.sh"), str(port), alg, str(te.SERVER_CPU)], stdout=log,
                            stderr=subprocess.STDOUT)  # the script execs taskset, which execs node: same pid
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"https://{te.HOST}:{port}/.well-known/openid-configuration",
                         verify=str(kit / "keys" / "tls.pem"), timeout=2).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the peer did not start: {(workdir / f'peer-{alg}.log').read_text()[-2000:]}")
        time.sleep(0.2)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def check(url: str, headers: dict[str, str], body: bytes, alg: str, ca: str) -> None:
    """One request through httpx: a 200 carrying a JWT signed with `alg` (both servers, before any run)."""
    import httpx

    resp = httpx.post(url, content=body, verify=ca, timeout=10,
                      headers={"Content-Type": "application/x-www-form-urlencoded", **headers})
    if resp.status_code != 200:
        raise RuntimeError(f"{url}: {resp.status_code} {resp.text}")
    head = resp.json()["access_token"].split(".")[0]
    if json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["alg"] != alg:
        raise RuntimeError(f"{url}: not an {alg} token")


FLOOR_BODY_LEN = 900  # about a Keyless ES256 token response


def floor_main(spec_json: str) -> None:
    """The floor: a raw ASGI app (no framework) on uvicorn + uvloop + httptools, TLS, canned JSON."""
    import uvicorn

    spec = json.loads(spec_json)
    body = b'{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"' + \
        b"x" * (FLOOR_BODY_LEN - 80) + b'"}'
    headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store"), (b"pragma", b"no-cache"),
               (b"content-length", str(len(body)).encode())]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(app, host=te.HOST, port=int(spec["port"]), ssl_certfile=spec["cert"], ssl_keyfile=spec["key"],
                loop="uvloop", http="httptools", log_level="warning", access_log=False, lifespan="off")


def measure_floor(kit: Path, workdir: Path, args: argparse.Namespace) -> Run:
    import httpx

    workdir.mkdir(exist_ok=True)
    cert, key = te.make_self_signed(workdir)
    port = te.free_port()
    spec = json.dumps({"port": port, "cert": str(cert), "key": str(key)})
    proc = subprocess.Popen(["taskset", "-c", str(te.SERVER_CPU), sys.executable, __file__, "--_floor", spec])
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.post(f"https://{te.HOST}:{port}/t", verify=str(cert), timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the floor server did not start") from None
                time.sleep(0.2)
        url = f"https://{te.HOST}:{port}/t/oauth2/v2.0/token"
        script = lua(kit, workdir, "static")
        wrk(url, script, ["-", "grant_type=client_credentials"], args.concurrency, args.warmup, proc.pid)
        runs = [wrk(url, script, ["-", "grant_type=client_credentials"], args.concurrency, args.duration, proc.pid)
                for _ in range(args.runs)]
    finally:
        stop(proc)  # type: ignore[arg-type]
    return median_run(runs)


def _request_us(floor: Run) -> float:
    """The raw ASGI request's CPU per request, µs."""
    return 1e6 * max(floor.server_cpu, 1e-9) / floor.rate if floor.rate else float("inf")


def fastest_floor(*floors: Run) -> Run:
    """Of the floor's measurements in one sitting, the one with the least CPU per request."""
    return min(floors, key=_request_us)


def median_run(runs: list[Run]) -> Run:
    return Run(rate=statistics.median(r.rate for r in runs), p99_ms=statistics.median(r.p99_ms for r in runs),
               p50_ms=statistics.median(r.p50_ms for r in runs), errors=sum(r.errors for r in runs),
               server_cpu=statistics.median(r.server_cpu for r in runs),
               other_cpu=max(r.other_cpu for r in runs))


def keyless_target(server: te.Server, client_id: str, secret: str, auth: str, alg: str,
                   issuer: BenchIssuer | None = None) -> Target:
    url = server.url + server.token_path
    if auth == "fed":
        assert issuer is not None
        fed = FederatedWorkload(server, client_id, issuer, alg, resource=te.RESOURCE_URI, load_cpu=te.LOAD_CPU)
        fed.register()
        check(url, {}, fed.bodies(1)[0], alg, server.ca)
        return Target("keyless", url, server.proc.pid if server.proc else 0, make_bodies=fed.bodies)
    if auth == "secret":
        basic = "Basic " + base64.b64encode(f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()).decode()
        body = urlencode({"grant_type": "client_credentials", "scope": f"{te.RESOURCE_URI}/.default"})
        check(url, {"Authorization": basic}, body.encode(), alg, server.ca)
        return Target("keyless", url, server.proc.pid if server.proc else 0, static=(basic, body))
    work = te.JwtWorkload(server, client_id, alg)
    work.register()
    check(url, {}, work.bodies(1)[0], alg, server.ca)
    return Target("keyless", url, server.proc.pid if server.proc else 0, make_bodies=work.bodies)


def peer_target(kit: Path, port: int, pid: int, auth: str, alg: str) -> Target:
    url = f"https://{te.HOST}:{port}/token"
    if auth == "secret":
        secret = (kit / "keys" / "secret.txt").read_text().strip()
        basic = "Basic " + base64.b64encode(f"svc-secret:{secret}".encode()).decode()
        body = f"grant_type=client_credentials&scope={quote(PEER_SCOPE)}"
        check(url, {"Authorization": basic}, body.encode(), alg, str(kit / "keys" / "tls.pem"))
        return Target("peer", url, pid, static=(basic, body))
    make = peer_assertions(kit, alg, url)
    check(url, {}, make(1)[0], alg, str(kit / "keys" / "tls.pem"))
    return Target("peer", url, pid, make_bodies=make)


OWN_WORK_US = 15.0  # issue 18: the floor allows ~15 us of our own work per token
BUSY_OTHER_CPU = 0.15  # "other" CPU (a fraction of a core) past which a run is not a quiet machine's


def es256_floor(floor: Run, signature_us: float) -> dict[str, Any]:
    """Issue 18's ES256 floor per token: the raw ASGI request of the day (per CPU-second, which holds
    on a shared machine) + the ES256 signature + ~15 us of our own work."""
    http_us = _request_us(floor) if floor.rate else 0.0
    per_token = http_us + signature_us + OWN_WORK_US
    return {"http_us": http_us, "signature_us": signature_us, "own_work_us": OWN_WORK_US, "us": per_token,
            "rate": 1e6 / per_token}


def targets_summary(results: list[dict[str, Any]], es_floor: dict[str, Any] | None) -> dict[str, Any]:
    """Each of issue 18's targets against this run (per CPU-second ratios: the ones that hold under load)."""
    print("\ntargets (issue 18), from this run:")
    verdicts: dict[str, Any] = {}
    for r in results:
        k, p = r["keyless_median"], r["peer_median"]
        met = r["cpu_ratio"] >= r["target"]
        p99 = k["p99_ms"] < TARGET_P99_MS
        verdicts[r["row"]] = {"ratio_per_cpu_s": r["cpu_ratio"], "ratio": r["ratio"], "target": r["target"],
                              "ratio_met": met, "p99_ms": k["p99_ms"], "p99_met": p99}
        print(f"  {r['row']:<13} {r['cpu_ratio']:.3f}x per CPU-s (throughput {r['ratio']:.3f}x) vs >= {r['target']}x: "
              f"{'met' if met else 'NOT met'}; Keyless p99 {k['p99_ms']:.1f} ms (peer {p['p99_ms']:.1f}) vs "
              f"< {TARGET_P99_MS:.0f} ms: {'met' if p99 else 'NOT met'}")
    busy = max((max(r["keyless_median"]["other_cpu"], r["peer_median"]["other_cpu"]) for r in results), default=0.0)
    if busy > BUSY_OTHER_CPU:
        print(f"  (other processes used up to {busy:.0%} of a core during these runs: both servers lose efficiency "
              f"under such load, not equally, so these ratios are not a quiet machine's; A/B builds in one sitting)")
    verdicts["other_cpu_max"] = busy
    if es_floor is not None and "share" in es_floor:
        met = es_floor["share"] >= FLOOR_SHARE
        verdicts["es256_floor"] = {"share": es_floor["share"], "target": FLOOR_SHARE, "met": met}
        print(f"  ES256 floor share {es_floor['share']:.1%} vs >= {FLOOR_SHARE:.0%}: {'met' if met else 'NOT met'}")
    return verdicts


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of {','.join(ROWS)}")
    p.add_argument("--runs", type=int, default=3, help="measured runs per server and row (default 3)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per run (default 10)")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per server and row (default 3)")
    p.add_argument("--concurrency", type=int, default=8, help="connections (default 8)")
    p.add_argument("--no-floor", dest="floor", action="store_false", help="skip the raw ASGI floor")
    p.add_argument("--kit", type=Path, default=DEFAULT_KIT, help=f"the peer kit (default {DEFAULT_KIT})")
    p.add_argument("--json", type=Path, help="write the machine, method and results as JSON")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    if set(rows) - set(ROWS):
        sys.exit(f"--rows: choose from {','.join(ROWS)}")
    if not (args.kit / "oidc-provider.sh").exists():
        sys.exit(f"no peer kit at {args.kit}: run ../shared/peers/setup.sh (or pass --kit)")
    info = te.machine_info("wrk")
    print(f"Keyless vs node-oidc-provider, token endpoint, {info['date']}")
    print(f"machine : {info['cpu_model']}, nproc={info['nproc']}, kernel {info['kernel']}, loadavg {info['loadavg']}")
    print(f"method  : both servers on CPU {te.SERVER_CPU}, wrk -t1 -c{args.concurrency} on CPU {te.LOAD_CPU}, TLS "
          f"keep-alive; {args.warmup:g} s warm-up each, then {args.runs} x {args.duration:g} s alternating; medians")
    print()
    header = f"{'row':<13} {'keyless/s':>10} {'p99 ms':>7} {'peer/s':>9} {'p99 ms':>7} {'ratio':>6} {'target':>7}" \
             f" {'per CPU-s':>10} {'errors':>6} {'other CPU':>9}"
    print(header)
    sys.stdout.flush()
    results: list[dict[str, Any]] = []
    solo: list[dict[str, Any]] = []  # the rows the peer has no counterpart for
    failed = False
    base = Path(tempfile.mkdtemp(prefix="keyless-peer-"))
    # The floor and the public-key costs are measured before the rows and again after them, and the
    # lower of each is used: a guest drifts by 20-40 % within minutes (docs/benchmarks.md, session 15),
    # and one measurement after the rows, in a slow stretch, overstated the floor, so the ceilings said
    # "beyond this machine" of a target the rows had met and the floor share looked better than it was.
    early = (measure_floor(args.kit, base / "floor-before", args), peer_ceiling.measure_crypto()) \
        if args.floor else None
    issuer = BenchIssuer(base / "issuer") if any(r.split("-")[0] in KEYLESS_ONLY for r in rows) else None
    for alg in ("RS256", "ES256"):
        wanted = [r for r in rows if r.endswith(alg)]
        if not wanted:
            continue
        workdir = base / alg
        workdir.mkdir()
        server = te.Server(alg=alg, workdir=workdir, env=issuer.server_env() if issuer is not None else {})
        server.start()
        peer, port = start_peer(args.kit, alg, workdir)
        try:
            client_id, secret = te.register_client(server)
            for row in wanted:
                auth = row.split("-")[0]
                if auth in KEYLESS_ONLY:
                    solo.append(keyless_only_row(row, keyless_target(server, client_id, secret, auth, alg, issuer),
                                                 args, workdir))
                    failed = failed or bool(solo[-1]["keyless_median"]["errors"])
                    continue
                pair = [keyless_target(server, client_id, secret, auth, alg),
                        peer_target(args.kit, port, peer.pid, auth, alg)]
                expected = {t.name: wrk_warm(t, args, workdir) for t in pair}
                for _ in range(args.runs):
                    for t in pair:
                        time.sleep(0.6)  # the sign-in batcher flushes; fresh connections per run
                        t.runs.append(t.measure(args.kit, workdir, args.concurrency, args.duration, expected[t.name]))
                k, p = (median_run(t.runs) for t in pair)
                ratio = k.rate / p.rate if p.rate else 0.0
                # Tokens per CPU-second of each server: the fairer ratio when other processes take core 0.
                cpu_ratio = (k.rate / k.server_cpu) / (p.rate / p.server_cpu) if p.rate and k.server_cpu else 0.0
                failed = failed or bool(k.errors or p.errors)
                print(f"{row:<13} {k.rate:>10,.0f} {k.p99_ms:>7.2f} {p.rate:>9,.0f} {p.p99_ms:>7.2f} {ratio:>5.2f}x "
                      f"{TARGETS[row]:>6.1f}x {cpu_ratio:>9.2f}x {k.errors + p.errors:>6} "
                      f"{max(k.other_cpu, p.other_cpu):>8.0%}")
                sys.stdout.flush()
                results.append({"row": row, "keyless": [r.__dict__ for r in pair[0].runs],
                                "peer": [r.__dict__ for r in pair[1].runs], "keyless_median": k.__dict__,
                                "peer_median": p.__dict__, "ratio": ratio, "cpu_ratio": cpu_ratio,
                                "target": TARGETS[row]})
        finally:
            stop(peer)
            server.stop()
    if issuer is not None:
        issuer.close()
    floor = es_floor = None
    crypto: dict[str, dict[str, float]] = {}
    late = None
    if early is not None:
        late = (measure_floor(args.kit, base / "floor-after", args), peer_ceiling.measure_crypto())
        floor, crypto = fastest_floor(early[0], late[0]), peer_ceiling.fastest(early[1], late[1])
        print(f"\nbefore the rows / after them: raw ASGI request {_request_us(early[0]):.1f} / "
              f"{_request_us(late[0]):.1f} us"
              + "".join(f"; {alg} sign {early[1][alg]['sign_us']:.1f} / {late[1][alg]['sign_us']:.1f}, verify "
                        f"{early[1][alg]['verify_us']:.1f} / {late[1][alg]['verify_us']:.1f} us" for alg in early[1])
              + " (the lower of each is used below)")
        signature_us = crypto["ES256"]["sign_us"]
        es_floor = es256_floor(floor, signature_us)
        print(f"\nfloor (raw ASGI, uvicorn+uvloop+httptools, TLS, canned {FLOOR_BODY_LEN} B JSON): "
              f"{floor.rate:,.0f} req/s ({floor.rate / max(floor.server_cpu, 1e-9):,.0f} per CPU-s, "
              f"{es_floor['http_us']:.1f} us each), p99 {floor.p99_ms:.2f} ms, errors {floor.errors}")
        print(f"ES256 signature through keyless.jose.jws.sign on CPU {te.SERVER_CPU}: {signature_us:.1f} us "
              f"(median of {peer_ceiling.ROUNDS} x {peer_ceiling.COUNTS['ES256']}, CPU time)")
        print(f"ES256 floor = HTTP {es_floor['http_us']:.1f} + signature {signature_us:.1f} + our own work "
              f"{OWN_WORK_US:.0f} us = {es_floor['us']:.1f} us per token = {es_floor['rate']:,.0f} tokens per CPU-s")
        es = next((r for r in results if r["row"] == "secret-ES256"), None)
        if es is not None:
            k = es["keyless_median"]
            per_cpu = k["rate"] / max(k["server_cpu"], 1e-9)
            es_floor["keyless_per_cpu_s"] = per_cpu
            es_floor["share"] = per_cpu / es_floor["rate"]
            print(f"Keyless secret ES256 = {per_cpu:,.0f} tokens per CPU-s = {es_floor['share']:.1%} of the ES256 "
                  f"floor (target >= {FLOOR_SHARE:.0%}); {1e6 / per_cpu:.0f} us per token")
    verdicts = targets_summary(results, es_floor)
    if floor is not None and es_floor is not None and results:
        verdicts["ceilings"] = peer_ceiling.ceilings(results, es_floor["http_us"], crypto, args.concurrency,
                                                     TARGET_P99_MS)
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "args": {k: str(v) for k, v in vars(args).items()},
                                         "rows": results, "keyless_only_rows": solo,
                                         "floor": floor.__dict__ if floor else None,
                                         "floor_before_after": [early[0].__dict__, late[0].__dict__]
                                         if early and late else None,
                                         "crypto_before_after": [early[1], late[1]] if early and late else None,
                                         "es256_floor": es_floor, "targets": verdicts}, indent=2))
    return 1 if failed else 0


def keyless_only_row(row: str, target: Target, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """A row the peer cannot run: Keyless's warm-up and runs as in a pair, its median, no ratio."""
    expected = wrk_warm(target, args, workdir)
    for _ in range(args.runs):
        time.sleep(0.6)
        target.runs.append(target.measure(args.kit, workdir, args.concurrency, args.duration, expected))
    k = median_run(target.runs)
    print(f"{row:<13} {k.rate:>10,.0f} {k.p99_ms:>7.2f} {'-':>9} {'-':>7} {'-':>6} {'-':>7} {'-':>10} "
          f"{k.errors:>6} {k.other_cpu:>8.0%}   (Keyless only: {k.rate / max(k.server_cpu, 1e-9):,.0f} per CPU-s)")
    sys.stdout.flush()
    return {"row": row, "keyless": [r.__dict__ for r in target.runs], "keyless_median": k.__dict__}


def wrk_warm(t: Target, args: argparse.Namespace, workdir: Path) -> float:
    run = t.measure(args.kit, workdir, args.concurrency, args.warmup, WARM_RATE)
    if run.errors:
        raise RuntimeError(f"{t.name}: {run.errors} errors during warm-up")
    return run.rate


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--_floor":
        floor_main(sys.argv[2])
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
