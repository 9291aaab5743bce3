"""`keyless credentials list` and `GET /credentials` against a real server (docs/cli.md, "Credential
inventory"): every kind and owner, last use with its source address recorded off the token path,
the filters, and never a secret value (catalog O14)."""

from __future__ import annotations

import time

import httpx

from tests.integration.server.conftest import client_for, secret_post, token_request
from tests.support.server import Admin, RunningServer


def test_inventory_shows_last_use_and_source_and_filters(server: RunningServer) -> None:
    with Admin(server) as admin:
        api_uri = f"api://inv-{time.time_ns()}"
        admin.app(f"inv-api-{time.time_ns()}", identifier_uri=api_uri, open_to_tenant=True)
        app = admin.app(f"inv-worker-{time.time_ns()}")
        used = admin.secret(app["client_id"], expires_in=2 * 86400)
        idle = admin.secret(app["client_id"], expires_in=300 * 86400)
    with client_for(server) as http:
        resp: httpx.Response = token_request(http, server, secret_post(app["client_id"], used["secret"],
                                                                        f"{api_uri}/.default"))
        assert resp.status_code == 200, resp.text
    deadline = time.monotonic() + 10
    while True:  # the sign-in log's batch lands within its flush interval
        mine = {c["id"]: c for c in server.cli_json("credentials", "list", "--owner", app["client_id"])}
        if mine[used["id"]]["last_used_at"] is not None or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert set(mine) == {used["id"], idle["id"]}
    row = mine[used["id"]]
    assert (row["kind"], row["owner_kind"], row["owner_id"], row["state"], row["label"]) == (
        "secret", "application", app["client_id"], "active", used["hint"])
    assert row["owner_name"] == app["display_name"] and row["last_used_from"] == "127.0.0.1"
    assert mine[idle["id"]]["last_used_at"] is None

    expiring = server.cli_json("credentials", "list", "--expiring", "30d", "--kind", "secret",
                               "--owner", app["client_id"])
    assert [c["id"] for c in expiring] == [used["id"]]
    assert server.cli_json("credentials", "list", "--unused", "90d", "--owner", app["client_id"]) == []
    assert server.cli_json("credentials", "list", "--kind", "federated", "--owner", app["client_id"]) == []
    every = server.cli("credentials", "list", "-o", "json").stdout + server.cli("credentials", "list").stdout
    assert used["secret"] not in every and idle["secret"] not in every
