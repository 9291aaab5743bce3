"""Per-request latency histograms and the optional JSON access log (docs/deployment.md).

Every HTTP request of the server's ports is timed into `keyless_http_request_duration_seconds`,
labelled by surface (`main` or `vault`) and route *template* (`/{tenant}/oauth2/v2.0/token`, never the
concrete path, so tenant names and object ids cannot blow up the label space or leak into metrics).

The access log (`KEYLESS_ACCESS_LOG=true`) writes one JSON line per request: method, route template,
status, duration. Never the query string, a header or a body, so no token or secret can reach it; the
client of a token request is in the sign-in log. It is off by default because it costs a log write on
every token request (docs/benchmarks.md), and the load balancer usually keeps one already.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyless.server.loop_metrics import HistogramChild, LoopHistogram

REQUEST_SECONDS = LoopHistogram(  # observed on the event loop only (keyless.server.loop_metrics)
    "keyless_http_request_duration_seconds", "HTTP request latency by surface and route template",
    ["surface", "route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
access = logging.getLogger("keyless.access")


def route_template(scope: Scope, surface: str) -> str:
    """The matched route's path template (Starlette and FastAPI record the route in the scope)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str) and path:
        return path
    return "/" if surface == "vault" else "unmatched"


class RouteObserver:
    """Times requests of one surface into the histogram (children labelled once per template) and
    writes the access log line when it is on; `Observed` uses it for ASGI requests, the listener's
    token path (`keyless.server.token_protocol`) for the requests it answers itself."""

    def __init__(self, surface: str, *, access_log: bool) -> None:
        self.surface = surface
        self.access_log = access_log
        self._children: dict[str, HistogramChild] = {}  # route template -> its histogram child, labelled once
        if access_log:  # asked for explicitly: shown whatever the server's log level
            access.setLevel(logging.INFO)

    def record(self, method: str | None, template: str, status: int, elapsed: float) -> None:
        child = self._children.get(template)
        if child is None:  # templates are a fixed, small set (never a concrete path)
            child = self._children[template] = REQUEST_SECONDS.labels(self.surface, template)
        child.observe(elapsed)
        if self.access_log:
            access.info("request", extra={"event": "http_request", "surface": self.surface, "method": method,
                                          "route": template, "status": status, "duration_ms": round(elapsed * 1000, 3)})


class Observed:
    def __init__(self, app: ASGIApp, surface: str, *, access_log: bool,
                 observer: RouteObserver | None = None) -> None:
        self.app = app
        self.surface = surface
        self.observer = observer or RouteObserver(surface, access_log=access_log)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def observing_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observing_send)
        finally:
            self.observer.record(scope.get("method"), route_template(scope, self.surface), status,
                                 time.perf_counter() - started)
