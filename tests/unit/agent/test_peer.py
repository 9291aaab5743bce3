"""SO_PEERCRED and /proc lookups on a real socket pair."""

from __future__ import annotations

import os
import socket

from keyless.agent.peer import Peer, peer_of, still_same, unit_of


def test_peer_credentials_of_a_unix_socket() -> None:
    a, b = socket.socketpair(socket.AF_UNIX)
    try:
        assert peer_of(a) == Peer(pid=os.getpid(), uid=os.getuid(), gid=os.getgid())
    finally:
        a.close()
        b.close()
    with socket.socket() as tcp:
        assert peer_of(tcp) is None


def test_still_same() -> None:
    me = Peer(os.getpid(), os.getuid(), os.getgid())
    assert still_same(me)
    assert not still_same(Peer(os.getpid(), os.getuid() + 1, os.getgid()))
    assert not still_same(Peer(2**22 + 12345, 0, 0))  # no such pid


def test_unit_of_returns_a_unit_or_none() -> None:
    unit = unit_of(os.getpid())
    assert unit is None or unit.endswith((".service", ".scope"))


def test_tcp_peer_uid_of_a_loopback_connection() -> None:
    from keyless.agent.peer import tcp_peer_uid

    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            server = socket.socket(family)
            server.bind((host, 0))
        except OSError:
            continue  # no IPv6 loopback here
        with server:
            server.listen(1)
            with socket.socket(family) as client:
                client.connect(server.getsockname()[:2])
                conn, addr = server.accept()
                with conn:
                    assert tcp_peer_uid(addr[:2], server.getsockname()[:2]) == os.getuid()
                    assert tcp_peer_uid((host, 1), server.getsockname()[:2]) is None
