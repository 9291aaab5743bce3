"""The agent's authorization matrix (issue 20 item 4), generated from its route table
(`keyless.agent.endpoints.ACCESS`): for every endpoint, the request without its declared proof is
refused with the exact answer; for every endpoint that hands out tokens, each local user (the test's and a
throwaway second user, both over TCP, where the agent reads the caller's uid from the kernel) asking
for each kind of identity (default, uid-bound to root, assigned without binding, not assigned here)
gets a token exactly when the declaration says; and every endpoint cuts one user's flood off with 429
while another user is still served.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from keyless.agent.endpoints import (
    ACCESS,
    APP_SERVICE_PATH,
    IDENTITY_TOKEN_PATH,
    IMDS_PATH,
    PROOF_IDENTITY_HEADER,
    PROOF_METADATA,
    PROOF_NONE,
)
from tests.support.agent import RunningAgent, host_with_resource, start_agent, stop_agent, throwaway_user
from tests.support.server import Admin, RunningServer

RATE = 20  # per user per second, burst twice that
NOT_FOUND = {"error": "invalid_request", "error_description": "Identity not found"}
NO_PROOF = {
    PROOF_METADATA: (400, {"error": "invalid_request",
                           "error_description": "Required metadata header not specified"}),
    PROOF_IDENTITY_HEADER: (401, {"error": "unauthorized",
                                  "error_description": "X-IDENTITY-HEADER is missing or wrong"}),
}
AUDIENCE = "api://AzureADTokenExchange"


@pytest.fixture(scope="module")
def world(sqlite_server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    host, uri = host_with_resource(sqlite_server)
    identities: dict[str, dict[str, Any]] = {"system": host["system_identity"]}
    with Admin(sqlite_server) as admin:
        for label in ("bound", "unbound", "foreign"):
            identities[label] = dict(admin.api.call("POST", "/identities",
                                                    json_body={"name": f"m-{label}-{uuid.uuid4().hex[:6]}"}))
            admin.grant(identities[label]["client_id"], uri, "Orders.Read")
        for label in ("bound", "unbound"):
            admin.api.call("PUT", f"/identities/{identities[label]['client_id']}/hosts/{host['id']}")
        admin.api.call("POST", f"/identities/{identities['bound']['client_id']}/bindings",
                       json_body={"host": host["id"], "uid": os.getuid()})
        for identity in identities.values():
            admin.api.call("POST", f"/identities/{identity['client_id']}/identity-token-audiences",
                           json_body={"audience": AUDIENCE})
    agent = start_agent(sqlite_server, tmp_path_factory.mktemp("agent-matrix"), join_token=host["join_token"],
                        host=host, extra=("--rate", str(RATE)))
    try:
        yield {"agent": agent, "uri": uri, "identities": identities}
    finally:
        stop_agent(agent)


@pytest.fixture(scope="module")
def other_user() -> Iterator[str]:
    with throwaway_user() as name:
        yield name


def _request(world: dict[str, Any], path: str, *, proof: bool = True, **params: str) -> tuple[dict[str, str],
                                                                                              dict[str, str]]:
    """(query, headers) for a well-formed call of `path`."""
    agent: RunningAgent = world["agent"]
    declared = ACCESS[path][0]
    headers: dict[str, str] = {}
    if proof and declared == PROOF_METADATA:
        headers["Metadata"] = "true"
    if proof and declared == PROOF_IDENTITY_HEADER:
        headers["X-IDENTITY-HEADER"] = agent.identity_header()
    query: dict[str, str] = {}
    if path in (IMDS_PATH, IDENTITY_TOKEN_PATH):
        query["api-version"] = "2018-02-01"
    if path == APP_SERVICE_PATH:
        query["api-version"] = "2019-08-01"
    if path == IDENTITY_TOKEN_PATH:
        query["audience"] = AUDIENCE
    elif path in (IMDS_PATH, APP_SERVICE_PATH):
        query["resource"] = world["uri"]
    return {**query, **params}, headers


def _as_root(world: dict[str, Any], path: str, query: dict[str, str], headers: dict[str, str]) -> tuple[int, Any]:
    resp = httpx.get(world["agent"].url + path, params=query, headers=headers, timeout=10)
    return resp.status_code, resp.json() if "json" in resp.headers.get("content-type", "") else resp.text


def _as_user(user: str, world: dict[str, Any], path: str, query: dict[str, str], headers: dict[str, str]
             ) -> tuple[int, Any]:
    url = str(httpx.URL(world["agent"].url + path, params=query))
    args = ["/usr/bin/curl", "-s", "-w", "\n%{http_code}"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, timeout=30, user=user, cwd="/")
    body, _, code = out.stdout.rpartition("\n")
    return int(code), json.loads(body) if body.startswith("{") else body


@pytest.mark.parametrize("path", sorted(ACCESS))
def test_each_agent_endpoint_refuses_a_request_without_its_declared_proof(world: dict[str, Any], path: str) -> None:
    proof = ACCESS[path][0]
    query, headers = _request(world, path, proof=False)
    status, body = _as_root(world, path, query, headers)
    if proof == PROOF_NONE:
        assert status == 200, body
        return
    assert (status, body) == NO_PROOF[proof]
    if proof == PROOF_IDENTITY_HEADER:
        right = world["agent"].identity_header()
        wrong = {"X-IDENTITY-HEADER": right[:-1] + ("x" if right[-1] != "x" else "y")}
        assert _as_root(world, path, query, wrong) == NO_PROOF[proof]
    assert _as_root(world, path, *_request(world, path))[0] == 200


@pytest.mark.parametrize("path", sorted(p for p, (_, checked) in ACCESS.items() if checked))
def test_each_token_endpoint_hands_each_identity_only_to_the_users_it_may_serve(world: dict[str, Any],
                                                                                other_user: str, path: str) -> None:
    ids = world["identities"]
    for caller in ("root", other_user):  # "root": the test's own user, the one the binding names
        for label in ("default", "system", "bound", "unbound", "foreign"):
            params = {} if label == "default" else {"client_id": ids[label]["client_id"]}
            query, headers = _request(world, path, **params)
            status, body = (_as_root(world, path, query, headers) if caller == "root"
                            else _as_user(caller, world, path, query, headers))
            allowed = label in ("default", "system", "unbound") or (label == "bound" and caller == "root")
            what = f"{path} as {'root' if caller == 'root' else 'another user'} for {label}"
            if not allowed:
                assert (status, body) == (400, NOT_FOUND), what
                continue
            assert status == 200, f"{what}: {body}"
            expected = ids["system" if label == "default" else label]["client_id"]  # TCP default: system
            assert body["client_id"] == expected, what


@pytest.mark.parametrize("path", sorted(ACCESS))
def test_each_agent_endpoint_cuts_off_one_users_flood_but_serves_another(world: dict[str, Any], other_user: str,
                                                                          path: str) -> None:
    query, headers = _request(world, path)
    time.sleep(2.1)  # let earlier calls' buckets refill (burst 2 x RATE, at RATE per second)
    sent = 0
    with httpx.Client(timeout=10) as http:
        while sent < 10 * RATE:  # bounded: the burst is 2 x RATE
            sent += 1
            resp = http.get(world["agent"].url + path, params=query, headers=headers)
            if resp.status_code == 429:
                break
        assert resp.status_code == 429, f"{path}: no 429 after {sent} requests"
    assert sent > RATE, f"{path}: cut off after only {sent} requests"
    assert resp.json() == {"error": "too_many_requests", "error_description": "slow down"}
    assert int(resp.headers["retry-after"]) >= 1
    status, body = _as_user(other_user, world, path, query, headers)
    assert status == 200, f"{path}: another user was throttled too: {body}"
