"""The console's defences in a real Chromium and over plain HTTPS (catalog O10-O13, docs/console.md):
a login code works once; every console write refuses a request with no session, a Reader session,
a missing CSRF token or another origin — walked over the console's own route table, the way the
management API's authz matrix walks its OpenAPI document; strict CSP and no framing on every page;
stored HTML in names and log fields is shown as text; sign-out ends the session on every replica."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from playwright.sync_api import Dialog, expect

from keyless.server.console.access import SAFE_METHODS, VAULT_DATA
from keyless.server.console.pages import ROUTES
from keyless.server.console.sessions import COOKIE
from tests.integration.server.conftest import client_for
from tests.integration.server.console.conftest import Site
from tests.support.server import start_replica, stop_server

XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


def _session(site: Site, link: str) -> tuple[httpx.Client, str]:
    """An HTTPS client holding a console session opened with `link`, and the session's CSRF token."""
    http = client_for(site.server)
    code = link.split("#", 1)[1]
    resp = http.post(site.url("/login"), data={"code": code})
    assert resp.status_code == 303, resp.text
    http.cookies.set(COOKIE, resp.cookies[COOKIE], domain="127.0.0.1", path="/console")
    page = http.get(site.url("/"))
    return http, re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]


def _params(site: Site) -> dict[str, str]:
    app = site.admin.app(f"walk-{uuid.uuid4().hex[:6]}")
    vault = f"wv{uuid.uuid4().hex[:10]}"
    site.admin.api.call("POST", "/vaults", json_body={"name": vault, "grant_self": True})
    site.admin.api.call("PUT", f"/vaults/{vault}/secrets/walk", json_body={"value": "v"})
    guid = str(uuid.uuid4())
    return {"client_id": app["client_id"], "vault": vault, "name": "walk", "secret_id": guid,
            "certificate_id": guid, "grant_id": guid, "ref": guid}


def _writes() -> list[tuple[str, str, bool]]:
    """(method, path, vault data?) of every state-changing console route but sign-out."""
    return [(m, r.path, r.requirement is VAULT_DATA) for r in ROUTES for m in r.methods
            if m not in SAFE_METHODS and r.path != "/logout"]


def test_a_login_code_works_once(site: Site) -> None:
    link = site.admin_link()
    first = site.signed_in(link)
    again = site.context().new_page()
    again.goto(link)
    expect(again.locator(".message")).to_contain_text("not valid")
    assert again.url == site.url("/login")
    assert COOKIE not in {c["name"] for c in again.context.cookies()}
    site.shot(again, "login-refused")
    first.context.close()
    again.context.close()


@pytest.mark.parametrize("code", ["", "x" * 60, "A" * 2000, "AfUPpJ6CI0Q1s0WwHYV9VgDa9Msv_DHT_axlC_U-GZwgyA7A2EPmy"])
def test_a_forged_or_malformed_code_is_refused_with_one_answer(site: Site, code: str) -> None:
    resp = site.http.post(site.url("/login"), data={"code": code})
    assert resp.status_code == 401
    assert "set-cookie" not in resp.headers
    assert "not valid" in resp.text


def test_every_console_write_refuses_no_session_reader_missing_csrf_and_another_origin(site: Site) -> None:
    params = _params(site)
    reader, reader_csrf = _session(site, site.reader_link())
    admin, admin_csrf = _session(site, site.admin_link())
    before = site.audit()
    anonymous = client_for(site.server)
    try:
        for method, path, vault_data in _writes():
            url = site.url(path.format(**params))
            form = {"csrf": reader_csrf, "confirm": "yes", "display_name": "walk", "value": "Walk.Role",
                    "resource": "api://none", "role": "x", "alg": "ES256"}
            resp = anonymous.request(method, url, data=form)
            assert resp.status_code == 401, f"{method} {path} without a session: {resp.status_code}"
            resp = reader.request(method, url, data=form)
            # Vault data follows the vault's own grants, as on the vault APIs: the Reader holds none, so
            # a named secret does not exist for it (catalog G04).
            refused = (403, 404) if vault_data else (403,)
            assert resp.status_code in refused, f"{method} {path} as Reader: {resp.status_code}"
            resp = admin.request(method, url, data={**form, "csrf": ""})
            assert resp.status_code == 403, f"{method} {path} without the CSRF token: {resp.status_code}"
            resp = admin.request(method, url, data={**form, "csrf": admin_csrf},
                                 headers={"Origin": "https://evil.example"})
            assert resp.status_code == 403, f"{method} {path} from another origin: {resp.status_code}"
            assert resp.headers["content-type"].startswith("text/html")
        assert site.audit() == before  # nothing refused changed anything
    finally:
        for client in (reader, admin, anonymous):
            client.close()


def test_a_reader_session_sees_no_write_controls_and_its_forged_post_is_refused(site: Site) -> None:
    page = site.signed_in(site.reader_link())
    expect(page.locator("form.who")).to_contain_text("Reader")
    page.goto(site.url("/applications"))
    expect(page.locator("a:has-text('New application')")).to_have_count(0)
    client_id = site.admin.app(f"reader-sees-{uuid.uuid4().hex[:6]}")["client_id"]
    site.admin.secret(client_id)
    page.goto(site.url(f"/applications/{client_id}"))
    expect(page.locator("button:has-text('Revoke')")).to_have_count(0)
    expect(page.locator("#add-secret")).to_have_count(0)
    site.shot(page, "reader")
    csrf = page.locator("input[name=csrf]").first.input_value()
    name = f"forged-{uuid.uuid4().hex[:6]}"
    resp = page.request.post(site.url("/applications"), form={"csrf": csrf, "display_name": name})
    assert resp.status == 403
    assert name not in str(site.admin.api.call("GET", "/applications"))
    page.context.close()


def test_every_page_carries_a_strict_csp_and_refuses_framing(site: Site) -> None:
    params = _params(site)
    http, _ = _session(site, site.admin_link())
    pages = [r.path.format(**params) for r in ROUTES if "GET" in r.methods]
    try:
        for path in [*pages, "/login", "/no-such-page", "/static/console.css"]:
            resp = http.get(site.url(path))
            assert resp.status_code in (200, 404), f"{path}: {resp.status_code}"
            csp = resp.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "style-src 'self'" in csp and "'unsafe-inline'" not in csp, path
            assert "frame-ancestors 'none'" in csp, path
            assert resp.headers["x-frame-options"] == "DENY", path
            assert resp.headers["x-content-type-options"] == "nosniff", path
            if resp.headers["content-type"].startswith("text/html"):
                assert "<script>" not in resp.text and "style=" not in resp.text, f"{path}: inline script or style"
                assert resp.headers["cache-control"] == "no-store", path
    finally:
        http.close()


def test_stored_html_in_names_and_log_fields_is_shown_as_text(site: Site) -> None:
    client_id = site.admin.app(XSS)["client_id"]
    site.http.post(site.server.token_endpoint, data={"grant_type": "client_credentials", "client_id": client_id,
                                                     "client_secret": "kls_wrong", "scope": XSS})
    page = site.signed_in()
    dialogs: list[Dialog] = []
    page.on("dialog", lambda d: dialogs.append(d))
    for path in ("/", f"/applications?q={client_id}", f"/applications/{client_id}", "/logs/audit",
                 f"/logs/signins?client_id={client_id}"):
        page.goto(site.url(path))
        assert page.evaluate("window.__xss") is None, path
    page.goto(site.url(f"/applications/{client_id}"))
    expect(page.locator("h1")).to_have_text(XSS)
    assert page.locator("main img").count() == 0
    assert dialogs == []
    page.context.close()


def test_framing_by_another_page_is_refused_by_the_browser(site: Site) -> None:
    page = site.signed_in()
    page.goto("about:blank")
    page.set_content(f'<iframe id="f" src="{site.url("/")}"></iframe>')
    page.wait_for_timeout(1500)
    frame = page.frame_locator("#f")
    expect(frame.locator("a.brand")).to_have_count(0)  # Chromium shows its own "refused" page instead
    page.context.close()


def test_sign_out_ends_the_session_on_every_replica(site: Site, tmp_path_factory: pytest.TempPathFactory) -> None:
    replica = start_replica(site.server, tmp_path_factory.mktemp("replica"))
    try:
        page = site.signed_in()
        cookie = next(c["value"] for c in page.context.cookies() if c["name"] == COOKIE)
        with client_for(replica) as other:
            other.cookies.set(COOKIE, cookie, domain="127.0.0.1", path="/console")
            assert other.get(f"{replica.url}/console/").status_code == 200  # one session, any replica
            page.click("form.who button")
            page.wait_for_url(re.compile(r".*/console/login.*"))
            assert other.get(f"{replica.url}/console/").status_code == 303
            assert other.post(f"{replica.url}/console/applications", data={"display_name": "x"}).status_code == 401
        ended = site.audit(action="console.session.end")
        assert ended and {r["actor"] for r in ended} == {site.admin.api.target.client_id}
        # Sign-in and sign-out alike name the credential the CLI signed in with (issue 20 item 3).
        started = [r for r in site.audit(action="console.session.start")
                   if r["actor"] == site.admin.api.target.client_id]  # not the Reader's sign-ins
        assert started and all(site.names_cli_credential(r) for r in started + ended), started + ended
        page.context.close()
    finally:
        stop_server(replica)


def test_a_session_ends_when_its_credential_loses_the_role(site: Site) -> None:
    """A console session never outlives its credential's access: remove the management role (or
    disable the application) and the next request is sent to sign in, on every replica alike."""
    from keyless.directory.bootstrap import MANAGEMENT_URI, READER_ROLE
    from tests.support.matrix import token_for

    app = site.admin.app(f"console-demoted-{uuid.uuid4().hex[:6]}")
    secret = site.admin.secret(app["client_id"])["secret"]
    grant = site.admin.grant(app["client_id"], MANAGEMENT_URI, READER_ROLE)
    token = token_for(site.http, site.server, app["client_id"], secret, MANAGEMENT_URI)
    resp = site.http.post(f"{site.server.url}/{site.server.tenant_id}/manage/v1/console/login-codes",
                          headers={"Authorization": f"Bearer {token}"})
    http, _ = _session(site, resp.json()["url"])
    try:
        assert http.get(site.url("/applications")).status_code == 200
        site.admin.api.call("DELETE", f"/grants/{grant['id']}")
        resp = http.get(site.url("/applications"))
        assert (resp.status_code, resp.headers["location"]) == (303, "/console/login")
    finally:
        http.close()


def test_revoking_the_leaked_secret_ends_the_console_sessions_it_opened(site: Site) -> None:
    """A console session opened with a client secret names that secret in its audit records (issue 20
    item 3), and revoking the secret (the answer to its leak) ends the session and voids any login
    code it asked for, while the application and its role are untouched."""
    from keyless.directory.bootstrap import ADMIN_ROLE, MANAGEMENT_URI
    from tests.support.matrix import token_for

    app = site.admin.app(f"console-leaked-{uuid.uuid4().hex[:6]}")
    secret = site.admin.secret(app["client_id"])
    site.admin.grant(app["client_id"], MANAGEMENT_URI, ADMIN_ROLE)
    token = token_for(site.http, site.server, app["client_id"], secret["secret"], MANAGEMENT_URI)

    def link() -> str:
        resp = site.http.post(f"{site.server.url}/{site.server.tenant_id}/manage/v1/console/login-codes",
                              headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 201, resp.text
        return str(resp.json()["url"])

    http, csrf = _session(site, link())
    unused = link()
    try:
        name = f"by-leaked-{uuid.uuid4().hex[:6]}"
        assert http.post(site.url("/applications"), data={"csrf": csrf, "display_name": name}).status_code == 303
        [record] = [r for r in site.audit(action="application.create") if r["actor"] == app["client_id"]]
        assert {k: record["details"].get(k) for k in ("actor_credential_id", "actor_credential_type")} == \
            {"actor_credential_id": secret["id"], "actor_credential_type": "secret"}
        [started] = [r for r in site.audit(action="console.session.start") if r["actor"] == app["client_id"]]
        assert started["details"]["actor_credential_id"] == secret["id"]

        site.admin.api.call("DELETE", f"/applications/{app['client_id']}/secrets/{secret['id']}")
        before = site.audit()
        resp = http.get(site.url("/applications"))
        assert (resp.status_code, resp.headers["location"]) == (303, "/console/login")
        assert http.post(site.url("/applications"), data={"csrf": csrf, "display_name": "x"}).status_code == 401
        resp = site.http.post(site.url("/login"), data={"code": unused.split("#", 1)[1]})
        assert resp.status_code == 401 and "set-cookie" not in resp.headers
        assert site.audit() == before  # nothing refused changed anything
    finally:
        http.close()


def test_an_expired_login_code_is_refused_in_the_browser(site: Site) -> None:
    """A genuine code for the admin credential, sealed with the installation's own KEK (read from the
    data directory: the server's clock cannot be moved), whose 60 seconds ended a minute ago."""
    import time

    from keyless.clock import FrozenClock
    from keyless.server.console.sessions import CODE_LIFETIME, Binding, LoginCodes
    from keyless.server.datadir import DataDir, load_kek

    admin_id = site.admin.api.target.client_id
    assert admin_id is not None
    me = site.admin.api.call("GET", f"/applications/{admin_id}")
    binding = Binding(tenant_id=site.server.tenant_id, client_id=admin_id, object_id=me["object_id"],
                      roles=frozenset({"Keyless.Admin"}))
    codes = LoginCodes(load_kek(DataDir(site.server.data_dir)), FrozenClock(time.time() - CODE_LIFETIME - 60))
    expired, _ = codes.issue(binding)
    fresh, _ = LoginCodes(load_kek(DataDir(site.server.data_dir)), FrozenClock()).issue(binding)
    page = site.context().new_page()
    page.goto(site.url(f"/login#{expired}"))
    expect(page.locator(".message")).to_contain_text("expired")
    assert COOKIE not in {c["name"] for c in page.context.cookies()}
    page.goto(site.url(f"/login#{fresh}"))  # same binding, in time: signed in (only the fragment changed)
    page.wait_for_url(site.url("/"))
    page.context.close()
