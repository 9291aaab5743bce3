"""Applications registered on the real server for the client SDK tests."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from keyless.crypto.client_keys import generate_client_key, private_key_pem, self_signed_certificate
from tests.support.server import Admin, RunningServer


@dataclass
class App:
    server: RunningServer
    client_id: str
    resource: str  # the resource's identifier URI; scope = resource + "/.default"
    secret: str | None = None
    certificate: Path | None = None
    key: Path | None = None

    @property
    def scope(self) -> str:
        return f"{self.resource}/.default"


def secret_app(srv: RunningServer) -> App:
    uri = f"api://sdk-{uuid.uuid4().hex[:8]}"
    with Admin(srv) as admin:
        client, secret = admin.client_with_role(uri)
    return App(srv, client["client_id"], uri, secret=secret)


def certificate_app(srv: RunningServer, tmp: Path, *, kind: str = "rsa2048") -> App:
    uri = f"api://sdk-{uuid.uuid4().hex[:8]}"
    key = generate_client_key(kind)  # type: ignore[arg-type]
    cert = self_signed_certificate(key, "sdk-worker", now=time.time())
    with Admin(srv) as admin:
        admin.app(f"res-{uuid.uuid4().hex[:6]}", identifier_uri=uri, roles=("Data.Read",))
        client = admin.app(f"sdk-{uuid.uuid4().hex[:6]}")
        admin.grant(client["client_id"], uri, "Data.Read")
        admin.api.call("POST", f"/applications/{client['client_id']}/certificates",
                       json_body={"certificate": cert.decode()})
    cert_path, key_path = tmp / "worker.pem", tmp / "worker.key"
    cert_path.write_bytes(cert)
    key_path.write_bytes(private_key_pem(key))
    key_path.chmod(0o600)
    return App(srv, client["client_id"], uri, certificate=cert_path, key=key_path)


def reader_app(srv: RunningServer) -> App:
    """A client with Keyless.Reader on the management API: its tokens can read the tenant's settings."""
    with Admin(srv) as admin:
        client = admin.app(f"sdk-reader-{uuid.uuid4().hex[:6]}")
        secret = admin.secret(client["client_id"])["secret"]
        admin.grant(client["client_id"], "urn:keyless:management", "Keyless.Reader")
    return App(srv, client["client_id"], "urn:keyless:management", secret=secret)


@pytest.fixture
def secret_client(server: RunningServer) -> App:
    return secret_app(server)


@pytest.fixture
def cert_client(server: RunningServer, tmp_path: Path) -> App:
    return certificate_app(server, tmp_path)


@pytest.fixture
def reader(sqlite_server: RunningServer) -> App:
    return reader_app(sqlite_server)
