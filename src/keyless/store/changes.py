"""Cross-replica cache invalidation: PostgreSQL `LISTEN/NOTIFY` on the database the replicas share.

Every replica keeps short-lived caches in front of its hot reads (`keyless.cache`). A write clears
the writing replica's caches at once; this feed tells every other replica to clear its own, so a
revoked secret, a removed grant or a disabled application is refused everywhere within the time a
notification takes to arrive (milliseconds; docs/deployment.md promises 1 s). PostgreSQL delivers a
`NOTIFY` only once the writer's transaction has committed, and the writer sends it after its write
committed, so a replica that clears on receipt reloads the new state.

If the listening connection drops, the replica cannot know what changed elsewhere: until it has
listened again it clears its caches every `fallback_interval` seconds (1 s), so nothing is served
stale past the same bound, at the price of more database reads; `/readyz` and the
`keyless_change_feed_up` gauge say so. SQLite is one process's database: there is nothing to feed.

Each notification carries its sender's id and the wall-clock time its change committed, so a
receiver can measure how long propagation took (`on_lag`, the `keyless_change_propagation_seconds`
histogram; meaningful where the replicas' clocks agree, as NTP keeps them). A payload of the id
alone, from an older replica during a rolling upgrade, is applied all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

CHANNEL = "keyless_changes"
log = logging.getLogger("keyless.changes")


class ChangeFeed:
    """Publishes this replica's changes and applies every other replica's (`on_remote_change`)."""

    def __init__(self, engine: AsyncEngine, on_remote_change: Callable[[], None], *,
                 fallback_interval: float = 1.0, retry_interval: float = 1.0,
                 on_lag: Callable[[float], None] | None = None) -> None:
        self._engine = engine
        self._on_lag = on_lag
        parsed = engine.url
        self._dsn = (
            parsed.set(drivername="postgresql").render_as_string(hide_password=False)
            if parsed.drivername.startswith("postgresql") else None
        )
        self._on_remote = on_remote_change
        self._fallback = fallback_interval
        self._retry = retry_interval
        self._me = uuid.uuid4().hex
        self._conn: Any = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.received = 0

    @property
    def state(self) -> str:
        """`local` (SQLite: nothing to share), `ok` (listening) or `down` (clearing every second)."""
        if self._dsn is None:
            return "local"
        return "ok" if self._conn is not None and not self._conn.is_closed() else "down"

    async def start(self) -> None:
        if self._dsn is not None and self._task is None:
            await self._listen()  # first attempt inline, so a replica is listening before it is ready
            self._task = asyncio.create_task(self._keep_listening(), name="change-feed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for pending in list(self._pending):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pending, 2)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=2)
            self._conn = None

    def publish(self) -> None:
        """Tell the other replicas that something changed (called after the change committed)."""
        if self._dsn is None:
            return
        task = asyncio.get_running_loop().create_task(self._notify(time.time()))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _notify(self, committed_at: float) -> None:
        try:
            async with self._engine.connect() as conn:
                await conn.execute(text("SELECT pg_notify(:channel, :sender)"),
                                   {"channel": CHANNEL, "sender": f"{self._me} {committed_at:.6f}"})
                await conn.commit()
            self.sent += 1
        except Exception as exc:
            # The other replicas see the change when their cache entries expire; say so, never silently.
            log.warning("change notification failed", extra={"event": "change_feed_notify_failed",
                                                             "error": type(exc).__name__})

    def _received(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        sender, _, committed_at = payload.partition(" ")
        if sender != self._me:
            self.received += 1
            self._on_remote()
            if self._on_lag is not None and committed_at:
                with contextlib.suppress(ValueError):
                    self._on_lag(max(0.0, time.time() - float(committed_at)))

    def _dropped(self, _conn: Any) -> None:
        self._lost.set()

    async def _listen(self) -> bool:
        try:
            conn = await asyncpg.connect(self._dsn, timeout=5)
            await conn.add_listener(CHANNEL, self._received)
            conn.add_termination_listener(self._dropped)
        except Exception as exc:
            log.warning("change feed unavailable", extra={"event": "change_feed_down", "error": type(exc).__name__})
            return False
        self._conn = conn
        self._lost.clear()
        self._on_remote()  # whatever changed while we were not listening
        return True

    async def _keep_listening(self) -> None:
        while True:
            if self.state == "ok":
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._lost.wait(), timeout=self._retry * 5)
                if self.state == "ok":
                    continue
                log.warning("change feed lost", extra={"event": "change_feed_down"})
                with contextlib.suppress(Exception):
                    self._conn.terminate()
                self._conn = None
            # Deaf: clear every `fallback_interval` while trying to listen again, however long that takes.
            attempt = asyncio.ensure_future(self._listen())
            while True:
                self._on_remote()
                done, _ = await asyncio.wait({attempt}, timeout=self._fallback)
                if done:
                    break
            if not attempt.result():
                self._on_remote()
                await asyncio.sleep(min(self._fallback, self._retry))
