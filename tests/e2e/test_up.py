"""`keyless up` (what `./scripts/run` runs): from nothing to a server that issued, verified and used a
token — a vault read, and the example worker calling the example API — and again on the same data
directory (resume)."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

from tests.support.server import cli_command, free_port


def _idle_tls_client(data_dir: Path, port: int) -> ssl.SSLSocket:
    """A client that completes the TLS handshake, sends one keep-alive request, then never reads
    again: like a Python prompt left open with an SDK client after the README's examples."""
    context = ssl.create_default_context(cafile=str(data_dir / "ca" / "ca.pem"))
    sock = context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname="127.0.0.1")
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    return sock


def _up_once(data_dir: Path, port: int, *, idle_client: bool = False) -> str:
    proc = subprocess.Popen(cli_command("up", "--data-dir", str(data_dir), "--port", str(port)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    lines: list[str] = []
    held: ssl.SSLSocket | None = None
    deadline = time.monotonic() + 90
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Press Ctrl+C to stop." in line or "error:" in line or time.monotonic() > deadline:
                break
        held = _idle_tls_client(data_dir, port) if idle_client else None
    finally:
        proc.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        stopped_in = time.monotonic() - interrupted
        if held is not None:
            held.close()
        if proc.stdout is not None:
            proc.stdout.close()
    # Ctrl+C ends it promptly every time: no pooled connection to its own ports holds the shutdown.
    assert stopped_in < 10, f"keyless up took {stopped_in:.1f} s to exit after SIGINT"
    return "".join(lines)


def test_up_shows_keyless_working_and_resumes(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "data", free_port()
    first = _up_once(data_dir, port)
    assert "Keyless is up." in first, first
    assert "It just got a token, verified against the JWKS: aud=api://orders roles=['Orders.Read']" in first
    assert f"It read secret 'orders-db' from vault 'default' at https://127.0.0.1:{port + 2}" in first
    assert f"web console     https://127.0.0.1:{port}/console/" in first  # issue 15: the link to sign in from
    # examples/worker.py got a token and called examples/orders_api.py, which validated it.
    called = next(line for line in first.splitlines() if "examples/worker.py called examples/orders_api.py" in line)
    assert '"orders":[]' in called and '"caller":"' in called
    again = _up_once(data_dir, port, idle_client=True)
    assert "Keyless is up." in again and "It read secret 'orders-db'" in again, again
