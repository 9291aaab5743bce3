"""`CachedDirectory`: per-process TTL cache in front of the directory (DESIGN.md §7)."""

from __future__ import annotations

import asyncio

from keyless.cache import TtlCache
from keyless.store.cache import CachedDirectory
from tests.unit.oauth.fakes import World, make_world


def cached(ttl: float = 5.0) -> tuple[World, CachedDirectory]:
    w = make_world()
    return w, CachedDirectory(w.directory, w.clock, ttl=ttl)


async def test_client_served_from_cache_until_ttl() -> None:
    w, cache = cached(ttl=5)
    first = await cache.get_client(w.tenant.id, w.client.client_id)
    assert first is not None and first.app.enabled
    w.directory.set_enabled(w.client, False)
    w.clock.advance(4.999)
    stale = await cache.get_client(w.tenant.id, w.client.client_id)
    assert stale is not None and stale.app.enabled
    assert w.directory.call_count("get_client") == 1
    w.clock.advance(0.001)
    # Expired: this caller still gets the old answer while one refresh runs in the background ...
    stale = await cache.get_client(w.tenant.id, w.client.client_id)
    assert stale is not None and stale.app.enabled
    await asyncio.sleep(0)
    # ... and the next caller sees the change.
    fresh = await cache.get_client(w.tenant.id, w.client.client_id)
    assert fresh is not None and not fresh.app.enabled
    assert w.directory.call_count("get_client") == 2


async def test_expired_beyond_grace_waits_for_fresh_answer() -> None:
    w, cache = cached(ttl=5)
    await cache.get_client(w.tenant.id, w.client.client_id)
    w.directory.set_enabled(w.client, False)
    w.clock.advance(10)  # one ttl past expiry: too old to serve
    fresh = await cache.get_client(w.tenant.id, w.client.client_id)
    assert fresh is not None and not fresh.app.enabled


async def test_concurrent_misses_share_one_load() -> None:
    w, cache = cached(ttl=5)
    results = await asyncio.gather(*[cache.get_client(w.tenant.id, w.client.client_id) for _ in range(64)])
    assert all(r is not None and r.app.client_id == w.client.client_id for r in results)
    assert w.directory.call_count("get_client") == 1


async def test_invalidate_clears_every_cache() -> None:
    w, cache = cached(ttl=300)
    await cache.get_tenant(w.tenant.id)
    await cache.get_client(w.tenant.id, w.client.client_id)
    await cache.get_application(w.tenant.id, w.client.client_id)
    await cache.find_resource(w.tenant.id, "api://orders")
    await cache.assigned_roles(w.tenant.id, w.client.object_id, w.resource.client_id)
    w.directory.set_enabled(w.client, False)
    w.directory.calls.clear()
    cache.invalidate()
    record = await cache.get_client(w.tenant.id, w.client.client_id)
    assert record is not None and not record.app.enabled
    await cache.get_tenant(w.tenant.id)
    await cache.get_application(w.tenant.id, w.client.client_id)
    await cache.find_resource(w.tenant.id, "api://orders")
    await cache.assigned_roles(w.tenant.id, w.client.object_id, w.resource.client_id)
    assert [name for name, _ in w.directory.calls] == ["get_client", "get_tenant", "get_application",
                                                        "find_resource", "assigned_roles"]


async def test_negative_answers_cached_for_ttl() -> None:
    w, cache = cached(ttl=5)
    assert await cache.get_client(w.tenant.id, "00000000-0000-4000-8000-000000000000") is None
    assert await cache.get_client(w.tenant.id, "00000000-0000-4000-8000-000000000000") is None
    assert w.directory.call_count("get_client") == 1
    assert await cache.find_resource(w.tenant.id, "api://new") is None
    w.directory.add_app(w.tenant, "new", identifier_uri="api://new")
    assert await cache.find_resource(w.tenant.id, "api://new") is None
    w.clock.advance(10)
    assert await cache.find_resource(w.tenant.id, "api://new") is not None


async def test_tenant_key_is_case_insensitive() -> None:
    w, cache = cached()
    assert await cache.get_tenant("CONTOSO") == w.tenant
    assert await cache.get_tenant("contoso") == w.tenant
    assert w.directory.calls == [("get_tenant", ("contoso",))]


async def test_entries_are_per_key() -> None:
    w, cache = cached()
    other = w.directory.add_tenant("fabrikam")
    assert await cache.get_client(other.id, w.client.client_id) is None  # same client id, other tenant
    assert await cache.get_client(w.tenant.id, w.client.client_id) is not None


async def test_signing_keys_are_not_cached_here() -> None:
    w, cache = cached(ttl=300)
    await cache.signing_keys(w.tenant.id)
    await cache.signing_keys(w.tenant.id)
    assert w.directory.call_count("signing_keys") == 2


async def test_ttl_cache_bounded() -> None:
    w = make_world()
    cache: TtlCache[int] = TtlCache(w.clock, ttl=60, max_entries=10)
    loads = 0

    async def load() -> int:
        nonlocal loads
        loads += 1
        return loads

    for i in range(100):
        await cache.get((str(i),), load)
    assert len(cache._data) == 10
    await cache.get(("99",), load)
    assert loads == 100  # the newest are still cached
    await cache.get(("0",), load)
    assert loads == 101  # the oldest were evicted
