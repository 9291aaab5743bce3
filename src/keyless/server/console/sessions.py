"""Console sign-in without user principals (docs/console.md, catalog O10).

Keyless has no users. `keyless console` asks the server, with the CLI's own management credential,
for a one-time login code bound to that credential's roles; the browser trades it for a session.

A code is the binding itself (tenant, credential, roles, expiry, a 128-bit nonce) sealed with
AES-256-GCM under a key derived from the KEK: it cannot be forged or altered without the KEK, and it
is useless after `CODE_LIFETIME` seconds. It is used once on every replica alike because redeeming
it inserts its nonce into the single-use table (`keyless.store.one_time`), whose unique key refuses
the second insert.

A session is a random 256-bit cookie value; the database keeps only its SHA-256, the credential (the
application, and the id and kind of the secret or certificate it signed in with) and roles, and the
idle and absolute limits. Its CSRF token is derived from the cookie value (HMAC), so
a page from another origin, which cannot read the cookie, cannot compute it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from keyless.clock import Clock
from keyless.crypto import aead
from keyless.domain.console import ConsoleSession
from keyless.domain.model import AuditEvent
from keyless.errors import KeylessError
from keyless.store.console import SqlConsoleStore

CODE_LIFETIME = 60  # seconds a login code may wait before it is redeemed (issue 15: at most 60)
IDLE_TIMEOUT = 15 * 60  # a session unused this long is over
ABSOLUTE_TIMEOUT = 8 * 3600  # and every session ends this long after sign-in
TOUCH_EVERY = 30.0  # write `last_seen_at` at most this often per session
COOKIE = "__Secure-keyless-console"
COOKIE_PATH = "/console"
_CODE_AAD = b"keyless-console-login-code/v1"
ONE_TIME_KIND = "console_code"


class LoginRefused(KeylessError):
    """The code is malformed, forged, expired or already used: one answer for all (no oracle)."""


@dataclass(frozen=True)
class Binding:
    tenant_id: str
    client_id: str
    object_id: str
    roles: frozenset[str]
    # The credential the code's requester signed in with (the management token's private claims), so
    # the session's audit records name it as management API writes do (issue 20 item 3).
    credential_id: str | None = None
    credential_type: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _optional(value: object) -> str | None:
    return str(value) if value is not None else None


def _session_id(cookie: str) -> str:
    return hashlib.sha256(cookie.encode("ascii", "replace")).hexdigest()


class LoginCodes:
    def __init__(self, kek: bytes, clock: Clock) -> None:
        self._key = aead.derive(kek, "console-login-code")
        self._clock = clock

    def issue(self, binding: Binding) -> tuple[str, float]:
        """A sealed one-time code and its expiry (epoch seconds)."""
        expires = self._clock.now() + CODE_LIFETIME
        body = {"t": binding.tenant_id, "c": binding.client_id, "o": binding.object_id,
                "r": sorted(binding.roles), "e": expires, "n": secrets.token_hex(16),
                "ci": binding.credential_id, "ct": binding.credential_type}
        return _b64(aead.seal(self._key, json.dumps(body, separators=(",", ":")).encode(), _CODE_AAD)), expires

    def open(self, code: str) -> tuple[Binding, str, float]:
        """The binding, nonce and expiry of a genuine, unexpired code (not yet marked used)."""
        try:
            if not 40 <= len(code) <= 1024:
                raise ValueError("length")
            body = json.loads(aead.open_sealed(self._key, _unb64(code), _CODE_AAD))
            binding = Binding(tenant_id=str(body["t"]), client_id=str(body["c"]), object_id=str(body["o"]),
                              roles=frozenset(str(r) for r in body["r"]),
                              credential_id=_optional(body.get("ci")), credential_type=_optional(body.get("ct")))
            expires, nonce = float(body["e"]), str(body["n"])
        except (ValueError, KeyError, TypeError, aead.DecryptionFailed, UnicodeError):
            raise LoginRefused("the sign-in code is not valid") from None
        if self._clock.now() >= expires:
            raise LoginRefused("the sign-in code is not valid")
        return binding, nonce, expires


class Sessions:
    def __init__(self, store: SqlConsoleStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def start(self, binding: Binding) -> tuple[str, ConsoleSession]:
        """A new session for `binding`: the cookie value (returned once) and the stored record."""
        cookie = secrets.token_urlsafe(32)
        now = self._clock.now()
        session = ConsoleSession(
            id=_session_id(cookie), tenant_id=binding.tenant_id, client_id=binding.client_id,
            object_id=binding.object_id, roles=binding.roles, created_at=now, last_seen_at=now,
            expires_at=now + ABSOLUTE_TIMEOUT, credential_id=binding.credential_id,
            credential_type=binding.credential_type,
        )
        audit = AuditEvent(time=now, tenant_id=binding.tenant_id, actor=session.actor,
                           action="console.session.start", target_type="console_session", target_id=session.id[:16],
                           details={"roles": sorted(binding.roles)})
        await self._store.start(session, audit)
        return cookie, session

    async def current(self, cookie: str | None) -> ConsoleSession | None:
        """The live session the cookie names, its idle clock moved on; None for any other cookie."""
        if not cookie or len(cookie) > 128:
            return None
        session = await self._store.get(_session_id(cookie))
        now = self._clock.now()
        if session is None or not session.live_at(now, IDLE_TIMEOUT):
            return None
        if now - session.last_seen_at >= TOUCH_EVERY:
            await self._store.touch(session.id, now)
        return session

    async def end(self, session: ConsoleSession) -> None:
        now = self._clock.now()
        audit = AuditEvent(time=now, tenant_id=session.tenant_id, actor=session.actor,
                           action="console.session.end", target_type="console_session", target_id=session.id[:16])
        await self._store.end(session.id, now, audit)


def csrf_token(cookie: str) -> str:
    """The session's CSRF token: an HMAC of the cookie value, so only a page that can read the
    cookie's own session (ours, same origin) can produce it (OWASP synchronizer-token variant)."""
    return _b64(hmac.new(cookie.encode("ascii", "replace"), b"keyless-console-csrf", hashlib.sha256).digest())


def csrf_ok(cookie: str, sent: str | None) -> bool:
    return sent is not None and hmac.compare_digest(csrf_token(cookie), sent)
