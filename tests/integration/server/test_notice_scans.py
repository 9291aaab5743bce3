"""Scheduled scans against a real server (docs/notifications.md, "Scheduled scans"): a secret that
expires within 7 days and is never used earns one `credential.expiring` and one `credential.unused`
webhook, however many scans run after."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from standardwebhooks.webhooks import Webhook

from tests.conftest import SHARED_ENV
from tests.support.server import Admin, start_server, stop_server
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
