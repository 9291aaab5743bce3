"""Who is calling over the Unix socket: the kernel's peer credentials (`SO_PEERCRED`: pid, uid,
gid of the connecting process, recorded by the kernel at connect time and not forgeable by the
caller), plus what /proc says about that pid (executable, systemd unit), matched against the
workload bindings the server holds for this host.

A pid can die and be reused, so before answering the agent checks again that the pid still
belongs to the same uid (`still_same`); a caller that cannot be re-identified gets nothing.
"""

from __future__ import annotations

import os
import re
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from keyless.agent import sockdiag

_UCRED = struct.Struct("3i")
# The slash after a unit is looked at, not taken: a unit nested right under another is found too.
_UNIT = re.compile(r"/([^/]+\.(?:service|scope))(?=/|$)")


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    gid: int


@dataclass(frozen=True)
class PeerBinding:
    identity_client_id: str
    uid: int | None = None
    gid: int | None = None
    exe: str | None = None
    unit: str | None = None


def peer_of(sock: socket.socket) -> Peer | None:
    """The credentials of the process at the other end of a connected Unix socket."""
    if sock.family != socket.AF_UNIX:
        return None
    try:
        pid, uid, gid = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
    except OSError:
        return None
    return Peer(pid, uid, gid) if pid > 0 else None


def _proc_net_address(host: str, port: int) -> str:
    """An address as /proc/net/tcp{,6} spells it: the IP in host byte order (little-endian words), hex."""
    packed = socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    words = [packed[i:i + 4][::-1] for i in range(0, len(packed), 4)]
    return f"{b''.join(words).hex().upper()}:{port:04X}"


def tcp_peer_uid(peer: tuple[str, int], local: tuple[str, int]) -> int | None:
    """The uid owning the client end of a loopback TCP connection, from the kernel's socket table:
    the established socket whose own address is the peer's and whose remote address is ours. TCP has
    no SO_PEERCRED; this identifies the user (not the process) for per-user limits. Asked of the kernel
    for that one socket (`keyless.agent.sockdiag`, ~30 µs); where the kernel does not answer such
    requests, read from `/proc/net/tcp{,6}`, which costs milliseconds on a large machine."""
    if sockdiag.available():
        try:
            return sockdiag.owner_uid(peer, local)
        except sockdiag.Unanswered:
            return None  # the caller is then known by its address only: no uid binding matches
    return _proc_peer_uid(peer, local)


def _proc_peer_uid(peer: tuple[str, int], local: tuple[str, int]) -> int | None:
    """`tcp_peer_uid` from `/proc/net/tcp{,6}`: the row whose local address is the peer's and whose
    remote address is ours."""
    table = "/proc/net/tcp6" if ":" in peer[0] else "/proc/net/tcp"
    want_local, want_remote = _proc_net_address(*peer), _proc_net_address(*local)
    found: list[int] = []
    try:
        with open(table, encoding="ascii") as fh:
            next(fh, None)
            for line in fh:
                fields = line.split()
                # Only an established socket counts: TIME_WAIT rows show uid 0 and own no process.
                if len(fields) > 7 and fields[1] == want_local and fields[2] == want_remote and fields[3] == "01":
                    found.append(int(fields[7]))
    except (OSError, ValueError):
        return None
    return found[0] if len(found) == 1 else None


def _proc_read(path: str, size: int) -> bytes | None:
    """Up to `size` bytes of a /proc file in one read, None if it is gone: asked on every answer on the
    socket, and a buffered (or text) file costs more than the kernel's own work here."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, size)
    except OSError:
        return None
    finally:
        os.close(fd)


def _effective_uid(pid: int) -> int | None:
    """The effective uid of `pid` (the second field of the `Uid:` line of /proc/PID/status), or None if
    it is gone. `SO_PEERCRED` records the effective uid at connect time, the one the kernel checks
    access by, so the same field is compared: a setuid program is asked about the user it runs as, as
    the kernel named it at connect. Asked before every answer on the socket (`still_same`), so read
    with one system call each for open, read and close and by finding the one line: a buffered file and
    a walk over every line were 38 µs of a 107 µs request (docs/benchmarks.md, "Session 19"). The
    kernel escapes newlines in the process name, the only text a process sets in that file, so no line
    can be forged."""
    text = _proc_read(f"/proc/{pid}/status", 4096)
    if text is None:
        return None
    start = text.find(b"\nUid:") + 5
    end = text.find(b"\n", start)
    fields = text[start:end].split() if start >= 5 and end > start else []
    return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None


def still_same(peer: Peer) -> bool:
    """The pid is alive and still runs as the (effective) uid the kernel recorded at connect time."""
    return _effective_uid(peer.pid) == peer.uid


def exe_of(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def unit_of(pid: int) -> str | None:
    """The systemd unit (service or scope) of `pid`, from its cgroup path, where systemd runs."""
    data = _proc_read(f"/proc/{pid}/cgroup", 8192)
    if data is None:
        return None
    for line in data.decode("utf-8", "replace").splitlines():
        path = line.split(":", 2)[-1]
        found = _UNIT.findall(path)
        if found:
            return str(found[-1])
    return None


def matches(binding: PeerBinding, peer: Peer) -> bool:
    """Every selector the binding sets must match the caller. A TCP caller (pid 0: only its uid is
    known) matches only bindings that select by uid alone."""
    if binding.uid is not None and binding.uid != peer.uid:
        return False
    if peer.pid <= 0 and (binding.gid is not None or binding.exe is not None or binding.unit is not None):
        return False
    if binding.gid is not None and binding.gid != peer.gid:
        return False
    if binding.exe is not None and exe_of(peer.pid) != binding.exe:
        return False
    return binding.unit is None or unit_of(peer.pid) == binding.unit


def bound_identities(bindings: Sequence[PeerBinding], peer: Peer) -> list[str]:
    """Identities the caller may use, in binding order, without repeats."""
    out: list[str] = []
    for b in bindings:
        if b.identity_client_id not in out and matches(b, peer):
            out.append(b.identity_client_id)
    return out
