"""Secret and vault names (catalog G01): checked once, on the decoded value."""

from __future__ import annotations

import pytest

from keyless.vault import names
from keyless.vault.errors import BadParameter


@pytest.mark.parametrize("name", ["a", "db-password", "A1-b2", "x" * 127])
def test_valid_secret_names(name: str) -> None:
    assert names.secret_name(name) == name
    assert names.secret_key(name) == name.lower()


@pytest.mark.parametrize("name", ["", "x" * 128, "../x", "..%2Fx", "a/b", "a\\b", "\uff0e\uff0e\uff0f", "a\x00",
                                  "a b", "é", "a_b", "a.b", "%2e%2e"])
def test_g01_bad_secret_names_are_refused(name: str) -> None:
    with pytest.raises(BadParameter):
        names.secret_name(name)


@pytest.mark.parametrize("name", ["abc", "payments", "a-b-c", "Payments", "a" * 24])
def test_valid_vault_names(name: str) -> None:
    assert names.vault_name(name) == name.lower()


@pytest.mark.parametrize("name", ["ab", "a" * 25, "1abc", "abc-", "a--b", "a.b", "a_b", "", "ab/c"])
def test_bad_vault_names(name: str) -> None:
    with pytest.raises(BadParameter):
        names.vault_name(name)


def test_tags_and_content_type_limits() -> None:
    assert names.tags({"k": "v"}) == {"k": "v"}
    assert names.tags(None) is None
    with pytest.raises(BadParameter):
        names.tags({str(i): "v" for i in range(16)})
    with pytest.raises(BadParameter):
        names.tags({"k": 1})
    with pytest.raises(BadParameter):
        names.tags({"k": "v" * 257})
    with pytest.raises(BadParameter):
        names.content_type("x" * 256)
    with pytest.raises(BadParameter):
        names.content_type("a\nb")
