"""Reaping as a credential-policy rule against a real server, on SQLite and PostgreSQL
(docs/policies.md, "Reaping"): with the tenant's rule in `enforce`, a secret unused for N days is
disabled (and refused at the token endpoint), then deleted M days after, each with its audit record
by `keyless:reaper` and its webhook; an application whose override puts the rule in `audit` keeps its
secret and gets one `policy.violation` webhook instead; the dry run lists what would be reaped.

Days pass by back-dating the rows in the database the server reads (the scan runs every 0.5 s)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from keyless.store import db
from keyless.store import tables as t
from tests.conftest import SHARED_ENV
from tests.integration.server.conftest import client_for, secret_post, token_request
from tests.support.server import Admin, RunningServer, postgres_database, require_postgres, start_server, stop_server
from tests.support.webhooks import Receiver, receiver

DAY = 86400


@pytest.fixture(params=["sqlite", "postgresql"])
def reaping_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[RunningServer, Receiver]]:
    with receiver(tmp_path / "r") as hooks:
        env = {**SHARED_ENV, **hooks.env(), "KEYLESS_NOTICE_SCAN_INTERVAL": "0.5"}
        if request.param == "postgresql":
            require_postgres()
            with postgres_database() as url:
                srv = start_server(tmp_path / "s", database_url=url, env=env)
                try:
                    yield srv, hooks
                finally:
                    stop_server(srv)
            return
        srv = start_server(tmp_path / "s", env=env)
        try:
            yield srv, hooks
        finally:
            stop_server(srv)


def backdate(server: RunningServer, secret_id: str, **columns: float) -> None:
    """Move a secret's times into the past, in the database the server reads."""
    async def run() -> None:
        engine = db.create_engine(server.database_url or db.sqlite_url(server.data_dir / "keyless.db"))
        try:
            async with engine.begin() as conn:
                await conn.execute(update(t.client_secrets).where(t.client_secrets.c.id == secret_id).values(**columns))
        finally:
            await engine.dispose()
    asyncio.run(run())


def wait_until(check: Callable[[], Any], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            assert found, "timed out"
            return found
        time.sleep(0.2)


def audit(admin: Admin, action: str) -> list[dict[str, Any]]:
    return list(admin.api.call("GET", f"/logs/audit?action={action}"))


def test_unused_secret_is_disabled_under_enforce_reported_under_audit_then_deleted(
        reaping_server: tuple[RunningServer, Receiver]) -> None:
    server, hooks = reaping_server
    with Admin(server) as admin:
        admin.api.call("POST", "/webhooks", json_body={"url": hooks.url, "event_types": [
            "credential.disabled", "credential.deleted", "policy.violation"]})
        resource = f"api://reap-{server.tenant_id[:8]}"
        admin.app("reap-api", identifier_uri=resource, roles=("Data.Read",))
        enforced, audited = admin.app("reap-enforced"), admin.app("reap-audited")
        admin.grant(enforced["client_id"], resource, "Data.Read")
        gone = admin.secret(enforced["client_id"], expires_in=365 * DAY)
        kept = admin.secret(audited["client_id"], expires_in=365 * DAY)
        rule = {"mode": "enforce", "unused_days": 30, "delete_after_days": 10}
        candidate = {"reaping": rule}
        dry = admin.api.call("POST", "/policy/test", json_body={"policy": candidate})
        assert dry["reaping"] == [] and dry["reaped"] == 0  # nothing is 30 days old yet

        now = time.time()
        backdate(server, gone["id"], created_at=now - 31 * DAY)
        backdate(server, kept["id"], created_at=now - 31 * DAY)
        dry = admin.api.call("POST", "/policy/test", json_body={"policy": candidate})
        assert sorted(f["credential_id"] for f in dry["reaping"]) == sorted([gone["id"], kept["id"]])
        assert dry["reaped"] == 2 and {f["reason"] for f in dry["reaping"]} == {"policy_reap_unused"}
        (server.data_dir.parent / "reaping.json").write_text(json.dumps(candidate))
        table = server.cli("policy", "test", "--file", str(server.data_dir.parent / "reaping.json")).stdout
        assert "reaping: 2 finding(s), 2 would be disabled or deleted now" in table and gone["id"] in table

        admin.api.call("PUT", f"/applications/{audited['client_id']}/policy",
                       json_body={"reaping": {**rule, "mode": "audit"}})
        admin.api.call("PUT", "/policy", json_body=candidate)
        shown = admin.api.call("GET", f"/applications/{audited['client_id']}/policy")
        assert shown["effective"]["reaping"] == {**rule, "mode": "audit"}

        [disabled] = wait_until(lambda: audit(admin, "credential.disable"))
        assert (disabled["actor"], disabled["target_id"], disabled["details"]["reason"]) == (
            "keyless:reaper", gone["id"], "unused")
        with client_for(server) as http:
            refused = token_request(http, server, secret_post(enforced["client_id"], gone["secret"],
                                                              f"{resource}/.default"))
        assert refused.status_code == 401
        reported = wait_until(lambda: hooks.wait_for(1, timeout=0.1, event_type="policy.violation"))
        assert [(r.json()["subject"], r.json()["data"]["during"], r.json()["data"]["reasons"]) for r in reported] == [
            (kept["id"], "reaping", ["policy_reap_unused"])]
        live = {c["id"] for c in admin.api.call("GET", "/credentials")}
        assert kept["id"] in live and gone["id"] not in live  # audit: reported, not disabled

        backdate(server, gone["id"], revoked_at=time.time() - 11 * DAY)
        [deleted] = wait_until(lambda: audit(admin, "credential.delete"))
        assert (deleted["actor"], deleted["target_id"]) == ("keyless:reaper", gone["id"])
        assert hooks.wait_for(1, event_type="credential.deleted")[0].json()["subject"] == gone["id"]
        assert hooks.wait_for(1, event_type="credential.disabled")[0].json()["subject"] == gone["id"]
        time.sleep(1.5)  # more scans: nothing reported or reaped twice
        assert len(hooks.wait_for(1, timeout=0.1, event_type="policy.violation")) == 1
        assert len(audit(admin, "credential.disable")) == 1 and kept["id"] in {
            c["id"] for c in admin.api.call("GET", "/credentials")}


def test_the_deprecated_installation_settings_still_reap_where_no_policy_sets_the_rule(tmp_path: Path) -> None:
    """An existing deployment's `KEYLESS_REAP_UNUSED_DAYS` keeps working (as an enforce rule where no
    policy sets `reaping`), is shown by `policy show` and warned about at start; an override wins."""
    env = {**SHARED_ENV, "KEYLESS_NOTICE_SCAN_INTERVAL": "0.5", "KEYLESS_REAP_UNUSED_DAYS": "45"}
    server = start_server(tmp_path / "s", env=env)
    try:
        with Admin(server) as admin:
            old, exempt = admin.app("reap-old"), admin.app("reap-exempt")
            gone = admin.secret(old["client_id"], expires_in=365 * DAY)
            spared = admin.secret(exempt["client_id"], expires_in=365 * DAY)
            admin.api.call("PUT", f"/applications/{exempt['client_id']}/policy",
                           json_body={"reaping": {"mode": "off"}})
            shown = server.cli_json("policy", "show")
            assert shown["installation"] == {"reaping": {"mode": "enforce", "unused_days": 45.0,
                                                         "delete_after_days": None}}
            for secret in (gone, spared):
                backdate(server, secret["id"], created_at=time.time() - 46 * DAY)
            [disabled] = wait_until(lambda: audit(admin, "credential.disable"))
            assert disabled["target_id"] == gone["id"]
            time.sleep(1.0)
            assert spared["id"] in {c["id"] for c in admin.api.call("GET", "/credentials")}
        assert "deprecated_setting" in server.logs()
    finally:
        stop_server(server)
