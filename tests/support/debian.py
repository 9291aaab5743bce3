"""Debian packages a test needs (HAProxy, Chromium, ...): installed with apt-get by the test set-up
when absent and we may (root, as in CI); otherwise the test is skipped with the reason, except under
CI=true, where a missing tool is a failure: CI must run every test."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

_updated = False


def require_debian_tool(command: str, package: str) -> str:
    """Path of `command`, installing `package` first if needed."""
    found = shutil.which(command) or shutil.which(command, path="/usr/sbin:/sbin")
    if found:
        return found
    global _updated
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if not _updated:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=300, check=False)
            _updated = True
        subprocess.run(["apt-get", "install", "-y", "-qq", package], env=env, capture_output=True, timeout=600,
                       check=False)
        found = shutil.which(command) or shutil.which(command, path="/usr/sbin:/sbin")
        if found:
            return found
    reason = f"{command} (Debian package {package}) is not installed and could not be installed here"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)
