"""Paging of the management API's lists over real HTTPS (docs/api.md, "Paging"): `limit`, `cursor`
and `Link: rel="next"`, on SQLite and PostgreSQL, and the CLI that follows the pages."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
import pytest

from keyless.cli import common
from keyless.paging import DEFAULT_LIMIT, MAX_LIMIT
from tests.integration.server.conftest import secret_post, token_request
from tests.support.server import Admin, RunningServer


def _get(http: httpx.Client, admin: Admin, url: str, **params: Any) -> httpx.Response:
    return http.get(url, params=params or None, headers={"Authorization": f"Bearer {admin.api.token()}"})


def _pages(http: httpx.Client, server: RunningServer, admin: Admin, path: str, limit: int,
           **params: Any) -> list[list[Any]]:
    """Every page of one list, following the Link header the way any HTTP client would."""
    resp = _get(http, admin, f"{server.url}/{server.tenant_id}/manage/v1{path}", limit=limit, **params)
    pages = []
    while True:
        assert resp.status_code == 200, resp.text
        pages.append(resp.json())
        following = resp.links.get("next")
        if following is None:
            return pages
        assert following["url"].startswith(f"/{server.tenant_id}/manage/v1{path}?")
        resp = _get(http, admin, server.url + following["url"])


def _problem_code(resp: httpx.Response) -> str:
    assert resp.status_code == 400, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    return str(resp.json()["code"])


def test_an_applications_secrets_come_in_pages_each_once(server: RunningServer, http: httpx.Client,
                                                         admin: Admin) -> None:
    app = admin.app(f"paged-{uuid.uuid4().hex[:8]}")
    made = [admin.secret(app["client_id"])["id"] for _ in range(5)]
    pages = _pages(http, server, admin, f"/applications/{app['client_id']}/secrets", 2)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [s["id"] for p in pages for s in p] == made  # creation order, nothing repeated or lost


def test_the_sign_in_log_pages_newest_first_with_its_filter_kept(server: RunningServer, http: httpx.Client,
                                                                  admin: Admin) -> None:
    claimed = str(uuid.uuid4())
    for _ in range(5):
        resp = token_request(http, server, secret_post(claimed, "kls_wrong", "api://x/.default"))
        assert resp.status_code == 401
    pages = _pages(http, server, admin, "/logs/signins", 2, client_id=claimed)
    rows = [r for p in pages for r in p]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert len(rows) == 5 and {r["client_id"] for r in rows} == {claimed}
    assert [r["time"] for r in rows] == sorted((r["time"] for r in rows), reverse=True)


def test_application_list_defaults_to_a_bounded_page(server: RunningServer, http: httpx.Client,
                                                     admin: Admin) -> None:
    resp = _get(http, admin, f"{server.url}/{server.tenant_id}/manage/v1/applications")
    assert resp.status_code == 200 and len(resp.json()) <= DEFAULT_LIMIT
    everything = [a["client_id"] for p in _pages(http, server, admin, "/applications", 3) for a in p]
    assert len(everything) == len(set(everything)) >= 3


@pytest.mark.parametrize("limit", ["0", str(MAX_LIMIT + 1), "-1", "ten"])
def test_a_limit_out_of_bounds_is_refused(server: RunningServer, http: httpx.Client, admin: Admin,
                                          limit: str) -> None:
    resp = _get(http, admin, f"{server.url}/{server.tenant_id}/manage/v1/applications", limit=limit)
    assert _problem_code(resp) == "validation_failed"


def test_a_tampered_or_borrowed_cursor_is_refused_and_changes_nothing(server: RunningServer, http: httpx.Client,
                                                                      admin: Admin) -> None:
    base = f"{server.url}/{server.tenant_id}/manage/v1"
    app = admin.app(f"paged-{uuid.uuid4().hex[:8]}")
    for _ in range(3):
        admin.secret(app["client_id"])
    first = _get(http, admin, f"{base}/applications/{app['client_id']}/secrets", limit=1)
    cursor = first.links["next"]["url"].split("cursor=")[1]
    borrowed = _get(http, admin, f"{base}/applications", limit=1, cursor=cursor)  # another list's cursor
    assert _problem_code(borrowed) == "invalid_cursor"
    raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    tampered = base64.urlsafe_b64encode(json.dumps([raw[0], "x", "y"]).encode()).decode()
    for bad in (tampered, "AAAA", "%%%", "x" * 600):
        resp = _get(http, admin, f"{base}/applications/{app['client_id']}/secrets", cursor=bad)
        assert _problem_code(resp) in {"invalid_cursor", "validation_failed"}


def test_the_openapi_document_declares_the_paging_parameters_and_link(server: RunningServer,
                                                                      http: httpx.Client) -> None:
    doc = http.get(f"{server.url}/manage/openapi.json").json()
    lists = [(path, op) for path, item in doc["paths"].items() for method, op in item.items()
             if method == "get" and "array" in json.dumps(op["responses"]["200"])]
    assert len(lists) >= 15
    for path, op in lists:
        names = {p["name"] for p in op.get("parameters", [])}
        assert {"limit", "cursor"} <= names, path
        assert "Link" in op["responses"]["200"]["headers"], path


def test_the_cli_follows_every_page_and_stops_at_its_limit(server: RunningServer, admin: Admin,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    app = admin.app(f"paged-{uuid.uuid4().hex[:8]}")
    made = [admin.secret(app["client_id"])["id"] for _ in range(5)]
    monkeypatch.setattr(common, "SERVER_PAGE", 2)  # pages of two, so five secrets take three requests
    path = f"/applications/{app['client_id']}/secrets"
    assert [s["id"] for s in admin.api.collect(path)] == made
    assert [s["id"] for s in admin.api.collect(path, limit=3)] == made[:3]
