"""The posture report against a real server (issue 13 item 5): a workload on each rung signs in for
real — a client secret, a certificate from the Keyless CA and a foreign one, a federated credential
with a broad subject, and a managed identity through a running Keyless agent — and the report gives
each its rung, risks and next step (the secret signing in from the agent's address is told to move to
a managed identity on that host), counts the sign-ins by rung, pages without gaps, never shows a
secret value (catalog O14), and `keyless posture` prints the same."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from keyless.crypto.client_keys import certificate_signing_request, generate_client_key
from keyless.jose.jws import sign_with_headers
from tests.support.agent import RunningAgent, host_with_resource, start_agent, stop_agent
from tests.support.certs import assertion_form, claims_for, manage, new_cert, register
from tests.support.server import Admin, RunningServer, start_server, stop_server


@dataclass
class Ladder:
    server: RunningServer
    agent: RunningAgent
    host: dict[str, Any]
    secret_app: str
    secret_id: str
    secret_value: str
    ca_app: str
    foreign_app: str
    fed_app: str


def _token(server: RunningServer, form: dict[str, str]) -> None:
    with server.http() as http:
        resp = http.post(server.token_endpoint, data=form)
    assert resp.status_code == 200, resp.text


@pytest.fixture(scope="module")
def ladder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ladder]:
    tmp: Path = tmp_path_factory.mktemp("posture")
    server = start_server(tmp)
    agent = None
    try:
        host, uri = host_with_resource(server)
        agent = start_agent(server, tmp, join_token=host["join_token"], host=host)
        assert agent.get(uri).status_code == 200  # the host's system identity signs in through the agent
        scope = f"{uri}/.default"
        with Admin(server) as admin:
            secret_app = admin.app(f"orders worker {uuid.uuid4().hex[:4]}")["client_id"]
            created = admin.secret(secret_app)
            admin.grant(secret_app, uri, "Orders.Read")
            _token(server, {"grant_type": "client_credentials", "client_id": secret_app,
                            "client_secret": created["secret"], "scope": scope})

            ca_app = admin.app("ca-cert-app")["client_id"]
            admin.grant(ca_app, uri, "Orders.Read")
            key = generate_client_key("p256")
            issued = manage(server, admin, "POST", "/ca/sign",
                            json={"client_id": ca_app, "csr": certificate_signing_request(key, "x").decode()}).json()
            assertion = sign_with_headers(claims_for(ca_app, server.issuer), key, alg="ES256",
                                          headers={"typ": "JWT", "x5t#S256": issued["x5t_s256"]})
            _token(server, assertion_form(assertion, scope))

            foreign_app = admin.app("foreign-cert-app")["client_id"]
            admin.grant(foreign_app, uri, "Orders.Read")
            cert = new_cert("p256")
            register(server, admin, foreign_app, cert)
            _token(server, assertion_form(cert.sign(claims_for(foreign_app, server.issuer), alg="ES256"), scope))

            fed_app = admin.app("fed-app")["client_id"]
            admin.api.call("POST", f"/applications/{fed_app}/federated-credentials", json_body={
                "name": "gh-all", "issuer": "https://token.actions.githubusercontent.com",
                "subject": "repo:acme/*", "subject_is_pattern": True})
        yield Ladder(server, agent, host, secret_app, created["id"], created["secret"], ca_app, foreign_app, fed_app)
    finally:
        if agent is not None:
            stop_agent(agent)
        stop_server(server)


def _report(ladder: Ladder, **params: Any) -> dict[str, Any]:
    with Admin(ladder.server) as admin:
        resp = manage(ladder.server, admin, "GET", "/posture", params=params)
    assert resp.status_code == 200, resp.text
    assert ladder.secret_value not in resp.text
    return dict(resp.json())


def _by_id(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {w["client_id"]: w for w in report["workloads"]}


def test_each_workload_stands_on_its_rung(ladder: Ladder) -> None:
    found = _by_id(_report(ladder))
    assert found[ladder.secret_app]["rung"] == "secret"
    assert found[ladder.ca_app]["rung"] == "certificate"
    assert found[ladder.foreign_app]["rung"] == "certificate"
    assert found[ladder.fed_app]["rung"] == "federated"
    system = found[ladder.host["system_identity"]["client_id"]]
    assert system["rung"] == "managed_identity" and system["identity_kind"] == "system"
    assert system["hosts"] == [ladder.host["name"]] and system["signins"] >= 1


def test_risks_name_the_credential(ladder: Ladder) -> None:
    found = _by_id(_report(ladder))
    ca_cert = found[ladder.ca_app]["credentials"][0]
    assert ca_cert["from_internal_ca"] is True and ca_cert["signins"] == 1 and ca_cert["sources"] == ["127.0.0.1"]
    foreign = found[ladder.foreign_app]
    assert [r["risk"] for r in foreign["risks"]] == ["certificate_not_internal_ca"]
    cert_id = foreign["credentials"][0]["id"]
    assert foreign["risks"][0]["fix"] == [f"keyless cert new {ladder.foreign_app} --out <dir-on-the-workload-host>",
                                          f"keyless cert revoke {ladder.foreign_app} {cert_id}"]
    # It signs in from the agent's address: the climb past certificates beats replacing this one.
    assert foreign["next_step"]["guide"] == "docs/ladder.md#to-a-managed-identity"
    fed = found[ladder.fed_app]
    assert [r["risk"] for r in fed["risks"]] == ["broad_federation_subject"]
    assert fed["next_step"]["commands"][0] == f"keyless federation remove {ladder.fed_app} gh-all"


def test_a_secret_signing_in_from_an_agent_host_is_told_to_become_a_managed_identity(ladder: Ladder) -> None:
    """The sign-in log shows the secret used only from 127.0.0.1, where the host's agent also signs in:
    the advice names that host and the secret to remove."""
    w = _by_id(_report(ladder, client_id=ladder.secret_app))[ladder.secret_app]
    assert w["sources"] == ["127.0.0.1"] and w["agent_hosts"] == [ladder.host["name"]]
    step = w["next_step"]
    assert step["guide"] == "docs/ladder.md#to-a-managed-identity"
    assert f"signs in only from host {ladder.host['name']}" in step["summary"]
    assert f"keyless identity assign orders-worker-{w['display_name'][-4:]} --host {ladder.host['name']}" \
        in step["commands"]
    assert step["commands"][-1] == f"keyless secret revoke {ladder.secret_app} {ladder.secret_id}"
    secret = w["credentials"][0]
    assert secret["label"] and secret["label"] in ladder.secret_value and secret["label"] != ladder.secret_value


def test_the_score_counts_sign_ins_and_workloads_by_rung(ladder: Ladder) -> None:
    score = _report(ladder)["score"]
    signins = score["signins"]["counts"]
    assert signins["secret"] >= 1 and signins["certificate"] >= 2 and signins["managed_identity"] >= 1
    assert abs(sum(score["signins"]["shares"].values()) - 1.0) < 0.01
    workloads = score["workloads"]["counts"]
    assert workloads["secret"] >= 1 and workloads["federated"] == 1 and workloads["managed_identity"] >= 1
    assert 0 <= score["index"] <= 100 and score["window_days"] == 30


def test_pages_cover_every_workload_once(ladder: Ladder) -> None:
    everything = [w["client_id"] for w in _report(ladder, limit=5000)["workloads"]]
    paged, cursor = [], None
    while True:
        page = _report(ladder, limit=2, **({"cursor": cursor} if cursor else {}))
        assert (page["score"] is None) == (cursor is not None)
        paged += [w["client_id"] for w in page["workloads"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert paged == everything and len(everything) >= 6
    with Admin(ladder.server) as admin:
        first = manage(ladder.server, admin, "GET", "/posture", params={"limit": 2, "rung": "certificate"})
    cursor = first.json()["next_cursor"]
    assert first.headers["link"] == (f"</{ladder.server.tenant_id}/manage/v1/posture?rung=certificate&limit=2"
                                     f"&cursor={cursor}>; rel=\"next\"")
    only = _report(ladder, rung="federated")["workloads"]
    assert [w["client_id"] for w in only] == [ladder.fed_app]


@pytest.mark.parametrize(("params", "status", "code"), [
    ({"cursor": "%%%"}, 400, "invalid_cursor"),
    ({"rung": "password"}, 400, "validation_failed"),
    ({"limit": 0}, 400, "validation_failed"),
    ({"limit": 5001}, 400, "validation_failed"),  # the report's bound (5,000), above the lists' 1,000
    ({"client_id": str(uuid.UUID(int=7))}, 404, "application_not_found"),
])
def test_bad_queries_are_problems(ladder: Ladder, params: dict[str, Any], status: int, code: str) -> None:
    with Admin(ladder.server) as admin:
        resp = manage(ladder.server, admin, "GET", "/posture", params=params)
    assert resp.status_code == status and resp.json()["code"] == code


def test_the_summary_view_is_the_full_report_cut_to_what_the_table_shows(ladder: Ladder) -> None:
    """`view=summary` (what `keyless posture`'s table asks for): same workloads, same score, same
    order, only name, kind, rung, risk names and the next step's summary."""
    full, summary = _report(ladder, limit=1000), _report(ladder, limit=1000, view="summary")
    assert summary["score"] == full["score"] and summary["next_cursor"] == full["next_cursor"]
    assert summary["workloads"] == [
        {"client_id": w["client_id"], "display_name": w["display_name"], "kind": w["kind"], "rung": w["rung"],
         "risks": [{"risk": r["risk"]} for r in w["risks"]],
         "next_step": None if w["next_step"] is None else {"summary": w["next_step"]["summary"]}}
        for w in full["workloads"]]
    assert any(w["risks"] for w in summary["workloads"]) and any(w["next_step"] for w in summary["workloads"])
    with Admin(ladder.server) as admin:
        bad = manage(ladder.server, admin, "GET", "/posture", params={"view": "everything"})
    assert bad.status_code == 400 and bad.headers["content-type"].startswith("application/problem+json")


def test_cli_prints_the_report(ladder: Ladder) -> None:
    out = ladder.server.cli("posture", "-o", "json")
    assert ladder.secret_value not in out.stdout
    report = json.loads(out.stdout)
    assert {w["client_id"] for w in report["workloads"]} == set(_by_id(_report(ladder)))
    assert report["workloads"][0]["credentials"] is not None and "score" in report
    name = _by_id(report)[ladder.secret_app]["display_name"]
    everyone = ladder.server.cli("posture").stdout  # the summary view
    assert name in everyone and ladder.secret_app in everyone and "ladder index" in everyone
    table = ladder.server.cli("posture", "--app", name).stdout
    assert "secret" in table and f"keyless secret revoke {ladder.secret_app} {ladder.secret_id}" in table
    refused = ladder.server.cli("posture", "--app", "no-such-app", check=False)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1 and "no-such-app" in refused.stderr


def test_a_reported_leak_shows_on_the_workload_and_the_next_step_avoids_a_new_secret(ladder: Ladder) -> None:
    """`POST /leaks` (what `keyless scan --revoke` sends) revokes the secret; the report keeps the leak
    as the workload's finding and, with no credential left, advises a certificate, not a new secret."""
    with Admin(ladder.server) as admin:
        leaky = admin.app("leaky-app")["client_id"]
        created = admin.secret(leaky)
        admin.api.call("POST", "/leaks", json_body={"secret": created["secret"], "location": "repo:.env:3"})
    w = _by_id(_report(ladder, client_id=leaky))[leaky]
    assert w["rung"] == "none" and w["credentials"] == []
    assert [(r["risk"], r["credential_id"]) for r in w["risks"]] == [("leaked", created["id"])]
    assert "repo:.env:3" in w["risks"][0]["message"]
    assert w["next_step"]["commands"] == [f"keyless cert new {leaky} --out <dir-on-the-workload-host>"]


def test_no_secret_value_in_the_report_or_the_cli_output(ladder: Ladder) -> None:
    """Catalog O14: the report names a secret by id and hint only, in every page, filter and output."""
    bodies = [json.dumps(_report(ladder, **params)) for params in
              ({}, {"rung": "secret"}, {"client_id": ladder.secret_app}, {"limit": 1})]
    bodies += [ladder.server.cli("posture", "-o", "json").stdout, ladder.server.cli("posture", "--steps").stdout]
    for body in bodies:
        assert ladder.secret_value not in body and ladder.secret_value[:12] not in body


def _gauge(metrics: str, name: str, **labels: str) -> float:
    want = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    line = next(x for x in metrics.splitlines() if x.startswith(want + " "))
    return float(line.rsplit(" ", 1)[1])


def test_metrics_count_credentials_by_kind_and_state_and_sign_ins_by_rung(ladder: Ladder) -> None:
    with ladder.server.http() as http:
        metrics = http.get(f"{ladder.server.url}/metrics").text
    assert _gauge(metrics, "keyless_credentials", kind="secret", state="active") >= 1
    assert _gauge(metrics, "keyless_credentials", kind="certificate", state="active") >= 4  # CA, foreign, host, CLI
    assert _gauge(metrics, "keyless_credentials", kind="federated", state="active") == 1
    assert _gauge(metrics, "keyless_signins_24h", rung="managed_identity") >= 1
    assert _gauge(metrics, "keyless_signins_24h", rung="secret") >= 1
    assert ladder.secret_app not in metrics and ladder.server.tenant_id not in metrics


def test_a_kept_answer_is_dropped_by_a_write(ladder: Ladder) -> None:
    """The same page asked for again is served from the answers the server keeps (directory.answers);
    a write (a new secret on an application, then its revocation) drops them, so the next report shows it."""
    with Admin(ladder.server) as admin:
        app = admin.app(f"cached-{uuid.uuid4().hex[:6]}")["client_id"]
        before = _by_id(_report(ladder, limit=5000))[app]
        assert _by_id(_report(ladder, limit=5000))[app] == before and before["rung"] == "none"
        created = admin.secret(app)
        after = _by_id(_report(ladder, limit=5000))[app]
        assert after["rung"] == "secret" and [c["id"] for c in after["credentials"]] == [created["id"]]
        admin.api.call("DELETE", f"/applications/{app}/secrets/{created['id']}")
        assert _by_id(_report(ladder, limit=5000))[app]["rung"] == "none"
