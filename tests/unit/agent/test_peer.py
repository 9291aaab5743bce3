"""SO_PEERCRED and /proc lookups on a real socket pair."""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
from pathlib import Path

import pytest

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


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a process as another user")
def test_a_process_name_cannot_forge_the_uid_line() -> None:
    """`still_same` reads the first `Uid:` line of /proc/PID/status; the process name, which any
    process sets for itself, comes before it but has its newlines escaped by the kernel."""
    nobody = pwd.getpwnam("nobody").pw_uid
    forger = ("import sys; open('/proc/self/comm', 'w').write('\\nUid:\\t0\\t0\\t0\\t0'); "
              "sys.stdout.write('named\\n'); sys.stdout.flush(); sys.stdin.read()")
    with subprocess.Popen(["/usr/bin/python3", "-c", forger], user="nobody", cwd="/", text=True,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE) as child:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline() == "named\n"
        assert b"Uid:" in Path(f"/proc/{child.pid}/comm").read_bytes()  # the name holds the forgery
        assert not still_same(Peer(child.pid, 0, 0))
        assert still_same(Peer(child.pid, nobody, 0))
        child.stdin.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a process as another user")
def test_a_setuid_caller_is_asked_about_the_uid_it_connected_as() -> None:
    """A process whose real and effective uids differ (a setuid program; here root that set its
    effective uid to `nobody`) connects as its effective uid (`SO_PEERCRED`), and `still_same` compares
    that same uid: the caller is re-identified, and not as its real uid."""
    nobody = pwd.getpwnam("nobody").pw_uid
    name = f"\0keyless-test-peer-{os.getpid()}"  # abstract namespace: no file permissions in the way
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(name)
        listener.listen(1)
        caller = (f"import os, socket, sys; os.seteuid({nobody}); s = socket.socket(socket.AF_UNIX); "
                  f"s.connect({name!r}); sys.stdout.write('on\\n'); sys.stdout.flush(); sys.stdin.read()")
        with subprocess.Popen(["/usr/bin/python3", "-c", caller], cwd="/", text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE) as child:
            assert child.stdout is not None and child.stdin is not None
            assert child.stdout.readline() == "on\n"
            conn, _ = listener.accept()
            with conn:
                peer = peer_of(conn)
                assert peer == Peer(child.pid, nobody, os.getegid())
                assert still_same(peer)
                assert not still_same(Peer(child.pid, 0, 0))  # its real uid is not who connected
            child.stdin.close()


@pytest.mark.parametrize(("cgroup", "unit"), [
    (b"0::/system.slice/billing.service\n", "billing.service"),
    (b"1:name=systemd:/user.slice/user-1000.slice/session-3.scope\n0::/\n", "session-3.scope"),
    (b"0::/system.slice/app.service/worker\n", "app.service"),
    (b"0::/system.slice/outer.service/inner.scope\n", "inner.scope"),
    (b"0::/\n", None),
    (b"0::/system.slice/\xff\xfe.service\n", "\ufffd\ufffd.service"),
    (None, None),  # the process is gone
])
def test_unit_of_reads_the_unit_from_the_cgroup_path(monkeypatch: pytest.MonkeyPatch, cgroup: bytes | None,
                                                     unit: str | None) -> None:
    from keyless.agent import peer

    monkeypatch.setattr(peer, "_proc_read", lambda path, size: cgroup if path == "/proc/42/cgroup" else None)
    assert unit_of(42) == unit
