"""`./scripts/run` prints a line per step, installs when `pyproject.toml` changed (a hash stamp in
`.venv/`), and skips the install when nothing changed. Run on a copy of the script in a scratch
checkout whose `.venv/bin/python` and `.venv/bin/keyless` are stand-ins that record what they were
asked, so the test needs no network and touches no real environment."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _checkout(tmp: Path) -> Path:
    root = tmp / "checkout"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "run", root / "scripts" / "run")
    (root / "pyproject.toml").write_text("[project]\nname = 'keyless'\n")
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    calls = root / "calls.log"
    # python: `-c` runs for real (the stamp hash); `-m pip …` is recorded and answers like pip does.
    (bin_dir / "python").write_text(
        "#!/usr/bin/env bash\n"
        f'if [ "$1" = "-c" ]; then exec {sys.executable} "$@"; fi\n'
        f'echo "python $*" >> {calls}\n'
        'printf "Collecting httpx\\nRequirement already satisfied: idna\\nInstalling collected packages: httpx\\n'
        'Successfully installed httpx-0.28.1\\n"\n')
    (bin_dir / "keyless").write_text(f'#!/usr/bin/env bash\necho "keyless $*" >> {calls}\necho "keyless up ran"\n')
    for stub in ("python", "keyless"):
        (bin_dir / stub).chmod(0o755)
    return root


def _run(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(root / "scripts" / "run"), "--port", "18999"], cwd=root, capture_output=True,
                          text=True, timeout=60, check=False, env={"PATH": "/usr/bin:/bin", "HOME": str(root)})


def test_first_run_installs_and_says_so_then_later_runs_skip_the_install(tmp_path: Path) -> None:
    root = _checkout(tmp_path)
    first = _run(root)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "==> installing Keyless and its dependencies into .venv/ (first run: about a minute)",
        "Collecting httpx",
        "Installing collected packages: httpx",
        "Successfully installed httpx-0.28.1",
        "==> starting keyless up (Ctrl+C stops it)",
        "keyless up ran",
    ]
    stamp = (root / ".venv" / ".keyless-installed").read_text().strip()
    assert stamp == hashlib.sha256((root / "pyproject.toml").read_bytes()).hexdigest()

    again = _run(root)
    assert again.stdout.splitlines()[0] == ("==> dependencies up to date (pyproject.toml unchanged since the last "
                                            "install)")
    calls = (root / "calls.log").read_text().splitlines()
    assert [c for c in calls if "pip install" in c] == [
        "python -m pip install --disable-pip-version-check --progress-bar off -e .[server]"]  # once, not twice
    assert calls[-1] == "keyless up --data-dir .keyless --port 18999"

    (root / "pyproject.toml").write_text("[project]\nname = 'keyless'\nversion = '2'\n")
    changed = _run(root)
    assert "==> installing Keyless" in changed.stdout.splitlines()[0]
