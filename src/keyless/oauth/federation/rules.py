"""The one policy function for federated credentials (catalog E09): does a verified external token's
claims satisfy a credential? The token endpoint and `keyless federation test` both call `evaluate`,
so what the test explains is exactly what sign-in enforces.

Subjects are exact strings. A pattern is offered only in one shape: a literal prefix that ends at a
segment boundary (`:` or `/`) followed by a final `*`, matching one or more further characters: so
`repo:acme/*` can never match `repo:acme-evil/x` (E01), and a pattern with no literal part is refused.
Only `iss` and `sub` identify a subject; `email`, `preferred_username` and other mutable name claims
are refused as conditions (E14).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from keyless.domain.federation import DEFAULT_MAX_TOKEN_LIFETIME, FederatedCredential
from keyless.errors import KeylessError

SEGMENT_BOUNDARIES = (":", "/")
NAME_CLAIMS = frozenset({"email", "email_verified", "preferred_username", "name", "given_name", "family_name",
                         "nickname", "upn", "unique_name", "login", "actor"})
RESERVED_CLAIMS = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti"})
MAX_CLAIM_CONDITIONS = 10


class RuleError(KeylessError, ValueError):
    """A credential that must not be stored; `code` is stable for scripts."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_issuer(issuer: str) -> str:
    """https, a host, no userinfo, query or fragment (RFC 8414 §2, catalog E13)."""
    if len(issuer) > 512:
        raise RuleError("invalid_issuer", "issuer is longer than 512 characters")
    try:
        parts = urlsplit(issuer)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise RuleError("invalid_issuer", "issuer is not a valid URL") from None
    if parts.scheme != "https":
        raise RuleError("invalid_issuer", "issuer must be an https URL")
    if not parts.hostname or "@" in parts.netloc:
        raise RuleError("invalid_issuer", "issuer must name a host and no user information")
    if parts.query or parts.fragment or "?" in issuer or "#" in issuer:
        raise RuleError("invalid_issuer", "issuer must have no query or fragment")
    if any(c.isspace() for c in issuer):
        raise RuleError("invalid_issuer", "issuer must not contain spaces")
    return issuer


def check_subject(subject: str, *, pattern: bool) -> str:
    if not subject or len(subject) > 512 or any(not c.isprintable() for c in subject):
        raise RuleError("invalid_subject", "subject must be 1 to 512 printable characters")
    if not pattern:
        return subject
    if not subject.endswith("*") or "*" in subject[:-1]:
        raise RuleError("invalid_subject_pattern", "a subject pattern has exactly one `*`, at its end")
    prefix = subject[:-1]
    if not prefix.endswith(SEGMENT_BOUNDARIES) or len(prefix.strip(":/")) == 0:
        raise RuleError("invalid_subject_pattern",
                        "the `*` of a subject pattern must follow a literal prefix ending in `:` or `/`")
    return subject


def check_claims(claims: Mapping[str, str]) -> dict[str, str]:
    if len(claims) > MAX_CLAIM_CONDITIONS:
        raise RuleError("too_many_conditions", f"at most {MAX_CLAIM_CONDITIONS} claim conditions")
    out: dict[str, str] = {}
    for name, value in claims.items():
        if name in RESERVED_CLAIMS:
            raise RuleError("invalid_condition", f"`{name}` is checked by the credential itself, not a condition")
        if name.lower() in NAME_CLAIMS:
            raise RuleError("invalid_condition",
                            f"`{name}` is a mutable name claim; only stable claims may be conditions (E14)")
        if not name or len(name) > 64 or not value or len(value) > 256:
            raise RuleError("invalid_condition", "condition names are 1-64 and values 1-256 characters")
        out[name] = value
    return out


def subject_matches(credential: FederatedCredential, sub: str) -> bool:
    if not credential.subject_is_pattern:
        return sub == credential.subject
    prefix = credential.subject[:-1]
    return len(sub) > len(prefix) and sub.startswith(prefix)


@dataclass(frozen=True)
class Outcome:
    """One credential's verdict on a token: `failed` is the first check that failed (None: match)."""

    credential: FederatedCredential
    failed: str | None
    passed: tuple[str, ...]

    @property
    def matched(self) -> bool:
        return self.failed is None


# What each failed check means, in words safe to send back (no token content is echoed).
EXPLANATIONS = {
    "audience": "the token's audience is not the credential's audience",
    "audience_not_single": "the token must name exactly one audience",
    "subject": "the token's subject matches no federated credential for its issuer",
    "claims": "the token does not satisfy the credential's claim conditions",
    "algorithm": "the token's signing algorithm is not allowed for this credential",
    "lifetime": "the token's lifetime is longer than the credential accepts",
}


def evaluate(
    credential: FederatedCredential, claims: Mapping[str, Any], *, alg: str, lifetime: float | None
) -> Outcome:
    """Checks in a fixed order, after the signature, issuer and expiry are verified by the caller."""
    passed: list[str] = []

    def result(failed: str | None) -> Outcome:
        return Outcome(credential=credential, failed=failed, passed=tuple(passed))

    aud = claims.get("aud")
    if isinstance(aud, list):
        if len(aud) != 1:
            return result("audience_not_single")
        aud = aud[0]
    if aud != credential.audience:
        return result("audience")
    passed.append("audience")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not subject_matches(credential, sub):
        return result("subject")
    passed.append("subject")
    for name, expected in credential.claims.items():
        if claims.get(name) != expected:
            return result("claims")
    if credential.claims:
        passed.append("claims")
    if alg not in credential.algorithms:
        return result("algorithm")
    passed.append("algorithm")
    if lifetime is not None and lifetime > credential.max_token_lifetime:
        return result("lifetime")
    passed.append("lifetime")
    return result(None)


def best(outcomes: list[Outcome]) -> Outcome | None:
    """The match, or else the credential that got furthest (its failure is what users need to see)."""
    for outcome in outcomes:
        if outcome.matched:
            return outcome
    return max(outcomes, key=lambda o: len(o.passed), default=None)


@dataclass(frozen=True)
class LintFinding:
    credential_id: str
    owner_id: str
    name: str
    severity: str  # "warning" or "error"
    code: str
    message: str
    owner_type: str = "application"


def lint(credentials: list[FederatedCredential]) -> list[LintFinding]:
    """Trust that is broader than one repository or namespace, and other risky shapes."""
    findings: list[LintFinding] = []

    def add(c: FederatedCredential, severity: str, code: str, message: str) -> None:
        findings.append(LintFinding(c.id, c.owner_id, c.name, severity, code, message, c.owner_type))

    seen: dict[tuple[str, str, str], FederatedCredential] = {}
    for c in credentials:
        if c.subject_is_pattern:
            literal = c.subject[:-1]
            if literal.startswith("repo:"):
                owner_repo = literal[len("repo:"):]
                if owner_repo.count("/") < 1 or not owner_repo.split("/", 1)[1].strip(":/"):
                    add(c, "error", "pattern_spans_repositories",
                        "the subject pattern matches every repository of an owner; name one repository")
            elif literal.startswith("system:serviceaccount:"):
                if not literal[len("system:serviceaccount:"):].strip(":"):
                    add(c, "error", "pattern_spans_namespaces",
                        "the subject pattern matches service accounts of every namespace; name one namespace")
            else:
                add(c, "warning", "pattern_unknown_shape",
                    "a subject pattern for an issuer whose subject format is unknown; prefer an exact subject")
            if literal.startswith("repo:") and not c.claims:
                add(c, "warning", "pattern_without_conditions",
                    "a pattern with no claim condition (e.g. repository_owner_id) trusts any ref and environment")
        key = (c.owner_id, c.issuer, c.subject)
        if key in seen:
            add(c, "warning", "duplicate_subject", f"the same issuer and subject as credential {seen[key].name!r}")
        seen.setdefault(key, c)
        if c.max_token_lifetime > DEFAULT_MAX_TOKEN_LIFETIME:
            add(c, "warning", "long_token_lifetime",
                "external tokens living over an hour are accepted; a stolen one is worth that long")
    return findings
