"""The CLI's management API token: obtained through `keyless.client` (its sans-IO flow and assertion
auth, the one token client, issue 12 item 4) and kept on disk until shortly before it expires.

Before this, every command signed in again, so more than half of a busy sign-in log was the CLI's own.
The token is written to `DIR/cli/token.json` (0600, beside the credential it was obtained with, by an
atomic rename so a concurrent command never reads half a file), for the server, tenant and client it
was issued to; it is used while more than `REFRESH_MARGIN` seconds of it remain, and dropped when the
server answers 401 (a revoked credential, a retired key), after which the command signs in once more.
A token is a bearer credential: it is never printed, logged or put in an error line.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from keyless.client.errors import OAuthError
from keyless.errors import KeylessError

if TYPE_CHECKING:
    from keyless.client.credentials import CertificateCredential, ClientSecretCredential

MANAGEMENT_SCOPE = "urn:keyless:management/.default"
TOKEN_FILE = "token.json"  # noqa: S105 - a file name, not a secret
REFRESH_MARGIN = 300.0  # a cached token this close to expiry is replaced, so no command starts with a dying one


class TokenCacheFile:
    """One cached management token for one server, tenant, client and credential: a token obtained
    with another credential (credential.json replaced, KEYLESS_ADMIN_* set) is not reused. The
    credential is named by a digest of the certificate file or of the secret, truncated: a secret is
    256 random bits, so its digest helps no one find it."""

    def __init__(self, path: Path, server: str, tenant: str, client_id: str, credential: bytes) -> None:
        self.path = path
        self._owner = {"server": server, "tenant": tenant, "client_id": client_id,
                       "credential": hashlib.sha256(credential).hexdigest()[:32]}

    def read(self, now: float) -> str | None:
        try:
            data: Any = json.loads(self.path.read_text())
            token, expires_on = data["access_token"], float(data["expires_on"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if {k: data.get(k) for k in self._owner} != self._owner or not isinstance(token, str):
            return None
        return token if expires_on - now > REFRESH_MARGIN else None

    def write(self, token: str, expires_on: float) -> None:
        """Best effort: a directory we cannot write to only costs a sign-in per command."""
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump({**self._owner, "access_token": token, "expires_on": expires_on}, out)
            os.replace(temporary, self.path)
        except OSError:
            temporary.unlink(missing_ok=True)

    def drop(self) -> None:
        self.path.unlink(missing_ok=True)


def fetch_token(http: httpx.Client, server: str, tenant: str, client_id: str, *, secret: str | None = None,
                certificate: Path | None = None, key: Path | None = None) -> tuple[str, float]:
    """A management token from the server's token endpoint, through the client SDK: a certificate
    credential signs a client assertion for the tenant's issuer (from discovery), a secret goes in the
    body. No retries: a person is waiting and the error line says what failed. Raises
    `ClientAuthenticationError` (an `OAuthError` when the server refused) or `KeylessError` for a
    credential file that cannot be used. The SDK's credentials (certificates, JOSE) are imported here:
    a command with a cached token never needs them."""
    from keyless.client.core import NO_RETRY
    from keyless.client.credentials import CertificateCredential, ClientSecretCredential

    credential: CertificateCredential | ClientSecretCredential
    if certificate is not None:
        credential = CertificateCredential(tenant, client_id, certificate_path=certificate, private_key_path=key,
                                           authority=server, http_client=http, retry_policy=NO_RETRY)
    else:
        credential = ClientSecretCredential(tenant, client_id, secret or "", authority=server, http_client=http,
                                            retry_policy=NO_RETRY)
    token = credential.get_token(MANAGEMENT_SCOPE)
    return token.token, float(token.expires_on)


def refusal_line(exc: KeylessError) -> str:
    """What the CLI prints when it cannot sign in: the server's reason, or the SDK's (never a secret)."""
    if isinstance(exc, OAuthError):
        description = exc.error_description or exc.error
        return description if exc.error in description else f"{description} ({exc.error})"
    return str(exc)

