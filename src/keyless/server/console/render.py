"""Rendering console pages: Jinja2 with autoescaping on for every template (catalog O12: HTML is
escaped by the template engine, never by hand and never bypassed: no template uses `|safe`, and
`tests/unit/server/console/test_templates.py` keeps it so), and the headers every console response
carries (catalog O11)."""

from __future__ import annotations

import time
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyless.server.console.access import Console

# No inline script or style anywhere: every script and stylesheet is a file Keyless serves itself.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),  # no-referrer would make Chromium send `Origin: null`
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
NO_STORE = (b"cache-control", b"no-store")


def when(value: float | None) -> str:
    if value is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value))


def days_left(value: float | None, now: float) -> str:
    if value is None:
        return "—"
    left = value - now
    if left <= 0:
        return "expired"
    return f"{left / 86400:.0f} d" if left >= 86400 else f"{left / 3600:.1f} h"


env = Environment(
    loader=PackageLoader("keyless.server.console", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters["when"] = when


def page(c: Console | None, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """Render `template` for console request `c` (None on the sign-in pages: no session yet)."""
    values.setdefault("message", None)
    common: dict[str, Any] = {"session": None, "csrf": "", "is_admin": False, "tenant": None, "now": time.time()}
    if c is not None:
        common.update(session=c.session, csrf=c.csrf, is_admin=c.is_admin, tenant=c.tenant, now=c.ctx.clock.now())
    html = env.get_template(template).render(**common, **values, days_left=days_left)
    return HTMLResponse(html, status_code=status)


class SecurityHeaders:
    """Adds the console's headers to every response under `/console/` (pages, assets, errors):
    strict CSP, no framing, no sniffing, no referrer, and `no-store` on everything but assets."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        asset = str(scope.get("path", "")).startswith("/console/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {b"cache-control"}
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names or asset]
                headers += HEADERS
                if not asset:
                    headers.append(NO_STORE)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
