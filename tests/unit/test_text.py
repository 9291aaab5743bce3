"""`keyless.text`: the one sanitiser, and the CLI table rendering that uses it (docs/security.md, "Hostile text")."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyless import text
from keyless.cli.common import Output, emit, safe_cell

ALLOWED = {chr(c) for c in [0x20, 0x21, *range(0x23, 0x5C), *range(0x5D, 0x7F)]}
HOSTILE = "\x1b[2J\x1b]0;PWN\x07\r\nFAKE ROW\u202e"


@pytest.mark.parametrize(("value", "kept"), [
    ("plain text", "plain text"),
    ("Zoë 東京", "Zoë 東京"),  # printable text in any script is kept
    (HOSTILE, "?[2J?]0;PWN???FAKE ROW?"),
    ("nul\x00byte", "nul?byte"),  # PostgreSQL refuses NUL in text
    ("zero\u200bwidth\u2028line\u00a0nbsp", "zero?width?line?nbsp"),
    ("\ud800lone surrogate", "?lone surrogate"),
])
def test_stored_replaces_what_could_forge_a_row_or_drive_a_terminal(value: str, kept: str) -> None:
    assert text.stored(value, 100) == kept
    assert text.printable(kept)
    assert text.printable(value) is (value == kept)


def test_stored_caps_and_keeps_nothing_as_none() -> None:
    assert text.stored("x" * 300, 64) == "x" * 64
    assert text.stored("", 64) is None
    assert text.stored(None, 64) is None


@given(st.text(max_size=400), st.integers(1, 300))
def test_property_stored_is_always_printable_and_capped(value: str, limit: int) -> None:
    out = text.stored(value, limit) or ""
    assert len(out) <= limit
    assert all(c.isprintable() for c in out)


@given(st.text(max_size=700))
def test_property_description_is_always_within_rfc6749_charset(value: str) -> None:
    out = text.description(value)
    assert set(out) <= ALLOWED
    assert text.is_description(out)
    assert len(out) <= text.DESCRIPTION_LIMIT


def test_description_maps_json_specials_visibly() -> None:
    assert text.description('say "hi" \\ bye\n') == "say 'hi' / bye?"


@pytest.mark.parametrize(("value", "shown"), [
    ("ok", "ok"),
    (HOSTILE, "\\x1b[2J\\x1b]0;PWN\\x07\\r\\nFAKE ROW\\u202e"),
    ("tab\there", "tab\\there"),
    ("\U000e0001tag", "\\U000e0001tag"),
])
def test_terminal_shows_control_characters_escaped(value: str, shown: str) -> None:
    assert text.terminal(value) == shown


def test_a_cell_is_escaped_for_the_terminal_and_for_rich_markup() -> None:
    assert safe_cell("[bold red]boom[/bold red]\x1b[0m") == "\\[bold red]boom\\[/bold red]\\x1b[0m"


def assert_terminal_safe(output: str) -> None:
    assert all(c == "\n" or (c.isprintable() and c != "\x7f") for c in output), repr(output)


def test_table_rows_cannot_be_forged_or_drive_the_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    """Rows written before the sanitiser existed (or by a newer server) are still shown escaped."""
    rows = [{"client_id": HOSTILE, "detail": "[link=https://evil.example]x[/link]", "n": 1},
            {"client_id": "ok", "detail": {"k": HOSTILE}, "n": 2}]
    emit(rows, Output.table, columns=("client_id", "detail", "n"))
    out = capsys.readouterr().out
    assert_terminal_safe(out)
    assert "FAKE ROW" in out and "\\x1b[2J" in out
    assert "[link=https://evil.example]x[/link]" in out  # shown, not interpreted
    assert out.count("FAKE ROW") == 2  # one in each row's cell, neither on a line of its own
    for line in out.splitlines():
        assert not line.startswith("FAKE ROW")


def test_key_value_output_is_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    emit({HOSTILE: HOSTILE, "name": "ok"}, Output.table)
    out = capsys.readouterr().out
    assert_terminal_safe(out)
    assert out.count("\\x1b[2J") == 2


def test_json_output_escapes_control_characters(capsys: pytest.CaptureFixture[str]) -> None:
    emit([{"client_id": HOSTILE}], Output.json)
    out = capsys.readouterr().out
    assert_terminal_safe(out)
    assert json.loads(out) == [{"client_id": HOSTILE}]  # scripts still get the exact value


def test_the_ascii_fast_path_of_stored_accepts_exactly_the_printable_ascii_range() -> None:
    """`stored` returns text as it is after `isascii() and isprintable()`: for every character that is
    the same verdict as the policy's `[ -~]` (space to tilde), so the fast path changes no row."""
    for code in range(0x110000):
        c = chr(code)
        assert (c.isascii() and c.isprintable()) == (" " <= c <= "~"), hex(code)
        if " " <= c <= "~":
            assert text.stored("a" + c, 10) == "a" + c
