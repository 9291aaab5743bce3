"""The issuer's key set for `TokenValidator` (keyless.verify.validator): which JWKS entries are usable
signing keys, each bound to its own `alg` and key type (catalog J02), an ambiguous `kid` dropped (I05),
unchanged keys reused across refreshes; and the limits on fetching it (https only, 64 KiB, a JSON
object), so a hostile or broken metadata endpoint fails closed (`KeysUnavailable`)."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from keyless.jose.jwk import public_key_from_jwk
from keyless.jose.jws import VerificationKey
from keyless.verify.errors import KeysUnavailable

MAX_JWKS_BYTES = 64 * 1024
MAX_KEYS = 50
# The key type each algorithm may be used with: a JWKS entry whose `kty`/`crv` disagree is ignored.
_KEY_TYPES: dict[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None), "RS384": ("RSA", None), "RS512": ("RSA", None),
    "PS256": ("RSA", None), "PS384": ("RSA", None), "PS512": ("RSA", None),
    "ES256": ("EC", "P-256"), "ES384": ("EC", "P-384"), "EdDSA": ("OKP", "Ed25519"),
}


@dataclass(frozen=True)
class KeySet:
    keys: Mapping[str, VerificationKey]
    fetched_at: float
    raw: Mapping[str, str] = field(default_factory=dict)  # kid -> canonical JWK, to reuse parsed keys


def parse_jwks(jwks: dict[str, Any], algorithms: Collection[str], previous: KeySet, *, now: float) -> KeySet:
    """The usable signing keys of `jwks` for `algorithms`; a key unchanged since `previous` is reused."""
    keys: dict[str, VerificationKey] = {}
    raw: dict[str, str] = {}
    seen: set[str] = set()
    entries = jwks.get("keys")
    for jwk in (entries if isinstance(entries, list) else [])[:MAX_KEYS]:
        if not isinstance(jwk, dict):
            continue
        kid, alg = jwk.get("kid"), jwk.get("alg")
        if not isinstance(kid, str) or not isinstance(alg, str) or alg not in algorithms:
            continue
        if jwk.get("use", "sig") != "sig" or (jwk.get("kty"), jwk.get("crv")) != _KEY_TYPES[alg]:
            continue
        if kid in seen:  # an ambiguous kid verifies nothing (catalog I05)
            keys.pop(kid, None)
            continue
        seen.add(kid)
        canonical = json.dumps(jwk, sort_keys=True)
        old = previous.keys.get(kid)
        if old is not None and previous.raw.get(kid) == canonical:
            keys[kid], raw[kid] = old, canonical  # unchanged: keep the parsed key (and remembered tokens)
            continue
        try:
            keys[kid] = VerificationKey(kid=kid, alg=alg, key=public_key_from_jwk(jwk))
        except ValueError:
            continue
        raw[kid] = canonical
    return KeySet(keys=keys, fetched_at=now, raw=raw)


def https_url(url: object) -> str:
    if not isinstance(url, str) or not url.startswith("https://"):
        raise KeysUnavailable("refusing a non-https metadata URL")
    return url


def metadata_json(resp: httpx.Response) -> dict[str, Any]:
    """An issuer metadata or JWKS answer: 200, at most `MAX_JWKS_BYTES`, a JSON object."""
    if resp.status_code != 200 or len(resp.content) > MAX_JWKS_BYTES:
        raise KeysUnavailable("could not fetch issuer metadata")
    try:
        data = resp.json()
    except ValueError:
        raise KeysUnavailable("issuer metadata is not JSON") from None
    if not isinstance(data, dict):
        raise KeysUnavailable("issuer metadata is not an object")
    return data
