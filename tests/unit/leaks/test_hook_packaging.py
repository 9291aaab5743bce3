"""The pre-commit hook installs and runs without the server extra (docs/leaks.md): its entry is the
`keyless-scan` console script, whose module pulls in no server dependency. (Checked by hand with
`pre-commit try-repo`, which installs the repository with its base dependencies only.)"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SERVER_ONLY = ("fastapi", "starlette", "sqlalchemy", "alembic", "typer", "rich", "uvicorn", "pydantic",
               "keyless.server", "keyless.store", "keyless.cli", "keyless.directory")


def test_hook_definition_runs_the_offline_console_script() -> None:
    hooks = (ROOT / ".pre-commit-hooks.yaml").read_text()
    assert "- id: keyless-scan" in hooks and "entry: keyless-scan\n" in hooks and "language: python" in hooks
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["keyless-scan"] == "keyless.leaks.hook:run"


def test_the_hook_module_imports_no_server_dependency() -> None:
    code = ("import sys, keyless.leaks.hook; "
            f"print([m for m in {SERVER_ONLY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
