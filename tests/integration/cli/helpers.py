"""Helpers shared by the CLI tests."""

from __future__ import annotations


def one_error_line(stderr: str) -> str:
    """The CLI's failure contract: exactly one line, starting with `error: `."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]
