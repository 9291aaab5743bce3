"""A real webhook receiver on loopback: HTTPS with its own CA (the Keyless server trusts it through
`KEYLESS_WEBHOOK_CA_BUNDLE` and may call loopback through `KEYLESS_WEBHOOK_ALLOW_PRIVATE`). It runs in
a thread of the test process and records every request; knobs make it fail, stall, flood or redirect
(catalog O02)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from keyless.crypto.ca import create_ca
from tests.support.issuer import serve_tls


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    time: float

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(self, tmp: Path) -> None:
        ca = create_ca("webhook test CA", now=time.time())
        tmp.mkdir(parents=True, exist_ok=True)
        self.ca_path = tmp / "receiver-ca.pem"
        self.ca_path.write_bytes(ca.cert_pem)
        self.received: list[Received] = []
        self.status = 204
        self.delay = 0.0
        self.body = b""
        self.redirect_to: str | None = None
        self.delay_for: dict[str, float] = {}  # path -> seconds to stall before answering (else `delay`)
        self.in_flight: Counter[str] = Counter()  # path -> requests being answered now
        self.most_in_flight: Counter[str] = Counter()  # path -> the most ever answered at once
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                receiver._serve(self)

            def do_GET(self) -> None:
                receiver._serve(self)

        self._httpd = serve_tls(tmp, ca, "receiver", Handler)
        self.port = self._httpd.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}/hook"

    def env(self) -> dict[str, str]:
        """What a Keyless server needs to deliver here."""
        return {"KEYLESS_WEBHOOK_ALLOW_PRIVATE": '["127.0.0.1"]', "KEYLESS_WEBHOOK_CA_BUNDLE": str(self.ca_path),
                "KEYLESS_OUTBOX_POLL_INTERVAL": "0.2"}

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        with self._lock:
            self.received.append(Received(handler.path, {k.lower(): v for k, v in handler.headers.items()},
                                          body, time.time()))
            self.in_flight[handler.path] += 1
            self.most_in_flight[handler.path] = max(self.most_in_flight[handler.path], self.in_flight[handler.path])
        delay = self.delay_for.get(handler.path, self.delay)
        if delay:
            time.sleep(delay)
        with self._lock:  # counted until the answer starts, so the sender cannot have seen it yet
            self.in_flight[handler.path] -= 1
        if self.redirect_to is not None:
            handler.send_response(302)
            handler.send_header("Location", self.redirect_to)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        handler.send_response(self.status)
        handler.send_header("Content-Length", str(len(self.body)))
        handler.end_headers()
        if self.body:
            with suppress(OSError):
                handler.wfile.write(self.body)

    def wait_for(self, count: int, timeout: float = 15.0, *, event_type: str | None = None) -> list[Received]:
        """The requests received so far (of `event_type`), once there are at least `count` of them."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                got = [r for r in self.received if event_type is None or r.json().get("type") == event_type]
            if len(got) >= count or time.monotonic() > deadline:
                return got
            time.sleep(0.05)


@contextmanager
def receiver(tmp: Path) -> Iterator[Receiver]:
    r = Receiver(tmp)
    try:
        yield r
    finally:
        r.close()
