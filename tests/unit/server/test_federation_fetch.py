"""The issuer fetcher's address rules (E05): every spelling of a private or loopback address is refused
before any connection, unless the test setting names it."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from keyless.crypto.ca import IssuedCert
from keyless.oauth.federation.issuers import FetchFailed
from keyless.server.addresses import AddressGuard
from keyless.server.federation_fetch import HttpMetadataFetcher, is_public
from tests.support.issuer import ExternalIssuer, running_issuer


@pytest.mark.parametrize("address", ["127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.5.4", "192.168.1.1",
                                     "169.254.169.254", "100.64.0.1", "0.0.0.0", "::1", "::", "fe80::1",
                                     "fc00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "224.0.0.1", "255.255.255.255"])
def test_private_addresses(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "::ffff:8.8.8.8"])
def test_public_addresses(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/", "https://2130706433/", "https://0x7f000001/", "https://localhost/", "https://[::1]/",
    "https://[::ffff:7f00:1]/", "https://169.254.169.254/latest/meta-data", "https://10.1.2.3/",
])
async def test_refused_before_connecting(url: str) -> None:
    fetcher = HttpMetadataFetcher()
    try:
        with pytest.raises(FetchFailed) as info:
            await fetcher.fetch_json(url)
    finally:
        await fetcher.aclose()
    assert info.value.reason in {"private_address", "dns_failed"}


@pytest.mark.parametrize("url", ["http://issuer.example.test/", "https://user@issuer.example.test/", "ftp://x/",
                                 "https:///nohost", "https://issuer.example.test:99999/"])
async def test_bad_urls(url: str) -> None:
    fetcher = HttpMetadataFetcher()
    try:
        with pytest.raises(FetchFailed) as info:
            await fetcher.fetch_json(url)
    finally:
        await fetcher.aclose()
    assert info.value.reason == "bad_url"


def test_the_exemption_names_hosts_or_networks() -> None:
    guard = AddressGuard(["127.0.0.0/8", "issuer.internal"])  # what HttpMetadataFetcher(allow_private=…) uses
    assert guard.allowed("anything", ipaddress.ip_address("127.0.0.5"))
    assert guard.allowed("issuer.internal", ipaddress.ip_address("10.0.0.1"))
    assert not guard.allowed("other.internal", ipaddress.ip_address("10.0.0.1"))
    assert not guard.allowed("x", ipaddress.ip_address("::1"))


async def test_the_connection_goes_to_the_checked_address_and_the_certificate_is_checked_against_the_name(
    issuer: ExternalIssuer, issuer_ca: tuple[IssuedCert, Path]
) -> None:
    """`localhost` is resolved and checked here, the connection goes to that address, and TLS still
    verifies the issuer's certificate for the name `localhost` (SNI and Host carry it)."""
    url = f"https://localhost:{issuer.port}{issuer.path}/.well-known/openid-configuration"
    trusting = HttpMetadataFetcher(ca_bundle=issuer_ca[1], allow_private=["localhost"])
    untrusting = HttpMetadataFetcher(allow_private=["localhost"])
    try:
        doc = await trusting.fetch_json(url)
        with pytest.raises(FetchFailed) as info:
            await untrusting.fetch_json(url)
    finally:
        await trusting.aclose()
        await untrusting.aclose()
    assert doc["issuer"] == issuer.issuer
    assert info.value.reason == "tls_failed"


async def test_no_connection_is_reused_across_names(tmp_path: Path, issuer_ca: tuple[IssuedCert, Path]) -> None:
    """Two names at one address: each fetch makes its own TLS connection, verified for its own name. The
    issuer's certificate names only `localhost`, so a fetch by its address must fail even right after a
    fetch by name succeeded (a reused connection would skip that check)."""
    with running_issuer(tmp_path, issuer_ca[0], tls_ips=()) as named_only:
        fetcher = HttpMetadataFetcher(ca_bundle=issuer_ca[1], allow_private=["127.0.0.1", "localhost"])
        discovery = f"{named_only.path}/.well-known/openid-configuration"
        try:
            await fetcher.fetch_json(f"https://localhost:{named_only.port}{discovery}")
            with pytest.raises(FetchFailed) as info:
                await fetcher.fetch_json(f"https://127.0.0.1:{named_only.port}{discovery}")
        finally:
            await fetcher.aclose()
    assert info.value.reason == "tls_failed"
