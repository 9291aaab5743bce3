"""Catalog B07 under concurrency: one client assertion sent twice at the same moment is consumed exactly
once. On each backend with one server, and on PostgreSQL with two `keyless serve` processes sharing one
database (the horizontally scaled deployment), where only the database can arbitrate."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.certs import AUTH_FAILED, ClientCert, assertion_form, claims_for, http_for, new_cert, register
from tests.support.server import Admin, RunningServer, replicas_on_postgres

pytestmark = pytest.mark.filterwarnings("ignore:`verify=<str>` is deprecated:DeprecationWarning")

SHARED_ENV = {"KEYLESS_SOURCE_FAILURE_BURST": "1000000", "KEYLESS_CLIENT_FAILURE_BURST": "1000000"}
ROUNDS_ONE_SERVER = 10
ROUNDS_TWO_SERVERS = 20


@dataclass
class Setup:
    client_id: str
    cert: ClientCert
    scope: str


def _setup(server: RunningServer, admin: Admin) -> Setup:
    resource = f"api://replay-{uuid.uuid4().hex[:8]}"
    admin.app(f"replay-res-{uuid.uuid4().hex[:6]}", identifier_uri=resource, roles=("Data.Read",))
    client_id = admin.app(f"replay-client-{uuid.uuid4().hex[:6]}")["client_id"]
    admin.grant(client_id, resource, "Data.Read")
    cert = new_cert()
    register(server, admin, client_id, cert)
    return Setup(client_id=client_id, cert=cert, scope=f"{resource}/.default")


def _race(targets: list[tuple[httpx.Client, str]], form: dict[str, str]) -> list[httpx.Response]:
    """POST `form` to every (client, url) at once, each from its own thread and connection."""
    barrier = threading.Barrier(len(targets))
    results: list[httpx.Response | BaseException | None] = [None] * len(targets)

    def send(i: int, http: httpx.Client, url: str) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = http.post(url, data=form)
        except BaseException as exc:  # reported below, in the test's thread
            results[i] = exc

    threads = [threading.Thread(target=send, args=(i, h, u)) for i, (h, u) in enumerate(targets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    out: list[httpx.Response] = []
    for r in results:
        if not isinstance(r, httpx.Response):
            raise AssertionError(f"a concurrent request failed: {r!r}")
        out.append(r)
    return out


def _exactly_one_success(responses: list[httpx.Response]) -> None:
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [401] * (len(responses) - 1), [r.text for r in responses]
    for r in responses:
        if r.status_code == 401:
            assert r.json() == AUTH_FAILED
        else:
            assert r.json()["token_type"] == "Bearer"


def _warm(http: httpx.Client, server_url: str) -> None:
    """Open the keep-alive TLS connection before the race, so both requests leave at once."""
    assert http.get(f"{server_url}/readyz").status_code == 200


def test_b07_concurrent_sends_one_server(server: RunningServer, admin: Admin) -> None:
    s = _setup(server, admin)
    with http_for(server) as a, http_for(server) as b:
        _warm(a, server.url)
        _warm(b, server.url)
        for _ in range(ROUNDS_ONE_SERVER):
            assertion = s.cert.sign(claims_for(s.client_id, server.issuer))
            form = assertion_form(assertion, s.scope)
            _exactly_one_success(_race([(a, server.token_endpoint), (b, server.token_endpoint)], form))
            # ... and a third, later send is refused as well.
            late = a.post(server.token_endpoint, data=form)
            assert late.status_code == 401 and late.json() == AUTH_FAILED


def test_b07_concurrent_burst_one_server(server: RunningServer, admin: Admin) -> None:
    """Eight connections racing one assertion: still exactly one token."""
    s = _setup(server, admin)
    clients = [http_for(server) for _ in range(8)]
    try:
        for c in clients:
            _warm(c, server.url)
        for _ in range(3):
            form = assertion_form(s.cert.sign(claims_for(s.client_id, server.issuer)), s.scope)
            _exactly_one_success(_race([(c, server.token_endpoint) for c in clients], form))
    finally:
        for c in clients:
            c.close()


# -- two server processes, one PostgreSQL database -----------------------------------------------------------



@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[tuple[RunningServer, RunningServer]]:
    with replicas_on_postgres(tmp_path, SHARED_ENV) as pair:
        yield pair


@pytest.mark.postgres
def test_b07_concurrent_sends_two_servers_one_database(two_servers: tuple[RunningServer, RunningServer]) -> None:
    first, second = two_servers
    with Admin(first) as admin:
        s = _setup(first, admin)
    second_endpoint = f"{second.url}/{first.tenant_id}/oauth2/v2.0/token"
    with http_for(first) as a, http_for(first) as b:
        _warm(a, first.url)
        _warm(b, second.url)
        # Each server on its own accepts an assertion addressed to the shared issuer.
        for http, url in ((a, first.token_endpoint), (b, second_endpoint)):
            resp = http.post(url, data=assertion_form(s.cert.sign(claims_for(s.client_id, first.issuer)), s.scope))
            assert resp.status_code == 200, resp.text
            assert resp.json()["token_type"] == "Bearer"
        # The race: every jti is honoured by exactly one of the two processes.
        winners = {"first": 0, "second": 0}
        for _ in range(ROUNDS_TWO_SERVERS):
            claims = claims_for(s.client_id, first.issuer, jti=str(uuid.uuid4()))
            form = assertion_form(s.cert.sign(claims), s.scope)
            responses = _race([(a, first.token_endpoint), (b, second_endpoint)], form)
            _exactly_one_success(responses)
            winners["first" if responses[0].status_code == 200 else "second"] += 1
            # Neither process accepts it afterwards.
            for http, url in ((a, first.token_endpoint), (b, second_endpoint)):
                assert http.post(url, data=form).status_code == 401
        assert sum(winners.values()) == ROUNDS_TWO_SERVERS
