"""A sign-in batch and the last uses it carries are written as one transaction, on both engines (on a
SQLite file through the store's own one-thread writer): every text as the sanitiser makes it, the last
use forward only, and a failed batch leaves nothing behind (its retry writes no row twice)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import Column, Double, MetaData, String, Table

from keyless import text
from keyless.domain.credentials import LastUse
from keyless.domain.model import SignInEvent
from keyless.domain.ports import LogQuery
from keyless.store import base, db
from keyless.store.directory import SqlDirectoryStore
from keyless.store.logrows import SIGNIN_COLUMNS, signin_values
from tests.support.server import end_other_connections
from tests.unit.store.conftest import START, Directory

LIMITS = {"client_id": 64, "credential_id": 64, "credential_type": 16, "resource": 512, "error": 64, "detail": 256,
          "source": 64, "token_id": 64, "grant_type": 64, "auth_method": 32}


def _event(n: int, **texts: Any) -> SignInEvent:
    fields: dict[str, Any] = {"client_id": "c1", "credential_id": None, "credential_type": None,
                              "resource": "api://r", "error": None, "detail": None, "source": "10.0.0.1",
                              "token_id": f"tok-{n}", "grant_type": "client_credentials",
                              "auth_method": "client_secret_post", "result": "success"} | texts
    return SignInEvent(time=START + n, tenant_id="t1", **fields)


HOSTILE = [
    _event(1),
    _event(2),  # the same texts again (remembered), another token id
    _event(3, client_id="evil\x1b[31m\u202e", result="failure", error="invalid_client", detail="bad\nrow\x00"),
    _event(4, client_id="x" * 300, resource="r" * 900, grant_type="", auth_method="a\tb", source="\ud800",
           token_id=None, result="failure", error="invalid_request"),
    _event(5, client_id="名前", detail="naïve ok"),
]


def _expected(e: SignInEvent) -> tuple[Any, ...]:
    """The row by the definition: each text through `text.stored` at its column's width."""
    return tuple(text.stored(getattr(e, c), LIMITS[c]) if c in LIMITS else getattr(e, c) for c in SIGNIN_COLUMNS)


@pytest.fixture
async def directory(directory: Directory) -> AsyncIterator[Directory]:
    """conftest's directory, then what `SignInBatcher.close` does last: the PostgreSQL writer's connection
    back to the pool."""
    yield directory
    await directory.store.release_signin_writer()


def _row(e: SignInEvent) -> tuple[Any, ...]:
    return tuple(getattr(e, c) for c in SIGNIN_COLUMNS)


def test_row_values_are_the_sanitisers_whether_remembered_or_not() -> None:
    for e in HOSTILE + HOSTILE:
        assert signin_values(e) == _expected(e)


async def test_a_batch_is_stored_as_the_sanitiser_makes_it(directory: Directory) -> None:
    await directory.store.record_signin_batch(HOSTILE, {})
    stored = sorted(await directory.store.query_signins(LogQuery(tenant_id="t1")), key=lambda e: e.seq or 0)
    assert [_row(e) for e in stored] == [_expected(e) for e in HOSTILE]


async def _secret(directory: Directory) -> str:
    svc = directory.service
    app = await svc.create_application(directory.tenant, "worker", actor="t")
    secret, _ = await svc.add_secret(directory.tenant, app.client_id, actor="t")
    return str(secret.id)


async def _last_use(directory: Directory, secret_id: str) -> tuple[float | None, str | None]:
    found = {c.id: c for c in await directory.service.credentials.inventory(directory.tenant)}
    return found[secret_id].last_used_at, found[secret_id].last_used_from


async def test_last_use_moves_forward_only_with_its_batch(directory: Directory) -> None:
    secret_id = await _secret(directory)
    await directory.store.record_signin_batch([_event(1)], {"secret": {secret_id: LastUse(START + 5, "10.0.0.5\x1b")}})
    assert await _last_use(directory, secret_id) == (START + 5, "10.0.0.5?")
    await directory.store.record_signin_batch([_event(2)], {"secret": {secret_id: LastUse(START + 4, "10.0.0.4")}})
    assert await _last_use(directory, secret_id) == (START + 5, "10.0.0.5?")  # an older batch moves nothing
    await directory.store.record_signin_batch([], {"secret": {secret_id: LastUse(START + 6, None)}})
    assert await _last_use(directory, secret_id) == (START + 6, None)
    assert len(await directory.store.query_signins(LogQuery(tenant_id="t1"))) == 2


async def test_a_failed_batch_leaves_neither_rows_nor_last_use(directory: Directory,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The last-use update fails after the rows went in: both roll back together."""
    secret_id = await _secret(directory)
    nowhere = Table("nowhere", MetaData(), Column("id", String), Column("last_used_at", Double),
                    Column("last_used_from", String))
    monkeypatch.setitem(base.LAST_USE_TABLES, "secret", nowhere)  # type: ignore[index]
    with pytest.raises(Exception, match="nowhere"):
        await directory.store.record_signin_batch([_event(1)], {"secret": {secret_id: LastUse(START + 5, None)}})
    assert await directory.store.query_signins(LogQuery(tenant_id="t1")) == []
    assert await _last_use(directory, secret_id) == (None, None)
    monkeypatch.undo()
    await directory.store.record_signin_batch([_event(1)], {"secret": {secret_id: LastUse(START + 5, None)}})
    assert len(await directory.store.query_signins(LogQuery(tenant_id="t1"))) == 1
    assert await _last_use(directory, secret_id) == (START + 5, None)


async def test_a_batch_after_postgresql_ended_the_held_connection_is_written_once(pg_url: str) -> None:
    """PostgreSQL restarted or failed over while the sign-in writer's connection sat idle: the next
    batch is written on a fresh connection, without failing (keyless.store.pg_held)."""
    engine = db.create_engine(pg_url)
    await db.migrate(engine)
    store = SqlDirectoryStore(engine)
    try:
        await store.record_signin_batch([_event(1)], {})
        await end_other_connections(pg_url)
        await store.record_signin_batch([_event(2)], {})
        stored = await store.query_signins(LogQuery(tenant_id="t1"))
        assert sorted(e.token_id or "" for e in stored) == ["tok-1", "tok-2"]
    finally:
        await store.release()
        await engine.dispose()


def test_remembered_texts_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A caller sending ever new client ids costs at most `SANITISED_MAX` remembered rows."""
    from keyless.store import logrows

    monkeypatch.setattr(logrows, "SANITISED_MAX", 8)
    for n in range(50):
        e = _event(n, client_id=f"client-{n}\x07")
        assert signin_values(e) == _expected(e)
        assert len(logrows._SANITISED) <= 8
