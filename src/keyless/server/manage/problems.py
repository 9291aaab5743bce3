"""Problem details (RFC 9457) with a stable `code` that scripts can rely on.

Every text of a problem (title, detail, and the strings of any extra member, such as the locations
and messages of validation errors, which name the caller's own JSON keys) is held to RFC 6749 §5.2's
set here, the one place problems are built: no handler can reflect raw input (keyless.text)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from keyless import text

PROBLEM = "application/problem+json"


def problem(status: int, code: str, title: str, detail: str, headers: dict[str, str] | None = None,
            **extra: Any) -> Response:
    body = {"type": f"urn:keyless:problem:{code}", "title": text.description(title), "status": status,
            "detail": text.description(detail), "code": code, **_clean(extra)}
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM, headers=headers)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return text.description(value)
    if isinstance(value, dict):
        return {text.description(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value
