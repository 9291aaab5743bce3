"""An example workload: gets a Keyless token for the orders API and lists the orders.

Configuration (environment):

    KEYLESS_AUTHORITY       the Keyless server, https://host:port (default: https://127.0.0.1:8443)
    KEYLESS_TENANT          the tenant id
    KEYLESS_CLIENT_ID       this worker's client id
    KEYLESS_CLIENT_SECRET   its client secret, or instead:
    KEYLESS_CLIENT_CERTIFICATE + KEYLESS_CLIENT_KEY   its certificate and private key (PEM files)
    KEYLESS_CA              CA bundle for the server's TLS certificate; unset: the system trust store
    ORDERS_URL              the orders API (default: http://127.0.0.1:8081)
    ORDERS_SCOPE            the scope to ask for (default: api://orders/.default)

Prints the API's JSON answer; on failure prints one line to stderr and exits non-zero.
"""

from __future__ import annotations

import json
import os
import sys

import httpx

from keyless.client import CertificateCredential, ClientSecretCredential, OAuthError
from keyless.errors import KeylessError


def need(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"worker: set {name} (see examples/README.md)")
    return value


def make_credential() -> ClientSecretCredential | CertificateCredential:
    tenant, client_id = need("KEYLESS_TENANT"), need("KEYLESS_CLIENT_ID")
    authority = os.environ.get("KEYLESS_AUTHORITY", "https://127.0.0.1:8443")
    ca = os.environ.get("KEYLESS_CA") or None
    certificate = os.environ.get("KEYLESS_CLIENT_CERTIFICATE")
    if certificate:
        return CertificateCredential(tenant, client_id, certificate_path=certificate,
                                     private_key_path=os.environ.get("KEYLESS_CLIENT_KEY") or None,
                                     authority=authority, ca=ca)
    return ClientSecretCredential(tenant, client_id, need("KEYLESS_CLIENT_SECRET"), authority=authority, ca=ca)


def main() -> int:
    url = os.environ.get("ORDERS_URL", "http://127.0.0.1:8081").rstrip("/") + "/orders"
    scope = os.environ.get("ORDERS_SCOPE", "api://orders/.default")
    try:
        with make_credential() as credential:
            resp = httpx.get(url, auth=credential.auth(scope), timeout=10)
    except OAuthError as exc:  # the token endpoint said no: wrong secret, no grant for this API, ...
        print(f"worker: token request refused: {exc.error} ({exc.status}): {exc.error_description}", file=sys.stderr)
        return 1
    except (KeylessError, ValueError) as exc:  # unreachable server, unusable certificate, bad settings
        print(f"worker: cannot get a token: {exc}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"worker: GET {url} failed: {exc!r}", file=sys.stderr)
        return 1
    if resp.status_code != 200:
        challenge = resp.headers.get("www-authenticate", "")
        print(f"worker: GET {url} answered {resp.status_code} {challenge}".rstrip(), file=sys.stderr)
        return 1
    print(json.dumps(resp.json(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
