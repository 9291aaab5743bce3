"""The server's logging set-up: JSON lines on stderr (`keyless.jsonlog`), quiet third-party loggers."""

from __future__ import annotations

import logging

from keyless.jsonlog import configure_json, redact

__all__ = ["configure", "redact"]


def configure(level: str = "info") -> None:
    root = configure_json(level)
    logging.getLogger("keyless.token").setLevel(max(root.level, logging.INFO))
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("alembic").setLevel(logging.WARNING)
