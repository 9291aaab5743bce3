"""Sending one webhook delivery (catalog O01, O02; docs/notifications.md).

The URL is checked again at every delivery, not only at registration (a name can start resolving to
an internal address later), and the request goes to the checked address (`keyless.server.addresses`).
No redirects (a 30x is a failure), no proxy from the environment, no kept-alive connections (the pool
would be keyed by address, not name), connect within 5 s, the whole exchange within 10 s, and at most
64 KiB of the answer read: a slow, silent or flooding receiver costs one bounded attempt and then
waits its turn in the backoff schedule, never blocking the other deliveries.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from keyless.crypto import webhooks as signing
from keyless.server.addresses import AddressGuard, AddressRefused

CONNECT_TIMEOUT = 5.0
TOTAL_TIMEOUT = 10.0
MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "Keyless-Webhooks/1"


@dataclass(frozen=True)
class SendResult:
    ok: bool
    status: int | None
    error: str | None  # stable code: private_address, timeout, tls_failed, redirect_refused, http_NNN, …
    duration_ms: int


class WebhookSender:
    def __init__(self, *, allow_private: Sequence[str] = (), ca_bundle: Path | None = None,
                 connect_timeout: float = CONNECT_TIMEOUT, total_timeout: float = TOTAL_TIMEOUT,
                 max_response_bytes: int = MAX_RESPONSE_BYTES) -> None:
        tls = ssl.create_default_context()
        if ca_bundle is not None:
            tls.load_verify_locations(cafile=str(ca_bundle))
        self.guard = AddressGuard(allow_private)
        self._client = httpx.AsyncClient(
            verify=tls, follow_redirects=False, trust_env=False,
            timeout=httpx.Timeout(total_timeout, connect=connect_timeout),
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        self._total = total_timeout
        self._max = max_response_bytes

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, url: str, key: bytes, msg_id: str, timestamp: int, body: bytes) -> SendResult:
        """POST `body` signed for `msg_id` and `timestamp`; 2xx is delivered, anything else a failure."""
        started = time.monotonic()

        def result(ok: bool, status: int | None, error: str | None) -> SendResult:
            return SendResult(ok, status, error, int((time.monotonic() - started) * 1000))

        try:
            pinned = await self.guard.pin(url)
        except AddressRefused as refused:
            return result(False, None, refused.reason)
        headers = {"Host": pinned.host_header, "Content-Type": "application/json", "User-Agent": USER_AGENT,
                   **signing.headers(key, msg_id, timestamp, body)}
        try:
            async with asyncio.timeout(self._total):
                async with self._client.stream("POST", pinned.url, content=body, headers=headers,
                                               extensions={"sni_hostname": pinned.sni}) as resp:
                    read = 0
                    async for chunk in resp.aiter_bytes():
                        read += len(chunk)
                        if read > self._max:
                            break  # the answer is not ours to store: stop reading, judge by the status
                    status = resp.status_code
        except TimeoutError:
            return result(False, None, "timeout")
        except httpx.TimeoutException:
            return result(False, None, "timeout")
        except httpx.HTTPError as exc:
            tls = isinstance(exc, httpx.ConnectError) and "CERTIFICATE" in str(exc)
            return result(False, None, "tls_failed" if tls else "connect_failed")
        if 200 <= status < 300:
            return result(True, status, None)
        if 300 <= status < 400:
            return result(False, status, "redirect_refused")
        return result(False, status, f"http_{status}")
