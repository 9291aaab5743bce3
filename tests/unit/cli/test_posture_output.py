"""`keyless posture`'s own printers (docs/cli.md): JSON byte for byte what `emit` prints, and a table
whose cells cannot drive the terminal."""

from __future__ import annotations

import json

import pytest

from keyless.cli import posture
from keyless.cli.times import iso_times

REPORT = {"score": {"window_days": 30, "index": 41, "signins": {"total": 3, "counts": {"secret": 2},
                                                                  "shares": {"secret": 0.6667, "certificate": 0.0001}}},
          "workloads": [{"client_id": "c1", "display_name": "orders", "last_signin_at": 1764655044.5,
                         "credentials": [{"id": "s1", "created_at": 1764655044, "expires_at": None,
                                          "sources": ["10.0.0.1"]}],
                         "risks": [{"risk": "leaked", "message": "found in repo:.env:3"}], "next_step": None}]}


@pytest.mark.parametrize("name", ["orders", "caf\u00e9", "evil\u202e\x7f\x1b[31m"])
def test_json_output_is_exactly_what_json_dumps_prints(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    report = json.loads(json.dumps(REPORT))
    report["workloads"][0]["display_name"] = name
    posture._print_json(report)
    printed = capsys.readouterr().out
    assert printed == json.dumps(iso_times(report), indent=2, default=str) + "\n"
    assert "\x1b" not in printed and "\u202e" not in printed


def test_table_escapes_control_and_format_characters_and_aligns_columns() -> None:
    lines = posture._table_lines([("evil\x1b[2J\u202e", "c1", "application", "secret", "leaked", "rotate"),
                                  ("ok", "c2", "identity", "managed_identity", "-", "-")])
    assert all("\x1b" not in line and "\u202e" not in line for line in lines)
    assert "evil\\x1b[2J\\u202e" in lines[1]
    assert lines[0].split()[:2] == ["display_name", "client_id"]
    assert len({line.index("c2" if "c2" in line else "c1" if "c1" in line else "client_id") for line in lines}) == 1
