"""`keyless up` (what `./scripts/run` runs): from nothing to a server that issued, verified and used a
token — a vault read, and the example worker calling the example API — and again on the same data
directory (resume)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.support.server import cli_command, free_port


def _up_once(data_dir: Path, port: int) -> str:
    proc = subprocess.Popen(cli_command("up", "--data-dir", str(data_dir), "--port", str(port)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    lines: list[str] = []
    deadline = time.monotonic() + 90
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Press Ctrl+C to stop." in line or "error:" in line or time.monotonic() > deadline:
                break
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    return "".join(lines)


def test_up_shows_keyless_working_and_resumes(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "data", free_port()
    first = _up_once(data_dir, port)
    assert "Keyless is up." in first, first
    assert "It just got a token, verified against the JWKS: aud=api://orders roles=['Orders.Read']" in first
    assert f"It read secret 'orders-db' from vault 'default' at https://127.0.0.1:{port + 2}" in first
    # examples/worker.py got a token and called examples/orders_api.py, which validated it.
    called = next(line for line in first.splitlines() if "examples/worker.py called examples/orders_api.py" in line)
    assert '"orders":[]' in called and '"caller":"' in called
    again = _up_once(data_dir, port)
    assert "Keyless is up." in again and "It read secret 'orders-db'" in again, again
