"""Request bodies that stream with backpressure.

Quart drains the socket into an unbounded bytearray whenever the handler is slower than
the network (measured: a 300 MiB PATCH with one 3 s disk stall peaked at 643 MB RSS).
Here each body is a small trio channel: the connection task awaits room before it asks
hypercorn for more, so a slow storage slows the client instead of filling memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import trio
from quart_trio.asgi import TrioASGIHTTPConnection
from quart_trio.wrappers.request import TrioBody, TrioRequest

from .errors import TusError

BODY_SLOTS = 2  # chunks in flight per request, up to 1 MiB each (8 doubled the peak RSS of 16 streams, no faster)


DISCONNECT_GRACE = 5  # seconds a handler may take to store what a vanished client sent


class ClientDisconnected(TusError):
    """The client went away before its body was complete (nobody reads this answer)."""

    def __init__(self) -> None:
        super().__init__(400, "the client closed the connection before the body was complete")


class BoundedBody(TrioBody):
    def __init__(self, expected_content_length, max_content_length) -> None:
        super().__init__(expected_content_length, max_content_length)
        self._send, self._receive = trio.open_memory_channel[bytes](BODY_SLOTS)
        self._complete = False
        self._cut_off = False

    async def put(self, data: bytes, more: bool) -> None:
        if data:
            await self._send.send(data)
        if not more:
            self._complete = True
            self._send.close()

    def disconnect(self) -> None:
        """The client is gone: what is buffered can still be read, then the body ends with
        ClientDisconnected instead of a normal end (unless it was complete already)."""
        if not self._complete:
            self._cut_off = True
        self._send.close()

    def append(self, data: bytes) -> None:  # Quart's synchronous path (tests, form parsing)
        if data:
            self._send.send_nowait(data)

    def set_complete(self) -> None:
        self._send.close()

    def __aiter__(self) -> BoundedBody:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            if self._cut_off:
                raise ClientDisconnected() from None
            raise StopAsyncIteration from None

    def __await__(self):
        return self._collect().__await__()

    async def _collect(self) -> bytes:
        return b"".join([chunk async for chunk in self])


class AsgiBody:
    """A request body read straight from the ASGI `receive` of the tus endpoint.

    No task and no buffer of its own: the handler pulls the next message when it is ready,
    so hypercorn's small app queue (max_app_queue_size) is the only buffer and a slow
    storage slows the client. A disconnect arrives after the chunks hypercorn had queued,
    so those are stored before the body ends with ClientDisconnected.
    """

    __slots__ = ("_receive", "complete", "disconnected")

    def __init__(self, receive, *, declared: bool = True) -> None:
        self._receive = receive
        # A request that declares no body (no Content-Length, or 0, and no
        # Transfer-Encoding) has nothing to read or drain: hypercorn's one empty message
        # waits in the queue without holding the connection up.
        self.complete = not declared
        self.disconnected = False

    def __aiter__(self) -> AsgiBody:
        return self

    async def __anext__(self) -> bytes:
        while not self.complete:
            if self.disconnected:
                raise ClientDisconnected()
            message = await self._receive()
            if message["type"] == "http.request":
                self.complete = not message.get("more_body", False)
                data = message.get("body", b"")
                if data:
                    return data
            elif message["type"] == "http.disconnect":
                self.disconnected = True
        raise StopAsyncIteration


async def drain(body: AsyncIterator[bytes], limit: int, timeout: float) -> bool:
    """Read and drop what the handler left unread of `body`, so the connection can carry
    the next request. False if more than `limit` bytes (or `timeout` seconds) remained, or
    the client left: then the connection must be closed instead."""
    dropped = 0
    with trio.move_on_after(timeout):
        try:
            async for chunk in body:
                dropped += len(chunk)
                if dropped > limit:
                    return False
        except ClientDisconnected:
            return False
        return True
    return False


class StreamingRequest(TrioRequest):
    body_class = BoundedBody


DRAIN_LIMIT = 1024 * 1024  # unread body bytes worth reading to keep a connection alive
DRAIN_SECONDS = 5


class StreamingHTTPConnection(TrioASGIHTTPConnection):
    async def handle_request(self, nursery: trio.Nursery, request, send) -> None:  # type: ignore[override]
        response = await self.app.handle_request(request)
        # An early answer (409, 415, 460...) leaves the body unread; hypercorn then stalls
        # the keep-alive connection. Drain a little, or close the connection.
        if not await drain(request.body, DRAIN_LIMIT, DRAIN_SECONDS):
            response.headers["Connection"] = "close"
        await self._send_response(send, response)
        nursery.cancel_scope.cancel()

    async def handle_messages(self, nursery: trio.Nursery, request, receive) -> None:  # type: ignore[override]
        while True:
            message = await receive()
            if message["type"] == "http.request":
                await request.body.put(message.get("body", b""), message.get("more_body", False))
            elif message["type"] == "http.disconnect":
                break
        # The client is gone. Up to BODY_SLOTS chunks it sent are still buffered: let the
        # handler store them (its body then ends with ClientDisconnected), and cancel it
        # only if it is stuck elsewhere; its shielded cleanup records what was stored.
        request.body.disconnect()
        await trio.sleep(DISCONNECT_GRACE)
        nursery.cancel_scope.cancel()
