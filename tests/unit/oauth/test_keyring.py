"""`KeyRing` and `key_states`: which key signs, which are published, rotation timing (catalog I01-I04, I09),
all on a frozen clock."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

import pytest

from keyless.crypto import aead
from keyless.crypto.aead import DecryptionFailed
from keyless.crypto.thumbprints import jwk_thumbprint_of_members
from keyless.directory.errors import Conflict, NotFound
from keyless.directory.service import DirectoryService
from keyless.domain.model import AuditEvent, SigningKey
from keyless.jose.jwk import public_key_from_jwk
from keyless.jose.jws import VerificationKey, verify
from keyless.oauth import tokens
from keyless.oauth.errors import ServerError
from keyless.oauth.keyring import (
    CLOCK_SKEW,
    JWKS_MAX_AGE,
    MAX_TOKEN_LIFETIME,
    RETENTION,
    KeyRing,
    key_aad,
    key_states,
    new_signing_key,
)
from tests.unit.oauth.fakes import World, make_world

PRIVATE = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}


@pytest.fixture
def w() -> World:
    return make_world()


async def kids(w: World, tenant_id: str | None = None) -> list[str]:
    return [k["kid"] for k in (await w.keyring.jwks(tenant_id or w.tenant.id))["keys"]]


async def signer_kid(w: World) -> str:
    return (await w.keyring.signer(w.tenant.id)).kid


def test_retention_covers_the_longest_token_plus_skew() -> None:
    assert RETENTION == MAX_TOKEN_LIFETIME + CLOCK_SKEW == 86400 + 300
    assert JWKS_MAX_AGE == 300


async def test_signer_is_the_only_key(w: World) -> None:
    (key,) = w.directory.keys[w.tenant.id]
    signer = await w.keyring.signer(w.tenant.id)
    assert (signer.kid, signer.alg) == (key.kid, "ES256")
    assert "private" not in repr(signer) and "EllipticCurve" not in repr(signer)


async def test_signed_token_verifies_with_published_key(w: World) -> None:
    signer = await w.keyring.signer(w.tenant.id)
    token = tokens.mint(signer, {"sub": "x"})
    (jwk,) = (await w.keyring.jwks(w.tenant.id))["keys"]
    keys = {jwk["kid"]: VerificationKey(kid=jwk["kid"], alg=jwk["alg"], key=public_key_from_jwk(jwk))}
    assert verify(token, keys=keys, algorithms={"ES256"}, typ="at+jwt") == {"sub": "x"}


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_i01_i02_jwks_public_members_and_thumbprint_kid(w: World, alg: str) -> None:
    w.directory.add_key(w.tenant, alg=alg, activates_in=600)
    w.keyring.invalidate()
    jwks = (await w.keyring.jwks(w.tenant.id))["keys"]
    assert len(jwks) == 2
    for jwk in jwks:
        assert not PRIVATE & set(jwk)
        assert jwk["use"] == "sig"
        required = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}[jwk["kty"]]
        assert jwk["kid"] == jwk_thumbprint_of_members({m: jwk[m] for m in required})


async def test_i03_next_key_published_before_it_signs(w: World) -> None:
    old = w.directory.keys[w.tenant.id][0]
    nxt = w.directory.add_key(w.tenant, activates_in=2 * JWKS_MAX_AGE)
    w.keyring.invalidate()
    # Published at once, long enough before it signs for every JWKS cache to have seen it.
    assert await kids(w) == [old.kid, nxt.kid]
    assert await signer_kid(w) == old.kid
    w.clock.advance(2 * JWKS_MAX_AGE - 1)
    assert await signer_kid(w) == old.kid
    w.clock.advance(1)
    assert await signer_kid(w) == nxt.kid  # the KeyRing's cache TTL does not delay the switch
    assert await kids(w) == [old.kid, nxt.kid]  # the old key still verifies the tokens it signed


async def test_i03_old_key_leaves_jwks_after_retention(w: World) -> None:
    old = w.directory.keys[w.tenant.id][0]
    nxt = w.directory.add_key(w.tenant, activates_in=600)
    w.keyring.invalidate()
    last_signed = w.clock.now() + 600  # the old key signs until its successor activates
    w.clock.set(last_signed + RETENTION - 0.001)
    assert await kids(w) == [old.kid, nxt.kid]
    w.clock.set(last_signed + RETENTION)
    assert await kids(w) == [nxt.kid]  # filtered by time, even from a cached key list
    assert await signer_kid(w) == nxt.kid


async def test_newest_activated_key_signs(w: World) -> None:
    first = w.directory.keys[w.tenant.id][0]
    w.clock.advance(10)
    pending = w.directory.add_key(w.tenant, activates_in=600)
    emergency = w.directory.add_key(w.tenant, activates_in=0)
    w.keyring.invalidate()
    assert await signer_kid(w) == emergency.kid
    assert key_states(w.directory.keys[w.tenant.id], w.clock.now()) == {
        first.kid: "previous", pending.kid: "next", emergency.kid: "active"}
    w.clock.advance(600)
    assert await signer_kid(w) == pending.kid
    assert set(await kids(w)) == {first.kid, pending.kid, emergency.kid}


async def test_i04_retired_key_leaves_jwks_at_retire_at(w: World) -> None:
    old = w.directory.keys[w.tenant.id][0]
    new = w.directory.add_key(w.tenant, activates_in=0)
    w.clock.advance(5)
    retire_at = w.clock.now() + 60
    w.directory.set_retire(w.tenant, old.kid, retire_at)
    w.keyring.invalidate()
    w.clock.set(retire_at - 0.001)
    assert await kids(w) == [old.kid, new.kid]
    w.clock.set(retire_at)
    assert await kids(w) == [new.kid]
    assert await signer_kid(w) == new.kid


async def test_i04_a_superseded_key_never_signs_again(w: World) -> None:
    """Emergency removal of the signer does not hand signing back to the key it superseded: the
    admin rotates in a fresh key first (the directory service refuses otherwise)."""
    old = w.directory.keys[w.tenant.id][0]
    compromised = w.directory.add_key(w.tenant, activates_in=0)
    w.keyring.invalidate()
    assert await signer_kid(w) == compromised.kid
    w.directory.set_retire(w.tenant, compromised.kid, w.clock.now())
    w.keyring.invalidate()
    with pytest.raises(ServerError):
        await w.keyring.signer(w.tenant.id)
    assert await kids(w) == [old.kid]  # still published: tokens it signed stay valid until they expire
    fresh = w.directory.add_key(w.tenant, activates_in=0)
    w.keyring.invalidate()
    assert await signer_kid(w) == fresh.kid


async def test_no_active_key_is_server_error(w: World) -> None:
    w.directory.keys[w.tenant.id] = []
    w.directory.add_key(w.tenant, activates_in=60)
    w.keyring.invalidate()
    with pytest.raises(ServerError) as exc:
        await w.keyring.signer(w.tenant.id)
    assert exc.value.detail == "no_active_signing_key"
    assert len(await kids(w)) == 1  # published ahead of signing


async def test_key_list_cached_for_ttl_and_invalidated(w: World) -> None:
    ring = KeyRing(w.directory, w.kek, w.clock, ttl=30)
    await ring.jwks(w.tenant.id)
    loads = w.directory.call_count("signing_keys")
    added = w.directory.add_key(w.tenant, activates_in=600)
    w.clock.advance(29)
    assert added.kid not in [k["kid"] for k in (await ring.jwks(w.tenant.id))["keys"]]
    assert w.directory.call_count("signing_keys") == loads
    w.clock.advance(1)
    await ring.jwks(w.tenant.id)  # expired: served once more while a single refresh runs
    await asyncio.sleep(0)
    assert added.kid in [k["kid"] for k in (await ring.jwks(w.tenant.id))["keys"]]
    assert w.directory.call_count("signing_keys") == loads + 1
    another = w.directory.add_key(w.tenant, activates_in=600)
    ring.invalidate(w.tenant.id)
    assert another.kid in [k["kid"] for k in (await ring.jwks(w.tenant.id))["keys"]]
    ring.invalidate()
    await ring.jwks(w.tenant.id)
    assert w.directory.call_count("signing_keys") == loads + 3


async def test_i09_keys_are_per_tenant(w: World) -> None:
    other = w.directory.add_tenant("fabrikam")
    assert set(await kids(w)).isdisjoint(await kids(w, other.id))
    assert await signer_kid(w) != (await w.keyring.signer(other.id)).kid


async def test_i09_private_key_sealed_at_rest_and_bound_to_its_kid(w: World) -> None:
    key = w.directory.keys[w.tenant.id][0]
    assert key.sealed_private[:1] == b"\x01"
    assert aead.open_sealed(w.kek, key.sealed_private, key_aad(key.kid))
    with pytest.raises(DecryptionFailed):
        aead.open_sealed(aead.new_key(), key.sealed_private, key_aad(key.kid))
    other = new_signing_key(w.tenant.id, "ES256", w.kek, now=0, activates_at=0)
    with pytest.raises(DecryptionFailed):  # a blob moved to another key record does not open
        aead.open_sealed(w.kek, key.sealed_private, key_aad(other.kid))


async def test_wrong_kek_cannot_sign(w: World) -> None:
    ring = KeyRing(w.directory, aead.new_key(), w.clock)
    with pytest.raises(DecryptionFailed):
        await ring.signer(w.tenant.id)


def test_new_signing_key_fields() -> None:
    kek = aead.new_key()
    key = new_signing_key("t1", "RS256", kek, now=100.0, activates_at=700.0)
    assert (key.tenant_id, key.alg, key.created_at, key.activates_at, key.retire_at) == ("t1", "RS256", 100.0,
                                                                                          700.0, None)
    assert key.public_jwk["kid"] == key.kid and key.public_jwk["alg"] == "RS256"
    assert key_states([key], 699.9) == {key.kid: "next"}
    assert key_states([key], 700.0) == {key.kid: "active"}
    assert not key.removed_at(1e12)


def test_key_states_timeline() -> None:
    kek = aead.new_key()
    a = new_signing_key("t", "ES256", kek, now=0, activates_at=0)
    b = new_signing_key("t", "ES256", kek, now=1000, activates_at=1600)
    keys = [a, b]
    assert key_states(keys, 1000) == {a.kid: "active", b.kid: "next"}
    assert key_states(keys, 1600) == {a.kid: "previous", b.kid: "active"}
    assert key_states(keys, 1600 + RETENTION - 1) == {a.kid: "previous", b.kid: "active"}
    assert key_states(keys, 1600 + RETENTION) == {a.kid: "retired", b.kid: "active"}
    removed = [a, replace(b, retire_at=1700)]
    assert key_states(removed, 1699) == {a.kid: "previous", b.kid: "active"}
    assert key_states(removed, 1700) == {a.kid: "previous", b.kid: "retired"}  # superseded keys never sign again


# -- a key that has left the JWKS must never come back --------------------------------------------------

class _KeyStore:
    """Just enough of a DirectoryStore for DirectoryService.retire_key."""

    def __init__(self, keys: Sequence[SigningKey]) -> None:
        self.keys = list(keys)

    async def signing_keys(self, tenant_id: str) -> Sequence[SigningKey]:
        return list(self.keys)

    async def retire_signing_key(self, tenant_id: str, kid: str, at: float, audit: AuditEvent) -> bool:
        self.keys = [replace(k, retire_at=at) if k.kid == kid else k for k in self.keys]
        return True


def _long_retired_setup(w: World) -> tuple[SigningKey, SigningKey]:
    """The init key `a`, then `b` rotated in normally; a day later `a` has left the JWKS."""
    (a,) = w.directory.keys[w.tenant.id]
    b = w.directory.add_key(w.tenant, activates_in=600)
    w.clock.advance(600 + RETENTION + 60)
    assert key_states([a, b], w.clock.now()) == {a.kid: "retired", b.kid: "active"}
    return a, b


async def test_retiring_an_unknown_or_naturally_retired_key_is_not_found(w: World) -> None:
    a, b = _long_retired_setup(w)
    store = _KeyStore([a, b])
    service = DirectoryService(store, w.clock, w.hasher, w.kek)  # type: ignore[arg-type]
    for kid in ("nope", a.kid):
        with pytest.raises(NotFound):
            await service.retire_key(w.tenant, kid, actor="test")


async def test_retiring_the_only_published_key_is_refused(w: World) -> None:
    a, b = _long_retired_setup(w)
    store = _KeyStore([a, b])
    service = DirectoryService(store, w.clock, w.hasher, w.kek)  # type: ignore[arg-type]
    try:
        await service.retire_key(w.tenant, b.kid, actor="test")
    except Conflict as exc:
        assert exc.code == "last_signing_key"
    # Whatever the service decided, a key that left the JWKS must not sign or be published again.
    states = key_states(store.keys, w.clock.now())
    assert states[a.kid] == "retired", states


# -- published_kids: the bearer check's per-request question, answered from a memo -------------------

async def test_published_kids_is_published_at_every_instant_either_side_of_each_transition(w: World) -> None:
    """Read once per instant on one KeyRing (so its memo is warm, never invalidated): either side of
    every activation, retention end and removal, the memo's answer is `published`'s (catalog I03, I04)."""
    first = w.directory.keys[w.tenant.id][0]
    w.clock.advance(10)
    second = w.directory.add_key(w.tenant, activates_in=600)
    third = w.directory.add_key(w.tenant, activates_in=1200)
    w.directory.set_retire(w.tenant, third.kid, w.clock.now() + 5000)
    ring = KeyRing(w.directory, w.kek, w.clock, ttl=10 * RETENTION)  # one key list for the whole test
    keys = w.directory.keys[w.tenant.id]
    instants = sorted({t for k in keys for t in (k.activates_at, k.activates_at + RETENTION, k.retire_at)
                       if t is not None and t >= w.clock.now()})
    assert len(instants) >= 5
    seen = set()
    for t in instants:
        for at in (t - 0.001, t, t + 0.001):
            w.clock.set(at)
            expected = frozenset(k.kid for k in await ring.published(w.tenant.id))
            assert await ring.published_kids(w.tenant.id) == expected, at
            seen.add(expected)
    assert {first.kid, second.kid, third.kid} in seen and frozenset({second.kid}) in seen


async def test_published_kids_drops_a_removed_key_once_the_ring_is_invalidated(w: World) -> None:
    old = w.directory.keys[w.tenant.id][0]
    new = w.directory.add_key(w.tenant, activates_in=0)
    w.keyring.invalidate()
    assert await w.keyring.published_kids(w.tenant.id) == {old.kid, new.kid}
    w.directory.set_retire(w.tenant, old.kid, w.clock.now())  # an emergency removal (catalog I04)
    w.keyring.invalidate()
    assert await w.keyring.published_kids(w.tenant.id) == {new.kid}


async def test_the_remembered_signer_changes_at_the_instants_the_states_do(w: World) -> None:
    """`signer` remembers its choice for a cached key list, but only until a key of that list activates
    or is removed, and only for the time it was made at or after (a clock set back chooses again)."""
    old = w.directory.keys[w.tenant.id][0]
    new = w.directory.add_key(w.tenant, activates_in=60)
    w.directory.set_retire(w.tenant, new.kid, w.clock.now() + 90)
    ring = KeyRing(w.directory, w.kek, w.clock, ttl=3600)  # one cached key list throughout
    start = w.clock.now()
    assert (await ring.signer(w.tenant.id)).kid == old.kid
    w.clock.set(start + 59.999)
    assert (await ring.signer(w.tenant.id)).kid == old.kid
    w.clock.set(start + 60)
    assert (await ring.signer(w.tenant.id)).kid == new.kid
    w.clock.set(start + 30)
    assert (await ring.signer(w.tenant.id)).kid == old.kid
    w.clock.set(start + 89.999)
    assert (await ring.signer(w.tenant.id)).kid == new.kid
    w.clock.set(start + 90)  # removed at once, and its predecessor never signs again
    with pytest.raises(ServerError):
        await ring.signer(w.tenant.id)
