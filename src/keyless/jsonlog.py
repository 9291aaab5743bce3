"""Structured JSON logs with a redaction filter (catalog M01), for every Keyless process (server, agent).

Whatever a log call is handed, anything shaped like a Keyless client secret or a JWT is replaced
before it is written; handlers log `event`, `client_id`, `error`, never the token or the secret.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time

_SECRET = re.compile(r"kls_[0-9A-Za-z]{20,}")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


_BASIC = re.compile(r"(?i)(basic\s+)[A-Za-z0-9+/=._~-]{8,}")
_FORM_SECRET = re.compile(r"(?i)((?:client_secret|client_assertion|access_token)=)(?!\[redacted)[^&\s\"']+")


def redact(text: str) -> str:
    text = _SECRET.sub("[redacted-secret]", text)
    text = _JWT.sub("[redacted-jwt]", text)
    text = _BASIC.sub(r"\1[redacted]", text)
    return _FORM_SECRET.sub(r"\1[redacted]", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key != "color_message":
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str))


def configure_json(level: str) -> logging.Logger:
    """JSON lines on stderr for the whole process. The HTTP client's one line per request (the
    agent's polls of the server, say) shows at `debug` only."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    chatty = logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(chatty)
    return root
