"""Catalog E: federation with external issuers, against a real `keyless serve` and a real external
issuer on loopback (its own TLS certificate, discovery document and JWKS).

A federated token arrives as a `client_assertion` (client authentication), so every refusal is
`401 invalid_client` (RFC 7521 §4.2.1), not the jwt-bearer *grant*'s `400 invalid_grant` that E01
names: Keyless has no jwt-bearer grant. Rows not tested here: E10, E11 and E12 are about the RFC 8693
token-exchange grant, which Keyless does not offer (an unknown grant type is A14's
`unsupported_grant_type`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keyless.crypto.ca import IssuedCert
from keyless.crypto.keys import generate
from keyless.jose.jwk import public_jwk
from tests.conftest import SHARED_ENV
from tests.security.support import assert_answer
from tests.support.certs import last_failure_detail, manage
from tests.support.issuer import (
    ExternalIssuer,
    FederatedApp,
    exchange,
    explain,
    federated_app,
    running_issuer,
)
from tests.support.server import Admin, RunningServer, start_server, stop_server

SUBJECT = "repo:acme/api:ref:refs/heads/main"


def refused(description: str) -> dict[str, str]:
    return {"error": "invalid_client", "error_description": description}


@pytest.fixture
def admin(fed_server: RunningServer) -> Iterator[Admin]:
    with Admin(fed_server) as a:
        yield a


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    head = _b64u(json.dumps(header).encode())
    body = _b64u(json.dumps(claims).encode())
    return f"{head}.{body}.{_b64u(signature)}"


# -- E01: subject trust --------------------------------------------------------------------------
def test_e01_subject_that_matches_no_credential(fed_server: RunningServer, admin: Admin,
                                                issuer: ExternalIssuer) -> None:
    app = federated_app(admin, issuer.issuer, SUBJECT)
    for sub in ("repo:acme/api:ref:refs/heads/dev", "repo:acme/api", SUBJECT + "x", SUBJECT.upper()):
        assert_answer(exchange(fed_server, app.client_id, issuer.token(sub), app.scope), 401,
                      refused("the token's subject matches no federated credential for its issuer"))
    assert last_failure_detail(fed_server, admin, app.client_id) == "federated:subject"


def test_e01_pattern_is_anchored_at_a_segment_boundary(fed_server: RunningServer, admin: Admin,
                                                       issuer: ExternalIssuer) -> None:
    app = federated_app(admin, issuer.issuer, "repo:org/*", subject_is_pattern=True)
    assert exchange(fed_server, app.client_id, issuer.token("repo:org/api:ref:refs/heads/main"),
                    app.scope).status_code == 200
    for lookalike in ("repo:org-evil/api:ref:refs/heads/main", "repo:org", "repo:org/", "repo:orgx/api"):
        assert_answer(exchange(fed_server, app.client_id, issuer.token(lookalike), app.scope), 401,
                      refused("the token's subject matches no federated credential for its issuer"))
    findings = admin.api.call("GET", "/federated-credentials/lint", params={"client_id": app.client_id})
    assert [f["code"] for f in findings] == ["pattern_spans_repositories", "pattern_without_conditions"]


@pytest.mark.parametrize("subject", ["*", "repo*", "repo:acme/*/x*", "repo:a*:b", ":*"])
def test_e01_unanchored_patterns_and_missing_subject_are_refused(fed_server: RunningServer, admin: Admin,
                                                                 subject: str) -> None:
    app = admin.app(f"e01-{uuid.uuid4().hex[:6]}")
    resp = manage(fed_server, admin, "POST", f"/applications/{app['client_id']}/federated-credentials",
                  json={"name": "p", "issuer": "https://issuer.example.test", "subject": subject,
                        "subject_is_pattern": True})
    assert resp.status_code == 400
    assert resp.json()["code"] in {"invalid_subject_pattern", "invalid_subject"}
    resp = manage(fed_server, admin, "POST", f"/applications/{app['client_id']}/federated-credentials",
                  json={"name": "nosub", "issuer": "https://issuer.example.test"})
    assert resp.status_code == 400  # a subject condition is mandatory


# -- E02: audience -------------------------------------------------------------------------------
@pytest.mark.parametrize(("aud", "description"), [
    ("sts.amazonaws.com", "the token's audience is not the credential's audience"),
    (["sts.amazonaws.com"], "the token's audience is not the credential's audience"),
    ("api://AzureADTokenExchange", "the token's audience is not the credential's audience"),
    (["api://KeylessTokenExchange", "sts.amazonaws.com"], "the token must name exactly one audience"),
])
def test_e02_audience_for_another_relying_party(fed_server: RunningServer, admin: Admin, issuer: ExternalIssuer,
                                                aud: Any, description: str) -> None:
    app = federated_app(admin, issuer.issuer, SUBJECT)
    assert_answer(exchange(fed_server, app.client_id, issuer.token(SUBJECT, aud=aud), app.scope), 401,
                  refused(description))


def test_e02_entra_audience_where_configured(fed_server: RunningServer, admin: Admin,
                                             issuer: ExternalIssuer) -> None:
    app = federated_app(admin, issuer.issuer, SUBJECT, audiences=["api://AzureADTokenExchange"])
    token = issuer.token(SUBJECT, aud=["api://AzureADTokenExchange"])
    assert exchange(fed_server, app.client_id, token, app.scope).status_code == 200
    assert_answer(exchange(fed_server, app.client_id, issuer.token(SUBJECT), app.scope), 401,
                  refused("the token's audience is not the credential's audience"))


# -- E04: metadata issuer ------------------------------------------------------------------------
def test_e04_discovery_issuer_differs_from_the_configured_one(fed_server: RunningServer, admin: Admin,
                                                              issuer: ExternalIssuer) -> None:
    issuer.metadata_issuer = "https://accounts.example.test"
    app = federated_app(admin, issuer.issuer, SUBJECT)
    assert_answer(exchange(fed_server, app.client_id, issuer.token(SUBJECT), app.scope), 401,
                  refused("the signing keys of the token's issuer could not be obtained"))
    assert last_failure_detail(fed_server, admin, app.client_id) == (
        "federated:keys_unavailable:metadata_issuer_mismatch")
    assert issuer.jwks_fetches() == 0  # the key set of a refused issuer is never fetched


def test_r8725_7_a_key_of_issuer_b_never_verifies_a_token_claiming_issuer_a(
    fed_server: RunningServer, admin: Admin, tmp_path: Path, issuer_ca: tuple[IssuedCert, Path],
    issuer: ExternalIssuer,
) -> None:
    with running_issuer(tmp_path / "b", issuer_ca[0]) as other:
        app = federated_app(admin, issuer.issuer, SUBJECT)
        from tests.support.issuer import add_credential

        add_credential(admin, app.client_id, other.issuer, SUBJECT)
        assert exchange(fed_server, app.client_id, other.token(SUBJECT), app.scope).status_code == 200
        forged = other.sign(issuer.claims(SUBJECT))  # claims issuer A, signed with B's published key
        assert_answer(exchange(fed_server, app.client_id, forged, app.scope), 401,
                      refused("the token's key id is not among the issuer's published keys"))


# -- E05: SSRF -----------------------------------------------------------------------------------
def test_e05_redirect_is_not_followed(fed_server: RunningServer, admin: Admin, tmp_path: Path,
                                      issuer_ca: tuple[IssuedCert, Path], issuer: ExternalIssuer) -> None:
    with running_issuer(tmp_path / "target", issuer_ca[0]) as target:
        issuer.redirect_to = target.issuer + "/.well-known/openid-configuration"
        app = federated_app(admin, issuer.issuer, SUBJECT)
        assert_answer(exchange(fed_server, app.client_id, issuer.token(SUBJECT), app.scope), 401,
                      refused("the signing keys of the token's issuer could not be obtained"))
        assert last_failure_detail(fed_server, admin, app.client_id) == "federated:keys_unavailable:redirect_refused"
        assert target.fetches == {}


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory,
                  issuer_ca: tuple[IssuedCert, Path]) -> Iterator[RunningServer]:
    """A server that trusts the issuers' CA but has no private-issuer exemption (the production rule)."""
    env = {**SHARED_ENV, "KEYLESS_FEDERATION_CA_BUNDLE": str(issuer_ca[1])}
    srv = start_server(tmp_path_factory.mktemp("strict-federation"), env=env)
    try:
        yield srv
    finally:
        stop_server(srv)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "2130706433", "[::1]", "[::ffff:127.0.0.1]",
                                  "169.254.169.254", "10.0.0.1", "0.0.0.0"])
def test_e05_private_and_loopback_issuers_are_refused(strict_server: RunningServer, issuer: ExternalIssuer,
                                                      host: str) -> None:
    """Every spelling resolves before any connection; none is contacted (the issuer sees no request)."""
    url = f"https://{host}:{issuer.port}"
    with Admin(strict_server) as admin:
        app = federated_app(admin, url, SUBJECT)
        token = issuer.sign(issuer.claims(SUBJECT, iss=url))
        assert_answer(exchange(strict_server, app.client_id, token, app.scope), 401,
                      refused("the signing keys of the token's issuer could not be obtained"))
        assert last_failure_detail(strict_server, admin, app.client_id) == (
            "federated:keys_unavailable:private_address")
    assert issuer.fetches == {}


# -- E06: refresh rate and size limits -----------------------------------------------------------
def test_e06_unknown_kid_on_every_request_refreshes_at_most_once_per_interval(
    fed_server: RunningServer, admin: Admin, issuer: ExternalIssuer
) -> None:
    app = federated_app(admin, issuer.issuer, SUBJECT)
    assert exchange(fed_server, app.client_id, issuer.token(SUBJECT), app.scope).status_code == 200
    for _ in range(10):
        stranger = generate("RS256")
        kid = public_jwk(stranger.public_key(), "RS256")["kid"]  # type: ignore[arg-type]
        token = issuer.sign(issuer.claims(SUBJECT), kid=kid, key=stranger)
        assert_answer(exchange(fed_server, app.client_id, token, app.scope), 401,
                      refused("the token's key id is not among the issuer's published keys"))
    assert issuer.jwks_fetches() <= 2  # the first fetch, and at most one refresh in the 2 s interval


def test_e06_jwks_with_more_than_50_keys_is_refused(fed_server: RunningServer, admin: Admin,
                                                    issuer: ExternalIssuer) -> None:
    jwk = issuer.jwks()["keys"][0]
    issuer.jwks_override = {"keys": [jwk] + [dict(jwk, kid=f"k{i}") for i in range(50)]}
    app = federated_app(admin, issuer.issuer, SUBJECT)
    assert_answer(exchange(fed_server, app.client_id, issuer.token(SUBJECT), app.scope), 401,
                  refused("the signing keys of the token's issuer could not be obtained"))
    assert last_failure_detail(fed_server, admin, app.client_id) == "federated:keys_unavailable:jwks_too_many_keys"


def test_e06_jwks_over_64_kib_is_refused(fed_server: RunningServer, admin: Admin, issuer: ExternalIssuer) -> None:
    keys = issuer.jwks()
    keys["padding"] = "x" * (64 * 1024)
    issuer.jwks_override = json.dumps(keys).encode()
    app = federated_app(admin, issuer.issuer, SUBJECT)
    assert_answer(exchange(fed_server, app.client_id, issuer.token(SUBJECT), app.scope), 401,
                  refused("the signing keys of the token's issuer could not be obtained"))
    assert last_failure_detail(fed_server, admin, app.client_id) == "federated:keys_unavailable:document_too_large"


# -- E08: algorithms -----------------------------------------------------------------------------
def test_e08_alg_none_and_hs256_with_the_public_key(fed_server: RunningServer, admin: Admin,
                                                    issuer: ExternalIssuer) -> None:
    app = federated_app(admin, issuer.issuer, SUBJECT)
    claims = issuer.claims(SUBJECT)
    none = _unsigned({"alg": "none", "kid": issuer.current}, claims)
    assert_answer(exchange(fed_server, app.client_id, none, app.scope), 401,
                  refused("the federated token names no usable signing algorithm"))
    jwk = issuer.jwks()["keys"][0]
    secret = json.dumps(jwk).encode()
    head = {"alg": "HS256", "kid": issuer.current, "typ": "JWT"}
    unsigned = _unsigned(head, claims)
    signing_input = unsigned.rsplit(".", 1)[0].encode()
    confused = _unsigned(head, claims, hmac.new(secret, signing_input, hashlib.sha256).digest())
    assert_answer(exchange(fed_server, app.client_id, confused, app.scope), 401,
                  refused("the token's signing algorithm is not allowed for this issuer's key or credential"))


def test_e08_alg_outside_the_credentials_list(fed_server: RunningServer, admin: Admin, tmp_path: Path,
                                              issuer_ca: tuple[IssuedCert, Path]) -> None:
    with running_issuer(tmp_path / "ec", issuer_ca[0], alg="ES256") as ec_issuer:
        app = federated_app(admin, ec_issuer.issuer, SUBJECT, algorithms=["RS256"])
        assert_answer(exchange(fed_server, app.client_id, ec_issuer.token(SUBJECT), app.scope), 401,
                      refused("the token's signing algorithm is not allowed for this issuer's key or credential"))
        allowed = federated_app(admin, ec_issuer.issuer, SUBJECT, algorithms=["ES256"])
        assert exchange(fed_server, allowed.client_id, ec_issuer.token(SUBJECT), allowed.scope).status_code == 200


# -- E09: one policy function for every path -----------------------------------------------------
def _cases(issuer: ExternalIssuer) -> dict[str, str]:
    return {
        "good": issuer.token(SUBJECT, environment="prod"),
        "wrong_sub": issuer.token(SUBJECT + ":x", environment="prod"),
        "wrong_aud": issuer.token(SUBJECT, aud="sts.amazonaws.com", environment="prod"),
        "wrong_condition": issuer.token(SUBJECT, environment="dev"),
        "no_condition_claim": issuer.token(SUBJECT),
    }


EXPECTED = {"good": None, "wrong_sub": "subject", "wrong_aud": "audience", "wrong_condition": "claims",
            "no_condition_claim": "claims"}


@pytest.mark.parametrize("path", ["token_endpoint", "federation_test"])
def test_e09_every_path_runs_the_same_policy(fed_server: RunningServer, admin: Admin, issuer: ExternalIssuer,
                                             path: str) -> None:
    app: FederatedApp = federated_app(admin, issuer.issuer, SUBJECT, claims={"environment": "prod"})
    for case, token in _cases(issuer).items():
        if path == "token_endpoint":
            resp = exchange(fed_server, app.client_id, token, app.scope)
            failed = None if resp.status_code == 200 else last_failure_detail(fed_server, admin, app.client_id)
            assert failed == (None if EXPECTED[case] is None else f"federated:{EXPECTED[case]}"), case
        else:
            assert explain(admin, app.client_id, token)["failed_check"] == EXPECTED[case], case


# -- E13: issuer configuration -------------------------------------------------------------------
@pytest.mark.parametrize("issuer_url", [
    "http://token.actions.githubusercontent.com", "https://issuer.example.test/?tenant=x",
    "https://issuer.example.test/#frag", "https://user@issuer.example.test", "issuer.example.test",
    "https://", "https://issuer.example.test:99999", "https://issuer.example.test/a b",
])
def test_e13_issuer_must_be_https_without_query_or_fragment(fed_server: RunningServer, admin: Admin,
                                                            issuer_url: str) -> None:
    app = admin.app(f"e13-{uuid.uuid4().hex[:6]}")
    resp = manage(fed_server, admin, "POST", f"/applications/{app['client_id']}/federated-credentials",
                  json={"name": "x", "issuer": issuer_url, "subject": SUBJECT})
    assert resp.status_code == 400
    assert resp.json()["code"] == "invalid_issuer"
    assert admin.api.call("GET", f"/applications/{app['client_id']}/federated-credentials") == []


# -- E14: only iss + sub identify ----------------------------------------------------------------
@pytest.mark.parametrize("claim", ["email", "preferred_username", "upn", "name"])
def test_e14_name_claims_cannot_be_conditions(fed_server: RunningServer, admin: Admin, claim: str) -> None:
    app = admin.app(f"e14-{uuid.uuid4().hex[:6]}")
    resp = manage(fed_server, admin, "POST", f"/applications/{app['client_id']}/federated-credentials",
                  json={"name": "x", "issuer": "https://issuer.example.test", "subject": SUBJECT,
                        "claims": {claim: "ci@acme.example"}})
    assert resp.status_code == 400
    assert resp.json()["code"] == "invalid_condition"


def test_e14_matching_email_does_not_stand_in_for_the_subject(fed_server: RunningServer, admin: Admin,
                                                              issuer: ExternalIssuer) -> None:
    app = federated_app(admin, issuer.issuer, SUBJECT)
    token = issuer.token("someone-else", email=SUBJECT, preferred_username=SUBJECT)
    assert_answer(exchange(fed_server, app.client_id, token, app.scope), 401,
                  refused("the token's subject matches no federated credential for its issuer"))


def test_e_error_description_never_echoes_the_token(fed_server: RunningServer, admin: Admin,
                                                    issuer: ExternalIssuer) -> None:
    app = federated_app(admin, issuer.issuer, SUBJECT)
    token = issuer.token("repo:acme/secret-project:ref:refs/heads/x", aud="api://other")
    resp = exchange(fed_server, app.client_id, token, app.scope)
    assert resp.status_code == 401
    assert "secret-project" not in resp.text and "api://other" not in resp.text
    assert token.split(".")[1][:20] not in resp.text
    events = admin.api.call("GET", "/logs/signins", params={"client_id": app.client_id})
    assert all("secret-project" not in json.dumps(e) for e in events)


def test_e06_fetch_is_bounded_in_time(issuer: ExternalIssuer, issuer_ca: tuple[IssuedCert, Path]) -> None:
    """The fetcher gives up after its timeout (10 s in production; shortened here) and says so."""
    import asyncio

    from keyless.oauth.federation.issuers import FetchFailed
    from keyless.server.federation_fetch import HttpMetadataFetcher

    issuer.delay = 2.0

    async def run() -> str:
        fetcher = HttpMetadataFetcher(ca_bundle=issuer_ca[1], allow_private=["127.0.0.1"], timeout=0.5)
        try:
            await fetcher.fetch_json(issuer.issuer + "/.well-known/openid-configuration")
        except FetchFailed as exc:
            return exc.reason
        finally:
            await fetcher.aclose()
        return "fetched"

    started = time.monotonic()
    assert asyncio.run(run()) == "timeout"
    assert time.monotonic() - started < 1.9
