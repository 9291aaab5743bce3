"""Bearer tokens presented to the server's own resources (the management API, the vault): issued by
this server, checked in-process against the tenant's published keys with the same claim checks a
resource server makes (`keyless.verify.claims`): strict JOSE hygiene (canonical base64url, no NaN or
out-of-range numbers) and strict claim types (`roles` an array of strings, NumericDates in range), so
a malformed token is refused, never read as one without roles (docs/security.md, "Hostile numbers and
encodings").

A verified token is remembered until it expires (at most `MEMO_SECONDS`), which takes signature
verification off the path of every request after the first one with the same token; each hit still
checks that the key that signed it is published, so an emergency key removal (catalog I04) refuses
its tokens at once.
"""

from __future__ import annotations

from collections import OrderedDict

from keyless.clock import Clock
from keyless.domain.model import Tenant
from keyless.errors import KeylessError
from keyless.jose.jwk import public_key_from_jwk
from keyless.jose.jws import InvalidJws, VerificationKey, unverified_header, verify
from keyless.oauth.keyring import KeyRing
from keyless.oauth.metadata import issuer
from keyless.verify.claims import AccessToken, InvalidToken, check_access_token

MAX_BEARER = 8192
MEMO_SECONDS = 60.0
MEMO_ENTRIES = 10_000


class BearerMissing(KeylessError):
    """No `Authorization: Bearer` at all: the caller should be told how to get a token."""


class BearerInvalid(KeylessError):
    """A bearer token that does not verify, or is for another tenant or resource."""


class BearerVerifier:
    def __init__(self, keyring: KeyRing, clock: Clock, base_url: str) -> None:
        self._keyring = keyring
        self._clock = clock
        self._base_url = base_url
        self._memo: OrderedDict[tuple[str, str, str], tuple[AccessToken, float, str]] = OrderedDict()

    async def verify(self, tenant: Tenant, authorization: str | None, audience: str) -> AccessToken:
        if not authorization:
            raise BearerMissing
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > MAX_BEARER:
            raise BearerInvalid
        now = self._clock.now()
        key = (tenant.id, audience, token)
        hit = self._memo.get(key)
        if hit is not None and now < hit[1] and hit[2] in await self._keyring.published_kids(tenant.id):
            return hit[0]
        published = await self._keyring.published(tenant.id)
        keys = {k.kid: VerificationKey(kid=k.kid, alg=k.alg, key=public_key_from_jwk(k.public_jwk)) for k in published}
        try:
            kid = str(unverified_header(token).get("kid", ""))
            claims = verify(token, keys=keys, algorithms={"RS256", "ES256"}, typ="at+jwt")
            access = check_access_token(claims, issuer=issuer(self._base_url, tenant), audience=audience, now=now)
        except (InvalidJws, InvalidToken):
            raise BearerInvalid from None
        if len(self._memo) >= MEMO_ENTRIES:
            self._memo.popitem(last=False)
        self._memo[key] = (access, min(access.expires_at, now + MEMO_SECONDS), kid)
        return access
