"""The owner of a TCP socket asked of the real kernel by netlink (`keyless.agent.sockdiag`)."""

from __future__ import annotations

import contextlib
import os
import pwd
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from keyless.agent import peer, sockdiag

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux netlink")


@contextlib.contextmanager
def _connection(family: int, host: str) -> Iterator[tuple[socket.socket, socket.socket, socket.socket]]:
    """A listening socket, a client connected to it and the server's end, all open."""
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(socket.socket(family))
        if family == socket.AF_INET6 and host == "::":
            server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        try:
            server.bind((host, 0))
        except OSError:
            pytest.skip(f"no {host} here")
        server.listen(1)
        target = ("127.0.0.1", server.getsockname()[1]) if host == "::" else server.getsockname()[:2]
        client = stack.enter_context(socket.create_connection(target, timeout=5))
        accepted = stack.enter_context(server.accept()[0])
        yield server, client, accepted


def test_this_kernel_answers_exact_socket_lookups() -> None:
    assert sockdiag.available()


@pytest.mark.parametrize(("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1"),
                                              (socket.AF_INET6, "::")])  # "::": a v4 client, v4-mapped
def test_owner_of_the_client_end_of_a_loopback_connection(family: int, host: str) -> None:
    with _connection(family, host) as (_, client, accepted):
        seen_peer, seen_local = accepted.getpeername()[:2], accepted.getsockname()[:2]
        if host == "::":
            assert seen_peer[0].startswith("::ffff:")  # what the agent sees on a dual-stack listener
        assert sockdiag.owner_uid(seen_peer, seen_local) == os.geteuid()
        assert peer.tcp_peer_uid(seen_peer, seen_local) == os.geteuid()
        assert client.fileno() >= 0


def test_no_socket_no_listener_and_no_foreign_family_name_an_owner() -> None:
    with _connection(socket.AF_INET, "127.0.0.1") as (server, _, accepted):
        local = accepted.getsockname()[:2]
        assert sockdiag.owner_uid(("127.0.0.1", 1), local) is None  # nobody at that port
        # The kernel's lookup falls back to a listener at the address: a listener owns no connection.
        assert sockdiag.owner_uid(server.getsockname()[:2], ("127.0.0.1", 1)) is None
        assert sockdiag.owner_uid(("not-an-address", 1), local) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a client as another user")
def test_owner_is_the_user_who_opened_the_client_socket() -> None:
    nobody = pwd.getpwnam("nobody").pw_uid
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        holder = (f"import socket, sys; s = socket.create_connection(('127.0.0.1', {port})); "
                  "sys.stdout.write('up\\n'); sys.stdout.flush(); sys.stdin.read()")
        with subprocess.Popen(["/usr/bin/python3", "-c", holder], user="nobody", cwd="/", text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE) as child:
            assert child.stdout is not None and child.stdin is not None
            assert child.stdout.readline() == "up\n"
            accepted, seen_peer = server.accept()
            with accepted:
                assert sockdiag.owner_uid(seen_peer[:2], server.getsockname()[:2]) == nobody != os.geteuid()
            child.stdin.close()


def test_connection_flood_does_not_make_the_agent_read_the_whole_socket_table(monkeypatch: Any) -> None:
    """Every new TCP connection to the agent asks who owns it. Read from /proc/net/tcp, which walks the
    kernel's whole established-hash table, that was milliseconds of the agent's CPU a connection."""
    def walked(*_: object) -> None:
        raise AssertionError("read the whole socket table")

    monkeypatch.setattr(peer, "_proc_peer_uid", walked)
    with _connection(socket.AF_INET, "127.0.0.1") as (_, _client, accepted):
        assert peer.tcp_peer_uid(accepted.getpeername()[:2], accepted.getsockname()[:2]) == os.geteuid()


def test_without_kernel_answers_the_table_is_read_instead(monkeypatch: Any) -> None:
    def unanswered(*_: object) -> None:
        raise sockdiag.Unanswered("not here")

    monkeypatch.setattr(sockdiag, "owner_uid", unanswered)
    assert not sockdiag._probe()
    monkeypatch.setattr(sockdiag, "_available", False)
    with _connection(socket.AF_INET, "127.0.0.1") as (_, _client, accepted):
        assert peer.tcp_peer_uid(accepted.getpeername()[:2], accepted.getsockname()[:2]) == os.geteuid()


def test_a_kernel_that_stops_answering_names_no_owner(monkeypatch: Any) -> None:
    """After a good probe, a request the kernel refuses leaves the caller known by its address alone
    (no uid binding matches, the per-address limits apply): never a guess, never the table walk."""
    def unanswered(*_: object) -> None:
        raise sockdiag.Unanswered("refused")

    def walked(*_: object) -> None:
        raise AssertionError("read the whole socket table")

    monkeypatch.setattr(sockdiag, "_available", True)
    monkeypatch.setattr(sockdiag, "owner_uid", unanswered)
    monkeypatch.setattr(peer, "_proc_peer_uid", walked)
    with _connection(socket.AF_INET, "127.0.0.1") as (_, _client, accepted):
        assert peer.tcp_peer_uid(accepted.getpeername()[:2], accepted.getsockname()[:2]) is None
