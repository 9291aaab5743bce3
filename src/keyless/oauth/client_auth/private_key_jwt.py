"""`private_key_jwt` client authentication (RFC 7521 §4.2, RFC 7523 §2.2/§3, RFC 10070; requirements
§0 items 1-4, R-CA-1..6; catalog B01-B28).

The key comes only from the client's registered certificates, found by `x5t#S256`, `x5t` or `kid`
(an `x5c` is only compared with registered certificates, never trusted by itself); the algorithm
is the header's only if the registered key allows it (RSA: RS256/PS256; P-256: ES256; P-384:
ES384; Ed25519: EdDSA); the `jti` is consumed in the shared store only after everything else
verified, so nobody can burn another client's `jti` values.

Tolerated, because unmodified Microsoft clients send them (compat §2.2): float `exp`/`iat`, padded
base64url segments, padded thumbprints, newlines inside `x5c` entries. Refused as `invalid_client`
like any bad claim: a NumericDate that is not a finite number in 0 <= t < 2**53 and a registered
claim of the wrong type (`keyless.jose.claims`; docs/security.md, "Hostile numbers and encodings").
"""

from __future__ import annotations

from collections.abc import Collection
from functools import partial
from typing import Any

from keyless.clock import Clock
from keyless.crypto.certificates import CertificateInfo, CertificateRejected, thumbprint_matches, x5c_der
from keyless.domain.model import Certificate, ClientRecord, Tenant
from keyless.domain.ports import DirectoryReader, FreshClientReads, OneTimeUses
from keyless.jose.claims import numeric_date
from keyless.jose.hygiene import InvalidClaim
from keyless.jose.jws import InvalidJws, verify_with_key
from keyless.oauth.client_auth import federated
from keyless.oauth.client_auth.assertion import MAX_ASSERTION, ClientAssertion, jwt_bearer
from keyless.oauth.client_auth.certificates import CertificateCache
from keyless.oauth.client_auth.result import AuthenticatedClient
from keyless.oauth.context import TokenContext, TokenEnv
from keyless.oauth.deferral import Deferral, at_once
from keyless.oauth.errors import InvalidClient, InvalidRequest

METHOD = "private_key_jwt"
ASSERTION_KIND = "client_assertion"
__all__ = ["MAX_ASSERTION", "METHOD", "CertificateCache", "PrivateKeyJwt", "parse", "verify"]
MAX_LIFETIME = 600  # seconds an assertion may live (exp - iat/nbf, and exp - now): strict tenants
# Entra-compatible tenants accept 30 minutes: the async azure-identity CertificateCredential signs
# assertions with nbf = now and exp = now + 1800 (compat §2.2), and Entra accepts them.
ENTRA_MAX_LIFETIME = 1800
FUTURE_SKEW = 60  # iat/nbf this far ahead are accepted (catalog B11: +8 s ok, +61 s refused)
EXPIRY_LEEWAY = 30  # an exp this far past is still accepted (B10: 5 minutes past is refused)
MAX_CERTS_TRIED = 10
_ACCEPTED_TYP = {"jwt", "client-authentication+jwt", "application/jwt", "application/client-authentication+jwt"}


def parse(assertion: str | ClientAssertion) -> tuple[dict[str, Any], dict[str, Any]]:
    """The hygiene pass (size, shape, duplicates, crit, registered claim types) and the unverified
    header and claims, refused as the token endpoint refuses them (`ClientAssertion.checked`)."""
    decoded = assertion if isinstance(assertion, ClientAssertion) else ClientAssertion.decode(assertion)
    return decoded.checked()


def _fail(detail: str) -> InvalidClient:
    return InvalidClient(detail=detail)


def _number(claims: dict[str, Any], name: str) -> float | None:
    try:
        return numeric_date(claims, name)
    except InvalidClaim:  # `parse` checked already; kept for claims that did not come through it
        raise _fail(f"claim_invalid:{name}") from None


def _candidates(
    header: dict[str, Any], certs: Collection[Certificate], cache: CertificateCache
) -> list[tuple[Certificate, CertificateInfo]]:
    """Registered certificates the header points at; every registered one when it names none."""
    parsed = [(c, cache.info(c)) for c in certs]
    s256, s1, kid, x5c = header.get("x5t#S256"), header.get("x5t"), header.get("kid"), header.get("x5c")
    if isinstance(s256, str):
        return [p for p in parsed if thumbprint_matches(s256, p[1], sha256=True)]
    if isinstance(s1, str):
        return [p for p in parsed if thumbprint_matches(s1, p[1], sha256=False)]
    if isinstance(kid, str):
        return [p for p in parsed
                if thumbprint_matches(kid, p[1], sha256=True) or thumbprint_matches(kid, p[1], sha256=False)]
    if isinstance(x5c, list) and x5c and isinstance(x5c[0], str):
        try:
            leaf = x5c_der(x5c[0])
        except CertificateRejected:
            return []
        return [p for p in parsed if p[1].der == leaf]
    return parsed[:MAX_CERTS_TRIED]


def _check_audience(aud: object, tenant: Tenant, issuer: str, token_endpoints: Collection[str]) -> None:
    if isinstance(aud, list):
        if len(aud) != 1:
            raise _fail("audience_not_single")  # B02
        if tenant.assertion_audience == "strict":
            raise _fail("audience_not_a_string")  # B03: strict mode takes the issuer as a plain string
        aud = aud[0]
    if not isinstance(aud, str):
        raise _fail("audience_missing")
    if aud == issuer:
        return
    if tenant.assertion_audience == "entra" and aud in token_endpoints:
        return  # what every Microsoft client sends (compat §2.2); refused in strict mode (B01)
    raise _fail("audience_mismatch")


def _choose(assertion: str, header: dict[str, Any], alg: str, record: ClientRecord | None,
            certificates: CertificateCache) -> tuple[Certificate | None, str]:
    """The registered certificate whose key verifies the assertion, or why none does."""
    if record is None:
        return None, "unknown_client"
    matches = _candidates(header, record.certificates, certificates)
    if not matches:
        return None, "no_matching_certificate"
    for cert, info in matches:
        if alg not in info.algorithms:
            continue  # B13/B14: the algorithm follows the registered key, never the header
        try:
            verify_with_key(assertion, info.public_key, alg=alg)
        except InvalidJws:
            continue
        return cert, ""
    return None, "bad_signature_or_alg"


async def verify(
    assertion: str,
    body_client_id: str | None,
    tenant: Tenant,
    directory: DirectoryReader,
    replay: OneTimeUses,
    clock: Clock,
    certificates: CertificateCache,
    *,
    issuer: str,
    token_endpoints: Collection[str],
    parsed: tuple[dict[str, Any], dict[str, Any]] | None = None,
    defer: Deferral = at_once,
) -> AuthenticatedClient:
    header, claims = parsed if parsed is not None else parse(assertion)

    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.lower() not in _ACCEPTED_TYP):
        raise _fail("assertion_typ")  # B18: an access token, DPoP proof, request object ...
    alg = header.get("alg")
    if not isinstance(alg, str):
        raise _fail("alg_missing")

    iss, sub = claims.get("iss"), claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise _fail("sub_missing")
    if not isinstance(iss, str) or not iss:
        raise _fail("iss_missing")
    if iss != sub:
        raise _fail("iss_not_sub")
    if body_client_id is not None and body_client_id != sub:
        raise InvalidRequest("client_id does not match the client assertion", detail="client_id_mismatch")

    arrived = clock.now()
    record = await directory.get_client(tenant.id, sub)
    chosen, failure = await defer(partial(_choose, assertion, header, alg, record, certificates))
    if chosen is None and isinstance(directory, FreshClientReads):
        # A certificate registered on another replica a moment ago: the cached record may predate it.
        record = await directory.get_client_since(tenant.id, sub, arrived)
        chosen, failure = _choose(assertion, header, alg, record, certificates)
    if record is None or chosen is None:
        raise _fail(failure)
    now = clock.now()
    if not chosen.valid_at(now):
        raise _fail("certificate_not_valid_now")

    _check_audience(claims.get("aud"), tenant, issuer, token_endpoints)
    exp = _number(claims, "exp")
    if exp is None:
        raise _fail("exp_missing")
    if now >= exp + EXPIRY_LEEWAY:
        raise _fail("assertion_expired")
    cap = MAX_LIFETIME if tenant.assertion_audience == "strict" else ENTRA_MAX_LIFETIME
    if exp - now > cap + FUTURE_SKEW:
        raise _fail("assertion_lifetime_too_long")
    iat, nbf = _number(claims, "iat"), _number(claims, "nbf")
    for name, value in (("iat", iat), ("nbf", nbf)):
        if value is not None and value > now + FUTURE_SKEW:
            raise _fail(f"{name}_in_future")
    start = iat if iat is not None else nbf
    if start is not None and exp - start > cap:
        raise _fail("assertion_lifetime_too_long")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 256:
        raise _fail("jti_missing")
    if not record.app.enabled:
        raise _fail("client_disabled")
    if not await replay.consume(ASSERTION_KIND, sub, jti, exp + EXPIRY_LEEWAY):
        raise _fail("assertion_replayed")  # B07
    return AuthenticatedClient(
        app=record.app, method=METHOD, credential_type="certificate", credential_id=chosen.id, azpacr="2"
    )


class PrivateKeyJwt:
    """The `private_key_jwt` entry of the client-authentication registry: a JWT-bearer client
    assertion that is not a federated one (`federated.FederatedAssertion.presented`)."""

    name = METHOD

    def presented(self, ctx: TokenContext, env: TokenEnv) -> bool:
        return ctx.has_assertion and not federated.FederatedAssertion().presented(ctx, env)

    async def authenticate(self, ctx: TokenContext, env: TokenEnv) -> AuthenticatedClient:
        assertion = jwt_bearer(ctx.assertion, ctx.param("client_assertion_type"))
        return await verify(
            assertion.text, ctx.param("client_id"), ctx.tenant, env.directory, env.replay, env.clock,
            env.certificates, issuer=env.issuer, token_endpoints=env.token_endpoints, parsed=assertion.checked(),
            defer=env.defer,
        )
