"""Scheduled signing-key rotation in a running server (KEYLESS_KEY_ROTATION_INTERVAL): a key that has
signed longer than the interval gets a successor, published before it signs, exactly once per due
rotation, with an audit record naming the scheduler. One replica at a time is the lease's job
(tests/unit/store/test_leases.py races six acquirers on SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from pathlib import Path

from keyless.directory.key_schedule import SCHEDULER
from tests.support.server import Admin, start_server, stop_server


def test_a_due_signing_key_is_rotated_once_and_audited(tmp_path: Path) -> None:
    server = start_server(tmp_path, env={"KEYLESS_KEY_ROTATION_INTERVAL": "1",
                                         "KEYLESS_KEY_ROTATION_CHECK": "0.2"})
    try:
        with Admin(server) as admin:
            deadline = time.monotonic() + 15
            while len(keys := admin.api.call("GET", "/keys")) < 2:
                assert time.monotonic() < deadline, "no scheduled rotation"
                time.sleep(0.2)
            time.sleep(1.5)  # several more checks: the rotation under way is not doubled
            keys = admin.api.call("GET", "/keys")
            assert sorted(k["status"] for k in keys) == ["active", "next"]
            (new,) = [k for k in keys if k["status"] == "next"]
            rotations = admin.api.call("GET", "/logs/audit", params={"action": "key.rotate"})
            assert [(r["actor"], r["target_id"]) for r in rotations if r["actor"] == SCHEDULER] == [
                (SCHEDULER, new["kid"])]
    finally:
        stop_server(server)
