"""Sign and verify JWS with PyJWT, always with an explicit algorithm allow-list.

`sign` (the server's own tokens, on the token endpoint's hot path) builds the compact form itself
(RFC 7515 §7.1) around PyJWT's algorithm objects: the protected header segment is encoded once per
(alg, kid, typ), the payload with orjson where it is installed (the server extra), so a token costs
its signature plus a few microseconds (issue 18). The signature is PyJWT's, byte for byte.

`verify` takes the key set from the caller (never from the token's `jwk`/`jku`/`x5u`/`x5c`
headers, catalog B16/J05/J06) and binds each key to exactly one algorithm (R-8725-1): a token whose
header names another algorithm than the key's is refused before the library sees it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from keyless.crypto.keys import PrivateKey, PublicKey, sign_es256, verify_es256
from keyless.crypto.verifying import p256_public, verify_rs256
from keyless.errors import KeylessError
from keyless.jose.hygiene import MalformedJose, b64u_decode, b64u_encode, check_compact, loads_strict

ASYMMETRIC_ALGS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"})
MAX_TOKEN_LENGTH = 8192


class InvalidJws(KeylessError):
    """Verification failed; `reason` is for logs and tests, never for the wire."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class VerificationKey:
    kid: str
    alg: str
    key: PublicKey


_JWS = jwt.PyJWS()
_SIGNERS = {name: impl for name, impl in jwt.algorithms.get_default_algorithms().items() if name in ASYMMETRIC_ALGS}
_HEADER_SEGMENTS: dict[tuple[str, str, str], bytes] = {}


def _compact_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


try:  # the server extra installs orjson; the client and verifier work without it
    import orjson

    _dumps: Callable[[Any], bytes] = orjson.dumps
except ImportError:  # pragma: no cover - exercised by installs without the server extra
    _dumps = _compact_json


def _header_segment(alg: str, kid: str, typ: str) -> bytes:
    key = (alg, kid, typ)
    segment = _HEADER_SEGMENTS.get(key)
    if segment is None:
        segment = b64u_encode(_compact_json({"alg": alg, "kid": kid, "typ": typ}))
        if len(_HEADER_SEGMENTS) >= 256:  # keys rotate; a handful are ever live
            _HEADER_SEGMENTS.clear()
        _HEADER_SEGMENTS[key] = segment
    return segment


def sign(claims: Mapping[str, Any], key: PrivateKey, *, alg: str, kid: str, typ: str) -> str:
    """A compact JWS over `claims` with the protected header {alg, kid, typ} (RFC 7515 §7.1)."""
    algorithm = _SIGNERS.get(alg)
    if algorithm is None:
        raise ValueError("only asymmetric JWS algorithms are signed here")
    payload = _dumps(claims if type(claims) is dict else dict(claims))
    signing_input = _header_segment(alg, kid, typ) + b"." + b64u_encode(payload)
    if alg == "ES256":
        signature = sign_es256(key, signing_input)  # RFC 7518 §3.4; PyJWT's bytes, without its generic path
    else:
        signature = algorithm.sign(signing_input, algorithm.prepare_key(key))
    return (signing_input + b"." + b64u_encode(signature)).decode("ascii")


def sign_with_headers(claims: Mapping[str, Any], key: PrivateKey, *, alg: str, headers: Mapping[str, Any]) -> str:
    """Sign with caller-chosen protected headers (client assertions carry `x5t#S256`, `x5c`, ...)."""
    if alg not in ASYMMETRIC_ALGS:
        raise ValueError("only asymmetric JWS algorithms are signed here")
    return jwt.encode(dict(claims), key, algorithm=alg, headers=dict(headers))


def unverified_header(token: str, *, max_length: int = MAX_TOKEN_LENGTH) -> dict[str, Any]:
    try:
        return check_compact(token, max_length=max_length)
    except MalformedJose as exc:
        raise InvalidJws(str(exc)) from None


def verify(
    token: str,
    *,
    keys: Mapping[str, VerificationKey],
    algorithms: frozenset[str] | set[str],
    typ: str | None,
    max_length: int = MAX_TOKEN_LENGTH,
) -> dict[str, Any]:
    """Verify the signature and return the claims. Claim semantics are the caller's job."""
    if not algorithms or not set(algorithms) <= ASYMMETRIC_ALGS:
        raise ValueError("algorithms must be a non-empty set of asymmetric JWS algorithms")
    header = unverified_header(token, max_length=max_length)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms:
        raise InvalidJws("algorithm not allowed")
    if typ is not None and not (
        isinstance(header.get("typ"), str)
        and header["typ"].lower() in {typ.lower(), "application/" + typ.lower()}
    ):
        raise InvalidJws("wrong typ")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise InvalidJws("no kid")
    entry = keys.get(kid)
    if entry is None:
        raise InvalidJws("unknown kid")
    if entry.alg != alg:
        raise InvalidJws("algorithm does not match the key")
    try:
        payload = _JWS.decode(token, entry.key, algorithms=[entry.alg])
    except jwt.PyJWTError:
        raise InvalidJws("bad signature") from None
    return loads_payload(payload)


def verify_with_key(token: str, key: PublicKey, *, alg: str) -> None:
    """Check the signature of a JWS the caller has already passed through `hygiene.split_compact`
    (shape, size, duplicate members, crit) with one registered key and its one algorithm.

    Padded segments are accepted here because the caller's hygiene check decided that: azure-identity's
    async client pads all three base64url segments (compat doc §2.2), and the signature covers the
    segments exactly as sent.
    """
    if alg not in ASYMMETRIC_ALGS:
        raise InvalidJws("algorithm not allowed")
    head, _, signature = token.rpartition(".")
    try:
        raw = b64u_decode(signature.rstrip("="))
    except MalformedJose:
        raise InvalidJws("bad signature") from None
    if not _verify(alg, key, head.encode("ascii"), raw):
        raise InvalidJws("bad signature")


def loads_payload(payload: bytes) -> dict[str, Any]:
    try:
        claims = loads_strict(payload)
    except MalformedJose as exc:
        raise InvalidJws(str(exc)) from None
    if not isinstance(claims, dict):
        raise InvalidJws("claims are not an object")
    return claims


_ALGORITHMS = jwt.algorithms.get_default_algorithms()


def verify_signature(key: VerificationKey, signing_input: bytes, signature: bytes) -> bool:
    """The public-key operation alone, for hot paths whose caller has already done the hygiene checks
    (`keyless.verify` caches those per header). Only `key.alg`, only asymmetric algorithms."""
    return _verify(key.alg, key.key, signing_input, signature)


def _verify(alg: str, key: PublicKey, signing_input: bytes, signature: bytes) -> bool:
    algorithm = _ALGORITHMS.get(alg) if alg in ASYMMETRIC_ALGS else None
    if algorithm is None:
        return False
    # client assertions' usual cases (issue 18): PyJWT's answer without its generic path, each
    # differentially tested against it (tests/unit/crypto/test_keys.py, test_verifying.py)
    if alg == "ES256" and p256_public(key):
        return verify_es256(key, signing_input, signature)
    if alg == "RS256":  # False for a key that is not RSA, as PyJWT's TypeError below would give
        return verify_rs256(key, signing_input, signature)
    try:
        return bool(algorithm.verify(signing_input, key, signature))
    except (ValueError, TypeError, AttributeError):  # a key of the wrong type for the algorithm
        return False
