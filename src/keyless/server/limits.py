"""A cap on request bodies for the management API (catalog G03/B22): a declared Content-Length over
the cap is refused before anything is read, and a streamed body is cut off as soon as it passes the
cap (answered 413 here; the app sees the client go), so no request can make the server buffer more
than `limit` bytes."""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyless.server.manage.problems import problem


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                await too_large()(scope, receive, send)
                return
        seen = 0
        answered = False
        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if answered:
                return  # we already answered 413; whatever the app says after that goes nowhere
            started = started or message["type"] == "http.response.start"
            await send(message)

        async def capped() -> Message:
            nonlocal seen, answered
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    if not started:
                        await too_large()(scope, receive, send)
                    answered = True
                    return {"type": "http.disconnect"}  # the app stops reading: as if the client left
            return message

        await self.app(scope, capped, guarded_send)


def too_large() -> Response:
    return problem(413, "body_too_large", "Payload too large", "the request body is too large")
