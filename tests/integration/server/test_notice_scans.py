"""Scheduled scans against a real server (docs/notifications.md, "Scheduled scans"): a secret that
expires within 7 days and is never used earns one `credential.expiring` and one `credential.unused`
webhook, however many scans run after; the memory of a notice whose credential is gone is dropped."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook

from keyless.store import db
from keyless.store.outbox_tables import outbox_events
from tests.conftest import SHARED_ENV
from tests.support.server import Admin, RunningServer, start_server, stop_server
from tests.support.webhooks import receiver


def test_expiring_and_unused_credentials_are_notified_once(tmp_path: Path) -> None:
    with receiver(tmp_path / "r") as hooks:
        env = {**SHARED_ENV, **hooks.env(), "KEYLESS_NOTICE_SCAN_INTERVAL": "0.5",
               "KEYLESS_UNUSED_NOTICE_DAYS": "0.00003"}  # ~2.6 s without a sign-in
        srv = start_server(tmp_path / "s", env=env)
        try:
            with Admin(srv) as admin:
                hook = admin.api.call("POST", "/webhooks", json_body={
                    "url": hooks.url, "event_types": ["credential.expiring", "credential.unused"]})
                app = admin.app("expiring-worker")
                secret = admin.secret(app["client_id"], expires_in=2 * 86400)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                mine = [r for r in hooks.received if r.json()["subject"] == secret["id"]]
                if {r.json()["type"] for r in mine} == {"credential.expiring", "credential.unused"}:
                    break
                time.sleep(0.1)
            time.sleep(2.0)  # several more scans: nothing is sent twice
            mine = [r for r in hooks.received if r.json()["subject"] == secret["id"]]
            assert Counter(r.json()["type"] for r in mine) == {"credential.expiring": 1, "credential.unused": 1}
            expiring = next(Webhook(hook["secret"]).verify(r.body, r.headers) for r in mine
                            if r.json()["type"] == "credential.expiring")
            data = expiring["data"]
            assert (data["days"], data["kind"], data["owner_kind"], data["owner_id"], data["owner_name"]) == (
                7, "secret", "application", app["client_id"], "expiring-worker")
            assert data["label"] == secret["hint"] and secret["secret"] not in str(expiring)
        finally:
            stop_server(srv)


def _keys(server: RunningServer, days_back: float = 0) -> dict[str, tuple[str | None, str]]:
    """The server's outbox events of credential notices: id -> (dedupe key, subject); `days_back`
    first moves every such event that many days into the past."""
    async def run() -> dict[str, tuple[str | None, str]]:
        engine = db.create_engine(db.sqlite_url(server.data_dir / "keyless.db"))
        e = outbox_events
        try:
            async with engine.begin() as conn:
                notices = e.c.type.in_(("credential.expiring", "credential.unused"))
                if days_back:
                    await conn.execute(update(e).where(notices).values(time=e.c.time - days_back * 86400))
                return {r.id: (r.dedupe, r.subject) for r in await conn.execute(select(e).where(notices))}
        finally:
            await engine.dispose()
    return asyncio.run(run())


def test_the_memory_of_notices_is_dropped_when_their_credential_is_gone(tmp_path: Path) -> None:
    """A notice's dedupe key is kept while its fact holds and dropped once its credential is gone and
    the notice is older than the longest expiry window plus a week; a scan sends nothing twice either way."""
    srv = start_server(tmp_path / "s", env={**SHARED_ENV, "KEYLESS_NOTICE_SCAN_INTERVAL": "0.5"})
    try:
        with Admin(srv) as admin:
            gone_app, kept_app = admin.app("notice-gone"), admin.app("notice-kept")
            gone = admin.secret(gone_app["client_id"], expires_in=2 * 86400)
            kept = admin.secret(kept_app["client_id"], expires_in=2 * 86400)
            deadline = time.monotonic() + 20
            while {s for _, s in _keys(srv).values()} != {gone["id"], kept["id"]} and time.monotonic() < deadline:
                time.sleep(0.2)
            admin.api.call("DELETE", f"/applications/{gone_app['client_id']}/secrets/{gone['id']}")
            _keys(srv, days_back=38)  # both notices are now older than 30 + 7 days
            while time.monotonic() < deadline + 20:
                keys = _keys(srv)
                if all(key is None for key, subject in keys.values() if subject == gone["id"]):
                    break
                time.sleep(0.2)
            time.sleep(1.5)  # more scans
            keys = _keys(srv)
            assert [key for key, subject in keys.values() if subject == gone["id"]] == [None]  # forgotten
            kept_keys = [key for key, subject in keys.values() if subject == kept["id"]]
            assert len(kept_keys) == 1 and kept_keys[0] is not None  # still expiring: remembered, not re-sent
    finally:
        stop_server(srv)
