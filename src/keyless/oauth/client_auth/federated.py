"""Federated client assertions: a token from an external issuer stands in for a client credential
(RFC 7521 §4.2, RFC 7523 §2.2 with an external `iss`; issue 5 scope 2-3; catalog E01-E14).

Order: shape and type, then the client's federated credentials for the token's issuer (only those
issuers are ever fetched), the issuer's keys (per issuer, `issuers.IssuerKeys`), the signature with
an algorithm both the key and a credential allow, expiry and lifetime, then the one policy function
(`rules.evaluate`) over every credential for that issuer, and last the replay rule of the credential
that matched. `examine` runs every check without consuming anything, for `keyless federation test`;
`verify` is `examine` plus the enabled check and replay, so both paths enforce the same rules (E09).

Failures are `invalid_client` with a description naming the check that failed, never echoing the
token. An unknown client and a client that trusts no credential for the issuer get the same answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from keyless.clock import Clock
from keyless.crypto.keys import PublicKey
from keyless.domain.federation import MAX_TOKEN_LIFETIME_LIMIT, FederatedCredential, owner_type_of
from keyless.domain.model import ClientRecord, Tenant
from keyless.domain.ports import DirectoryReader, OneTimeUses
from keyless.jose.claims import numeric_date
from keyless.jose.hygiene import InvalidClaim, canonical_digest
from keyless.jose.jws import InvalidJws, verify_with_key
from keyless.oauth.client_auth.assertion import jwt_bearer
from keyless.oauth.client_auth.result import AuthenticatedClient
from keyless.oauth.context import FederationContext, TokenContext, TokenEnv
from keyless.oauth.deferral import Deferral, at_once
from keyless.oauth.errors import InvalidClient
from keyless.oauth.federation import rules
from keyless.oauth.federation.issuers import FetchFailed, IssuerKeys

__all__ = ["METHOD", "FederatedAssertion", "FederationContext", "examine", "is_federated", "verify"]

METHOD = "federated_credential"
JTI_KIND = "federated_jti"
TOKEN_KIND = "federated_token"  # noqa: S105 - a one-time-use namespace, not a secret
EXPIRY_LEEWAY = 30
FUTURE_SKEW = 60
_ACCEPTED_TYP = frozenset({"jwt", "application/jwt"})

DESCRIPTIONS = {
    "malformed": "the client assertion is not a compact signed JWT",
    "typ": "the federated token type is not accepted (typ must be JWT or absent)",
    "alg": "the federated token names no usable signing algorithm",
    "issuer_not_trusted": "the token's issuer is not trusted by any federated credential of this client",
    "keys_unavailable": "the signing keys of the token's issuer could not be obtained",
    "kid_missing": "the federated token has no kid and its issuer publishes several keys",
    "kid_unknown": "the token's key id is not among the issuer's published keys",
    "key_algorithm": "the token's signing algorithm is not allowed for this issuer's key or credential",
    "signature": "the federated token's signature does not verify with the issuer's keys",
    "exp_missing": "the federated token has no exp claim",
    "time_claims": "the federated token's exp, iat or nbf is not a NumericDate in range",
    "expired": "the federated token has expired",
    "lifetime": "the federated token lives longer than accepted",
    "not_yet_valid": "the federated token is not valid yet (nbf or iat in the future)",
    "sub_missing": "the federated token has no subject",
    "client_disabled": "the client is disabled",
    "jti_missing": "this federated credential accepts each token once and the token has no jti",
    "replayed": "this federated credential accepts each token once and this one was already used",
    **rules.EXPLANATIONS,
}


def failure(code: str) -> InvalidClient:
    return InvalidClient(detail=f"federated:{code}", description=DESCRIPTIONS[code], auth_method=METHOD)


@dataclass
class Examination:
    """What `examine` found. `failed` is None when a credential matched."""

    failed: str | None
    issuer: str | None = None
    subject: str | None = None
    fetch_error: str | None = None
    outcomes: list[rules.Outcome] = field(default_factory=list)
    matched: FederatedCredential | None = None
    exp: float | None = None
    jti: str | None = None


def is_federated(claims: Mapping[str, Any], client_id: str | None) -> bool:
    """A client assertion whose `iss` is neither the client nor its own `sub` is a federated token:
    certificate assertions carry `iss` = `sub` = client_id (RFC 7523 §3), and one naming another
    client keeps its own answer (`private_key_jwt`: client_id mismatch, R-CA-2)."""
    iss = claims.get("iss")
    return client_id is not None and isinstance(iss, str) and iss != client_id and iss != claims.get("sub")


def _times(claims: Mapping[str, Any]) -> tuple[float | None, float | None, float | None] | None:
    """`exp`, `iat`, `nbf`, or None when one is not a NumericDate (`hygiene.split_compact` refused such
    tokens already; this keeps `examine` safe for claims from anywhere)."""
    try:
        return numeric_date(claims, "exp"), numeric_date(claims, "iat"), numeric_date(claims, "nbf")
    except InvalidClaim:
        return None


async def examine(
    assertion: str,
    header: Mapping[str, Any],
    claims: Mapping[str, Any],
    credentials: Sequence[FederatedCredential],
    issuer_keys: IssuerKeys,
    clock: Clock,
    defer: Deferral = at_once,
) -> Examination:
    iss, sub = claims.get("iss"), claims.get("sub")
    found = Examination(failed=None, issuer=iss if isinstance(iss, str) else None,
                        subject=sub if isinstance(sub, str) else None)

    def stop(code: str) -> Examination:
        found.failed = code
        return found

    if "=" in assertion:
        return stop("malformed")  # padded segments: Microsoft's own assertions, never an issuer's token
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.lower() not in _ACCEPTED_TYP):
        return stop("typ")  # an access token, DPoP proof, logout token ... (RFC 8725 §3.11)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        return stop("alg")
    trusted = [c for c in credentials if isinstance(iss, str) and c.issuer == iss]
    if not trusted or not isinstance(iss, str):
        return stop("issuer_not_trusted")
    kid = header.get("kid")
    try:
        keys = await issuer_keys.keys(iss, kid if isinstance(kid, str) else None)
    except FetchFailed as exc:
        found.fetch_error = exc.reason
        return stop("keys_unavailable")
    if isinstance(kid, str):
        entry = keys.get(kid)
        if entry is None:
            return stop("kid_unknown")
    elif len(keys) == 1:
        entry = next(iter(keys.values()))
    else:
        return stop("kid_missing")
    if alg not in entry.algorithms or not any(alg in c.algorithms for c in trusted):
        return stop("key_algorithm")  # E08: the key's type and the credential both decide, never the header
    if not await defer(partial(_signed_by, assertion, entry.key, alg)):
        return stop("signature")

    now = clock.now()
    times = _times(claims)
    if times is None:
        return stop("time_claims")
    exp, iat, nbf = times
    if exp is None:
        return stop("exp_missing")
    found.exp = exp
    if now >= exp + EXPIRY_LEEWAY:
        return stop("expired")
    if exp - now > MAX_TOKEN_LIFETIME_LIMIT + FUTURE_SKEW:
        return stop("lifetime")
    for value in (iat, nbf):
        if value is not None and value > now + FUTURE_SKEW:
            return stop("not_yet_valid")
    # The lifetime each credential caps (rules.evaluate): exp - iat, else exp - nbf, else what is
    # left of it now (a token without iat or nbf cannot show when it was issued, so it is judged by
    # the time it may still be used; docs/federation.md).
    start = iat if iat is not None else nbf
    lifetime = exp - (start if start is not None else now)
    if not isinstance(sub, str) or not sub:
        return stop("sub_missing")
    jti = claims.get("jti")
    found.jti = jti if isinstance(jti, str) and jti else None
    found.outcomes = [rules.evaluate(c, claims, alg=alg, lifetime=lifetime) for c in trusted]
    chosen = rules.best(found.outcomes)
    if chosen is None or not chosen.matched:
        return stop(chosen.failed if chosen and chosen.failed else "subject")
    found.matched = chosen.credential
    return found


def _signed_by(assertion: str, key: PublicKey, alg: str) -> bool:
    try:
        verify_with_key(assertion, key, alg=alg)
    except InvalidJws:
        return False
    return True


def _issuer_owner(issuer: str) -> str:
    """The one-time-use owner for an issuer: single use holds across every client trusting it."""
    return "iss:" + hashlib.sha256(issuer.encode()).hexdigest()[:56]


async def verify(
    assertion: str,
    header: Mapping[str, Any],
    claims: Mapping[str, Any],
    client_id: str,
    tenant: Tenant,
    directory: DirectoryReader,
    replay: OneTimeUses,
    clock: Clock,
    federation: FederationContext,
    defer: Deferral = at_once,
) -> AuthenticatedClient:
    record: ClientRecord | None = await directory.get_client(tenant.id, client_id)
    if record is None:
        raise InvalidClient(detail="federated:unknown_client", description=DESCRIPTIONS["issuer_not_trusted"],
                            auth_method=METHOD)
    credentials = await federation.credentials.federated_credentials(tenant.id, owner_type_of(record.app), client_id)
    found = await examine(assertion, header, claims, credentials, federation.issuer_keys, clock, defer)
    if found.failed is not None or found.matched is None or found.exp is None or found.issuer is None:
        err = failure(found.failed or "subject")
        if found.fetch_error:
            err.detail = f"federated:keys_unavailable:{found.fetch_error}"
        raise err
    if not record.app.enabled:
        raise failure("client_disabled")
    credential = found.matched
    until = found.exp + EXPIRY_LEEWAY
    if credential.replay == "jti":
        if found.jti is None or len(found.jti) > 256:
            raise failure("jti_missing")
        if not await replay.consume(JTI_KIND, _issuer_owner(found.issuer), found.jti, until):
            raise failure("replayed")
    elif credential.replay == "token":
        digest = canonical_digest(assertion)  # the decoded header and payload, never the text
        if not await replay.consume(TOKEN_KIND, _issuer_owner(found.issuer), digest, until):
            raise failure("replayed")
    return AuthenticatedClient(
        app=record.app, method=METHOD, credential_type="federated", credential_id=credential.id, azpacr="2"
    )


class FederatedAssertion:
    """The federated entry of the client-authentication registry: a JWT-bearer client assertion
    whose issuer is neither the client nor its own subject, when federation is configured."""

    name = METHOD

    def presented(self, ctx: TokenContext, env: TokenEnv) -> bool:
        claims = ctx.assertion.claims if ctx.assertion is not None else None
        return (env.federation is not None and ctx.has_assertion and claims is not None
                and is_federated(claims, ctx.param("client_id")))

    async def authenticate(self, ctx: TokenContext, env: TokenEnv) -> AuthenticatedClient:
        assertion = jwt_bearer(ctx.assertion, ctx.param("client_assertion_type"))
        header, claims = assertion.checked()
        client_id = ctx.param("client_id")
        if env.federation is None or client_id is None:  # `presented` said otherwise; never reached
            raise InvalidClient(detail="federated:not_configured", auth_method=METHOD)
        return await verify(assertion.text, header, claims, client_id, ctx.tenant, env.directory, env.replay,
                            env.clock, env.federation, env.defer)
