"""Every package and root module of Keyless is constrained by an import-linter contract (issue 12,
"the import-linter contracts (extended for the new packages)"): a package added without one could
import anything, and `lint-imports` would stay green. A module is constrained when a contract names it
as a source or as a layer (docs/architecture.md draws the rules)."""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import keyless

ROOT = Path(keyless.__file__).parents[2]


def _constrained() -> set[str]:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    names: set[str] = set()
    for contract in contracts:
        names.update(contract.get("source_modules", []))
        for layer in contract.get("layers", []):
            names.update(part.strip() for part in layer.split("|"))
    return names


def test_every_package_and_root_module_is_named_by_a_contract() -> None:
    top = {f"keyless.{m.name}" for m in pkgutil.iter_modules(keyless.__path__)}
    assert top - _constrained() == set()


def test_the_check_sees_a_package_no_contract_names() -> None:
    assert "keyless.not_a_package" not in _constrained()
    assert {"keyless.agent", "keyless.errors", "keyless.store"} <= _constrained()
