"""Strict pre-parse checks on compact JWS (catalog B19/B21/B22, J07/J08/J09)."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyless.errors import KeylessError
from keyless.jose import hygiene
from keyless.jose.hygiene import (
    MAX_HEADER_SEGMENT,
    MalformedJose,
    UnacceptableNumber,
    b64u_decode,
    check_compact,
    loads_strict,
)

MAX = 8192
HEADER = {"alg": "RS256", "kid": "k1", "typ": "JWT"}
PAYLOAD = {"sub": "s", "aud": "a"}
SIG = "c2lnbmF0dXJl"


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def seg(value: Any) -> str:
    return b64u(json.dumps(value).encode())


def token(header: Any = HEADER, payload: Any = PAYLOAD, sig: str = SIG) -> str:
    return f"{seg(header)}.{seg(payload)}.{sig}"


def raw_token(header: bytes, payload: bytes = b'{"sub":"s"}', sig: str = SIG) -> str:
    return f"{b64u(header)}.{b64u(payload)}.{sig}"


def test_malformed_jose_is_a_keyless_error() -> None:
    assert issubclass(MalformedJose, KeylessError)


def test_valid_token_returns_header() -> None:
    assert check_compact(token(), max_length=MAX) == HEADER


def test_empty_signature_segment_is_a_shape_not_a_hygiene_error() -> None:
    # alg=none tokens have an empty signature; refusing them is the verifier's job (see test_jws).
    assert check_compact(token(sig=""), max_length=MAX) == HEADER


# -- size (B22 / J09) -------------------------------------------------------------------------------


def test_b22_oversized_token_refused() -> None:
    tok = token()
    assert check_compact(tok, max_length=len(tok)) == HEADER
    with pytest.raises(MalformedJose, match="too large"):
        check_compact(tok, max_length=len(tok) - 1)


def test_b22_oversized_token_refused_before_any_parsing() -> None:
    # Garbage that would fail every later check: the size rule must fire first.
    with pytest.raises(MalformedJose, match="token too large"):
        check_compact("!" * 1_000_000, max_length=MAX)


def test_b22_oversized_header_segment_refused() -> None:
    header = dict(HEADER, pad="x" * MAX_HEADER_SEGMENT)
    with pytest.raises(MalformedJose, match="header too large"):
        check_compact(token(header=header), max_length=10 * MAX_HEADER_SEGMENT)


def test_header_segment_at_the_limit_is_accepted() -> None:
    base = len(seg(dict(HEADER, pad="")))
    pad = "x" * ((MAX_HEADER_SEGMENT - base) * 3 // 4)
    header = dict(HEADER, pad=pad)
    assert len(seg(header)) <= MAX_HEADER_SEGMENT
    assert check_compact(token(header=header), max_length=10 * MAX_HEADER_SEGMENT) == header


# -- shape (B21 / J08) ------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 4, 5, 6])
def test_b21_wrong_segment_count_refused(count: int) -> None:
    parts = [seg(HEADER), seg(PAYLOAD), SIG, "AAAA", "AAAA", "AAAA"][:count]
    with pytest.raises(MalformedJose, match="not a compact JWS"):
        check_compact(".".join(parts), max_length=MAX)


def test_b21_five_segment_jwe_refused() -> None:
    jwe = ".".join([seg({"alg": "RSA-OAEP", "enc": "A256GCM"}), "", "aXY", "Y2lwaGVy", "dGFn"])
    with pytest.raises(MalformedJose, match="not a compact JWS"):
        check_compact(jwe, max_length=MAX)


def test_b21_json_serialisation_refused() -> None:
    js = json.dumps({"payload": seg(PAYLOAD), "protected": seg(HEADER), "signature": SIG})
    with pytest.raises(MalformedJose):
        check_compact(js, max_length=MAX)


def test_empty_token_refused() -> None:
    with pytest.raises(MalformedJose):
        check_compact("", max_length=MAX)
    with pytest.raises(MalformedJose):
        check_compact("..", max_length=MAX)


@pytest.mark.parametrize("which", [0, 1])
def test_empty_header_or_payload_refused(which: int) -> None:
    parts = [seg(HEADER), seg(PAYLOAD), SIG]
    parts[which] = ""
    with pytest.raises(MalformedJose, match="invalid base64url"):
        check_compact(".".join(parts), max_length=MAX)


@pytest.mark.parametrize("bad", ["+", "/", "=", " ", "\n", "%", "\u00e9", "\uff21", "\x00", "*"])
@pytest.mark.parametrize("which", [0, 1, 2])
def test_non_base64url_characters_refused(bad: str, which: int) -> None:
    parts = [seg(HEADER), seg(PAYLOAD), SIG]
    parts[which] = parts[which][:2] + bad + parts[which][2:]
    with pytest.raises(MalformedJose, match="invalid base64url"):
        check_compact(".".join(parts), max_length=MAX)


def test_trailing_newline_refused() -> None:
    with pytest.raises(MalformedJose):
        check_compact(token() + "\n", max_length=MAX)


def test_padding_refused_unless_allowed() -> None:
    header = base64.urlsafe_b64encode(json.dumps(HEADER).encode()).decode()
    payload = base64.urlsafe_b64encode(b'{"a":1}').decode()
    assert header.endswith("=") or payload.endswith("=")
    tok = f"{header}.{payload}.{SIG}"
    with pytest.raises(MalformedJose, match="invalid base64url"):
        check_compact(tok, max_length=MAX)
    assert check_compact(tok, max_length=MAX, allow_padding=True) == HEADER


def test_padding_only_at_the_end_even_when_allowed() -> None:
    parts = [seg(HEADER), seg(PAYLOAD), SIG]
    parts[0] = "=" + parts[0]
    with pytest.raises(MalformedJose):
        check_compact(".".join(parts), max_length=MAX, allow_padding=True)


def test_impossible_base64_length_refused() -> None:
    # 4k+1 characters never decode to whole bytes.
    with pytest.raises(MalformedJose, match="invalid base64url"):
        check_compact(f"e30AA.{seg(PAYLOAD)}.{SIG}", max_length=MAX)
    with pytest.raises(MalformedJose, match="invalid base64url"):
        check_compact(f"{seg(HEADER)}.e30AA.{SIG}", max_length=MAX)


# -- header and payload JSON ------------------------------------------------------------------------


def test_duplicate_member_in_header_refused() -> None:
    tok = raw_token(b'{"alg":"RS256","kid":"k1","alg":"none"}')
    with pytest.raises(MalformedJose, match="duplicate"):
        check_compact(tok, max_length=MAX)


def test_duplicate_member_in_nested_header_object_refused() -> None:
    tok = raw_token(b'{"alg":"RS256","x":{"a":1,"a":2}}')
    with pytest.raises(MalformedJose, match="duplicate"):
        check_compact(tok, max_length=MAX)


def test_duplicate_member_in_payload_refused() -> None:
    tok = raw_token(b'{"alg":"RS256"}', b'{"sub":"alice","sub":"admin"}')
    with pytest.raises(MalformedJose, match="duplicate"):
        check_compact(tok, max_length=MAX)


def test_byte_order_mark_refused_by_the_shared_decoder() -> None:
    # json.loads refuses a BOM itself; the decoder reused across calls must refuse it too.
    with pytest.raises(MalformedJose):
        hygiene.loads_strict(b'\xef\xbb\xbf{"sub":"alice"}')


def test_escaped_duplicate_member_refused() -> None:
    # "\u0061lg" is "alg": a duplicate after JSON unescaping.
    tok = raw_token(b'{"alg":"RS256","\\u0061lg":"none"}')
    with pytest.raises(MalformedJose, match="duplicate"):
        check_compact(tok, max_length=MAX)


@pytest.mark.parametrize("header", [b"[]", b'["alg","RS256"]', b'"RS256"', b"1", b"null", b"true"])
def test_header_that_is_not_an_object_refused(header: bytes) -> None:
    with pytest.raises(MalformedJose, match="header is not a JSON object"):
        check_compact(raw_token(header), max_length=MAX)


@pytest.mark.parametrize("payload", [b"[]", b'[{"sub":"s"}]', b'"s"', b"1", b"null"])
def test_payload_that_is_not_an_object_refused(payload: bytes) -> None:
    with pytest.raises(MalformedJose, match="payload is not a JSON object"):
        check_compact(raw_token(b'{"alg":"RS256"}', payload), max_length=MAX)


@pytest.mark.parametrize(
    "header",
    [b"", b"{", b'{"alg":"RS256"', b"{'alg':'RS256'}", b'{"alg":"RS256"} x', b"\xff\xfe{}", b'{"a":"\xc3"}'],
)
def test_invalid_json_or_utf8_header_refused(header: bytes) -> None:
    with pytest.raises(MalformedJose):
        check_compact(raw_token(header), max_length=MAX)


def test_invalid_json_payload_refused() -> None:
    with pytest.raises(MalformedJose, match="not valid UTF-8 JSON"):
        check_compact(raw_token(b'{"alg":"RS256"}', b"not json"), max_length=MAX)


def test_deeply_nested_json_refused_not_crashing() -> None:
    """Regression: nested arrays used to escape as RecursionError instead of MalformedJose."""
    deep = b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}"
    with pytest.raises(MalformedJose):
        check_compact(raw_token(b'{"alg":"RS256"}', deep), max_length=100_000)
    with pytest.raises(MalformedJose):
        check_compact(raw_token(b"[" * 3000), max_length=MAX)
    with pytest.raises(MalformedJose):
        loads_strict(b"[" * 100_000)


# -- crit (B19 / J07) -------------------------------------------------------------------------------


@pytest.mark.parametrize("crit", [["exp"], ["b64"], ["http://example.com/x"], ["kid"]])
def test_b19_unknown_crit_refused(crit: list[str]) -> None:
    header = dict(HEADER, crit=crit, **{c: True for c in crit})
    with pytest.raises(MalformedJose, match="unsupported critical header"):
        check_compact(token(header=header), max_length=MAX)


@pytest.mark.parametrize("crit", [[], "exp", [1], [None], {"exp": True}, 0, False, ["exp", 2]])
def test_b19_malformed_crit_refused(crit: Any) -> None:
    with pytest.raises(MalformedJose, match="malformed crit"):
        check_compact(token(header=dict(HEADER, crit=crit)), max_length=MAX)


def test_b19_understood_crit_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hygiene, "UNDERSTOOD_CRIT", frozenset({"ext"}))
    header = dict(HEADER, crit=["ext"], ext=1)
    assert check_compact(token(header=header), max_length=MAX) == header
    with pytest.raises(MalformedJose, match="unsupported critical header"):
        check_compact(token(header=dict(HEADER, crit=["ext", "other"])), max_length=MAX)


def test_crit_null_is_treated_as_absent() -> None:
    header = dict(HEADER, crit=None)
    assert check_compact(token(header=header), max_length=MAX) == header


# -- helpers ----------------------------------------------------------------------------------------


def test_b64u_decode() -> None:
    assert b64u_decode("") == b""
    assert b64u_decode("YQ") == b"a"
    assert b64u_decode("YWI") == b"ab"
    assert b64u_decode("-_8") == b"\xfb\xff"
    with pytest.raises(MalformedJose):
        b64u_decode("A")
    with pytest.raises(MalformedJose):
        b64u_decode("\u00e9\u00e9")


def test_loads_strict() -> None:
    assert loads_strict(b'{"a":[1,{"b":2}]}') == {"a": [1, {"b": 2}]}
    with pytest.raises(MalformedJose, match="duplicate"):
        loads_strict(b'{"a":1,"a":1}')
    with pytest.raises(MalformedJose, match="not valid UTF-8 JSON"):
        loads_strict(b"\x80")
    with pytest.raises(UnacceptableNumber, match="out of range"):
        loads_strict(b'{"n":' + b"9" * 10_000 + b"}")


# -- properties -------------------------------------------------------------------------------------

_B64U_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)
_tokens = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=_B64U_ALPHABET + ".=", max_size=300),
    st.builds(
        lambda h, p, s: f"{b64u(h)}.{b64u(p)}.{s}",
        st.binary(max_size=120),
        st.binary(max_size=120),
        st.text(alphabet=_B64U_ALPHABET, max_size=20),
    ),
    st.builds(lambda h, p: f"{seg(h)}.{seg(p)}.{SIG}", _json_values, _json_values),
    st.builds(
        lambda extra, p: f"{seg(dict(HEADER, **extra))}.{seg(p)}.{SIG}",
        st.dictionaries(st.sampled_from(["crit", "alg", "kid", "typ", "x"]), _json_values, max_size=3),
        _json_values,
    ),
)


@settings(max_examples=400, deadline=None)
@given(tok=_tokens, max_length=st.integers(min_value=0, max_value=10_000), allow_padding=st.booleans())
def test_check_compact_only_raises_malformed_jose(tok: str, max_length: int, allow_padding: bool) -> None:
    try:
        header = check_compact(tok, max_length=max_length, allow_padding=allow_padding)
    except MalformedJose:
        return
    assert isinstance(header, dict)
    assert len(tok) <= max_length
    assert tok.count(".") == 2


@settings(max_examples=200)
@given(header=st.dictionaries(st.text(max_size=8), _json_values, max_size=5), payload=_json_values)
def test_check_compact_returns_the_header_object(header: dict[str, Any], payload: Any) -> None:
    header.pop("crit", None)
    if isinstance(payload, dict):  # registered claims have their own type rules (test_hostile_numbers)
        payload = {k: v for k, v in payload.items() if k not in {"exp", "nbf", "iat", "iss", "sub", "jti", "aud"}}
    tok = f"{seg(header)}.{seg(payload)}.{SIG}"
    if isinstance(payload, dict):
        assert check_compact(tok, max_length=100_000) == header
    else:
        with pytest.raises(MalformedJose, match="payload is not a JSON object"):
            check_compact(tok, max_length=100_000)


# -- base64url through pybase64 against the standard library's answer --------------------------------

_B64U_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_HOSTILE = "+/=*.\x00\t\n\r \x7f\x80\xe9\xff\u2028\uff21\U0001f600"  # other alphabets, padding, controls, non-ASCII


def _decoded(decode: Any, segment: str) -> bytes | None:
    try:
        return bytes(decode(segment))
    except MalformedJose:
        return None


def _binascii_decode(segment: str) -> bytes:
    """`b64u_decode` as it is without pybase64: the length and spare-bit checks, then binascii."""
    spare = hygiene._SPARE_BITS.get(len(segment) % 4)
    if spare is None or (spare and hygiene._ALPHABET.find(segment[-1]) & spare):
        raise MalformedJose("invalid base64url")
    return hygiene._b64u_decode_binascii(segment)


_segments = st.one_of(
    st.text(alphabet=_B64U_ALPHABET, max_size=40),
    st.builds(lambda s, i, c: s[:i] + c + s[i + 1:], st.text(alphabet=_B64U_ALPHABET, min_size=1, max_size=40),
              st.integers(0, 40), st.sampled_from(_HOSTILE)),
    st.text(alphabet=_B64U_ALPHABET + _HOSTILE, max_size=12),
    st.text(max_size=12),
)


@settings(max_examples=3000, deadline=None)
@given(segment=_segments)
def test_b64u_decode_gives_the_standard_librarys_answer_on_every_segment(segment: str) -> None:
    assert _decoded(b64u_decode, segment) == _decoded(_binascii_decode, segment)


@pytest.mark.parametrize("segment", ["QU+J", "QU/J", "QU=J", "QUI=", "QQ==", "+/+/", "QUJ\x00", "QU\u00e9J"])
def test_b64u_decode_refuses_what_pybase64_alone_would_take(segment: str) -> None:
    with pytest.raises(MalformedJose, match="base64url"):
        b64u_decode(segment)


@settings(max_examples=500, deadline=None)
@given(tok=st.text(alphabet=_B64U_ALPHABET + ".=+/ \n\x00\u00e9\uff21\U0001f600", max_size=60))
def test_b64u_compact_check_agrees_with_a_regex_per_segment(tok: str) -> None:
    """`is_b64u_compact` replaced `[A-Za-z0-9_-]*` matched against each of the three segments."""
    parts = tok.split(".")
    by_regex = len(parts) == 3 and all(re.fullmatch(r"[A-Za-z0-9_-]*", p) for p in parts)
    assert hygiene.is_b64u_compact(tok) == by_regex
