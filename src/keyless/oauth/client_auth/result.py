"""What a successful client authentication yields."""

from __future__ import annotations

from dataclasses import dataclass

from keyless.domain.model import Application


@dataclass(frozen=True)
class AuthenticatedClient:
    app: Application
    method: str
    credential_type: str
    credential_id: str
    azpacr: str  # "1" shared secret, "2" any client assertion (certificate, federation, managed identity)
