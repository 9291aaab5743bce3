"""Tokens per (identity, resource), refreshed ahead of expiry in the background.

A workload's request is answered from memory in steady state: the refresher renews each entry at
its refresh time (half-life), so callers never wait for the server unless they ask for a pair for
the first time. Concurrent first requests for one pair share one server call (single flight).
While the server is unreachable, entries keep being served until they expire, and the refresher
keeps retrying with backoff. Failures are never cached: the next request asks again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from keyless.client.core import EXPIRY_MARGIN, Token
from keyless.clock import Clock

log = logging.getLogger("keyless.agent.cache")

Key = tuple[str, str]  # (identity client id, resource)
Fetch = Callable[[str, str], Awaitable[Token]]
MAX_ENTRIES = 10_000
MAX_BACKOFF = 60.0


@dataclass
class CachedToken:
    token: Token
    retry_at: float = 0.0  # after a failed refresh, the next attempt
    failures: int = 0


class AgentTokenCache:
    def __init__(self, fetch: Fetch, clock: Clock) -> None:
        self._fetch = fetch
        self._clock = clock
        self._entries: dict[Key, CachedToken] = {}
        self._inflight: dict[Key, asyncio.Future[Token]] = {}
        self.last_success: float | None = None
        self.last_failure: float | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, identity: str, resource: str) -> Token | None:
        """A token that may be handed out now, without any I/O (the hot path)."""
        entry = self._entries.get((identity, resource))
        if entry is not None and self._clock.now() < entry.token.expires_on - EXPIRY_MARGIN:
            return entry.token
        return None

    async def get(self, identity: str, resource: str) -> Token:
        token = self.peek(identity, resource)
        if token is not None:
            return token
        return await self._load((identity, resource))

    async def _load(self, key: Key) -> Token:
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Token] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            token = await self._fetch(*key)
        except BaseException as exc:
            self.last_failure = self._clock.now()
            if not future.done():
                future.set_exception(exc)
                future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        finally:
            self._inflight.pop(key, None)
        self.last_success = self._clock.now()
        if len(self._entries) >= MAX_ENTRIES and key not in self._entries:
            self._entries.pop(next(iter(self._entries)))
        self._entries[key] = CachedToken(token)
        future.set_result(token)
        return token

    def clear(self) -> None:
        """Forget every token (the host was removed: nothing may be served any more)."""
        self._entries.clear()

    async def refresh_due(self) -> int:
        """Refresh every entry whose refresh time has come; drop expired ones. Returns how many
        refreshes failed."""
        now = self._clock.now()
        failed = 0
        for key, entry in list(self._entries.items()):
            if now >= entry.token.expires_on - EXPIRY_MARGIN:
                self._entries.pop(key, None)  # unusable; the next request for it asks the server
                continue
            if now < entry.token.refresh_on or now < entry.retry_at or key in self._inflight:
                continue
            try:
                await self._load(key)
            except Exception as exc:
                failed += 1
                entry.failures += 1
                entry.retry_at = now + min(MAX_BACKOFF, 2.0 ** min(entry.failures, 6))
                log.warning("token refresh failed", extra={"event": "token_refresh_failed", "error": str(exc)})
        return failed
