"""The vault's read caches on replicas (docs/vault.md, "Consistency and durability"): a read is served
from per-process caches — the sealed version and its unwrapped data key (`keyless.vault.envelope.
DataKeys`) — so a write, a delete, a purge and a restore through one replica must show on that replica
at once and on another within the change feed's bound (1 s, docs/deployment.md), however warm the
other's caches were. The restore brings back the same version ids under new data keys: the case a
data-key memo keyed by version would get wrong."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.support.server import Admin, RunningServer, replicas_on_postgres
from tests.support.vault import VaultHttp, new_user, new_vault, vault_token

BOUND = 1.0


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, RunningServer]]:
    with replicas_on_postgres(tmp_path_factory.mktemp("vault-replicas")) as pair:
        yield pair


def _within(read: Callable[[], httpx.Response], done: Callable[[httpx.Response], bool]) -> tuple[float, httpx.Response]:
    """Read until `done` (bounded at 10 s, far past the promise); the time it took."""
    since = time.monotonic()
    while True:
        response = read()
        if done(response) or time.monotonic() - since > 10:
            return time.monotonic() - since, response
        time.sleep(0.02)


def _value(response: httpx.Response) -> str | None:
    return response.json().get("value") if response.status_code == 200 else None


def test_a_secret_changed_deleted_purged_and_restored_on_one_replica_reads_right_on_both(
    replicas: tuple[RunningServer, RunningServer],
) -> None:
    first, second = replicas
    with Admin(first) as admin:
        vault = new_vault(admin)
        user = new_user(admin, vault, roles=("Secrets.Officer", "Secrets.Purge"))
    a_token, b_token = vault_token(first, user), vault_token(second, user)  # each replica's own vault resource
    with VaultHttp(first, vault, a_token) as a, VaultHttp(second, vault, b_token) as b:
        assert a.request("PUT", "/secrets/db", json={"value": "one"}).status_code == 200
        for _ in range(3):  # B's caches warm: the version, its data key, the grants
            assert _value(b.request("GET", "/secrets/db/")) == "one"

        assert a.request("PUT", "/secrets/db", json={"value": "two"}).status_code == 200
        assert _value(a.request("GET", "/secrets/db/")) == "two"  # this replica: at once
        took, seen = _within(lambda: b.request("GET", "/secrets/db/"), lambda r: _value(r) == "two")
        assert _value(seen) == "two" and took < BOUND, f"B served the old value for {took:.2f} s"

        blob = a.request("POST", "/secrets/db/backup").json()["value"]
        assert a.request("DELETE", "/secrets/db").status_code == 200
        assert a.request("GET", "/secrets/db/").status_code == 404
        took, seen = _within(lambda: b.request("GET", "/secrets/db/"), lambda r: r.status_code == 404)
        assert seen.status_code == 404 and took < BOUND, f"B served a deleted secret for {took:.2f} s"

        assert a.request("DELETE", "/deletedsecrets/db").status_code == 204
        restored = a.request("POST", "/secrets/restore", json={"value": blob})
        assert restored.status_code == 200, restored.text
        assert _value(a.request("GET", "/secrets/db/")) == "two"
        took, seen = _within(lambda: b.request("GET", "/secrets/db/"), lambda r: r.status_code == 200)
        assert _value(seen) == "two" and took < BOUND, f"B took {took:.2f} s to serve the restored secret"
        versions = {v["id"].rsplit("/", 1)[1] for v in a.request("GET", "/secrets/db/versions").json()["value"]}
        for version in versions:  # the same ids as before the purge, each under a new data key, on both
            assert a.request("GET", f"/secrets/db/{version}").status_code == 200
            assert b.request("GET", f"/secrets/db/{version}").status_code == 200
