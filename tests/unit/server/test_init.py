"""`keyless init`: what it creates, with which modes, and what it refuses."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from keyless.crypto import aead
from keyless.errors import ConfigurationError
from keyless.server.datadir import DataDir, load_kek, tls_key_password
from keyless.server.init import CA_KEY_AAD, initialize


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_init_creates_everything_with_private_modes(tmp_path: Path) -> None:
    root = tmp_path / "d"
    result = await initialize(root, server_url="https://127.0.0.1:9443")
    data = DataDir(root)
    for private in (data.kek, data.ca_key, data.tls_key, data.cli_credential, data.sqlite):
        assert mode(private) == 0o600, private
    assert mode(root) == 0o700
    config = json.loads(data.config.read_text())
    assert config["tenant_id"] == result.boot.tenant.id
    assert "secret" not in data.config.read_text()
    kek = load_kek(data)
    assert aead.open_sealed(kek, data.ca_key.read_bytes(), CA_KEY_AAD)  # sealed, and opens with the KEK
    assert b"ENCRYPTED PRIVATE KEY" in data.tls_key.read_bytes()
    assert tls_key_password(kek)
    cred = json.loads(data.cli_credential.read_text())
    assert cred["client_id"] == result.boot.cli.client_id


async def test_init_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    root = tmp_path / "d"
    root.mkdir()
    (root / "keep.txt").write_text("mine")
    with pytest.raises(ConfigurationError, match="refusing to overwrite"):
        await initialize(root)
    assert [p.name for p in root.iterdir()] == ["keep.txt"]


async def test_loose_kek_permissions_refused(tmp_path: Path) -> None:
    root = tmp_path / "d"
    await initialize(root)
    data = DataDir(root)
    data.kek.chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        load_kek(data)


def test_kek_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = aead.new_key()
    monkeypatch.setenv("KEYLESS_KEK", base64.b64encode(key).decode())
    assert load_kek(DataDir(tmp_path)) == key
    monkeypatch.setenv("KEYLESS_KEK", base64.b64encode(b"short").decode())
    with pytest.raises(ConfigurationError, match="32 bytes"):
        load_kek(DataDir(tmp_path))


async def test_the_cli_credential_is_a_ca_issued_certificate_and_no_secret(tmp_path: Path) -> None:
    from keyless.client import load_certificate_credential
    from keyless.clock import SystemClock
    from keyless.crypto.certificates import load_certificate
    from keyless.directory.service import DirectoryService
    from keyless.server.datadir import secret_hasher
    from keyless.store import db
    from keyless.store.directory import SqlDirectoryStore

    root = tmp_path / "d"
    result = await initialize(root)
    data = DataDir(root)
    cred = json.loads(data.cli_credential.read_text())
    assert cred == {"tenant": result.boot.tenant.id, "client_id": result.boot.cli.client_id,
                    "certificate": "cli.pem", "private_key": "cli.key"}
    assert "secret" not in data.cli_credential.read_text()
    cli_dir = data.cli_credential.parent
    assert mode(cli_dir / "cli.key") == 0o600
    _key, cert_pem = load_certificate_credential(cli_dir / "cli.pem", cli_dir / "cli.key")
    assert cert_pem == result.boot.cli_certificate_pem
    assert load_certificate(cert_pem).x5t_s256 == result.boot.cli_certificate.x5t_s256

    engine = db.create_engine(db.sqlite_url(data.sqlite))
    try:
        kek = load_kek(data)
        service = DirectoryService(SqlDirectoryStore(engine), SystemClock(),
                                   secret_hasher(kek), kek)
        tenant = result.boot.tenant
        assert list(await service.list_secrets(tenant, result.boot.cli.client_id)) == []
        (cert,) = await service.list_certificates(tenant, result.boot.cli.client_id)
        assert cert.id == result.boot.cli_certificate.id
    finally:
        await engine.dispose()
