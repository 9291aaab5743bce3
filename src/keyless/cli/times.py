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


def iso_utc(epoch: float) -> str:
    """Unix seconds as ISO 8601 UTC, to the second."""
    return dt.datetime.fromtimestamp(float(epoch), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _is_instant(key: str, value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) \
        and (key.endswith("_at") or key in INSTANT_KEYS)


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
