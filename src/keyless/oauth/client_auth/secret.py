"""`client_secret_basic` and `client_secret_post` (RFC 6749 §2.3.1).

The presented secret is hashed once (HMAC, about a microsecond) whether or not the client exists,
and compared in constant time with each live secret of the client (catalog L01, L03: the lookup is by
`client_id`, never by secret value). A client that does not exist, or has no secret, still gets one
comparison, against a digest nothing matches, and the store does the same queries for every client
id: an unknown client costs what a wrong secret costs (docs/security.md, "Equal work for unknown and
known clients").
"""

from __future__ import annotations

from keyless.clock import Clock
from keyless.crypto.secrets import MAX_PRESENTED_LEN, SecretHasher
from keyless.domain.model import Tenant
from keyless.domain.ports import DirectoryReader
from keyless.oauth.client_auth.result import AuthenticatedClient
from keyless.oauth.errors import InvalidClient

BASIC = "client_secret_basic"
POST = "client_secret_post"
_NO_DIGEST = bytes(32)  # compared with when there is nothing to compare with; never an HMAC output in practice


async def verify(
    tenant: Tenant,
    client_id: str,
    presented: str,
    directory: DirectoryReader,
    hasher: SecretHasher,
    clock: Clock,
    *,
    method: str,
    basic: bool = False,
) -> AuthenticatedClient:
    if len(presented) > MAX_PRESENTED_LEN:
        raise InvalidClient(detail="secret_too_long", basic=basic)
    digest = hasher.digest(presented)
    record = await directory.get_client(tenant.id, client_id)
    if record is None or not record.secrets:
        hasher.matches(digest, _NO_DIGEST)
    if record is None:
        raise InvalidClient(detail="unknown_client", basic=basic)
    now = clock.now()
    matched = None
    for candidate in record.secrets:
        if hasher.matches(digest, candidate.digest):
            matched = candidate
    if matched is None:
        raise InvalidClient(
            detail="no_secret_registered" if not record.secrets else "wrong_secret", basic=basic
        )
    if not matched.usable_at(now):
        raise InvalidClient(detail="secret_expired", basic=basic)
    if not record.app.enabled:
        raise InvalidClient(detail="client_disabled", basic=basic)
    return AuthenticatedClient(
        app=record.app, method=method, credential_type="secret", credential_id=matched.id, azpacr="1"
    )
