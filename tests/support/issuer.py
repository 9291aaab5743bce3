"""A real external token issuer on loopback for federation tests: its own CA and TLS certificate,
an OIDC discovery document, a JWKS, key rotation, and tokens shaped like a Kubernetes service-account
token or a GitHub Actions token. It runs in a thread of the test process; the Keyless server (a
subprocess) reaches it over HTTPS, trusting its CA through `KEYLESS_FEDERATION_CA_BUNDLE`.

Knobs let a test make it misbehave the ways the catalog names: a discovery `issuer` that differs
(E04), a redirect (E05), an oversized or over-full JWKS (E06), and a count of fetches (E06).
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization

from keyless.crypto.ca import IssuedCert, create_ca, issue_server_cert
from keyless.crypto.keys import PrivateKey, generate, private_from_der
from keyless.jose.jwk import public_jwk
from keyless.jose.jws import sign_with_headers
from tests.support.server import Admin, RunningServer

DISCOVERY = "/.well-known/openid-configuration"
JWKS_PATH = "/openid/v1/jwks"


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-answer (size caps, timeouts) is what some tests do on purpose."""


def serve_tls(tmp: Path, ca: IssuedCert, name: str, handler: type[BaseHTTPRequestHandler],
              ips: tuple[str, ...] = ("127.0.0.1",)) -> ThreadingHTTPServer:
    """A threaded HTTPS server on a free loopback port, its certificate issued by `ca` for localhost
    and `ips`, serving in a daemon thread (stop it with `shutdown()` and `server_close()`)."""
    tls = issue_server_cert(ca, hostnames=["localhost"], ips=list(ips), now=time.time())
    tmp.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = tmp / f"{name}-tls.pem", tmp / f"{name}-tls.key"
    cert_path.write_bytes(tls.cert_pem)
    key_path.write_bytes(private_from_der(tls.key_der).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    httpd = _QuietServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert_path), str(key_path))
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


class ExternalIssuer:
    def __init__(self, tmp: Path, ca: IssuedCert, *, alg: str = "RS256", path: str | None = None,
                 tls_ips: tuple[str, ...] = ("127.0.0.1",)) -> None:
        # A path of its own by default: the issuer URL is then unique even when the port was an earlier
        # issuer's, whose keys a session-wide server still holds (its cache is per issuer URL).
        path = f"/issuer-{uuid.uuid4().hex[:12]}" if path is None else path
        self.path = path
        self.alg = alg
        self.keys: dict[str, PrivateKey] = {}
        self.published: list[str] = []
        self.current = self.rotate(publish_only=False)
        self.fetches: dict[str, int] = {}
        self.metadata_issuer: str | None = None
        self.redirect_to: str | None = None
        self.jwks_override: Any = None
        self.drop_alg = False
        self.delay = 0.0  # seconds to stall before answering (fetch timeouts)
        self._lock = threading.Lock()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real issuers do (every answer has a length)

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                issuer._serve(self)

        self._httpd = serve_tls(tmp, ca, "issuer", Handler, tls_ips)
        self.port = self._httpd.server_address[1]
        self.base = f"https://127.0.0.1:{self.port}"
        self.issuer = self.base + path
        self._path = path

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- keys ------------------------------------------------------------------------------------
    def rotate(self, *, publish_only: bool = False) -> str:
        """Make a new key and publish it; unless `publish_only`, sign with it from now on."""
        key = generate(self.alg)
        kid = public_jwk(key.public_key(), self.alg)["kid"]  # type: ignore[arg-type]
        self.keys[kid] = key
        self.published.append(kid)
        if not publish_only:
            self.current = kid
        return kid

    def unpublish(self, kid: str) -> None:
        self.published.remove(kid)

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid in self.published:
            jwk = public_jwk(self.keys[kid].public_key(), self.alg)  # type: ignore[arg-type]
            if self.drop_alg:
                jwk.pop("alg")
            keys.append(jwk)
        return {"keys": keys}

    # -- tokens ----------------------------------------------------------------------------------
    def sign(self, claims: dict[str, Any], *, kid: str | None = None, headers: dict[str, Any] | None = None,
             key: PrivateKey | None = None, alg: str | None = None) -> str:
        kid = kid or self.current
        head = {"kid": kid} if headers is None else headers
        return sign_with_headers(claims, key or self.keys[kid], alg=alg or self.alg, headers=head)

    def claims(self, sub: str, aud: Any = "api://KeylessTokenExchange", *, lifetime: int = 3600,
               **extra: Any) -> dict[str, Any]:
        """Kubernetes-shaped claims; an `extra` of None removes the claim."""
        now = int(time.time())
        claims: dict[str, Any] = {"iss": self.issuer, "sub": sub, "aud": aud, "iat": now, "nbf": now,
                                  "exp": now + lifetime, "jti": str(uuid.uuid4())}
        for name, value in extra.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def token(self, sub: str, aud: Any = "api://KeylessTokenExchange", **extra: Any) -> str:
        return self.sign(self.claims(sub, aud, **extra))

    # -- HTTP ------------------------------------------------------------------------------------
    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path
        with self._lock:
            self.fetches[path] = self.fetches.get(path, 0) + 1
        if self.delay:
            time.sleep(self.delay)
        if self.redirect_to is not None:
            handler.send_response(302)
            handler.send_header("Location", self.redirect_to)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        if path == self._path + DISCOVERY:
            body: Any = {"issuer": self.metadata_issuer or self.issuer, "jwks_uri": self.base + JWKS_PATH,
                         "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                         "id_token_signing_alg_values_supported": [self.alg]}
        elif path == JWKS_PATH:
            body = self.jwks_override if self.jwks_override is not None else self.jwks()
        else:
            handler.send_response(404)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def jwks_fetches(self) -> int:
        return self.fetches.get(JWKS_PATH, 0)


def issuer_ca(tmp: Path) -> tuple[IssuedCert, Path]:
    """One CA for every test issuer of a session, so one server trusts them all."""
    ca = create_ca("external-issuer-test-ca", now=time.time())
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "issuer-ca.pem"
    path.write_bytes(ca.cert_pem)
    return ca, path


@contextmanager
def running_issuer(tmp: Path, ca: IssuedCert, **options: Any) -> Iterator[ExternalIssuer]:
    issuer = ExternalIssuer(tmp, ca, **options)
    try:
        yield issuer
    finally:
        issuer.close()


# The key refresh interval the federation test server runs with (production default: 60 s).
REFRESH_INTERVAL = 2.0


def federation_env(ca_path: Path) -> dict[str, str]:
    """Server settings to trust the test issuers' CA and let it fetch from loopback (tests only)."""
    return {"KEYLESS_FEDERATION_CA_BUNDLE": str(ca_path), "KEYLESS_ALLOW_PRIVATE_ISSUERS": '["127.0.0.1"]',
            "KEYLESS_FEDERATION_KEY_REFRESH_INTERVAL": str(REFRESH_INTERVAL)}


ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class FederatedApp:
    client_id: str
    object_id: str
    resource: str
    credential: dict[str, Any]

    @property
    def scope(self) -> str:
        return f"{self.resource}/.default"


def add_credential(admin: Admin, client_id: str, issuer: str, subject: str, *,
                   name: str | None = None, **options: Any) -> dict[str, Any]:
    body = {"name": name or f"fc-{uuid.uuid4().hex[:8]}", "issuer": issuer, "subject": subject, **options}
    return dict(admin.api.call("POST", f"/applications/{client_id}/federated-credentials", json_body=body))


def federated_app(admin: Admin, issuer: str, subject: str, **options: Any) -> FederatedApp:
    """A resource with a role, an application granted it, and one federated credential on the app."""
    resource = f"api://fed-res-{uuid.uuid4().hex[:8]}"
    admin.app(f"fed-res-{uuid.uuid4().hex[:6]}", identifier_uri=resource, roles=("Data.Read",))
    app = admin.app(f"fed-app-{uuid.uuid4().hex[:6]}")
    admin.grant(app["client_id"], resource, "Data.Read")
    credential = add_credential(admin, app["client_id"], issuer, subject, **options)
    return FederatedApp(client_id=app["client_id"], object_id=app["object_id"], resource=resource,
                        credential=credential)


def exchange(server: RunningServer, client_id: str | None, token: str, scope: str) -> httpx.Response:
    form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": token, "scope": scope}
    if client_id is not None:
        form["client_id"] = client_id
    with server.http() as http:
        return http.post(server.token_endpoint, data=form)


def explain(admin: Admin, client_id: str, token: str) -> dict[str, Any]:
    """`keyless federation test` through the management API."""
    return dict(admin.api.call("POST", f"/applications/{client_id}/federated-credentials/test",
                               json_body={"token": token}))
