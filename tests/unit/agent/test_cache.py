"""Token cache: single flight, refresh ahead of expiry, outage behaviour, no negative caching."""

from __future__ import annotations

import asyncio

import pytest

from keyless.agent.cache import AgentTokenCache
from keyless.agent.server_api import ServerUnavailable
from keyless.client.core import Token
from keyless.clock import FrozenClock


class Server:
    def __init__(self, clock: FrozenClock) -> None:
        self.clock = clock
        self.calls = 0
        self.down = False

    async def fetch(self, identity: str, resource: str) -> Token:
        self.calls += 1
        await asyncio.sleep(0.01)
        if self.down:
            raise ServerUnavailable("down")
        now = self.clock.now()
        return Token(f"{identity}|{resource}|{self.calls}", now + 3600, now + 1800)


async def test_concurrent_first_requests_share_one_fetch() -> None:
    clock = FrozenClock(1000.0)
    server = Server(clock)
    cache = AgentTokenCache(server.fetch, clock)
    tokens = await asyncio.gather(*[cache.get("id", "api://r") for _ in range(20)])
    assert server.calls == 1 and len({t.access_token for t in tokens}) == 1
    assert cache.peek("id", "api://r") is tokens[0]
    assert cache.peek("other", "api://r") is None


async def test_refresh_ahead_and_outage() -> None:
    clock = FrozenClock(1000.0)
    server = Server(clock)
    cache = AgentTokenCache(server.fetch, clock)
    first = await cache.get("id", "api://r")
    assert await cache.refresh_due() == 0 and server.calls == 1  # not due yet
    clock.advance(1801)
    server.down = True
    assert await cache.refresh_due() == 1
    assert cache.peek("id", "api://r") is first  # still served during the outage
    assert await cache.refresh_due() == 0 and server.calls == 2  # backing off: no new attempt yet
    clock.advance(3)
    server.down = False
    assert await cache.refresh_due() == 0
    assert cache.peek("id", "api://r") is not first


async def test_failures_are_not_cached_and_expired_entries_go() -> None:
    clock = FrozenClock(1000.0)
    server = Server(clock)
    server.down = True
    cache = AgentTokenCache(server.fetch, clock)
    with pytest.raises(ServerUnavailable):
        await cache.get("id", "api://r")
    server.down = False
    assert (await cache.get("id", "api://r")).access_token.endswith("|2")  # asked again
    clock.advance(3600)
    await cache.refresh_due()
    assert len(cache) == 0
