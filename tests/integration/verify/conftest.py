"""A resource with two roles on the shared SQLite server, and clients holding one role each."""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.server import Admin, RunningServer


@dataclass
class World:
    server: RunningServer
    audience: str
    reader: str  # a token holding Orders.Read
    writer: str  # a token holding Orders.Write only


def fetch_token(server: RunningServer, client_id: str, secret: str, scope: str) -> str:
    with httpx.Client(verify=ssl.create_default_context(cafile=server.ca), timeout=10) as http:
        resp = http.post(server.token_endpoint, data={"grant_type": "client_credentials", "client_id": client_id,
                                                      "client_secret": secret, "scope": scope})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


def client_token(admin: Admin, audience: str, role: str) -> str:
    client = admin.app(f"client-{uuid.uuid4().hex[:6]}")
    secret = admin.secret(client["client_id"])["secret"]
    admin.grant(client["client_id"], audience, role)
    return fetch_token(admin.server, client["client_id"], secret, f"{audience}/.default")


@pytest.fixture(scope="module")
def world(sqlite_server: RunningServer) -> Iterator[World]:
    audience = f"api://orders-{uuid.uuid4().hex[:8]}"
    with Admin(sqlite_server) as admin:
        admin.app(f"orders-{uuid.uuid4().hex[:6]}", identifier_uri=audience, roles=("Orders.Read", "Orders.Write"))
        reader = client_token(admin, audience, "Orders.Read")
        writer = client_token(admin, audience, "Orders.Write")
    yield World(server=sqlite_server, audience=audience, reader=reader, writer=writer)
