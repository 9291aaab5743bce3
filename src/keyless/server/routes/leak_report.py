"""`POST /leaks/github`: leak reports in GitHub's secret-scanning partner format (docs/leaks.md).

The body is a JSON array of `{"token", "type", "url", "source"}`, signed by the sender (headers
`Github-Public-Key-Identifier`, `Github-Public-Key-Signature`; `keyless.crypto.leak_reports`). Each
token that is a Keyless secret is recorded as leaked at `url` and revoked if live, across tenants (a
secret names no tenant); the answer is the feedback format the programme reads, one
`{"token_hash", "token_type", "label"}` per token, `label` = `true_positive` for a secret Keyless
issued (live or not) and `false_positive` otherwise. `token_hash` is the SHA-256 of the token, so the
answer never carries a secret back.

Never an oracle (catalog O08): nothing in the body is parsed, let alone looked up, before the signature
verifies; every unauthenticated answer (no headers, unknown key id, bad signature) is the same 401,
whatever the tokens are. Bodies over `MAX_BODY` are refused before they are read (O07). A replayed
report is answered the same and changes nothing: leaks are recorded once per (secret, location).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from keyless.crypto.leak_reports import SenderKeys, SenderKeysInvalid
from keyless.server.routes.common import BodyTooLarge, ctx_of, json_response, read_capped

log = logging.getLogger("keyless.leaks")
KEY_ID_HEADER = "Github-Public-Key-Identifier"
SIGNATURE_HEADER = "Github-Public-Key-Signature"
MAX_BODY = 1024 * 1024
MAX_MATCHES = 1000
SOURCE = "github"
NO_STORE = {"Cache-Control": "no-store"}


def _error(status: int, error: str, description: str) -> Response:
    return json_response({"error": error, "error_description": description}, status, NO_STORE)


class SenderKeyFile:
    """The sender keys, read again whenever the file changes (rotation without a restart)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._keys: SenderKeys | None = None

    def load(self) -> SenderKeys:
        st = self.path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
        if self._keys is None or stamp != self._stamp:
            self._keys = SenderKeys.from_json(self.path.read_bytes())
            self._stamp = stamp
        return self._keys


def _string(item: dict[str, Any], name: str, limit: int) -> str | None:
    value = item.get(name, "")
    return value if isinstance(value, str) and len(value) <= limit else None


def _matches(raw: bytes) -> list[dict[str, Any]] | None:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, list) or not 0 < len(body) <= MAX_MATCHES:
        return None
    if not all(isinstance(m, dict) and isinstance(m.get("token"), str) for m in body):
        return None
    return body


def endpoint(keys_file: Path | None) -> Callable[[Request], Awaitable[Response]]:
    """The route's handler; with no key file configured the endpoint does not exist (404)."""
    keys = SenderKeyFile(keys_file) if keys_file is not None else None

    async def leak_report(request: Request) -> Response:
        if keys is None:
            return _error(404, "not_found", "leak reports are not configured on this server")
        try:
            raw = await read_capped(request, MAX_BODY)
        except BodyTooLarge:
            return _error(413, "invalid_request", "request body too large")
        key_id = request.headers.get(KEY_ID_HEADER, "")
        signature = request.headers.get(SIGNATURE_HEADER, "")
        try:
            sender = await asyncio.to_thread(keys.load)
        except (OSError, SenderKeysInvalid):
            log.exception("leak report keys unusable", extra={"event": "leak_report_keys_invalid"})
            return _error(503, "temporarily_unavailable", "leak reports cannot be verified now")
        if not sender.verify(key_id, signature, raw):
            log.warning("leak report refused", extra={"event": "leak_report_refused", "key_id": key_id[:64]})
            return _error(401, "invalid_signature", "the report is not signed by a configured sender key")
        matches = _matches(raw)
        if matches is None:
            return _error(400, "invalid_request",
                          f"the body must be a JSON array of 1 to {MAX_MATCHES} objects with a string token")
        answer = [await _one(request, m, key_id) for m in matches]
        revoked = sum(1 for a in answer if a.pop("_revoked"))
        log.info("leak report", extra={"event": "leak_report", "key_id": key_id[:64], "matches": len(answer),
                                       "revoked": revoked})
        return json_response(answer, 200, NO_STORE)

    return leak_report


async def _one(request: Request, match: dict[str, Any], key_id: str) -> dict[str, Any]:
    token: str = match["token"]
    token_type = _string(match, "type", 128) or ""
    url = _string(match, "url", 2048) or ""
    source = _string(match, "source", 64) or ""
    outcome = None
    if len(token) <= 512:
        outcome = await ctx_of(request).admin.leaks.report(
            token, tenant=None, location=url or f"{SOURCE}:{source or 'unknown'}", source=source or SOURCE,
            reporter=f"{SOURCE}:{key_id[:16]}",
        )
    return {"token_hash": hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest(),
            "token_type": token_type, "label": "false_positive" if outcome is None else "true_positive",
            "_revoked": outcome is not None and outcome[1] and outcome[0].revoked}
