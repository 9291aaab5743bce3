"""Parsed client certificates by id, shared by `private_key_jwt` and the agent's renewal route:
parsing DER on every request would cost more than the signature it checks."""

from __future__ import annotations

from keyless.crypto.certificates import CertificateInfo, load_certificate
from keyless.domain.model import Certificate


class CertificateCache:
    def __init__(self, max_entries: int = 10_000) -> None:
        self._parsed: dict[str, CertificateInfo] = {}
        self._max = max_entries

    def info(self, cert: Certificate) -> CertificateInfo:
        parsed = self._parsed.get(cert.id)
        if parsed is None:
            parsed = load_certificate(cert.der)
            if len(self._parsed) >= self._max:
                self._parsed.clear()
            self._parsed[cert.id] = parsed
        return parsed
