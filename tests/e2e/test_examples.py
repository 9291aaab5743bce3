"""examples/orders_api.py and examples/worker.py, run as real processes against a real Keyless server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from keyless.client import ClientSecretCredential
from tests.support.server import Admin, RunningServer, free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@dataclass
class OrdersApi:
    url: str
    audience: str
    admin: Admin
    log: Path

    @property
    def scope(self) -> str:
        return f"{self.audience}/.default"


def _wait_listening(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 15
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"orders_api.py exited: {log.read_text(errors='replace')}")
        try:
            if httpx.get(f"{url}/orders", timeout=1).status_code == 401:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"orders_api.py did not start: {log.read_text(errors='replace')}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def orders_api(sqlite_server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrdersApi]:
    """The example API, as a subprocess, for a resource registered under a unique identifier URI."""
    audience = f"api://orders-{uuid.uuid4().hex[:8]}"
    log = tmp_path_factory.mktemp("orders-api") / "orders_api.log"
    url = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "KEYLESS_ISSUER": sqlite_server.issuer, "KEYLESS_CA": sqlite_server.ca,
           "KEYLESS_AUDIENCE": audience}
    with Admin(sqlite_server) as admin:
        admin.app(f"orders-api-{audience[-8:]}", identifier_uri=audience, roles=("Orders.Read", "Orders.Write"))
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, str(EXAMPLES / "orders_api.py"), "--port", url.rsplit(":", 1)[1]],
                                    env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_listening(proc, url, log)
            yield OrdersApi(url=url, audience=audience, admin=admin, log=log)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _worker(server: RunningServer, api: OrdersApi, client_id: str, **creds: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLESS_")}
    env.update(KEYLESS_AUTHORITY=server.url, KEYLESS_TENANT=server.tenant_id, KEYLESS_CA=server.ca,
               KEYLESS_CLIENT_ID=client_id, ORDERS_URL=api.url, ORDERS_SCOPE=api.scope, **creds)
    return subprocess.run([sys.executable, str(EXAMPLES / "worker.py")], env=env, capture_output=True, text=True,
                          timeout=30)


def _client(api: OrdersApi, *roles: str) -> tuple[str, str]:
    client = api.admin.app(f"worker-{uuid.uuid4().hex[:6]}")
    for role in roles:
        api.admin.grant(client["client_id"], api.audience, role)
    return client["client_id"], api.admin.secret(client["client_id"])["secret"]


def test_granted_worker_lists_orders(sqlite_server: RunningServer, orders_api: OrdersApi) -> None:
    client_id, secret = _client(orders_api, "Orders.Read")
    done = _worker(sqlite_server, orders_api, client_id, KEYLESS_CLIENT_SECRET=secret)
    assert done.returncode == 0, done.stderr
    assert f'"caller": "{client_id}"' in done.stdout
    assert secret not in done.stdout + done.stderr


def test_worker_with_a_certificate(sqlite_server: RunningServer, orders_api: OrdersApi, tmp_path: Path) -> None:
    client_id, _ = _client(orders_api, "Orders.Read")
    sqlite_server.cli("cert", "new", client_id, "--out", str(tmp_path), "--key", "p256")
    [cert] = tmp_path.glob("*.pem")
    [key] = tmp_path.glob("*.key")
    done = _worker(sqlite_server, orders_api, client_id, KEYLESS_CLIENT_CERTIFICATE=str(cert),
                   KEYLESS_CLIENT_KEY=str(key))
    assert done.returncode == 0, done.stderr
    assert f'"caller": "{client_id}"' in done.stdout


def test_worker_without_the_read_role_gets_403(sqlite_server: RunningServer, orders_api: OrdersApi) -> None:
    # Granted only Orders.Write: it gets a token for the API, but GET /orders needs Orders.Read.
    client_id, secret = _client(orders_api, "Orders.Write")
    done = _worker(sqlite_server, orders_api, client_id, KEYLESS_CLIENT_SECRET=secret)
    assert done.returncode != 0
    [line] = done.stderr.strip().splitlines()
    assert "answered 403" in line and 'error="insufficient_scope"' in line and 'scope="Orders.Read"' in line

    # The same token may create an order, and the API says who did.
    with ClientSecretCredential(sqlite_server.tenant_id, client_id, secret, authority=sqlite_server.url,
                                ca=sqlite_server.ca) as credential:
        auth = credential.auth(orders_api.scope)
        created = httpx.post(f"{orders_api.url}/orders", json={"item": "widget"}, auth=auth, timeout=10)
        assert created.status_code == 201, created.text
        assert created.json()["created_by"] == client_id
        refused = httpx.get(f"{orders_api.url}/orders", auth=auth, timeout=10)
        assert refused.status_code == 403
        assert "insufficient_scope" in refused.headers["www-authenticate"]


def test_worker_without_any_grant_is_refused_a_token(sqlite_server: RunningServer, orders_api: OrdersApi) -> None:
    client_id, secret = _client(orders_api)
    done = _worker(sqlite_server, orders_api, client_id, KEYLESS_CLIENT_SECRET=secret)
    assert done.returncode != 0
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("worker: token request refused:")
    assert secret not in done.stdout + done.stderr


def test_worker_with_a_wrong_secret_fails_in_one_line(sqlite_server: RunningServer, orders_api: OrdersApi) -> None:
    client_id, _ = _client(orders_api, "Orders.Read")
    done = _worker(sqlite_server, orders_api, client_id, KEYLESS_CLIENT_SECRET="not-the-secret")
    assert done.returncode != 0
    [line] = done.stderr.strip().splitlines()
    assert "invalid_client" in line and "not-the-secret" not in line


def test_no_token_is_401(orders_api: OrdersApi) -> None:
    for method in ("GET", "POST"):
        resp = httpx.request(method, f"{orders_api.url}/orders", json={"item": "x"}, timeout=10)
        assert resp.status_code == 401
        assert resp.headers["www-authenticate"].startswith("Bearer")
