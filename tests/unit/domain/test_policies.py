"""Credential-policy rules (keyless.domain.policies, docs/policies.md): each rule in each mode, the
per-application override over the tenant default, and the strict policy document."""

from __future__ import annotations

import ipaddress

import pytest

from keyless.domain.policies import (
    NO_POLICY,
    AudienceModeRule,
    BlockSecrets,
    CredentialFacts,
    FederationRule,
    InternalCa,
    KeySpec,
    KeyTypes,
    MaxLifetime,
    Policy,
    PolicyError,
    Reaping,
    SourceNetworks,
    check_credential,
    check_new,
    check_sign_in,
    effective,
    enforced,
    parse_address,
)
from keyless.domain.policy_document import policy_from_json, policy_to_json

DAY = 86400
SECRET = CredentialFacts("secret", "s1", lifetime=180 * DAY)


def _reasons(found: list) -> list[str]:  # type: ignore[type-arg]
    return [v.reason for v in found]


def test_block_secrets_refuses_a_new_secret_except_for_allowed_applications() -> None:
    policy = Policy(block_secrets=BlockSecrets("enforce", ("app-ok",)))
    assert _reasons(check_new(policy, "app-x", SECRET)) == ["policy_secret_blocked"]
    assert check_new(policy, "app-ok", SECRET) == []
    assert check_new(policy, "app-x", CredentialFacts("certificate", lifetime=DAY, from_internal_ca=True)) == []
    # An existing secret is not "new": block-secrets never refuses a sign-in (a lifetime cap retires it).
    assert check_sign_in(policy, SECRET, source="10.0.0.1", tenant_audience_mode="entra", assertion=False) == []


def test_max_lifetime_per_kind() -> None:
    policy = Policy(max_lifetime=MaxLifetime("audit", secret=90 * DAY, certificate=365 * DAY))
    found = check_credential(policy, SECRET)
    assert _reasons(found) == ["policy_lifetime_exceeded"] and found[0].mode == "audit" and not enforced(found)
    assert check_credential(policy, CredentialFacts("secret", lifetime=90 * DAY)) == []
    assert check_credential(policy, CredentialFacts("certificate", lifetime=365 * DAY)) == []
    assert _reasons(check_credential(policy, CredentialFacts("certificate", lifetime=366 * DAY))) == [
        "policy_lifetime_exceeded"]
    only_certs = Policy(max_lifetime=MaxLifetime("enforce", certificate=DAY))
    assert check_credential(only_certs, SECRET) == []


@pytest.mark.parametrize(("key_type", "size", "ok"), [
    ("RSA", 2048, False), ("RSA", 3072, True), ("RSA", 4096, True), ("EC", 256, True), ("EC", 384, True),
    ("Ed25519", 256, False),
])
def test_key_types_rsa_3072_or_p256(key_type: str, size: int, ok: bool) -> None:
    policy = Policy(key_types=KeyTypes("enforce", (KeySpec("RSA", 3072), KeySpec("EC", 256))))
    facts = CredentialFacts("certificate", "c1", lifetime=DAY, key_type=key_type, key_size=size)
    assert (check_credential(policy, facts) == []) is ok


def test_internal_ca_refuses_outside_certificates_only() -> None:
    policy = Policy(internal_ca=InternalCa("enforce"))
    outside = CredentialFacts("certificate", lifetime=DAY, from_internal_ca=False)
    assert _reasons(check_credential(policy, outside)) == ["policy_not_internal_ca"]
    assert check_credential(policy, CredentialFacts("certificate", lifetime=DAY, from_internal_ca=True)) == []


def test_federation_issuer_allow_list_and_token_lifetime() -> None:
    policy = Policy(federation=FederationRule("enforce", ("https://token.actions.githubusercontent.com",), 600))
    good = CredentialFacts("federated", issuer="https://token.actions.githubusercontent.com", max_token_lifetime=600)
    assert check_credential(policy, good) == []
    other = CredentialFacts("federated", issuer="https://evil.example", max_token_lifetime=600)
    assert _reasons(check_credential(policy, other)) == ["policy_issuer_not_allowed"]
    long = CredentialFacts("federated", issuer=good.issuer, max_token_lifetime=3600)
    assert _reasons(check_credential(policy, long)) == ["policy_federated_lifetime"]
    any_issuer = Policy(federation=FederationRule("enforce", (), None))
    assert check_credential(any_issuer, other) == []


def test_audience_mode_applies_to_assertions_only() -> None:
    policy = Policy(audience_mode=AudienceModeRule("enforce", "strict"))
    assert _reasons(check_sign_in(policy, None, source=None, tenant_audience_mode="entra", assertion=True)) == [
        "policy_audience_mode"]
    assert check_sign_in(policy, None, source=None, tenant_audience_mode="strict", assertion=True) == []
    assert check_sign_in(policy, None, source=None, tenant_audience_mode="entra", assertion=False) == []


@pytest.mark.parametrize(("source", "ok"), [
    ("10.20.3.4", True), ("10.21.0.1", False), ("::ffff:10.20.0.9", True), ("fd00:1::5", True),
    ("fd01::5", False), ("2001:db8::1", False), (None, False), ("not-an-address", False),
])
def test_source_networks_ipv4_ipv6_and_mapped(source: str | None, ok: bool) -> None:
    nets = (ipaddress.ip_network("10.20.0.0/16"), ipaddress.ip_network("fd00:1::/32"))
    policy = Policy(source_networks=SourceNetworks("enforce", nets))
    found = check_sign_in(policy, None, source=source, tenant_audience_mode="entra", assertion=False)
    assert (found == []) is ok
    if not ok:
        assert _reasons(found) == ["policy_source_network"]


def test_parse_address_unmaps_ipv4() -> None:
    assert str(parse_address("::ffff:192.168.1.1")) == "192.168.1.1"
    assert parse_address("") is None


def test_override_replaces_whole_rules_and_off_exempts() -> None:
    tenant = Policy(block_secrets=BlockSecrets("enforce"), max_lifetime=MaxLifetime("enforce", secret=30 * DAY))
    override = Policy(block_secrets=BlockSecrets("off"))
    policies = {None: tenant, "legacy": override}
    legacy = effective(policies, "legacy")
    assert check_new(legacy, "legacy", CredentialFacts("secret", lifetime=DAY)) == []
    assert _reasons(check_new(legacy, "legacy", SECRET)) == ["policy_lifetime_exceeded"]  # inherited
    assert effective(policies, "other") is tenant
    assert effective({}, "x") is NO_POLICY and NO_POLICY.empty
    assert legacy.rules()[0][0] == "max_lifetime" and not legacy.empty


def test_judges_credentials_only_for_credential_rules() -> None:
    assert not Policy(source_networks=SourceNetworks("audit", ())).judges_credentials
    assert Policy(internal_ca=InternalCa("audit")).judges_credentials
    assert not Policy(internal_ca=InternalCa("off")).judges_credentials


def test_reaping_is_no_sign_in_rule() -> None:
    """A policy whose only rule is reaping leaves the token endpoint on its fast path (`empty`)."""
    reaping = Policy(reaping=Reaping("enforce", unused_days=90))
    assert reaping.empty and not reaping.judges_credentials and reaping.rules() == [("reaping", reaping.reaping)]
    assert not Policy(reaping=Reaping("audit", 90), internal_ca=InternalCa("audit")).empty
    assert policy_from_json({"reaping": {"mode": "off"}}) == Policy(reaping=Reaping("off"))  # an override's exemption


def test_document_round_trip() -> None:
    doc = {
        "block_secrets": {"mode": "enforce", "allowed_apps": ["a"]},
        "max_lifetime": {"mode": "audit", "secret": 7776000, "certificate": None},
        "key_types": {"mode": "enforce",
                      "allowed": [{"type": "RSA", "min_size": 3072}, {"type": "EC", "min_size": 256}]},
        "internal_ca": {"mode": "audit"},
        "federation": {"mode": "enforce", "issuers": ["https://issuer.example"], "max_token_lifetime": 600},
        "audience_mode": {"mode": "off", "required": "strict"},
        "source_networks": {"mode": "enforce", "networks": ["10.20.0.0/16", "fd00::/8"]},
        "reaping": {"mode": "audit", "unused_days": 90, "delete_after_days": None},
    }
    policy = policy_from_json(doc)
    assert policy_to_json(policy) == doc
    assert policy_from_json({}) == Policy()


@pytest.mark.parametrize("doc", [
    [], {"block_secret": {"mode": "enforce"}}, {"internal_ca": {"mode": "on"}},
    {"internal_ca": {"mode": "audit", "x": 1}},
    {"source_networks": {"mode": "enforce", "networks": ["10.0.0.1/8"]}},
    {"source_networks": {"mode": "enforce", "networks": ["example.com"]}},
    {"max_lifetime": {"mode": "enforce", "secret": 10}}, {"max_lifetime": {"mode": "enforce", "secret": True}},
    {"key_types": {"mode": "enforce", "allowed": [{"type": "DSA"}]}},
    {"audience_mode": {"mode": "enforce", "required": "loose"}},
    {"federation": {"mode": "enforce", "issuers": "https://one"}},
    {"reaping": {"mode": "enforce"}}, {"reaping": {"mode": "enforce", "unused_days": 7}},
    {"reaping": {"mode": "audit", "unused_days": 90.5}}, {"reaping": {"mode": "audit", "delete_after_days": 0}},
    {"reaping": {"mode": "audit", "unused_days": 3651}}, {"reaping": {"mode": "audit", "unused_days": True}},
])
def test_document_refuses_what_is_not_a_policy(doc: object) -> None:
    with pytest.raises(PolicyError) as caught:
        policy_from_json(doc)
    assert caught.value.code == "invalid_policy"
