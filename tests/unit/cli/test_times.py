"""`keyless.cli.times.iso_utc`: its arithmetic gives `datetime`'s text for every instant, at the
edges too (a fraction `datetime` rounds up to the next second, a leap day, the range's ends)."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from keyless.cli.times import iso_instant, iso_utc, iso_value


def _datetime(epoch: float) -> str:
    return dt.datetime.fromtimestamp(float(epoch), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("epoch", [0, 0.0, 1e-9, 86399.9999994, 86399.9999995, 86399.9999996, 951782400,
                                   1764655044, 1764655044.5, 1764655044.9999996, 4102444800, 253402300799,
                                   253402300799.4])
def test_edges(epoch: float) -> None:
    assert iso_utc(epoch) == _datetime(epoch)


def test_many_instants() -> None:
    rng = random.Random(13)
    for _ in range(20_000):
        epoch = rng.randrange(0, 4_000_000_000) + rng.choice([0, 0.5, 0.9999994, 0.9999995, 0.9999999])
        assert iso_utc(epoch) == _datetime(epoch)


@pytest.mark.parametrize("epoch", [-1, 253402300800])
def test_outside_the_range_it_fails_as_datetime_does(epoch: float) -> None:
    try:
        expected = _datetime(epoch)
    except (ValueError, OverflowError, OSError) as exc:
        with pytest.raises(type(exc)):
            iso_utc(epoch)
    else:
        assert iso_utc(epoch) == expected


def test_the_same_second_of_day_on_other_days() -> None:
    """Each second of the day's text is made once and reused (`_CLOCKS`): on every day it is that day's."""
    for days in (0, 1, 20_000, 2_900_000):
        for rest in (0, 1, 3599, 43_200, 86_399):
            assert iso_utc(days * 86400 + rest + 0.25) == _datetime(days * 86400 + rest + 0.25)


@pytest.mark.parametrize("value", [1764655044, 1764655044.5, None, True, False, "2026-12-02T05:57:24Z"])
def test_an_instant_at_a_known_key_is_written_as_iso_value_writes_it(value: object) -> None:
    assert iso_instant(value) == iso_value("created_at", value)
