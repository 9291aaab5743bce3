"""Catalog L: timing. L01 secrets are compared as fixed-length HMAC digests with `hmac.compare_digest`;
L03 credentials are found by `client_id`, never by the secret's value.

L02 (response-time similarity for unknown client vs wrong secret) is not in this issue's scope; the
identical answers are pinned in test_catalog_a.py::test_a09_*.
"""

from __future__ import annotations

import ast
import inspect
import typing
from pathlib import Path

import pytest

import keyless
from keyless.crypto.secrets import SecretHasher
from keyless.domain.ports import DirectoryReader
from keyless.oauth.client_auth import secret as secret_auth
from keyless.store.directory import SqlDirectoryStore
from tests.security.support import AUTH_FAILED, SecWorld, assert_answer, invalid_request, stable_headers

pytestmark = pytest.mark.filterwarnings("ignore:`verify=<str>` is deprecated:DeprecationWarning")

SRC = Path(keyless.__file__).parent
SENSITIVE = ("secret", "digest", "password", "presented")
SECRET_CODE = [SRC / "crypto" / "secrets.py", *sorted((SRC / "oauth" / "client_auth").glob("*.py"))]


def _equality_on_secrets(path: Path) -> list[str]:
    """`==`/`!=` whose operands mention a secret or digest (lengths and constants aside)."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare) or not any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
            continue
        for operand in [node.left, *node.comparators]:
            if isinstance(operand, ast.Call) and getattr(operand.func, "id", None) == "len":
                continue
            text = ast.unparse(operand)
            if text.isupper():  # a module constant such as SECRET_LEN
                continue
            if any(word in text.lower() for word in SENSITIVE):
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
                break
    return found


def test_l01_compare_digest_in_source() -> None:
    matches = inspect.getsource(SecretHasher.matches)
    assert "hmac.compare_digest(presented_digest, stored_digest)" in matches
    verify_src = inspect.getsource(secret_auth.verify)
    assert "hasher.digest(presented)" in verify_src
    assert "_match(record, digest, hasher)" in verify_src
    assert "hasher.matches(digest, candidate.digest)" in inspect.getsource(secret_auth._match)
    for path in SECRET_CODE:
        assert _equality_on_secrets(path) == [], path


def test_l01_the_source_scan_would_catch_an_equality(tmp_path: Path) -> None:
    """The scan above is not vacuous: it flags the classic mistakes."""
    sample = tmp_path / "sample.py"
    sample.write_text("def f(presented, stored):\n    return hasher.digest(presented) == stored.digest\n")
    assert len(_equality_on_secrets(sample)) == 1
    sample.write_text("def g(record, client_secret):\n    return record.secret != client_secret\n")
    assert len(_equality_on_secrets(sample)) == 1


def test_l01_digests_are_fixed_length() -> None:
    hasher = SecretHasher(bytes(32))
    lengths = {len(hasher.digest(s)) for s in ["", "x", "kls_" + "a" * 49, "\u00e9" * 200]}
    assert lengths == {32}


def test_l01_near_miss_secrets_refused_alike(world: SecWorld) -> None:
    s = world.secret
    flip = {c: ("A" if c != "A" else "B") for c in set(s)}
    near = [
        s[:-1] + flip[s[-1]],  # last character
        s[:4] + flip[s[4]] + s[5:],  # first random character
        s[:-6] + "000000",  # checksum only
        s + "x",  # one extra character
        s[:-1],  # one character short
        s.upper() if s.upper() != s else s.lower(),
        "kls_",
    ]
    answers = []
    for candidate in near:
        resp = world.token(world.form(client_secret=candidate))
        assert_answer(resp, 401, AUTH_FAILED)
        answers.append((resp.content, stable_headers(resp)))
    assert len(set(map(repr, answers))) == 1
    assert world.token().status_code == 200


def test_l03_lookup_by_client_id_not_secret(world: SecWorld) -> None:
    # A secret alone identifies nothing: the client_id is required to find the credential.
    resp = world.token(world.form(client_id=None))
    assert_answer(resp, 400, invalid_request("client_id is required with client_secret"))
    # Another client's valid secret does not authenticate this client, and vice versa.
    assert_answer(world.token(world.form(client_id=world.ungranted_id)), 401, AUTH_FAILED)
    assert_answer(world.token(world.form(client_secret=world.ungranted_secret)), 401, AUTH_FAILED)


def test_l03_directory_reads_take_no_secret() -> None:
    """The port the token endpoint reads through has no method that takes a secret or a digest."""
    allowed = {"self", "name_or_id", "tenant_id", "client_id", "identifier", "principal_object_id",
               "resource_client_id"}
    for name, member in inspect.getmembers(DirectoryReader, inspect.isfunction):
        if name.startswith("_"):
            continue
        params = set(inspect.signature(member).parameters)
        assert params <= allowed, (name, params)
        assert not any(word in p for p in params for word in SENSITIVE)
    hints = typing.get_type_hints(secret_auth.verify)
    assert hints["client_id"] is str


def test_l03_sql_store_selects_secrets_by_client_id() -> None:
    source = inspect.getsource(SqlDirectoryStore.get_client)
    assert "t.client_secrets.c.client_id == client_id" in source
    assert "digest" not in source
