"""The outbox worker's per-endpoint bounds (keyless.server.outbox_worker; docs/notifications.md,
"Rate limits"), with a frozen clock for the token buckets: the limits alone, then a worker over a real
SQLite outbox sending to a real HTTPS receiver on loopback that counts concurrent requests per path.
A slow endpoint with a backlog gets at most two sends at once and its burst, then one per token as
the clock moves; a second endpoint is served meanwhile, not after the backlog."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from keyless.clock import FrozenClock
from keyless.crypto import aead
from keyless.directory.webhooks import sealing_aad
from keyless.domain.events import SIGNING_KEY_ROTATED, Event
from keyless.domain.model import AuditEvent, Tenant
from keyless.domain.webhooks import WebhookEndpoint
from keyless.server.outbox_worker import EndpointLimits, OutboxWorker
from keyless.server.webhook_sender import WebhookSender
from keyless.store import db
from keyless.store.directory import SqlDirectoryStore
from keyless.store.outbox import SqlOutbox
from keyless.store.webhooks import SqlWebhookStore
from tests.support.webhooks import Receiver, receiver

T0 = 1_800_000_000.0
TENANT = "6f1d3c2a-0000-4000-8000-000000000001"


def test_an_endpoint_may_start_what_its_free_slots_and_tokens_allow() -> None:
    clock = FrozenClock(T0)
    limits = EndpointLimits(clock, concurrency=2, per_second=1, burst=3)
    assert limits.allowance("a") == 2
    limits.start("a")
    limits.start("a")
    assert (limits.allowance("a"), limits.allowance("b")) == (0, 2)  # busy; another endpoint is not
    limits.done("a")
    assert limits.allowance("a") == 1  # one slot, one token left
    limits.start("a")
    limits.done("a")
    limits.done("a")
    assert (limits.allowance("a"), limits.busy("a")) == (0, 0)  # idle, but the burst is spent
    clock.advance(1)
    assert limits.allowance("a") == 1
    clock.advance(10)
    assert limits.allowance("a") == 2  # never more than the slots, however full the bucket
    with pytest.raises(ValueError):
        EndpointLimits(clock, concurrency=0)


@pytest.fixture
async def outbox(tmp_path: Path) -> AsyncIterator[tuple[SqlOutbox, SqlWebhookStore, FrozenClock]]:
    engine = db.create_engine(db.sqlite_url(tmp_path / "o.db"))
    await db.migrate(engine)
    audit = AuditEvent(time=T0, tenant_id=TENANT, actor="t", action="tenant.create", target_type="x", target_id="1")
    await SqlDirectoryStore(engine).create_tenant(Tenant(id=TENANT, name="t", created_at=T0), audit)
    clock = FrozenClock(T0)
    try:
        yield SqlOutbox(engine, clock), SqlWebhookStore(engine), clock
    finally:
        await engine.dispose()


async def _endpoint(hooks: SqlWebhookStore, kek: bytes, url: str, n: int) -> None:
    ep = WebhookEndpoint(id=f"6f1d3c2a-0000-4000-8000-{n:012d}", tenant_id=TENANT, url=url, description="",
                         event_types=(), created_at=T0)
    audit = AuditEvent(time=T0, tenant_id=TENANT, actor="t", action="webhook.create", target_type="x", target_id="1")
    await hooks.add_endpoint(ep, aead.seal(kek, b"k" * 32, sealing_aad(ep.id)), audit)


async def _pump(worker: OutboxWorker, seconds: float) -> None:
    """Rounds as `run` makes them, for `seconds` of real time, then wait for the sends in flight."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await worker.run_once()
        await asyncio.sleep(0.02)
    await worker.drain()


@pytest.fixture
def hooks(tmp_path: Path) -> Iterator[Receiver]:
    with receiver(tmp_path / "r") as r:
        yield r


async def test_a_slow_endpoint_with_a_backlog_is_bounded_and_starves_no_other(
        outbox: tuple[SqlOutbox, SqlWebhookStore, FrozenClock], hooks: Receiver) -> None:
    box, store, clock = outbox
    kek = aead.new_key()
    base = hooks.url.removesuffix("/hook")
    await _endpoint(store, kek, f"{base}/slow", 1)
    await _endpoint(store, kek, f"{base}/fast", 2)
    hooks.delay_for["/slow"] = 0.5
    await box.emit([Event(SIGNING_KEY_ROTATED, TENANT, T0, f"kid-{n}", {"kid": f"kid-{n}"}) for n in range(6)])
    sender = WebhookSender(allow_private=["127.0.0.1"], ca_bundle=hooks.ca_path)
    worker = OutboxWorker(box, sender, kek, clock, limits=EndpointLimits(clock, concurrency=2, per_second=1, burst=5))
    try:
        await _pump(worker, 1.5)
        slow = [r.time for r in hooks.received if r.path == "/slow"]
        fast = [r.time for r in hooks.received if r.path == "/fast"]
        assert (len(slow), len(fast)) == (5, 5)  # the burst each; the sixth waits for a token
        assert hooks.most_in_flight["/slow"] == 2  # two at once, never more
        assert max(fast) < max(slow)  # served while the slow backlog was still being sent
        clock.advance(1)  # one token more per endpoint
        await _pump(worker, 0.6)
        assert sorted(r.path for r in hooks.received) == ["/fast"] * 6 + ["/slow"] * 6
        assert len({(r.path, r.headers["webhook-id"]) for r in hooks.received}) == 12  # each once
        assert (worker.sent, worker.failed) == (12, 0)
    finally:
        await sender.aclose()
