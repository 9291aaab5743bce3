"""Webhooks against a real server and a real HTTPS receiver on loopback (issue 13 item 3;
docs/notifications.md): signatures verified with the `standardwebhooks` library as a receiver would,
retries with backoff, the delivery log, redelivery by id, an event that survives SIGKILL between the
change and its delivery, and two replicas on PostgreSQL that never deliver one event twice."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from keyless.clock import SystemClock
from keyless.domain.events import SIGNING_KEY_ROTATED, Event
from keyless.store import db
from keyless.store.outbox import SqlOutbox
from tests.conftest import SHARED_ENV
from tests.support.server import Admin, RunningServer, replicas_on_postgres, restart_server, start_server, stop_server
from tests.support.webhooks import Receiver, receiver


@pytest.fixture(scope="module")
def hook_receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    with receiver(tmp_path_factory.mktemp("receiver")) as r:
        yield r


@pytest.fixture(scope="module")
def hook_server(tmp_path_factory: pytest.TempPathFactory, hook_receiver: Receiver) -> Iterator[RunningServer]:
    srv = start_server(tmp_path_factory.mktemp("webhooks"), env={**SHARED_ENV, **hook_receiver.env()})
    try:
        yield srv
    finally:
        stop_server(srv)


def register(admin: Admin, url: str, *types: str) -> dict[str, Any]:
    return dict(admin.api.call("POST", "/webhooks", json_body={"url": url, "event_types": list(types),
                                                                "description": "test receiver"}))


def deliveries(admin: Admin, webhook_id: str) -> list[dict[str, Any]]:
    return list(admin.api.call("GET", f"/webhook-deliveries?webhook={webhook_id}"))


def wait_state(admin: Admin, webhook_id: str, state: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = deliveries(admin, webhook_id)
        if (found and found[0]["state"] == state) or time.monotonic() > deadline:
            assert found and found[0]["state"] == state, found
            return found[0]
        time.sleep(0.1)


def test_a_receiver_verifies_the_signed_delivery_with_the_standardwebhooks_library(
    hook_server: RunningServer, hook_receiver: Receiver
) -> None:
    path = f"/hook/{uuid.uuid4().hex}"
    with Admin(hook_server) as admin:
        created = register(admin, f"https://127.0.0.1:{hook_receiver.port}{path}", SIGNING_KEY_ROTATED)
        secret = created["secret"]
        assert secret.startswith("whsec_")
        assert secret not in str(admin.api.call("GET", "/webhooks"))  # shown once
        assert secret not in str(admin.api.call("GET", f"/webhooks/{created['id']}"))
        key = admin.api.call("POST", "/keys/rotate", json_body={"activate_in": 86400})
        [got] = [r for r in hook_receiver.wait_for(1) if r.path == path] or [None]
        assert got is not None, "no delivery arrived"
        payload = Webhook(secret).verify(got.body, got.headers)  # raises unless signed with the secret
        assert payload["type"] == SIGNING_KEY_ROTATED and payload["data"]["kid"] == key["kid"]
        assert payload["tenant_id"] == hook_server.tenant_id and got.headers["webhook-id"] == payload["id"]
        done = wait_state(admin, created["id"], "delivered")
        assert (done["attempts"], done["last_status"], done["event_id"]) == (1, 204, payload["id"])
        audit = admin.api.call("GET", "/logs/audit?action=webhook.create")
        assert any(r["target_id"] == created["id"] for r in audit)
        assert all(secret not in str(r) and path not in str(r) for r in audit)  # host only, never the URL
        admin.api.call("DELETE", f"/webhooks/{created['id']}")


def test_a_failing_receiver_is_retried_with_backoff_then_redelivered_by_id(
    hook_server: RunningServer, hook_receiver: Receiver
) -> None:
    path = f"/hook/{uuid.uuid4().hex}"
    hook_receiver.status = 500
    try:
        with Admin(hook_server) as admin:
            created = register(admin, f"https://127.0.0.1:{hook_receiver.port}{path}")
            admin.api.call("POST", "/keys/rotate", json_body={"activate_in": 86400})
            deadline = time.monotonic() + 10
            first = wait_state(admin, created["id"], "pending")
            while first["last_attempt_at"] is None and time.monotonic() < deadline:  # the attempt is recorded
                time.sleep(0.05)
                first = deliveries(admin, created["id"])[0]
            assert (first["attempts"], first["last_status"], first["last_error"]) == (1, 500, "http_500")
            wait = first["next_attempt_at"] - first["last_attempt_at"]
            assert 4.0 <= wait <= 6.0, wait  # 5 s ± 20 %
            hook_receiver.status = 204
            done = wait_state(admin, created["id"], "delivered", timeout=15)
            assert done["attempts"] == 2
            detail = admin.api.call("GET", f"/webhook-deliveries/{done['id']}")
            assert [(a["status"], a["error"]) for a in detail["log"]] == [(500, "http_500"), (204, None)]
            again = admin.api.call("POST", f"/webhook-deliveries/{done['id']}/redeliver")
            assert again["id"] == done["id"]
            wait_state(admin, created["id"], "delivered")
            deadline = time.monotonic() + 10
            while len([r for r in hook_receiver.received if r.path == path]) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            ids = {r.headers["webhook-id"] for r in hook_receiver.received if r.path == path}
            assert ids == {done["event_id"]}  # every attempt and the redelivery carry the same id
            assert len([r for r in hook_receiver.received if r.path == path]) == 3
            admin.api.call("DELETE", f"/webhooks/{created['id']}")
    finally:
        hook_receiver.status = 204


def test_an_event_survives_sigkill_between_the_change_and_its_delivery(tmp_path: Path) -> None:
    """The change commits with its event; the server dies before any delivery (its worker is off); the
    restarted server delivers the event, once."""
    with receiver(tmp_path / "r") as hooks:
        srv = start_server(tmp_path / "s", env={**hooks.env(), "KEYLESS_OUTBOX_WORKER": "false"})
        try:
            with Admin(srv) as admin:
                register(admin, hooks.url, SIGNING_KEY_ROTATED)
                key = admin.api.call("POST", "/keys/rotate", json_body={"activate_in": 86400})
            srv.proc.kill()  # SIGKILL: no shutdown of any kind
            srv.proc.wait()
            assert hooks.received == []
            srv.env = {**srv.env, "KEYLESS_OUTBOX_WORKER": "true"}
            restart_server(srv)
            got = hooks.wait_for(1)
            time.sleep(1.5)  # anything sent twice would have arrived by now
            assert len(hooks.received) == 1 and got[0].json()["data"]["kid"] == key["kid"], [
                (r.headers["webhook-id"], r.json()["data"]["kid"]) for r in hooks.received]
        finally:
            stop_server(srv)


async def _emit(url: str, tenant_id: str, count: int) -> list[str]:
    engine = db.create_engine(url)
    try:
        events = [Event(SIGNING_KEY_ROTATED, tenant_id, time.time(), f"kid-{n}", {"kid": f"kid-{n}"})
                  for n in range(count)]
        await SqlOutbox(engine, SystemClock()).emit(events)
        return [e.id for e in events]
    finally:
        await engine.dispose()


def test_two_replicas_on_postgresql_never_deliver_an_event_twice(tmp_path: Path) -> None:
    with receiver(tmp_path / "r") as hooks:
        hooks.delay = 0.02  # sends overlap, so both replicas' workers are busy at once
        with replicas_on_postgres(tmp_path, env={**hooks.env(), "KEYLESS_OUTBOX_POLL_INTERVAL": "0.05"}) as (a, _b):
            with Admin(a) as admin:
                register(admin, hooks.url)
            assert a.database_url is not None
            ids = asyncio.run(_emit(a.database_url, a.tenant_id, 60))
            hooks.wait_for(60, timeout=30)
            time.sleep(1.5)
            counted = Counter(r.headers["webhook-id"] for r in hooks.received)
            assert set(counted) == set(ids)
            assert max(counted.values()) == 1, [i for i, n in counted.items() if n > 1]


def test_a_slow_endpoint_gets_two_sends_at_once_and_starves_no_other(tmp_path: Path) -> None:
    """Per-endpoint bounds on a real server (docs/notifications.md, "Rate limits"; catalog O02): a
    receiver that takes 1 s per request is sent at most two at once, and another endpoint of the
    tenant gets its deliveries meanwhile, not after the slow one's backlog."""
    with receiver(tmp_path / "r") as hooks:
        hooks.delay_for["/slow"] = 1.0  # its twelve take six seconds, two at a time
        srv = start_server(tmp_path / "s", env={**hooks.env(), "KEYLESS_WEBHOOK_ENDPOINT_CONCURRENCY": "2"})
        try:
            base = hooks.url.removesuffix("/hook")
            with Admin(srv) as admin:
                register(admin, f"{base}/slow", SIGNING_KEY_ROTATED)
                register(admin, f"{base}/fast", SIGNING_KEY_ROTATED)
            ids = asyncio.run(_emit(db.sqlite_url(srv.data_dir / "keyless.db"), srv.tenant_id, 12))
            hooks.wait_for(24, timeout=30)
            slow = [r for r in hooks.received if r.path == "/slow"]
            fast = [r for r in hooks.received if r.path == "/fast"]
            assert {r.headers["webhook-id"] for r in slow} == {r.headers["webhook-id"] for r in fast} == set(ids)
            assert hooks.most_in_flight["/slow"] == 2  # bounded, and the bound was reached
            assert max(r.time for r in fast) < max(r.time for r in slow) - 2.0  # not queued behind the slow one
        finally:
            stop_server(srv)
