"""Helpers shared by the CLI tests."""

from __future__ import annotations


def one_error_line(stderr: str) -> str:
    """The CLI's failure contract: exactly one line, starting with `error: `."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]


def epoch(instant: str) -> float:
    """Unix seconds of an instant in the CLI's JSON output, which docs/cli.md fixes as ISO 8601 UTC
    (`2026-12-02T05:57:24Z`); anything else fails the test."""
    import datetime as dt

    return dt.datetime.strptime(instant, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()
