"""Latency histograms per route template and the JSON access log (keyless.server.observe): useful to
an operator, and never a place where a path's ids, a query, a token or a secret ends up."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import Admin, RunningServer, start_server, stop_server


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_server(tmp_path_factory.mktemp("access"), env={"KEYLESS_ACCESS_LOG": "true"})
    try:
        yield server
    finally:
        stop_server(server)


def _access_lines(server: RunningServer) -> list[dict[str, object]]:
    lines = []
    for line in server.logs().splitlines():
        if line.startswith("{") and '"http_request"' in line:
            lines.append(json.loads(line))
    return lines


def test_access_log_names_the_route_template_and_never_the_secret_or_query(logged: RunningServer) -> None:
    uri = f"api://obs-{uuid.uuid4().hex[:8]}"
    with Admin(logged) as admin, logged.http() as http:
        client, secret = admin.client_with_role(uri)
        form = {"grant_type": "client_credentials", "client_id": client["client_id"], "client_secret": secret,
                "scope": f"{uri}/.default"}
        http.post(f"{logged.token_endpoint}?client-request-id=corr-{uuid.uuid4().hex}", data=form)
        ok = http.post(logged.token_endpoint, data=form)
        assert ok.status_code == 200
        token = ok.json()["access_token"]
        admin.api.call("GET", f"/applications/{client['client_id']}")
    logged.proc.send_signal(2)  # stop, so every line is written
    logged.proc.wait(timeout=15)
    text = logged.logs()
    assert secret not in text and token not in text and client["client_id"] not in text.split("http_request")[-1]
    assert "corr-" not in text
    lines = _access_lines(logged)
    token_lines = [x for x in lines if x["route"] == "/{tenant}/oauth2/v2.0/token"]
    assert token_lines and token_lines[-1]["status"] == 200 and token_lines[-1]["method"] == "POST"
    assert isinstance(token_lines[-1]["duration_ms"], float)
    assert any(x["route"] == "/{tenant}/manage/v1/applications/{ref}" or "applications/{" in str(x["route"])
               for x in lines)
    assert not any(logged.tenant_id in str(x["route"]) for x in lines)


def test_latency_histogram_is_labelled_by_route_template(tmp_path: Path) -> None:
    server = start_server(tmp_path)  # access log off: the default
    try:
        with server.http() as http:
            http.get(f"{server.url}/{server.tenant_id}/discovery/v2.0/keys")
            metrics = http.get(f"{server.url}/metrics").text
        assert ('keyless_http_request_duration_seconds_count{route="/{tenant}/discovery/v2.0/keys",'
                'surface="main"} 1.0') in metrics
        assert server.tenant_id not in metrics
        assert '"http_request"' not in server.logs()
    finally:
        stop_server(server)


def _gauge(metrics: str, name: str, **labels: str) -> float | None:
    for line in metrics.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_expiry_and_cache_gauges(tmp_path: Path) -> None:
    """`/metrics` says how soon the next credential and the signing key expire (seconds, per tenant
    name, kind and owner kind) and how the caches fare; never a tenant id or credential id."""
    server = start_server(tmp_path, env={"KEYLESS_KEY_ROTATION_INTERVAL": str(30 * 86400)})
    try:
        with Admin(server) as admin, server.http() as http:
            app = admin.app(f"gauged-{uuid.uuid4().hex[:6]}")
            record = admin.secret(app["client_id"], expires_in=3600)
            metrics = http.get(f"{server.url}/metrics").text
        secret_left = _gauge(metrics, "keyless_credential_expiry_seconds", tenant="default", kind="secret",
                             owner="application")
        assert secret_left is not None and 3500 < secret_left <= 3600, secret_left
        key_left = _gauge(metrics, "keyless_signing_key_expiry_seconds", tenant="default")
        assert key_left is not None and 29 * 86400 < key_left <= 30 * 86400
        assert _gauge(metrics, "keyless_signing_key_age_seconds", tenant="default") is not None
        assert _gauge(metrics, "keyless_cache_entries", cache="clients") is not None
        assert "keyless_cache_clears " in metrics and "keyless_client_rereads " in metrics
        assert server.tenant_id not in metrics and record["id"] not in metrics and app["client_id"] not in metrics
    finally:
        stop_server(server)
