"""Catalog O01-O04: webhooks are no SSRF proxy, no hostage of a slow receiver, and no leak.

O01: an endpoint on loopback, link-local (the cloud metadata address), RFC 1918, CGNAT, `0.0.0.0`,
IPv6 loopback, ULA, link-local or IPv4-mapped, or a name that resolves to one, is refused at
registration on a server with no allow-list, and again at delivery (the sender checks every time and
connects only to the checked address, every address of a name must be public, and an allow-list opens
exactly what it names); a redirect is never followed. O02: connect and read time and the answer's size
are bounded, also for a receiver that never answers (per-endpoint bounds so a slow receiver starves no
other: tests/integration/server/test_webhooks.py). O03/O04: the payload is signed over id and timestamp and carries no
secret (tests/integration/server/test_webhooks.py verifies it with the standardwebhooks library).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from keyless.crypto import webhooks as signing
from keyless.server.addresses import AddressGuard, AddressRefused, IpAddress
from keyless.server.webhook_sender import WebhookSender
from tests.support.server import Admin, RunningServer
from tests.support.webhooks import Receiver, receiver

INTERNAL_URLS = [
    "https://127.0.0.1/hook", "https://127.1/hook", "https://2130706433/hook", "https://localhost/hook",
    "https://169.254.169.254/latest/meta-data/", "https://10.0.0.5/hook", "https://172.16.3.4/hook",
    "https://192.168.1.10/hook", "https://100.64.0.1/hook", "https://0.0.0.0/hook", "https://[::1]/hook",
    "https://[fd00::1]/hook", "https://[fe80::1]/hook", "https://[::ffff:127.0.0.1]/hook",
    "https://[::ffff:169.254.169.254]/hook", "https://224.0.0.1/hook",
]


@pytest.fixture(scope="module")
def hooks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    with receiver(tmp_path_factory.mktemp("o-receiver")) as r:
        yield r


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_webhook_ssrf_to_internal_addresses_is_refused_at_registration(server: RunningServer, url: str) -> None:
    with Admin(server) as admin:
        before = admin.api.call("GET", "/webhooks")
        resp = admin.api._send("POST", f"{server.url}/{server.tenant_id}/manage/v1/webhooks", json={"url": url},
                               params={}, headers={"Authorization": f"Bearer {admin.api.token()}"})
        assert resp.status_code == 400, resp.text
        assert resp.json()["code"] == "webhook_url_refused"
        assert admin.api.call("GET", "/webhooks") == before  # nothing stored


@pytest.mark.parametrize("url", ["http://example.com/hook", "ftp://example.com/", "https://user@example.com/",
                                 "https:///nohost", "https://example.com/#frag"])
def test_webhook_to_a_non_https_or_odd_url_is_refused(server: RunningServer, url: str) -> None:
    with Admin(server) as admin:
        resp = admin.api._send("POST", f"{server.url}/{server.tenant_id}/manage/v1/webhooks", json={"url": url},
                               params={}, headers={"Authorization": f"Bearer {admin.api.token()}"})
        assert resp.status_code == 400 and resp.json()["code"] in ("invalid_webhook_url", "webhook_url_refused")


async def test_webhook_ssrf_is_refused_again_at_delivery_without_connecting(hooks: Receiver) -> None:
    """A URL that was acceptable at registration but now names an internal address (DNS changed)
    is refused by the sender itself; the receiver sees no connection at all."""
    sender = WebhookSender(ca_bundle=hooks.ca_path)  # no allow-list: production default
    try:
        sent = await sender.send(hooks.url, b"k" * 32, "msg_1", int(time.time()), b"{}")
    finally:
        await sender.aclose()
    assert (sent.ok, sent.error) == (False, "private_address")
    assert hooks.received == []


async def test_webhook_redirect_to_an_internal_address_is_not_followed(hooks: Receiver, tmp_path: Path) -> None:
    with receiver(tmp_path / "target") as target:
        hooks.redirect_to = target.url
        sender = WebhookSender(allow_private=["127.0.0.1"], ca_bundle=hooks.ca_path)
        try:
            sent = await sender.send(hooks.url, b"k" * 32, "msg_2", int(time.time()), b"{}")
        finally:
            await sender.aclose()
            hooks.redirect_to = None
        assert (sent.ok, sent.status, sent.error) == (False, 302, "redirect_refused")
        assert target.received == []


async def test_slow_webhook_receiver_costs_one_bounded_attempt(hooks: Receiver) -> None:
    hooks.delay = 3.0
    sender = WebhookSender(allow_private=["127.0.0.1"], ca_bundle=hooks.ca_path, total_timeout=1.0)
    started = time.monotonic()
    try:
        sent = await sender.send(hooks.url, b"k" * 32, "msg_3", int(time.time()), b"{}")
    finally:
        await sender.aclose()
        hooks.delay = 0.0
    assert (sent.ok, sent.error) == (False, "timeout")
    assert time.monotonic() - started < 2.0


async def test_flooding_webhook_receiver_is_read_only_up_to_the_cap(hooks: Receiver) -> None:
    hooks.status, hooks.body = 200, b"x" * (8 * 1024 * 1024)
    sender = WebhookSender(allow_private=["127.0.0.1"], ca_bundle=hooks.ca_path, max_response_bytes=64 * 1024)
    try:
        sent = await sender.send(hooks.url, b"k" * 32, "msg_4", int(time.time()), b"{}")
    finally:
        await sender.aclose()
        hooks.status, hooks.body = 204, b""
    assert (sent.ok, sent.status) == (True, 200)  # judged by its status; the flood is not read


async def test_webhook_delivery_is_signed_over_id_and_timestamp(hooks: Receiver) -> None:
    """O03/O04: what reaches the receiver carries the three Standard Webhooks headers, and the
    signature covers id, timestamp and body."""
    key, now, body = b"k" * 32, int(time.time()), b'{"type":"webhook.ping"}'
    sender = WebhookSender(allow_private=["127.0.0.1"], ca_bundle=hooks.ca_path)
    count = len(hooks.received)
    try:
        assert (await sender.send(hooks.url, key, "msg_5", now, body)).ok
    finally:
        await sender.aclose()
    got = hooks.received[count]
    assert got.body == body and got.headers["webhook-id"] == "msg_5"
    assert got.headers["webhook-timestamp"] == str(now)
    assert got.headers["webhook-signature"] == signing.signature(key, "msg_5", now, body)


class _Dns(AddressGuard):
    """The guard with a fixed answer for one name: this machine has no DNS server to hold a name with
    both a public and a private record (the check that follows resolution is the real one)."""

    def __init__(self, records: list[str], allow_private: tuple[str, ...] = ()) -> None:
        super().__init__(allow_private)
        self._records = [ipaddress.ip_address(r) for r in records]

    async def resolve(self, host: str, port: int) -> list[IpAddress]:
        return list(self._records)


async def test_webhook_name_with_one_private_record_among_public_ones_is_refused() -> None:
    """O01: every address a name resolves to must be public, so a rebinding attacker gains nothing by
    mixing records; a public-only name passes and is pinned to its first checked address."""
    for records in (["93.184.215.14", "10.0.0.5"], ["2606:4700::1", "::ffff:169.254.169.254"]):
        with pytest.raises(AddressRefused) as refused:
            await _Dns(records).pin("https://hooks.example.com/hook")
        assert refused.value.reason == "private_address"
    pinned = await _Dns(["93.184.215.14"]).pin("https://hooks.example.com:8443/k?x=1")
    assert (pinned.url, pinned.host_header, pinned.sni) == ("https://93.184.215.14:8443/k?x=1",
                                                            "hooks.example.com:8443", "hooks.example.com")


async def test_webhook_allow_list_exempts_exactly_what_it_names() -> None:
    """O01: an operator's allow-list entry opens that name or network, not the metadata address nor
    another private network."""
    by_name = ("hooks.internal",)
    assert await _Dns(["10.20.0.7"], by_name).refusal("https://hooks.internal/h") is None
    assert await _Dns(["10.20.0.7"], by_name).refusal("https://other.internal/h") == "private_address"
    by_network = ("10.20.0.0/16",)
    assert await _Dns(["10.20.9.9"], by_network).refusal("https://a.internal/h") is None
    for outside in ("10.21.0.1", "169.254.169.254", "127.0.0.1", "::ffff:10.21.0.1"):
        assert await _Dns([outside], by_network).refusal("https://a.internal/h") == "private_address", outside


async def test_webhook_to_a_name_connects_to_the_checked_address_and_verifies_the_name(hooks: Receiver) -> None:
    """O01: the request goes to the address the guard checked (no second lookup to rebind), with the
    name kept in Host and SNI, so the receiver's certificate is still verified against the name."""
    url = hooks.url.replace("127.0.0.1", "localhost")
    sender = WebhookSender(allow_private=["localhost"], ca_bundle=hooks.ca_path)
    count = len(hooks.received)
    try:
        sent = await sender.send(url, b"k" * 32, "msg_6", int(time.time()), b"{}")
    finally:
        await sender.aclose()
    assert sent.ok, sent
    assert hooks.received[count].headers["host"] == f"localhost:{hooks.port}"


async def test_webhook_receiver_that_never_answers_costs_one_bounded_attempt() -> None:
    """O02: a receiver that takes the connection and never says a word (not even the TLS handshake)
    is a timeout within the sender's bound, not a stuck worker."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    sender = WebhookSender(allow_private=["127.0.0.1"], connect_timeout=0.5, total_timeout=1.0)
    started = time.monotonic()
    try:
        sent = await sender.send(f"https://127.0.0.1:{silent.getsockname()[1]}/hook", b"k" * 32, "msg_7",
                                 int(time.time()), b"{}")
    finally:
        await sender.aclose()
        silent.close()
    assert (sent.ok, sent.error) == (False, "timeout")
    assert time.monotonic() - started < 2.0
