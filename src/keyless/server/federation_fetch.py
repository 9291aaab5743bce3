"""`MetadataFetcher` over httpx: how the server fetches an external issuer's discovery document and
JWKS without becoming an SSRF proxy (catalog E05, E06).

- https only, certificate verified (system roots, plus `federation_ca_bundle` when set), no redirects
  (a 30x is a failure, so a redirect to an internal address is never followed), no proxy from the
  environment, at most 64 KiB read, 10 s for the whole exchange.
- The host name is resolved here and every address it resolves to must be public; the connection
  then goes to that checked address (the URL's host stays in `Host` and SNI, so the certificate is
  still verified against the name): DNS rebinding between check and connect has nothing to rebind.
  Decimal and other odd spellings of loopback resolve to loopback and are refused the same way.
- `allow_private_issuers` (the test setting `--allow-private-issuer`) names host names or networks
  that are exempt from the public-address rule, and nothing else.

This lives in the server because `keyless.oauth` knows no HTTP client; `keyless.verify` has its own
fetcher for resource servers, which trusts the one issuer it was configured with and so has no need
for the address rules.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from keyless.oauth.federation.issuers import FETCH_TIMEOUT, MAX_DOCUMENT_BYTES, FetchFailed
from keyless.server.addresses import AddressGuard, AddressRefused, is_public

__all__ = ["HttpMetadataFetcher", "is_public"]


class HttpMetadataFetcher:
    def __init__(
        self,
        *,
        ca_bundle: Path | None = None,
        allow_private: Sequence[str] = (),
        timeout: float = FETCH_TIMEOUT,
        max_bytes: int = MAX_DOCUMENT_BYTES,
    ) -> None:
        tls = ssl.create_default_context()
        if ca_bundle is not None:
            tls.load_verify_locations(cafile=str(ca_bundle))
        # No kept-alive connections: the pool is keyed by the checked IP address, so a connection whose
        # certificate was verified for one issuer's name could otherwise carry a request for another
        # name served at the same address. Fetches are rare (once per issuer per refresh).
        self._client = httpx.AsyncClient(verify=tls, follow_redirects=False, trust_env=False,
                                         timeout=httpx.Timeout(timeout),
                                         limits=httpx.Limits(max_keepalive_connections=0))
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._guard = AddressGuard(allow_private)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch_json(self, url: str) -> dict[str, Any]:
        try:
            pinned = await self._guard.pin(url)
        except AddressRefused as refused:
            raise FetchFailed(refused.reason) from None  # every answer must pass: no lottery between records
        headers = {"Host": pinned.host_header, "Accept": "application/json"}
        try:
            async with asyncio.timeout(self._timeout):
                async with self._client.stream("GET", pinned.url, headers=headers,
                                               extensions={"sni_hostname": pinned.sni}) as resp:
                    if 300 <= resp.status_code < 400:
                        raise FetchFailed("redirect_refused")
                    if resp.status_code != 200:
                        raise FetchFailed(f"http_{resp.status_code}")
                    body = bytearray()
                    async for chunk in resp.aiter_bytes():
                        body += chunk
                        if len(body) > self._max_bytes:
                            raise FetchFailed("document_too_large")
        except TimeoutError:
            raise FetchFailed("timeout") from None
        except httpx.HTTPError as exc:
            tls = isinstance(exc, httpx.ConnectError) and "CERTIFICATE" in str(exc)
            raise FetchFailed("tls_failed" if tls else "fetch_failed") from None
        try:
            data = json.loads(bytes(body))
        except ValueError:
            raise FetchFailed("not_json") from None
        if not isinstance(data, dict):
            raise FetchFailed("not_a_json_object")
        return data
