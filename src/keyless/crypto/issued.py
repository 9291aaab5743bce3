"""Whether a registered certificate was issued by this installation's CA (the posture report's
"certificate not from the internal CA", docs/ladder.md).

A certificate's issuer name and authority key identifier are only bytes its maker chose, so a
certificate claiming the CA's name counts only when the CA's signature over it verifies. The
verification is the cost (ECDSA P-384, ~0.1-0.3 ms), and a report over thousands of certificates
would pay it on every run: results are kept per (certificate, CA) pair, which never change, in a
bounded cache keyed by their hash. Cheap byte checks come first, so a foreign certificate costs no verification at all.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

CACHE_SIZE = 65536


@lru_cache(maxsize=16)
def _ca(ca_pem: bytes) -> tuple[x509.Certificate, bytes]:
    cert = x509.load_pem_x509_certificate(ca_pem)
    return cert, cert.subject.public_bytes()


_results: dict[bytes, bool] = {}


def _verified(der: bytes, ca: x509.Certificate, subject: bytes) -> bool:
    try:
        cert = x509.load_der_x509_certificate(der)
        if cert.issuer.public_bytes() != subject:
            return False
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def issued_by(der: bytes, ca_pem: bytes) -> bool:
    """True when the CA in `ca_pem` signed the certificate `der` (name, algorithm and signature)."""
    ca, subject = _ca(ca_pem)
    if subject not in der:  # the issuer name is in the DER as these exact bytes, or it is not the CA's
        return False
    key = hashlib.sha256(der + b"\0" + ca_pem).digest()
    found = _results.get(key)
    if found is None:
        if len(_results) >= CACHE_SIZE:
            _results.clear()
        found = _results[key] = _verified(der, ca, subject)
    return found
