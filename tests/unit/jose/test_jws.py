"""Signing and verification with an explicit allow-list and one algorithm per key (catalog B12-B22)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from keyless.crypto.keys import PrivateKey, generate, public_of, public_to_pem
from keyless.errors import KeylessError
from keyless.jose.jwk import key_id, public_jwk
from keyless.jose.jws import (
    ASYMMETRIC_ALGS,
    MAX_TOKEN_LENGTH,
    InvalidJws,
    VerificationKey,
    loads_payload,
    sign,
    unverified_header,
    verify,
)

CLAIMS = {"iss": "https://keyless.example", "sub": "app", "aud": "api", "n": 1, "nested": {"a": [1, 2]}}
TYP = "at+jwt"
KeySet = dict[str, VerificationKey]


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_json(value: Any) -> str:
    return b64u(json.dumps(value, separators=(",", ":")).encode())


@pytest.fixture(scope="module")
def rsa_key() -> PrivateKey:
    return generate("RS256")


@pytest.fixture(scope="module")
def ec_key() -> PrivateKey:
    return generate("ES256")


@pytest.fixture(scope="module")
def attacker_key() -> PrivateKey:
    return generate("RS256")


@pytest.fixture(scope="module")
def rsa_kid(rsa_key: PrivateKey) -> str:
    return key_id(public_of(rsa_key))


@pytest.fixture(scope="module")
def ec_kid(ec_key: PrivateKey) -> str:
    return key_id(public_of(ec_key))


@pytest.fixture(scope="module")
def keyset(rsa_key: PrivateKey, ec_key: PrivateKey, rsa_kid: str, ec_kid: str) -> KeySet:
    return {
        rsa_kid: VerificationKey(rsa_kid, "RS256", public_of(rsa_key)),
        ec_kid: VerificationKey(ec_kid, "ES256", public_of(ec_key)),
    }


ALLOWED = frozenset({"RS256", "ES256"})


def _sign_raw(header: bytes, payload: bytes, key: PrivateKey) -> str:
    """A token over exactly these header/payload bytes, with a genuine signature."""
    signing_input = f"{b64u(header)}.{b64u(payload)}".encode()
    if isinstance(key, rsa.RSAPrivateKey):
        sig = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:  # pragma: no cover
        raise TypeError(key)
    return f"{signing_input.decode()}.{b64u(sig)}"


def _sign_json(header: dict[str, Any], payload: dict[str, Any], key: PrivateKey) -> str:
    return _sign_raw(json.dumps(header).encode(), json.dumps(payload).encode(), key)


def _verify(token: str, keyset: KeySet, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("algorithms", ALLOWED)
    kwargs.setdefault("typ", TYP)
    return verify(token, keys=keyset, **kwargs)


def _refused(token: str, keyset: KeySet, reason: str | None = None, **kwargs: Any) -> str:
    with pytest.raises(InvalidJws) as info:
        _verify(token, keyset, **kwargs)
    if reason is not None:
        assert reason in info.value.reason, info.value.reason
    return info.value.reason


# -- roundtrip ---------------------------------------------------------------------------------------


def test_invalid_jws_is_a_keyless_error() -> None:
    assert issubclass(InvalidJws, KeylessError)
    assert InvalidJws("x").reason == "x"


@pytest.mark.parametrize("which", ["rsa", "ec"])
def test_sign_verify_roundtrip(
    which: str,
    rsa_key: PrivateKey,
    ec_key: PrivateKey,
    rsa_kid: str,
    ec_kid: str,
    keyset: KeySet,
) -> None:
    key, kid, alg = (rsa_key, rsa_kid, "RS256") if which == "rsa" else (ec_key, ec_kid, "ES256")
    token = sign(CLAIMS, key, alg=alg, kid=kid, typ=TYP)
    assert token.count(".") == 2
    header = unverified_header(token)
    assert header["alg"] == alg and header["kid"] == kid and header["typ"] == TYP
    assert _verify(token, keyset) == CLAIMS
    assert _verify(token, keyset, algorithms={alg}) == CLAIMS


def test_es256_signature_is_raw_r_s(ec_key: PrivateKey, ec_kid: str) -> None:
    token = sign(CLAIMS, ec_key, alg="ES256", kid=ec_kid, typ=TYP)
    sig = base64.urlsafe_b64decode(token.split(".")[2] + "==")
    assert len(sig) == 64


def test_manual_tokens_verify(
    rsa_key: PrivateKey, ec_key: PrivateKey, rsa_kid: str, ec_kid: str, keyset: KeySet
) -> None:
    """The forging helpers in this file produce valid tokens, so refusals below are for the stated reason."""
    for key, kid, alg in ((rsa_key, rsa_kid, "RS256"), (ec_key, ec_kid, "ES256")):
        token = _sign_json({"alg": alg, "kid": kid, "typ": TYP}, CLAIMS, key)
        assert _verify(token, keyset) == CLAIMS


def test_typ_is_optional_when_not_requested(rsa_key: PrivateKey, rsa_kid: str, keyset: KeySet) -> None:
    token = _sign_json({"alg": "RS256", "kid": rsa_kid}, CLAIMS, rsa_key)
    assert _verify(token, keyset, typ=None) == CLAIMS
    _refused(token, keyset, "wrong typ")


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"])
def test_typ_matches_case_insensitively_with_media_type_prefix(
    typ: str, rsa_key: PrivateKey, rsa_kid: str, keyset: KeySet
) -> None:
    token = _sign_json({"alg": "RS256", "kid": rsa_kid, "typ": typ}, CLAIMS, rsa_key)
    assert _verify(token, keyset) == CLAIMS


@pytest.mark.parametrize(
    "typ", ["JWT", "jwt", "at+jwt ", "application/jwt", "text/at+jwt", "", 1, None, ["at+jwt"]]
)
def test_wrong_typ_refused(typ: Any, rsa_key: PrivateKey, rsa_kid: str, keyset: KeySet) -> None:
    token = _sign_json({"alg": "RS256", "kid": rsa_kid, "typ": typ}, CLAIMS, rsa_key)
    _refused(token, keyset, "wrong typ")


# -- algorithm attacks (B12, B13, allow-list, key binding) -------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", "none "])
def test_b12_alg_none_refused(alg: str, rsa_kid: str, keyset: KeySet) -> None:
    token = f"{b64u_json({'alg': alg, 'kid': rsa_kid, 'typ': TYP})}.{b64u_json(CLAIMS)}."
    _refused(token, keyset, "algorithm not allowed")
    _refused(token, keyset, "algorithm not allowed", typ=None)


def test_b12_alg_none_cannot_be_allowed() -> None:
    with pytest.raises(ValueError):
        verify("a.b.", keys={}, algorithms={"none"}, typ=None)


def test_b12_missing_or_non_string_alg_refused(rsa_key: PrivateKey, rsa_kid: str, keyset: KeySet) -> None:
    for header in (
        {"kid": rsa_kid, "typ": TYP},
        {"alg": None, "kid": rsa_kid, "typ": TYP},
        {"alg": ["RS256"], "kid": rsa_kid, "typ": TYP},
    ):
        _refused(_sign_json(header, CLAIMS, rsa_key), keyset, "algorithm not allowed")


def test_b13_hs256_with_public_key_refused(rsa_key: PrivateKey, rsa_kid: str, keyset: KeySet) -> None:
    """Classic key confusion: MAC the token with the server's public key PEM as the HMAC secret."""
    pem = public_to_pem(public_of(rsa_key))
    signing_input = f"{b64u_json({'alg': 'HS256', 'kid': rsa_kid, 'typ': TYP})}.{b64u_json(CLAIMS)}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64u(mac)}"
    _refused(token, keyset, "algorithm not allowed")
    # Even a caller that lists every algorithm it knows cannot let HS256 through.
    _refused(token, keyset, "algorithm not allowed", algorithms=ASYMMETRIC_ALGS)
    # And the key bound to RS256 never verifies an HS256 header.
    with pytest.raises(ValueError):
        _verify(token, keyset, algorithms={"HS256", "RS256"})


@pytest.mark.parametrize("algs", [set(), frozenset(), {"HS256"}, {"RS256", "HS512"}, {"none"}, {"rs256"}])
def test_allow_list_must_be_asymmetric_and_non_empty(algs: set[str], keyset: KeySet) -> None:
    with pytest.raises(ValueError):
        verify("a.b.c", keys=keyset, algorithms=algs, typ=None)


def test_alg_not_in_allowed_set_refused(ec_key: PrivateKey, ec_kid: str, keyset: KeySet) -> None:
    token = sign(CLAIMS, ec_key, alg="ES256", kid=ec_kid, typ=TYP)
    _refused(token, keyset, "algorithm not allowed", algorithms={"RS256"})


@pytest.mark.parametrize("alg", ["rs256", "Rs256", "RS256 ", "PS256", "RS512", "ES384", "EdDSA"])
def test_alg_spelled_differently_or_unlisted_refused(
    alg: str, rsa_key: PrivateKey, rsa_kid: str, keyset: KeySet
) -> None:
    token = _sign_json({"alg": alg, "kid": rsa_kid, "typ": TYP}, CLAIMS, rsa_key)
    _refused(token, keyset, "algorithm not allowed")


def test_alg_different_from_keys_registered_alg_refused(
    rsa_key: PrivateKey, rsa_kid: str, ec_kid: str, keyset: KeySet
) -> None:
    # RS256 header naming the ES256 key.
    token = _sign_json({"alg": "RS256", "kid": ec_kid, "typ": TYP}, CLAIMS, rsa_key)
    _refused(token, keyset, "algorithm does not match the key")
    # PS256 over the RS256 key: same key type, another algorithm: still refused.
    ps = jwt.encode(CLAIMS, rsa_key, algorithm="PS256", headers={"kid": rsa_kid, "typ": TYP})
    _refused(ps, keyset, "algorithm does not match the key", algorithms={"RS256", "PS256"})


# -- key selection (unknown kid, embedded keys: B16) -------------------------------------------------


def test_unknown_kid_refused(attacker_key: PrivateKey, keyset: KeySet) -> None:
    token = sign(CLAIMS, attacker_key, alg="RS256", kid="not-a-known-kid", typ=TYP)
    _refused(token, keyset, "unknown kid")
    _refused(token, {}, "unknown kid")


@pytest.mark.parametrize("kid", [None, 1, ["k"], {"k": 1}])
def test_missing_or_non_string_kid_refused(kid: Any, rsa_key: PrivateKey, keyset: KeySet) -> None:
    header = {"alg": "RS256", "typ": TYP}
    if kid is not None:
        header["kid"] = kid
    _refused(_sign_json(header, CLAIMS, rsa_key), keyset, "no kid")


def test_b16_embedded_jwk_header_ignored(attacker_key: PrivateKey, rsa_kid: str, keyset: KeySet) -> None:
    attacker_jwk = public_jwk(public_of(attacker_key), "RS256")
    # Token names the attacker's own key as kid and embeds it: not in the key set.
    own = _sign_json(
        {"alg": "RS256", "kid": attacker_jwk["kid"], "typ": TYP, "jwk": attacker_jwk}, CLAIMS, attacker_key
    )
    _refused(own, keyset, "unknown kid")
    # Token names the legitimate kid but embeds (and signs with) the attacker's key.
    header = {"alg": "RS256", "kid": rsa_kid, "typ": TYP, "jwk": attacker_jwk}
    legit = _sign_json(header, CLAIMS, attacker_key)
    _refused(legit, keyset, "bad signature")


@pytest.mark.parametrize("member", ["jku", "x5u", "x5c"])
def test_b16_key_url_and_chain_headers_ignored(
    member: str, attacker_key: PrivateKey, rsa_kid: str, keyset: KeySet
) -> None:
    value: Any = ["MIIB"] if member == "x5c" else "https://attacker.example/keys"
    token = _sign_json({"alg": "RS256", "kid": rsa_kid, "typ": TYP, member: value}, CLAIMS, attacker_key)
    _refused(token, keyset, "bad signature")


def test_signature_from_other_key_refused(
    rsa_key: PrivateKey, ec_key: PrivateKey, ec_kid: str, keyset: KeySet
) -> None:
    other = generate("ES256")
    token = sign(CLAIMS, other, alg="ES256", kid=ec_kid, typ=TYP)
    _refused(token, keyset, "bad signature")


# -- tampering ---------------------------------------------------------------------------------------


def test_tampered_payload_refused(rsa_key: PrivateKey, rsa_kid: str, keyset: KeySet) -> None:
    token = sign(CLAIMS, rsa_key, alg="RS256", kid=rsa_kid, typ=TYP)
    h, _, s = token.split(".")
    forged = f"{h}.{b64u_json(dict(CLAIMS, sub='admin'))}.{s}"
    _refused(forged, keyset, "bad signature")


def test_tampered_header_refused(rsa_key: PrivateKey, rsa_kid: str, keyset: KeySet) -> None:
    token = sign(CLAIMS, rsa_key, alg="RS256", kid=rsa_kid, typ=TYP)
    _, p, s = token.split(".")
    forged = f"{b64u_json({'alg': 'RS256', 'kid': rsa_kid, 'typ': TYP, 'x': 1})}.{p}.{s}"
    _refused(forged, keyset, "bad signature")


@pytest.mark.parametrize("which", ["rsa", "ec"])
def test_tampered_or_empty_signature_refused(
    which: str,
    rsa_key: PrivateKey,
    ec_key: PrivateKey,
    rsa_kid: str,
    ec_kid: str,
    keyset: KeySet,
) -> None:
    key, kid, alg = (rsa_key, rsa_kid, "RS256") if which == "rsa" else (ec_key, ec_kid, "ES256")
    token = sign(CLAIMS, key, alg=alg, kid=kid, typ=TYP)
    h, p, s = token.split(".")
    sig = bytearray(base64.urlsafe_b64decode(s + "=="))
    sig[len(sig) // 2] ^= 0x01
    _refused(f"{h}.{p}.{b64u(bytes(sig))}", keyset, "bad signature")
    _refused(f"{h}.{p}.", keyset, "bad signature")
    _refused(f"{h}.{p}.{b64u(bytes(sig[:-1]))}", keyset, "bad signature")
    _refused(f"{h}.{p}.{s}AA", keyset, "bad signature")


# -- hygiene through verify (B19, B21, B22) ----------------------------------------------------------


def test_b22_oversized_token_refused(rsa_key: PrivateKey, rsa_kid: str, keyset: KeySet) -> None:
    token = sign(CLAIMS, rsa_key, alg="RS256", kid=rsa_kid, typ=TYP)
    assert _verify(token, keyset, max_length=len(token)) == CLAIMS
    _refused(token, keyset, "too large", max_length=len(token) - 1)
    big = sign(dict(CLAIMS, pad="x" * MAX_TOKEN_LENGTH), rsa_key, alg="RS256", kid=rsa_kid, typ=TYP)
    _refused(big, keyset, "too large")
    with pytest.raises(InvalidJws, match="too large"):
        unverified_header(big)


@pytest.mark.parametrize("count", [2, 4, 5])
def test_b21_wrong_segment_count_refused(
    count: int, rsa_key: PrivateKey, rsa_kid: str, keyset: KeySet
) -> None:
    token = sign(CLAIMS, rsa_key, alg="RS256", kid=rsa_kid, typ=TYP)
    parts = token.split(".")
    parts = [*parts, "AAAA", "AAAA"][:count]
    _refused(".".join(parts), keyset, "not a compact JWS")


@pytest.mark.parametrize("bad", ["+", "/", "=", " ", "\u00e9", "!"])
def test_non_base64url_characters_refused(
    bad: str, rsa_key: PrivateKey, rsa_kid: str, keyset: KeySet
) -> None:
    token = sign(CLAIMS, rsa_key, alg="RS256", kid=rsa_kid, typ=TYP)
    h, p, s = token.split(".")
    for forged in (f"{h}{bad}.{p}.{s}", f"{h}.{p}{bad}.{s}", f"{h}.{p}.{s[:5]}{bad}{s[5:]}"):
        _refused(forged, keyset, "invalid base64url")


def test_duplicate_header_member_refused(rsa_key: PrivateKey, rsa_kid: str, keyset: KeySet) -> None:
    header = f'{{"alg":"RS256","kid":"{rsa_kid}","typ":"{TYP}","kid":"{rsa_kid}"}}'.encode()
    token = _sign_raw(header, json.dumps(CLAIMS).encode(), rsa_key)
    _refused(token, keyset, "duplicate")


def test_duplicate_payload_member_refused(rsa_key: PrivateKey, rsa_kid: str, keyset: KeySet) -> None:
    header = json.dumps({"alg": "RS256", "kid": rsa_kid, "typ": TYP}).encode()
    token = _sign_raw(header, b'{"sub":"app","aud":"api","sub":"admin"}', rsa_key)
    _refused(token, keyset, "duplicate")


def test_b19_unknown_crit_refused(rsa_key: PrivateKey, rsa_kid: str, keyset: KeySet) -> None:
    header = {"alg": "RS256", "kid": rsa_kid, "typ": TYP, "crit": ["exp"], "exp": 0}
    _refused(_sign_json(header, CLAIMS, rsa_key), keyset, "unsupported critical header")
    b64 = {"alg": "RS256", "kid": rsa_kid, "typ": TYP, "crit": ["b64"], "b64": False}
    _refused(_sign_json(b64, CLAIMS, rsa_key), keyset, "unsupported critical header")


def test_header_json_array_refused(rsa_key: PrivateKey, keyset: KeySet) -> None:
    token = _sign_raw(b'["RS256"]', json.dumps(CLAIMS).encode(), rsa_key)
    _refused(token, keyset, "header is not a JSON object")


def test_payload_not_an_object_refused(rsa_key: PrivateKey, rsa_kid: str, keyset: KeySet) -> None:
    header = json.dumps({"alg": "RS256", "kid": rsa_kid, "typ": TYP}).encode()
    for payload in (b"[1]", b'"claims"', b"null", b"42"):
        _refused(_sign_raw(header, payload, rsa_key), keyset, "payload is not a JSON object")


def test_unverified_header_converts_errors() -> None:
    with pytest.raises(InvalidJws, match="not a compact JWS"):
        unverified_header("abc")
    assert unverified_header(f"{b64u_json({'alg': 'RS256'})}.{b64u_json({})}.") == {"alg": "RS256"}


def test_loads_payload() -> None:
    assert loads_payload(b'{"a":1}') == {"a": 1}
    with pytest.raises(InvalidJws, match="claims are not an object"):
        loads_payload(b"[]")
    with pytest.raises(InvalidJws, match="duplicate"):
        loads_payload(b'{"a":1,"a":2}')
    with pytest.raises(InvalidJws, match="not valid UTF-8 JSON"):
        loads_payload(b"\xff")


def test_sign_fast_path_is_pyjwt_byte_for_byte(rsa_key: PrivateKey, rsa_kid: str) -> None:
    """`sign` builds the compact form itself (precomputed header segment, orjson payload): for RS256,
    whose PKCS#1 v1.5 signatures are deterministic, the token is exactly what PyJWT encodes."""
    claims = {"iss": "https://issuer.example/t/v2.0", "aud": "api://x", "iat": 1700000000, "exp": 1700003600,
              "roles": ["A", "B"]}
    ours = sign(claims, rsa_key, alg="RS256", kid=rsa_kid, typ="at+jwt")
    theirs = jwt.encode(claims, rsa_key, algorithm="RS256", headers={"kid": rsa_kid, "typ": "at+jwt"})
    head = ours.split(".")[0]
    assert json.loads(base64.urlsafe_b64decode(head + "==")) == {"alg": "RS256", "kid": rsa_kid, "typ": "at+jwt"}
    assert jwt.decode(ours, public_of(rsa_key), algorithms=["RS256"], audience="api://x",
                      options={"verify_exp": False}) == claims
    assert ours == theirs


def test_sign_non_ascii_claims_round_trip(ec_key: PrivateKey, ec_kid: str) -> None:
    """orjson writes UTF-8 where PyJWT's json escapes to \\u: the same JSON text to any verifier."""
    token = sign({"name": "caf\u00e9 \u6771\u4eac"}, ec_key, alg="ES256", kid=ec_kid, typ="JWT")
    assert jwt.decode(token, public_of(ec_key), algorithms=["ES256"]) == {"name": "caf\u00e9 \u6771\u4eac"}


def test_sign_fast_path_es256_verifies_with_pyjwt(ec_key: PrivateKey, ec_kid: str) -> None:
    token = sign({"sub": "x", "n": 1}, ec_key, alg="ES256", kid=ec_kid, typ="JWT")
    assert jwt.decode(token, public_of(ec_key), algorithms=["ES256"]) == {"sub": "x", "n": 1}
    assert len(base64.urlsafe_b64decode(token.split(".")[2] + "==")) == 64  # raw r || s, RFC 7518 §3.4


def test_sign_refuses_symmetric_algorithms(ec_key: PrivateKey) -> None:
    with pytest.raises(ValueError, match="asymmetric"):
        sign({"sub": "x"}, ec_key, alg="HS256", kid="k", typ="JWT")


@pytest.mark.parametrize("size", range(0, 70))
def test_segments_are_the_standard_librarys_base64url_without_padding(size: int) -> None:
    from keyless.jose.hygiene import b64u_decode, b64u_encode

    data = bytes((i * 37 + size) % 256 for i in range(size))  # every residue of the length mod 3
    assert b64u_encode(data) == base64.urlsafe_b64encode(data).rstrip(b"=")
    assert b64u_decode(b64u_encode(data).decode("ascii")) == data
