"""Resource-side validation of Keyless access tokens (RFC 9068 §4), importable without the server."""

from keyless.verify.claims import AccessToken, InvalidToken, check_access_token
from keyless.verify.validator import TokenValidator

__all__ = ["AccessToken", "InvalidToken", "TokenValidator", "check_access_token"]
