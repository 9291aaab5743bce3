"""Sign-in events are written in batches, off the request path, and never lost on a clean shutdown.

The token endpoint only appends to a list (no await, no I/O); a background task writes the batch
every `interval` seconds or as soon as `FLUSH_AT` events wait, together with the "last used" time
of each secret that signed in. On shutdown `close()` writes whatever is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from keyless.domain.model import SignInEvent
from keyless.domain.ports import DirectoryStore

log = logging.getLogger("keyless.signin")
MAX_PENDING = 100_000
FLUSH_AT = 256  # small batches: a big insert holds the event loop (measured: ~1,600 rows ≈ 15 ms)
POISON_AFTER = 3


class SignInBatcher:
    def __init__(self, store: DirectoryStore, interval: float = 0.5) -> None:
        self._store = store
        self._interval = interval
        self._pending: list[SignInEvent] = []
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._failures = 0
        self.dropped = 0

    def record(self, event: SignInEvent) -> None:
        if len(self._pending) >= MAX_PENDING:
            self.dropped += 1  # the store is down or far behind; keep serving, count the loss
            return
        self._pending.append(event)
        if len(self._pending) >= FLUSH_AT:
            self._wake.set()

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        used: dict[str, dict[str, float]] = {"secret": {}, "certificate": {}}
        for e in batch:
            if e.result == "success" and e.credential_id and e.credential_type in used:
                seen = used[e.credential_type]
                seen[e.credential_id] = max(e.time, seen.get(e.credential_id, 0.0))
        try:
            await self._store.record_signins(batch)
            await self._store.mark_secrets_used(used["secret"])
            await self._store.mark_certificates_used(used["certificate"])
        except Exception:
            self._failures += 1
            if self._failures >= POISON_AFTER:
                await self._write_one_by_one(batch)
                return
            log.exception("sign-in log write failed; will retry", extra={"event": "signin_flush_failed"})
            self._pending = batch + self._pending
            raise
        self._failures = 0

    async def _write_one_by_one(self, batch: list[SignInEvent]) -> None:
        """After repeated failures, isolate events the store refuses so one bad row cannot block the
        log forever; those are counted and logged (without their content), the rest are written."""
        self._failures = 0
        for e in batch:
            try:
                await self._store.record_signins([e])
            except Exception:
                self.dropped += 1
                log.error("sign-in event refused by the store; dropped", extra={"event": "signin_dropped"})

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            with contextlib.suppress(Exception):
                await self.flush()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="signin-log-writer")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
