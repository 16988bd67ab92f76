"""Errors are values that carry their HTTP answer.

Anything the protocol layer, a storage or a hook rejects becomes a `TusError`; the HTTP
adapter turns it into a response with a one-line text body. Nothing else may reach the
client as a 5xx with a traceback.
"""

from __future__ import annotations


class TusError(Exception):
    """A request that cannot be served, with the status and one-line message to answer."""

    def __init__(
        self,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
        *,
        content_type: str = "text/plain; charset=utf-8",
        body: bytes | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = " ".join(message.split()) or "error"  # keep it on one line
        self.headers = dict(headers or {})
        self.content_type = content_type
        # A hook that rejects a request may hand its own body to the client verbatim.
        self.body = body
        # Set when the request created an upload before failing (creation-with-upload).
        self.upload_id: str | None = None

    def body_bytes(self) -> bytes:
        if self.body is not None:
            return self.body
        return (self.message + "\n").encode()


def bad_request(message: str) -> TusError:
    return TusError(400, message)


def not_found(message: str = "upload not found") -> TusError:
    return TusError(404, message)


class StorageFull(TusError):
    """The storage has no room left for the bytes being written."""

    def __init__(self, message: str = "storage is full; retry later") -> None:
        super().__init__(507, message)
