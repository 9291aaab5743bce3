"""`keyless ca show|sign`: the local CA's certificate, and certificates it issues from CSRs."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from cryptography import x509

from keyless.crypto.certificates import load_certificate
from keyless.crypto.client_keys import certificate_signing_request, generate_client_key
from tests.integration.cli.helpers import one_error_line
from tests.support.server import Admin, RunningServer


def _app(srv: RunningServer) -> dict[str, str]:
    with Admin(srv) as admin:
        return {k: str(v) for k, v in admin.app(f"ca-{uuid.uuid4().hex[:6]}").items()}


def test_show_prints_the_ca_that_verifies_issued_certificates(server: RunningServer, tmp_path: Path) -> None:
    shown = server.cli("ca", "show").stdout
    assert shown.startswith("-----BEGIN CERTIFICATE-----") and "PRIVATE" not in shown
    assert server.cli_json("ca", "show") == {"certificate": shown}
    assert shown == Path(server.ca).read_text()
    app = _app(server)
    created = server.cli_json("cert", "new", app["client_id"], "--ca-signed", "--out", str(tmp_path))
    issued = x509.load_pem_x509_certificate(Path(created["certificate_path"]).read_bytes())
    issued.verify_directly_issued_by(x509.load_pem_x509_certificate(shown.encode()))


def test_sign_issues_and_registers_a_certificate_for_the_csr(server: RunningServer, tmp_path: Path) -> None:
    app = _app(server)
    key = generate_client_key("p256")
    csr = tmp_path / "w.csr"
    csr.write_bytes(certificate_signing_request(key, "ignored"))
    pem = server.cli("ca", "sign", str(csr), "--app", app["display_name"], "--days", "10").stdout
    info = load_certificate(pem.encode())
    assert info.key_type == "EC"
    assert info.not_after - info.not_before <= 10 * 86400 + 600
    issued = x509.load_pem_x509_certificate(pem.encode())
    issued.verify_directly_issued_by(x509.load_pem_x509_certificate(Path(server.ca).read_bytes()))
    assert issued.public_key() == key.public_key()

    out = tmp_path / "w.pem"
    full = server.cli_json("ca", "sign", str(csr), "--app", app["client_id"], "--out", str(out))
    assert full["client_id"] == app["client_id"] and full["certificate"] == out.read_text()
    listed = {c["x5t_s256"] for c in server.cli_json("cert", "list", app["client_id"])}
    assert listed == {info.x5t_s256, full["x5t_s256"]}

    again = server.cli("ca", "sign", str(csr), "--app", app["client_id"], "--out", str(out), check=False)
    assert again.returncode == 1 and "refusing to overwrite" in one_error_line(again.stderr)


def test_sign_refuses_what_is_not_a_csr(sqlite_server: RunningServer, tmp_path: Path) -> None:
    app = _app(sqlite_server)
    bogus = tmp_path / "x.csr"
    bogus.write_text("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")
    proc = sqlite_server.cli("ca", "sign", str(bogus), "--app", app["client_id"], check=False)
    assert proc.returncode == 1
    one_error_line(proc.stderr)
    assert json.loads(sqlite_server.cli("cert", "list", app["client_id"], "-o", "json").stdout) == []
