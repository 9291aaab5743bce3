"""Client assertions (RFC 7523 `private_key_jwt`) signed with a certificate credential's key.

The assertion is what Microsoft's libraries send: `iss` = `sub` = the client id, `aud` = the tenant's
issuer, a fresh `jti`, a short lifetime, and the certificate's `x5t#S256` in the header so the server
finds the registered certificate without trusting anything the token carries.
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from pathlib import Path

from keyless.crypto.certificates import CertificateInfo, CertificateRejected, load_certificate
from keyless.crypto.client_keys import load_pkcs12_credential, load_private_key_pem
from keyless.crypto.keys import PrivateKey, public_of, public_to_pem
from keyless.errors import KeylessError
from keyless.jose.jws import sign_with_headers

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_LIFETIME = 600  # the server refuses assertions that live longer than ten minutes


class CredentialError(KeylessError):
    """A certificate credential that cannot be used: unreadable file, key and certificate that differ."""


def default_algorithm(info: CertificateInfo) -> str:
    """The JWS algorithm for the certificate's key: RSA → PS256, P-256 → ES256, P-384 → ES384,
    Ed25519 → EdDSA."""
    if info.key_type == "RSA":
        return "PS256"
    if info.key_type == "EC":
        return {256: "ES256", 384: "ES384"}.get(info.key_size) or _unsupported(info)
    if info.key_type == "Ed25519":
        return "EdDSA"
    return _unsupported(info)


def _unsupported(info: CertificateInfo) -> str:
    raise CredentialError(f"no client assertion algorithm for a {info.key_type} {info.key_size}-bit key")


def build_client_assertion(
    *,
    client_id: str,
    audience: str,
    private_key: PrivateKey,
    certificate_pem: bytes,
    alg: str | None = None,
    lifetime: int = 300,
    send_x5c: bool = False,
    now: float | None = None,
) -> str:
    """A signed client assertion for one token request (each call has a new `jti`)."""
    if not 1 <= lifetime <= MAX_LIFETIME:
        raise ValueError(f"lifetime must be between 1 and {MAX_LIFETIME} seconds")
    info = load_certificate(certificate_pem)
    algorithm = alg or default_algorithm(info)
    if algorithm not in info.algorithms:
        raise CredentialError(f"{algorithm} cannot be used with a {info.key_type} key")
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": str(uuid.uuid4()),
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime,
    }
    headers: dict[str, object] = {"typ": "JWT", "x5t#S256": info.x5t_s256}
    if send_x5c:
        headers["x5c"] = [base64.b64encode(info.der).decode("ascii")]
    return sign_with_headers(claims, private_key, alg=algorithm, headers=headers)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CredentialError(f"cannot read the {what} {path}: {exc.strerror or type(exc).__name__}") from None


def load_certificate_credential(
    cert_path: str | Path, key_path: str | Path, password: bytes | str | None = None
) -> tuple[PrivateKey, bytes]:
    """The private key and certificate PEM of a certificate credential, checked to belong together."""
    cert_pem = _read(Path(cert_path), "certificate")
    key_pem = _read(Path(key_path), "private key")
    secret = password.encode() if isinstance(password, str) else password
    key = load_private_key_pem(key_pem, secret)
    info = load_certificate(cert_pem)
    if public_to_pem(public_of(key)) != public_to_pem(info.public_key):
        raise CredentialError(f"the private key {key_path} does not belong to the certificate {cert_path}")
    return key, cert_pem


_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL)
_KEY_LABELS = frozenset({b"PRIVATE KEY", b"ENCRYPTED PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY"})


def _blocks(data: bytes, labels: frozenset[bytes]) -> list[bytes]:
    return [m.group(0) + b"\n" for m in _PEM_BLOCK.finditer(data) if m.group(1) in labels]


def load_certificate_files(
    certificate_path: str | Path, private_key_path: str | Path | None = None, password: bytes | str | None = None
) -> tuple[PrivateKey, bytes]:
    """A certificate credential from PEM files: the certificate (its first certificate block is the leaf)
    and the private key, in a file of its own or in the certificate's file. Checked to belong together.

    A file that is not PEM is read as a PKCS#12/PFX bundle holding both (with `password`).
    """
    cert_file = Path(certificate_path)
    cert_data = _read(cert_file, "certificate")
    secret = password.encode() if isinstance(password, str) else password
    if b"-----BEGIN" not in cert_data:
        if private_key_path is not None:
            raise CredentialError(f"{cert_file} is not PEM: a PKCS#12 file carries its own key, give no key file")
        try:
            return load_pkcs12_credential(cert_data, secret)
        except CertificateRejected as exc:
            raise CredentialError(f"{cert_file}: {exc.message}") from None
    certs = _blocks(cert_data, frozenset({b"CERTIFICATE"}))
    if not certs:
        raise CredentialError(f"{cert_file} holds no PEM certificate")
    key_file = Path(private_key_path) if private_key_path is not None else cert_file
    key_data = _read(key_file, "private key") if private_key_path is not None else cert_data
    keys = _blocks(key_data, _KEY_LABELS)
    if len(keys) != 1:
        found = "no" if not keys else "more than one"
        raise CredentialError(f"{key_file} holds {found} PEM private key")
    key = load_private_key_pem(keys[0], secret)
    info = load_certificate(certs[0])
    if public_to_pem(public_of(key)) != public_to_pem(info.public_key):
        raise CredentialError(f"the private key in {key_file} does not belong to the certificate {cert_file}")
    return key, certs[0]
