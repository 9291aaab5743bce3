"""The token endpoint as `keyless serve` answers it, inside its listener (keyless.server.token_protocol),
over raw TLS: pipelined requests on one connection answered in order with real tokens and refusals,
`Connection: close` honoured, and a request whose client leaves mid-body neither processed nor logged
(tests/unit/server/test_token_protocol.py covers the rest against a stand-in service)."""

from __future__ import annotations

import socket
import ssl
import time
from urllib.parse import urlencode

import orjson

from tests.integration.server.conftest import wrong
from tests.support.server import Admin, RunningServer

ROLE = "Proto.Read"


def _connect(server: RunningServer) -> ssl.SSLSocket:
    port = int(server.url.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=server.ca)
    return context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="127.0.0.1")


def _post(server: RunningServer, form: dict[str, str], extra: str = "") -> bytes:
    body = urlencode(form).encode()
    return (f"POST /{server.tenant_id}/oauth2/v2.0/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
            ).encode() + body


def _responses(sock: ssl.SSLSocket, count: int) -> list[tuple[int, dict[str, str], bytes]]:
    stream = sock.makefile("rb")
    out = []
    for _ in range(count):
        status = int(stream.readline().split()[1])
        headers = {}
        while (line := stream.readline()) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        out.append((status, headers, stream.read(int(headers["content-length"]))))
    return out


def test_pipelined_token_requests_are_answered_in_order(server: RunningServer, admin: Admin, uri: str) -> None:
    client, secret = admin.client_with_role(uri, ROLE)
    form = {"grant_type": "client_credentials", "client_id": client["client_id"], "client_secret": secret,
            "scope": f"{uri}/.default"}
    with _connect(server) as sock:
        sock.sendall(_post(server, form) + b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                     + _post(server, {**form, "client_secret": wrong(secret)})
                     + _post(server, form, "Connection: close\r\n"))
        answers = _responses(sock, 4)
        assert sock.recv(1) == b""  # closed after the last answer, as asked
    assert [status for status, _, _ in answers] == [200, 200, 401, 200]
    assert "access_token" in orjson.loads(answers[0][2]) and "access_token" in orjson.loads(answers[3][2])
    assert orjson.loads(answers[2][2])["error"] == "invalid_client"
    assert answers[0][1]["cache-control"] == "no-store" and answers[0][1]["pragma"] == "no-cache"
    assert answers[3][1]["connection"] == "close"


def test_a_client_leaving_mid_body_is_neither_served_nor_logged(server: RunningServer, admin: Admin,
                                                                 uri: str) -> None:
    client, secret = admin.client_with_role(uri, ROLE)
    cid = client["client_id"]
    form = {"grant_type": "client_credentials", "client_id": cid, "client_secret": secret, "scope": f"{uri}/.default"}
    request = _post(server, form)
    with _connect(server) as sock:
        sock.sendall(request.replace(b"Content-Length: ", b"Content-Length: 1", 1))  # 10x what is sent
    time.sleep(0.3)
    assert admin.api.call("GET", "/logs/signins", params={"client_id": cid}) == []
    with _connect(server) as sock:  # the same request, complete, is served and logged
        sock.sendall(request)
        assert _responses(sock, 1)[0][0] == 200
    assert [e["result"] for e in admin.api.call("GET", "/logs/signins", params={"client_id": cid})] == ["success"]
