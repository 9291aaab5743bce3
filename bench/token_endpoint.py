#!/usr/bin/env python3
"""Token endpoint throughput and latency: client_credentials with client_secret_post and/or private_key_jwt,
per signing algorithm.

For each algorithm this script makes a fresh data directory (`keyless init`), starts `keyless serve`
pinned to CPU 0 (`taskset -c 0`, log in a file), registers a resource (api://bench with the role
Bench.Read), a client, a secret and a grant through the management API, warms up, then drives
POST /{tenant}/oauth2/v2.0/token over TLS with keep-alive from a load generator pinned to CPU 1, at
each concurrency, each run bounded by both a request count and a duration. Every response must be a
200 carrying an access token; anything else is counted as an error.

Load generators, best first:
  wrk     `taskset -c 1 wrk -t1 -cN -dDs --latency -s post.lua URL` (Debian package `wrk`); a Lua
          script sends the POST body and checks each status/body; at the request cap it prints a line
          and this script sends wrk SIGINT (wrk itself only knows -d), which still gets its report.
  python  raw asyncio TLS connections (uvloop when importable) with pre-built request bytes, in a
          separate process pinned to CPU 1. Used when wrk is not installed, or with --generator python.

--auth private_key_jwt (default: secret,private_key_jwt): the script also registers a self-signed certificate
on the client (RSA-2048 for RS256 assertions, P-256 for ES256; --assertion-algs, default the token's own alg)
and sends a different client assertion on every request (x5t#S256 header, iss = sub = client_id, aud = the
tenant's issuer, exp = iat + 600 s, uuid4 jti: the server refuses a replayed jti). The assertions are signed
with keyless.jose before each run, on the load CPU, sized at 1.5 x the rate seen so far (at most
--max-assertions); wrk reads them into a Lua table and walks it, the Python generator pre-builds one request
each. A run that uses them all up ends early and is marked "(short)". Targets at c=8 with private_key_jwt:
RS256 tokens >= 700/s, ES256 tokens >= 1,500/s (either assertion alg).

--auth federated,federated_jti (not in the default): the federated rung. The script runs an OIDC issuer on
127.0.0.1 (bench/federated_issuer.py: its own CA, discovery and JWKS over HTTPS), starts the server trusting
it, adds a federated credential on the client (replay: reuse, or jti), and sends a fresh issuer token per
request (Kubernetes-shaped claims, kid header, signed like the assertions; --assertion-algs applies). The
private_key_jwt targets are checked for these rows too.

The generator's own ceiling is measured first (--calibrate, on by default): the same generator against
a canned-response TLS server on CPU 0, so you can see how far the generator is from being the
bottleneck. Each row also reports the CPU each side used (server: /proc/PID/stat; generator:
rusage of the child), as a fraction of one core.

Run from the repository root with the project's virtualenv:

    .venv/bin/python bench/token_endpoint.py                       # RS256 + ES256, c=1,8,64, 10 s each
    .venv/bin/python bench/token_endpoint.py --algs ES256 --concurrency 8 --duration 5
    .venv/bin/python bench/token_endpoint.py --auth private_key_jwt --concurrency 8
    .venv/bin/python bench/token_endpoint.py --auth private_key_jwt --assertion-algs RS256,ES256
    .venv/bin/python bench/token_endpoint.py --algs ES256 --auth federated,federated_jti --concurrency 8
    .venv/bin/python bench/token_endpoint.py --py-spy /tmp/prof    # + a profiled c=8 run per algorithm
    .venv/bin/python bench/token_endpoint.py --wait-idle 60        # on a shared machine
    KEYLESS_CACHE_TTL=300 .venv/bin/python bench/token_endpoint.py # KEYLESS_* settings reach the server
    KEYLESS_DATABASE_URL=postgresql://postgres@127.0.0.1/EMPTY_DB .venv/bin/python bench/token_endpoint.py
                                                                   # on PostgreSQL (a fresh, empty database)

Other CPU on cores 0/1 (another process) steals time from the server: the "other CPU" column shows it
and rows above 15% are marked; --wait-idle waits for quiet cores before each run. Exit status: 0 all
good, 1 some request failed, 2 a c=8 target (client secret: RS256 >= 800/s, ES256 >= 2,500/s; private_key_jwt:
RS256 >= 700/s, ES256 >= 1,500/s; p99 < 50 ms) missed.

Needs Linux with at least 2 CPUs (taskset / sched_setaffinity). Loopback only (127.0.0.1).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from federated_issuer import AUTHS as FEDERATED_AUTHS  # the sibling module: the federated rung's issuer
from federated_issuer import BenchIssuer, FederatedWorkload

SERVER_CPU = 0
LOAD_CPU = 1
HOST = "127.0.0.1"
RESOURCE_URI = "api://bench"
ROLE = "Bench.Read"
TARGETS = {"RS256": 800.0, "ES256": 2500.0}  # tokens/s per server core at c=8, client_secret_post
JWT_TARGETS = {"RS256": 700.0, "ES256": 1500.0}  # the same with private_key_jwt, per TOKEN alg (any assertion alg)
AUTH_METHODS = ("secret", "private_key_jwt", "federated", "federated_jti")
DEFAULT_AUTH = "secret,private_key_jwt"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_KEY_KIND = {"RS256": "rsa2048", "ES256": "p256"}
ASSERTION_LIFETIME = 600  # the server's maximum (exp - iat); bodies are made just before each run
TARGET_P99_MS = 50.0
TARGET_CONCURRENCY = 8
NOISY = 0.15  # other processes' CPU (fraction of a core) above which a run is marked as disturbed


# --------------------------------------------------------------------------------------------------
# Machine description
# --------------------------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "-"


def machine_info(generator: str) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    wrk_version = "-"
    if wrk:
        out = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
        wrk_version = (out.stdout + out.stderr).splitlines()[0].strip() if (out.stdout + out.stderr) else "?"
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpus_allowed": sorted(os.sched_getaffinity(0)),
        "cpu_model": cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "openssl": ssl.OPENSSL_VERSION,
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "keyless": package_version("keyless"),
        "uvicorn": package_version("uvicorn"),
        "uvloop": package_version("uvloop"),
        "httptools": package_version("httptools"),
        "cryptography": package_version("cryptography"),
        "pyjwt": package_version("PyJWT"),
        "generator": generator,
        "wrk": wrk_version,
    }


# --------------------------------------------------------------------------------------------------
# The server under test
# --------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "keyless.cli.main", *args]


# --live-values: single-use values a server that has run a while holds (see `Server.live_values`),
# consumed through the store of the code on the path (so an A/B with PYTHONPATH fills each build's way).
PREFILL = """
import asyncio, os, sys, time, uuid
from pathlib import Path
from keyless.store import db
from keyless.store.directory import SqlDirectoryStore
async def main(data_dir, count):
    url = os.environ.get("KEYLESS_DATABASE_URL") or db.sqlite_url(Path(data_dir) / "keyless.db")
    engine = db.create_engine(url)
    store = SqlDirectoryStore(engine)
    later = time.time() + 1800
    try:
        for at in range(0, count, 500):
            taken = await asyncio.gather(*[store.consume("client_assertion", "bench-prefill", str(uuid.uuid4()), later)
                                           for _ in range(min(500, count - at))])
            assert all(taken)
    finally:
        await store.release()
        await engine.dispose()
asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of `pid` so far (seconds)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # fields 14 and 15 of stat(5)


@dataclass
class Server:
    alg: str
    workdir: Path
    port: int = 0
    data_dir: Path = field(default_factory=Path)
    tenant_id: str = ""
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(default_factory=Path)
    ready_timeout: float = 30.0  # seconds `start` waits for /readyz (longer under valgrind)
    env: dict[str, str] = field(default_factory=dict)  # extra environment for `keyless serve`
    # Live single-use values in the store before the server starts: a server that has run a while at
    # load holds up to 31.5 minutes of them; a fresh database holds none (docs/benchmarks.md, session 12).
    live_values: int = 0

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}"

    @property
    def ca(self) -> str:
        return str(self.data_dir / "ca" / "ca.pem")

    @property
    def token_path(self) -> str:
        return f"/{self.tenant_id}/oauth2/v2.0/token"

    def start(self) -> None:
        import httpx

        self.port = free_port()
        self.data_dir = self.workdir / "data"
        done = subprocess.run(
            cli_command("init", "--data-dir", str(self.data_dir), "--port", str(self.port),
                        "--signing-alg", self.alg, "--output", "json"),
            capture_output=True, text=True, timeout=120, check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"keyless init failed: {done.stderr}")
        self.tenant_id = json.loads(done.stdout)["tenant_id"]
        if self.live_values:
            subprocess.run([sys.executable, "-c", PREFILL, str(self.data_dir), str(self.live_values)], check=True,
                           timeout=600, env={**os.environ, **self.env})
        self.log_path = self.workdir / "server.log"
        serve_args = ["serve", "--data-dir", str(self.data_dir), "--port", str(self.port)]
        serve = ["taskset", "-c", str(SERVER_CPU), *cli_command(*serve_args)]
        with self.log_path.open("wb") as log:
            # taskset execs the interpreter, so proc.pid is the server's own pid.
            self.proc = subprocess.Popen(serve, stdout=log, stderr=subprocess.STDOUT,
                                         env={**os.environ, **self.env} if self.env else None)
        deadline = time.monotonic() + self.ready_timeout
        with httpx.Client(verify=self.ca, timeout=5) as http:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"keyless serve exited:\n{self.log_tail()}")
                try:
                    if http.get(f"{self.url}/readyz").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"keyless serve did not become ready:\n{self.log_tail()}")
                time.sleep(0.1)

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        return proc_cpu_seconds(self.proc.pid)

    def stop(self) -> int | None:
        """SIGINT (uvicorn's clean shutdown: drains, flushes the sign-in log); kill only after 15 s."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def log_problems(self) -> list[str]:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        return [line for line in text.splitlines()
                if '"level": "error"' in line or '"level": "critical"' in line or "Traceback" in line]


async def register_in_process(ctx: Any) -> tuple[Any, str, str]:
    """The same registration as `register_client`, straight through an open `ServerContext`'s admin
    service (the in-process benches): (tenant, client id, secret)."""
    tenant = await ctx.admin.tenant("default")
    await ctx.admin.create_application(tenant, "bench-resource", actor="bench", identifier_uri=RESOURCE_URI,
                                       roles=[ROLE])
    client = await ctx.admin.create_application(tenant, "bench-client", actor="bench")
    _, secret = await ctx.admin.add_secret(tenant, client.client_id, actor="bench")
    await ctx.admin.grant(tenant, client.client_id, RESOURCE_URI, ROLE, actor="bench")
    return tenant, client.client_id, secret


def register_client(server: Server) -> tuple[str, str]:
    """Resource api://bench (role Bench.Read), a client, its secret and the grant, via the management API
    (the CLI's own client, authenticated with the admin credential `keyless init` wrote)."""
    from keyless.cli.common import ManagementClient, resolve

    api = ManagementClient(resolve(server.data_dir, None, None))
    try:
        api.call("POST", "/applications", json_body={
            "display_name": "bench-resource", "identifier_uri": RESOURCE_URI, "roles": [ROLE],
            "open_to_tenant": False})
        client = api.call("POST", "/applications", json_body={
            "display_name": "bench-client", "identifier_uri": None, "roles": [], "open_to_tenant": False})
        client_id = client["client_id"]
        secret = api.call("POST", f"/applications/{client_id}/secrets", json_body={"expires_in": None})["secret"]
        api.call("POST", "/grants", json_body={"client_id": client_id, "resource": RESOURCE_URI, "role": ROLE})
    finally:
        api.http.close()
    return client_id, secret


def token_body(client_id: str, secret: str) -> bytes:
    return urlencode({
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
        "scope": f"{RESOURCE_URI}/.default",
    }).encode("ascii")


@dataclass
class SecretWorkload:
    """client_secret_post: the same body on every request."""

    body: bytes
    auth: str = "secret"
    assertion_alg: str = "-"

    @property
    def label(self) -> str:
        return "secret"

    def bodies(self, count: int) -> list[bytes]:
        return [self.body]


@dataclass
class JwtWorkload:
    """private_key_jwt: a certificate registered on the client, and a fresh assertion (new jti) per request,
    all signed before the timed run, on the load CPU (the server's core stays idle meanwhile)."""

    server: Server
    client_id: str
    assertion_alg: str
    auth: str = "private_key_jwt"
    key: Any = None
    x5t_s256: str = ""
    sign_us: float = 0.0  # last measured cost of making one assertion (PyJWT, on the load CPU)

    @property
    def label(self) -> str:
        return f"pkjwt/{self.assertion_alg}"

    def register(self) -> None:
        """Key + self-signed certificate, registered on the client through the management API."""
        from keyless.cli.common import ManagementClient, resolve
        from keyless.crypto.certificates import load_certificate
        from keyless.crypto.client_keys import generate_client_key, self_signed_certificate

        self.key = generate_client_key(ASSERTION_KEY_KIND[self.assertion_alg])  # type: ignore[arg-type]
        pem = self_signed_certificate(self.key, f"bench-{self.assertion_alg}", now=time.time())
        self.x5t_s256 = load_certificate(pem).x5t_s256
        api = ManagementClient(resolve(self.server.data_dir, None, None))
        try:
            api.call("POST", f"/applications/{self.client_id}/certificates",
                     json_body={"certificate": pem.decode("ascii")})
        finally:
            api.http.close()

    def bodies(self, count: int) -> list[bytes]:
        from keyless.jose.jws import sign_with_headers

        audience = f"{self.server.url}/{self.server.tenant_id}/v2.0"  # the tenant's issuer
        prefix = urlencode({
            "grant_type": "client_credentials", "client_id": self.client_id,
            "client_assertion_type": ASSERTION_TYPE, "scope": f"{RESOURCE_URI}/.default",
        }).encode("ascii") + b"&client_assertion="
        headers = {"typ": "JWT", "x5t#S256": self.x5t_s256}
        affinity = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {LOAD_CPU})  # this thread only; restored below
        try:
            start = time.perf_counter()
            now = int(time.time())
            out = []
            for _ in range(count):
                claims = {"iss": self.client_id, "sub": self.client_id, "aud": audience, "iat": now,
                          "exp": now + ASSERTION_LIFETIME, "jti": str(uuid.uuid4())}
                token = sign_with_headers(claims, self.key, alg=self.assertion_alg, headers=headers)
                out.append(prefix + token.encode("ascii"))
            self.sign_us = (time.perf_counter() - start) / max(1, count) * 1e6
        finally:
            os.sched_setaffinity(0, affinity)
        return out


Workload = SecretWorkload | JwtWorkload | FederatedWorkload


def bodies_for_run(work: Workload, duration: float, concurrency: int, expected_rate: float,
                   args: argparse.Namespace) -> tuple[list[bytes], str]:
    """The bodies for one run: the secret body, or enough fresh assertions for `duration` at 1.5 times
    the rate seen so far (the run ends early if they run out), within --max-assertions."""
    if isinstance(work, SecretWorkload):
        return work.bodies(1), ""
    wanted = int(duration * expected_rate * 1.5) + concurrency
    count = min(args.max_assertions, args.requests + concurrency, wanted)
    start = time.monotonic()
    made = work.bodies(count)
    return made, f"  ({count} assertions signed in {time.monotonic() - start:.1f} s, {work.sign_us:.0f} us each)"


def replay_check(server: Server, body: bytes, *, single_use: bool = True) -> None:
    """The same assertion twice: the second use of its jti must be refused with 401 invalid_client (or,
    for a federated credential with `replay: reuse`, accepted again)."""
    import httpx

    with httpx.Client(verify=server.ca, timeout=10) as http:
        resp = http.post(server.url + server.token_path, content=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    if single_use and resp.status_code != 401:
        raise RuntimeError(f"a replayed assertion was not refused: {resp.status_code} {resp.text}")
    if not single_use and resp.status_code != 200:
        raise RuntimeError(f"a reusable token was refused the second time: {resp.status_code} {resp.text}")


def sanity_check(server: Server, body: bytes, alg: str) -> int:
    """One request through httpx with certificate verification: 200, a JWT signed with `alg`, the role."""
    import httpx

    with httpx.Client(verify=server.ca, timeout=10) as http:
        resp = http.post(server.url + server.token_path, content=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    if resp.status_code != 200:
        raise RuntimeError(f"token request failed: {resp.status_code} {resp.text}")
    token = resp.json()["access_token"]
    head, payload, _ = token.split(".")

    def b64json(part: str) -> dict[str, Any]:
        return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))

    header, claims = b64json(head), b64json(payload)
    if header.get("alg") != alg:
        raise RuntimeError(f"expected a {alg} token, got {header}")
    if ROLE not in claims.get("roles", []) or claims.get("aud") != RESOURCE_URI:
        raise RuntimeError(f"unexpected claims: {claims}")
    return len(resp.content)


# --------------------------------------------------------------------------------------------------
# Load generators
# --------------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    requests: int
    errors: int
    elapsed: float
    p50_ms: float
    p99_ms: float
    gen_cpu: float = 0.0  # generator CPU seconds / wall seconds (1.0 = one full core)
    error_kinds: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return (self.requests - self.errors) / self.elapsed if self.elapsed > 0 else 0.0


def cpu_times(cpus: tuple[int, ...] = (SERVER_CPU, LOAD_CPU)) -> dict[str, float]:
    """Seconds spent by `cpus` (summed) per /proc/stat category: user+nice+system ("task"), irq+softirq
    ("irq"; loopback TCP work lands here), steal (the hypervisor ran someone else)."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {"task": 0.0, "irq": 0.0, "steal": 0.0}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) / ticks for v in values[:8])
            out["task"] += user + nice + system
            out["irq"] += irq + softirq
            out["steal"] += steal
    return out


def wait_for_idle(max_wait: float, threshold: float = 0.10) -> float:
    """Wait (up to `max_wait` s) until CPUs 0+1 are idle (< `threshold` of one core busy over 1 s), for
    shared machines; returns the last busy fraction seen."""
    deadline = time.monotonic() + max_wait
    while True:
        before = cpu_times()
        time.sleep(1.0)
        after = cpu_times()
        busy = (after["task"] - before["task"]) + (after["irq"] - before["irq"])
        if busy < threshold or time.monotonic() >= deadline:
            return busy


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


WRK_FIXED_BODY = r"""
wrk.method = "POST"
wrk.body = "%(body)s"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
"""

# One pre-built body per request (client assertions: every jti may be used once). With -t1 a single Lua
# state serves all connections, so one index walks the table; init() runs in the thread's state only.
WRK_BODY_LIST = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local bodies = {}
local n_bodies = 0
local next_body = 0

function init(args)
  for line in io.lines("%(bodies_path)s") do
    n_bodies = n_bodies + 1
    bodies[n_bodies] = line
  end
end

function request()
  next_body = next_body + 1
  if next_body > n_bodies then next_body = 1 end  -- never reached: the cap leaves a margin
  return wrk.format(nil, nil, nil, bodies[next_body])
end
"""

WRK_SCRIPT = r"""
-- Generated by bench/token_endpoint.py: POST the token request, check each answer, stop at the cap.
%(request_setup)s

max_requests = %(max_requests)d
count = 0
bad = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function response(status, headers, body)
  count = count + 1
  if status ~= 200 or not string.find(body, "%(marker)s", 1, true) then
    bad = bad + 1
  end
  if count == max_requests then
    -- wrk itself only stops at -d; tell the parent, which sends SIGINT (wrk then reports normally).
    io.write("BENCH_CAPPED\n")
    io.flush()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local c, b = 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("count")
    b = b + t:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT {\"count\": %%d, \"bad\": %%d, \"requests\": %%d, \"duration_us\": %%d, " ..
    "\"p50_us\": %%d, \"p99_us\": %%d, \"connect\": %%d, \"read\": %%d, \"write\": %%d, " ..
    "\"status\": %%d, \"timeout\": %%d}\n",
    c, b, summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def run_wrk(url: str, bodies: list[bytes], concurrency: int, duration: float, max_requests: int, workdir: Path,
            marker: str) -> RunResult:
    """`bodies`: one body sent on every request, or one per request (then the run is capped at
    len(bodies) - concurrency responses, since requests already in flight at the cap use bodies too)."""
    safe = re.compile(rb"[A-Za-z0-9%._\-=&+*~]*")
    if not all(safe.fullmatch(b) for b in bodies) or not re.fullmatch(r"[A-Za-z0-9_\"]*", marker):
        raise ValueError("body or marker would need Lua escaping")
    if len(bodies) == 1:
        setup = WRK_FIXED_BODY % {"body": bodies[0].decode("ascii")}
    else:
        bodies_path = workdir / "bodies.txt"
        bodies_path.write_bytes(b"\n".join(bodies) + b"\n")
        setup = WRK_BODY_LIST % {"bodies_path": str(bodies_path)}
        max_requests = max(1, min(max_requests, len(bodies) - concurrency))
    script = workdir / "post.lua"
    script.write_text(WRK_SCRIPT % {"request_setup": setup, "max_requests": max_requests,
                                    "marker": marker.replace('"', '\\"')})
    seconds = max(1, round(duration))
    cmd = ["taskset", "-c", str(LOAD_CPU), "wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency",
           "--timeout", "5s", "-s", str(script), url]
    before = children_cpu()
    wall = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(seconds + 60, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None and proc.stderr is not None
        stdout: list[str] = []
        for text_line in proc.stdout:
            stdout.append(text_line)
            if text_line.startswith("BENCH_CAPPED"):
                proc.send_signal(signal.SIGINT)  # request cap reached: end the run now, keep the report
        stderr = proc.stderr.read()
        code = proc.wait()
    finally:
        watchdog.cancel()
    wall = time.monotonic() - wall
    gen_cpu = (children_cpu() - before) / wall
    line = next((ln for ln in stdout if ln.startswith("BENCH_RESULT ")), None)
    if code != 0 or line is None:
        raise RuntimeError(f"wrk failed ({code}):\n{''.join(stdout)}\n{stderr}")
    r = json.loads(line.removeprefix("BENCH_RESULT "))
    kinds = {k: int(r[k]) for k in ("bad", "connect", "read", "write", "timeout") if r[k]}
    errors = int(r["bad"]) + int(r["connect"]) + int(r["read"]) + int(r["write"]) + int(r["timeout"])
    return RunResult(requests=int(r["count"]), errors=errors, elapsed=r["duration_us"] / 1e6,
                     p50_ms=r["p50_us"] / 1000, p99_ms=r["p99_us"] / 1000, gen_cpu=gen_cpu, error_kinds=kinds)


def run_python(url: str, bodies: list[bytes], concurrency: int, duration: float, max_requests: int,
               workdir: Path, marker: str) -> RunResult:
    """The asyncio generator in its own process (this file with --_loadgen), pinned to the load CPU.
    `bodies`: one body for every request, or one per request (then at most len(bodies) requests)."""
    bodies_path = workdir / "bodies.txt"
    bodies_path.write_bytes(b"\n".join(bodies) + b"\n")
    spec = {"url": url, "bodies_file": str(bodies_path), "concurrency": concurrency, "duration": duration,
            "max_requests": max_requests if len(bodies) == 1 else min(max_requests, len(bodies)),
            "marker": marker, "one_per_request": len(bodies) > 1}
    before = children_cpu()
    wall = time.monotonic()
    out = subprocess.run([sys.executable, __file__, "--_loadgen", json.dumps(spec)], capture_output=True,
                         text=True, timeout=duration + 60, check=False)
    wall = time.monotonic() - wall
    gen_cpu = (children_cpu() - before) / wall
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"python load generator failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    r = json.loads(line.removeprefix("BENCH_RESULT "))
    return RunResult(requests=r["requests"], errors=r["errors"], elapsed=r["elapsed"], p50_ms=r["p50_ms"],
                     p99_ms=r["p99_ms"], gen_cpu=gen_cpu, error_kinds=r["error_kinds"])


GENERATORS = {"wrk": run_wrk, "python": run_python}


def install_fast_loop() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def percentile(sorted_values: list[int], pct: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1))
    return float(sorted_values[index])


class _LoadState:
    def __init__(self, requests: list[bytes], marker: bytes, deadline: float, max_requests: int,
                 done: asyncio.Future[None]) -> None:
        self.requests = requests  # one request for all, or one per request (issued <= len(requests))
        self.marker = marker
        self.deadline = deadline
        self.max_requests = max_requests
        self.done = done
        self.issued = 0
        self.completed = 0
        self.errors: Counter[str] = Counter()
        self.latencies: list[int] = []
        self.active = 0


class _LoadConnection(asyncio.Protocol):
    """One keep-alive connection: send the pre-built request, parse the answer, send the next."""

    def __init__(self, state: _LoadState) -> None:
        self.state = state
        self.transport: Any = None
        self.buf = bytearray()
        self.sent_at = 0
        self.in_flight = False
        self.running = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def fire(self) -> None:
        st = self.state
        if st.issued >= st.max_requests or time.perf_counter() >= st.deadline or self.transport is None:
            self._finish()
            return
        request = st.requests[st.issued] if len(st.requests) > 1 else st.requests[0]
        st.issued += 1
        self.in_flight = True
        self.sent_at = time.perf_counter_ns()
        self.transport.write(request)

    def _finish(self) -> None:
        if self.running:
            self.running = False
            self.state.active -= 1
            if self.state.active == 0 and not self.state.done.done():
                self.state.done.set_result(None)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buf[:end]).lower()
        pos = head.find(b"\r\ncontent-length:")
        if pos < 0:
            self._fail("no_content_length")
            return
        eol = head.find(b"\r\n", pos + 2)
        length = int(head[pos + 17 : eol if eol > 0 else len(head)])
        total = end + 4 + length
        if len(buf) < total:
            return
        now = time.perf_counter_ns()
        st = self.state
        status = head[9:12]
        ok = status == b"200" and buf.find(st.marker, end + 4, total) >= 0
        del buf[:total]
        self.in_flight = False
        st.completed += 1
        st.latencies.append(now - self.sent_at)
        if not ok:
            st.errors["status_" + status.decode("ascii", "replace")] += 1
        if buf:
            self._fail("unexpected_bytes")
            return
        self.fire()

    def _fail(self, kind: str) -> None:
        self.state.errors[kind] += 1
        self.in_flight = False
        if self.transport is not None:
            self.transport.close()
        self._finish()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.in_flight:
            self.state.errors["connection_lost"] += 1
            self.in_flight = False
        self.transport = None
        self._finish()


async def _python_load(spec: dict[str, Any]) -> dict[str, Any]:
    from urllib.parse import urlsplit

    parts = urlsplit(spec["url"])
    host, port = parts.hostname or HOST, parts.port or 443
    bodies: list[bytes] = spec["bodies"]
    requests = [(
        f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode("ascii") + body for body in bodies]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # loopback benchmark; the sanity check verifies the certificate
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    state = _LoadState(requests, spec["marker"].encode(), 0.0, int(spec["max_requests"]), done)
    conns: list[_LoadConnection] = []
    for _ in range(int(spec["concurrency"])):
        _, proto = await loop.create_connection(lambda: _LoadConnection(state), host, port, ssl=ctx)
        conns.append(proto)
    start = time.perf_counter()
    state.deadline = start + float(spec["duration"])
    state.active = len(conns)
    for conn in conns:
        conn.running = True
    for conn in conns:
        conn.fire()
    try:
        await asyncio.wait_for(asyncio.shield(done), float(spec["duration"]) + 10)
    except TimeoutError:
        state.errors["timeout"] += sum(1 for c in conns if c.in_flight)
    elapsed = time.perf_counter() - start
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    await asyncio.sleep(0.05)
    lat = sorted(state.latencies)
    errors = sum(state.errors.values())
    return {"requests": state.completed + state.errors["timeout"] + state.errors["connection_lost"],
            "errors": errors, "elapsed": elapsed,
            "p50_ms": percentile(lat, 50) / 1e6, "p99_ms": percentile(lat, 99) / 1e6,
            "error_kinds": dict(state.errors)}


def loadgen_main(spec_json: str) -> None:
    os.sched_setaffinity(0, {LOAD_CPU})
    install_fast_loop()
    spec = json.loads(spec_json)
    bodies = Path(spec["bodies_file"]).read_bytes().splitlines()
    spec["bodies"] = bodies if spec["one_per_request"] else bodies[:1]
    result = asyncio.run(_python_load(spec))
    sys.stdout.write("BENCH_RESULT " + json.dumps(result) + "\n")


# --------------------------------------------------------------------------------------------------
# Calibration: the generator against a canned-response TLS server on the server CPU
# --------------------------------------------------------------------------------------------------


def make_self_signed(workdir: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])
    now = dt.datetime.now(dt.UTC)
    import ipaddress

    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]), False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = workdir / "canned-cert.pem", workdir / "canned-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class _CannedProtocol(asyncio.Protocol):
    response = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport  # uvloop's SSL transport is not an asyncio.Transport subclass
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        answered = 0
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end].lower()
            pos = head.find(b"\r\ncontent-length:")
            length = 0
            if pos >= 0:
                eol = head.find(b"\r\n", pos + 2)
                length = int(head[pos + 17 : eol if eol > 0 else len(head)])
            if len(buf) < end + 4 + length:
                break
            buf = buf[end + 4 + length :]
            answered += 1
        self.buf = buf
        if answered:
            self.transport.write(self.response * answered)


def canned_main(spec_json: str) -> None:
    """A minimal keep-alive HTTPS server answering every request with the same token-shaped 200."""
    spec = json.loads(spec_json)
    os.sched_setaffinity(0, {SERVER_CPU})
    install_fast_loop()
    body = b'{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"' + \
        b"x" * max(0, int(spec["body_len"]) - 80) + b'"}'
    _CannedProtocol.response = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: no-store\r\n"
        b"pragma: no-cache\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(spec["cert"], spec["key"])

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_CannedProtocol, HOST, int(spec["port"]), ssl=ctx)
        sys.stdout.write("READY\n")
        sys.stdout.flush()
        stop = loop.create_future()
        def on_sigint() -> None:
            if not stop.done():
                stop.set_result(None)

        loop.add_signal_handler(signal.SIGINT, on_sigint)
        await stop
        server.close()

    asyncio.run(main())


def calibrate(generator: str, workdir: Path, concurrency: int, duration: float, body_len: int,
              body: bytes) -> tuple[RunResult, float]:
    cert, key = make_self_signed(workdir)
    port = free_port()
    spec = {"port": port, "cert": str(cert), "key": str(key), "body_len": body_len}
    proc = subprocess.Popen([sys.executable, __file__, "--_canned", json.dumps(spec)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "READY":
            raise RuntimeError("canned server did not start")
        GENERATORS[generator](f"https://{HOST}:{port}/t/oauth2/v2.0/token", [body], concurrency, 2, 10**9,
                              workdir, "access_token")  # warm-up
        cpu0, t0 = proc_cpu_seconds(proc.pid), time.monotonic()
        result = GENERATORS[generator](f"https://{HOST}:{port}/t/oauth2/v2.0/token", [body], concurrency,
                                       duration, 10**9, workdir, "access_token")
        server_cpu = (proc_cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return result, server_cpu


# --------------------------------------------------------------------------------------------------
# Profiling (optional): py-spy on the server during an extra c=8 run
# --------------------------------------------------------------------------------------------------


# Innermost matching frame decides a sample's bucket (checked from the leaf towards the root).
PROFILE_BUCKETS: list[tuple[str, str]] = [
    (r"^(ECAlgorithm|RSAAlgorithm|RSAPSSAlgorithm|OKPAlgorithm)\.sign ", "JWS signature (cryptography/OpenSSL)"),
    (r"^(PyJWS|PyJWT)\.encode |^sign \(keyless/jose/", "JWT serialisation (PyJWT: json, base64url)"),
    (r"^(access_token_claims|new_token_id) ", "claims + jti (secrets.token_urlsafe)"),
    (r"^(SignInBatcher\.flush|(SqlDirectoryStore|SqlLogStore|SqlCredentialStore|SqlRepository)\."
     r"(record_signins|mark_used|_mark_used)) ",
     "sign-in log flush (SQLAlchemy insert, every 0.5 s)"),
    # SQLAlchemy's async work runs in greenlets, whose stacks py-spy shows without the caller's frames.
    (r"sqlalchemy/|aiosqlite/|asyncpg/", "database calls (SQLAlchemy: sign-in flush, cache refills)"),
    (r"^TokenService\._record ", "sign-in event (dataclass, queue)"),
    (r"^TtlCache\.get |^CachedDirectory\.", "directory cache lookups"),
    (r"^(authenticate|verify) \(keyless/oauth/client_auth|^TokenService\._authenticate ",
     "client authentication (HMAC, rate-limit check)"),
    (r"^authorize \(keyless/oauth/grants|^requested_resource |^_from_scope ", "authorization (scope, grant)"),
    (r"^KeyRing\.signer ", "signing-key selection"),
    (r"^parse_token_request |^parse_form |^parse_qsl ", "form parsing"),
    (r"^(MetricWrapperBase|Counter)\.|prometheus_client", "Prometheus counter"),
    (r"^TokenService\.handle ", "token service glue"),
    (r"^(json_response|Response\.__init__|Response\.init_headers|Response\.render) ",
     "response object (orjson, headers)"),
    (r"^read_capped |^Request\.stream ", "reading the body (ASGI receive)"),
    (r"^(token|_read_body|observe) \(keyless/server/routes/token|^TokenEndpoint\.|^dispatch \(keyless/server/app",
     "route handler glue (raw ASGI dispatch, TokenHttpRequest, headers)"),
    (r"^SSLObject\.(read|write|do_handshake) ", "TLS record crypto (ssl module / OpenSSL)"),
    (r"sslproto", "TLS protocol state machine (asyncio sslproto, pure Python)"),
    (r"^_SelectorSocketTransport\.(write|_read_ready__get_buffer|_read_ready__data_received) ",
     "socket send/recv syscalls"),
    (r"uvicorn/protocols", "uvicorn HTTP protocol (httptools)"),
    (r"starlette/|^ErrorShield", "Starlette routing + middleware (+ ErrorShield)"),
    (r"selectors\.py|asyncio/(base_events|events|tasks|futures)\.py", "event loop (epoll, scheduling)"),
]


def summarize_collapsed(path: Path, top: int = 20) -> str:
    """Buckets and top self-time functions of the server's main thread from py-spy's raw output
    (recorded with --threads, so the aiosqlite worker threads, idle almost all the time, are left out)."""
    rules = [(re.compile(pattern), name) for pattern, name in PROFILE_BUCKETS]
    self_counts: Counter[str] = Counter()
    buckets: Counter[str] = Counter()
    other_threads = 0
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        if frames and frames[0].startswith("thread ("):
            if not frames[0].endswith("MainThread"):
                other_threads += count
                continue
            frames = frames[1:]
        total += count
        frames = [re.sub(r":\d+\)$", ")", f) for f in frames]
        if frames:
            self_counts[frames[-1]] += count
        bucket = "other"
        for frame in reversed(frames):
            match = next((name for rule, name in rules if rule.search(frame)), None)
            if match:
                bucket = match
                break
        buckets[bucket] += count
    if not total:
        return "(no samples)"

    def short(frame: str) -> str:
        frame = re.sub(r"\(/.*?/site-packages/", "(", frame)
        frame = re.sub(r"\(/.*?/src/keyless/", "(keyless/", frame)
        return re.sub(r"\(/.*?/lib/python3\.\d+/", "(", frame)

    lines = [f"{total} main-thread samples (+{other_threads} in other threads, not shown)", "",
             "where the main thread's time goes (innermost matching frame):", "     %  bucket"]
    lines += [f"{100 * n / total:6.1f}  {name}" for name, n in buckets.most_common()]
    lines += ["", "top functions by self time:", "     %  function"]
    lines += [f"{100 * n / total:6.1f}  {short(f)}" for f, n in self_counts.most_common(top)]
    return "\n".join(lines)


def profile_run(server: Server, generator: str, url: str, bodies: list[bytes], duration: float, outdir: Path,
                workdir: Path, marker: str, native: bool, label: str = "secret") -> str:
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(pyspy).exists():
        return "py-spy not found: pip install py-spy"
    assert server.proc is not None
    outdir.mkdir(parents=True, exist_ok=True)
    stem = outdir / f"{server.alg}-{label.replace('/', '-')}-c{TARGET_CONCURRENCY}"
    record = ["taskset", "-c", str(LOAD_CPU), pyspy, "record", "--pid", str(server.proc.pid), "--rate", "250",
              "--threads",
              "--duration", str(max(1, round(duration))), "--format", "raw", "-o", f"{stem}.txt"]
    if native:
        record.append("--native")
    spy = subprocess.Popen(record, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    result = GENERATORS[generator](url, bodies, TARGET_CONCURRENCY, duration, 10**9, workdir, marker)
    _, err = spy.communicate(timeout=duration + 60)
    if not Path(f"{stem}.txt").exists():
        return f"py-spy failed: {err.strip()[-500:]}"
    summary = summarize_collapsed(Path(f"{stem}.txt"))
    Path(f"{stem}-summary.txt").write_text(summary + "\n")
    return (f"profiled run ({server.alg} tokens, {label}, c={TARGET_CONCURRENCY}, under py-spy): "
            f"{result.rate:,.0f} tokens/s, {result.errors} errors\n"
            f"collapsed stacks: {stem}.txt (load into speedscope.app or flamegraph.pl)\n\n{summary}")


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per run (default 10; wrk rounds)")
    p.add_argument("--requests", type=int, default=200_000, help="request cap per run (default 200000)")
    p.add_argument("--concurrency", default="1,8,64", help="comma-separated connection counts (default 1,8,64)")
    p.add_argument("--algs", default="RS256,ES256", help="comma-separated signing algorithms (default RS256,ES256)")
    p.add_argument("--auth", default=DEFAULT_AUTH,
                   help="comma-separated client authentication methods: secret (client_secret_post), "
                   "private_key_jwt (default both), federated (replay: reuse), federated_jti (replay: jti)")
    p.add_argument("--assertion-algs", default="same", metavar="ALGS",
                   help="private_key_jwt: comma-separated assertion algorithms (RS256, ES256), or 'same' as the "
                   "token's signing algorithm (default)")
    p.add_argument("--max-assertions", type=int, default=60_000, metavar="N",
                   help="private_key_jwt: at most N pre-signed assertions per run (default 60000); a run needs "
                   "one per request, so it ends early if the server outpaces them")
    p.add_argument("--warmup", type=int, default=500, help="warm-up requests before measuring (default 500)")
    p.add_argument("--live-values", type=int, default=0, metavar="N",
                   help="consume N single-use values in the store before the server starts, as a server that "
                   "has run a while holds them (default 0: a fresh database)")
    p.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto",
                   help="load generator (auto: wrk if installed, else python)")
    p.add_argument("--no-calibrate", dest="calibrate", action="store_false",
                   help="skip measuring the generator's own ceiling against a canned TLS server")
    p.add_argument("--calibrate-duration", type=float, default=5.0)
    p.add_argument("--py-spy", type=Path, metavar="DIR", help="also profile the server with py-spy during an "
                   "extra c=8 run per algorithm; collapsed stacks and summaries go to DIR")
    p.add_argument("--native", action="store_true", help="with --py-spy: include native (C) frames")
    p.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                   help="before each run, wait up to SECONDS for CPUs 0 and 1 to be idle (shared machines)")
    p.add_argument("--json", type=Path, metavar="FILE", help="write machine info and results as JSON")
    p.add_argument("--keep", action="store_true", help="keep the temporary data directories and logs")
    return p.parse_args(argv)


def fmt_row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if not hasattr(os, "sched_setaffinity") or not shutil.which("taskset"):
        sys.exit("needs Linux with taskset (util-linux)")
    cpus = os.sched_getaffinity(0)
    if not {SERVER_CPU, LOAD_CPU} <= cpus:
        sys.exit(f"needs CPUs {SERVER_CPU} and {LOAD_CPU}; this process may use {sorted(cpus)}")
    generator = args.generator
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "python"
    elif generator == "wrk" and not shutil.which("wrk"):
        sys.exit("wrk not found (apt-get install wrk), or use --generator python")
    algs = [a.strip() for a in args.algs.split(",") if a.strip()]
    auths = [a.strip() for a in args.auth.split(",") if a.strip()]
    if not auths or set(auths) - set(AUTH_METHODS):
        sys.exit(f"--auth: choose from {','.join(AUTH_METHODS)}")
    same_alg = args.assertion_algs.strip() == "same"
    assertion_algs = [a.strip() for a in args.assertion_algs.split(",") if a.strip()] if not same_alg else []
    if set(assertion_algs) - set(ASSERTION_KEY_KIND):
        sys.exit(f"--assertion-algs: 'same' or some of {','.join(ASSERTION_KEY_KIND)}")
    concurrencies = [int(c) for c in args.concurrency.split(",") if c.strip()]
    run = GENERATORS[generator]

    info = machine_info(generator)
    loop_name = "uvloop" if package_version("uvloop") != "-" else "asyncio"
    gen_desc = ("wrk -t1 (Lua script: POST body, status/body check, request cap)" if generator == "wrk"
                else f"python raw TLS protocol on {loop_name}, pre-built request bytes")
    print(f"Keyless token endpoint benchmark, {info['date']}")
    print(f"machine : {info['cpu_model']}, nproc={info['nproc']}, kernel {info['kernel']}, "
          f"loadavg {info['loadavg']}")
    print(f"software: Python {info['python']}, {info['openssl']}, keyless {info['keyless']}, uvicorn "
          f"{info['uvicorn']}, uvloop {info['uvloop']}, httptools {info['httptools']}, cryptography "
          f"{info['cryptography']}, PyJWT {info['pyjwt']}")
    print(f"method  : server `keyless serve` on CPU {SERVER_CPU} (taskset), load generator on CPU {LOAD_CPU}; "
          f"TLS + HTTP/1.1 keep-alive over 127.0.0.1;\n          client_credentials, scope {RESOURCE_URI}/.default; "
          f"client auth: {', '.join(auths)}; every response must be 200 with an access token")
    if "private_key_jwt" in auths:
        which = "same alg as the token" if same_alg else ",".join(assertion_algs)
        print(f"jwt     : private_key_jwt assertions ({which}), x5t#S256 header, fresh jti per request, "
              f"signed with keyless.jose (PyJWT) on CPU {LOAD_CPU} before each run;\n          "
              f"each run <= {args.max_assertions} assertions (sized from the rate seen so far x 1.5)")
    if set(auths) & set(FEDERATED_AUTHS):
        print("fed     : federated credential (replay: reuse for `federated`, jti for `federated_jti`) trusting an "
              "OIDC issuer on 127.0.0.1 (a thread of this script,\n          HTTPS, discovery + JWKS, fetched once); "
              "a fresh Kubernetes-shaped token per request, signed like the assertions")
    server_env = {k: v for k, v in os.environ.items() if k.startswith("KEYLESS_")}
    if server_env:
        print(f"server  : environment {' '.join(f'{k}={v}' for k, v in sorted(server_env.items()))}")
    print(f"load    : {gen_desc}; {args.warmup} warm-up requests; each run <= {args.duration:g} s "
          f"and <= {args.requests} requests")
    print()
    sys.stdout.flush()

    results: list[dict[str, Any]] = []
    calibration: dict[str, Any] | None = None
    profiles: dict[str, str] = {}
    base = Path(tempfile.mkdtemp(prefix="keyless-bench-"))
    # The external issuer of the federated rows: one for the whole run, idle once the server has its keys.
    issuer = BenchIssuer(base / "issuer") if set(auths) & set(FEDERATED_AUTHS) else None
    try:
        for alg in algs:
            workdir = base / alg
            workdir.mkdir()
            server = Server(alg=alg, workdir=workdir, live_values=args.live_values,
                            env=issuer.server_env() if issuer is not None else {})
            server.start()
            try:
                client_id, secret = register_client(server)
                body = token_body(client_id, secret)
                response_len = sanity_check(server, body, alg)
                url = server.url + server.token_path
                if args.calibrate and calibration is None:
                    if args.wait_idle:
                        wait_for_idle(args.wait_idle)
                    res, canned_cpu = calibrate(generator, base, TARGET_CONCURRENCY, args.calibrate_duration,
                                                response_len, body)
                    calibration = {"generator": generator, "concurrency": TARGET_CONCURRENCY,
                                   "rate": res.rate, "p50_ms": res.p50_ms, "p99_ms": res.p99_ms,
                                   "gen_cpu": res.gen_cpu, "canned_server_cpu": canned_cpu, "errors": res.errors}
                    print(f"generator ceiling: {generator} vs a canned-response TLS server (python+uvloop on "
                          f"CPU {SERVER_CPU}), c={TARGET_CONCURRENCY}: {res.rate:,.0f} req/s, "
                          f"generator CPU {100 * res.gen_cpu:.0f}%, canned server CPU {100 * canned_cpu:.0f}%, "
                          f"p99 {res.p99_ms:.2f} ms, errors {res.errors}")
                    if res.gen_cpu > 0:
                        print(f"                   => the generator can do about {res.rate / res.gen_cpu:,.0f} "
                              f"req/s per core of its own (extrapolated)")
                    print()
                workloads: list[Workload] = []
                if "secret" in auths:
                    workloads.append(SecretWorkload(body))
                if "private_key_jwt" in auths:
                    for assertion_alg in ([alg] if same_alg else assertion_algs):
                        jwt_workload = JwtWorkload(server, client_id, assertion_alg)
                        jwt_workload.register()
                        workloads.append(jwt_workload)
                for auth in (a for a in auths if a in FEDERATED_AUTHS):
                    assert issuer is not None
                    for assertion_alg in ([alg] if same_alg else assertion_algs):
                        fed_workload = FederatedWorkload(server, client_id, issuer, assertion_alg, auth=auth,
                                                         resource=RESOURCE_URI, load_cpu=LOAD_CPU)
                        fed_workload.register()
                        workloads.append(fed_workload)
                for work in workloads:
                    first = work.bodies(1)[0]
                    response_len = sanity_check(server, first, alg)
                    if isinstance(work, JwtWorkload):
                        replay_check(server, first)  # the same assertion again: its jti is spent
                    elif isinstance(work, FederatedWorkload):
                        replay_check(server, first, single_use=work.single_use)
                    warm = run(url, work.bodies(args.warmup + TARGET_CONCURRENCY), TARGET_CONCURRENCY, 30,
                               args.warmup, workdir, "access_token")
                    if warm.errors:
                        raise RuntimeError(f"warm-up errors ({work.label}): {warm.error_kinds}\n"
                                           f"{server.log_tail()}")
                    expected_rate = warm.rate

                    for conc in concurrencies:
                        time.sleep(0.6)  # let the sign-in batcher flush; a fresh set of connections per run
                        bodies, made_note = bodies_for_run(work, args.duration, conc, expected_rate, args)
                        if args.wait_idle:
                            busy = wait_for_idle(args.wait_idle)
                            if busy >= 0.10:
                                print(f"  (cores 0+1 still {100 * busy:.0f}% busy after waiting "
                                      f"{args.wait_idle:g} s)")
                        cpu0, sys0, t0 = server.cpu_seconds(), cpu_times(), time.monotonic()
                        res = run(url, bodies, conc, args.duration, args.requests, workdir, "access_token")
                        wall = time.monotonic() - t0
                        server_cpu = (server.cpu_seconds() - cpu0) / wall
                        sys1 = cpu_times()
                        # Task time on CPUs 0+1 used by neither the server nor the generator: other processes.
                        # High values mean a noisy machine (the server then gets less than its core).
                        other_cpu = max(0.0, (sys1["task"] - sys0["task"]) / wall - server_cpu - res.gen_cpu)
                        irq_cpu = (sys1["irq"] - sys0["irq"]) / wall
                        steal_cpu = (sys1["steal"] - sys0["steal"]) / wall
                        capped = len(bodies) > 1 and res.elapsed < args.duration * 0.9
                        expected_rate = max(expected_rate, res.rate)
                        row = {"alg": alg, "auth": work.auth, "assertion_alg": work.assertion_alg,
                               "label": work.label, "concurrency": conc, "requests": res.requests,
                               "errors": res.errors, "tokens_per_s": res.rate, "p50_ms": res.p50_ms,
                               "p99_ms": res.p99_ms, "elapsed_s": res.elapsed, "server_cpu": server_cpu,
                               "gen_cpu": res.gen_cpu, "other_cpu": other_cpu, "irq_cpu": irq_cpu,
                               "steal_cpu": steal_cpu,
                               "tokens_per_cpu_s": res.rate / server_cpu if server_cpu > 0 else 0.0,
                               "assertions": len(bodies) if len(bodies) > 1 else 0, "capped": capped,
                               "error_kinds": res.error_kinds}
                        results.append(row)
                        print(f"  {alg} {work.label:<12} c={conc:<3d} {res.requests:>7d} req  {res.errors} err  "
                              f"{res.rate:>8,.0f} tokens/s  p50 {res.p50_ms:6.2f} ms  p99 {res.p99_ms:6.2f} ms  "
                              f"CPU: server {100 * server_cpu:3.0f}%  generator {100 * res.gen_cpu:3.0f}%  "
                              f"other {100 * other_cpu:3.0f}%  irq {100 * irq_cpu:3.0f}%  "
                              f"steal {100 * steal_cpu:3.0f}%"
                              + (f"  {res.error_kinds}" if res.error_kinds else "") + made_note
                              + (f"  [ran out of assertions after {res.elapsed:.1f} s]" if capped else ""))
                        sys.stdout.flush()
                    if args.py_spy:
                        time.sleep(0.6)
                        duration = min(args.duration, 10.0)
                        bodies, _ = bodies_for_run(work, duration, TARGET_CONCURRENCY, expected_rate, args)
                        profiles[f"{alg} {work.label}"] = profile_run(
                            server, generator, url, bodies, duration, args.py_spy, workdir, "access_token",
                            args.native, work.label)
            finally:
                code = server.stop()
                problems = server.log_problems()
                if code not in (0, None) or problems:
                    print(f"  ! server ({alg}) exit code {code}; {len(problems)} error lines in {server.log_path}")
                    for line in problems[:5]:
                        print("    " + line[:300])
    finally:
        if issuer is not None:
            issuer.close()
        if args.keep:
            print(f"\nkept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)

    print()
    headers = ["alg", "auth", "concurrency", "requests", "errors", "tokens/s", "p50 ms", "p99 ms", "server CPU",
               "tokens/CPU-s", "gen CPU", "other CPU"]
    rows = [[r["alg"], r["label"], str(r["concurrency"]), str(r["requests"]), str(r["errors"]),
             f"{r['tokens_per_s']:,.0f}",
             f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}", f"{100 * r['server_cpu']:.0f}%",
             f"{r['tokens_per_cpu_s']:,.0f}", f"{100 * r['gen_cpu']:.0f}%",
             f"{100 * r['other_cpu']:.0f}%" + (" !" if r["other_cpu"] > NOISY else "")
             + (" (short)" if r["capped"] else "")]
            for r in results]
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(headers)]
    print(fmt_row(headers, widths))
    print("  ".join("-" * w for w in widths))
    for cells in rows:
        print(fmt_row(cells, widths))
    print("auth: secret = client_secret_post, pkjwt/ALG = private_key_jwt with ALG assertions, fed/ALG and "
          "fed-jti/ALG = a federated credential\n(replay reuse, jti) and ALG issuer tokens (token alg in the "
          "first column).\nserver CPU: share of core 0 used by `keyless serve`; tokens/CPU-s = tokens/s / server "
          "CPU; gen CPU: the load generator's\nshare of core 1; other CPU: process time on cores 0+1 used by "
          f"neither (other processes; should be ~0%). loadavg now {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if any(r["other_cpu"] > NOISY for r in results):
        print(f"! other processes used more than {100 * NOISY:.0f}% of a core during the runs marked '!': "
              "their figures\n  understate the server (it did not have core 0 to itself); tokens/CPU-s is the "
              "fairer number there.\n  Re-run on a quiet machine, or with --wait-idle 60.")
    print()
    failed = False
    for r in results:
        targets = TARGETS if r["auth"] == "secret" else JWT_TARGETS
        if r["concurrency"] == TARGET_CONCURRENCY and r["alg"] in targets:
            ok_rate = r["tokens_per_s"] >= targets[r["alg"]]
            ok_p99 = r["p99_ms"] < TARGET_P99_MS
            ok = ok_rate and ok_p99 and r["errors"] == 0
            failed |= not ok
            print(f"target {r['alg']} tokens, {r['label']}, c={TARGET_CONCURRENCY}: >= {targets[r['alg']]:,.0f} "
                  f"tokens/s, p99 < {TARGET_P99_MS:g} ms, no errors -> {'met' if ok else 'NOT MET'} "
                  f"({r['tokens_per_s']:,.0f} tokens/s, p99 {r['p99_ms']:.2f} ms, {r['errors']} errors)")
    for alg, text in profiles.items():
        print(f"\n== profile {alg} ==\n{text}")
    if args.json:
        info["server_env"] = server_env
        args.json.write_text(json.dumps({"machine": info, "calibration": calibration, "results": results,
                                         "settings": {k: str(v) for k, v in vars(args).items()}}, indent=2)
                             + "\n")
    errors = sum(r["errors"] for r in results)
    return 1 if errors else (2 if failed else 0)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--_loadgen":
        loadgen_main(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "--_canned":
        canned_main(sys.argv[2])
    else:
        sys.exit(main(sys.argv[1:]))
