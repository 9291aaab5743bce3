"""Client certificate credentials: the upload gate and the x5t/x5c helpers.

A certificate credential registers only the *public* half of a client's key; the private key stays on the
host that signs client assertions. The upload path is therefore deliberately strict: anything that carries
a private key (PEM key blocks, DER keys, PKCS#12/PFX bundles) is refused with a fixed message that never
echoes the input, and exactly one certificate whose key passes the key policy (catalog B27) is accepted.
Every rejection carries a stable snake_case `code` so the API and the CLI can react without parsing text.

The structure sniffing behind the gate is in `keyless.crypto.der`; the client-side key tooling (key
generation, self-signed certificates, CSRs) in `keyless.crypto.client_keys`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.x509.oid import PublicKeyAlgorithmOID

from keyless.crypto.der import (
    TAG_SEQUENCE,
    is_private_key_der,
    looks_like_pkcs7,
    serial_is_positive,
    split_der,
)
from keyless.crypto.keys import PublicKey
from keyless.crypto.thumbprints import b64u
from keyless.errors import KeylessError

MAX_UPLOAD_BYTES = 16 * 1024
RSA_MIN_BITS = 2048
RSA_MAX_BITS = 4096

PRIVATE_KEY_MESSAGE = "the upload contains a private key; register only the certificate — the key never leaves its host"

_EC_CURVES: dict[str, tuple[int, str]] = {"secp256r1": (256, "ES256"), "secp384r1": (384, "ES384")}
_RSA_ALGS = frozenset({"RS256", "PS256"})

_PEM_BEGIN = re.compile(rb"-----BEGIN ([^\r\n]*?)-----")
_PEM_BLOCK = re.compile(rb"-----BEGIN ([^\r\n]*?)-----(.*?)-----END ([^\r\n]*?)-----", re.DOTALL)
_WHITESPACE = re.compile(rb"\s+")
_B64_TEXT = re.compile(rb"[A-Za-z0-9+/=_\-\s]+")

_EC_PUBLIC_KEY_OID_DER = bytes.fromhex("06072a8648ce3d0201")  # 1.2.840.10045.2.1


class CertificateRejected(KeylessError):
    """A certificate, CSR or client key failed the credential policy.

    `code` is stable and snake_case (for API error bodies and tests); `message` is one sentence for humans
    and never contains any part of the rejected input.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"CertificateRejected(code={self.code!r}, message={self.message!r})"


@dataclass(frozen=True)
class KeyFacts:
    """What the key policy learned about an accepted public key."""

    public_key: PublicKey
    key_type: str
    key_size: int
    algorithms: frozenset[str]


@dataclass(frozen=True)
class CertificateInfo:
    der: bytes
    x5t: str  # base64url(SHA-1(DER)), unpadded
    x5t_s256: str  # base64url(SHA-256(DER)), unpadded
    not_before: float
    not_after: float
    key_type: str  # "RSA" | "EC" | "Ed25519"
    key_size: int
    subject: str  # RFC 4514
    algorithms: frozenset[str]  # JWS algorithms this key may sign client assertions with
    public_key: PublicKey

    def pem(self) -> str:
        body = base64.b64encode(self.der).decode("ascii")
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


# -- key policy (catalog B27) ------------------------------------------------------------------------


def check_key_policy(key: object) -> KeyFacts:
    """Accept RSA 2048 to 4096 bits, EC P-256/P-384 and Ed25519 public keys; refuse everything else."""
    if isinstance(key, rsa.RSAPublicKey):
        if not RSA_MIN_BITS <= key.key_size <= RSA_MAX_BITS:
            raise CertificateRejected(
                "key_size_not_allowed",
                f"RSA keys must be {RSA_MIN_BITS} to {RSA_MAX_BITS} bits; this one has {key.key_size}",
            )
        return KeyFacts(key, "RSA", key.key_size, _RSA_ALGS)
    if isinstance(key, ec.EllipticCurvePublicKey):
        allowed = _EC_CURVES.get(key.curve.name)
        if allowed is None:
            raise CertificateRejected(
                "curve_not_allowed", f"EC keys must use P-256 or P-384; this one uses {key.curve.name}"
            )
        bits, alg = allowed
        return KeyFacts(key, "EC", bits, frozenset({alg}))
    if isinstance(key, ed25519.Ed25519PublicKey):
        return KeyFacts(key, "Ed25519", 256, frozenset({"EdDSA"}))
    raise CertificateRejected(
        "key_type_not_allowed", f"{_key_type_name(key)} keys are not allowed; use RSA, EC P-256/P-384 or Ed25519"
    )


def _key_type_name(key: object) -> str:
    names: tuple[tuple[type, str], ...] = (
        (dsa.DSAPublicKey, "DSA"),
        (ed448.Ed448PublicKey, "Ed448"),
        (x25519.X25519PublicKey, "X25519"),
        (x448.X448PublicKey, "X448"),
    )
    for cls, name in names:
        if isinstance(key, cls):
            return name
    return "this type of"


def public_key_of_csr(csr: x509.CertificateSigningRequest) -> KeyFacts:
    """The policy-checked public key of a CSR (raises `CertificateRejected` for refused keys)."""
    return _public_key_of(csr)


def _public_key_of(holder: x509.Certificate | x509.CertificateSigningRequest) -> KeyFacts:
    """The policy-checked public key of a certificate or CSR, including keys `cryptography` cannot load."""
    try:
        key = holder.public_key()
    except (UnsupportedAlgorithm, ValueError):
        if isinstance(holder, x509.Certificate):
            is_ec = holder.public_key_algorithm_oid == PublicKeyAlgorithmOID.EC_PUBLIC_KEY
        else:  # a CSR exposes no algorithm OID; look for id-ecPublicKey in the request info
            is_ec = _EC_PUBLIC_KEY_OID_DER in holder.tbs_certrequest_bytes
        if is_ec:
            raise CertificateRejected(
                "curve_not_allowed", "EC keys must use P-256 or P-384; this one's curve is unsupported or malformed"
            ) from None
        raise CertificateRejected(
            "key_type_not_allowed", "the public key is of an unsupported type or malformed; use RSA, EC or Ed25519"
        ) from None
    return check_key_policy(key)


def _reject_private_key() -> CertificateRejected:
    return CertificateRejected("private_key_in_upload", PRIVATE_KEY_MESSAGE)


def reject_private_key_pem(data: bytes) -> None:
    """Refuse text that carries any PEM block labelled `... PRIVATE KEY` (even an unterminated one)."""
    if any(b"PRIVATE KEY" in label.upper() for label in _PEM_BEGIN.findall(data)):
        raise _reject_private_key()


# -- certificate upload ------------------------------------------------------------------------------


def _not_a_certificate(detail: str = "the upload is not an X.509 certificate") -> CertificateRejected:
    return CertificateRejected("not_a_certificate", detail)


def _multiple() -> CertificateRejected:
    return CertificateRejected(
        "multiple_certificates", "the upload contains more than one certificate; send exactly one"
    )


def _certificate_der_from_pem(data: bytes) -> bytes:
    reject_private_key_pem(data)
    blocks = _PEM_BLOCK.findall(data)
    if len(blocks) != len(_PEM_BEGIN.findall(data)):
        raise _not_a_certificate("the upload has a malformed PEM block")
    ders: list[bytes] = []
    for begin, body, end in blocks:
        if begin != end:
            raise _not_a_certificate("the upload has a malformed PEM block")
        try:
            der = base64.b64decode(_WHITESPACE.sub(b"", body), validate=True)
        except (binascii.Error, ValueError):
            raise _not_a_certificate("the upload has a malformed PEM block") from None
        if is_private_key_der(der):
            raise _reject_private_key()
        if begin == b"CERTIFICATE":
            ders.append(der)
    if len(ders) > 1:
        raise _multiple()
    if len(ders) != len(blocks) or not ders:
        raise _not_a_certificate("the upload must be exactly one PEM CERTIFICATE block")
    return ders[0]


def _certificate_der_from_binary(data: bytes) -> bytes:
    if is_private_key_der(data):
        raise _reject_private_key()
    if _B64_TEXT.fullmatch(data):
        # Unarmoured base64 (a pasted PFX from a key vault, say) is not accepted, but a key inside is named.
        try:
            decoded = base64.b64decode(_WHITESPACE.sub(b"", data).replace(b"-", b"+").replace(b"_", b"/"))
        except (binascii.Error, ValueError):
            decoded = b""
        if decoded and is_private_key_der(decoded):
            raise _reject_private_key()
        raise _not_a_certificate("the upload is not a PEM or DER certificate")
    parts = split_der(data)
    if parts is None:
        raise _not_a_certificate()
    for part in parts:
        if is_private_key_der(part):
            raise _reject_private_key()
    if len(parts) > 1:
        if all(_parses_as_certificate(p) for p in parts):
            raise _multiple()
        raise _not_a_certificate("the upload must be exactly one DER certificate")
    return parts[0]


def _parses_as_certificate(der: bytes) -> bool:
    try:
        x509.load_der_x509_certificate(der)
    except (ValueError, x509.InvalidVersion):
        return False
    return True


def load_certificate(data: bytes, *, now: float | None = None) -> CertificateInfo:
    """Parse and police one uploaded certificate (PEM or DER); see the module docstring for the rules."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise CertificateRejected("too_large", f"the upload is larger than {MAX_UPLOAD_BYTES // 1024} KiB")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # PEM saved as UTF-16 (Windows PowerShell 5 redirection)
        try:
            data = data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError:
            raise _not_a_certificate() from None
    reject_private_key_pem(data)
    trimmed = data.removeprefix(b"\xef\xbb\xbf").strip()
    if not trimmed:
        raise _not_a_certificate("the upload is empty")
    # DER is never stripped: its last bytes may well be whitespace values. Text around a PEM block can
    # happen to parse as a chain of DER elements too (about one upload in a hundred with OpenSSL's
    # "subject=" lines), but ASCII alone is never a DER certificate: one is longer than 127 bytes, so
    # its outer length takes a byte of 0x81 or more.
    if trimmed.startswith(b"-----BEGIN") or (b"-----BEGIN" in trimmed
                                             and (trimmed.isascii() or split_der(data) is None)):
        der = _certificate_der_from_pem(trimmed)
    else:
        der = _certificate_der_from_binary(data)
    if not serial_is_positive(der):
        # RFC 5280 §4.1.2.2; `cryptography` only warns today (an error under `-W error`), so refuse it here.
        raise _not_a_certificate("the certificate's serial number is not a positive integer")
    try:
        cert = x509.load_der_x509_certificate(der)
        not_before = cert.not_valid_before_utc.timestamp()
        not_after = cert.not_valid_after_utc.timestamp()
        subject = cert.subject.rfc4514_string()
    except (ValueError, x509.InvalidVersion):
        if looks_like_pkcs7(der):
            raise _not_a_certificate("the upload is a PKCS#7 bundle; send exactly one certificate") from None
        raise _not_a_certificate() from None
    facts = _public_key_of(cert)
    if now is not None and not_after < now:
        raise CertificateRejected("certificate_expired", "the certificate has already expired")
    return CertificateInfo(
        der=der,
        x5t=b64u(hashlib.sha1(der, usedforsecurity=False).digest()),
        x5t_s256=b64u(hashlib.sha256(der).digest()),
        not_before=not_before,
        not_after=not_after,
        key_type=facts.key_type,
        key_size=facts.key_size,
        subject=subject,
        algorithms=facts.algorithms,
        public_key=facts.public_key,
    )


# -- JOSE header helpers -----------------------------------------------------------------------------


def x5c_der(entry: str) -> bytes:
    """Decode one `x5c` entry (standard base64 DER, RFC 7515 §4.1.6), tolerating embedded line breaks."""
    if not isinstance(entry, str) or not entry.isascii():
        raise CertificateRejected("bad_x5c", "an x5c entry must be a base64 string")
    compact = _WHITESPACE.sub(b"", entry.encode("ascii"))
    if len(compact) > (MAX_UPLOAD_BYTES // 3 + 1) * 4:
        raise CertificateRejected("bad_x5c", "an x5c entry is too large")
    if len(compact) % 4:
        compact += b"=" * (-len(compact) % 4)
    try:
        der = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise CertificateRejected("bad_x5c", "an x5c entry is not valid base64") from None
    if not der or der[0] != TAG_SEQUENCE:
        raise CertificateRejected("bad_x5c", "an x5c entry does not hold a DER certificate")
    return der


def thumbprint_matches(presented: str, info: CertificateInfo, *, sha256: bool) -> bool:
    """Compare a header `x5t` (or `x5t#S256` when `sha256`) with the certificate's, in constant time."""
    if not isinstance(presented, str) or not presented.isascii():
        return False
    expected = info.x5t_s256 if sha256 else info.x5t
    return hmac.compare_digest(presented.rstrip("=").encode("ascii"), expected.encode("ascii"))


