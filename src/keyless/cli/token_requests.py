"""Raw token requests for `keyless token get` (which prints the token response exactly as the server
sent it) and the `keyless up` demo: the client_credentials grant by hand, as a script would send it.
The CLI's own management token goes through `keyless.client` instead (cli/session.py)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import httpx

from keyless.cli.common import Target, fail, problem_line, send
from keyless.errors import KeylessError


def post_token(http: httpx.Client, target: Target, client_id: str, secret: str, scope: str, *,
               basic: bool = False) -> httpx.Response:
    """A client_credentials request with a client secret, in the body or (RFC 6749 §2.3.1) as Basic,
    where both parts are form-urlencoded before Base64."""
    form = {"grant_type": "client_credentials", "scope": scope}
    headers = {"Accept": "application/json"}
    if basic:
        pair = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    else:
        form.update(client_id=client_id, client_secret=secret)
    return send(http, target, "POST", f"{target.server}/{target.tenant}/oauth2/v2.0/token", data=form,
                headers=headers)


_DISCOVERY: dict[tuple[str, str], dict[str, Any]] = {}


def discover(http: httpx.Client, target: Target) -> dict[str, Any]:
    """The tenant's OpenID configuration (issuer, token endpoint), fetched once per process."""
    cache_key = (target.server, target.tenant)
    if cache_key not in _DISCOVERY:
        url = f"{target.server}/{target.tenant}/v2.0/.well-known/openid-configuration"
        resp = send(http, target, "GET", url, headers={"Accept": "application/json"})
        if resp.status_code != 200:
            fail(f"cannot read the server's OpenID configuration: {problem_line(resp)}")
        try:
            doc = resp.json()
            if not isinstance(doc["issuer"], str) or not isinstance(doc["token_endpoint"], str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            fail("the server's OpenID configuration has no issuer or token endpoint")
        _DISCOVERY[cache_key] = doc
    return _DISCOVERY[cache_key]


def post_assertion_token(http: httpx.Client, target: Target, client_id: str, certificate: Path, key: Path,
                         scope: str, *, key_password: str | None = None) -> httpx.Response:
    """A client_credentials request authenticated with a client assertion (`private_key_jwt`) signed
    by the certificate credential's key, for the tenant's issuer as audience."""
    from keyless.client import CLIENT_ASSERTION_TYPE, build_client_assertion, load_certificate_credential

    try:
        private_key, cert_pem = load_certificate_credential(certificate, key, key_password)
    except KeylessError as exc:
        fail(f"cannot use the certificate credential: {exc}")
    doc = discover(http, target)
    assertion = build_client_assertion(client_id=client_id, audience=doc["issuer"], private_key=private_key,
                                       certificate_pem=cert_pem)
    form = {"grant_type": "client_credentials", "scope": scope, "client_id": client_id,
            "client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": assertion}
    return send(http, target, "POST", doc["token_endpoint"], data=form, headers={"Accept": "application/json"})
