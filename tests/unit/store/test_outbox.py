"""The durable outbox (keyless.store.outbox): events ride their change's transaction, dedupe keys hold,
deliveries are fanned out to subscribed endpoints only, claimed by one worker at a time, and claimed
again when a worker dies; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from keyless.clock import FrozenClock
from keyless.directory.base import notifying
from keyless.domain.events import CREDENTIAL_EXPIRING, SIGNING_KEY_ROTATED, Event
from keyless.domain.model import AuditEvent, Tenant
from keyless.domain.webhooks import WebhookEndpoint
from keyless.store import db
from keyless.store.base import KNOWN_KEYS_CHUNK, insert_audit
from keyless.store.directory import SqlDirectoryStore
from keyless.store.outbox import DeliveryOutcome, SqlOutbox
from keyless.store.outbox_tables import outbox_events
from keyless.store.webhooks import SqlWebhookStore

T0 = 1_800_000_000.0
TENANT = "6f1d3c2a-0000-4000-8000-000000000001"


@dataclass
class Box:
    engine: AsyncEngine
    clock: FrozenClock
    outbox: SqlOutbox
    hooks: SqlWebhookStore


def audit(action: str = "test.change") -> AuditEvent:
    return AuditEvent(time=T0, tenant_id=TENANT, actor="tester", action=action, target_type="x", target_id="1")


def event(kind: str = SIGNING_KEY_ROTATED, dedupe: str | None = None) -> Event:
    return Event(kind, TENANT, T0, "kid-1", {"kid": "kid-1"}, dedupe=dedupe)


@pytest.fixture
async def box(url: str) -> AsyncIterator[Box]:
    engine = db.create_engine(url)
    await db.migrate(engine)
    await SqlDirectoryStore(engine).create_tenant(Tenant(id=TENANT, name="t", created_at=T0), audit("tenant.create"))
    clock = FrozenClock(T0)
    try:
        yield Box(engine, clock, SqlOutbox(engine, clock), SqlWebhookStore(engine))
    finally:
        await engine.dispose()


async def count_events(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(outbox_events))).scalar_one())


async def add_endpoint(box: Box, *types: str) -> WebhookEndpoint:
    ep = WebhookEndpoint(id=f"6f1d3c2a-0000-4000-8000-{len(await box.hooks.list_endpoints(TENANT)):012d}",
                         tenant_id=TENANT, url="https://receiver.example/hook", description="", event_types=types,
                         created_at=T0)
    await box.hooks.add_endpoint(ep, b"sealed", audit("webhook.create"))
    return ep


async def test_event_commits_and_rolls_back_with_its_change(box: Box) -> None:
    async with box.engine.begin() as conn:
        await insert_audit(conn, notifying(audit(), event()))
    assert await count_events(box.engine) == 1

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with box.engine.begin() as conn:
            await insert_audit(conn, notifying(audit(), event()))
            raise Boom  # the change fails after its audit row: the event must go with it
    assert await count_events(box.engine) == 1


async def test_a_dedupe_key_is_emitted_once(box: Box) -> None:
    key = "expiring:30:cred-1:1800000000"
    assert await box.outbox.emit([event(CREDENTIAL_EXPIRING, key)]) == 1
    assert await box.outbox.emit([event(CREDENTIAL_EXPIRING, key), event(CREDENTIAL_EXPIRING, key + "x")]) == 1
    assert await count_events(box.engine) == 2


async def test_a_rescan_of_known_notices_is_looked_up_in_chunks_not_inserted_one_by_one(box: Box) -> None:
    """A scheduled scan finds again every notice it sent before: the known keys cost one query per
    chunk, not one refused insert each; a key twice in one batch, or new beside known ones, still
    counts once."""
    keys = [f"unused:cred-{i}:90" for i in range(KNOWN_KEYS_CHUNK + 100)]
    assert await box.outbox.emit([event(CREDENTIAL_EXPIRING, k) for k in keys]) == len(keys)
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    sqlalchemy_event.listen(box.engine.sync_engine, "before_cursor_execute", seen)
    try:
        again = [event(CREDENTIAL_EXPIRING, k) for k in keys]
        assert await box.outbox.emit(again) == 0
        assert len([s for s in statements if s.lstrip().upper().startswith("INSERT")]) == 0
        assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 2  # two chunks
        fresh = "unused:cred-new:90"
        assert await box.outbox.emit([*again[:3], event(CREDENTIAL_EXPIRING, fresh),
                                      event(CREDENTIAL_EXPIRING, fresh)]) == 1
    finally:
        sqlalchemy_event.remove(box.engine.sync_engine, "before_cursor_execute", seen)
    assert await count_events(box.engine) == len(keys) + 1


async def test_dispatch_queues_one_delivery_per_subscribed_endpoint_once(box: Box) -> None:
    every = await add_endpoint(box)
    keys_only = await add_endpoint(box, SIGNING_KEY_ROTATED)
    await add_endpoint(box, CREDENTIAL_EXPIRING)
    await box.outbox.emit([event()])
    assert await box.outbox.dispatch() == 2
    assert await box.outbox.dispatch() == 0  # dispatched once
    due = await box.outbox.claim(10, hold=60)
    assert sorted(d.endpoint_id for d in due) == sorted([every.id, keys_only.id])
    assert all(d.attempts == 1 for d in due)
    assert await box.outbox.claim(10, hold=60) == []  # held: no second worker gets them


async def test_outcomes_retry_deliver_and_give_up(box: Box) -> None:
    await add_endpoint(box)
    await box.outbox.emit([event()])
    await box.outbox.dispatch()
    [due] = await box.outbox.claim(10, hold=60)
    assert await box.outbox.finish(due, DeliveryOutcome(False, 500, "http_500", 12, retry_at=T0 + 5))
    assert not await box.outbox.finish(due, DeliveryOutcome(True, 200, None, 3))  # that claim is spent
    assert await box.outbox.claim(10, hold=60) == []
    box.clock.advance(5)
    [again] = await box.outbox.claim(10, hold=60)
    assert again.attempts == 2 and again.event_id == due.event_id  # same webhook-id on every attempt
    assert await box.outbox.finish(again, DeliveryOutcome(True, 204, None, 3))
    [delivery] = await box.hooks.list_deliveries(TENANT)
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("delivered", 2, 204)
    log = await box.hooks.attempts(TENANT, delivery.id)
    assert [(a.status, a.error) for a in log] == [(500, "http_500"), (204, None)]
    # redelivery by id: due at once, same event
    assert await box.hooks.redeliver(TENANT, delivery.id, box.clock.now(), audit("webhook.redeliver"))
    [third] = await box.outbox.claim(10, hold=60)
    assert third.event_id == due.event_id and third.attempts == 3
    assert await box.outbox.finish(third, DeliveryOutcome(False, None, "timeout", 10_000, retry_at=None))
    assert (await box.hooks.list_deliveries(TENANT, state="failed"))[0].id == delivery.id


async def test_a_dead_workers_claim_is_taken_again_when_its_hold_ends(box: Box) -> None:
    await add_endpoint(box)
    await box.outbox.emit([event()])
    await box.outbox.dispatch()
    [first] = await box.outbox.claim(10, hold=60)  # this worker dies: it never finishes
    box.clock.advance(59)
    assert await box.outbox.claim(10, hold=60) == []
    box.clock.advance(1)
    [second] = await box.outbox.claim(10, hold=60)
    assert second.delivery_id == first.delivery_id and second.claim != first.claim


async def test_concurrent_workers_claim_disjoint_deliveries(box: Box) -> None:
    for _ in range(3):
        await add_endpoint(box)
    await box.outbox.emit([event() for _ in range(20)])
    await box.outbox.dispatch()
    rounds = await asyncio.gather(*[box.outbox.claim(8, hold=60) for _ in range(10)])
    claimed = [d.delivery_id for r in rounds for d in r]
    assert len(claimed) == len(set(claimed)) > 0  # never one delivery to two workers
    if box.engine.dialect.name == "postgresql":
        # SKIP LOCKED: each worker takes rows the others have not locked, so the round loses nothing.
        assert len(claimed) == 60


async def test_removing_an_endpoint_removes_its_deliveries(box: Box) -> None:
    ep = await add_endpoint(box)
    await box.outbox.emit([event()])
    await box.outbox.dispatch()
    assert await box.hooks.remove_endpoint(TENANT, ep.id, audit("webhook.delete"))
    assert await box.hooks.list_deliveries(TENANT) == []
    assert not await box.hooks.remove_endpoint(TENANT, ep.id, audit("webhook.delete"))


async def test_an_endpoint_gets_no_event_older_than_itself(box: Box) -> None:
    """An event still waiting for fan-out when an endpoint is registered (the worker was down) is not
    news to that endpoint."""
    await box.outbox.emit([Event(SIGNING_KEY_ROTATED, TENANT, T0 - 1, "kid-0", {"kid": "kid-0"})])
    await add_endpoint(box)
    await box.outbox.emit([event()])
    assert await box.outbox.dispatch() == 1
    [due] = await box.outbox.claim(10, hold=60)
    assert '"kid-1"' in due.payload


async def test_purge_forgets_finished_deliveries_but_not_pending_ones_nor_dedupe_memory(box: Box) -> None:
    await add_endpoint(box)
    await box.outbox.emit([event(), event(), event(CREDENTIAL_EXPIRING, "expiring:7:c:1")])
    await box.outbox.dispatch()
    first, second, third = await box.outbox.claim(10, hold=60)
    await box.outbox.finish(first, DeliveryOutcome(True, 204, None, 3))
    await box.outbox.finish(second, DeliveryOutcome(False, 500, "http_500", 3, retry_at=None))  # failed for good
    box.clock.advance(10)
    assert await box.outbox.purge(before=T0) == 0  # nothing older than that
    assert await box.outbox.purge(before=box.clock.now()) == 2  # the third is still pending (held)
    remaining = await box.hooks.list_deliveries(TENANT)
    assert [d.id for d in remaining] == [third.delivery_id]
    assert await box.hooks.attempts(TENANT, first.delivery_id) == []
    async with box.engine.connect() as conn:
        kept = {r.id: r.dedupe for r in await conn.execute(select(outbox_events.c.id, outbox_events.c.dedupe))}
    # what stays: the pending delivery's event, and the event that carries a dedupe key
    assert set(kept) == {third.event_id} | {i for i, key in kept.items() if key is not None}
    assert "expiring:7:c:1" in kept.values()
    assert await box.outbox.emit([event(CREDENTIAL_EXPIRING, "expiring:7:c:1")]) == 0  # still remembered


async def test_a_bounded_claim_takes_each_endpoint_only_up_to_its_allowance(box: Box) -> None:
    """A flooded endpoint (its deliveries oldest) cannot fill a worker's batch: the claim goes endpoint by
    endpoint, the one waiting longest first, each within what the worker may send to it now."""
    flooded, quiet = await add_endpoint(box, SIGNING_KEY_ROTATED), await add_endpoint(box, CREDENTIAL_EXPIRING)
    await box.outbox.emit([event() for _ in range(20)])
    await box.outbox.dispatch()
    box.clock.advance(1)
    await box.outbox.emit([event(CREDENTIAL_EXPIRING)])
    await box.outbox.dispatch()
    allowance = {flooded.id: 2, quiet.id: 2}
    due = await box.outbox.claim(8, hold=60, per_endpoint=lambda endpoint_id: allowance[endpoint_id])
    assert sorted(d.endpoint_id for d in due) == sorted([flooded.id, flooded.id, quiet.id])
    allowance[flooded.id] = 0  # busy or out of tokens: none of its deliveries is claimed
    assert await box.outbox.claim(8, hold=60, per_endpoint=lambda endpoint_id: allowance[endpoint_id]) == []
    assert len(await box.outbox.claim(8, hold=60)) == 8  # unbounded, as before: oldest first


async def test_a_forgotten_dedupe_key_may_be_emitted_again_and_its_event_is_purged(box: Box) -> None:
    await box.outbox.emit([event(CREDENTIAL_EXPIRING, "expiring:7:gone:1"),
                           event(CREDENTIAL_EXPIRING, "expired:kept:1"), event()])
    await box.outbox.dispatch()  # no endpoint: nothing to deliver, the events only remember
    box.clock.advance(10)
    assert await box.outbox.remembered(TENANT, before=T0) == []  # none older than that
    remembered = await box.outbox.remembered(TENANT, before=box.clock.now())
    assert sorted(key for _, key, _ in remembered) == ["expired:kept:1", "expiring:7:gone:1"]
    assert await box.outbox.remembered("6f1d3c2a-0000-4000-8000-000000000009", before=box.clock.now()) == []
    gone = next(i for i, key, _ in remembered if key.startswith("expiring:"))
    assert await box.outbox.forget([gone]) == 1
    assert [key for _, key, _ in await box.outbox.remembered(TENANT, box.clock.now())] == ["expired:kept:1"]
    await box.outbox.purge(before=box.clock.now())
    async with box.engine.connect() as conn:
        left = {r.id: r.dedupe for r in await conn.execute(select(outbox_events.c.id, outbox_events.c.dedupe))}
    assert gone not in left and list(left.values()) == ["expired:kept:1"]  # the remembered one stays
    assert await box.outbox.emit([event(CREDENTIAL_EXPIRING, "expiring:7:gone:1")]) == 1  # sendable again
    assert await box.outbox.emit([event(CREDENTIAL_EXPIRING, "expired:kept:1")]) == 0
