"""The one adapter between uvicorn and the agent (issue 12 item 6): uvicorn's HTTP protocol with the
listener guard (keyless.listen: connection caps, header and body timeouts), plus who is calling, read
from the kernel once per connection and handed to the endpoints in the ASGI scope:
`scope["extensions"]["keyless.peer"]` (uid, gid, pid) for a Unix-socket caller (SO_PEERCRED), or
`scope["extensions"]["keyless.tcp_uid"]` for a loopback TCP caller whose socket the kernel can name
(keyless.agent.peer). Nothing else in the agent subclasses or reaches into uvicorn's protocol, so a
uvicorn upgrade is checked here, by tests/unit/agent/test_protocol.py against a real uvicorn server.
"""

from __future__ import annotations

import asyncio
import socket

from keyless.agent.peer import Peer, peer_of, tcp_peer_uid
from keyless.listen import GuardedProtocol


class PeerProtocol(GuardedProtocol):
    """uvicorn's HTTP protocol with the listener guard, plus the kernel's peer credentials of Unix-socket
    callers in the ASGI scope (`scope["extensions"]["keyless.peer"]`)."""

    peer: Peer | None = None
    tcp_uid: int | None = None

    def source_key(self) -> str:
        """On the Unix socket each local user has its own connection cap (one user cannot fill it)."""
        sock = self.transport.get_extra_info("socket")
        if sock is not None and sock.family == socket.AF_UNIX:
            self.peer = peer_of(sock)
            return f"uid:{self.peer.uid}" if self.peer is not None else "local"
        return super().source_key()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        client, local = self.client, self.server
        if self.admitted and self.peer is None and client is not None and local is not None and local[1] is not None:
            self.tcp_uid = tcp_peer_uid(client, (local[0], local[1]))  # once per connection

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.peer is not None:
            self.scope["extensions"] = {"keyless.peer": self.peer}  # type: ignore[dict-item]
        elif self.tcp_uid is not None:
            self.scope["extensions"] = {"keyless.tcp_uid": self.tcp_uid}  # type: ignore[dict-item]
