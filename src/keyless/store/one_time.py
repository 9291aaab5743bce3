"""Single-use values (assertion `jti`s, join tokens) with group commit.

On PostgreSQL the rule is the database's: a value is used once because a unique key refuses the
second insert, on every replica alike (SQLite: see below). Doing that as one transaction per request
cost more than a whole client-secret token (measured ~0.65 ms on SQLite), so concurrent requests
share one statement: `INSERT … ON CONFLICT DO NOTHING RETURNING` inserts a batch and names exactly
the rows that were new. On SQLite a batch waits `GATHER_TURNS` turns of the event loop for the values
of other requests before it is written. One batch is in flight at a time; requests that arrive
meanwhile form the next one. Within a batch the first request for a value wins, as it would have in
sequence. On PostgreSQL (asyncpg) the batch is one prepared statement on a connection held between
batches (`keyless.store.one_time_pg`); `release` returns that connection to the pool before the
engine is disposed.

A SQLite database is one server process's, and there the unique key's cost (a random page written
for each value) is avoided: the process decides a value in its memory and answers once an append-only
log holds it, in the same batches; the unique table takes over only when that index is full
(`keyless.store.one_time_memory`). The SQLite statements, purge and checkpoints are
`keyless.store.one_time_sqlite`'s.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from keyless.store import tables as t
from keyless.store.one_time_memory import SeenIndex, digest
from keyless.store.one_time_pg import PgOneTimeWriter
from keyless.store.one_time_sqlite import Checkpointer, Key, SingleUseWriter

log = logging.getLogger("keyless.store")
PURGE_EVERY = 1000  # PostgreSQL: values between two purges
SQLITE_PURGE_EVERY = 100  # SQLite: values between purges (`one_time_sqlite.SQLITE_PURGE_LIMIT` rows each)
CHECKPOINT_EVERY = 1000  # SQLite: values between two passive checkpoints (`Checkpointer`)
GATHER_TURNS = 2  # SQLite: turns of the event loop a batch waits for more values before it is written
MEMORY_CAPACITY = 1_000_000  # SQLite: values the in-memory index holds before the unique table takes over
__all__ = ["Key", "OneTimeStore"]


class OneTimeStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
        database = engine.url.database
        on_file = engine.dialect.name == "sqlite" and database not in (None, "", ":memory:")
        self._sqlite = SingleUseWriter(database) if on_file and database else None
        self._checkpointer = Checkpointer(database) if on_file and database else None
        self._pg = PgOneTimeWriter(engine) if engine.dialect.driver == "asyncpg" else None
        self._purge_before: float | None = None  # PostgreSQL: a purge due once the batch is answered
        self._pending: list[tuple[Key, float, asyncio.Future[bool]]] = []
        self._logged: list[tuple[bytes, float, asyncio.Future[bool]]] = []  # SQLite: decided in memory
        self._memory = SeenIndex(MEMORY_CAPACITY) if self._sqlite is not None else None
        self._loading: asyncio.Future[None] | None = None
        self._loaded = False
        self._flushing = False
        self._inserted = 0
        self._purges = 0

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._checkpointer is not None:
            self._checkpointer.close()

    async def release(self) -> None:
        """Return the connection the PostgreSQL writer holds to the pool (before the engine is disposed)."""
        if self._pg is not None:
            await self._pg.close()

    async def prepare(self) -> None:
        """At server start: on SQLite, take the database's single-use lock and read back the log, so
        that a second server on the same file stops at start (`one_time_sqlite.SingleUseHeld`)."""
        if self._memory is not None and not self._loaded:
            await self._load()

    async def consume(self, kind: str, owner: str, value: str, expires_at: float) -> bool:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        memory = self._memory
        if memory is None:
            self._pending.append(((kind, owner, value), expires_at, future))
            self._start(loop)
            return await future
        # SQLite: decided here, answered once the log holds it (`one_time_memory`). From its decision
        # on, a value is in memory or covered by `deferred_until`, whichever way it is written.
        if not self._loaded:
            await self._load()
        key = digest(kind, owner, value)
        if memory.seen(key):
            return False
        if memory.full(time.time()):  # the unique table decides, as on PostgreSQL
            if len(memory) < memory.capacity:
                memory.add(key, expires_at)  # taken either way once the table has answered
            else:
                memory.defer(expires_at)
            self._pending.append(((kind, owner, value), expires_at, future))
        else:
            memory.add(key, expires_at)
            self._logged.append((key, expires_at, future))
        self._start(loop)
        try:
            return await future
        except Exception:  # not written: nobody is answered for it (not on cancellation: it may be)
            memory.forget(key)
            raise

    async def _load(self) -> None:
        """Read back what the log and the unique table hold, once, before the first value is decided;
        in a task of its own, so a request cancelled meanwhile cancels nobody else's wait."""
        if self._loading is None:
            self._loading = asyncio.ensure_future(self._read_back())
            self._loading.add_done_callback(lambda done: done.cancelled() or done.exception())  # retrieved
        loading = self._loading
        try:
            await asyncio.shield(loading)
        except Exception:
            if self._loading is loading and loading.done():
                self._loading = None  # the next request tries again
            raise

    async def _read_back(self) -> None:
        assert self._sqlite is not None and self._memory is not None
        rows, deferred = await self._sqlite.load(time.time())
        self._memory.load(rows, deferred)
        self._loaded = True

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._flushing:
            self._flushing = True
            self._gather(loop, GATHER_TURNS if self._sqlite is not None else 0)

    def _gather(self, loop: asyncio.AbstractEventLoop, turns: int) -> None:
        """Start the batch after `turns` more turns of the loop, so that it takes the values of the
        requests those turns carry to their `consume`. On SQLite a batch is written within one turn
        (`insert_now`), so without the wait it held little more than the values of the turn that
        started it: 3.2-3.4 on average at c=8 with private_key_jwt, 7.9 with two turns; the statement's
        cost a value (mostly the pages its commit writes to the WAL: a random leaf of the unique key for
        each value, and the last pages of the table and of the `expires_at` index for the whole batch)
        fell from 21-25 to 16-21 µs of CPU (issue 18, docs/benchmarks.md session 11). A turn costs
        microseconds when the loop is idle: a lone client's requests take as long as before. Not on
        PostgreSQL: there a batch is a round trip during which the next one gathers anyway, and the
        server waits for it, so delaying its start cost 10 % of the tokens a second at c=8."""
        if turns > 0:
            loop.call_soon(self._gather, loop, turns - 1)
        else:
            loop.create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._pending or self._logged:
                batch, self._pending = self._pending, []
                logged, self._logged = self._logged, []
                try:
                    fresh = await self._write(batch, logged)
                except Exception as exc:
                    for _, _, future in [*batch, *logged]:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for _, _, future in logged:
                    if not future.done():
                        future.set_result(True)
                claimed: set[Key] = set()
                for key, _, future in batch:
                    won = key in fresh and key not in claimed
                    claimed.add(key)
                    if not future.done():
                        future.set_result(won)
                if self._pg is not None and self._purge_before is not None:
                    before, self._purge_before = self._purge_before, None
                    await self._purge_pg(self._pg, before)
        finally:
            self._flushing = False

    async def _write(self, batch: Sequence[tuple[Key, float, asyncio.Future[bool]]],
                     logged: Sequence[tuple[bytes, float, asyncio.Future[bool]]] = ()) -> set[Key]:
        u = t.one_time_uses
        rows: dict[Key, float] = {}
        for key, expires_at, _ in batch:
            rows.setdefault(key, expires_at)
        if self._sqlite is not None:
            self._inserted += len(rows) + len(logged)
            purge = None
            if self._inserted >= SQLITE_PURGE_EVERY:
                self._inserted, purge = 0, time.time()
                self._purges += 1
                if self._memory is not None:
                    self._memory.purge(purge)
                due = self._purges % max(1, CHECKPOINT_EVERY // SQLITE_PURGE_EVERY) == 0
                if due and self._checkpointer is not None:
                    self._checkpointer.start()  # beside this batch, not before it
            batch_rows = [(*k, e) for k, e in rows.items()]
            log_rows = [(key, expires_at) for key, expires_at, _ in logged]
            if purge is None:
                fresh = self._sqlite.insert_now(batch_rows, log_rows)
                if fresh is not None:
                    return fresh
            return await self._sqlite.insert(batch_rows, purge, log_rows)
        if self._pg is not None:
            inserted = await self._pg.insert([(*k, e) for k, e in rows.items()])
            self._inserted += len(inserted)
            if self._inserted >= PURGE_EVERY:  # keep the table to live entries without a scheduler
                self._inserted, self._purge_before = 0, time.time()
            return inserted
        statement = (
            self._insert(u)
            .values([{"kind": k[0], "owner": k[1], "value": k[2], "expires_at": e} for k, e in rows.items()])
            .on_conflict_do_nothing()
            .returning(u.c.kind, u.c.owner, u.c.value)
        )
        async with self._engine.begin() as conn:
            inserted = {(r.kind, r.owner, r.value) for r in (await conn.execute(statement)).all()}
            self._inserted += len(inserted)
            if self._inserted >= PURGE_EVERY:  # keep the table to live entries without a scheduler
                self._inserted = 0
                await conn.execute(delete(u).where(u.c.expires_at < time.time()))
        return inserted

    @staticmethod
    async def _purge_pg(pg: PgOneTimeWriter, before: float) -> None:
        """The purge a PostgreSQL batch made due, after that batch's answers (the next batch waits for it)."""
        try:
            await pg.purge(before)
        except Exception:  # the values stay until the next purge; no request fails for it
            log.warning("one-time uses: purge failed", exc_info=True, extra={"event": "purge_failed"})
