"""The tus endpoint's hot routes as a plain ASGI handler: OPTIONS, POST, HEAD, PATCH, DELETE.

Why not Quart for these: on the project's machines Quart's request and app contexts,
routing and response objects cost about as much CPU per request as hypercorn itself, and
a tus upload is mostly small requests (HEAD before a resume, POST, PATCH). Here a request
goes from the ASGI scope to UploadService and back with nothing in between. Quart keeps
GET (downloads), /health, /metrics, the UI and every path or method not listed here, so
its 404/405 answers stay what they were. Like app.py, nothing here decides a tus answer.
"""

from __future__ import annotations

import logging
import math

import trio

from .body import DRAIN_LIMIT, DRAIN_SECONDS, AsgiBody, drain
from .errors import TusError
from .http_common import ALLOWED_METHODS, CommonHeaders, HeaderMap, request_info, upload_url
from .protocol import rules
from .service import UploadService

log = logging.getLogger("tuspluggy.http")

COLLECTION_METHODS = frozenset({"OPTIONS", "POST"})
UPLOAD_METHODS = frozenset({"OPTIONS", "HEAD", "PATCH", "DELETE"})  # GET goes to Quart (downloads)
INTERNAL_ERROR = "internal server error; the upload's stored bytes are safe, retry the request"


def tus_error_in(error: Exception) -> TusError | None:
    """The TusError to answer with, also when a nursery on the way (a plugin's locker that
    renews its lease in a task, say) wrapped it in an ExceptionGroup, as Quart unwraps it."""
    if isinstance(error, TusError):
        return error
    if isinstance(error, ExceptionGroup):
        for inner in error.exceptions:
            found = tus_error_in(inner)
            if found is not None:
                return found
    return None


class TusEndpoint:
    def __init__(self, service: UploadService, base: str, behind_proxy: bool, common: CommonHeaders) -> None:
        self.service = service
        self.base = base
        self.prefix = base + "/"
        self.behind_proxy = behind_proxy
        self.common = common

    def route(self, scope) -> str | None:
        """The upload id ('' for the collection) when this endpoint serves the request,
        None when Quart does (downloads, other paths)."""
        path = scope["path"]
        if path == self.base or path == self.prefix:
            return ""
        if not path.startswith(self.prefix):
            return None
        upload_id = path[len(self.prefix):]
        if upload_id.endswith("/"):
            upload_id = upload_id[:-1]
        if not upload_id or "/" in upload_id or scope["method"] == "GET":
            return None
        return upload_id

    async def __call__(self, scope, receive, send, upload_id: str) -> None:
        headers = HeaderMap(scope["headers"])
        length = headers.get("content-length")
        body = AsgiBody(receive, declared=(length is not None and length.strip() != "0") or "transfer-encoding" in headers)
        try:
            status, answer = await self._handle(scope, headers, body, upload_id)
            content, content_type = b"", None
        except Exception as raised:
            error = tus_error_in(raised)
            if error is not None:
                status, answer = error.status, dict(error.headers)
                if error.upload_id:
                    answer["Location"] = upload_url(scope, headers, self.base, error.upload_id, self.behind_proxy)
                content, content_type = error.body_bytes(), error.content_type
            else:
                log.exception("unexpected error on %s %s", scope["method"], scope["path"])
                status, answer = 500, {}
                content, content_type = (INTERNAL_ERROR + "\n").encode(), "text/plain; charset=utf-8"

        answer.update(self.common.for_request(scope["path"], scope["method"], headers))
        raw = [(name.encode("latin1"), value.encode("latin1")) for name, value in answer.items()]
        if content_type:
            raw.append((b"content-type", content_type.encode("latin1")))
        if status != 204:  # RFC 9110: no Content-Length on a 204
            raw.append((b"content-length", str(len(content)).encode()))
        # An early answer (409, 415, 460...) leaves the body unread, and hypercorn cannot
        # read the next request of the connection until it is: drain a little, or close.
        keep_alive = body.complete or await drain(body, DRAIN_LIMIT, DRAIN_SECONDS)
        if body.disconnected:
            # Nobody reads this answer; sending it anyway would race hypercorn's own
            # answer to the broken request on the same socket (it then crashed the server).
            return
        if keep_alive:
            await send({"type": "http.response.start", "status": status, "headers": raw})
            await send({"type": "http.response.body", "body": content})
            return
        raw.append((b"connection", b"close"))
        # The client may still be sending. hypercorn hands each chunk (and, once the answer
        # is out, the disconnect) to this request's small queue and waits while it is full:
        # if nobody emptied it, the answer would never finish and the connection never
        # close (seen: a losing concurrent PATCH hung until the client's timeout).
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain, body, math.inf, math.inf)  # however long it is
            await send({"type": "http.response.start", "status": status, "headers": raw})
            await send({"type": "http.response.body", "body": content})
            nursery.cancel_scope.cancel()

    async def _handle(self, scope, headers: HeaderMap, body: AsgiBody, upload_id: str) -> tuple[int, dict[str, str]]:
        service = self.service
        method = scope["method"]
        if method not in (UPLOAD_METHODS if upload_id else COLLECTION_METHODS):
            raise TusError(405, f"{method[:20]} is not allowed here", {"Allow": ALLOWED_METHODS})
        if method == "OPTIONS":
            return 200, rules.options_headers(service.settings)
        rules.check_tus_resumable(method, headers)
        info = request_info(scope, headers, self.behind_proxy)
        if method == "POST":
            upload_body = body if rules.has_upload_body(headers) else None
            created = await service.create(headers, info, upload_body)
            upload = created.upload
            answer = {"Location": upload_url(scope, headers, self.base, upload.id, self.behind_proxy)}
            if upload_body is not None or upload.is_complete:
                answer["Upload-Offset"] = str(upload.offset)
            answer.update(rules.upload_expires_header(upload))
            return 201, answer
        if method == "HEAD":
            upload = await service.head(upload_id, info)
            return 200, rules.head_headers(upload, self._part_url)
        if method == "PATCH":
            upload = await service.patch(upload_id, headers, info, body)
            answer = {"Upload-Offset": str(upload.offset)}
            answer.update(rules.upload_expires_header(upload))
            return 204, answer
        await service.terminate(upload_id, info)  # DELETE
        return 204, {}

    def _part_url(self, upload_id: str) -> str:
        return f"{self.base}/{upload_id}"
