"""The client's address as the server sees it, for the failure throttle, the sign-in log and the
credential policy's source networks (docs/policies.md, "Trusted proxies").

By default it is the TCP peer, and `X-Forwarded-For` / `Forwarded` (RFC 7239) are ignored: any
client can write them, so honouring them would let a caller pick the address a source-network rule
judges (RFC 9700 §4.13: a proxy must sanitise these headers, and only a proxy's may be believed).
With `trusted_proxies` set (`KEYLESS_TRUSTED_PROXIES`, addresses or CIDRs), a request whose peer is
one of them is taken to come from the address its proxy recorded: the list is read from the right
(the entry the nearest proxy appended) past every trusted proxy, and the first address that is not
one is the client. A header that names no usable address leaves the peer as the source.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_HOPS = 32  # entries of a forwarding header looked at (a long list is a hostile one)


def parse_networks(values: Sequence[str]) -> tuple[Network, ...]:
    """Addresses (a /32 or /128) and CIDRs; raises ValueError naming a bad entry."""
    out = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an address or network: {value[:64]!r}") from None
    return tuple(out)


def _address(token: str) -> str | None:
    """One entry of X-Forwarded-For, or the value of a Forwarded `for=`: an address, maybe quoted,
    bracketed (IPv6) or with a port; None for `unknown`, obfuscated names and garbage."""
    value = token.strip().strip('"')
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        value = value.partition(":")[0]  # IPv4 with a port
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def _forwarded_for(header: str) -> list[str | None]:
    """The `for=` of each element of a Forwarded header (RFC 7239 §4), in order."""
    hops: list[str | None] = []
    for element in header.split(","):
        value: str | None = None
        for pair in element.split(";"):
            name, _, raw = pair.partition("=")
            if name.strip().lower() == "for":
                value = _address(raw)
        hops.append(value)
    return hops


def _trusted(address: str | None, proxies: Sequence[Network]) -> bool:
    if address is None:
        return False
    addr = ipaddress.ip_address(address)
    return any(addr.version == n.version and addr in n for n in proxies)


def client_address(peer: str | None, *, forwarded: Sequence[str], x_forwarded_for: Sequence[str],
                   trusted_proxies: Sequence[Network]) -> str | None:
    """The client's address: the peer's, unless the peer is a trusted proxy that recorded one."""
    if not trusted_proxies or not _trusted(_address(peer) if peer else None, trusted_proxies):
        return peer
    if forwarded:
        hops = _forwarded_for(",".join(forwarded))
    elif x_forwarded_for:
        hops = [_address(h) for h in ",".join(x_forwarded_for).split(",")]
    else:
        return peer
    for hop in reversed(hops[-MAX_HOPS:]):
        if hop is None:
            return peer  # an entry we cannot read: believe nothing further left of it
        if not _trusted(hop, trusted_proxies):
            return hop
    return peer
