"""The data directory `keyless init` creates and `keyless serve` reads.

    DATA_DIR/
      config.json        tenant, server URL, database URL (no secrets)
      kek.key            key-encryption key (0600): seals signing keys and the CA key, derives the
                         client-secret pepper and the TLS key password
      keyless.db         SQLite database (unless --database-url)
      ca/ca.pem          local CA certificate (give this to clients)
      ca/ca.key.sealed   CA private key, sealed under the KEK
      tls/server.pem     TLS certificate for localhost / 127.0.0.1 / ::1
      tls/server.key     TLS private key, PKCS#8 encrypted with a KEK-derived password (0600)
      cli/credential.json  the CLI's admin application: tenant, client id and file names (0600)
      cli/cli.pem, cli/cli.key  its certificate (issued by the local CA) and private key (0600);
                         data directories from before certificates hold a client secret instead
"""

from __future__ import annotations

import base64
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keyless.crypto import aead
from keyless.crypto.secrets import SecretHasher
from keyless.errors import ConfigurationError

KEK_ENV = "KEYLESS_KEK"
CA_KEY_AAD = b"ca-key"  # associated data binding the sealed CA key to its purpose


@dataclass(frozen=True)
class DataDir:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def kek(self) -> Path:
        return self.root / "kek.key"

    @property
    def sqlite(self) -> Path:
        return self.root / "keyless.db"

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca" / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca" / "ca.key.sealed"

    @property
    def tls_cert(self) -> Path:
        return self.root / "tls" / "server.pem"

    @property
    def tls_key(self) -> Path:
        return self.root / "tls" / "server.key"

    @property
    def cli_credential(self) -> Path:
        return self.root / "cli" / "credential.json"

    def exists(self) -> bool:
        return self.config.exists()

    def read_config(self) -> dict[str, Any]:
        if not self.config.exists():
            raise ConfigurationError(f"{self.root} is not a Keyless data directory: run `keyless init` first")
        data: dict[str, Any] = json.loads(self.config.read_text())
        return data

    def write_private(self, path: Path, data: bytes) -> None:
        """Create a file readable by its owner only; never widen an existing file's mode."""
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)

    def write_public(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.write_bytes(data)


def check_private(path: Path, *, allow_loose: bool = False) -> None:
    """Refuse key files that other users can read (catalog N06)."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077 and not allow_loose:
        raise ConfigurationError(f"{path} is readable by other users (mode {mode:o}); run chmod 600 on it")


def load_kek(data_dir: DataDir, *, allow_loose: bool = False) -> bytes:
    """The KEK from $KEYLESS_KEK (base64) or the data dir's kek.key."""
    env = os.environ.get(KEK_ENV)
    if env:
        raw = base64.b64decode(env)
    else:
        if not data_dir.kek.exists():
            raise ConfigurationError(f"no key-encryption key at {data_dir.kek} and ${KEK_ENV} is not set")
        check_private(data_dir.kek, allow_loose=allow_loose)
        raw = base64.b64decode(data_dir.kek.read_bytes().strip())
    if len(raw) != aead.KEY_BYTES:
        raise ConfigurationError("the key-encryption key must be 32 bytes (base64)")
    return raw


def secret_hasher(kek: bytes) -> SecretHasher:
    return SecretHasher(aead.derive(kek, "client-secret-pepper/v1"), pepper_id="p1")


def tls_key_password(kek: bytes) -> str:
    return base64.urlsafe_b64encode(aead.derive(kek, "tls-key-password/v1")).decode("ascii")
