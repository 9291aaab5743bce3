"""The JSON number space, for property tests of every JWT parser we own (issue 11 item 1): what an
attacker can write where a NumericDate belongs, and the one verdict every parser must reach on it."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import strategies as st

from keyless.jose.claims import MAX_NUMERIC_DATE

_INTEGER = r"-?(0|[1-9][0-9]{0,420})"
_FRACTION = r"(\.[0-9]{1,25})?"
_EXPONENT = r"([eE][+-]?[0-9]{1,4})?"

# Literal JSON texts: numbers of every size and shape, the non-JSON constants Python's json accepts,
# and values of other types.
json_number_texts = st.one_of(
    st.from_regex(f"{_INTEGER}{_FRACTION}{_EXPONENT}", fullmatch=True),
    st.integers(min_value=0, max_value=2**54).map(str),
    st.floats(min_value=0, max_value=2.0**54).map(repr),
    st.integers(min_value=1_700_000_000, max_value=1_900_000_000).map(str),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1" + "0" * 400, "9007199254740992",
                     "9007199254740991", "-0", "-0.0", "0", "true", "false", "null", '"1800000000"', "[1800000000]",
                     "{}", "1e-400", "4.9e-324"]),
)


def numeric_date_value(text: str) -> float | None:
    """The oracle: the seconds a NumericDate written as `text` stands for, or None when every parser
    must refuse it (not a finite JSON number, not an integer or finite number in 0 <= t < 2**53)."""
    try:
        value: Any = json.loads(text, parse_constant=lambda _: None)
    except ValueError:  # e.g. a 421-digit integer: beyond Python's own limit on int() of a string
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, int) and abs(value) > int(1.7976931348623157e308):
        return None  # not representable as a double (RFC 7493 §2.2)
    if not 0 <= value < MAX_NUMERIC_DATE:
        return None
    return float(value)


def with_claim(claims: dict[str, Any], name: str, text: str) -> bytes:
    """`claims` as compact JSON with `name` set to the literal JSON `text`."""
    body = json.dumps({**claims, name: 0}, separators=(",", ":"))
    marker = json.dumps(name) + ":0"
    assert body.count(marker) == 1
    return body.replace(marker, f"{json.dumps(name)}:{text}").encode()
