"""Discovery metadata (RFC 8414, OpenID Connect Discovery) with the fields Microsoft clients require.

MSAL indexes `authorization_endpoint` even for client_credentials (compat §1.2), so it is always
present; the endpoint itself explains that interactive sign-in is not offered.
"""

from __future__ import annotations

from typing import Any

from keyless.domain.model import Tenant


def issuer(base_url: str, tenant: Tenant) -> str:
    return f"{base_url}/{tenant.id}/v2.0"


def discovery_document(base_url: str, tenant: Tenant) -> dict[str, Any]:
    root = f"{base_url}/{tenant.id}"
    return {
        "issuer": issuer(base_url, tenant),
        "token_endpoint": f"{root}/oauth2/v2.0/token",
        "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
        "jwks_uri": f"{root}/discovery/v2.0/keys",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "PS256", "ES256", "ES384", "EdDSA"],
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": ["token"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": [tenant.signing_alg],
        "scopes_supported": [],
        "claims_supported": ["aud", "iss", "iat", "nbf", "exp", "sub", "oid", "tid", "client_id", "azp",
                             "appid", "azpacr", "idtyp", "roles", "ver", "jti"],
        "tenant_region_scope": None,
        "cloud_instance_name": "keyless",
        "authorization_response_iss_parameter_supported": False,
    }
