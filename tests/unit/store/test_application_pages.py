"""The store pages the application list itself (docs/api.md, "Paging"): keyset on (created_at,
client id), so applications made in the same instant are neither repeated nor skipped, and a page of
`GET /applications` never loads the other 20,000. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from keyless.clock import FrozenClock
from keyless.crypto import aead
from keyless.crypto.secrets import SecretHasher
from keyless.directory.errors import Conflict, NotFound
from keyless.directory.service import DirectoryService
from keyless.store import db
from keyless.store.directory import SqlDirectoryStore


async def test_pages_of_applications_made_in_one_instant_cover_each_once(url: str) -> None:
    engine = db.create_engine(url)
    await db.migrate(engine)
    store = SqlDirectoryStore(engine)
    try:
        clock = FrozenClock(1_800_000_000.0)  # every application below has the same created_at
        kek = aead.new_key()
        service = DirectoryService(store, clock, SecretHasher(aead.derive(kek, "pepper")), kek)
        tenant = await service.create_tenant("default", actor="test")
        made = {(await service.create_application(tenant, f"app-{n}", actor="test")).client_id for n in range(7)}
        everything = [a.client_id for a in await service.list_applications(tenant)]
        pages: list[list[str]] = []
        after: tuple[float, str] | None = None
        while True:
            page = await service.list_applications(tenant, after=after, limit=3)
            if not page:
                break
            pages.append([a.client_id for a in page])
            after = (page[-1].created_at, page[-1].client_id)
        assert [len(p) for p in pages][:2] == [3, 3]
        assert [c for p in pages for c in p] == everything  # the same order, nothing twice or lost
        assert made <= set(everything)
    finally:
        await store.release()
        await engine.dispose()


async def test_a_display_name_resolves_by_one_query_and_two_alike_are_ambiguous(url: str) -> None:
    """`app show NAME` and every CLI reference by name: found without loading the tenant's other
    applications; a name two applications share is refused, never guessed."""
    engine = db.create_engine(url)
    await db.migrate(engine)
    store = SqlDirectoryStore(engine)
    try:
        clock = FrozenClock(1_800_000_000.0)
        kek = aead.new_key()
        service = DirectoryService(store, clock, SecretHasher(aead.derive(kek, "pepper")), kek)
        tenant = await service.create_tenant("default", actor="test")
        one = await service.create_application(tenant, "orders", actor="test")
        await service.create_application(tenant, "twin", actor="test")
        await service.create_application(tenant, "twin", actor="test")
        assert (await service.resolve_application(tenant, "orders")).client_id == one.client_id
        with pytest.raises(Conflict):
            await service.resolve_application(tenant, "twin")
        with pytest.raises(NotFound):
            await service.resolve_application(tenant, "Orders")  # exact, as before
    finally:
        await store.release()
        await engine.dispose()
