"""One log line and one metrics sample per HTTP request, with a request id.

An ASGI wrapper around the app rather than Quart before/after hooks, so that the time
covers the whole answer (a download's body, a PATCH cut off mid-way) and the id is on
every answer, errors included. The id is the client's ``X-Request-ID`` when it sends a
sane one (a proxy in front may set it), a fresh one otherwise; it is echoed back.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextvars import ContextVar

from .metrics import Metrics

log = logging.getLogger("tuspluggy.access")

#: The current request's id, for log lines written while it is served.
request_id: ContextVar[str] = ContextVar("tuspluggy_request_id", default="-")

_SANE_ID = re.compile(rb"^[A-Za-z0-9._:+=/-]{1,128}$")
# Arbitrary methods must not create arbitrary metric label values.
_KNOWN_METHODS = {"GET", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS", "PUT"}
# The status recorded when the client went away before any answer was sent (nginx's code).
CLIENT_CLOSED = 499


class RequestObserver:
    def __init__(self, app, metrics: Metrics | None, *, quiet_paths: tuple[str, ...] = ("/health", "/metrics")) -> None:
        self.app = app
        self.metrics = metrics
        self.quiet_paths = quiet_paths  # probes and scrapes: counted, logged only at DEBUG

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = b""
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                rid = value.strip()
                break
        if not _SANE_ID.match(rid):
            rid = uuid.uuid4().hex.encode()
        token = request_id.set(rid.decode())
        start = time.perf_counter()
        status = 0
        sent = 0

        async def send_with_id(message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), (b"x-request-id", rid)]}
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - start
            method = scope.get("method", "")
            final = status or CLIENT_CLOSED
            if self.metrics is not None:
                self.metrics.request(method if method in _KNOWN_METHODS else "other", final, seconds)
            path = scope.get("path", "")
            level = logging.DEBUG if path in self.quiet_paths else logging.INFO
            if log.isEnabledFor(level):
                peer = (scope.get("client") or ("-",))[0]
                log.log(
                    level,
                    "%s %s %s %d %dB %.1fms %s",
                    rid.decode(), method, path[:200], final, sent, seconds * 1000, peer,
                    extra={"fields": {
                        "request_id": rid.decode(), "method": method, "path": path[:200], "status": final,
                        "bytes_sent": sent, "duration_ms": round(seconds * 1000, 3), "remote_addr": peer,
                    }},
                )
            request_id.reset(token)
