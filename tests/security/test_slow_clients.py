"""Slow and idle clients cannot exhaust a listener (issue 11 item 5, docs/security.md "Slow and idle
clients"): a header or body trickle is cut at its deadline, one source holds at most its share of
connections while others are served, idle keep-alive connections are bounded in time and count, and
SIGTERM ends the process within 10 s whatever its clients do. Real `keyless serve` and `keyless agent`
processes with short limits, over TLS (server and vault port), TCP and the Unix socket (agent)."""

from __future__ import annotations

import select
import signal
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.agent import RunningAgent, host_with_resource, start_agent, stop_agent
from tests.support.server import RunningServer, start_server, stop_server

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
KEEP_ALIVE = 3.0
PER_SOURCE = 4
MAX_IDLE = 3
LIMITS = {"KEYLESS_HEADER_TIMEOUT": str(HEADER_TIMEOUT), "KEYLESS_BODY_TIMEOUT": str(BODY_TIMEOUT),
          "KEYLESS_KEEP_ALIVE_TIMEOUT": str(KEEP_ALIVE), "KEYLESS_MAX_CONNECTIONS_PER_SOURCE": str(PER_SOURCE),
          "KEYLESS_MAX_IDLE_CONNECTIONS": str(MAX_IDLE)}
SLACK = 2.0  # scheduling on a loaded 2-core CI machine


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    srv = start_server(tmp_path_factory.mktemp("slow-clients"), env=LIMITS)
    try:
        yield srv
    finally:
        stop_server(srv)


def port_of(server: RunningServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def connect(server: RunningServer, port: int, source: str = "127.0.0.1") -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    return ssl.create_default_context(cafile=server.ca).wrap_socket(raw, server_hostname="127.0.0.1")


def closed_by_peer(sock: socket.socket, wait: float) -> bool:
    """True when the server ended the connection (EOF or reset) within `wait` seconds; bytes it sends
    before that (the rest of a response) are read and dropped."""
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([sock], [], [], left)
        if not readable:
            return False
        try:
            if sock.recv(65536) == b"":
                return True
        except (ssl.SSLError, OSError):
            return True
    return False


def trickle(sock: socket.socket, first: bytes, piece: bytes, limit: float) -> float:
    """Send `first`, then `piece` every 0.2 s until the server closes; seconds until it did."""
    start = time.monotonic()
    sock.sendall(first)
    while time.monotonic() - start < limit:
        if closed_by_peer(sock, 0.2):
            return time.monotonic() - start
        try:
            sock.sendall(piece)
        except OSError:
            return time.monotonic() - start
    raise AssertionError(f"the connection was still open after {limit} s of trickling")


def get(sock: socket.socket, path: str = "/healthz", host: str = "127.0.0.1") -> bytes:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nMetadata: true\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data or len(data) < _length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _length(response: bytes) -> int:
    """Head plus Content-Length: how much of `response` makes the whole message."""
    head, _, _ = response.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(head) + 4 + int(value)
    return len(head) + 4


@pytest.mark.parametrize("which", ["server", "vault"])
def test_header_trickle_slowloris_is_closed_within_the_header_timeout(limited: RunningServer, which: str) -> None:
    port = port_of(limited) if which == "server" else limited.vault_port
    with connect(limited, port) as sock:
        took = trickle(sock, b"GET /healthz HTTP/1.1\r\n", b"X-Slow: 1\r\n", 10 * HEADER_TIMEOUT)
    assert HEADER_TIMEOUT * 0.8 <= took <= HEADER_TIMEOUT + SLACK


@pytest.mark.parametrize("which", ["server", "vault"])
def test_tls_handshake_never_started_is_closed_within_the_header_timeout(limited: RunningServer, which: str) -> None:
    """A client that connects and never sends its TLS ClientHello: without a deadline the event loop
    would hold it for 60 s, outside every per-request limit."""
    port = port_of(limited) if which == "server" else limited.vault_port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        start = time.monotonic()
        assert closed_by_peer(raw, 10 * HEADER_TIMEOUT), "the silent TLS client was still connected"
        took = time.monotonic() - start
    assert took <= HEADER_TIMEOUT + SLACK


def test_header_trickle_after_a_kept_alive_request_is_closed_too(limited: RunningServer) -> None:
    with connect(limited, port_of(limited)) as sock:
        assert get(sock).startswith(b"HTTP/1.1 200")
        took = trickle(sock, b"GET /healthz HTTP/1.1\r\n", b"X-Slow: 1\r\n", 10 * HEADER_TIMEOUT)
    assert took <= HEADER_TIMEOUT + SLACK


def test_body_trickle_is_closed_within_the_body_timeout(limited: RunningServer) -> None:
    head = (f"POST /{limited.tenant_id}/oauth2/v2.0/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n").encode()
    with connect(limited, port_of(limited)) as sock:
        took = trickle(sock, head, b"a", 10 * BODY_TIMEOUT)
    assert BODY_TIMEOUT * 0.8 <= took <= BODY_TIMEOUT + SLACK


def test_one_source_cannot_open_more_than_its_connection_cap(limited: RunningServer) -> None:
    held = [connect(limited, port_of(limited), "127.0.0.2") for _ in range(PER_SOURCE)]
    try:
        for sock in held:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # a slowloris holding its connections
        with connect(limited, port_of(limited), "127.0.0.2") as extra:
            assert closed_by_peer(extra, 2.0)  # the N+1th is closed at once, before any byte of it is read
        with connect(limited, port_of(limited), "127.0.0.3") as other:
            assert get(other).startswith(b"HTTP/1.1 200")  # another source is still served
    finally:
        for sock in held:
            sock.close()


def test_healthz_stays_200_while_one_source_holds_its_maximum(limited: RunningServer) -> None:
    held: list[ssl.SSLSocket] = []
    try:
        for _ in range(PER_SOURCE * 5):  # the source keeps trying; only PER_SOURCE stay open
            sock = connect(limited, port_of(limited), "127.0.0.4")
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
            held.append(sock)
        with limited.http() as http:
            for _ in range(5):
                resp = http.get(f"{limited.url}/healthz")
                assert resp.status_code == 200, resp.text
        assert sum(not closed_by_peer(s, 0.05) for s in held) <= PER_SOURCE
    finally:
        for sock in held:
            sock.close()


def test_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(limited: RunningServer) -> None:
    with connect(limited, port_of(limited), "127.0.0.5") as sock:
        assert get(sock).startswith(b"HTTP/1.1 200")
        start = time.monotonic()
        assert closed_by_peer(sock, KEEP_ALIVE + SLACK)
    assert time.monotonic() - start >= KEEP_ALIVE * 0.8


def test_idle_keep_alive_connections_are_bounded_in_count_oldest_closed_first(limited: RunningServer) -> None:
    idle = [connect(limited, port_of(limited), f"127.0.1.{i + 1}") for i in range(MAX_IDLE + 1)]
    try:
        for sock in idle:
            assert get(sock).startswith(b"HTTP/1.1 200")
        assert closed_by_peer(idle[0], KEEP_ALIVE / 2)  # made room for the newest, well before its timeout
        assert not any(closed_by_peer(s, 0.05) for s in idle[1:])
    finally:
        for sock in idle:
            sock.close()


def test_sigterm_with_idle_keep_alive_and_slow_clients_exits_within_10_seconds(tmp_path: Path) -> None:
    srv = start_server(tmp_path)  # the default limits: keep-alive outlives the shutdown
    clients: list[ssl.SSLSocket] = []
    try:
        for i in range(10):
            sock = connect(srv, port_of(srv), f"127.0.2.{i + 1}")
            assert get(sock).startswith(b"HTTP/1.1 200")
            clients.append(sock)  # idle keep-alive clients that never read their close_notify
        slow = connect(srv, srv.vault_port)
        slow.sendall(b"GET / HTTP/1.1\r\n")
        clients.append(slow)
        start = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        srv.proc.wait(timeout=20)
        assert time.monotonic() - start < 10
    finally:
        for sock in clients:
            sock.close()
        stop_server(srv)


# -- the host agent: TCP listener and Unix socket ---------------------------------------------------------
@pytest.fixture(scope="module")
def agent(sqlite_server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAgent]:
    host, _ = host_with_resource(sqlite_server)
    running = start_agent(sqlite_server, tmp_path_factory.mktemp("slow-agent"), join_token=host["join_token"],
                          host=host, extra=("--header-timeout", str(HEADER_TIMEOUT), "--body-timeout",
                                            str(BODY_TIMEOUT), "--max-per-source", str(PER_SOURCE)))
    try:
        yield running
    finally:
        stop_agent(running)


def agent_tcp(agent: RunningAgent, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(("127.0.0.1", agent.port), timeout=10, source_address=(source, 0))


def agent_unix(agent: RunningAgent) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(agent.socket))
    return sock


@pytest.mark.parametrize("listener", ["tcp", "socket"])
def test_agent_header_trickle_is_closed_within_the_header_timeout(agent: RunningAgent, listener: str) -> None:
    with agent_tcp(agent) if listener == "tcp" else agent_unix(agent) as sock:
        took = trickle(sock, b"GET /agent/status HTTP/1.1\r\n", b"Metadata: true\r\n", 10 * HEADER_TIMEOUT)
    assert HEADER_TIMEOUT * 0.8 <= took <= HEADER_TIMEOUT + SLACK


def test_agent_body_trickle_is_closed_within_the_body_timeout(agent: RunningAgent) -> None:
    head = (f"POST /metadata/identity/oauth2/token HTTP/1.1\r\nHost: 127.0.0.1:{agent.port}\r\n"
            "Metadata: true\r\nContent-Length: 100000\r\n\r\n").encode()
    with agent_tcp(agent) as sock:
        took = trickle(sock, head, b"a", 10 * BODY_TIMEOUT)
    assert took <= BODY_TIMEOUT + SLACK


@pytest.mark.parametrize("listener", ["tcp", "socket"])
def test_agent_one_caller_cannot_open_more_than_its_connection_cap(agent: RunningAgent, listener: str) -> None:
    def opener() -> socket.socket:
        return agent_tcp(agent, "127.0.0.2") if listener == "tcp" else agent_unix(agent)

    held = [opener() for _ in range(PER_SOURCE)]
    try:
        for sock in held:
            sock.sendall(b"GET /agent/status HTTP/1.1\r\n")
        with opener() as extra:
            assert closed_by_peer(extra, 2.0)
        with agent_tcp(agent, "127.0.0.3") as other:  # another caller is still served
            assert get(other, "/agent/status", f"127.0.0.1:{agent.port}").startswith(b"HTTP/1.1 200")
    finally:
        for sock in held:
            sock.close()


def test_agent_sigterm_with_idle_keep_alive_clients_exits_within_10_seconds(
        sqlite_server: RunningServer, tmp_path: Path) -> None:
    host, _ = host_with_resource(sqlite_server)
    running = start_agent(sqlite_server, tmp_path, join_token=host["join_token"], host=host)
    clients = [agent_tcp(running, f"127.0.3.{i + 1}") for i in range(5)] + [agent_unix(running)]
    try:
        for sock in clients:
            get(sock, "/agent/status", f"127.0.0.1:{running.port}")
        start = time.monotonic()
        running.proc.send_signal(signal.SIGTERM)
        running.proc.wait(timeout=20)
        assert time.monotonic() - start < 10
    finally:
        for sock in clients:
            sock.close()
        stop_agent(running)
