"""The federated rung for `token_endpoint.py --auth federated,federated_jti`: an external issuer on
loopback, and the workload that exchanges its tokens for Keyless access tokens.

The issuer is what a Kubernetes cluster or a CI system is to Keyless (docs/federation.md): its own CA
and TLS certificate, an OIDC discovery document and a JWKS over HTTPS, and a signing key. It runs in a
thread of the bench process. The server is only told to trust its CA and to let it live on 127.0.0.1
(`KEYLESS_FEDERATION_CA_BUNDLE`, `KEYLESS_ALLOW_PRIVATE_ISSUERS`: the same settings the federation
tests use); it fetches the keys once and caches them, so the issuer is idle during the timed runs.

Each request carries a fresh token (a Kubernetes service-account token's claims, a new `jti`), signed
before the run on the load CPU, as `JwtWorkload` does for private_key_jwt. Two credential settings:

- `federated`: the credential's default `replay: reuse` (a workload may present the same token until it
  expires, as Entra allows): no single-use write on the token path;
- `federated_jti`: `replay: jti`, each token accepted once: the same single-use store as
  private_key_jwt.
"""

from __future__ import annotations

import json
import os
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives import serialization

from keyless.crypto.ca import create_ca, issue_server_cert
from keyless.crypto.keys import PrivateKey, generate, private_from_der
from keyless.domain.federation import KEYLESS_EXCHANGE_AUDIENCE
from keyless.jose.jwk import public_jwk
from keyless.jose.jws import sign_with_headers

DISCOVERY = "/.well-known/openid-configuration"
JWKS_PATH = "/openid/v1/jwks"
NAMESPACE = "bench"
TOKEN_LIFETIME = 600  # seconds; well inside a credential's default max_token_lifetime (3600)
REPLAY = {"federated": "reuse", "federated_jti": "jti"}
AUTHS = tuple(REPLAY)


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True


class BenchIssuer:
    """An OIDC issuer on 127.0.0.1 with one signing key per algorithm it is asked for."""

    def __init__(self, workdir: Path) -> None:
        now = time.time()
        ca = create_ca("keyless-bench-issuer-ca", now=now)
        tls = issue_server_cert(ca, hostnames=["localhost"], ips=["127.0.0.1"], now=now)
        workdir.mkdir(parents=True, exist_ok=True)
        self.ca_path = workdir / "issuer-ca.pem"
        self.ca_path.write_bytes(ca.cert_pem)
        cert_path, key_path = workdir / "issuer-tls.pem", workdir / "issuer-tls.key"
        cert_path.write_bytes(tls.cert_pem)
        key_path.write_bytes(private_from_der(tls.key_der).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        self.keys: dict[str, tuple[str, PrivateKey]] = {}  # alg -> (kid, key)
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                issuer._answer(self)

        self._httpd = _Quiet(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert_path), str(key_path))
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.issuer = f"https://127.0.0.1:{self._httpd.server_address[1]}"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def server_env(self) -> dict[str, str]:
        """What `keyless serve` needs to fetch from this issuer (tests-only settings, loopback only)."""
        return {"KEYLESS_FEDERATION_CA_BUNDLE": str(self.ca_path), "KEYLESS_ALLOW_PRIVATE_ISSUERS": '["127.0.0.1"]'}

    def key(self, alg: str) -> tuple[str, PrivateKey]:
        if alg not in self.keys:
            key = generate(alg)
            self.keys[alg] = (public_jwk(key.public_key(), alg)["kid"], key)
        return self.keys[alg]

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        if handler.path == DISCOVERY:
            body: dict[str, Any] = {"issuer": self.issuer, "jwks_uri": self.issuer + JWKS_PATH,
                                    "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                                    "id_token_signing_alg_values_supported": sorted(self.keys)}
        elif handler.path == JWKS_PATH:
            body = {"keys": [public_jwk(key.public_key(), alg) for alg, (_, key) in sorted(self.keys.items())]}
        else:
            handler.send_response(404)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        data = json.dumps(body).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


@dataclass
class FederatedWorkload:
    """A federated credential on the bench client (issuer, subject, replay mode) and a fresh issuer token
    per request, signed with `assertion_alg` before each run on the load CPU."""

    server: Any  # token_endpoint.Server
    client_id: str
    issuer: BenchIssuer
    assertion_alg: str
    auth: str = "federated"
    resource: str = "api://bench"
    load_cpu: int = 1
    sign_us: float = 0.0

    @property
    def label(self) -> str:
        return f"{'fed' if self.auth == 'federated' else 'fed-jti'}/{self.assertion_alg}"

    @property
    def account(self) -> str:
        """The service account: one per workload, since an application trusts an issuer, subject and
        audience only once."""
        return self.label.replace("/", "-").lower()

    @property
    def subject(self) -> str:
        return f"system:serviceaccount:{NAMESPACE}:{self.account}"

    @property
    def single_use(self) -> bool:
        return REPLAY[self.auth] != "reuse"

    def register(self) -> None:
        from keyless.cli.common import ManagementClient, resolve

        self.issuer.key(self.assertion_alg)
        api = ManagementClient(resolve(self.server.data_dir, None, None))
        try:
            api.call("POST", f"/applications/{self.client_id}/federated-credentials", json_body={
                "name": f"bench-{self.auth}-{self.assertion_alg}".replace("_", "-"), "issuer": self.issuer.issuer,
                "subject": self.subject, "algorithms": [self.assertion_alg], "replay": REPLAY[self.auth]})
        finally:
            api.http.close()

    def bodies(self, count: int) -> list[bytes]:
        kid, key = self.issuer.key(self.assertion_alg)
        prefix = urlencode({
            "grant_type": "client_credentials", "client_id": self.client_id,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "scope": f"{self.resource}/.default",
        }).encode("ascii") + b"&client_assertion="
        headers = {"typ": "JWT", "kid": kid}
        affinity = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {self.load_cpu})  # this thread only; restored below
        try:
            start = time.perf_counter()
            now = int(time.time())
            out = []
            for _ in range(count):
                claims = {"iss": self.issuer.issuer, "sub": self.subject, "aud": KEYLESS_EXCHANGE_AUDIENCE,
                          "iat": now, "nbf": now, "exp": now + TOKEN_LIFETIME, "jti": str(uuid.uuid4()),
                          "kubernetes.io": {"namespace": NAMESPACE, "serviceaccount": {"name": self.account}}}
                out.append(prefix + sign_with_headers(claims, key, alg=self.assertion_alg,
                                                      headers=headers).encode("ascii"))
            self.sign_us = (time.perf_counter() - start) / max(1, count) * 1e6
        finally:
            os.sched_setaffinity(0, affinity)
        return out
