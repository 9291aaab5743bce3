"""DER sniffing for the certificate upload gate (keyless.crypto.certificates).

Why our own code: `cryptography` parses what it is asked to parse and says only "not that" otherwise.
The upload gate must recognise what it is *not* asked for — a private key in any encoding (PKCS#8,
PKCS#1, SEC1, encrypted PKCS#8, OpenSSH, PKCS#12/PFX) or a PKCS#7 bundle — so that it can refuse it by
name and never store, log or echo it (catalog B27). These helpers look only at the outer structure:
tags, lengths and a few object identifiers, never at key material.
"""

from __future__ import annotations

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

OPENSSH_MAGIC = b"openssh-key-v1\x00"
# PFX ::= SEQUENCE { version INTEGER {v3(3)}, authSafe ContentInfo { contentType OID data|signedData, ...}, ...}
PKCS7_DATA_OIDS = (
    bytes.fromhex("06092a864886f70d010701"),  # 1.2.840.113549.1.7.1 data
    bytes.fromhex("06092a864886f70d010702"),  # 1.2.840.113549.1.7.2 signedData
)
TAG_INTEGER = 0x02
TAG_OCTET_STRING = 0x04
TAG_SEQUENCE = 0x30


def der_header(data: bytes, pos: int) -> tuple[int, int, int | None] | None:
    """(tag, value offset, value length or None if indefinite) of the DER/BER element at `pos`."""
    if pos + 2 > len(data):
        return None
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        return tag, pos, first
    if first == 0x80:
        return tag, pos, None
    count = first & 0x7F
    if count > 4 or pos + count > len(data):
        return None
    return tag, pos + count, int.from_bytes(data[pos : pos + count], "big")


def split_der(data: bytes) -> list[bytes] | None:
    """The top-level definite-length DER elements of `data`, or None if it is not a clean sequence of them."""
    parts: list[bytes] = []
    pos = 0
    while pos < len(data):
        header = der_header(data, pos)
        if header is None or header[2] is None or header[1] + header[2] > len(data):
            return None
        end = header[1] + header[2]
        parts.append(data[pos:end])
        pos = end
    return parts


def looks_like_pfx(data: bytes) -> bool:
    outer = der_header(data, 0)
    if outer is None or outer[0] != TAG_SEQUENCE:
        return False
    pos = outer[1]
    if data[pos : pos + 3] != b"\x02\x01\x03":
        return False
    content_info = der_header(data, pos + 3)
    if content_info is None or content_info[0] != TAG_SEQUENCE:
        return False
    start = content_info[1]
    return any(data[start : start + len(oid)] == oid for oid in PKCS7_DATA_OIDS)


def looks_like_private_key_structure(data: bytes) -> bool:
    """PKCS#8, PKCS#1, SEC1 and DSA private keys start `SEQUENCE { INTEGER 0|1, ...`; encrypted PKCS#8 is
    `SEQUENCE { SEQUENCE, OCTET STRING }` — both unlike a certificate, CSR, CRL or public key."""
    outer = der_header(data, 0)
    if outer is None or outer[0] != TAG_SEQUENCE:
        return False
    pos = outer[1]
    if data[pos : pos + 3] in (b"\x02\x01\x00", b"\x02\x01\x01"):
        return True
    first = der_header(data, pos)
    if first is None or first[0] != TAG_SEQUENCE or first[2] is None:
        return False
    second = der_header(data, first[1] + first[2])
    if second is None or second[0] != TAG_OCTET_STRING or second[2] is None:
        return False
    end = second[1] + second[2]
    return outer[2] is not None and end == outer[1] + outer[2]


def is_private_key_der(data: bytes) -> bool:
    if data.startswith(OPENSSH_MAGIC) or looks_like_pfx(data) or looks_like_private_key_structure(data):
        return True
    try:
        serialization.load_der_private_key(data, password=None)
    except TypeError:  # an encrypted private key: still a private key
        return True
    except (ValueError, UnsupportedAlgorithm):
        pass
    else:
        return True
    try:
        pkcs12.load_key_and_certificates(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def serial_is_positive(der: bytes) -> bool:
    """False only for a well-formed certificate prefix whose serial is zero or negative."""
    outer = der_header(der, 0)
    tbs = der_header(der, outer[1]) if outer else None
    if tbs is None:
        return True
    pos = tbs[1]
    version = der_header(der, pos)
    if version is not None and version[0] == 0xA0 and version[2] is not None:  # [0] EXPLICIT version
        pos = version[1] + version[2]
    serial = der_header(der, pos)
    if serial is None or serial[0] != TAG_INTEGER or not serial[2]:
        return True
    content = der[serial[1] : serial[1] + serial[2]]
    return not (content[0] & 0x80 or not any(content))


def looks_like_pkcs7(der: bytes) -> bool:
    outer = der_header(der, 0)
    if outer is None or outer[0] != TAG_SEQUENCE:
        return False
    return der[outer[1] : outer[1] + len(PKCS7_DATA_OIDS[1])] == PKCS7_DATA_OIDS[1]
