"""The README's "Using it" section runs as written: every `sh` block, top to bottom, in one shell (a
second terminal next to `./scripts/run`), then every `python` block in one Python started from that
shell — against `keyless up --data-dir .keyless`, started the way `./scripts/run` starts it, from a
directory laid out like a checkout. Only the ports change (the README says 8443/8445; parallel test
runs need free ones). `REQUESTS_CA_BUNDLE` points at a bundle without the Keyless CA, as on many
workstations, so the msal trap the README describes stays handled."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import certifi

from tests.support.server import cli_command, free_port

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"^```(sh|python)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def readme_blocks() -> list[tuple[str, str]]:
    """(language, code) of every sh and python block in "## Using it", in order."""
    text = README.read_text()
    start = text.index("## Using it")
    section = text[start:text.index("\n## ", start + 1)]
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(section)]


def _script(port: int, vault_port: int) -> str:
    """One bash script: the sh blocks in order, then `python` reading the python blocks in order."""
    blocks = readme_blocks()
    languages = [language for language, _ in blocks]
    # The README puts every shell step before the first Python block, so one shell then one Python
    # prompt is the literal reading; a shell block after Python would need a second session.
    assert languages == sorted(languages, key=lambda lang: lang == "python"), languages
    shell = "\n".join(code for language, code in blocks if language == "sh")
    python = "\n".join(code for language, code in blocks if language == "python")
    script = f"set -euo pipefail\n{shell}\npython - <<'README_PYTHON'\n{python}\nREADME_PYTHON\n"
    return script.replace("127.0.0.1:8443", f"127.0.0.1:{port}").replace(":8445", f":{vault_port}")


def _checkout_like(tmp: Path) -> Path:
    """A directory with `.venv/bin/activate` (this interpreter's bin first on PATH) and `examples/`
    nowhere near: the README must not depend on files of the checkout beyond what ./scripts/run made."""
    root = tmp / "checkout"
    activate = root / ".venv" / "bin" / "activate"
    activate.parent.mkdir(parents=True)
    activate.write_text(f'export PATH="{Path(sys.executable).parent}:$PATH"\n')
    return root


def test_readme_using_it_runs_as_written(tmp_path: Path) -> None:
    root, port = _checkout_like(tmp_path), free_port()
    env = {**os.environ, "COLUMNS": "200", "REQUESTS_CA_BUNDLE": certifi.where(), "TMPDIR": str(tmp_path)}
    for name in ("KEYLESS_DATA_DIR", "KEYLESS_SERVER", "KEYLESS_CA", "AZURE_CLIENT_ID", "AZURE_TENANT_ID"):
        env.pop(name, None)
    server = subprocess.Popen(cli_command("up", "--data-dir", ".keyless", "--port", str(port)), cwd=root, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert server.stdout is not None
        deadline, seen = time.monotonic() + 120, []
        for line in server.stdout:
            seen.append(line)
            if "Press Ctrl+C to stop." in line or line.startswith("error:") or time.monotonic() > deadline:
                break
        assert "Keyless is up." in "".join(seen), "".join(seen)
        done = subprocess.run(["bash", "-c", _script(port, port + 2)], cwd=root, env=env, capture_output=True,
                              text=True, timeout=240, check=False)
        assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        out = done.stdout
        assert "['Inventory.Read'] True" in out  # the validator accepted the token the README obtained
        assert "Bearer" in out  # msal despite REQUESTS_CA_BUNDLE
        leaks = [p for p in root.rglob("*") if p.is_file() and p.suffix in {".key", ".txt", ".pem"}
                 and ".keyless" not in p.parts]
        assert leaks == []  # secrets, keys and passwords land outside the checkout
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stdout is not None:
            server.stdout.close()
