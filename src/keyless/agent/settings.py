"""`AgentSettings`: one object per agent process, built by `keyless agent` and passed in."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from keyless.errors import ConfigurationError
from keyless.listen import ListenerLimits

DEFAULT_PORT = 50342  # what Azure Arc's HIMDS uses locally; any free port works
DEFAULT_STATE_DIR = Path("/var/lib/keyless-agent")


@dataclass(frozen=True)
class AgentSettings:
    server: str | None = None  # https://…; needed to enroll, then remembered in the state dir
    tenant: str | None = None  # tenant name or id; with --join-token it is taken from the token's server
    ca_file: str | None = None
    join_token: str | None = field(default=None, repr=False)
    state_dir: Path = DEFAULT_STATE_DIR
    listen: str | None = f"127.0.0.1:{DEFAULT_PORT}"  # None: no TCP listener
    socket: Path | None = None  # Unix socket path; None: no socket
    allowed_hosts: tuple[str, ...] = ()  # extra Host header values besides the loopback names
    rate: float = 500.0  # requests per second per caller (0 disables)
    burst: float = 1000.0
    poll_interval: float = 5.0  # how often the host's identities and bindings are fetched (and removal noticed)
    refresh_interval: float = 1.0  # how often due tokens and the certificate are checked
    # After a renewal the previous key signs this long: server replicas cache a host's certificates
    # for up to twice their cache TTL (5 s by default).
    renewal_grace: float = 30.0
    # Slow and idle clients on both listeners (docs/security.md).
    limits: ListenerLimits = field(default_factory=ListenerLimits)

    def listen_address(self) -> tuple[str, int] | None:
        """The TCP listener, refusing anything but a loopback address (catalog F13, F09)."""
        if self.listen is None:
            return None
        host, sep, port_text = self.listen.rpartition(":")
        if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
            raise ConfigurationError(f"--listen must be HOST:PORT, got {self.listen!r}")
        host = host.strip("[]")
        if host == "localhost":
            host = "127.0.0.1"
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise ConfigurationError(f"--listen needs a loopback IP address, got {host!r}") from None
        if not address.is_loopback:
            raise ConfigurationError(f"refusing to listen on {host}: the agent listens on loopback only")
        return host, int(port_text)
