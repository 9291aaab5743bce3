"""A real `keyless serve` and one real Chromium for the console's browser tests (issue 15).

Playwright drives Debian's `chromium` (installed by `require_debian_tool` when absent; Playwright's
own browser download is unreachable from these machines). One server and one browser per module;
each test gets a fresh browser context (its own cookie jar), so sessions never leak between tests.
Screenshots go under the run's temp dir (`shots`)."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from keyless.directory.bootstrap import MANAGEMENT_URI, READER_ROLE
from tests.conftest import SHARED_ENV
from tests.integration.server.conftest import client_for
from tests.support.debian import require_debian_tool
from tests.support.matrix import token_for
from tests.support.server import Admin, RunningServer, postgres_database, require_postgres, start_server, stop_server

pytest.importorskip("playwright.sync_api", reason="playwright (the test extra) is not installed")

from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright


@dataclass
class Site:
    server: RunningServer
    admin: Admin
    http: httpx.Client
    browser: Browser
    shots: Path
    reader_token: str

    def admin_link(self) -> str:
        """A fresh one-time sign-in link, exactly as `keyless console` makes it."""
        return str(json.loads(self.server.cli("console", "--no-browser", "-o", "json").stdout)["url"])

    def reader_link(self) -> str:
        resp = self.http.post(f"{self.server.url}/{self.server.tenant_id}/manage/v1/console/login-codes",
                              headers={"Authorization": f"Bearer {self.reader_token}"})
        assert resp.status_code == 201, resp.text
        return str(resp.json()["url"])

    def url(self, path: str) -> str:
        return f"{self.server.url}/console{path}"

    def context(self) -> BrowserContext:
        return self.browser.new_context(ignore_https_errors=True, viewport={"width": 1366, "height": 900})

    def signed_in(self, link: str | None = None) -> Page:
        page = self.context().new_page()
        page.goto(link or self.admin_link())
        page.wait_for_url(self.url("/"))
        return page

    def shot(self, page: Page, name: str) -> Path:
        path = self.shots / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    def audit(self, **params: Any) -> list[dict[str, Any]]:
        return list(self.admin.api.call("GET", "/logs/audit", params={**params, "limit": 1000}))

    def cli_credential(self) -> dict[str, str]:
        """The CLI credential `keyless console` signed in with, as audit details name it (issue 20
        item 3): its certificate found by thumbprint among the application's, or its only secret."""
        target = self.admin.api.target
        if target.client_certificate is None:
            [secret] = self.admin.api.call("GET", f"/applications/{target.client_id}/secrets")
            return {"actor_credential_id": secret["id"], "actor_credential_type": "secret"}
        der = x509.load_pem_x509_certificate(target.client_certificate.read_bytes()).public_bytes(Encoding.DER)
        thumbprint = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
        [cert] = [c for c in self.admin.api.call("GET", f"/applications/{target.client_id}/certificates")
                  if c["x5t_s256"] == thumbprint]
        return {"actor_credential_id": cert["id"], "actor_credential_type": "certificate"}

    def names_cli_credential(self, record: dict[str, Any]) -> bool:
        """The record is the console session's: its actor is the CLI's client and its details name
        the very credential the CLI signed in with."""
        details = record["details"]
        return record["actor"] == self.admin.api.target.client_id and \
            {k: details.get(k) for k in ("actor_credential_id", "actor_credential_type")} == self.cli_credential()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    chromium = require_debian_tool("chromium", "chromium")
    tmp = tmp_path_factory.mktemp("console")
    require_postgres()  # on PostgreSQL: tests start a second replica on the site's database
    with postgres_database() as url:
        yield from _site(tmp, chromium, url)


def _site(tmp: Path, chromium: str, database_url: str) -> Iterator[Site]:
    server = start_server(tmp, database_url=database_url, env=SHARED_ENV)
    try:
        with client_for(server) as http, Admin(server) as admin, sync_playwright() as pw:
            reader = admin.app(f"console-reader-{uuid.uuid4().hex[:6]}")
            secret = admin.secret(reader["client_id"])["secret"]
            admin.grant(reader["client_id"], MANAGEMENT_URI, READER_ROLE)
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            try:
                shots = tmp / "shots"
                shots.mkdir()
                yield Site(server, admin, http, browser, shots,
                           token_for(http, server, reader["client_id"], secret, MANAGEMENT_URI))
            finally:
                browser.close()
    finally:
        stop_server(server)
