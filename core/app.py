"""The HTTP adapter: the tus endpoint (tus_asgi.py) in front, Quart for everything else.

Nothing here decides a tus answer; it gathers headers and the body stream, calls
UploadService, and renders the result or the TusError it raised. Quart serves downloads
(GET), /health, /metrics, the UI, and the 404s of unknown paths.
"""

from __future__ import annotations

import logging

from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from .body import StreamingHTTPConnection, StreamingRequest
from .errors import TusError
from .health import readiness
from .health import render as render_health
from .http_common import ALLOWED_METHODS, CommonHeaders, HeaderMap, request_info, upload_url
from .protocol.download import content_disposition_for, content_type_for, parse_range
from .service import UploadService
from .tus_asgi import INTERNAL_ERROR, TusEndpoint

log = logging.getLogger("tuspluggy.http")

OVERRIDABLE = {"PATCH", "DELETE", "HEAD", "GET", "POST", "OPTIONS"}


class TusApp(QuartTrio):
    request_class = StreamingRequest
    asgi_http_class = StreamingHTTPConnection
    tus_endpoint: TusEndpoint | None = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            # X-HTTP-Method-Override must act as the request's method (spec: MUST), so it
            # is applied before routing.
            for name, value in scope["headers"]:
                if name == b"x-http-method-override":  # ASGI header names are lowercase
                    method = value.decode("latin1").strip().upper()
                    if method in OVERRIDABLE:
                        scope = {**scope, "method": method}
                    break
            endpoint = self.tus_endpoint
            if endpoint is not None:
                upload_id = endpoint.route(scope)
                if upload_id is not None:
                    await endpoint(scope, receive, send, upload_id)
                    return
        await super().__call__(scope, receive, send)


def _text(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(message.rstrip("\n") + "\n", status=status, headers=headers or {}, content_type="text/plain; charset=utf-8")


def create_app(
    service: UploadService,
    *,
    base_path: str = "/files",
    behind_proxy: bool = False,
    cors_origins: list[str] | None = None,
    proxy_headers: list[str] | None = None,
) -> TusApp:
    base = "/" + base_path.strip("/")
    service.base_path = base
    app = TusApp(__name__)
    # Bodies are streamed and limited by tus rules, never by Quart's buffering limit.
    app.config["MAX_CONTENT_LENGTH"] = None
    app.config["BODY_TIMEOUT"] = None
    app.config["RESPONSE_TIMEOUT"] = None
    app.extensions["tuspluggy.service"] = service
    common = CommonHeaders(base, cors_origins or [], proxy_headers or [])
    app.tus_endpoint = TusEndpoint(service, base, behind_proxy, common)

    @app.errorhandler(TusError)
    async def tus_error(error: TusError):
        headers = dict(error.headers)
        if error.upload_id:
            headers["Location"] = upload_url(request.scope, HeaderMap(request.scope["headers"]), base, error.upload_id,
                                             behind_proxy)
        return Response(error.body_bytes(), status=error.status, headers=headers, content_type=error.content_type)

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException):
        headers = {"Allow": ALLOWED_METHODS} if error.code == 405 else {}
        return _text(error.code or 400, error.description or error.name, headers)

    @app.errorhandler(Exception)
    async def unexpected(error: Exception):
        log.exception("unexpected error on %s %s", request.method, request.path)
        return _text(500, INTERNAL_ERROR)

    @app.after_request
    async def common_headers(response: Response) -> Response:
        for name, value in common.for_request(request.path, request.method, request.headers):
            if name == "Vary":
                response.vary.add(value)
            else:
                response.headers[name] = value
        return response

    # OPTIONS, POST, HEAD, PATCH and DELETE of the endpoint never reach Quart (TusApp.__call__).
    @app.route(base + "/<upload_id>", methods=["GET"])
    @app.route(base + "/<upload_id>/", methods=["GET"])
    async def download(upload_id: str) -> Response:
        headers_map = HeaderMap(request.scope["headers"])
        upload = await service.download(upload_id, request_info(request.scope, headers_map, behind_proxy))
        size = upload.offset
        byte_range = parse_range(request.headers.get("Range"), size)
        start, end = (byte_range.start, byte_range.end) if byte_range else (0, size)
        headers = {
            "Content-Type": content_type_for(upload.metadata),
            "Content-Disposition": content_disposition_for(upload.metadata, upload.id),
            "Content-Length": str(end - start),
            "Accept-Ranges": "bytes",
            "Cache-Control": "no-store",
        }
        status = 200
        if byte_range:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        body = service.storage.read(upload, start, end) if end > start else b""
        response = Response(body, status=status, headers=headers)
        response.headers["Content-Length"] = str(end - start)
        return response

    @app.route("/health", methods=["GET"])
    async def health():
        # Readiness: 503 naming what cannot be reached (storage, info store, notifiers).
        checks = await readiness(service.storage, service.info, app.extensions.get("tuspluggy.notifiers", []))
        status, message = render_health(checks)
        return _text(status, message)

    @app.route("/metrics", methods=["GET"])
    async def metrics():
        if service.metrics is None:
            return _text(404, "metrics are not enabled")
        return Response(service.metrics.render(), status=200, content_type=service.metrics.content_type)

    return app
