"""Catalog G (secrets vault) against a real server over TLS, on both storage backends.

G09 (sealed vault) does not apply: Keyless has no sealed state — the vault keys open with the server
KEK at start-up, and a server that cannot load its KEK does not start (docs/vault.md, "Limits").
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.server import Admin, RunningServer
from tests.support.vault import VaultHttp, VaultUser, grant, new_user, new_vault, vault_token

MARKER = "S3cr3t-vAlue-7f1c2e9b"  # a value that must never show up outside an explicit read


@dataclass
class World:
    vault: str
    other_vault: str
    owner: VaultUser
    owner_token: str
    stranger_token: str


@pytest.fixture(scope="module")
def world(server: RunningServer) -> Iterator[World]:
    with Admin(server) as admin:
        vault, other = new_vault(admin, purge_protection=True, retention_days=7), new_vault(admin)
        owner = new_user(admin, vault, ("Secrets.Officer", "Secrets.Purge"))
        grant(admin, other, owner, ("Secrets.Officer",))
        stranger = new_user(admin)
        w = World(vault, other, owner, vault_token(server, owner), vault_token(server, stranger))
    with VaultHttp(server, vault, w.owner_token) as kv:
        assert kv.request("PUT", "/secrets/known", json={"value": MARKER}).status_code == 200
    with VaultHttp(server, other, w.owner_token) as kv:
        assert kv.request("PUT", "/secrets/elsewhere", json={"value": "other"}).status_code == 200
    yield w


def raw_request(server: RunningServer, host: str, request_line: str, headers: str = "", body: bytes = b"",
                *, read_body: bool = True) -> tuple[int, bytes]:
    """Exact bytes on the wire (httpx would normalise the path), over TLS with SNI."""
    context = ssl.create_default_context(cafile=server.ca)
    with socket.create_connection(("127.0.0.1", server.vault_port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=host.split(":")[0]) as tls:
        tls.sendall(f"{request_line} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{headers}\r\n".encode()
                    + body)
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
            if not read_body and b"\r\n\r\n" in data:
                break
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), rest


def host_of(server: RunningServer, vault: str) -> str:
    return f"{vault}.vault.localhost:{server.vault_port}"


@pytest.mark.parametrize("segment", ["..%2Fx", "%2e%2e", "..%5Cx", "%EF%BC%8E%EF%BC%8E%EF%BC%8Fx", "a%00b",
                                     "%C0%AE%C0%AE", "a%2Fb", "a%20b", "x" * 128, "%25"])
def test_g01_traversal_and_malformed_names_are_400(server: RunningServer, world: World, segment: str) -> None:
    auth = f"Authorization: Bearer {world.owner_token}\r\n"
    status, body = raw_request(server, host_of(server, world.vault), f"GET /secrets/{segment}?api-version=7.6",
                               auth)
    assert status == 400, body
    assert b"BadParameter" in body


def test_g01_a_traversal_in_the_version_segment_finds_nothing(server: RunningServer, world: World) -> None:
    auth = f"Authorization: Bearer {world.owner_token}\r\n"
    status, _ = raw_request(server, host_of(server, world.vault), "GET /secrets/known/..%2F..%2Fx?api-version=7.6",
                            auth)
    assert status == 404


def test_g03_declared_huge_body_is_refused_before_it_is_sent(server: RunningServer, world: World) -> None:
    auth = f"Authorization: Bearer {world.owner_token}\r\n"
    started = time.monotonic()
    status, body = raw_request(server, host_of(server, world.vault), "PUT /secrets/big?api-version=7.6",
                               auth + "Content-Type: application/json\r\nContent-Length: 10485760\r\n")
    assert status == 413 and b"RequestTooLarge" in body
    assert time.monotonic() - started < 5


def _kernel_can_hold() -> int:
    """The most a loopback TCP connection can hold in kernel buffers with neither end reading: the
    sender's largest send buffer and the receiver's largest receive buffer (`tcp_wmem`, `tcp_rmem`).
    A client can write that much and more before it sees an answer, whatever the server read; on a
    24 GiB guest `tcp_rmem` alone allows 32 MiB, so a fixed 10 MiB bound failed a CI run."""
    def largest(name: str) -> int:
        return int(Path(f"/proc/sys/net/ipv4/{name}").read_text().split()[-1])
    return largest("tcp_rmem") + largest("tcp_wmem")


def test_g03_streamed_body_without_length_is_cut_off(server: RunningServer, world: World) -> None:
    """A chunked body with no end: the server answers 413 mid-stream and stops reading. The stream
    never ends (no last chunk is sent), so any answer came before it; the client writes at most what
    the kernel can buffer plus 8 MiB, so a server that kept reading would leave it at that bound."""
    bound = _kernel_can_hold() + 8 * 1024 * 1024
    context = ssl.create_default_context(cafile=server.ca)
    host = host_of(server, world.vault)
    with socket.create_connection(("127.0.0.1", server.vault_port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=host.split(":")[0]) as tls:
        tls.sendall(f"PUT /secrets/big?api-version=7.6 HTTP/1.1\r\nHost: {host}\r\n"
                    f"Authorization: Bearer {world.owner_token}\r\nTransfer-Encoding: chunked\r\n"
                    "Content-Type: application/json\r\n\r\n".encode())
        chunk = b"x" * 16384
        sent = 0
        response = b""
        try:
            while sent < bound and b"\r\n\r\n" not in response:
                tls.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
                tls.setblocking(False)
                try:
                    response += tls.recv(65536)
                except ssl.SSLWantReadError:
                    pass
                finally:
                    tls.setblocking(True)
        except (BrokenPipeError, ConnectionResetError):
            pass
        tls.settimeout(10)
        while b"\r\n\r\n" not in response:
            more = tls.recv(65536)
            if not more:
                break
            response += more
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    # Answered mid-stream and stopped reading at the cap: the client was cut off (or saw the answer)
    # before it could write more than the kernel's buffers hold.
    assert sent < bound


def test_g03_value_over_25_kib_is_413(server: RunningServer, world: World) -> None:
    with VaultHttp(server, world.vault, world.owner_token) as kv:
        resp = kv.request("PUT", "/secrets/big", json={"value": "x" * (25 * 1024 + 1)})
        assert resp.status_code == 413 and resp.json()["error"]["code"] == "RequestTooLarge"
        assert kv.request("GET", "/secrets/big/").status_code == 404


def test_g04_another_vaults_or_ungranted_secret_is_indistinguishable_from_none(server: RunningServer,
                                                                             world: World) -> None:
    with VaultHttp(server, world.vault, world.stranger_token) as kv:
        existing = kv.request("GET", "/secrets/known/")
        missing = kv.request("GET", "/secrets/never-was/")
    assert existing.status_code == missing.status_code == 404
    assert existing.json()["error"]["code"] == missing.json()["error"]["code"] == "SecretNotFound"
    assert existing.headers.keys() == missing.headers.keys()
    with VaultHttp(server, world.vault, world.owner_token) as kv:  # the owner's secret of the other vault
        assert kv.request("GET", "/secrets/elsewhere/").status_code == 404
    with VaultHttp(server, world.vault, world.stranger_token) as kv:
        assert kv.request("GET", "/secrets").status_code == 403  # no grant at all: no listing


def test_g05_deleted_versions_and_foreign_version_ids_are_404_and_cas_conflicts_412(server: RunningServer,
                                                                                    world: World) -> None:
    with VaultHttp(server, world.vault, world.owner_token) as kv:
        one = kv.request("PUT", "/secrets/g05", json={"value": "1"}).json()["id"].rsplit("/", 1)[1]
        known = kv.request("GET", "/secrets/known/").json()["id"].rsplit("/", 1)[1]
        assert kv.request("GET", f"/secrets/g05/{known}").status_code == 404
        two = kv.request("PUT", "/secrets/g05", json={"value": "2"}, headers={"If-Match": one})
        assert two.status_code == 200
        stale = kv.request("PUT", "/secrets/g05", json={"value": "3"}, headers={"If-Match": one})
        assert stale.status_code == 412 and stale.json()["error"]["code"] == "PreconditionFailed"
        assert kv.request("DELETE", "/secrets/g05").status_code == 200
        assert kv.request("GET", f"/secrets/g05/{one}").status_code == 404
        assert kv.request("POST", "/deletedsecrets/g05/recover").status_code == 200
        assert kv.request("GET", "/secrets/g05/").json()["value"] == "2"


def test_g06_purge_refused_under_purge_protection_and_recover_works(server: RunningServer, world: World) -> None:
    with VaultHttp(server, world.vault, world.owner_token) as kv:
        kv.request("PUT", "/secrets/g06", json={"value": "x"})
        deleted = kv.request("DELETE", "/secrets/g06").json()
        assert deleted["scheduledPurgeDate"] - deleted["deletedDate"] == 7 * 86400
        assert deleted["attributes"]["recoveryLevel"] == "Recoverable"
        purge = kv.request("DELETE", "/deletedsecrets/g06")
        assert purge.status_code == 403 and purge.json()["error"]["code"] == "Forbidden"
        assert kv.request("GET", "/deletedsecrets/g06").status_code == 200
        assert kv.request("POST", "/deletedsecrets/g06/recover").status_code == 200


def test_g07_values_appear_only_in_explicit_reads(server: RunningServer, world: World) -> None:
    with Admin(server) as admin:
        with VaultHttp(server, world.vault, world.owner_token) as kv:
            bodies = [kv.request("GET", "/secrets").text, kv.request("GET", "/secrets/known/versions").text,
                      kv.request("PATCH", "/secrets/known/", json={"tags": {"t": "1"}}).text,
                      kv.request("GET", "/secrets/known/0123").text,
                      kv.request("PUT", "/secrets/known", json={"value": 1}).text]
            assert kv.request("GET", "/secrets/known/").json()["value"] == MARKER
        time.sleep(1.0)  # the batched audit writer flushes every 0.5 s
        audit = str(admin.api.call("GET", "/logs/audit", params={"limit": 1000}))
        with server.http() as http:
            metrics = http.get(f"{server.url}/metrics").text
    assert 'keyless_vault_requests_total{operation="get",status="200"}' in metrics
    # The secret's name never becomes a label (route labels are templates, such as `/.well-known/…`).
    assert MARKER not in metrics and "known" not in metrics.replace(".well-known", "")
    assert all(MARKER not in b for b in bodies)
    assert MARKER not in audit and "vault.secret.get" in audit
    assert MARKER not in server.logs()
    if server.database_url is None:  # SQLite: the whole database file holds no plaintext value
        for path in server.data_dir.glob("keyless.db*"):
            assert MARKER.encode() not in path.read_bytes()


def test_g08_grants_match_exact_names_on_every_path_form(server: RunningServer, world: World) -> None:
    with Admin(server) as admin:
        narrow = new_user(admin, world.vault, ("Secrets.Get", "Secrets.List"), secret="app")
        token = vault_token(server, narrow)
    with VaultHttp(server, world.vault, world.owner_token) as kv:
        for name in ("app", "app-admin", "appx"):
            assert kv.request("PUT", f"/secrets/{name}", json={"value": name}).status_code == 200
    with VaultHttp(server, world.vault, token) as kv:
        assert kv.request("GET", "/secrets/app").json()["value"] == "app"
        assert kv.request("GET", "/secrets/app/").json()["value"] == "app"
        assert kv.request("GET", "/secrets/APP/").json()["value"] == "app"
        for path in ("/secrets/app-admin", "/secrets/app-admin/", "/secrets/appx/", "/secrets/app-admin/versions"):
            assert kv.request("GET", path).status_code == 404, path
        listed = [i["id"].rsplit("/", 1)[1] for i in kv.request("GET", "/secrets").json()["value"]]
        assert listed == ["app"]
        assert kv.request("PUT", "/secrets/app", json={"value": "no"}).status_code == 403


@pytest.mark.parametrize("path", ["/secrets", "/secrets/known/", "/secrets/known/versions", "/deletedsecrets",
                                  "/secrets/nothing-here/"])
def test_g11_reads_and_errors_are_not_cacheable(server: RunningServer, world: World, path: str) -> None:
    with VaultHttp(server, world.vault, world.owner_token) as kv:
        resp = kv.request("GET", path)
    assert resp.headers["cache-control"] == "no-store"
