"""After a renewal the previous key keeps signing for the grace period (replica caches), then the new one."""

from __future__ import annotations

import time

from keyless.agent.credential import HostCredential, Material
from keyless.agent.state import HostInfo
from keyless.crypto.client_keys import generate_client_key, self_signed_certificate
from keyless.jose.hygiene import split_compact


def _material() -> Material:
    key = generate_client_key("p256")
    return Material.of(key, self_signed_certificate(key, "host:test", now=time.time(), days=7))


def _x5t(assertion: str) -> str:
    return str(split_compact(assertion, max_length=16384, allow_padding=True)[0]["x5t#S256"])


HOST = HostInfo(server="https://127.0.0.1:1", tenant_id="t", host_id="h", host_name="n", system_client_id="c",
                issuer="https://127.0.0.1:1/t/v2.0", token_endpoint="https://127.0.0.1:1/t/oauth2/v2.0/token")


def test_grace_then_switch() -> None:
    old, new = _material(), _material()
    cred = HostCredential(HOST, old, grace=60)
    cred._previous, cred._previous_until, cred.material = old, time.monotonic() + 60, new
    first = cred.assertion("c")
    cred._previous_until = time.monotonic() - 1
    second = cred.assertion("c")
    assert _x5t(first) != _x5t(second)
    assert cred.signing() is new


def test_renew_at_half_life() -> None:
    m = _material()
    assert m.renew_at == m.not_before + (m.not_after - m.not_before) / 2
