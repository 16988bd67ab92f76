"""Hook payloads: the JSON each event carries, in the three formats of the Rustus hooks
document (``--hooks-format default | v2 | tusd``). Pure functions, no I/O.

Where the document's own models and its examples disagree with what Rustus sends, the
document's models win (they are the user's specification and receivers validate with them):

- a deferred length is sent as ``0`` (``length`` / ``Size``) with ``deferred_size`` /
  ``SizeIsDeferred`` true, because the models declare an int there;
- a header sent several times is joined with ", " in the default/v2 formats (a
  ``Dict[str, str]``) and kept as a list of values in the tusd format.
"""

from __future__ import annotations

import json
from typing import Any

from .interfaces import RequestInfo
from .upload import Upload

#: Every event, in the order of an upload's life. The first six are Rustus's.
EVENTS = ("pre-create", "post-create", "post-receive", "pre-terminate", "post-terminate", "post-finish", "pre-access")
DEFAULT_EVENTS = EVENTS[:6]  # pre-access is opt-in
BLOCKING_EVENTS = frozenset({"pre-create", "pre-terminate", "pre-access"})
FORMATS = ("default", "v2", "tusd")


def upload_fields(upload: Upload) -> dict[str, Any]:
    """The `upload` object of the default and v2 formats."""
    return {
        "id": upload.id,
        "offset": upload.offset,
        "length": upload.length if upload.length is not None else 0,
        "path": upload.path,
        "created_at": int(upload.created_at),
        "deferred_size": upload.deferred_size,
        "is_partial": upload.is_partial,
        "is_final": upload.is_final,
        "parts": list(upload.parts) if upload.is_final and upload.parts is not None else None,
        "storage": upload.storage,
        "metadata": dict(upload.metadata),
    }


def _joined_headers(request: RequestInfo) -> dict[str, str]:
    return {name.lower(): ", ".join(values) for name, values in request.headers.items()}


def _listed_headers(request: RequestInfo) -> dict[str, list[str]]:
    return {name.lower(): list(values) for name, values in request.headers.items()}


def payload(fmt: str, upload: Upload, request: RequestInfo) -> dict[str, Any]:
    """The payload of one event as a JSON-ready dict."""
    if fmt == "tusd":
        return {
            "Upload": {
                "ID": upload.id,
                "Offset": upload.offset,
                "Size": upload.length if upload.length is not None else 0,
                "IsFinal": upload.is_final,
                "IsPartial": upload.is_partial,
                "PartialUploads": list(upload.parts) if upload.is_final and upload.parts is not None else None,
                "SizeIsDeferred": upload.deferred_size,
                "MetaData": dict(upload.metadata),
                "Storage": {"Type": upload.storage, "Path": upload.path},
            },
            "HTTPRequest": {
                "URI": request.uri,
                "Method": request.method,
                "RemoteAddr": request.remote_addr,
                "Header": _listed_headers(request),
            },
        }
    if fmt not in ("default", "v2"):
        raise ValueError(f"unknown hooks format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return {
        "upload": upload_fields(upload),
        "request": {
            # The only difference between the two: v2 spells the key in lower case.
            ("uri" if fmt == "v2" else "URI"): request.uri,
            "method": request.method,
            "remote_addr": request.remote_addr,
            "headers": _joined_headers(request),
        },
    }


def render(fmt: str, upload: Upload, request: RequestInfo) -> str:
    return json.dumps(payload(fmt, upload, request), separators=(",", ":"), ensure_ascii=False)
