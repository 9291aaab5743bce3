"""One timestamp format in the CLI's JSON output: ISO 8601 in UTC (`2026-12-02T05:57:24Z`).

The management API sends instants as Unix seconds; a script reading `keyless … -o json` should not
have to guess which of the two a key holds, so every instant is rewritten here, at the one place JSON
is printed (docs/cli.md, "Output"). Token claims (`keyless token decode`) are the exception: they are
shown as the token carries them, NumericDate per RFC 7519 §2.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

# Keys that hold an instant, besides every `*_at` key.
INSTANT_KEYS = frozenset({"expires", "not_before", "not_after", "time", "last_poll", "last_token_success",
                          "last_token_failure", "certificate_not_after"})


_DATES: dict[int, str] = {}  # days since the epoch -> "YYYY-MM-DD"
_CLOCKS: dict[int, str] = {}  # seconds into the day -> "HH:MM:SS" (at most 86,400)
_LAST_SECOND = 253_402_300_799  # 9999-12-31T23:59:59Z


def iso_utc(epoch: float) -> str:
    """Unix seconds as ISO 8601 UTC, to the second. Plain arithmetic with each day's date made once
    (a posture report has ~70,000 instants, and `datetime` took 0.4 s of them); anything `datetime`
    might round otherwise (a fraction within half a microsecond of the next second), or out of its
    range, goes through `datetime`, so the text is always `datetime`'s."""
    value = float(epoch)
    second = int(value // 1) if 0 <= value <= _LAST_SECOND else -1
    if second < 0 or value - second >= 0.9999995:
        return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    days, rest = divmod(second, 86400)
    date = _DATES.get(days)
    if date is None:
        date = _DATES[days] = (dt.date(1970, 1, 1) + dt.timedelta(days=days)).isoformat()
    clock = _CLOCKS.get(rest)
    if clock is None:
        clock = _CLOCKS[rest] = f"{rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}"
    return f"{date}T{clock}Z"


def _is_instant(key: str, value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) \
        and (key.endswith("_at") or key in INSTANT_KEYS)


def iso_instant(value: Any) -> Any:
    """The value of a key known to hold an instant (`iso_value` without the key's check): a number as
    ISO 8601 UTC, anything else (None, a boolean) as it is."""
    return iso_utc(value) if type(value) is float or type(value) is int else value


def iso_value(key: str, value: Any) -> Any:
    """`value` as ISO 8601 UTC if `key` names an instant and `value` is a number; otherwise `value`."""
    return iso_utc(value) if _is_instant(key, value) else value


def iso_times(data: Any) -> Any:
    """`data` with every instant (by key, at any depth) as ISO 8601 UTC; other values untouched.
    Strings and numbers in lists are never instants, so only containers are walked into (a posture
    report holds ~750,000 values: docs/benchmarks.md, "Posture")."""
    if isinstance(data, dict):
        return {k: iso_times(v) if isinstance(v, dict | list) else iso_utc(v) if _is_instant(str(k), v) else v
                for k, v in data.items()}
    if isinstance(data, list):
        return [iso_times(v) if isinstance(v, dict | list) else v for v in data]
    return data
