"""`loads_strict` parses with orjson and proves the strict rules by re-serialising (issue 18 item 4,
keyless.jose.hygiene): the same value or the same refusal as the strict parser on every input, and
what orjson itself does with hostile JSON pinned, since the proof rests on it."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyless.jose import hygiene
from keyless.jose.hygiene import MalformedJose, UnacceptableNumber, b64u_decode, loads_strict
from tests.support.hostile import json_number_texts

# -- what orjson does on its own -------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    b'{"n":NaN}', b'{"n":Infinity}', b'{"n":-Infinity}', b'{"n":1e400}', b'{"n":-1e400}',
    b'\xef\xbb\xbf{"n":1}',  # byte-order mark
    b'{"s":"\\ud800"}', b'{"s":"\\udc00x"}',  # lone surrogates, escaped
    b'{"s":"\xed\xa0\x80"}', b'{"s":"\xff"}',  # a surrogate encoded in UTF-8, invalid UTF-8
    b'{"n":1}\x0c', b'{"n"\x0c:1}', b'{"n":01}', b'{"n":1,}',
])
def test_orjson_refuses_what_no_strict_parser_reads_the_same_way(text: bytes) -> None:
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(text)


def test_orjson_keeps_the_last_duplicate_and_reads_integers_beyond_64_bits_as_floats() -> None:
    """Why orjson's answer alone is not enough: a duplicate member is dropped silently, and an
    integer beyond 64 bits becomes an inexact float. The re-serialisation catches both."""
    assert orjson.loads(b'{"a":1,"a":2}') == {"a": 2}
    assert orjson.loads(b'{"a":{"b":[{"c":1,"c":2}]}}') == {"a": {"b": [{"c": 2}]}}
    assert type(orjson.loads(b"18446744073709551615")) is int  # 2**64 - 1: still exact
    assert type(orjson.loads(b"18446744073709551616")) is float  # 2**64
    assert type(orjson.loads(b"-9223372036854775809")) is float  # -(2**63) - 1
    assert orjson.dumps(orjson.loads(b'{"a":1,"a":2}')) != b'{"a":1,"a":2}'
    assert orjson.dumps(orjson.loads(b"18446744073709551616")) != b"18446744073709551616"


@settings(max_examples=300)
@given(value=st.floats(allow_nan=False, allow_infinity=False))
def test_orjson_prints_every_float_so_that_it_reads_back_as_that_float(value: float) -> None:
    """The proof's other half: a float is never printed as an integer literal, and what is printed
    reads back, with Python's own parser, as the very same float."""
    text = orjson.dumps(value)
    assert b"." in text or b"e" in text
    assert json.loads(text) == value and type(json.loads(text)) is float


# -- the strict rules, through the fast path ---------------------------------------------------------


@pytest.mark.parametrize("text", [
    b'{"a":1,"a":1}',  # depth 1, same value: orjson's result re-serialises shorter
    b'{"a":1,"b":2,"a":3}',
    b'{"a":1,"\\u0061":1}',  # the same name, escaped
    b'{"x":{"y":{"a":1,"a":1}}}',  # depth 3
    b'{"x":[{"y":[{"a":true,"a":true}]}]}',  # depth 3 inside arrays
    b'[{"a":null,"a":null}]',
])
def test_duplicate_members_are_refused_at_any_depth(text: bytes) -> None:
    with pytest.raises(MalformedJose, match="duplicate member in JOSE JSON"):
        loads_strict(text)


@pytest.mark.parametrize("text", [b'{"n":NaN}', b'{"n":[Infinity]}', b'{"n":{"m":-Infinity}}'])
def test_nan_and_infinity_are_refused(text: bytes) -> None:
    with pytest.raises(UnacceptableNumber, match="not finite"):
        loads_strict(text)


@pytest.mark.parametrize("number", [2**64, 2**64 - 1, -(2**63) - 1, 10**30, -(10**300), 2**1000])
def test_integers_beyond_64_bits_stay_exact_integers(number: int) -> None:
    for text in (b'{"n":%d}' % number, b'{"x":{"y":[%d]}}' % number):
        value = loads_strict(text)
        found = value["n"] if "n" in value else value["x"]["y"][0]
        assert type(found) is int and found == number


def test_integers_a_double_cannot_hold_are_refused() -> None:
    with pytest.raises(UnacceptableNumber, match="out of range"):
        loads_strict(b'{"n":%d}' % 10**309)


def test_byte_order_mark_and_invalid_utf8_are_refused() -> None:
    for text in (b'\xef\xbb\xbf{"n":1}', b'{"s":"\xff"}', b'{"s":"\xed\xa0\x80"}'):
        with pytest.raises(MalformedJose, match="not valid UTF-8 JSON"):
            loads_strict(text)


def test_lone_surrogate_escapes_get_the_strict_parsers_verdict() -> None:
    """orjson refuses them; the strict parser has always read them as text: that verdict stands."""
    assert loads_strict(b'{"s":"\\ud800"}') == {"s": "\ud800"}


def test_a_document_as_orjson_writes_it_never_reaches_the_strict_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_expected(data: bytes) -> Any:
        raise AssertionError("strict parser used")

    claims = {"aud": "api://orders", "exp": 1_800_000_000, "roles": ["Orders.Read"], "n": 2**64 - 1,
              "f": 0.5, "nested": {"a": [1, {"b": None}]}, "s": "caf\u00e9 \"quoted\" \n"}
    text = orjson.dumps(claims)
    strict = loads_strict(text)
    monkeypatch.setattr(hygiene, "_loads_exact", not_expected)
    assert loads_strict(text) == strict == claims


# -- the same answer as the strict parser, everywhere ------------------------------------------------

_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=25,
)


def _dumps(value: Any) -> bytes:
    """As orjson writes it; orjson cannot write an integer beyond 64 bits, so then as json writes it
    compactly (the same text as orjson's for everything but floats and non-ASCII)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _verdict(parse: Any, data: bytes) -> tuple[str, str]:
    """A comparable outcome: the refusal's class and message, or the value with every type spelled
    out (1 and 1.0 and True are equal in Python, not here)."""
    try:
        value = parse(data)
    except MalformedJose as exc:
        return type(exc).__name__, str(exc)
    return "value", _typed(value)


def _typed(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ",".join(f"{k!r}:{_typed(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_typed(v) for v in value) + "]"
    return f"{type(value).__name__}:{value!r}"


@st.composite
def _duplicated(draw: st.DrawFn) -> bytes:
    """An object, as orjson writes it, with one of its members repeated, nested 0 to 3 levels deep."""
    obj = draw(st.dictionaries(st.text(max_size=4), _values, min_size=1, max_size=4))
    name, value = draw(st.sampled_from(list(obj.items())))
    text = _dumps(obj)[:-1] + b"," + _dumps(name) + b":" + _dumps(value) + b"}"
    for wrap in draw(st.lists(st.sampled_from(["object", "array"]), max_size=3)):
        text = b'{"x":' + text + b"}" if wrap == "object" else b"[" + text + b"]"
    return text


_documents = st.one_of(
    _values.map(_dumps),
    _values.map(lambda v: json.dumps(v).encode()),
    _values.map(lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode()),
    _duplicated(),
    json_number_texts.map(lambda n: b'{"exp":%s,"a":[%s]}' % (n.encode(), n.encode())),
    st.binary(max_size=60),
    st.text(alphabet='{}[]":,0123456789.eE-+ntrufalsNIiy\\u', max_size=40).map(str.encode),
)


@settings(max_examples=1500, deadline=None)
@given(data=_documents)
def test_loads_strict_gives_the_strict_parsers_answer_on_every_input(data: bytes) -> None:
    assert _verdict(loads_strict, data) == _verdict(hygiene._loads_exact, data)


# -- base64url ------------------------------------------------------------------------------------


@pytest.mark.parametrize("segment", ["YW+i", "YW/i", "YW=i", "Y Wi", "YW\ni", "YW\ti", "YW\u00e9i", "YW.i", "YWJj=="])
def test_b64u_decode_refuses_every_character_outside_the_url_safe_alphabet(segment: str) -> None:
    with pytest.raises(MalformedJose, match="base64url"):
        b64u_decode(segment)
