"""The agent's life with a real server: renewal under a frozen-then-advanced clock with zero failed
requests, host removal, and a server outage (cached tokens keep flowing; refresh resumes).

The agent runs in-process here so its clock can be frozen and moved; it talks to a real
`keyless serve` subprocess over HTTPS exactly as the `keyless agent` process does.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from keyless.agent.credential import load
from keyless.agent.runtime import Agent
from keyless.agent.server_api import ServerRefused
from keyless.agent.settings import AgentSettings
from keyless.agent.state import StateDir
from keyless.clock import FrozenClock
from tests.integration.agent.conftest import claims_of
from tests.support.agent import host_with_resource
from tests.support.server import RunningServer, _wait_ready, cli_command, free_port, start_server, stop_server

DAY = 86400


def _settings(server: RunningServer, tmp: Path, host: dict[str, Any]) -> AgentSettings:
    return AgentSettings(server=server.url, ca_file=server.ca, join_token=host["join_token"],
                         state_dir=tmp / "state", listen=f"127.0.0.1:{free_port()}", poll_interval=3600,
                         refresh_interval=3600, renewal_grace=0)


async def _get(http: httpx.AsyncClient, agent: Agent, resource: str) -> httpx.Response:
    return await http.get(f"http://127.0.0.1:{agent.bound_port}/metadata/identity/oauth2/token",
                          params={"api-version": "2018-02-01", "resource": resource},
                          headers={"Metadata": "true"})


@pytest.fixture
async def running(server: RunningServer, tmp_path: Path) -> AsyncIterator[tuple[Agent, FrozenClock, str]]:
    """An in-process agent against the shared server, on each storage backend."""
    host, uri = host_with_resource(server)
    clock = FrozenClock(time.time())
    agent = Agent(_settings(server, tmp_path, host), clock=clock)
    await agent.start()
    try:
        yield agent, clock, uri
    finally:
        await agent.stop()


async def test_renewal_at_half_life_with_zero_failed_requests(running: tuple[Agent, FrozenClock, str],
                                                              server: RunningServer) -> None:
    agent, clock, uri = running
    assert agent.credential is not None
    first = agent.credential.material
    assert first.not_after - first.not_before == pytest.approx(7 * DAY, abs=1)  # the default lifetime
    assert not await agent.renew_if_due()  # frozen: nothing due
    clock.advance(3 * DAY)
    assert not await agent.renew_if_due()
    failures: list[int] = []
    sent = [0]
    done = asyncio.Event()

    async def hammer() -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            while not done.is_set():
                resp = await _get(http, agent, uri)
                sent[0] += 1
                if resp.status_code != 200:
                    failures.append(resp.status_code)

    workers = [asyncio.create_task(hammer()) for _ in range(4)]
    for _ in range(200):  # until the token is cached and requests flow
        if sent[0] >= 8:
            break
        await asyncio.sleep(0.05)
    clock.advance(0.6 * DAY)  # past half-life (3.5 days)
    before = sent[0]
    assert await agent.renew_if_due()  # the cached tokens went stale with the clock: requests meanwhile refetch
    for _ in range(200):
        if sent[0] >= before + 8:
            break
        await asyncio.sleep(0.05)
    done.set()
    await asyncio.gather(*workers)
    assert before >= 8 and sent[0] >= before + 8
    assert failures == []  # bench/agent.py also renews (SIGHUP) under load, with tokens still fresh
    second = agent.credential.material
    assert second.certificate_pem != first.certificate_pem and second.not_after >= first.not_after
    assert load(StateDir(agent.settings.state_dir)).material.certificate_pem == second.certificate_pem  # on disk
    # The new key gets tokens (a resource not cached yet forces a server round trip).
    async with httpx.AsyncClient(timeout=10) as http:
        agent.cache.clear()
        resp = await _get(http, agent, uri)
    assert resp.status_code == 200
    shown = server.cli_json("host", "show", agent.credential.host.host_id)
    assert len(shown["certificates"]) == 2  # the previous certificate stays until the next renewal
    assert agent.status()["renewals"] == 1


async def test_host_removal_stops_tokens(running: tuple[Agent, FrozenClock, str], server: RunningServer) -> None:
    agent, _, uri = running
    assert agent.credential is not None
    host = agent.credential.host
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await _get(http, agent, uri)).status_code == 200
        server.cli("host", "remove", host.host_id)
        # The server refuses the host at once, for tokens and for renewal.
        assert agent.api is not None
        with pytest.raises(ServerRefused) as refused:
            await agent.api.token(agent.credential.client_auth(host.system_client_id), host.issuer, uri)
        assert refused.value.error == "invalid_client"
        await agent.poll()  # the agent learns on its next poll and drops its cache
        assert agent.status()["state"] == "revoked" and len(agent.cache) == 0
        resp = await _get(http, agent, uri)
        assert resp.status_code == 400 and resp.json()["error_description"] == "Identity not found"


async def test_revoked_host_cannot_renew(running: tuple[Agent, FrozenClock, str], server: RunningServer) -> None:
    agent, clock, _ = running
    assert agent.credential is not None and agent.api is not None
    server.cli("host", "remove", agent.credential.host.host_id)
    before = agent.credential.material
    clock.advance(4 * DAY)
    assert not await agent.renew_if_due()
    assert agent.revoked and agent.credential.material is before


@pytest.fixture
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    srv = start_server(tmp_path_factory.mktemp("outage"))
    try:
        yield srv
    finally:
        stop_server(srv)


def _restart(server: RunningServer) -> None:
    port = server.url.rsplit(":", 1)[1]
    with server.log_path.open("ab") as log:
        server.proc = subprocess.Popen(cli_command("serve", "--data-dir", str(server.data_dir), "--port", port),
                                       stdout=log, stderr=subprocess.STDOUT)
    _wait_ready(server)


async def test_outage_serves_cached_tokens_then_refresh_resumes(own_server: RunningServer, tmp_path: Path) -> None:
    host, uri = host_with_resource(own_server)
    clock = FrozenClock(time.time())
    agent = Agent(_settings(own_server, tmp_path, host), clock=clock)
    await agent.start()
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            first = (await _get(http, agent, uri)).json()["access_token"]
            stop_server(own_server)
            clock.advance(1900)  # past the refresh time (half of 3600 s), before expiry
            assert await agent.cache.refresh_due() == 1
            assert agent.status()["state"] == "degraded"
            during = await _get(http, agent, uri)
            assert during.status_code == 200 and during.json()["access_token"] == first
            assert int(during.json()["expires_in"]) < 1800
            unknown = await _get(http, agent, "api://never-cached")
            assert unknown.status_code == 503  # nothing cached, server down: an error, never cached
            _restart(own_server)
            clock.advance(5)  # past the retry back-off
            assert await agent.cache.refresh_due() == 0
            after = (await _get(http, agent, uri)).json()
            assert after["access_token"] != first and int(after["expires_in"]) > 3000
            assert agent.status()["state"] == "ok"
            assert claims_of(after["access_token"])["xms_mirid"] == host["system_identity"]["resource_id"]
    finally:
        await agent.stop()
