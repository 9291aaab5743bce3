"""docs/client.md's Python examples run against a real server."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.integration.client.conftest import certificate_app, reader_app, secret_app
from tests.support.server import RunningServer

DOC = Path(__file__).resolve().parents[3] / "docs" / "client.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)


def test_the_doc_has_examples() -> None:
    assert len([b for b in BLOCKS if "keyless.client" in b]) >= 6
    for block in BLOCKS:
        compile(block, str(DOC), "exec")


@pytest.mark.parametrize("block", [b for b in BLOCKS if "keyless.client" in b],
                         ids=lambda b: b.split("with ")[0][-40:].strip().replace("\n", " ")[:30])
def test_example_runs(block: str, sqlite_server: RunningServer, tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    worker = secret_app(sqlite_server)
    with_cert = certificate_app(sqlite_server, tmp_path)
    reader = reader_app(sqlite_server)
    assert with_cert.certificate and with_cert.key and worker.secret and reader.secret
    creds = tmp_path / "creds"
    creds.mkdir()
    shutil.copy(with_cert.certificate, creds / "worker.pem")
    shutil.copy(with_cert.key, creds / "worker.key")
    # the doc's scope is api://orders; each test app has its own resource
    block = block.replace("api://orders/.default", f"{worker.resource}/.default")
    if "CertificateCredential" in block:
        block = block.replace(f"{worker.resource}/.default", with_cert.scope)
        worker = with_cert
    monkeypatch.chdir(tmp_path)
    for name, value in {"KEYLESS_SERVER": sqlite_server.url, "KEYLESS_CA": sqlite_server.ca,
                        "KEYLESS_TENANT": sqlite_server.tenant_id, "WORKER_ID": worker.client_id,
                        "WORKER_SECRET": worker.secret or "unused", "READER_ID": reader.client_id,
                        "READER_SECRET": reader.secret,
                        # DefaultCredential's environment link (docs: "the default chain")
                        "AZURE_TENANT_ID": sqlite_server.tenant_id, "AZURE_CLIENT_ID": worker.client_id,
                        "AZURE_CLIENT_SECRET": worker.secret or "unused",
                        "AZURE_AUTHORITY_HOST": sqlite_server.url}.items():
        monkeypatch.setenv(name, value)
    exec(compile(block, str(DOC), "exec"), {"__name__": "__doc_example__"})  # noqa: S102
