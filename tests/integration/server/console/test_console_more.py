"""More of what an operator meets in the console (issue 15): reading and signing in without
JavaScript, paging through applications, recovering and purging a deleted vault secret with
confirmation, and bad input answered with a 4xx page that changes nothing (never a 5xx)."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.integration.server.console.conftest import Site


def test_signing_in_and_reading_work_without_javascript(site: Site) -> None:
    context = site.browser.new_context(ignore_https_errors=True, java_script_enabled=False,
                                       viewport={"width": 1280, "height": 800})
    page = context.new_page()
    link = site.admin_link()
    page.goto(link)  # no script: the code stays in the fragment and is pasted instead
    page.fill("#code", link.split("#", 1)[1])
    page.click("button:has-text('Sign in')")
    page.wait_for_url(site.url("/"))
    for path in ("/applications", "/posture", "/logs/audit", "/keys", "/vaults", "/hosts", "/tenant"):
        response = page.goto(site.url(path))
        assert response is not None and response.status == 200, path
        expect(page.locator("header nav")).to_be_visible()
    context.close()


def test_applications_are_paged_and_searched(site: Site) -> None:
    tag = uuid.uuid4().hex[:6]
    for i in range(27):
        site.admin.app(f"page-{tag}-{i:02d}")
    page = site.signed_in()
    page.goto(site.url(f"/applications?q=page-{tag}"))
    expect(page.locator("#applications tbody tr")).to_have_count(25)
    expect(page.locator(".hint")).to_contain_text("27 found · page 1 of 2")
    page.click("nav.pager a:has-text('Next')")
    expect(page.locator("#applications tbody tr")).to_have_count(2)
    expect(page.locator("#applications")).to_contain_text(f"page-{tag}-26")
    page.context.close()


def test_recover_then_purge_a_deleted_vault_secret(site: Site) -> None:
    vault = f"rv{uuid.uuid4().hex[:10]}"
    site.admin.api.call("POST", "/vaults", json_body={"name": vault, "grant_self": True})
    # Purge is in no role bundle (it destroys data): the credential needs it granted by name.
    site.admin.api.call("POST", f"/vaults/{vault}/grants", json_body={
        "principal": site.admin.api.target.client_id, "roles": ["Secrets.Purge"]})
    for name in ("keep-me", "drop-me"):
        site.admin.api.call("PUT", f"/vaults/{vault}/secrets/{name}", json_body={"value": "v"})
        site.admin.api.call("DELETE", f"/vaults/{vault}/secrets/{name}")
    page = site.signed_in()
    page.goto(site.url(f"/vaults/{vault}"))
    row = page.locator("#deleted tr", has_text="keep-me")
    row.locator("button:has-text('Recover')").click()  # the box is required: the browser will not send it
    assert page.url == site.url(f"/vaults/{vault}")
    row.locator("input[name=confirm]").first.check()
    row.locator("button:has-text('Recover')").click()
    expect(page.locator("#secrets")).to_contain_text("keep-me")
    drop = page.locator("#deleted tr", has_text="drop-me")
    drop.locator("form:has(button:has-text('Purge')) input[name=confirm]").check()
    drop.locator("button:has-text('Purge')").click()
    expect(page.locator("#deleted")).not_to_contain_text("drop-me")
    actions = {r["action"] for r in site.audit() if r["target_id"] in ("keep-me", "drop-me")}
    assert {"vault.secret.recover", "vault.secret.purge"} <= actions
    page.context.close()


@pytest.mark.parametrize(("path", "form"), [
    ("/applications", {"display_name": ""}),
    ("/applications", {"display_name": "x", "identifier_uri": "not a uri"}),
    ("/applications/{app}/secrets", {"expires_in": "banana"}),
    ("/applications/{app}/secrets", {"expires_in": "99999d"}),
    ("/applications/{app}/certificates", {"pem": "-----BEGIN CERTIFICATE-----\nnot base64\n"}),
    ("/applications/{app}/certificates", {"pem": "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----"}),
    ("/applications/{app}/grants", {"resource": "api://nowhere", "role": "X"}),
    ("/applications/{app}/secrets/{guid}/revoke", {"confirm": "yes"}),
    ("/applications/{guid}/roles", {"value": "R"}),
    ("/applications/{app}/federated", {"name": "n", "issuer": "http://plain", "subject": "s"}),
    ("/applications/{app}/federated/test", {"token": "a.b"}),
    ("/tenant", {"token_lifetime": "1s"}),
    ("/keys/rotate", {"alg": "HS256", "confirm": "yes"}),
    ("/vaults/no-such-vault/secrets/x/reveal", {}),
])
def test_bad_input_gets_a_4xx_page_and_changes_nothing(site: Site, path: str, form: dict[str, str]) -> None:
    import httpx

    from tests.integration.server.console.test_console_security import _session

    app = site.admin.app(f"bad-{uuid.uuid4().hex[:6]}")["client_id"]
    http, csrf = _session(site, site.admin_link())
    before = len(site.audit())
    try:
        url = site.url(path.format(app=app, guid=uuid.uuid4()))
        resp: httpx.Response = http.post(url, data={**form, "csrf": csrf})
        assert 400 <= resp.status_code < 500, f"{path}: {resp.status_code} {resp.text[:300]}"
        assert resp.headers["content-type"].startswith("text/html")
        assert re.search(r'class="message"', resp.text), resp.text[:500]
        assert len(site.audit()) == before
    finally:
        http.close()


def test_keyless_console_prints_a_one_time_link(site: Site) -> None:
    out = site.server.cli("console", "--no-browser").stdout.splitlines()
    assert out[0].startswith("Open this link within 60 seconds")
    assert re.fullmatch(rf"{re.escape(site.server.url)}/console/login#[A-Za-z0-9_-]{{100,}}", out[1])
    assert "Example: keyless console" in site.server.cli("console", "--help").stdout


def test_tenant_settings_change_through_the_console(site: Site) -> None:
    page = site.signed_in()
    page.goto(site.url("/tenant"))
    page.fill("input[name=token_lifetime]", "30m")
    page.click("button:has-text('Save')")
    page.wait_for_url(site.url("/tenant"))
    expect(page.locator("dl.facts")).to_contain_text("1800 s")
    assert site.admin.api.call("GET", "/tenant")["token_lifetime"] == 1800
    [record] = [r for r in site.audit(action="tenant.update") if r["details"].get("token_lifetime") == 1800]
    assert site.names_cli_credential(record), record
    site.admin.api.call("PATCH", "/tenant", json_body={"token_lifetime": 3600})
    page.context.close()


def test_hosts_and_identities_show_agent_state_and_bindings(site: Site) -> None:
    host = site.admin.api.call("POST", "/hosts", json_body={"name": f"h-{uuid.uuid4().hex[:6]}"})
    identity = site.admin.api.call("POST", "/identities", json_body={"name": f"id-{uuid.uuid4().hex[:6]}"})
    site.admin.api.call("PUT", f"/identities/{identity['name']}/hosts/{host['id']}")
    site.admin.api.call("POST", f"/identities/{identity['name']}/bindings", json_body={"host": host["id"], "uid": 1000})
    page = site.signed_in()
    page.goto(site.url("/hosts"))
    expect(page.locator("#hosts tr", has_text=host["name"])).to_contain_text("waiting to join (token until")
    expect(page.locator("#identities")).to_contain_text(identity["name"])
    expect(page.locator("main")).to_contain_text("uid=1000")
    site.shot(page, "hosts")
    page.context.close()


def test_policies_are_shown_and_replaced_through_the_service(site: Site) -> None:
    client_id = site.admin.app(f"policy-{uuid.uuid4().hex[:6]}")["client_id"]
    page = site.signed_in()
    page.goto(site.url("/policies"))
    expect(page.locator("#overrides")).to_contain_text("No overrides")
    page.select_option("#policy-target", client_id)
    page.fill("#policy-document", '{"block_secrets": {"mode": "nonsense"}}')
    page.check("input[name=confirm]")
    page.click("#set-policy")
    expect(page.locator(".message")).to_contain_text("block_secrets.mode must be off, audit or enforce")
    page.go_back()
    page.select_option("#policy-target", client_id)
    page.fill("#policy-document", '{"source_networks": {"mode": "audit", "networks": ["10.20.0.0/16"]}}')
    page.check("input[name=confirm]")
    page.click("#set-policy")
    page.wait_for_url(site.url("/policies"))
    expect(page.locator("#overrides")).to_contain_text("10.20.0.0/16")
    site.shot(page, "policies")
    override = site.admin.api.call("GET", f"/applications/{client_id}/policy")["override"]
    assert override["source_networks"] == {"mode": "audit", "networks": ["10.20.0.0/16"]}
    [record] = [r for r in site.audit(action="policy.set") if r["target_id"] == client_id]
    assert site.names_cli_credential(record), record
    site.admin.api.call("PUT", f"/applications/{client_id}/policy", json_body={})
    page.context.close()


def test_a_policy_dry_run_in_the_console_writes_nothing(site: Site) -> None:
    name = f"dry-{uuid.uuid4().hex[:6]}"
    client_id = site.admin.app(name)["client_id"]
    site.admin.secret(client_id, expires_in=30 * 86400)
    before = site.admin.api.call("GET", "/policy")
    page = site.signed_in()
    audits = len(site.audit())  # after the sign-in's own record
    page.goto(site.url("/policies"))
    page.fill("#policy-document", '{"max_lifetime": {"mode": "enforce", "secret": 86400}, '
                                  '"reaping": {"mode": "audit", "unused_days": 8}}')
    page.click("#test-policy")  # no confirmation needed: nothing is written
    page.wait_for_url(site.url("/policies/test"))
    expect(page.locator("#credential-findings tr", has_text=name)).to_contain_text("enforce")
    expect(page.locator("#reaping-findings")).to_contain_text("Nothing would be reaped")  # the secret is new
    site.shot(page, "policy-test")
    assert site.admin.api.call("GET", "/policy") == before
    assert len(site.audit()) == audits
    page.context.close()


def test_an_oversized_form_is_refused_before_it_is_read(site: Site) -> None:
    from tests.integration.server.console.test_console_security import _session

    http, csrf = _session(site, site.admin_link())
    try:
        before = len(site.audit())
        resp = http.post(site.url("/applications"), data={"csrf": csrf, "display_name": "x" * (300 * 1024)})
        assert resp.status_code == 413
        assert resp.headers["x-frame-options"] == "DENY"
        assert len(site.audit()) == before
    finally:
        http.close()
