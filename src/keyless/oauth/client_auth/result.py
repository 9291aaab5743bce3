"""What a successful client authentication yields."""

from __future__ import annotations

from dataclasses import dataclass

from keyless.domain.model import Application


@dataclass(slots=True)  # built per token: not frozen (a frozen __init__ costs ~3x; issue 18)
class AuthenticatedClient:
    app: Application
    method: str
    credential_type: str
    credential_id: str
    azpacr: str  # "1" shared secret, "2" any client assertion (certificate, federation, managed identity)
