"""Quart-Trio routes: thin adapters from HTTP to the upload service.

Nothing here decides a tus answer; it gathers headers and the body stream, calls
UploadService, and renders the result or the TusError it raised.
"""

from __future__ import annotations

import fnmatch
import logging

from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from . import TUS_VERSION
from .body import StreamingHTTPConnection, StreamingRequest
from .errors import TusError
from .health import readiness
from .health import render as render_health
from .interfaces import RequestInfo
from .protocol import proxy, rules
from .protocol.download import content_disposition_for, content_type_for, parse_range
from .service import UploadService

log = logging.getLogger("tuspluggy.http")

ALLOWED_METHODS = "OPTIONS, GET, HEAD, POST, PATCH, DELETE"
CORS_ALLOW_HEADERS = [
    "Authorization", "Content-Type", "Origin", "X-Requested-With", "X-Request-ID", "X-HTTP-Method-Override",
    "Tus-Resumable", "Upload-Length", "Upload-Offset", "Upload-Metadata", "Upload-Defer-Length",
    "Upload-Concat", "Upload-Checksum", "Upload-Expires",
]
CORS_EXPOSE_HEADERS = (
    "Location, Tus-Version, Tus-Resumable, Tus-Max-Size, Tus-Extension, Tus-Checksum-Algorithm, "
    "Upload-Length, Upload-Metadata, Upload-Defer-Length, Upload-Concat, Upload-Offset, Upload-Expires, "
    "Content-Type, Content-Length, Content-Range, Content-Disposition"
)
OVERRIDABLE = {"PATCH", "DELETE", "HEAD", "GET", "POST", "OPTIONS"}


class TusApp(QuartTrio):
    request_class = StreamingRequest
    asgi_http_class = StreamingHTTPConnection

    async def __call__(self, scope, receive, send) -> None:
        # X-HTTP-Method-Override must act as the request's method (spec: MUST), so it is
        # applied before routing.
        if scope["type"] == "http":
            for name, value in scope.get("headers", ()):
                if name.lower() == b"x-http-method-override":
                    method = value.decode("latin1").strip().upper()
                    if method in OVERRIDABLE:
                        scope = {**scope, "method": method}
                    break
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
    cors_origins = cors_origins or []
    cors_allow_headers = ", ".join(CORS_ALLOW_HEADERS + list(proxy_headers or []))

    def request_info() -> RequestInfo:
        headers: dict[str, list[str]] = {}
        for name, value in request.headers.items():
            if name.lower() == "remote-addr":  # added by Quart, not sent by the client
                continue
            headers.setdefault(name.lower(), []).append(value)
        peer = (request.scope.get("client") or (None,))[0]
        uri = request.full_path if request.query_string else request.path
        return RequestInfo(
            uri=uri,
            method=request.method,
            remote_addr=proxy.client_address(request.headers, peer, behind_proxy),
            headers=headers,
        )

    def upload_url(upload_id: str) -> str:
        origin = proxy.public_origin(request.headers, request.scheme, behind_proxy)
        prefix = proxy.forwarded_prefix(request.headers, behind_proxy)
        return f"{origin.scheme}://{origin.host}{prefix}{base}/{upload_id}"

    def part_url(upload_id: str) -> str:
        return f"{base}/{upload_id}"

    @app.errorhandler(TusError)
    async def tus_error(error: TusError):
        headers = dict(error.headers)
        if error.upload_id:
            headers["Location"] = upload_url(error.upload_id)
        return Response(error.body_bytes(), status=error.status, headers=headers, content_type=error.content_type)

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException):
        headers = {"Allow": ALLOWED_METHODS} if error.code == 405 else {}
        return _text(error.code or 400, error.description or error.name, headers)

    @app.errorhandler(Exception)
    async def unexpected(error: Exception):
        log.exception("unexpected error on %s %s", request.method, request.path)
        return _text(500, "internal server error; the upload's stored bytes are safe, retry the request")

    @app.after_request
    async def common_headers(response: Response) -> Response:
        if request.path == base or request.path.startswith(base + "/"):
            response.headers["Tus-Resumable"] = TUS_VERSION
        origin = request.headers.get("Origin")
        if origin and (not cors_origins or any(fnmatch.fnmatchcase(origin, p) for p in cors_origins)):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
            response.vary.add("Origin")
            if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
                response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
                response.headers["Access-Control-Allow-Headers"] = cors_allow_headers
                response.headers["Access-Control-Max-Age"] = "86400"
        return response

    @app.route(base, methods=["OPTIONS", "POST"])
    @app.route(base + "/", methods=["OPTIONS", "POST"])
    async def collection():
        if request.method == "OPTIONS":
            return Response("", status=200, headers=rules.options_headers(service.settings))
        rules.check_tus_resumable("POST", request.headers)
        body = request.body if rules.has_upload_body(request.headers) else None
        created = await service.create(request.headers, request_info(), body)
        upload = created.upload
        headers = {"Location": upload_url(upload.id)}
        if body is not None or upload.is_complete:
            headers["Upload-Offset"] = str(upload.offset)
        headers.update(rules.upload_expires_header(upload))
        return Response("", status=201, headers=headers)

    @app.route(base + "/<upload_id>", methods=["OPTIONS", "HEAD", "GET", "PATCH", "DELETE"])
    @app.route(base + "/<upload_id>/", methods=["OPTIONS", "HEAD", "GET", "PATCH", "DELETE"])
    async def one_upload(upload_id: str):
        method = request.method
        if method == "OPTIONS":
            return Response("", status=200, headers=rules.options_headers(service.settings))
        rules.check_tus_resumable(method, request.headers)
        info = request_info()
        if method == "HEAD":
            upload = await service.head(upload_id, info)
            return Response("", status=200, headers=rules.head_headers(upload, part_url))
        if method == "PATCH":
            upload = await service.patch(upload_id, request.headers, info, request.body)
            headers = {"Upload-Offset": str(upload.offset)}
            headers.update(rules.upload_expires_header(upload))
            return Response("", status=204, headers=headers)
        if method == "DELETE":
            await service.terminate(upload_id, info)
            return Response("", status=204)
        return await download(upload_id, info)

    async def download(upload_id: str, info: RequestInfo) -> Response:
        upload = await service.download(upload_id, info)
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
