"""`POST /leaks/github`: leak reports in GitHub's secret-scanning partner format against a real server
(catalog O07, O08): correctly signed reports revoke live secrets within a second (on SQLite, and on a
second replica on PostgreSQL) and answer true/false positive per token; badly signed, unknown-key,
unsigned and oversized reports are refused the same way, change nothing and never tell a live secret
from noise; a replayed report is answered the same and records nothing twice; replacing the key file
rotates the sender keys without a restart. The sender's ECDSA keys are made in the test."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from keyless.crypto.leak_reports import new_sender_key, sign_report
from keyless.crypto.secrets import new_client_secret
from tests.conftest import SHARED_ENV
from tests.support.server import Admin, RunningServer, replicas_on_postgres, start_server, stop_server

KEY_ID, OLD_KEY_ID = "a1" * 32, "b2" * 32
BOUND = 1.0
REFUSED = {"error": "invalid_signature", "error_description": "the report is not signed by a configured sender key"}


class Sender:
    """A code host: its current and previous keys, and the key document Keyless is configured with."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.private: dict[str, bytes] = {}
        public: dict[str, str] = {}
        for kid in (KEY_ID, OLD_KEY_ID):
            self.private[kid], public[kid] = new_sender_key()
        self.public = public
        self.publish(KEY_ID, OLD_KEY_ID)

    def publish(self, *kids: str) -> None:
        doc = {"public_keys": [{"key_identifier": k, "key": self.public[k], "is_current": k == KEY_ID} for k in kids]}
        self.path.write_text(json.dumps(doc))

    def headers(self, body: bytes, kid: str = KEY_ID) -> dict[str, str]:
        return {"Content-Type": "application/json", "Github-Public-Key-Identifier": kid,
                "Github-Public-Key-Signature": sign_report(self.private[kid], body)}


def report_body(*tokens: str, url: str = "https://github.example/o/r/blob/abc/deploy.env") -> bytes:
    return json.dumps([{"token": tok, "type": "keyless_client_secret", "url": url, "source": "content"}
                       for tok in tokens]).encode()


@pytest.fixture(scope="module")
def reporting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, Sender]]:
    tmp = tmp_path_factory.mktemp("leak-report")
    sender = Sender(tmp / "github-keys.json")
    server = start_server(tmp, env={**SHARED_ENV, "KEYLESS_LEAK_REPORT_KEYS": str(sender.path)})
    try:
        yield server, sender
    finally:
        stop_server(server)


def live_client(server: RunningServer) -> tuple[dict[str, Any], str, str]:
    uri = f"api://leak-{uuid.uuid4().hex[:8]}"
    with Admin(server) as admin:
        client, secret = admin.client_with_role(uri)
    return client, secret, f"{uri}/.default"


def token_status(http: httpx.Client, server: RunningServer, client: dict[str, Any], secret: str, scope: str) -> int:
    return http.post(server.token_endpoint, data={"grant_type": "client_credentials", "client_id": client["client_id"],
                                                  "client_secret": secret, "scope": scope}).status_code


def refused_within(http: httpx.Client, server: RunningServer, client: dict[str, Any], secret: str,
                   scope: str) -> float:
    since = time.monotonic()
    while token_status(http, server, client, secret, scope) == 200:
        assert time.monotonic() - since < 10, "the leaked secret still works after 10 s"
        time.sleep(0.02)
    return time.monotonic() - since


def leak_audits(server: RunningServer, client_id: str) -> list[dict[str, Any]]:
    with Admin(server) as admin:
        rows = admin.api.call("GET", "/logs/audit", params={"action": "secret.leaked", "client_id": None})
    return [r for r in rows if r["target_id"] == client_id]


def test_signed_report_revokes_within_a_second_and_answers_per_token(reporting: tuple[RunningServer, Sender]) -> None:
    server, sender = reporting
    client, secret, scope = live_client(server)
    noise = new_client_secret()[:-1] + "0"  # the prefix, but (almost surely) a wrong checksum
    stranger = new_client_secret()  # well-formed, never issued
    body = report_body(secret, noise, stranger)
    with server.http() as http:
        assert token_status(http, server, client, secret, scope) == 200
        resp = http.post(f"{server.url}/leaks/github", content=body, headers=sender.headers(body))
        assert resp.status_code == 200, resp.text
        assert refused_within(http, server, client, secret, scope) < BOUND
    assert resp.json() == [
        {"token_hash": hashlib.sha256(t.encode()).hexdigest(), "token_type": "keyless_client_secret", "label": label}
        for t, label in ((secret, "true_positive"), (noise, "false_positive"), (stranger, "false_positive"))
    ]
    assert secret not in resp.text
    audits = leak_audits(server, client["client_id"])
    assert len(audits) == 1
    details = audits[0]["details"]
    assert details["location"] == "https://github.example/o/r/blob/abc/deploy.env"
    assert details["reporter"] == f"github:{KEY_ID[:16]}" and details["source"] == "content"
    assert secret not in json.dumps(audits)
    with Admin(server) as admin:
        recorded = admin.api.call("GET", "/leaks", params={"client_id": client["client_id"]})
    assert [(r["revoked"], r["status_before"], r["reporter"]) for r in recorded] == [
        (True, "active", f"github:{KEY_ID[:16]}")]


def test_replayed_report_is_answered_the_same_and_records_nothing_twice(
    reporting: tuple[RunningServer, Sender],
) -> None:
    server, sender = reporting
    client, secret, _ = live_client(server)
    body = report_body(secret)
    headers = sender.headers(body)
    with server.http() as http:
        first = http.post(f"{server.url}/leaks/github", content=body, headers=headers)
        again = http.post(f"{server.url}/leaks/github", content=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() and first.json()[0]["label"] == "true_positive"
    assert len(leak_audits(server, client["client_id"])) == 1


@pytest.mark.parametrize("forgery", ["bad_signature", "unknown_key", "no_headers", "other_body", "garbage_signature"])
def test_unsigned_or_badly_signed_report_is_refused_alike_and_revokes_nothing(
    reporting: tuple[RunningServer, Sender], forgery: str,
) -> None:
    """O07 and O08: the same 401 for a live secret and for noise; nothing is looked up or revoked."""
    server, sender = reporting
    client, secret, scope = live_client(server)
    answers = []
    for token in (secret, new_client_secret()[:-1] + "0"):
        body = report_body(token)
        headers = sender.headers(body)
        if forgery == "bad_signature":
            headers["Github-Public-Key-Signature"] = sender.headers(body + b" ")["Github-Public-Key-Signature"]
        elif forgery == "unknown_key":
            headers["Github-Public-Key-Identifier"] = "c3" * 32
        elif forgery == "no_headers":
            headers = {"Content-Type": "application/json"}
        elif forgery == "other_body":
            body = report_body(token, url="https://github.example/elsewhere")
        else:
            headers["Github-Public-Key-Signature"] = "not base64 %%%"
        with server.http() as http:
            resp = http.post(f"{server.url}/leaks/github", content=body, headers=headers)
        answers.append((resp.status_code, resp.content, resp.headers.get("content-length")))
    assert answers[0] == answers[1]
    assert answers[0][0] == 401 and json.loads(answers[0][1]) == REFUSED
    with server.http() as http:
        assert token_status(http, server, client, secret, scope) == 200
    assert leak_audits(server, client["client_id"]) == []


def test_oversized_and_malformed_reports(reporting: tuple[RunningServer, Sender]) -> None:
    server, sender = reporting
    client, secret, scope = live_client(server)
    big = report_body(secret, url="https://github.example/" + "x" * (1024 * 1024))
    with server.http() as http:
        resp = http.post(f"{server.url}/leaks/github", content=big, headers=sender.headers(big))
        assert resp.status_code == 413
        for body in (b"{}", b"[]", b"not json", json.dumps([{"token": 1}]).encode()):
            resp = http.post(f"{server.url}/leaks/github", content=body, headers=sender.headers(body))
            assert resp.status_code == 400, body
            assert resp.json()["error"] == "invalid_request"
        assert token_status(http, server, client, secret, scope) == 200


def test_key_rotation_by_replacing_the_key_file(reporting: tuple[RunningServer, Sender]) -> None:
    server, sender = reporting
    _, secret, _ = live_client(server)
    body = report_body(new_client_secret())
    with server.http() as http:
        assert http.post(f"{server.url}/leaks/github", content=body,
                         headers=sender.headers(body, OLD_KEY_ID)).status_code == 200  # overlap: both keys
        try:
            sender.publish(KEY_ID)  # the previous key retired
            time.sleep(0.01)
            resp = http.post(f"{server.url}/leaks/github", content=body, headers=sender.headers(body, OLD_KEY_ID))
            assert (resp.status_code, resp.json()) == (401, REFUSED)
            body = report_body(secret)
            assert http.post(f"{server.url}/leaks/github", content=body,
                             headers=sender.headers(body)).json()[0]["label"] == "true_positive"
        finally:
            sender.publish(KEY_ID, OLD_KEY_ID)


def test_endpoint_is_off_unless_configured(sqlite_server: RunningServer) -> None:
    body = report_body(new_client_secret())
    with sqlite_server.http() as http:
        resp = http.post(f"{sqlite_server.url}/leaks/github", content=body)
    assert resp.status_code == 404


def test_revocation_reaches_a_second_replica_on_postgres_within_a_second(tmp_path: Path) -> None:
    sender = Sender(tmp_path / "github-keys.json")
    env = {**SHARED_ENV, "KEYLESS_LEAK_REPORT_KEYS": str(sender.path)}
    with replicas_on_postgres(tmp_path, env) as (first, second):
        client, secret, scope = live_client(first)
        body = report_body(secret)
        with second.http() as http:
            assert token_status(http, second, client, secret, scope) == 200  # cached on the second replica
            resp = http.post(f"{first.url}/leaks/github", content=body, headers=sender.headers(body))
            assert resp.json()[0]["label"] == "true_positive"
            assert refused_within(http, second, client, secret, scope) < BOUND
