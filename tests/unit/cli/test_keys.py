"""`keyless key retire KID`: a kid is an RFC 7638 thumbprint, and one in 64 starts with "-"."""

from __future__ import annotations

from typing import Any

import pytest
import typer

from keyless.cli import keys

DASHED = "-ArCk8ij1yb2RgKATWTSqpq7ZM6E7rYJUDm9rtRtGUU"  # the kid that failed CI once
PLAIN = "ArCk8ij1yb2RgKATWTSqpq7ZM6E7rYJUDm9rtRtGUU-"


def _params(*args: str) -> dict[str, object]:
    group: Any = typer.main.get_command(keys.app)  # typer >= 0.22 vendors its own click
    command = group.commands["retire"]
    with command.make_context("retire", list(args)) as ctx:
        return dict(ctx.params)


@pytest.mark.parametrize("args", [
    (DASHED,), (DASHED, "--yes"), ("--yes", DASHED), ("-y", DASHED), (DASHED, "-o", "json"), ("--", DASHED),
    ("--yes", "--", DASHED),
])
def test_a_kid_that_starts_with_a_dash_is_the_argument(args: tuple[str, ...]) -> None:
    params = _params(*args)
    assert params["kid"] == DASHED
    assert params["yes"] is ("--yes" in args or "-y" in args)


def test_other_kids_and_options_are_read_as_before() -> None:
    assert _params(PLAIN, "-y")["kid"] == PLAIN
    assert _params("--yes", PLAIN)["yes"] is True


def test_an_unknown_short_option_is_still_a_usage_error() -> None:
    with pytest.raises(Exception, match="No such option: -A") as raised:
        _params("-Ab", PLAIN)
    assert raised.typename == "NoSuchOption"
