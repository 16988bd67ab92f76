"""The upload page (at /) and the dashboard (at /ui/uploads), enabled by ``--ui yes``.

Everything the browser loads comes from ``ui_static/`` in this package: the page's tus
client is our own small ES module, so the page works offline and the Content-Security-Policy
below forbids loading anything from elsewhere.

The dashboard shows upload records and hook deliveries and streams changes as server-sent
events. It is served without a token only to clients on loopback that did not come through
a proxy; everyone else must present ``--ui-token``.
"""

from __future__ import annotations

import hmac
import html
import ipaddress
import json
import logging
from pathlib import Path
from typing import Any

import trio
from quart import Blueprint, Response, request

from .protocol import proxy
from .service import UploadService
from .upload import Upload

log = logging.getLogger("tuspluggy.ui")

STATIC_DIR = Path(__file__).with_name("ui_static")
TOKEN_COOKIE = "tuspluggy_ui_token"
# The dashboard shows the newest uploads only: a listing walks the whole info store.
MAX_LISTED_UPLOADS = 500
# How often the event stream looks for changes, and sends a comment so proxies and
# browsers notice a dead connection.
POLL_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0
SECURITY_HEADERS = {
    # Nothing from other origins: the page must work offline and behind strict networks.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _is_loopback(address: str | None) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def upload_row(upload: Upload, base_path: str) -> dict[str, Any]:
    return {
        "id": upload.id,
        "length": upload.length,
        "offset": upload.offset,
        "complete": upload.is_complete,
        "created_at": upload.created_at,
        "expires_at": upload.expires_at,
        "metadata": upload.metadata,
        "kind": "final" if upload.is_final else "partial" if upload.is_partial else "",
        # Relative to the dashboard (…/ui/uploads), so it also works under a proxy prefix.
        "url": "../" + base_path.strip("/") + "/" + upload.id,
    }


def delivery_row(delivery: Any) -> dict[str, Any]:
    """One hook delivery (an outbox `Delivery`) as the dashboard shows it."""
    return {
        "event_id": delivery.event_id,
        "event": delivery.event,
        "upload_id": delivery.upload_id,
        "notifier": delivery.notifier,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "last_error": delivery.last_error or "",
        "recorded_at": delivery.recorded_at,
    }


class Dashboard:
    """Reads what the dashboard shows: upload records and hook deliveries."""

    def __init__(self, service: UploadService, outbox: Any = None) -> None:
        self.service = service
        # The hook system's delivery log (list_deliveries(), retry(event_id)); None when
        # no notifier is configured.
        self.outbox = outbox if hasattr(outbox, "list_deliveries") else None
        # One snapshot serves every open dashboard for POLL_SECONDS: the cost of a listing
        # does not grow with the number of viewers.
        self._lock = trio.Lock()
        self._snapshot: dict[str, Any] | None = None
        self._taken_at = float("-inf")

    async def uploads(self) -> list[dict[str, Any]]:
        records = []
        async for upload_id in self.service.info.list_ids():
            try:
                upload = await self.service.info.get(upload_id)
            except Exception:  # a record being rewritten or corrupt: skip it this round
                log.debug("could not read upload %s for the dashboard", upload_id, exc_info=True)
                continue
            if upload is not None:
                records.append(upload)
        records.sort(key=lambda u: (u.created_at, u.id), reverse=True)
        return [upload_row(u, self.service.base_path) for u in records[:MAX_LISTED_UPLOADS]]

    async def deliveries(self) -> list[dict[str, Any]] | None:
        outbox = self.outbox
        if outbox is None:
            return None
        # It reads a directory of small files: keep that off the event loop.
        items = await trio.to_thread.run_sync(outbox.list_deliveries)
        return [delivery_row(item) for item in items]

    def retry(self, event_id: str) -> bool:
        """Deliver a failed or waiting event again now; False if the outbox has no such event.
        Runs in the trio thread: the outbox wakes its delivery task."""
        return self.outbox is not None and bool(self.outbox.retry(event_id))

    async def snapshot(self) -> dict[str, Any]:
        async with self._lock:
            if self._snapshot is None or trio.current_time() - self._taken_at >= POLL_SECONDS * 0.9:
                deliveries = await self.deliveries()
                self._snapshot = {
                    "uploads": await self.uploads(),
                    "deliveries": deliveries or [],
                    "deliveries_enabled": deliveries is not None,
                }
                self._taken_at = trio.current_time()
            return self._snapshot


def install_ui(app, service: UploadService, *, token: str = "", behind_proxy: bool = False, host: str = "",
               outbox: Any = None) -> None:
    """Add the upload page and the dashboard to `app`; `outbox` is the hook delivery log."""
    dashboard = Dashboard(service, outbox)
    # Set by the server when it starts draining: event streams end then (see server.py).
    closing = app.extensions.setdefault("tuspluggy.closing", trio.Event())
    blueprint = Blueprint("ui", __name__, static_folder=str(STATIC_DIR), static_url_path="/ui/static")
    if host and not _is_loopback(host) and host not in ("localhost",) and not token:
        log.warning("--ui is on and the server listens on %s without --ui-token: the dashboard answers "
                    "loopback clients only", host)

    def page(name: str, **values: str) -> Response:
        text = (STATIC_DIR / name).read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", html.escape(value, quote=True))
        return Response(text, status=200, headers=SECURITY_HEADERS, content_type="text/html; charset=utf-8")

    def refusal(status: int, message: str) -> Response:
        return Response(message + "\n", status=status, headers={"Cache-Control": "no-store"},
                        content_type="text/plain; charset=utf-8")

    def local_request() -> bool:
        peer = (request.scope.get("client") or (None,))[0]
        if not _is_loopback(peer):
            return False
        forwarded = "Forwarded" in request.headers or "X-Forwarded-For" in request.headers
        if not forwarded:
            return True
        # Through a proxy on this machine: trust the proxy's word only when told to.
        return behind_proxy and _is_loopback(proxy.client_address(request.headers, peer, True))

    def presented_token() -> str | None:
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return request.args.get("token") or request.cookies.get(TOKEN_COOKIE)

    def check_access() -> Response | None:
        """None when the dashboard may answer this request, else the refusal."""
        if local_request():
            return None
        if not token:
            return refusal(403, "the dashboard answers loopback clients only; start the server with --ui-token to open it to others")
        given = presented_token()
        if given is None or not hmac.compare_digest(given.encode(), token.encode()):
            return refusal(401, "this dashboard needs the --ui-token: open /ui/uploads?token=<token> once, or send Authorization: Bearer <token>")
        return None

    def same_origin() -> bool:
        """A state-changing request must come from our own page, not from another site."""
        origin = request.headers.get("Origin")
        if not origin:
            return True
        ours = proxy.public_origin(request.headers, request.scheme, behind_proxy)
        return origin.rstrip("/") == f"{ours.scheme}://{ours.host}" or origin.split("://", 1)[-1] == ours.host

    @blueprint.route("/", methods=["GET"])
    async def upload_page():
        # Relative, so the page also works when a proxy mounts the server under a prefix.
        return page("index.html", ENDPOINT=service.base_path.strip("/") + "/")

    @blueprint.route("/ui/uploads", methods=["GET"])
    async def dashboard_page():
        refused = check_access()
        if refused:
            return refused
        response = page("dashboard.html")
        given = request.args.get("token")
        if token and given and hmac.compare_digest(given.encode(), token.encode()):
            # EventSource cannot send headers: the token travels as a cookie from now on.
            public = proxy.public_origin(request.headers, request.scheme, behind_proxy)
            response.set_cookie(TOKEN_COOKIE, given, httponly=True, samesite="Strict", secure=public.scheme == "https")
        return response

    @blueprint.route("/ui/api/snapshot", methods=["GET"])
    async def snapshot():
        refused = check_access()
        if refused:
            return refused
        return Response(json.dumps(await dashboard.snapshot()), status=200,
                        headers={"Cache-Control": "no-store"}, content_type="application/json")

    @blueprint.route("/ui/api/stream", methods=["GET"])
    async def stream():
        refused = check_access()
        if refused:
            return refused

        async def events():
            yield b"retry: 2000\n\n"
            last = None
            quiet = 0.0
            while not closing.is_set():
                try:
                    data = json.dumps(await dashboard.snapshot())
                except Exception:
                    log.exception("dashboard snapshot failed")
                    data = None
                if data is not None and data != last:
                    last = data
                    quiet = 0.0
                    yield f"event: snapshot\ndata: {data}\n\n".encode()
                elif quiet >= KEEPALIVE_SECONDS:
                    quiet = 0.0
                    yield b": keepalive\n\n"
                with trio.move_on_after(POLL_SECONDS):
                    await closing.wait()
                quiet += POLL_SECONDS

        response = Response(events(), status=200, content_type="text/event-stream")
        response.headers["Cache-Control"] = "no-store"
        # nginx would otherwise hold the events back in its response buffer.
        response.headers["X-Accel-Buffering"] = "no"
        response.timeout = None
        return response

    @blueprint.route("/ui/api/deliveries/<event_id>/retry", methods=["POST"])
    async def retry(event_id: str):
        refused = check_access()
        if refused:
            return refused
        if not same_origin():
            return refusal(403, "retry must come from the dashboard's own origin")
        if dashboard.outbox is None:
            return refusal(404, "no hook delivery log: no notifier is configured")
        if not dashboard.retry(event_id):
            return refusal(404, f"no delivery {event_id!r}")
        return Response(json.dumps({"retried": event_id}), status=202, content_type="application/json")

    @blueprint.after_request
    async def static_headers(response: Response) -> Response:
        if request.path.startswith("/ui/static/"):
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
        return response

    app.register_blueprint(blueprint)
