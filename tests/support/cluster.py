"""Three `keyless serve` replicas on one PostgreSQL behind HAProxy on loopback: the deployment of
docs/deployment.md, for the scale-out proof (tests/integration/server/test_scale_out.py) and the
replica benchmark (bench/replicas.py).

The HAProxy configuration is deploy/haproxy/haproxy.cfg itself with only the addresses, ports and CA
file of this machine put in, so the test proves the example operators copy."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.server import (
    Installation,
    RunningServer,
    cli_command,
    free_port,
    launch_replica,
    postgres_database,
    require_postgres,
    stop_server,
)

ROOT = Path(__file__).resolve().parents[2]
HAPROXY_EXAMPLE = ROOT / "deploy" / "haproxy" / "haproxy.cfg"


@dataclass
class Cluster(Installation):
    url: str  # the public URL: HAProxy's frontend
    replicas: list[RunningServer]
    haproxy: subprocess.Popen[bytes]
    haproxy_log: Path
    tenant_id: str
    data_dir: Path
    database_url: str
    stats: Path

    def up_in_haproxy(self) -> dict[str, str]:
        """Each replica's state as HAProxy's health checks see it (UP/DOWN), from the stats socket."""
        import socket

        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(self.stats))
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        states = {}
        for line in data.decode().splitlines():
            parts = line.split(",")
            if len(parts) > 17 and parts[0] == "keyless_replicas" and parts[1].startswith("replica"):
                states[parts[1]] = parts[17]
        return states


def haproxy_config(lb_port: int, vault_lb_port: int, replicas: list[RunningServer], ca: str, stats: Path) -> str:
    """deploy/haproxy/haproxy.cfg with this machine's ports, replicas and CA file (and a stats socket)."""
    text = HAPROXY_EXAMPLE.read_text()
    text = text.replace("global\n", f"global\n    stats socket {stats} mode 600 level admin\n", 1)
    text = text.replace("bind :443", f"bind 127.0.0.1:{lb_port}")
    text = text.replace("bind :8445", f"bind 127.0.0.1:{vault_lb_port}")
    text = text.replace("/etc/keyless/ca.pem", ca)
    text = text.replace("maxconn 20000", "maxconn 2000")  # within a test runner's open-file limit
    main = [f"    server replica{i + 1} 127.0.0.1:{r.url.rsplit(':', 1)[1]}" for i, r in enumerate(replicas)]
    vault = [f"    server replica{i + 1} 127.0.0.1:{r.vault_port}" for i, r in enumerate(replicas)]
    text = re.sub(r"(backend keyless_replicas\n(?:.*\n)*?)((?:    server .*\n)+)",
                  lambda m: m.group(1) + "\n".join(main) + "\n", text, count=1)
    text = re.sub(r"(backend keyless_vault_replicas\n(?:.*\n)*?)((?:    server .*\n)+)",
                  lambda m: m.group(1) + "\n".join(vault) + "\n", text, count=1)
    # The vault backend's health check goes to each replica's main port (`port 8443` in the example).
    for r in replicas:
        text = text.replace(f"127.0.0.1:{r.vault_port}\n",
                            f"127.0.0.1:{r.vault_port} port {r.url.rsplit(':', 1)[1]}\n")
    return text.replace(" port 8443 inter", " inter")


def _serve(data_dir: Path, database_url: str, env: dict[str, str], tmp: Path, n: int) -> RunningServer:
    return launch_replica(data_dir, tmp, f"replica{n}.log", tenant_id="", database_url=database_url, env=env)


@contextlib.contextmanager
def replicas_behind_haproxy(tmp: Path, haproxy: str, *, count: int = 3, env: dict[str, str] | None = None,
                            signing_alg: str = "ES256") -> Iterator[Cluster]:
    """`count` replicas on a fresh PostgreSQL database behind HAProxy, all stopped afterwards."""
    require_postgres()
    env = dict(env or {})
    lb_port, vault_lb_port = free_port(), free_port()
    public = f"https://127.0.0.1:{lb_port}"
    with postgres_database() as url:
        data_dir = tmp / "data"
        init = cli_command("init", "--data-dir", str(data_dir), "--server-url", public, "--database-url", url,
                           "--signing-alg", signing_alg, "--output", "json")
        done = subprocess.run(init, env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"keyless init failed: {done.stderr}")
        tenant_id = json.loads(done.stdout)["tenant_id"]
        replicas: list[RunningServer] = []
        proxy: subprocess.Popen[bytes] | None = None
        try:
            for n in range(count):
                replica = _serve(data_dir, url, env, tmp, n + 1)
                replica.tenant_id = tenant_id
                replicas.append(replica)
            stats = tmp / "haproxy.sock"
            config = tmp / "haproxy.cfg"
            config.write_text(haproxy_config(lb_port, vault_lb_port, replicas, str(data_dir / "ca" / "ca.pem"), stats))
            log = tmp / "haproxy.log"
            with log.open("wb") as out:
                proxy = subprocess.Popen([haproxy, "-db", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT)
            cluster = Cluster(url=public, replicas=replicas, haproxy=proxy, haproxy_log=log, tenant_id=tenant_id,
                              data_dir=data_dir, database_url=url, stats=stats)
            _wait_all_up(cluster, count)
            yield cluster
        finally:
            if proxy is not None and proxy.poll() is None:
                proxy.send_signal(signal.SIGTERM)
                try:
                    proxy.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proxy.kill()
                    proxy.wait()
            for replica in replicas:
                stop_server(replica)


def _wait_all_up(cluster: Cluster, count: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if cluster.haproxy.poll() is not None:
            raise RuntimeError(f"haproxy exited: {cluster.haproxy_log.read_text()}")
        with contextlib.suppress(OSError):
            states = cluster.up_in_haproxy()
            if len(states) == count and all(s == "UP" for s in states.values()):
                with httpx.Client(verify=_trust(cluster.ca), timeout=5) as http:
                    if http.get(f"{cluster.url}/readyz").status_code == 200:
                        return
        time.sleep(0.2)
    raise RuntimeError(f"HAProxy did not see every replica up: {cluster.haproxy_log.read_text()}")


def _trust(ca: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca)
