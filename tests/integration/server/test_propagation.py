"""Replicas on one PostgreSQL act as one service (docs/deployment.md): a revoked secret or a removed
grant made through one replica is refused by another within 1 s, because every write publishes a
change notification (`keyless.store.changes`) that the other replicas apply to their caches. Without
it, the other replica would keep accepting the secret until its cache entry expired (5 s and more)."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import time
import uuid
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from tests.support.certs import AUTH_FAILED
from tests.support.server import Admin, RunningServer, replicas_on_postgres

BOUND = 1.0
# A small per-source failure budget that barely refills, to see it shared; the other budgets stay out of the way.
SOURCE_BURST = 20
SHARED_ENV = {"KEYLESS_SOURCE_FAILURE_BURST": str(SOURCE_BURST), "KEYLESS_SOURCE_FAILURE_RATE": "0.001",
              "KEYLESS_SOURCE_CLIENT_FAILURE_BURST": "1000000", "KEYLESS_CLIENT_FAILURE_BURST": "1000000"}


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, RunningServer]]:
    with replicas_on_postgres(tmp_path_factory.mktemp("replicas"), SHARED_ENV) as pair:
        yield pair


def _token(http: httpx.Client, server: RunningServer, client_id: str, secret: str, scope: str) -> httpx.Response:
    return http.post(server.token_endpoint, data={"grant_type": "client_credentials", "client_id": client_id,
                                                  "client_secret": secret, "scope": scope})


def _refused_within(http: httpx.Client, server: RunningServer, client_id: str, secret: str, scope: str,
                    since: float) -> tuple[float, httpx.Response]:
    """Ask until the replica refuses (bounded at 10 s, far past the promise); the time it took."""
    while True:
        response = _token(http, server, client_id, secret, scope)
        if response.status_code != 200 or time.monotonic() - since > 10:
            return time.monotonic() - since, response
        time.sleep(0.02)


def test_a_secret_revoked_on_one_replica_is_refused_by_another_within_a_second(
    replicas: tuple[RunningServer, RunningServer],
) -> None:
    first, second = replicas
    uri = f"api://prop-{uuid.uuid4().hex[:8]}"
    with Admin(first) as admin, second.http() as http:
        client, secret = admin.client_with_role(uri)
        scope = f"{uri}/.default"
        assert _token(http, second, client["client_id"], secret, scope).status_code == 200  # cached on B now
        secret_id = admin.api.call("GET", f"/applications/{client['client_id']}/secrets")[0]["id"]
        admin.api.call("DELETE", f"/applications/{client['client_id']}/secrets/{secret_id}")
        took, refused = _refused_within(http, second, client["client_id"], secret, scope, time.monotonic())
    assert refused.status_code == 401
    assert refused.json() == AUTH_FAILED
    assert took < BOUND, f"replica B accepted a revoked secret for {took:.2f} s"
    with second.http() as http:  # and B measured how long the news took (keyless_change_propagation_seconds)
        metrics = http.get(f"{second.url}/metrics").text
    counts = [float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
              if line.startswith("keyless_change_propagation_seconds_count")]
    assert counts and counts[0] >= 1
    within = [line for line in metrics.splitlines()
              if line.startswith('keyless_change_propagation_seconds_bucket{le="1.0"}')]
    assert within and float(within[0].rsplit(" ", 1)[1]) == counts[0]


def test_a_grant_removed_on_one_replica_is_refused_by_another_within_a_second(
    replicas: tuple[RunningServer, RunningServer],
) -> None:
    first, second = replicas
    uri = f"api://prop-{uuid.uuid4().hex[:8]}"
    with Admin(first) as admin, second.http() as http:
        client, secret = admin.client_with_role(uri)
        scope = f"{uri}/.default"
        assert _token(http, second, client["client_id"], secret, scope).status_code == 200
        grants = admin.api.call("GET", "/grants", params={"client_id": client["client_id"]})
        since = time.monotonic()
        for grant in grants:
            admin.api.call("DELETE", f"/grants/{grant['id']}")
        deadline = since + 10
        while time.monotonic() < deadline:
            token = _token(http, second, client["client_id"], secret, scope)
            if token.status_code != 200 or "roles" not in _claims(token.json()["access_token"]):
                break
            time.sleep(0.02)
        took = time.monotonic() - since
    assert took < BOUND, f"replica B issued the removed role for {took:.2f} s"


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    data: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return data


def test_a_replica_that_loses_its_change_feed_listens_again_and_says_so(
    replicas: tuple[RunningServer, RunningServer],
) -> None:
    first, second = replicas
    assert first.database_url is not None
    with second.http() as http:
        assert http.get(f"{second.url}/readyz").json()["checks"]["change_feed"] == "ok"

    async def cut_listeners() -> int:
        conn = await asyncpg.connect(first.database_url)
        try:
            rows = await conn.fetch("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = current_database() AND query LIKE 'LISTEN%'")
            return len(rows)
        finally:
            await conn.close()

    assert asyncio.run(cut_listeners()) == 2  # one per replica
    uri = f"api://prop-{uuid.uuid4().hex[:8]}"
    with Admin(first) as admin, second.http() as http:
        client, secret = admin.client_with_role(uri)
        scope = f"{uri}/.default"
        deadline = time.monotonic() + 15
        while http.get(f"{second.url}/readyz").json()["checks"]["change_feed"] != "ok":
            assert time.monotonic() < deadline, "the change feed did not come back"
            time.sleep(0.1)
        assert _token(http, second, client["client_id"], secret, scope).status_code == 200
        secret_id = admin.api.call("GET", f"/applications/{client['client_id']}/secrets")[0]["id"]
        admin.api.call("DELETE", f"/applications/{client['client_id']}/secrets/{secret_id}")
        took, refused = _refused_within(http, second, client["client_id"], secret, scope, time.monotonic())
    assert refused.status_code == 401
    assert took < BOUND
    with second.http() as http:
        metrics = http.get(f"{second.url}/metrics").text
    assert "keyless_change_feed_up 1.0" in metrics


def test_replicas_share_one_failure_budget_per_source(replicas: tuple[RunningServer, RunningServer]) -> None:
    """A source guessing through two replicas gets one budget, not one per replica (plus at most one
    guess per other replica before it hears the shared count)."""
    first, second = replicas
    context = ssl.create_default_context(cafile=first.ca)
    clients = [httpx.Client(verify=context, timeout=10,
                            transport=httpx.HTTPTransport(verify=context, local_address="127.0.0.9"))
               for _ in (first, second)]
    failures = 0
    try:
        for attempt in range(4 * SOURCE_BURST):
            server = (first, second)[attempt % 2]
            response = _token(clients[attempt % 2], server, str(uuid.uuid4()), "kls_wrong", "api://x/.default")
            if response.status_code == 401:
                failures += 1
                time.sleep(0.05)  # let the replica hear the shared count, as it would between real guesses
                continue
            assert response.status_code == 429
            assert "retry-after" in response.headers
            if all(_token(c, s, str(uuid.uuid4()), "kls_wrong", "api://x/.default").status_code == 429
                   for c, s in zip(clients, (first, second), strict=True)):
                break
    finally:
        for c in clients:
            c.close()
    assert SOURCE_BURST - 1 <= failures <= SOURCE_BURST + 1, failures  # per replica it would be 2 x the budget
