"""One error family (issue 12 item 5): every exception class Keyless defines derives from
`keyless.errors.KeylessError` (one `except` catches every deliberate failure); no two public exception
classes share a name (an import never picks the wrong `Conflict`); and every problem-detail `code` the
management API can answer with is registered in `keyless.problem_codes`, the one list scripts rely on
(docs/cli.md: codes are a contract)."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from collections import defaultdict
from pathlib import Path

import keyless
from keyless.errors import KeylessError
from keyless.problem_codes import PROBLEM_CODES

SRC = Path(keyless.__file__).parent


def _exception_classes() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(keyless.__path__, "keyless."):
        if ".migrations." in info.name:
            continue
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return list(found.values())


def test_every_exception_class_is_a_keyless_error() -> None:
    strays = sorted(f"{c.__module__}.{c.__qualname__}" for c in _exception_classes() if not issubclass(c, KeylessError))
    assert strays == [], strays


def test_no_two_public_exception_classes_share_a_name() -> None:
    by_name: dict[str, list[str]] = defaultdict(list)
    for cls in _exception_classes():
        if not cls.__name__.startswith("_"):
            by_name[cls.__name__].append(cls.__module__)
    shared = {name: modules for name, modules in by_name.items() if len(modules) > 1}
    assert shared == {}, shared


# Calls whose argument at this position is a problem code: directory errors and the upload gate's and the
# federation rules' refusals (which become `Invalid(exc.code, …)`) first, problems and auth refusals second.
_CODE_AT = {"Invalid": 0, "NotFound": 0, "Conflict": 0, "DirectoryError": 0, "CertificateRejected": 0,
            "RuleError": 0, "problem": 1, "AuthProblem": 1}
_DIRECTORY_ERRORS = {"Invalid", "NotFound", "Conflict", "DirectoryError"}


def _codes_in_source() -> dict[str, list[str]]:
    """Every literal code passed where a problem code goes, and every vault error's `problem`."""
    found: dict[str, list[str]] = defaultdict(list)
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        # `Conflict` means the directory's only where the module imports it from keyless.directory.errors.
        directory = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                     and n.module == "keyless.directory.errors" for a in n.names}
        for node in ast.walk(tree):
            where = f"{path.relative_to(SRC)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.ClassDef) and path.name == "errors.py" and path.parent.name == "vault":
                for stmt in node.body:
                    if (isinstance(stmt, ast.Assign) and [getattr(t, "id", "") for t in stmt.targets] == ["problem"]
                            and isinstance(stmt.value, ast.Constant)):
                        found[str(stmt.value.value)].append(where)
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name not in _CODE_AT or (name in _DIRECTORY_ERRORS and isinstance(func, ast.Name)
                                        and name not in directory and path.parent.name != "directory"):
                continue
            position = _CODE_AT[name]
            if len(node.args) > position:
                arg = node.args[position]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found[arg.value].append(where)
    return found


def test_every_problem_code_is_registered() -> None:
    unregistered = {code: where for code, where in _codes_in_source().items() if code not in PROBLEM_CODES}
    assert unregistered == {}, f"add these codes to keyless/problem_codes.py: {unregistered}"


def test_the_scan_finds_codes_where_they_are_raised() -> None:
    """Guards the test above: a scan that found nothing would pass vacuously."""
    found = _codes_in_source()
    assert {"would_lock_out", "unauthenticated", "internal_error", "vault_conflict", "bad_csr",
            "invalid_issuer"} <= set(found)
