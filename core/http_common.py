"""What every HTTP answer of the tus endpoint shares, whichever adapter serves it.

The tus routes are served by the plain ASGI endpoint (tus_asgi.py) and downloads by
Quart (app.py); both read requests through these helpers so that headers, CORS, hook
request info and Location URLs cannot drift apart.
"""

from __future__ import annotations

import fnmatch

from . import TUS_VERSION
from .interfaces import RequestInfo
from .protocol import proxy

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


class HeaderMap(dict):
    """Request headers by lowercase name (the first value of a repeated header), looked up
    case-insensitively, like werkzeug's Headers.get but built in one pass over the ASGI list."""

    __slots__ = ("raw",)

    def __init__(self, raw_headers) -> None:
        super().__init__()
        self.raw = raw_headers
        for name, value in reversed(raw_headers):  # reversed: the first value wins
            dict.__setitem__(self, name.decode("latin1").lower(), value.decode("latin1"))

    def get(self, name: str, default=None):
        return dict.get(self, name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, name.lower())

    def all_values(self) -> dict[str, list[str]]:
        """Every header, repeated ones included (what hooks receive)."""
        result: dict[str, list[str]] = {}
        for name, value in self.raw:
            result.setdefault(name.decode("latin1").lower(), []).append(value.decode("latin1"))
        return result


def request_info(scope, headers: HeaderMap, behind_proxy: bool) -> RequestInfo:
    """What hooks are told about the request (the Rustus document's `request` object)."""
    path = scope.get("path", "")
    query = scope.get("query_string", b"")
    uri = f"{path}?{query.decode('latin1')}" if query else path
    peer = (scope.get("client") or (None,))[0]
    return RequestInfo(
        uri=uri,
        method=scope.get("method", ""),
        remote_addr=proxy.client_address(headers, peer, behind_proxy),
        headers=headers.all_values(),
    )


def upload_url(scope, headers: HeaderMap, base: str, upload_id: str, behind_proxy: bool) -> str:
    """The absolute URL of an upload, as the client (or the proxy in front) addressed us."""
    origin = proxy.public_origin(headers, scope.get("scheme", "http"), behind_proxy)
    prefix = proxy.forwarded_prefix(headers, behind_proxy)
    return f"{origin.scheme}://{origin.host}{prefix}{base}/{upload_id}"


class CommonHeaders:
    """Tus-Resumable on every answer under the endpoint, and CORS for allowed origins."""

    def __init__(self, base: str, cors_origins: list[str], proxy_headers: list[str]) -> None:
        self.base = base
        self.cors_origins = cors_origins
        self.allow_headers = ", ".join(CORS_ALLOW_HEADERS + list(proxy_headers))

    def is_tus_path(self, path: str) -> bool:
        return path == self.base or path.startswith(self.base + "/")

    def origin_allowed(self, origin: str) -> bool:
        return not self.cors_origins or any(fnmatch.fnmatchcase(origin, p) for p in self.cors_origins)

    def for_request(self, path: str, method: str, headers) -> list[tuple[str, str]]:
        """Headers to add to the answer; Vary: Origin is among them when CORS applies."""
        added = []
        if self.is_tus_path(path):
            added.append(("Tus-Resumable", TUS_VERSION))
        origin = headers.get("Origin")
        if origin and self.origin_allowed(origin):
            added += [
                ("Access-Control-Allow-Origin", origin),
                ("Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS),
                ("Vary", "Origin"),
            ]
            if method == "OPTIONS" and headers.get("Access-Control-Request-Method"):
                added += [
                    ("Access-Control-Allow-Methods", ALLOWED_METHODS),
                    ("Access-Control-Allow-Headers", self.allow_headers),
                    ("Access-Control-Max-Age", "86400"),
                ]
        return added
