"""Hostile text never reaches a terminal or the wire raw (issue 11; docs/security.md, "Hostile text").

Parameter names and values holding terminal escapes, CR/LF (forged log rows), a bidi override and JSON
specials are sent to every surface: the token endpoint, the host agent (IMDS, App Service, identity
token), the vault port and the management API. Every error text that comes back stays within RFC 6749
§5.2's character set and reflects nothing raw; then `keyless log signins` / `keyless log audit` (table
and JSON) and the server's and agent's logs are checked for the raw characters.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.security.support import AUTH_FAILED, BASIC_CHALLENGE, SecWorld, assert_answer, invalid_request, sec_world
from tests.support.agent import RunningAgent, host_with_resource, start_agent, stop_agent
from tests.support.server import Admin, RunningServer
from tests.support.vault import VaultHttp, new_user, new_vault, vault_token

pytestmark = pytest.mark.filterwarnings("ignore:`verify=<str>` is deprecated:DeprecationWarning")

# Clear the screen, retitle the terminal, ring the bell, start a forged row, flip the text direction.
NAME = "\x1b[2J\x1b]0;PWN\x07\r\nFAKE ROW\u202e"
NAME_STORED = "?[2J?]0;PWN???FAKE ROW?"  # what the sign-in log may hold of it
RAW = ("\x1b", "\r", "\x07", "\x00", "\u202e")
ALLOWED = {chr(c) for c in [0x20, 0x21, *range(0x23, 0x5C), *range(0x5D, 0x7F)]}
Q = quote(NAME, safe="")


def in_charset(value: str) -> bool:
    return set(value) <= ALLOWED


def texts(value: Any) -> Iterator[str]:
    """Every string (keys too) of a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from texts(v)
    elif isinstance(value, list):
        for v in value:
            yield from texts(v)


def assert_nothing_raw(resp: httpx.Response) -> None:
    """No raw hostile character anywhere in the answer, and no reflection of the marker text."""
    for c in RAW:
        assert c not in resp.text
    assert "PWN" not in resp.text, resp.text


def assert_oauth_error(resp: httpx.Response, status: int, body: dict[str, str]) -> None:
    assert resp.status_code == status, resp.text
    assert resp.json() == body
    assert in_charset(resp.json().get("error_description", ""))
    assert_nothing_raw(resp)


@pytest.fixture(scope="module")
def world(sqlite_server: RunningServer) -> Iterator[SecWorld]:
    with sec_world(sqlite_server) as w:
        yield w


@pytest.fixture(scope="module")
def agent(sqlite_server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAgent]:
    host, _ = host_with_resource(sqlite_server)
    running = start_agent(sqlite_server, tmp_path_factory.mktemp("hostile-agent"), join_token=host["join_token"],
                          host=host)
    try:
        yield running
    finally:
        stop_agent(running)


def post_form(w: SecWorld, body: str, **kwargs: Any) -> httpx.Response:
    return w.http.post(w.server.token_endpoint, content=body.encode("ascii"),
                       headers={"Content-Type": "application/x-www-form-urlencoded", **kwargs.pop("headers", {})},
                       **kwargs)


def form_text(w: SecWorld, **params: str) -> str:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in w.form(**params).items())


def test_token_endpoint_never_reflects_hostile_names_or_values(world: SecWorld) -> None:
    w = world
    repeated = post_form(w, form_text(w) + f"&{Q}=1&{Q}=2")
    assert_oauth_error(repeated, 400, invalid_request("parameter repeated"))
    too_long = post_form(w, form_text(w) + f"&{Q}=" + "x" * 2000)
    assert_oauth_error(too_long, 400, invalid_request("parameter too long"))
    wrong = post_form(w, form_text(w, client_id=NAME, client_secret="kls_wrong"))
    assert_oauth_error(wrong, 401, AUTH_FAILED)
    grant = post_form(w, form_text(w, grant_type=NAME))
    assert_oauth_error(grant, 400, {"error": "unsupported_grant_type",
                                    "error_description": "only grant_type=client_credentials is supported"})
    scope = post_form(w, form_text(w, scope=NAME))
    assert scope.status_code == 400 and in_charset(scope.json()["error_description"])
    assert_nothing_raw(scope)
    raw_basic = base64.b64encode(f"{Q}:kls_wrong".encode()).decode()
    basic = w.http.post(w.server.token_endpoint, headers={"Authorization": f"Basic {raw_basic}"},
                        data={"grant_type": "client_credentials", "scope": w.scope})
    assert_answer(basic, 401, AUTH_FAILED, challenge=True)
    assert basic.headers["www-authenticate"] == BASIC_CHALLENGE
    assert_nothing_raw(basic)


def test_agent_never_reflects_hostile_names_or_values(agent: RunningAgent) -> None:
    imds = f"{agent.url}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=api://x"
    meta = {"Metadata": "true"}
    cases: list[tuple[httpx.Response, int, dict[str, str]]] = [
        (httpx.get(f"{imds}&{Q}=1&{Q}=2", headers=meta, timeout=10), 400,
         {"error": "invalid_request", "error_description": "a parameter is repeated"}),
        (httpx.get(f"{agent.url}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={Q}",
                   headers=meta, timeout=10), 400,
         {"error": "invalid_resource", "error_description": "the resource must be a URI or an application id"}),
        (httpx.get(f"{imds}&client_id={Q}", headers=meta, timeout=10), 400,
         {"error": "invalid_request", "error_description": "Identity not found"}),
        (httpx.get(f"{agent.url}/metadata/identity/oauth2/token?api-version={Q}&resource=api://x",
                   headers=meta, timeout=10), 400,
         {"error": "invalid_request", "error_description": "the api-version is not supported"}),
        (httpx.get(f"{agent.url}/metadata/identity/oauth2/identitytoken?api-version=2018-02-01&audience={Q}",
                   headers=meta, timeout=10), 400,
         {"error": "invalid_audience", "error_description": "the audience must be a URI or an application id"}),
        (httpx.get(f"{agent.url}/msi/token?api-version=2019-08-01&resource=api://x",
                   headers={"X-IDENTITY-HEADER": quote(NAME)}, timeout=10), 401,
         {"error": "unauthorized", "error_description": "X-IDENTITY-HEADER is missing or wrong"}),
        (httpx.get(f"{agent.url}/msi/token?api-version=2019-08-01&resource=api://x&{Q}=1&{Q}=1",
                   headers={"X-IDENTITY-HEADER": agent.identity_header()}, timeout=10), 400,
         {"error": "invalid_request", "error_description": "a parameter is repeated"}),
        (httpx.get(f"{agent.url}/{Q}", headers=meta, timeout=10), 404,
         {"error": "not_found", "error_description": "no such endpoint"}),
    ]
    for resp, status, body in cases:
        assert_oauth_error(resp, status, body)


def test_vault_port_never_reflects_hostile_names_or_values(sqlite_server: RunningServer) -> None:
    with Admin(sqlite_server) as admin:
        vault = new_vault(admin)
        user = new_user(admin, vault)
    with VaultHttp(sqlite_server, vault, vault_token(sqlite_server, user)) as v:
        answers = [
            v.request("GET", f"/secrets/{Q}"),
            v.request("PUT", f"/secrets/{Q}", json={"value": "x"}),
            v.request("GET", "/secrets/ok", api=f"api-version={Q}"),
            v.request("PUT", "/secrets/ok", json={"value": "x", "contentType": NAME}),
            v.request("PUT", "/secrets/ok", json={"value": "x", "tags": {NAME: NAME}}),
        ]
        ignored = v.request("PUT", "/secrets/ok", json={"value": "x", NAME: 1})  # an unknown member: ignored
    assert ignored.status_code == 200
    assert_nothing_raw(ignored)
    for resp in answers:
        assert 400 <= resp.status_code < 500, resp.text
        message = resp.json()["error"]["message"]
        assert in_charset(message), message
        assert_nothing_raw(resp)
    assert answers[3].json() == {"error": {"code": "BadParameter", "message":
                                           "contentType must be printable text of at most 255 characters"}}
    assert answers[4].json() == {"error": {"code": "BadParameter",
                                           "message": "tag names and values must be printable text"}}


def test_management_api_problems_never_carry_raw_text(world: SecWorld) -> None:
    w = world
    bad_name = w.manage("POST", "/applications", json={"display_name": NAME})
    assert bad_name.status_code == 400
    assert bad_name.json() == {"type": "urn:keyless:problem:invalid_display_name", "title": "Invalid request",
                               "status": 400, "detail": "display name must be 1-256 printable characters",
                               "code": "invalid_display_name"}
    assert_nothing_raw(bad_name)
    bad_key = w.manage("POST", "/applications", json={"display_name": "ok", NAME: 1})
    assert bad_key.status_code == 400
    body = bad_key.json()
    assert body["code"] == "validation_failed"
    assert all(in_charset(t) for t in texts(body)), body  # the caller's key is named, sanitised
    assert ["body", "?[2J?]0;PWN???FAKE ROW?"] in [e["loc"] for e in body["errors"]]
    for c in RAW:
        assert c not in bad_key.text
    unknown = w.manage("GET", f"/applications/{Q}")
    assert unknown.status_code == 404 and all(in_charset(t) for t in texts(unknown.json()))
    assert_nothing_raw(unknown)


def assert_terminal_safe(output: str) -> None:
    for c in output:
        assert c in "\n" or (c >= " " and c != "\x7f" and c.isprintable()), repr(c)


def test_logs_and_cli_show_no_raw_control_characters(world: SecWorld, sqlite_server: RunningServer,
                                                      agent: RunningAgent) -> None:
    """Runs after the tests above (file order): what they sent is in the logs now."""
    w = world
    post_form(w, form_text(w) + f"&{Q}=1&{Q}=2")
    post_form(w, form_text(w, client_id=NAME, client_secret="kls_wrong"))
    rows = sqlite_server.cli_json("log", "signins", "--result", "failure", "--limit", "1000")
    details = {r["detail"] for r in rows}
    assert f"duplicate_parameter:{NAME_STORED}" in details
    assert NAME_STORED in {r["client_id"] for r in rows}
    for row in rows:
        assert all(c.isprintable() for t in texts(row) for c in t), row
    for args in (("log", "signins", "--limit", "1000"), ("log", "audit", "--limit", "1000")):
        assert_terminal_safe(sqlite_server.cli(*args).stdout)
    for log in (sqlite_server.logs(), agent.logs()):
        for c in RAW:
            assert c not in log
