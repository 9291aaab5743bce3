"""Catalog M: logging. M01 no credential or token reaches a log; M04 a 500 is generic JSON with a
correlation id; M05 token issuance leaves a sign-in record without credentials.

M04 cannot be triggered on purpose on the real server (every known bad input has a 4xx), so the
`ErrorShield` middleware is tested in process with an application that raises, and the real server is
checked for never answering 5xx to hostile input.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import sys
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from keyless.jsonlog import JsonFormatter, redact
from keyless.server.app import ErrorShield
from tests.security.support import SecWorld, basic, jwt_claims

pytestmark = pytest.mark.filterwarnings("ignore:`verify=<str>` is deprecated:DeprecationWarning")

SECRET_SHAPE = re.compile(r"kls_[0-9A-Za-z]{20,}")
JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+")
FORM_HEADER = {"content-type": "application/x-www-form-urlencoded"}
CANARY = "kls_" + "C4n4ry" * 8 + "X"  # secret-shaped, never issued


def assert_clean(text: str, secrets: list[str], tokens: list[str]) -> None:
    for secret in secrets:
        assert secret not in text
        assert secret[4:] not in text  # not even without the prefix
    for token in tokens:
        assert token not in text
        assert token.split(".")[2] not in text  # nor its signature
    assert SECRET_SHAPE.findall(text) == []
    assert JWT_SHAPE.findall(text) == []


# -- M01 on the real server -----------------------------------------------------------------------------

def test_m01_no_secrets_in_logs(world: SecWorld) -> None:
    client_id, secret = world.new_client()  # a secret created through the management API
    good = world.form(client_id=client_id, client_secret=secret)
    assert world.token(good).status_code == 200
    assert world.token({"grant_type": "client_credentials", "scope": world.scope},
                       headers={"authorization": basic(client_id, secret)}).status_code == 200
    wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    assert world.token(world.form(client_id=client_id, client_secret=wrong)).status_code == 401
    assert world.token(world.form(client_id=client_id, client_secret=CANARY)).status_code == 401
    # Secrets in a URL, in a refused body, in the wrong header, twice, or as an assertion.
    assert world.raw("GET", params=good).status_code == 405
    assert world.raw("POST", params={"client_secret": secret}, data=good).status_code == 400
    assert world.raw("POST", json=good).status_code == 400
    assert world.token(good, headers={"authorization": f"Bearer {secret}"}).status_code == 400
    access = world.tokens_seen[-1]
    assert world.token(world.form(client_secret=None, client_assertion=access,
                                  client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
                       ).status_code == 401
    dup = f"client_secret={secret}&client_secret={secret}&grant_type=client_credentials"
    assert world.raw("POST", content=dup.encode(),
                     headers={"content-type": "application/x-www-form-urlencoded"}).status_code == 400
    # Tokens at the management API: a valid admin token, and an access token for another audience.
    assert world.manage("GET", "/applications").status_code == 200
    assert world.manage("GET", "/applications", token=access).status_code == 401
    assert world.http.get(f"{world.server.url}/{world.server.tenant_id}/manage/v1/keys",
                          params={"access_token": access}).status_code == 401
    logs = world.server.logs()
    assert "token request refused" in logs  # the log did record these requests
    assert_clean(logs, [secret, wrong, CANARY, world.secret, world.ungranted_secret, *world.secrets_seen],
                 [*world.tokens_seen, world.admin.api.token()])


def test_m01_signin_and_audit_logs_hold_no_credentials(world: SecWorld) -> None:
    client_id, secret = world.new_client()
    ok = world.token(world.form(client_id=client_id, client_secret=secret))
    world.token(world.form(client_id=client_id, client_secret=CANARY))
    signins = world.manage("GET", "/logs/signins", params={"client_id": client_id})
    audit = world.manage("GET", "/logs/audit", params={"limit": 1000})
    assert signins.status_code == audit.status_code == 200
    assert len(signins.json()) == 2
    secrets_listed = world.manage("GET", f"/applications/{client_id}/secrets")
    assert secrets_listed.status_code == 200 and secrets_listed.json()[0]["hint"] == secret[4:7]
    for text in (signins.text, audit.text, secrets_listed.text):
        assert_clean(text, [secret, CANARY], [ok.json()["access_token"]])


# -- M01 redaction filter ----------------------------------------------------------------------------------

def test_m01_redact() -> None:
    secret = "kls_" + "a1B2c3" * 8 + "Z"
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXZhbHVl"
    assert redact(secret) == "[redacted-secret]"
    assert redact(f"client_secret={secret}&x=1") == "client_secret=[redacted-secret]&x=1"
    assert redact(f"Authorization: Bearer {jwt}") == "Authorization: Bearer [redacted-jwt]"
    assert redact(f'{{"a": "{secret}", "b": ["{jwt}"]}}') == '{"a": "[redacted-secret]", "b": ["[redacted-jwt]"]}'
    assert redact("kls_" + "x" * 20) == "[redacted-secret]"
    assert redact("kls_short") == "kls_short"  # below 20 characters: not a secret shape
    assert redact("plain text, no secrets") == "plain text, no secrets"


def test_m01_redact_basic_credentials() -> None:
    secret = "kls_" + "a1B2c3" * 8 + "Z"
    header = basic("11111111-2222-3333-4444-555555555555", secret)
    encoded = header.split(" ", 1)[1]
    assert secret in base64.b64decode(encoded).decode()
    assert encoded not in redact(f"authorization: {header}")


def _formatted(level: int, msg: str, *args: object, **kwargs: Any) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(f"keyless.test.m01.{id(stream)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        logger.log(level, msg, *args, **kwargs)
    finally:
        handler.close()
        logger.handlers.clear()
    return stream.getvalue()


@pytest.mark.parametrize("level", [logging.DEBUG, logging.INFO, logging.ERROR])
def test_m01_json_formatter_redacts_message_args_extra_and_traceback(level: int) -> None:
    secret = "kls_" + "Q9" * 24 + "Z"
    jwt = "eyJhbGciOiJFUzI1NiJ9.eyJhdWQiOiJhcGk6Ly94In0.AAAABBBBCCCCDDDD"
    try:
        raise ValueError(f"bad secret {secret} in {jwt}")
    except ValueError:
        exc_info = sys.exc_info()
    out = _formatted(level, "got %s and %s", secret, jwt,
                     extra={"client_secret": secret, "nested": {"token": jwt}}, exc_info=exc_info)
    entry = json.loads(out)
    assert entry["level"] == logging.getLevelName(level).lower()
    assert entry["msg"] == "got [redacted-secret] and [redacted-jwt]"
    assert entry["client_secret"] == "[redacted-secret]"
    assert "[redacted-secret]" in entry["exc"] and "[redacted-jwt]" in entry["exc"]
    assert secret not in out and jwt not in out and secret[4:] not in out


# -- M04 ----------------------------------------------------------------------------------------------

async def _boom(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("database password=hunter2 at /srv/keyless/db.py line 42 " + CANARY)


async def test_m04_500_is_generic(caplog: pytest.LogCaptureFixture) -> None:
    shield = ErrorShield(_boom)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=shield), base_url="https://t") as client:
        with caplog.at_level(logging.ERROR, logger="keyless.server"):
            resp = await client.post("/tenant/oauth2/v2.0/token", data={"client_secret": CANARY})
    assert resp.status_code == 500
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert set(body) == {"error", "error_description", "correlation_id"}
    assert (body["error"], body["error_description"]) == ("server_error", "internal error")
    assert re.fullmatch(r"[0-9a-f]{32}", body["correlation_id"])
    for leak in ("Traceback", "RuntimeError", "hunter2", "db.py", CANARY, "File "):
        assert leak not in resp.text
    # The traceback goes to the log, under the same correlation id.
    (record,) = [r for r in caplog.records if getattr(r, "event", None) == "server_error"]
    assert record.correlation_id == body["correlation_id"]  # type: ignore[attr-defined]
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
    assert CANARY not in JsonFormatter().format(record)  # and the log line is redacted


async def test_m04_correlation_ids_differ() -> None:
    shield = ErrorShield(_boom)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=shield), base_url="https://t") as client:
        ids = {(await client.get("/")).json()["correlation_id"] for _ in range(3)}
    assert len(ids) == 3


async def test_m04_error_after_response_started_is_not_answered_twice() -> None:
    sent: list[dict[str, Any]] = []

    async def half(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("mid-stream")

    async def record(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    with pytest.raises(RuntimeError, match="mid-stream"):
        await ErrorShield(half)({"type": "http", "method": "GET", "path": "/", "headers": []}, receive, record)
    assert [m["type"] for m in sent] == ["http.response.start"]


async def test_m04_non_http_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])
        raise RuntimeError("lifespan failure is not an HTTP answer")

    async def receive() -> Any:
        return {"type": "lifespan.startup"}

    async def send(message: Any) -> None:
        raise AssertionError("nothing may be sent")

    with pytest.raises(RuntimeError):
        await ErrorShield(app)({"type": "lifespan"}, receive, send)
    assert seen == ["lifespan"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", "TOKEN", {"content": b"\x00\xff\xfe" * 100, "headers": FORM_HEADER}),
        ("POST", "TOKEN", {"content": b"grant_type=%00%00", "headers": FORM_HEADER}),
        ("POST", "TOKEN", {"content": b"a=" + b"%" * 5000, "headers": FORM_HEADER}),
        ("POST", "TOKEN", {"headers": {"authorization": "Basic " + "A" * 4000}}),
        ("POST", "TOKEN", {"headers": {b"content-type": b"application/x-www-form-urlencoded; charset=\xff"}}),
        ("POST", "/%C0%AE%C0%AE/oauth2/v2.0/token", {"data": {"grant_type": "client_credentials"}}),
        ("POST", "/" + "a" * 2000 + "/oauth2/v2.0/token", {"data": {"grant_type": "client_credentials"}}),
        ("GET", "/TENANT/discovery/v2.0/keys?x=" + "%ff" * 100, {}),
        ("POST", "/TENANT/manage/v1/applications", {"content": b"{not json", "headers": {"authorization": "Bearer x"}}),
        ("GET", "/TENANT/manage/v1/applications", {"headers": {"authorization": "Bearer " + "e" * 9000}}),
    ],
    ids=["binary-body", "nul-values", "bare-percents", "long-basic", "latin1-header", "overlong-utf8-tenant",
         "long-tenant", "bad-query", "bad-json", "long-bearer"],
)
def test_m04_hostile_input_never_500(world: SecWorld, method: str, path: str, kwargs: dict[str, Any]) -> None:
    url = world.server.token_endpoint if path == "TOKEN" else world.server.url + path.replace(
        "TENANT", world.server.tenant_id)
    resp = world.raw(method, url, **kwargs)
    assert resp.status_code < 500, (resp.status_code, resp.text[:200])
    assert "Traceback" not in resp.text and 'File "' not in resp.text


# -- M05 ----------------------------------------------------------------------------------------------

def test_m05_signin_record_for_issuance(world: SecWorld) -> None:
    client_id, secret = world.new_client()
    ok = world.token(world.form(client_id=client_id, client_secret=secret))
    bad = world.token(world.form(client_id=client_id, client_secret=CANARY))
    assert (ok.status_code, bad.status_code) == (200, 401)
    jti = jwt_claims(ok.json()["access_token"])["jti"]
    events = world.manage("GET", "/logs/signins", params={"client_id": client_id}).json()
    failure, success = events  # newest first
    secret_id = world.manage("GET", f"/applications/{client_id}/secrets").json()[0]["id"]
    assert success["result"] == "success" and success["error"] is None and success["detail"] is None
    assert (success["client_id"], success["source"], success["resource"]) == (client_id, "127.0.0.1",
                                                                              world.resource_uri)
    assert (success["credential_type"], success["credential_id"]) == ("secret", secret_id)
    assert success["token_id"] == jti
    assert (failure["result"], failure["error"], failure["detail"]) == ("failure", "invalid_client", "wrong_secret")
    assert (failure["client_id"], failure["source"], failure["credential_id"], failure["token_id"]) == (
        client_id, "127.0.0.1", None, None)
    assert_clean(json.dumps(events), [secret, CANARY], [ok.json()["access_token"]])


def test_m05_signin_record_names_grant_and_auth_method(world: SecWorld) -> None:
    client_id, secret = world.new_client()
    assert world.token(world.form(client_id=client_id, client_secret=secret)).status_code == 200
    assert world.token({"grant_type": "client_credentials", "scope": world.scope},
                       headers={"authorization": basic(client_id, secret)}).status_code == 200
    basic_event, post_event = world.manage("GET", "/logs/signins", params={"client_id": client_id}).json()
    methods = {e.get("auth_method") or e.get("method") for e in (basic_event, post_event)}
    assert methods == {"client_secret_basic", "client_secret_post"}
    assert {e.get("grant_type") for e in (basic_event, post_event)} == {"client_credentials"}
