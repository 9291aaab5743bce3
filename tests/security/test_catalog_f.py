"""Catalog F: the managed-identity endpoints of a real `keyless agent`, enrolled against a real server.

Requests are sent with raw sockets where an HTTP library would tidy them up (repeated parameters,
CR/LF, bodies on GET, proxy headers). Rows: F01, F02, F04 (the header requirement that blocks
redirected GETs), F06, F07 (Unix socket with a throwaway second user), F08, F09/F13, F10, F11, F12,
F14, F15; plus the Host allowlist and browser-header refusals the issue asks for.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.agent.conftest import claims_of
from tests.support.agent import RunningAgent, host_with_resource, start_agent, stop_agent
from tests.support.server import Admin, RunningServer, cli_command, free_port

IMDS = "/metadata/identity/oauth2/token"
NOT_FOUND = {"error": "invalid_request", "error_description": "Identity not found"}


@pytest.fixture(scope="module")
def world(sqlite_server: RunningServer) -> Iterator[dict[str, Any]]:
    """An agent whose socket lives in a directory every local user can reach; the system identity
    and two user-assigned identities (one bound to root's uid, one assigned but unbound) may read
    the resource; a third identity exists but is not assigned to this host."""
    host, uri = host_with_resource(sqlite_server)
    with Admin(sqlite_server) as admin:
        made = {}
        for label in ("bound", "unbound", "foreign"):
            made[label] = dict(admin.api.call("POST", "/identities",
                                              json_body={"name": f"f-{label}-{uuid.uuid4().hex[:6]}"}))
            admin.grant(made[label]["client_id"], uri, "Orders.Read")
        for label in ("bound", "unbound"):
            admin.api.call("PUT", f"/identities/{made[label]['client_id']}/hosts/{host['id']}")
        admin.api.call("POST", f"/identities/{made['bound']['client_id']}/bindings",
                       json_body={"host": host["id"], "uid": os.getuid()})
    shared = Path(tempfile.mkdtemp(prefix="keyless-f-"))
    shared.chmod(0o755)
    agent = start_agent(sqlite_server, shared, join_token=host["join_token"], host=host,
                        extra=("--rate", "200"))
    try:
        yield {"agent": agent, "uri": uri, **made, "dir": shared}
    finally:
        stop_agent(agent)
        shutil.rmtree(shared, ignore_errors=True)


def raw(agent: RunningAgent, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are; return status, headers (lower-case names) and body."""
    with socket.create_connection(("127.0.0.1", agent.port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                lines = head.decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
                if len(body) >= int(headers.get("content-length", "0")):
                    return int(lines[0].split()[1]), headers, body
    raise AssertionError("no complete response")


def get(agent: RunningAgent, query: str, *, headers: str = "Metadata: true\r\n", method: str = "GET",
        body: bytes = b"", path: str = IMDS) -> tuple[int, dict[str, str], Any]:
    host = f"127.0.0.1:{agent.port}"
    request = f"{method} {path}?{query} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n".encode()
    if body:
        request += f"Content-Length: {len(body)}\r\n".encode()
    status, hdrs, payload = raw(agent, request + b"\r\n" + body)
    return status, hdrs, json.loads(payload) if payload else None


def q(uri: str, **extra: str) -> str:
    from urllib.parse import urlencode

    return urlencode({"api-version": "2018-02-01", "resource": uri, **extra})


def test_baseline_token(world: dict[str, Any]) -> None:
    status, headers, body = get(world["agent"], q(world["uri"]))
    assert status == 200 and "access_token" in body
    assert headers["cache-control"] == "no-store"


def test_imds_path_with_one_trailing_slash_is_served_as_msal_node_sends_it(world: dict[str, Any]) -> None:
    status, _, body = get(world["agent"], q(world["uri"]), path=IMDS + "/")
    assert status == 200 and "access_token" in body


@pytest.mark.parametrize("path", [IMDS + "//", IMDS + "/x", IMDS + "x", IMDS.upper(), "/msi/token//", "/",
                                  "//metadata/identity/oauth2/token"])
def test_other_spellings_of_an_endpoint_path_are_not_found(world: dict[str, Any], path: str) -> None:
    status, _, body = get(world["agent"], q(world["uri"]), path=path)
    assert (status, body) == (404, {"error": "not_found", "error_description": "no such endpoint"})


def test_trailing_slash_keeps_the_metadata_header_requirement(world: dict[str, Any]) -> None:
    status, _, body = get(world["agent"], q(world["uri"]), headers="", path=IMDS + "/")
    assert (status, body) == (400, {"error": "invalid_request",
                                    "error_description": "Required metadata header not specified"})


@pytest.mark.parametrize("header", ["", "Metadata: false\r\n", "Metadata: 1\r\n"])
def test_f01_metadata_header_required(world: dict[str, Any], header: str) -> None:
    status, _, body = get(world["agent"], q(world["uri"]), headers=header)
    assert (status, body) == (400, {"error": "invalid_request",
                                    "error_description": "Required metadata header not specified"})


@pytest.mark.parametrize("header", ["X-Forwarded-For: 10.0.0.1", "Forwarded: for=10.0.0.1", "X-Real-IP: 10.0.0.1",
                                    "Via: 1.1 proxy"])
def test_f02_proxied_requests_refused(world: dict[str, Any], header: str) -> None:
    status, _, body = get(world["agent"], q(world["uri"]), headers=f"Metadata: true\r\n{header}\r\n")
    assert (status, body) == (400, {"error": "invalid_request", "error_description": "proxied requests are refused"})


def test_f04_redirected_get_without_headers_gets_nothing(world: dict[str, Any]) -> None:
    """A victim app following an attacker's 30x sends a plain GET: no Metadata, no identity header."""
    agent = world["agent"]
    resp = httpx.get(f"{agent.imds}?{q(world['uri'])}")
    assert resp.status_code == 400 and "access_token" not in resp.text
    app_service = httpx.get(f"{agent.url}/msi/token?api-version=2019-08-01&resource={world['uri']}")
    assert app_service.status_code == 401 and "access_token" not in app_service.text


@pytest.mark.parametrize("header", ["Origin: http://evil.example", "Sec-Fetch-Site: cross-site",
                                    "Sec-Fetch-Mode: no-cors"])
def test_browser_requests_refused(world: dict[str, Any], header: str) -> None:
    status, _, body = get(world["agent"], q(world["uri"]), headers=f"Metadata: true\r\n{header}\r\n")
    assert (status, body) == (403, {"error": "invalid_request", "error_description": "browser requests are refused"})


@pytest.mark.parametrize("host", ["evil.example", "evil.example:50342", "169.254.169.254", "127.0.0.1:1"])
def test_host_header_allowlist(world: dict[str, Any], host: str) -> None:
    request = f"GET {IMDS}?{q(world['uri'])} HTTP/1.1\r\nHost: {host}\r\nMetadata: true\r\nConnection: close\r\n\r\n"
    status, _, body = raw(world["agent"], request.encode())
    assert status == 400
    assert json.loads(body)["error_description"] == "the Host header is not allowed"


def test_f06_cors_preflight(world: dict[str, Any]) -> None:
    preflight = "Access-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: metadata\r\n"
    status, headers, _ = get(world["agent"], q(world["uri"]), method="OPTIONS", headers=preflight)
    assert status == 405
    assert headers["allow"] == "GET"
    assert not [h for h in headers if h.startswith("access-control-")]


def _curl_as(user: str, sock: Path, query: str) -> tuple[int, dict[str, Any]]:
    out = subprocess.run(
        ["/usr/bin/curl", "-s", "-w", "\n%{http_code}", "--unix-socket", str(sock), "-H", "Metadata: true",
         f"http://localhost{IMDS}?{query}"],
        capture_output=True, text=True, timeout=30, user=user, cwd="/",
    )
    body, _, code = out.stdout.rpartition("\n")
    return int(code), json.loads(body)


@contextlib.contextmanager
def throwaway_user() -> Iterator[str]:
    if os.geteuid() != 0 or shutil.which("useradd") is None or shutil.which("userdel") is None:
        pytest.skip("creating a second Unix user needs root and useradd/userdel")
    name = f"klsf{uuid.uuid4().hex[:8]}"
    made = subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"useradd failed here: {made.stderr.strip()}")
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], capture_output=True)


def test_f07_second_unix_user_is_refused_the_bound_identity(world: dict[str, Any]) -> None:
    agent, bound = world["agent"], world["bound"]
    query = q(world["uri"], client_id=bound["client_id"])
    status, body = _curl_as(pwd.getpwuid(os.getuid()).pw_name, agent.socket, query)
    assert status == 200, body
    assert claims_of(body["access_token"])["oid"] == bound["object_id"]
    default_status, default_body = _curl_as(pwd.getpwuid(os.getuid()).pw_name, agent.socket, q(world["uri"]))
    assert default_status == 200 and default_body["client_id"] == bound["client_id"]  # its bound identity
    with throwaway_user() as other:
        assert pwd.getpwnam(other).pw_uid != os.getuid()
        status, body = _curl_as(other, agent.socket, query)
        assert (status, body) == (400, NOT_FOUND)
        by_resource_id = _curl_as(other, agent.socket, q(world["uri"], msi_res_id=bound["resource_id"]))
        assert by_resource_id == (400, NOT_FOUND)
        # On TCP the agent knows the uid owning the client socket: the uid binding holds there too.
        out = subprocess.run(["/usr/bin/curl", "-s", "-H", "Metadata: true", f"{agent.imds}?{query}"],
                             capture_output=True, text=True, timeout=30, user=other, cwd="/")
        assert json.loads(out.stdout) == NOT_FOUND
    status, _, body = get(agent, query)
    assert status == 200 and body["client_id"] == bound["client_id"]


@pytest.mark.parametrize("param", ["client_id", "object_id", "msi_res_id"])
def test_f08_foreign_and_nonexistent_identities_look_alike(world: dict[str, Any], param: str) -> None:
    foreign = world["foreign"]
    value = {"client_id": foreign["client_id"], "object_id": foreign["object_id"],
             "msi_res_id": foreign["resource_id"]}[param]
    missing = {"client_id": str(uuid.uuid4()), "object_id": str(uuid.uuid4()),
               "msi_res_id": foreign["resource_id"] + "-nope"}[param]
    assert get(world["agent"], q(world["uri"], **{param: value}))[0::2] == (400, NOT_FOUND)
    assert get(world["agent"], q(world["uri"], **{param: missing}))[0::2] == (400, NOT_FOUND)


def test_f09_f13_listener_on_a_routable_address_refuses_to_start(tmp_path: Path, sqlite_server: RunningServer) -> None:
    for address in ("0.0.0.0", "10.1.2.3", "::"):
        done = subprocess.run(
            cli_command("agent", "--server", sqlite_server.url, "--join-token", "kjt.x.y.z", "--state-dir",
                        str(tmp_path / "s"), "--listen", f"{address}:{free_port()}" if ":" not in address
                        else f"[{address}]:{free_port()}"),
            capture_output=True, text=True, timeout=60,
        )
        assert done.returncode == 1
        assert "loopback" in done.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(("query", "error"), [
    ("api-version=2018-02-01", "invalid_request"),
    ("api-version=2018-02-01&resource=", "invalid_request"),
    ("api-version=2018-02-01&resource=not-a-uri", "invalid_resource"),
    ("api-version=2018-02-01&resource=api%3A%2F%2Fa&resource=api%3A%2F%2Fb", "invalid_request"),
    ("api-version=2018-02-01&resource=api%3A%2F%2Fa%0D%0AX-Injected%3A%201", "invalid_resource"),
    ("api-version=2018-02-01&resource=api%3A%2F%2Funknown-resource", "invalid_resource"),
])
def test_f10_bad_resource(world: dict[str, Any], query: str, error: str) -> None:
    status, _, body = get(world["agent"], query)
    assert status == 400 and body["error"] == error
    assert "access_token" not in body


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_f11_only_get(world: dict[str, Any], method: str) -> None:
    status, headers, body = get(world["agent"], q(world["uri"]), method=method, body=b"resource=x")
    assert status == 405 and headers["allow"] == "GET" and "access_token" not in body


def test_f11_get_with_a_body(world: dict[str, Any]) -> None:
    status, _, body = get(world["agent"], q(world["uri"]), body=b"x=1")
    assert (status, body) == (405, {"error": "invalid_request", "error_description": "a request body is not allowed"})


@pytest.mark.parametrize("version", [None, "", "2099-01-01", "2018-02-01&api-version=2018-02-01"])
def test_f12_api_version(world: dict[str, Any], version: str | None) -> None:
    from urllib.parse import quote

    query = f"resource={quote(world['uri'], safe='')}"
    if version is not None:
        query += f"&api-version={version}"
    status, _, body = get(world["agent"], query)
    assert status == 400 and body["error"] == "invalid_request"


def test_f14_no_store_and_no_cross_identity_bleed(world: dict[str, Any]) -> None:
    agent = world["agent"]
    status, headers, system = get(agent, q(world["uri"], client_id=agent.host["system_identity"]["client_id"]))
    _, _, unbound = get(agent, q(world["uri"], client_id=world["unbound"]["client_id"]))
    assert status == 200 and headers["cache-control"] == "no-store" and headers["pragma"] == "no-cache"
    assert system["access_token"] != unbound["access_token"]
    assert claims_of(unbound["access_token"])["oid"] == world["unbound"]["object_id"]
    assert claims_of(system["access_token"])["oid"] == agent.host["system_identity"]["object_id"]


def test_f15_flood_from_one_user_gets_429_and_the_server_is_not_amplified(
    sqlite_server: RunningServer, tmp_path: Path
) -> None:
    host, uri = host_with_resource(sqlite_server)
    agent = start_agent(sqlite_server, tmp_path, join_token=host["join_token"], host=host,
                        extra=("--rate", "20"))
    try:
        statuses = []
        with httpx.Client(timeout=10) as http:
            for _ in range(200):
                resp = http.get(agent.imds, params={"api-version": "2018-02-01", "resource": uri},
                                headers={"Metadata": "true"})
                statuses.append(resp.status_code)
                if resp.status_code == 429:
                    assert int(resp.headers["retry-after"]) >= 1
                    assert resp.json()["error"] == "too_many_requests"
        assert statuses.count(200) >= 20 and statuses.count(429) >= 50  # burst 40, then 20/s
        # The limit is per user, on TCP too (the kernel's socket table names the client's uid).
        with throwaway_user() as other:
            out = subprocess.run(
                ["/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Metadata: true",
                 f"{agent.imds}?{q(uri)}"], capture_output=True, text=True, timeout=30, user=other, cwd="/")
            assert out.stdout == "200"
        client_id = host["system_identity"]["client_id"]
        signins = sqlite_server.cli_json("log", "signins", "--client", client_id)
        assert len([s for s in signins if s["result"] == "success"]) == 1  # one server token for 200 requests
    finally:
        stop_agent(agent)
