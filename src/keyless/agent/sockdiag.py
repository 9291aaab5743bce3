"""The owner of one TCP socket, asked of the kernel by netlink (`NETLINK_SOCK_DIAG`, `inet_diag`).

The agent learns which local user opened a TCP connection from the kernel's socket table
(`keyless.agent.peer.tcp_peer_uid`). Reading `/proc/net/tcp` walks the kernel's whole established-hash
table, whatever few sockets it holds: 4.1 ms of CPU a read on a 24 GiB benchmark guest (262,144
buckets), so every new connection cost the agent that much and a local caller could keep its core busy
by connecting (docs/benchmarks.md, "Session 19"). An `inet_diag` request that names the socket's four
addresses and ports, without `NLM_F_DUMP`, makes the kernel look up that one socket in its hash
(as it does for an arriving packet) and answer with its state and owner: ~20-35 µs.

No library does this exact lookup (pyroute2's `DiagSocket` and psutil dump the table), so the
request and the answer are packed here from the kernel's UAPI (`linux/sock_diag.h`,
`linux/inet_diag.h`). Whether the kernel answers such requests at all (`inet_diag` and `tcp_diag`
may be missing or forbidden) is probed once per process on a connection of our own, because its
"no such socket" and "no such handler" are the same error (`ENOENT`): `available()`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct

from keyless.errors import KeylessError

NETLINK_SOCK_DIAG = 4  # linux/netlink.h (Python's socket module names it only on some builds)
SOCK_DIAG_BY_FAMILY = 20  # linux/sock_diag.h
NLM_F_REQUEST = 0x1
NLMSG_ERROR = 0x2
TCP_ESTABLISHED = 1
INET_DIAG_NOCOOKIE = 0xFFFFFFFF  # the kernel then checks no cookie

_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id
_REQUEST = struct.Struct("=BBBBI")  # inet_diag_req_v2: family, protocol, extensions, pad, states
_SOCKET_ID = struct.Struct(">HH16s16s")  # inet_diag_sockid: ports and addresses, network order
_SOCKET_ID_TAIL = struct.Struct("=III")  # inet_diag_sockid: interface, cookie (2 words)
_ANSWER_HEAD = struct.Struct("=BBBB")  # inet_diag_msg: family, state, timer, retransmits
_ANSWER_TAIL = struct.Struct("=IIIII")  # inet_diag_msg: expires, rqueue, wqueue, uid, inode
_ID_AT = _HEADER.size + _ANSWER_HEAD.size
_UID_AT = _ID_AT + _SOCKET_ID.size + _SOCKET_ID_TAIL.size
_ANSWER_SIZE = _UID_AT + _ANSWER_TAIL.size
_ERROR = struct.Struct("=i")

_available: bool | None = None  # probed on first use


class Unanswered(KeylessError):
    """The kernel gave no usable answer to a socket-diagnostics request (not "no such socket")."""


def _packed(family: int, host: str) -> bytes:
    return socket.inet_pton(family, host).ljust(16, b"\0")


def _unmapped(host: str) -> str:
    """An IPv4 client of a dual-stack listener appears as `::ffff:a.b.c.d`; its socket is an IPv4 one,
    which the kernel names by its IPv4 address."""
    return host[7:] if host.lower().startswith("::ffff:") and "." in host else host


def owner_uid(local: tuple[str, int], remote: tuple[str, int], sequence: int = 1) -> int | None:
    """The uid owning the established TCP socket whose own address is `local` and whose peer is
    `remote` (for the agent: the client's socket, seen from its side); None when the kernel holds no
    such established socket. Raises `Unanswered` when the request itself failed."""
    local_host, remote_host = _unmapped(local[0]), _unmapped(remote[0])
    family = socket.AF_INET6 if ":" in local_host else socket.AF_INET
    try:
        src, dst = _packed(family, local_host), _packed(family, remote_host)
    except OSError:
        return None  # not an address of this family: no socket of ours can have it
    body = (_REQUEST.pack(family, socket.IPPROTO_TCP, 0, 0, 1 << TCP_ESTABLISHED)
            + _SOCKET_ID.pack(local[1], remote[1], src, dst)
            + _SOCKET_ID_TAIL.pack(0, INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE))
    request = _HEADER.pack(_HEADER.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, sequence, 0) + body
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
            nl.sendto(request, (0, 0))
            # The kernel answers within the send (netlink to the kernel is synchronous): never wait.
            answer = nl.recv(8192, socket.MSG_DONTWAIT)
    except OSError as exc:  # no netlink here, forbidden, or no answer queued
        raise Unanswered(str(exc)) from None
    if len(answer) < _HEADER.size:
        raise Unanswered("short answer")
    _, kind, _, answered, _ = _HEADER.unpack_from(answer)
    if answered != sequence:
        raise Unanswered("answer to another request")
    if kind == NLMSG_ERROR and len(answer) >= _HEADER.size + _ERROR.size:
        if _ERROR.unpack_from(answer, _HEADER.size)[0] == -errno.ENOENT:  # no such socket (once `available`)
            return None
        raise Unanswered("refused")
    if kind != SOCK_DIAG_BY_FAMILY or len(answer) < _ANSWER_SIZE:
        raise Unanswered("unexpected answer")
    state = _ANSWER_HEAD.unpack_from(answer, _HEADER.size)[1]
    if (state != TCP_ESTABLISHED  # a listener or a closing socket at that address owns no connection
            or _SOCKET_ID.unpack_from(answer, _ID_AT) != (local[1], remote[1], src, dst)):
        return None
    return int(_ANSWER_TAIL.unpack_from(answer, _UID_AT)[3])


def available() -> bool:
    """Whether this kernel answers exact socket lookups: once per process, on a loopback connection
    of our own whose owner is known (`os.geteuid()`, the owner the kernel records for a socket)."""
    global _available
    if _available is None:
        _available = _probe()
    return _available


def _probe() -> bool:
    try:
        with contextlib.ExitStack() as stack:
            server = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            server.bind(("127.0.0.1", 0))
            server.listen(1)
            client = stack.enter_context(socket.create_connection(server.getsockname(), timeout=1))
            stack.enter_context(server.accept()[0])
            return owner_uid(client.getsockname(), server.getsockname()) == os.geteuid()
    except (OSError, Unanswered):
        return False
