"""`TokenHead`: the one pass over a token POST's headers answers what the old pass-per-question
reading did (first value, repeats flagged, the declared body cap, forwarding headers kept in order);
and the listener's cached response head is what encoding it afresh gives, renewed with the Date."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from keyless.oauth.request import MAX_BODY
from keyless.oauth.service import NO_STORE
from keyless.server.routes.token import TokenHead, header_pairs
from keyless.server.token_protocol import _encode, _head


def test_first_values_and_repeats() -> None:
    head = TokenHead([(b"host", b"x"), (b"authorization", b"Basic a"), (b"content-type", b"application/json"),
                      (b"x-forwarded-for", b"10.0.0.1"), (b"forwarded", b"for=1.2.3.4"),
                      (b"x-forwarded-for", b"10.0.0.2"), (b"content-length", b"12")])
    assert (head.authorization, head.content_type, head.repeated, head.too_large) == \
        ("Basic a", "application/json", False, False)
    assert head.x_forwarded_for == ["10.0.0.1", "10.0.0.2"] and head.forwarded == ["for=1.2.3.4"]


@pytest.mark.parametrize("name", [b"authorization", b"content-type"])
def test_a_repeated_authorization_or_content_type_is_flagged_and_the_first_kept(name: bytes) -> None:
    head = TokenHead([(name, b"first"), (b"host", b"x"), (name, b"second")])
    assert head.repeated and getattr(head, name.decode().replace("-", "_")) == "first"


@pytest.mark.parametrize(("length", "too_large"), [
    (b"0", False), (str(MAX_BODY).encode(), False), (str(MAX_BODY + 1).encode(), True),
    (b"-1", True), (b"1e3", True), (b" 5", True), (b"", True), (b"\xd9\xa3", True)])
def test_a_content_length_over_the_cap_or_not_a_number_is_too_large(length: bytes, too_large: bool) -> None:
    assert TokenHead([(b"content-length", length)]).too_large is too_large


def test_no_headers() -> None:
    head = TokenHead([])
    assert (head.authorization, head.content_type, head.repeated, head.too_large) == (None, None, False, False)


def test_the_cached_head_is_the_fresh_encoding_and_follows_the_date() -> None:
    monday = [(b"date", b"Mon, 01 Dec 2026 00:00:00 GMT")]
    tuesday = [(b"date", b"Tue, 02 Dec 2026 00:00:00 GMT")]
    first = _head(200, NO_STORE, monday)
    assert first == _encode(200, monday, header_pairs(NO_STORE))
    assert first.startswith(b"HTTP/1.1 200 OK\r\ndate: Mon") and b"cache-control: no-store\r\n" in first
    assert _head(200, NO_STORE, monday) is first  # encoded once per status and Date
    assert _head(200, NO_STORE, tuesday) == _encode(200, tuesday, header_pairs(NO_STORE))
    assert _head(401, NO_STORE, tuesday).startswith(b"HTTP/1.1 401 Unauthorized\r\n")


def test_other_headers_are_encoded_each_time() -> None:
    headers = MappingProxyType({"Cache-Control": "no-store", "WWW-Authenticate": 'Basic realm="keyless"'})
    head = _head(401, headers, [])
    assert head == (b"HTTP/1.1 401 Unauthorized\r\ncache-control: no-store\r\n"
                    b'www-authenticate: Basic realm="keyless"\r\n')
