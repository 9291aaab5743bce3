"""The web console in a real Chromium (issue 15): what an operator does, end to end, against a real
`keyless serve` — sign in with a one-time code, create an application, upload a certificate, grant
a role, revoke a secret and watch the next token request fail, reveal a vault value and find its
audit record. Security flows (catalog O10-O13) are in test_console_security.py."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.integration.server.conftest import secret_post, token_request
from tests.integration.server.console.conftest import Site
from tests.support.certs import new_cert
from tests.support.matrix import _unsigned_like_jwt


def _create_app(site: Site, page: Page, name: str, **fields: str) -> str:
    page.goto(site.url("/applications/new"))
    page.fill("#display_name", name)
    for key, value in fields.items():
        page.fill(f"#{key}", value)
    page.click("button[type=submit]:has-text('Create')")
    page.wait_for_url(re.compile(r".*/console/applications/[0-9a-f-]{36}\?created=1"))
    return page.locator("#client-id").inner_text()


def test_sign_in_with_a_one_time_code_lands_on_the_overview(site: Site) -> None:
    page = site.signed_in()
    expect(page.locator("h1")).to_have_text("Overview")
    expect(page.locator("form.who")).to_contain_text("Admin")
    assert "#" not in page.url  # the code left the address bar (and the history) at once
    cookie = next(c for c in page.context.cookies() if c["name"] == "__Secure-keyless-console")
    assert (cookie["httpOnly"], cookie["secure"], cookie["sameSite"], cookie["path"]) == (True, True, "Strict",
                                                                                           "/console")
    site.shot(page, "overview")
    page.context.close()


def test_create_an_application_then_find_it_by_search(site: Site) -> None:
    page = site.signed_in()
    name = f"console-orders-{uuid.uuid4().hex[:6]}"
    client_id = _create_app(site, page, name, identifier_uri=f"api://{name}", roles="Orders.Read, Orders.Write")
    expect(page.locator("h1")).to_have_text(name)
    expect(page.locator("#roles + ul")).to_contain_text("Orders.Write")
    assert site.admin.api.call("GET", f"/applications/{client_id}")["display_name"] == name
    [record] = [r for r in site.audit(action="application.create") if r["target_id"] == client_id]
    assert site.names_cli_credential(record), record  # the console session's credential, by id
    page.goto(site.url(f"/applications?q={name}"))
    expect(page.locator("#applications tbody tr")).to_have_count(1)
    site.shot(page, "applications")
    page.context.close()


def test_add_a_certificate_and_a_key_file_is_refused(site: Site, tmp_path: Path) -> None:
    page = site.signed_in()
    client_id = _create_app(site, page, f"console-cert-{uuid.uuid4().hex[:6]}")
    cert = new_cert("p256")
    (tmp_path / "worker.pem").write_bytes(cert.cert_pem)
    (tmp_path / "worker.key").write_bytes(cert.key_pem)
    page.set_input_files("#certificate-file", str(tmp_path / "worker.key"))
    page.click("#upload-certificate")
    expect(page.locator(".message")).to_contain_text("private key")
    assert site.admin.api.call("GET", f"/applications/{client_id}/certificates") == []
    page.go_back()
    page.set_input_files("#certificate-file", str(tmp_path / "worker.pem"))
    page.click("#upload-certificate")
    page.wait_for_url(re.compile(rf".*/applications/{client_id}#certificates"))
    expect(page.locator(".certificate-row")).to_contain_text(cert.info.x5t_s256)
    site.shot(page, "application")
    page.context.close()


def test_grant_a_role(site: Site) -> None:
    uri = f"api://console-res-{uuid.uuid4().hex[:6]}"
    site.admin.app(f"console-res-{uuid.uuid4().hex[:6]}", identifier_uri=uri, roles=("Stock.Read",))
    page = site.signed_in()
    client_id = _create_app(site, page, f"console-client-{uuid.uuid4().hex[:6]}")
    page.select_option("#grant-resource", uri)
    page.fill("#grant-role", "Stock.Read")
    page.click("#grant")
    expect(page.locator(".grant-row")).to_have_count(1)
    expect(page.locator(".grant-row")).to_contain_text("Stock.Read")
    grants = site.admin.api.call("GET", "/grants", params={"client_id": client_id})
    assert [g["role"] for g in grants] == ["Stock.Read"]
    page.context.close()


def test_revoke_a_secret_and_the_next_token_request_fails(site: Site) -> None:
    uri = f"api://console-api-{uuid.uuid4().hex[:6]}"
    site.admin.app(f"console-api-{uuid.uuid4().hex[:6]}", identifier_uri=uri, open_to_tenant=True)
    page = site.signed_in()
    client_id = _create_app(site, page, f"console-worker-{uuid.uuid4().hex[:6]}")
    page.click("#add-secret")
    secret = page.locator("#new-secret").input_value()  # shown once, on this page only
    assert secret.startswith("kls_")
    site.shot(page, "secret-shown-once")
    ok = token_request(site.http, site.server, secret_post(client_id, secret, f"{uri}/.default"))
    assert ok.status_code == 200, ok.text
    page.goto(site.url(f"/applications/{client_id}"))
    assert secret not in page.content()  # never rendered again
    row = page.locator(".secret-row")
    row.locator("input[name=confirm]").check()
    row.locator("button:has-text('Revoke')").click()
    expect(page.locator(".secret-row")).to_have_count(0)
    refused = token_request(site.http, site.server, secret_post(client_id, secret, f"{uri}/.default"))
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")
    page.context.close()


def test_reveal_a_vault_value_and_find_the_audit_record(site: Site) -> None:
    vault = f"cv{uuid.uuid4().hex[:10]}"
    site.admin.api.call("POST", "/vaults", json_body={"name": vault, "grant_self": True})
    value = f"hunter2-{uuid.uuid4().hex}"
    site.admin.api.call("PUT", f"/vaults/{vault}/secrets/db-password", json_body={"value": value})
    page = site.signed_in()
    page.goto(site.url(f"/vaults/{vault}"))
    assert value not in page.content()  # names, versions and dates only
    site.shot(page, "vault")
    with page.expect_response(lambda r: r.url.endswith("/reveal")) as revealed:
        page.locator(".vault-secret button.reveal").click()
    assert revealed.value.headers["cache-control"] == "no-store"  # not kept in the browser's cache
    expect(page.locator("#revealed")).to_have_value(value)
    assert value not in page.url
    page.goto(site.url(f"/logs/audit?action=vault.secret.get&client_id={site.admin.api.target.client_id}"))
    expect(page.locator("#audit")).to_contain_text("db-password")
    site.shot(page, "audit")
    assert value not in page.content()
    page.context.close()


def test_signing_key_rotation_from_the_console(site: Site) -> None:
    before = {k["kid"] for k in site.admin.api.call("GET", "/keys")}
    page = site.signed_in()
    page.goto(site.url("/keys"))
    page.check("input[name=confirm]")
    page.click("#rotate")
    page.wait_for_url(site.url("/keys"))
    after = {k["kid"] for k in site.admin.api.call("GET", "/keys")}
    assert len(after - before) == 1
    expect(page.locator("#keys")).to_contain_text(next(iter(after - before)))
    page.context.close()


def test_every_reading_page_renders(site: Site) -> None:
    page = site.signed_in()
    for path, name in (("/hosts", "hosts"), ("/logs/signins", "signins"), ("/tenant", "tenant"),
                       ("/vaults", "vaults"), ("/posture", "posture"), ("/posture?rung=secret", "posture-secret")):
        response = page.goto(site.url(path))
        assert response is not None and response.status == 200, path
        site.shot(page, name)
    page.context.close()


def test_federated_credential_add_dry_run_and_remove(site: Site) -> None:
    page = site.signed_in()
    client_id = _create_app(site, page, f"console-fed-{uuid.uuid4().hex[:6]}")
    page.fill("#fed-name", "github-main")
    page.fill("#fed-issuer", "https://issuer.example.test")
    page.fill("#fed-subject", "repo:org/repo:ref:refs/heads/main")
    page.click("#add-federated")
    expect(page.locator(".federated-row")).to_contain_text("repo:org/repo:ref:refs/heads/main")
    page.fill("#fed-token", _unsigned_like_jwt())
    page.click("#test-federated")
    expect(page.locator("#verdict")).to_contain_text("Not accepted")
    expect(page.locator("#verdicts")).to_contain_text("github-main")
    site.shot(page, "federated-test")
    page.goto(site.url(f"/applications/{client_id}"))
    row = page.locator(".federated-row")
    row.locator("input[name=confirm]").check()
    row.locator("button:has-text('Remove')").click()
    expect(page.locator(".federated-row")).to_have_count(0)
    assert site.admin.api.call("GET", f"/applications/{client_id}/federated-credentials") == []
    page.context.close()


def test_the_posture_page_agrees_with_the_api(site: Site) -> None:
    report = site.admin.api.call("GET", "/posture")
    page = site.signed_in()
    expect(page.locator("#ladder")).to_be_visible()  # the overview's ladder is the report's
    page.goto(site.url("/posture"))
    expect(page.locator("#score")).to_have_text(str(report["score"]["index"]))
    page.select_option("select[name=rung]", "secret")
    page.click("button:has-text('Filter')")
    listed = site.admin.api.call("GET", "/posture", params={"rung": "secret"})["workloads"]
    secret_names = {w["display_name"] for w in listed}
    shown = set(page.locator("#posture tbody tr td:first-child").all_inner_texts())
    assert shown == secret_names or (not secret_names and shown == {"No workloads match."})
    page.context.close()
