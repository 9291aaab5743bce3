"""Client certificates and `private_key_jwt` assertions for tests against a real Keyless server.

The key pair is made here (as a client would on its own host); only the certificate is registered.
Assertions are signed with `keyless.jose.jws.sign_with_headers` or assembled by hand for malformed ones.
"""

from __future__ import annotations

import base64
import json
import ssl
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization

from keyless.crypto.certificates import CertificateInfo, load_certificate
from keyless.crypto.client_keys import generate_client_key, private_key_pem, self_signed_certificate
from keyless.crypto.keys import PrivateKey
from keyless.jose.jws import sign_with_headers
from tests.support.server import Admin, RunningServer

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
AUTH_FAILED = {"error": "invalid_client", "error_description": "client authentication failed (invalid_client)"}
BAD_FORMAT = {"error": "invalid_request", "error_description": "invalid client_assertion format"}
CLIENT_ID_MISMATCH = {"error": "invalid_request", "error_description": "client_id does not match the client assertion"}


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_json(value: Any) -> str:
    return b64u(json.dumps(value, separators=(",", ":")).encode("utf-8"))


@dataclass
class ClientCert:
    """A client's key pair and its self-signed certificate (PEM)."""

    key: PrivateKey
    cert_pem: bytes
    info: CertificateInfo

    @property
    def key_pem(self) -> bytes:
        return private_key_pem(self.key)

    @property
    def der(self) -> bytes:
        return self.info.der

    @property
    def sha1_hex(self) -> str:
        import hashlib

        return hashlib.sha1(self.info.der, usedforsecurity=False).hexdigest()

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)

    def public_der(self) -> bytes:
        return self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, claims: dict[str, Any], *, alg: str = "PS256", headers: dict[str, Any] | None = None) -> str:
        """A compact JWS; by default the header names this certificate by `x5t#S256`."""
        head = {"typ": "JWT", "x5t#S256": self.info.x5t_s256} if headers is None else headers
        return sign_with_headers(claims, self.key, alg=alg, headers=head)


def new_cert(kind: str = "rsa2048", *, cn: str = "keyless-test-client", days: int = 365) -> ClientCert:
    key = generate_client_key(kind)  # type: ignore[arg-type]
    pem = self_signed_certificate(key, cn, now=time.time(), days=days)
    return ClientCert(key=key, cert_pem=pem, info=load_certificate(pem))


def claims_for(client_id: str, aud: Any, *, lifetime: int = 300, **overrides: Any) -> dict[str, Any]:
    """RFC 7523 §3 claims; an override of None removes the claim."""
    now = int(time.time())
    claims: dict[str, Any] = {"iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + lifetime,
                              "jti": str(uuid.uuid4())}
    for name, value in overrides.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def assertion_form(assertion: str, scope: str, *, client_id: str | None = None,
                   assertion_type: str | None = ASSERTION_TYPE) -> dict[str, str]:
    form = {"grant_type": "client_credentials", "scope": scope, "client_assertion": assertion}
    if assertion_type is not None:
        form["client_assertion_type"] = assertion_type
    if client_id is not None:
        form["client_id"] = client_id
    return form


def http_for(server: RunningServer) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=server.ca), timeout=30, follow_redirects=False)


def manage(server: RunningServer, admin: Admin, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A raw management API call (error answers stay inspectable), with the CLI's own token."""
    url = f"{server.url}/{server.tenant_id}/manage/v1{path}"
    with http_for(server) as http:
        return http.request(method, url, headers={"Authorization": f"Bearer {admin.api.token()}"}, **kwargs)


def register(server: RunningServer, admin: Admin, client_id: str, cert: ClientCert | bytes | str) -> dict[str, Any]:
    """Register a certificate on an application; returns the CertificateOut body."""
    pem = cert.cert_pem if isinstance(cert, ClientCert) else cert
    text = pem.decode("ascii") if isinstance(pem, bytes) else pem
    resp = manage(server, admin, "POST", f"/applications/{client_id}/certificates", json={"certificate": text})
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def signins(server: RunningServer, admin: Admin, client_id: str, **params: Any) -> list[dict[str, Any]]:
    resp = manage(server, admin, "GET", "/logs/signins", params={"client_id": client_id, **params})
    assert resp.status_code == 200, resp.text
    return list(resp.json())


def last_failure_detail(server: RunningServer, admin: Admin, client_id: str | None) -> str | None:
    """The `detail` of the newest failed sign-in of `client_id` (why the server said 401); with None, of
    the newest failure of anyone (for assertions the server could not attribute to a client)."""
    if client_id is None:
        resp = manage(server, admin, "GET", "/logs/signins", params={"result": "failure", "limit": 1})
        assert resp.status_code == 200, resp.text
        events = list(resp.json())
    else:
        events = signins(server, admin, client_id, result="failure", limit=1)
    return events[0]["detail"] if events else None


def set_tenant(server: RunningServer, admin: Admin, **changes: Any) -> dict[str, Any]:
    resp = manage(server, admin, "PATCH", "/tenant", json=changes)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def cert_with_validity(not_before: float, not_after: float, *, kind: str = "rsa2048") -> ClientCert:
    """A self-signed client certificate with a chosen validity window (expired, not yet valid, ...)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = generate_client_key(kind)  # type: ignore[arg-type]
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "validity-test")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(dt.datetime.fromtimestamp(not_before, dt.UTC))
            .not_valid_after(dt.datetime.fromtimestamp(not_after, dt.UTC))
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    return ClientCert(key=key, cert_pem=pem, info=load_certificate(pem))
