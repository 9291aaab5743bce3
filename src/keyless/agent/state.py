"""The agent's state directory: the host key with its certificate (one 0600 file) and what
enrollment said about the host. The directory is 0700 and owned by the agent's user; a looser one is refused."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

from keyless.crypto.client_keys import load_private_key_pem, private_key_pem
from keyless.crypto.keys import PrivateKey
from keyless.errors import ConfigurationError

CREDENTIAL_FILE = "host.pem"  # the key and its certificate in one file, so a renewal replaces both atomically
HOST_FILE = "host.json"
IDENTITY_HEADER_FILE = "identity-header"


@dataclass(frozen=True)
class HostInfo:
    server: str
    tenant_id: str
    host_id: str
    host_name: str
    system_client_id: str
    issuer: str
    token_endpoint: str


def write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write a file readable only by its owner (or `mode`), atomically: never a moment with loose
    permissions, never a half-written key."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class StateDir:
    def __init__(self, path: Path) -> None:
        self.path = path

    def ensure(self) -> None:
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = self.path.stat()
        except OSError as exc:
            raise ConfigurationError(f"cannot use the state directory {self.path}: {exc.strerror}") from None
        if info.st_uid != os.geteuid():
            raise ConfigurationError(f"the state directory {self.path} belongs to another user")
        if stat.S_IMODE(info.st_mode) & 0o077:
            raise ConfigurationError(f"the state directory {self.path} must be mode 0700 (chmod 700 {self.path})")

    @property
    def enrolled(self) -> bool:
        return all((self.path / f).exists() for f in (CREDENTIAL_FILE, HOST_FILE))

    def save(self, key: PrivateKey, cert_pem: bytes, host: HostInfo | None = None) -> None:
        if host is not None:
            write_private(self.path / HOST_FILE, json.dumps(asdict(host), indent=2).encode(), 0o644)
        write_private(self.path / CREDENTIAL_FILE, private_key_pem(key) + cert_pem)

    def load(self) -> tuple[PrivateKey, bytes, HostInfo]:
        path = self.path / CREDENTIAL_FILE
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            raise ConfigurationError(f"the host credential {path} must be mode 0600")
        data = path.read_bytes()
        marker = data.find(b"-----BEGIN CERTIFICATE-----")
        if marker <= 0:
            raise ConfigurationError(f"{path} does not hold a key and a certificate")
        key = load_private_key_pem(data[:marker])
        host = HostInfo(**json.loads((self.path / HOST_FILE).read_text()))
        return key, data[marker:], host

    def identity_header(self) -> str:
        """The per-agent secret App-Service-style callers present in `X-IDENTITY-HEADER`, kept in a
        0600 file that the admin hands to the workloads allowed to use it."""
        import secrets

        path = self.path / IDENTITY_HEADER_FILE
        if path.exists():
            value = path.read_text().strip()
            if len(value) >= 32:
                return value
        value = secrets.token_urlsafe(32)
        write_private(path, value.encode())
        return value
