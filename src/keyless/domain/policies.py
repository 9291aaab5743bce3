"""Credential policies: what a tenant (and, overriding it, one application) allows its credentials to be.

A policy is a set of rules, each in one of three modes: `enforce` (a violating write is refused and a
violating sign-in gets the usual 401 invalid_client), `audit` (allowed, the violation recorded), or
`off` (only in a per-application override: this application is exempt from the tenant's rule). The
rules follow Entra's application-management policies (block new secrets, cap lifetimes, restrict key
types, trusted certificate issuers) plus Keyless's own: a federation issuer allow-list, the source
networks an application may sign in from (conditional access for workloads), and reaping of unused
credentials (judged by the scheduled scan, not at a write or a sign-in). docs/policies.md is the
user's account of each rule; catalog O05 is why rules apply at sign-in too, not only at write.

Everything here is pure: a rule looks at `CredentialFacts` (what is known of a credential, new or
existing) and at a sign-in's source address, and answers with `Violation`s. The services decide what a
violation does (`keyless.directory.policies`, `keyless.oauth.policy_check`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from functools import cached_property
from typing import Literal, Protocol

from keyless.domain.federation import FederatedCredential
from keyless.domain.model import AuditEvent, Certificate, ClientSecret
from keyless.errors import KeylessError

Mode = Literal["off", "audit", "enforce"]
MODES: tuple[Mode, ...] = ("off", "audit", "enforce")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
KEY_TYPES = ("RSA", "EC", "Ed25519")
MAX_LIST = 100  # entries in any list of a rule (applications, issuers, networks, key specs)


class PolicyError(KeylessError):
    """A policy document that cannot be a policy: a stable `code` and a message for the caller."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Violation:
    """One rule a credential or sign-in breaks. `reason` is the stable code in the sign-in log, the
    problem `code` of a refused write and the CLI's error; `message` says it to a person."""

    rule: str
    mode: Mode
    reason: str
    message: str
    credential_id: str = ""

    @property
    def enforced(self) -> bool:
        return self.mode == "enforce"


@dataclass(frozen=True)
class BlockSecrets:
    """No new client secrets, except for the applications listed (existing secrets keep working: a
    maximum secret lifetime is how they are retired)."""

    mode: Mode
    allowed_apps: tuple[str, ...] = ()


@dataclass(frozen=True)
class MaxLifetime:
    """Longest total validity (expiry minus start), in seconds, per credential kind (None: no cap)."""

    mode: Mode
    secret: int | None = None
    certificate: int | None = None


@dataclass(frozen=True)
class KeySpec:
    type: str  # RSA | EC | Ed25519
    min_size: int = 0  # bits: RSA modulus, EC curve size (256 is P-256)


@dataclass(frozen=True)
class KeyTypes:
    """A certificate's key must match one of `allowed` (e.g. RSA >= 3072 or EC >= 256)."""

    mode: Mode
    allowed: tuple[KeySpec, ...] = ()


@dataclass(frozen=True)
class InternalCa:
    """Certificates must be issued by the installation's own CA (`keyless cert new`, agents)."""

    mode: Mode


@dataclass(frozen=True)
class FederationRule:
    """Federated credentials may trust only these issuers (empty: any) and accept external tokens
    living at most `max_token_lifetime` seconds (the credential's own cap, docs/federation.md)."""

    mode: Mode
    issuers: tuple[str, ...] = ()
    max_token_lifetime: int | None = None


@dataclass(frozen=True)
class AudienceModeRule:
    """Client assertions are accepted only while the tenant's assertion audience mode is `required`
    (requirements §0 item 1: `strict` closes the audience-injection attack)."""

    mode: Mode
    required: Literal["entra", "strict"] = "strict"


@dataclass(frozen=True)
class SourceNetworks:
    """Sign-ins only from these networks (IPv4 and IPv6 CIDRs), the address as the server sees it
    (docs/policies.md, "Trusted proxies")."""

    mode: Mode
    networks: tuple[Network, ...] = ()


@dataclass(frozen=True)
class Reaping:
    """Disable an application's or managed identity's secrets and certificates that nobody has used
    for `unused_days` (after a `credential.unused` warning 7 days before), and delete disabled ones
    `delete_after_days` after their revocation (None: that half is off). `audit` only notifies and
    reports what would be reaped. Judged by the scheduled scan (`keyless.directory.reaping`), never
    at a write or a sign-in (docs/policies.md, "Reaping")."""

    mode: Mode
    unused_days: float | None = None
    delete_after_days: float | None = None


Rule = (BlockSecrets | MaxLifetime | KeyTypes | InternalCa | FederationRule | AudienceModeRule | SourceNetworks
        | Reaping)


@dataclass(frozen=True)
class Policy:
    """A tenant's default policy, or one application's override (None: inherit the tenant's rule)."""

    block_secrets: BlockSecrets | None = None
    max_lifetime: MaxLifetime | None = None
    key_types: KeyTypes | None = None
    internal_ca: InternalCa | None = None
    federation: FederationRule | None = None
    audience_mode: AudienceModeRule | None = None
    source_networks: SourceNetworks | None = None
    reaping: Reaping | None = None

    def over(self, base: Policy) -> Policy:
        """This override applied on top of `base`: each rule it sets replaces the base's whole rule."""
        return replace(base, **{f.name: getattr(self, f.name) for f in fields(self)
                                if getattr(self, f.name) is not None})

    def rules(self) -> list[tuple[str, Rule]]:
        """The rules in force: set and not `off`."""
        return [(f.name, r) for f in fields(self) if (r := getattr(self, f.name)) is not None and r.mode != "off"]

    @cached_property
    def empty(self) -> bool:
        """No rule in force that judges a sign-in (the token endpoint's fast path: computed once per
        policy object; reaping is the scheduled scan's business)."""
        return all(name in _SCAN_RULES for name, _ in self.rules())

    @cached_property
    def judges_credentials(self) -> bool:
        """Some rule in force looks at the credential itself (not only at the source or tenant)."""
        return any(name in _CREDENTIAL_RULES for name, _ in self.rules())


NO_POLICY = Policy()
_CREDENTIAL_RULES = frozenset({"max_lifetime", "key_types", "internal_ca", "federation"})
_SCAN_RULES = frozenset({"reaping"})  # judged by the scheduled scan only


@dataclass(frozen=True)
class CredentialFacts:
    """What a rule may ask of a credential: the same for one being written and one already stored."""

    kind: Literal["secret", "certificate", "federated"]
    id: str = ""
    lifetime: float | None = None
    key_type: str | None = None
    key_size: int | None = None
    from_internal_ca: bool | None = None
    issuer: str | None = None
    max_token_lifetime: int | None = None


def facts_of(record: ClientSecret | Certificate | FederatedCredential,
             internal_ca: Callable[[bytes], bool] | None = None) -> CredentialFacts:
    """What the rules may ask of a stored credential of any kind (`internal_ca`: DER certificate ->
    issued by this installation's CA; without it that is unknown and the rule passes)."""
    if isinstance(record, ClientSecret):
        return CredentialFacts("secret", record.id, lifetime=record.expires_at - record.created_at)
    if isinstance(record, Certificate):
        return CredentialFacts(
            "certificate", record.id, lifetime=record.not_after - record.not_before, key_type=record.key_type,
            key_size=record.key_size, from_internal_ca=internal_ca(record.der) if internal_ca else None,
        )
    return CredentialFacts("federated", record.id, issuer=record.issuer, max_token_lifetime=record.max_token_lifetime)


def _days(seconds: float) -> str:
    return f"{seconds / 86400:g} days"


def check_credential(policy: Policy, facts: CredentialFacts) -> list[Violation]:
    """The rules about what a credential is (lifetime, key, issuer): at write and at sign-in alike."""
    out: list[Violation] = []

    def add(rule: str, mode: Mode, reason: str, message: str) -> None:
        out.append(Violation(rule, mode, reason, message, facts.id))

    cap = policy.max_lifetime
    if cap is not None and cap.mode != "off" and facts.lifetime is not None:
        limit = cap.secret if facts.kind == "secret" else cap.certificate if facts.kind == "certificate" else None
        if limit is not None and facts.lifetime > limit:
            add("max_lifetime", cap.mode, "policy_lifetime_exceeded",
                f"a {facts.kind} may be valid for at most {_days(limit)}; this one for {_days(facts.lifetime)}")
    if facts.kind == "certificate":
        keys = policy.key_types
        if keys is not None and keys.mode != "off" and facts.key_type is not None and not any(
                k.type == facts.key_type and (facts.key_size or 0) >= k.min_size for k in keys.allowed):
            allowed = ", ".join(f"{k.type} >= {k.min_size}" if k.min_size else k.type for k in keys.allowed)
            add("key_types", keys.mode, "policy_key_type",
                f"{facts.key_type} {facts.key_size} keys are not allowed; allowed: {allowed or 'none'}")
        ca = policy.internal_ca
        if ca is not None and ca.mode != "off" and facts.from_internal_ca is False:
            add("internal_ca", ca.mode, "policy_not_internal_ca",
                "certificates must be issued by this installation's CA (keyless cert new)")
    fed = policy.federation
    if facts.kind == "federated" and fed is not None and fed.mode != "off":
        if fed.issuers and facts.issuer not in fed.issuers:
            add("federation", fed.mode, "policy_issuer_not_allowed", "this federated issuer is not on the allow-list")
        if (fed.max_token_lifetime is not None and facts.max_token_lifetime is not None
                and facts.max_token_lifetime > fed.max_token_lifetime):
            add("federation", fed.mode, "policy_federated_lifetime",
                f"external tokens may live at most {fed.max_token_lifetime} s; this credential accepts "
                f"{facts.max_token_lifetime} s")
    return out


def check_new(policy: Policy, client_id: str, facts: CredentialFacts) -> list[Violation]:
    """What a new credential for `client_id` breaks (block-secrets is about new secrets only)."""
    out = []
    block = policy.block_secrets
    if facts.kind == "secret" and block is not None and block.mode != "off" and client_id not in block.allowed_apps:
        out.append(Violation("block_secrets", block.mode, "policy_secret_blocked",
                             "new client secrets are blocked by policy: use a certificate or federation"))
    return out + check_credential(policy, facts)


def parse_address(source: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """A source address as compared with networks: an IPv4-mapped IPv6 address is its IPv4 address."""
    if not source:
        return None
    try:
        addr = ipaddress.ip_address(source)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def check_sign_in(policy: Policy, facts: CredentialFacts | None, *, source: str | None,
                  tenant_audience_mode: str, assertion: bool) -> list[Violation]:
    """What a successful client authentication breaks: the credential it used (it may predate the
    rule, O05), where it came from, and the tenant's audience mode for an assertion."""
    out = check_credential(policy, facts) if facts is not None else []
    nets = policy.source_networks
    if nets is not None and nets.mode != "off":
        addr = parse_address(source)
        if addr is None or not any(addr.version == n.version and addr in n for n in nets.networks):
            out.append(Violation("source_networks", nets.mode, "policy_source_network",
                                 "sign-in from a source address outside the application's allowed networks"))
    aud = policy.audience_mode
    if assertion and aud is not None and aud.mode != "off" and tenant_audience_mode != aud.required:
        out.append(Violation("audience_mode", aud.mode, "policy_audience_mode",
                             f"client assertions need the tenant's audience mode to be {aud.required}"))
    return out


class PolicyStore(Protocol):
    """Stored policies: the tenant's default (`client_id` None) and per-application overrides."""

    async def get_policy(self, tenant_id: str, client_id: str | None) -> Policy | None: ...
    async def policies(self, tenant_id: str) -> Mapping[str | None, Policy]:
        """Every stored policy of the tenant by client id (None: the tenant default)."""
        ...

    async def put_policy(self, tenant_id: str, client_id: str | None, policy: Policy, audit: AuditEvent) -> None: ...
    async def delete_policy(self, tenant_id: str, client_id: str | None, audit: AuditEvent) -> bool: ...


def effective(policies: Mapping[str | None, Policy], client_id: str | None) -> Policy:
    """The tenant default with the application's override on top."""
    base = policies.get(None, NO_POLICY)
    own = policies.get(client_id) if client_id is not None else None
    return own.over(base) if own is not None else base


def enforced(violations: Sequence[Violation]) -> list[Violation]:
    return [v for v in violations if v.enforced]
