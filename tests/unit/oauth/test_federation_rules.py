"""The one policy function and the configuration rules for federated credentials (E01, E02, E13, E14)."""

from __future__ import annotations

from typing import Any

import pytest

from keyless.domain.federation import FederatedCredential
from keyless.oauth.federation import rules


def cred(subject: str = "repo:acme/api:ref:refs/heads/main", **kw: Any) -> FederatedCredential:
    base: dict[str, Any] = {"id": "c1", "tenant_id": "t", "owner_type": "application", "owner_id": "app",
                            "name": "n", "issuer": "https://issuer.example.test", "subject": subject,
                            "audience": "api://KeylessTokenExchange"}
    base.update(kw)
    return FederatedCredential(**base)


def claims(**kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"sub": "repo:acme/api:ref:refs/heads/main", "aud": "api://KeylessTokenExchange"}
    out.update(kw)
    return out


@pytest.mark.parametrize("issuer", ["https://token.actions.githubusercontent.com", "https://k8s.example:6443/x",
                                    "https://127.0.0.1:8443/tenant/v2.0"])
def test_good_issuers(issuer: str) -> None:
    assert rules.check_issuer(issuer) == issuer


@pytest.mark.parametrize("issuer", ["http://a.example", "https://a.example/?q", "https://a.example/#f",
                                    "https://u:p@a.example", "https:///x", "ftp://a.example", "https://a.example/ x",
                                    "https://a.example:0x50", "https://" + "a" * 600])
def test_e13_bad_issuers(issuer: str) -> None:
    with pytest.raises(rules.RuleError) as info:
        rules.check_issuer(issuer)
    assert info.value.code == "invalid_issuer"


@pytest.mark.parametrize(("pattern", "sub", "matches"), [
    ("repo:org/*", "repo:org/api:ref:refs/heads/main", True),
    ("repo:org/*", "repo:org-evil/api", False),
    ("repo:org/*", "repo:org/", False),
    ("repo:acme/api:*", "repo:acme/api:environment:prod", True),
    ("repo:acme/api:*", "repo:acme/api-evil:environment:prod", False),
    ("system:serviceaccount:prod:*", "system:serviceaccount:prod:orders", True),
    ("system:serviceaccount:prod:*", "system:serviceaccount:production:orders", False),
])
def test_e01_patterns_match_at_segment_boundaries(pattern: str, sub: str, matches: bool) -> None:
    credential = cred(rules.check_subject(pattern, pattern=True), subject_is_pattern=True)
    assert rules.subject_matches(credential, sub) is matches


@pytest.mark.parametrize("pattern", ["*", "repo*", "repo:*:x", "a*b*", "repo:org", ":*", "/*", "::*"])
def test_e01_unanchored_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(rules.RuleError):
        rules.check_subject(pattern, pattern=True)


def test_exact_subject_is_exact() -> None:
    credential = cred()
    assert rules.subject_matches(credential, "repo:acme/api:ref:refs/heads/main")
    assert not rules.subject_matches(credential, "repo:acme/api:ref:refs/heads/main2")
    assert not rules.subject_matches(credential, "repo:acme/api:ref:refs/heads/*")


@pytest.mark.parametrize("name", ["email", "Email", "preferred_username", "upn", "sub", "iss", "aud"])
def test_e14_conditions_on_names_or_reserved_claims_are_refused(name: str) -> None:
    with pytest.raises(rules.RuleError):
        rules.check_claims({name: "x"})


@pytest.mark.parametrize(("token", "failed", "passed"), [
    (claims(), None, ("audience", "subject", "algorithm", "lifetime")),
    (claims(aud="sts.amazonaws.com"), "audience", ()),
    (claims(aud=["api://KeylessTokenExchange"]), None, ("audience", "subject", "algorithm", "lifetime")),
    (claims(aud=["api://KeylessTokenExchange", "x"]), "audience_not_single", ()),
    (claims(aud=[]), "audience_not_single", ()),
    (claims(sub="repo:acme/other:ref:refs/heads/main"), "subject", ("audience",)),
    (claims(sub=None), "subject", ("audience",)),
])
def test_evaluate_order_and_verdicts(token: dict[str, Any], failed: str | None, passed: tuple[str, ...]) -> None:
    outcome = rules.evaluate(cred(), token, alg="RS256", lifetime=600)
    assert outcome.failed == failed
    assert outcome.passed == passed


def test_evaluate_conditions_algorithm_and_lifetime() -> None:
    credential = cred(claims={"environment": "prod"}, algorithms=("ES256",), max_token_lifetime=600)
    assert rules.evaluate(credential, claims(environment="dev"), alg="ES256", lifetime=60).failed == "claims"
    assert rules.evaluate(credential, claims(environment=["prod"]), alg="ES256", lifetime=60).failed == "claims"
    assert rules.evaluate(credential, claims(environment="prod"), alg="RS256", lifetime=60).failed == "algorithm"
    assert rules.evaluate(credential, claims(environment="prod"), alg="ES256", lifetime=601).failed == "lifetime"
    assert rules.evaluate(credential, claims(environment="prod"), alg="ES256", lifetime=600).matched


def test_best_prefers_the_match_then_the_furthest() -> None:
    a = rules.evaluate(cred(id="a"), claims(aud="x"), alg="RS256", lifetime=1)
    b = rules.evaluate(cred(id="b", subject="other"), claims(), alg="RS256", lifetime=1)
    c = rules.evaluate(cred(id="c"), claims(), alg="RS256", lifetime=1)
    assert rules.best([a, b]) is b
    assert rules.best([a, b, c]) is c
    assert rules.best([]) is None


def test_lint() -> None:
    findings = rules.lint([
        cred("repo:acme/*", id="1", name="org-wide", subject_is_pattern=True),
        cred("repo:acme/api:*", id="2", name="one-repo", subject_is_pattern=True, claims={"repository_id": "9"}),
        cred("system:serviceaccount:*", id="3", name="all-ns", subject_is_pattern=True),
        cred("system:serviceaccount:prod:*", id="4", name="one-ns", subject_is_pattern=True),
        cred("spiffe://x/*", id="5", name="other", subject_is_pattern=True),
        cred("exact", id="6", name="dup-a"),
        cred("exact", id="7", name="dup-b"),
    ])
    assert [(f.name, f.code, f.severity) for f in findings] == [
        ("org-wide", "pattern_spans_repositories", "error"),
        ("org-wide", "pattern_without_conditions", "warning"),
        ("all-ns", "pattern_spans_namespaces", "error"),
        ("other", "pattern_unknown_shape", "warning"),
        ("dup-b", "duplicate_subject", "warning"),
    ]
