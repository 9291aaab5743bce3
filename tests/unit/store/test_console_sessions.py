"""Console sessions in the database (migration 0013) on SQLite and PostgreSQL: a session is found by
its cookie only, ends after the idle or the absolute timeout, and once ended (sign-out) is refused by
every reader of the table; starting and ending are audited with the session's credential."""

from __future__ import annotations

import hashlib

from keyless.clock import FrozenClock
from keyless.domain.ports import LogQuery
from keyless.server.console.sessions import ABSOLUTE_TIMEOUT, IDLE_TIMEOUT, Binding, Sessions
from keyless.store import db
from keyless.store.console import SqlConsoleStore
from keyless.store.logs import SqlLogStore

BINDING = Binding(tenant_id="00000000-0000-0000-0000-000000000001", client_id="00000000-0000-0000-0000-0000000000c1",
                  object_id="o-1", roles=frozenset({"Keyless.Admin"}))


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
        assert (await two.current(cookie)) is not None
        assert await two.current(cookie + "x") is None
        assert await two.current(None) is None
        await one.end(session)
        assert await two.current(cookie) is None
        actions = [(e.action, e.actor) for e in await logs.query_audit(LogQuery(tenant_id=BINDING.tenant_id))]
        assert sorted(actions) == [("console.session.end", BINDING.client_id),
                                   ("console.session.start", BINDING.client_id)]
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
