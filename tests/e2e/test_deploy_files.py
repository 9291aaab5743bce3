"""The deployment files in deploy/ (docs/deployment.md) are valid for the tools that read them."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from keyless.crypto.ca import create_ca
from tests.support.debian import require_debian_tool

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.mark.parametrize("unit", ["keyless.service", "keyless-agent.service"])
def test_systemd_units_pass_systemd_analyze_verify(unit: str, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    # verify resolves ExecStart's binary: point it at a stand-in so the check is about the unit itself.
    text = (DEPLOY / "systemd" / unit).read_text()
    assert "ExecStart=/usr/local/bin/keyless " in text
    fake = tmp_path / "keyless"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    copy = tmp_path / unit
    copy.write_text(text.replace("/usr/local/bin/keyless", str(fake)))
    done = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    problems = [line for line in done.stderr.splitlines() if unit in line and "Documentation" not in line]
    assert done.returncode == 0 or not problems, done.stderr
    assert not problems, done.stderr


def test_haproxy_configuration_is_valid(tmp_path: Path) -> None:
    haproxy = require_debian_tool("haproxy", "haproxy")
    # The example trusts the installation's CA at /etc/keyless/ca.pem: give the check a real one.
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(create_ca("test CA", now=time.time()).cert_pem)
    config = tmp_path / "haproxy.cfg"
    config.write_text((DEPLOY / "haproxy" / "haproxy.cfg").read_text().replace("/etc/keyless/ca.pem", str(ca_file)))
    done = subprocess.run([haproxy, "-c", "-f", str(config)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
