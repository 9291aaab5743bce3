"""Problem details (RFC 9457) with a stable `code` that scripts can rely on."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

PROBLEM = "application/problem+json"


def problem(status: int, code: str, title: str, detail: str, headers: dict[str, str] | None = None,
            **extra: Any) -> Response:
    body = {"type": f"urn:keyless:problem:{code}", "title": title, "status": status, "detail": detail,
            "code": code, **extra}
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM, headers=headers)
