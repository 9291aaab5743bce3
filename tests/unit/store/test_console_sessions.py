"""Console sessions in the database (migration 0013) on SQLite and PostgreSQL: a session is found by
its cookie only, ends after the idle or the absolute timeout, and once ended (sign-out) is refused by
every reader of the table; starting and ending are audited with the session's credential, by the
id and kind of the secret or certificate it signed in with (issue 20 item 3)."""

from __future__ import annotations

import hashlib
from dataclasses import replace

from keyless.clock import FrozenClock
from keyless.domain.ports import LogQuery
from keyless.server.console.sessions import ABSOLUTE_TIMEOUT, IDLE_TIMEOUT, Binding, Sessions
from keyless.store import db
from keyless.store.console import SqlConsoleStore
from keyless.store.logs import SqlLogStore

BINDING = Binding(tenant_id="00000000-0000-0000-0000-000000000001", client_id="00000000-0000-0000-0000-0000000000c1",
                  object_id="o-1", roles=frozenset({"Keyless.Admin"}),
                  credential_id="00000000-0000-0000-0000-00000000ce71", credential_type="certificate")


async def _sessions(url: str) -> tuple[Sessions, Sessions, FrozenClock, SqlLogStore, object]:
    engine = db.create_engine(url)
    await db.migrate(engine)
    clock = FrozenClock(2_000_000.0)
    # Two services on one table: two replicas.
    return Sessions(SqlConsoleStore(engine), clock), Sessions(SqlConsoleStore(engine), clock), clock, \
        SqlLogStore(engine), engine


async def test_a_session_lives_by_its_cookie_and_ends_everywhere(url: str) -> None:
    one, two, _, logs, engine = await _sessions(url)
    try:
        cookie, session = await one.start(BINDING)
        assert session.id == hashlib.sha256(cookie.encode()).hexdigest() != cookie
        found = await two.current(cookie)
        assert found is not None and (found.credential_id, found.credential_type) == (
            BINDING.credential_id, BINDING.credential_type)  # kept by the table, read by any replica
        assert (found.actor.credential_id, found.actor.credential_type) == (BINDING.credential_id, "certificate")
        assert await two.current(cookie + "x") is None
        assert await two.current(None) is None
        await one.end(session)
        assert await two.current(cookie) is None
        records = await logs.query_audit(LogQuery(tenant_id=BINDING.tenant_id))
        actions = [(e.action, e.actor) for e in records]
        assert sorted(actions) == [("console.session.end", BINDING.client_id),
                                   ("console.session.start", BINDING.client_id)]
        for record in records:
            assert record.details["actor_credential_id"] == BINDING.credential_id, record
            assert record.details["actor_credential_type"] == "certificate", record
    finally:
        await engine.dispose()  # type: ignore[attr-defined]


async def test_a_session_from_a_token_naming_no_credential_audits_none(url: str) -> None:
    """A management token without the credential claims (issued before they existed) still signs in;
    its records simply name no credential rather than a wrong one."""
    one, _, _, logs, engine = await _sessions(url)
    try:
        cookie, _ = await one.start(replace(BINDING, credential_id=None, credential_type=None))
        session = await one.current(cookie)
        assert session is not None and session.credential_id is None and session.credential_type is None
        await one.end(session)
        for record in await logs.query_audit(LogQuery(tenant_id=BINDING.tenant_id)):
            assert "actor_credential_id" not in record.details, record
    finally:
        await engine.dispose()  # type: ignore[attr-defined]


async def test_idle_and_absolute_timeouts(url: str) -> None:
    one, _, clock, _, engine = await _sessions(url)
    try:
        idle, _ = await one.start(BINDING)
        clock.advance(IDLE_TIMEOUT + 1)
        assert await one.current(idle) is None
        busy, _ = await one.start(BINDING)
        for _ in range(int(ABSOLUTE_TIMEOUT // (IDLE_TIMEOUT / 2))):
            clock.advance(IDLE_TIMEOUT / 2)
            if await one.current(busy) is None:
                break
        assert clock.now() - 2_000_000.0 - IDLE_TIMEOUT - 1 <= ABSOLUTE_TIMEOUT  # ended by the absolute limit
        assert await one.current(busy) is None
    finally:
        await engine.dispose()  # type: ignore[attr-defined]
