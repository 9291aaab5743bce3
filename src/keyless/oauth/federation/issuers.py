"""Trusting external issuers' keys: discovery, JWKS, per-issuer cache (catalog E04, E05, E06).

Fetching is I/O, so it comes through the `MetadataFetcher` port (the server implements it with httpx:
https with certificate verification, no redirects, size and time caps, private addresses refused).
This module holds the policy: which URLs to fetch (only `{issuer}/.well-known/openid-configuration`
for an issuer some credential names, then the `jwks_uri` it gives), what to accept (the metadata's
`issuer` equal to the configured one, at most `MAX_KEYS` usable keys), and when to fetch again.

Keys are cached per issuer and only ever looked up under the issuer that fetched them: a key from
issuer B never verifies a token claiming issuer A. An unknown `kid` refreshes at most once per issuer
per `refresh_interval`; a key set older than `max_age` is refetched on next use, and if that fails the
old one serves until `max_stale`, then nothing does (fail closed).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol

from keyless.clock import Clock
from keyless.errors import KeylessError
from keyless.jose.jwk import JwkSetRejected, VerificationKeys, parse_jwk_set

MAX_KEYS = 50
MAX_DOCUMENT_BYTES = 64 * 1024
FETCH_TIMEOUT = 10.0
MAX_ISSUERS = 1000


class FetchFailed(KeylessError):
    """The metadata or key set could not be obtained or was refused; `reason` is a short code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MetadataFetcher(Protocol):
    async def fetch_json(self, url: str) -> dict[str, Any]:
        """GET one https URL and return its JSON object, or raise `FetchFailed`. Implementations
        refuse redirects, private addresses, bodies over `MAX_DOCUMENT_BYTES` and waits over
        `FETCH_TIMEOUT`."""
        ...


@dataclass
class _IssuerState:
    keys: VerificationKeys = field(default_factory=dict)
    fetched_at: float = float("-inf")
    attempted_at: float = float("-inf")
    jwks_uri: str | None = None
    last_error: str = "keys_unavailable"  # why the last fetch failed, repeated until the next attempt
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    fetches: int = 0


class IssuerKeys:
    def __init__(
        self,
        fetcher: MetadataFetcher,
        clock: Clock,
        *,
        refresh_interval: float = 60.0,
        max_age: float = 900.0,
        max_stale: float = 3600.0,
    ) -> None:
        self._fetcher = fetcher
        self._clock = clock
        self.refresh_interval = refresh_interval
        self.max_age = max_age
        self.max_stale = max_stale
        self._issuers: dict[str, _IssuerState] = {}

    def fetches(self, issuer: str) -> int:
        state = self._issuers.get(issuer)
        return state.fetches if state else 0

    def _state(self, issuer: str) -> _IssuerState:
        state = self._issuers.get(issuer)
        if state is None:
            if len(self._issuers) >= MAX_ISSUERS:
                self._issuers.clear()
            state = self._issuers[issuer] = _IssuerState()
        return state

    async def keys(self, issuer: str, kid: str | None) -> VerificationKeys:
        """The issuer's current keys, refreshed when stale or when `kid` is unknown (rate-limited).
        Raises `FetchFailed` when there are no usable keys at all."""
        state = self._state(issuer)
        now = self._clock.now()
        if self._wanted(state, kid, now):
            async with state.lock:
                now = self._clock.now()
                if self._wanted(state, kid, now) and now - state.attempted_at >= self.refresh_interval:
                    state.attempted_at = now
                    try:
                        # In a task of its own: the fetch bounds itself with `asyncio.timeout`, which
                        # needs a current task, and the token path may be running before its first
                        # suspension with none (`keyless.server.eager`).
                        await asyncio.ensure_future(self._refresh(issuer, state))
                    except FetchFailed as exc:
                        state.last_error = exc.reason
                        if now - state.fetched_at >= self.max_stale:
                            state.keys = {}
                            raise
        if now - state.fetched_at >= self.max_stale:
            raise FetchFailed(state.last_error)
        return state.keys

    def _wanted(self, state: _IssuerState, kid: str | None, now: float) -> bool:
        return now - state.fetched_at >= self.max_age or (kid is not None and kid not in state.keys)

    async def _refresh(self, issuer: str, state: _IssuerState) -> None:
        state.fetches += 1
        doc = await self._fetcher.fetch_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
        if doc.get("issuer") != issuer:
            raise FetchFailed("metadata_issuer_mismatch")  # E04 (RFC 8414 §3.3)
        jwks_uri = doc.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith("https://"):
            raise FetchFailed("jwks_uri_not_https")
        jwks = await self._fetcher.fetch_json(jwks_uri)
        try:
            keys = parse_jwk_set(jwks, max_keys=MAX_KEYS)
        except JwkSetRejected as exc:
            raise FetchFailed(exc.reason) from None
        state.keys, state.jwks_uri, state.fetched_at = keys, jwks_uri, self._clock.now()
