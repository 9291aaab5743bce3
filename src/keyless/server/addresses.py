"""Checked-address outbound HTTPS: how the server calls a URL someone else chose without becoming an
SSRF proxy (catalog E05 for external issuers, O01 for webhooks).

- https only, no user info, no fragment; the host name is resolved here and **every** address it
  resolves to must be public (no loopback, link-local such as 169.254.169.254, RFC 1918, CGNAT, ULA,
  IPv4-mapped IPv6 of those, 0.0.0.0, multicast), so there is no lottery between DNS records;
- the connection then goes to that checked address (`pinned`): the URL's host stays in `Host` and
  SNI, so the certificate is still verified against the name, and DNS rebinding between check and
  connect has nothing to rebind;
- an operator's allow-list (host names or networks) exempts exactly what it names and nothing else;
  it is empty by default.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from keyless.errors import KeylessError

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
DNS_TIMEOUT = 5.0  # a resolver that never answers costs a request this long at most


class AddressRefused(KeylessError):
    """The URL may not be called; `reason` is a stable code (bad_url, dns_failed, private_address)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _normalize(ip: IpAddress) -> IpAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_public(ip: IpAddress) -> bool:
    ip = _normalize(ip)
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class Pinned:
    """A URL rewritten to its checked address, with the `Host` header and SNI name to send."""

    url: str
    host_header: str
    sni: str


class AddressGuard:
    def __init__(self, allow_private: Sequence[str] = ()) -> None:
        self._names: set[str] = set()
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allow_private:
            try:
                self._networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                self._names.add(entry.strip().lower())

    def allowed(self, host: str, ip: IpAddress) -> bool:
        if is_public(ip):
            return True
        ip = _normalize(ip)
        return host in self._names or any(ip in net for net in self._networks)

    async def resolve(self, host: str, port: int) -> list[IpAddress]:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        try:
            async with asyncio.timeout(DNS_TIMEOUT):
                infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError):
            raise AddressRefused("dns_failed") from None
        found: list[IpAddress] = []
        for info in infos:
            try:
                ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            except ValueError:
                continue
            if ip not in found:
                found.append(ip)
        if not found:
            raise AddressRefused("dns_failed")
        return found

    async def pin(self, url: str) -> Pinned:
        """Check `url` and every address its host resolves to; the URL to connect to instead."""
        try:
            parts = urlsplit(url)
            port = parts.port or 443
        except ValueError:
            raise AddressRefused("bad_url") from None
        host = (parts.hostname or "").lower()
        if parts.scheme != "https" or not host or parts.username is not None or parts.fragment:
            raise AddressRefused("bad_url")
        addresses = await self.resolve(host, port)
        if not all(self.allowed(host, ip) for ip in addresses):
            raise AddressRefused("private_address")
        ip = addresses[0]
        literal = f"[{ip}]" if ip.version == 6 else str(ip)
        pinned = urlunsplit(("https", f"{literal}:{port}", parts.path or "/", parts.query, ""))
        return Pinned(url=pinned, host_header=parts.netloc.rsplit("@", 1)[-1], sni=host)

    async def refusal(self, url: str) -> str | None:
        """None when `url` may be called now, else the stable reason (registration's check)."""
        try:
            await self.pin(url)
        except AddressRefused as refused:
            return refused.reason
        return None
