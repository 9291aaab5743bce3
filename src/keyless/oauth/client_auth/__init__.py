"""Client authentication at the token endpoint (RFC 6749 §2.3; requirements §1.1).

One module per method, each with a class naming its wire string (`name`, as RFC 8414's
`token_endpoint_auth_methods_supported` spells it) that says whether a request presents it and
authenticates it; `keyless.oauth.client_auth.registry` holds them by that name. Exactly one method
per request (R-6749-1, catalog A05); every failure is the same `invalid_client` whatever its cause
(A09), with the internal reason kept in `detail` for the sign-in log.
"""

from __future__ import annotations

from keyless.oauth.client_auth.assertion import ASSERTION_TYPE
from keyless.oauth.client_auth.result import AuthenticatedClient

__all__ = ["ASSERTION_TYPE", "AuthenticatedClient"]
