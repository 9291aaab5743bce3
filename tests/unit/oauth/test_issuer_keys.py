"""The per-issuer key cache: discovery then JWKS, issuer equality, refresh rate, staleness (E04, E06)."""

from __future__ import annotations

from typing import Any

import pytest

from keyless.clock import FrozenClock
from keyless.crypto.keys import generate
from keyless.jose.jwk import public_jwk
from keyless.oauth.federation.issuers import FetchFailed, IssuerKeys

A = "https://a.example.test"
B = "https://b.example.test/path"


class Documents:
    """A `MetadataFetcher` over a dictionary of URL -> JSON (or an exception to raise)."""

    def __init__(self) -> None:
        self.docs: dict[str, Any] = {}
        self.calls: list[str] = []

    def issuer(self, issuer: str, *jwks: dict[str, Any], metadata_issuer: str | None = None) -> None:
        self.docs[issuer + "/.well-known/openid-configuration"] = {
            "issuer": metadata_issuer or issuer, "jwks_uri": issuer + "/keys"}
        self.docs[issuer + "/keys"] = {"keys": list(jwks)}

    async def fetch_json(self, url: str) -> dict[str, Any]:
        self.calls.append(url)
        doc = self.docs.get(url)
        if isinstance(doc, Exception):
            raise doc
        if doc is None:
            raise FetchFailed("http_404")
        return dict(doc)


def jwk() -> dict[str, Any]:
    return public_jwk(generate("RS256").public_key(), "RS256")  # type: ignore[arg-type]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(1_000_000)


async def test_keys_come_from_discovery_then_jwks(clock: FrozenClock) -> None:
    docs, key = Documents(), jwk()
    docs.issuer(A, key)
    keys = await IssuerKeys(docs, clock).keys(A, key["kid"])
    assert list(keys) == [key["kid"]]
    assert keys[key["kid"]].algorithms == frozenset({"RS256"})
    assert docs.calls == [A + "/.well-known/openid-configuration", A + "/keys"]


async def test_e04_metadata_issuer_must_equal_the_configured_one(clock: FrozenClock) -> None:
    docs = Documents()
    docs.issuer(A, jwk(), metadata_issuer=A + "/")
    cache = IssuerKeys(docs, clock)
    with pytest.raises(FetchFailed) as info:
        await cache.keys(A, None)
    assert info.value.reason == "metadata_issuer_mismatch"
    assert A + "/keys" not in docs.calls
    with pytest.raises(FetchFailed) as again:  # within the refresh interval: no fetch, the same reason
        await cache.keys(A, None)
    assert again.value.reason == "metadata_issuer_mismatch"
    assert len(docs.calls) == 1


async def test_keys_are_per_issuer(clock: FrozenClock) -> None:
    docs, ka, kb = Documents(), jwk(), jwk()
    docs.issuer(A, ka)
    docs.issuer(B, kb)
    cache = IssuerKeys(docs, clock)
    assert set(await cache.keys(A, None)) == {ka["kid"]}
    assert set(await cache.keys(B, kb["kid"])) == {kb["kid"]}
    assert kb["kid"] not in await cache.keys(A, kb["kid"])


async def test_e06_unknown_kid_refreshes_once_per_interval(clock: FrozenClock) -> None:
    docs, key = Documents(), jwk()
    docs.issuer(A, key)
    cache = IssuerKeys(docs, clock, refresh_interval=60)
    await cache.keys(A, None)
    for i in range(20):
        assert f"unknown-{i}" not in await cache.keys(A, f"unknown-{i}")
    assert cache.fetches(A) == 1
    clock.advance(60)
    await cache.keys(A, "unknown")
    assert cache.fetches(A) == 2


async def test_rotation_is_seen_after_the_interval(clock: FrozenClock) -> None:
    docs, old, new = Documents(), jwk(), jwk()
    docs.issuer(A, old)
    cache = IssuerKeys(docs, clock, refresh_interval=60)
    await cache.keys(A, old["kid"])
    docs.issuer(A, new)
    clock.advance(61)
    assert set(await cache.keys(A, new["kid"])) == {new["kid"]}


async def test_stale_keys_serve_while_the_issuer_is_down_then_fail_closed(clock: FrozenClock) -> None:
    docs, key = Documents(), jwk()
    docs.issuer(A, key)
    cache = IssuerKeys(docs, clock, refresh_interval=60, max_age=900, max_stale=3600)
    await cache.keys(A, None)
    docs.docs[A + "/.well-known/openid-configuration"] = FetchFailed("timeout")
    clock.advance(1000)
    assert key["kid"] in await cache.keys(A, None)  # refetch failed; still within max_stale
    clock.advance(2600)
    with pytest.raises(FetchFailed):
        await cache.keys(A, None)
    docs.issuer(A, key)
    clock.advance(60)
    assert key["kid"] in await cache.keys(A, None)


@pytest.mark.parametrize(("jwks", "reason"), [
    ({"keys": "nope"}, "jwks_malformed"),
    ({}, "jwks_malformed"),
    ({"keys": []}, "jwks_no_usable_key"),
    ({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]}, "jwks_no_usable_key"),
])
async def test_unusable_key_sets(clock: FrozenClock, jwks: dict[str, Any], reason: str) -> None:
    docs = Documents()
    docs.issuer(A)
    docs.docs[A + "/keys"] = jwks
    with pytest.raises(FetchFailed) as info:
        await IssuerKeys(docs, clock).keys(A, None)
    assert info.value.reason == reason
