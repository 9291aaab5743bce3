"""The tenant's token-signing keys: which one signs now, which are published, and rotation timing.

Keys are time-driven, so every replica agrees without coordination and nothing has to run on a
schedule. A key is published in the JWKS from creation and signs from `activates_at` (rotation sets
this at least two JWKS cache lifetimes ahead, catalog I03). The newest activated key signs. A key
stays published until a newer key has been signing for longer than any token can live (the
maximum token lifetime plus clock skew), so every token it signed expires first. An admin can
remove a key at once (`retire_at`, catalog I04); then the next newest activated key signs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from keyless.cache import Miss, TtlCache
from keyless.clock import Clock
from keyless.crypto import aead, keys
from keyless.crypto.keys import PrivateKey
from keyless.domain.model import SigningKey
from keyless.domain.ports import DirectoryReader
from keyless.jose.jwk import public_jwk
from keyless.oauth.errors import ServerError

JWKS_MAX_AGE = 300
CLOCK_SKEW = 300
MAX_TOKEN_LIFETIME = 86400
RETENTION = MAX_TOKEN_LIFETIME + CLOCK_SKEW

KeyState = Literal["next", "active", "previous", "retired"]


def key_states(keys: Sequence[SigningKey], now: float) -> dict[str, KeyState]:
    """Each key's state at `now`: `next` (published, not yet signing), `active` (signs),
    `previous` (published so tokens it signed still verify), `retired` (gone from the JWKS)."""
    states: dict[str, KeyState] = {}
    # Removed keys still count as successors: once superseded, a key never signs again, so removing
    # its successor cannot bring back a key whose tokens verifiers have stopped accepting.
    activated = sorted((k for k in keys if k.activates_at <= now), key=lambda k: k.activates_at)
    for index, k in enumerate(activated):
        if k.removed_at(now):
            states[k.kid] = "retired"
        elif index == len(activated) - 1:
            states[k.kid] = "active"
        else:
            superseded = activated[index + 1].activates_at
            states[k.kid] = "previous" if now < superseded + RETENTION else "retired"
    for k in keys:
        if k.activates_at > now:
            states[k.kid] = "retired" if k.removed_at(now) else "next"
    return states


def _stable_between(keys: Sequence[SigningKey], now: float) -> tuple[float, float]:
    """(since, until): around `now`, the interval in which `key_states(keys, ·)` cannot change. Every
    comparison `key_states` makes is `now` against an activation, a removal, or an activation plus
    `RETENTION`, so the states are constant between consecutive such instants."""
    since, until = float("-inf"), float("inf")
    for k in keys:
        for t in (k.activates_at, k.activates_at + RETENTION, k.retire_at):
            if t is None:
                continue
            if t <= now:
                since = max(since, t)
            else:
                until = min(until, t)
    return since, until


def _next_change(keys: Sequence[SigningKey], now: float) -> float:
    """The first instant after `now` at which `key_states` can name another active key: a key
    activating or being removed (every other transition concerns keys that no longer sign)."""
    instants = [k.activates_at for k in keys] + [k.retire_at for k in keys if k.retire_at is not None]
    return min((t for t in instants if t > now), default=float("inf"))


def key_aad(kid: str) -> bytes:
    return b"signing-key:" + kid.encode()


@dataclass(frozen=True)
class ActiveKey:
    kid: str
    alg: str
    private: PrivateKey

    def __repr__(self) -> str:
        return f"ActiveKey(kid={self.kid!r}, alg={self.alg!r})"


def new_signing_key(
    tenant_id: str, alg: str, kek: bytes, *, now: float, activates_at: float
) -> SigningKey:
    private = keys.generate(alg)
    jwk = public_jwk(keys.public_of(private), alg)
    kid = jwk["kid"]
    return SigningKey(
        kid=kid, tenant_id=tenant_id, alg=alg, public_jwk=jwk,
        sealed_private=aead.seal(kek, keys.private_to_der(private), key_aad(kid)),
        created_at=now, activates_at=activates_at, retire_at=None,
    )


class KeyRing:
    def __init__(self, reader: DirectoryReader, kek: bytes, clock: Clock, *, ttl: float = 30.0) -> None:
        self._reader = reader
        self._kek = kek
        self._clock = clock
        self._keys: TtlCache[Sequence[SigningKey]] = TtlCache(clock, ttl, 10_000)
        self._privates: dict[str, PrivateKey] = {}  # by kid: a kid names one key forever (RFC 7638)
        self._published: dict[str, tuple[Sequence[SigningKey], float, float, frozenset[str]]] = {}
        # tenant -> (the key list it was chosen from, the span of time it is the choice for, the key)
        self._chosen: dict[str, tuple[Sequence[SigningKey], float, float, ActiveKey]] = {}

    def invalidate(self, tenant_id: str | None = None) -> None:
        self._keys.clear()
        self._chosen.clear()

    async def _load(self, tenant_id: str) -> Sequence[SigningKey]:
        hit = self._keys.fresh(tenant_id)
        if hit is not Miss.MISS:
            return hit
        return await self._keys.get(tenant_id, lambda: self._reader.signing_keys(tenant_id))

    async def signer(self, tenant_id: str) -> ActiveKey:
        """The key that signs now. Which key that is changes only when the cached key list is
        replaced (a write, a reload) or at an instant one of its keys activates or is removed, so the
        choice is remembered until then: the states are not recomputed for every token (issue 18)."""
        loaded = await self._load(tenant_id)
        now = self._clock.now()
        chosen = self._chosen.get(tenant_id)
        if chosen is not None and chosen[0] is loaded and chosen[1] <= now < chosen[2]:
            return chosen[3]
        active = self._choose(loaded, now)
        if len(self._chosen) >= 10_000:
            self._chosen.clear()
        self._chosen[tenant_id] = (loaded, now, _next_change(loaded, now), active)
        return active

    def _choose(self, loaded: Sequence[SigningKey], now: float) -> ActiveKey:
        states = key_states(loaded, now)
        key = next((k for k in loaded if states[k.kid] == "active"), None)
        if key is None:
            raise ServerError(detail="no_active_signing_key")
        private = self._privates.get(key.kid)
        if private is None:
            private = keys.private_from_der(aead.open_sealed(self._kek, key.sealed_private, key_aad(key.kid)))
            self._privates[key.kid] = private
        return ActiveKey(kid=key.kid, alg=key.alg, private=private)

    async def published(self, tenant_id: str) -> list[SigningKey]:
        loaded = await self._load(tenant_id)
        states = key_states(loaded, self._clock.now())
        return [k for k in loaded if states[k.kid] != "retired"]

    async def published_kids(self, tenant_id: str) -> frozenset[str]:
        """The kids `published` would list now, without working out every key's state on each call (a
        bearer check asks on every request): the answer is kept with the keys it was computed from and
        the instants between which no key can change state (`_stable_between`), so it is exactly
        `published`'s, and a reload or an invalidation (a key removed at once, catalog I04) replaces it."""
        loaded = await self._load(tenant_id)
        now = self._clock.now()
        memo = self._published.get(tenant_id)
        if memo is not None and memo[0] is loaded and memo[1] <= now < memo[2]:
            return memo[3]
        states = key_states(loaded, now)
        kids = frozenset(k.kid for k in loaded if states[k.kid] != "retired")
        if len(self._published) >= 10_000:
            self._published.clear()
        self._published[tenant_id] = (loaded, *_stable_between(loaded, now), kids)
        return kids

    async def jwks(self, tenant_id: str) -> dict[str, Any]:
        return {"keys": [dict(k.public_jwk) for k in await self.published(tenant_id)]}
