"""`keyless.client` loads its names on first use (PEP 562): every exported name is there and is its
module's own object, a missing one is an AttributeError, and importing the package loads none of the
credential code (the CLI with a cached token needs only the errors)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import keyless.client


@pytest.mark.parametrize("name", keyless.client.__all__)
def test_every_exported_name_is_its_modules_own(name: str) -> None:
    value = getattr(keyless.client, name)
    home = importlib.import_module(f"keyless.client.{keyless.client._HOME[name]}")
    assert value is getattr(home, name)


def test_exports_are_the_documented_list() -> None:
    assert set(keyless.client._HOME) == set(keyless.client.__all__)
    assert set(keyless.client.__all__) <= set(dir(keyless.client))


def test_a_missing_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'NoSuchCredential'"):
        _ = keyless.client.NoSuchCredential  # type: ignore[attr-defined]
    with pytest.raises(ImportError):
        from keyless.client import NoSuchCredential  # type: ignore[attr-defined] # noqa: F401


def test_importing_the_package_loads_no_credential_code() -> None:
    script = ("import sys, keyless.client\nfrom keyless.client import OAuthError\n"
              "print(' '.join(m for m in sys.modules if m.startswith(('keyless.client.', 'cryptography', 'jwt'))))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.split() == ["keyless.client.errors"]
