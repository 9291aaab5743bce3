"""The client's address as the server sees it (keyless.server.client_address, docs/policies.md
"Trusted proxies"): forwarding headers count only from a configured proxy, read from the right."""

from __future__ import annotations

import pytest

from keyless.server.client_address import client_address, parse_networks
from keyless.server.settings import ServerSettings

PROXIES = parse_networks(["127.0.0.1", "10.0.0.0/8", "fd00::/8"])


def _addr(peer: str | None, xff: str | None = None, fwd: str | None = None, proxies: object = PROXIES) -> str | None:
    return client_address(peer, forwarded=[fwd] if fwd else [], x_forwarded_for=[xff] if xff else [],
                          trusted_proxies=proxies)  # type: ignore[arg-type]


def test_headers_are_ignored_by_default() -> None:
    assert _addr("127.0.0.1", xff="192.0.2.1", fwd="for=192.0.2.1", proxies=()) == "127.0.0.1"


def test_headers_from_an_untrusted_peer_are_ignored() -> None:
    assert _addr("198.51.100.7", xff="10.20.0.1") == "198.51.100.7"


@pytest.mark.parametrize(("xff", "client"), [
    ("192.0.2.1", "192.0.2.1"),
    ("192.0.2.1, 10.1.1.1", "192.0.2.1"),  # a second trusted proxy is skipped
    ("10.20.1.1, 192.0.2.9", "192.0.2.9"),  # a client's own forged entry stays to the left, unread
    ("10.1.1.1, 10.2.2.2", "127.0.0.1"),  # only proxies: the peer
    ("garbage, 192.0.2.1", "192.0.2.1"),
    ("192.0.2.1, garbage", "127.0.0.1"),  # the nearest entry unreadable: believe nothing
    ("192.0.2.1:8080", "192.0.2.1"),
    ("::ffff:192.0.2.4", "192.0.2.4"),
])
def test_x_forwarded_for_is_read_from_the_right(xff: str, client: str) -> None:
    assert _addr("127.0.0.1", xff=xff) == client


@pytest.mark.parametrize(("fwd", "client"), [
    ("for=192.0.2.60;proto=https", "192.0.2.60"),
    ('for="[2001:db8::17]:4711"', "2001:db8::17"),
    ("for=192.0.2.43, for=10.9.9.9", "192.0.2.43"),
    ("for=unknown", "127.0.0.1"),
    ('for="_hidden"', "127.0.0.1"),
])
def test_forwarded_rfc_7239(fwd: str, client: str) -> None:
    assert _addr("127.0.0.1", fwd=fwd) == client


def test_forwarded_wins_over_x_forwarded_for_and_ipv6_proxies_count() -> None:
    assert _addr("fd00::1", xff="192.0.2.1", fwd="for=192.0.2.2") == "192.0.2.2"


def test_settings_refuse_a_bad_proxy_entry() -> None:
    assert ServerSettings(trusted_proxies=["10.0.0.0/8", "::1"]).proxy_networks()[1].prefixlen == 128
    with pytest.raises(ValueError, match="not an address or network"):
        ServerSettings(trusted_proxies=["proxy.example"])
