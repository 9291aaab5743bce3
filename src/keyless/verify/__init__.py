"""Resource-side validation of Keyless access tokens (RFC 9068 §4), importable without the server.

`TokenValidator` checks tokens; `require_roles`/`require_scopes` (FastAPI), `BearerAuthMiddleware`
(ASGI) and `wsgi_require_roles` (WSGI, Flask) guard routes; `challenge` builds RFC 6750 refusals.
"""

from keyless.verify.adapters import BearerAuthMiddleware, require_roles, require_scopes, wsgi_require_roles
from keyless.verify.claims import AccessToken, InvalidToken, check_access_token
from keyless.verify.errors import InsufficientScope, KeysUnavailable, TokenTooLarge, challenge
from keyless.verify.validator import TokenValidator, authorize

__all__ = [
    "AccessToken",
    "BearerAuthMiddleware",
    "InsufficientScope",
    "InvalidToken",
    "KeysUnavailable",
    "TokenTooLarge",
    "TokenValidator",
    "authorize",
    "challenge",
    "check_access_token",
    "require_roles",
    "require_scopes",
    "wsgi_require_roles",
]
