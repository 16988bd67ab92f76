"""Start-up tuning of other libraries, isolated here because it changes their globals.

Measured on the project's machines (../DESIGN.md): reading the socket in 1 MiB instead of
64 KiB steps and keeping glibc from mmapping/unmapping every 1 MiB buffer took one
upload stream from ~0.4 to over 1 GB/s. Both are process-wide, so they run only in
`tuspluggy serve`, never on import.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("tuspluggy.tuning")

SOCKET_READ_BYTES = 1024 * 1024
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def raise_socket_read_size() -> None:
    from hypercorn.trio import tcp_server

    tcp_server.MAX_RECV = SOCKET_READ_BYTES


def tune_malloc() -> bool:
    """Keep freed 1 MiB buffers in the heap instead of returning them to the kernel."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return False
    ok = mallopt(M_MMAP_THRESHOLD, 16 * 1024 * 1024) == 1
    ok = mallopt(M_TRIM_THRESHOLD, 128 * 1024 * 1024) == 1 and ok
    return ok


def explain_protocol_errors() -> bool:
    """Give hypercorn's own answers to malformed HTTP (400, 431...) a one-line text body.

    hypercorn answers a request it cannot parse with an empty body; our rule is that every
    4xx says what was wrong. Its private `_send_error_response` is replaced here, and left
    alone if a hypercorn upgrade renames it (the answer is then still a bodiless 4xx).
    """
    from http import HTTPStatus
    from itertools import chain

    import h11
    from hypercorn.protocol.h11 import H11Protocol

    original = getattr(H11Protocol, "_send_error_response", None)
    if original is None or getattr(original, "_tuspluggy", False):
        return False

    async def send_error_response(self, status_code: int) -> None:
        try:
            reason = HTTPStatus(status_code).phrase.lower()
        except ValueError:
            reason = "bad request"
        body = f"{reason}: the request is not valid HTTP/1.1\n".encode()
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await self._send_h11_event(
            h11.Response(status_code=status_code, headers=list(chain(headers, self.config.response_headers("h11"))))
        )
        await self._send_h11_event(h11.Data(data=body))
        await self._send_h11_event(h11.EndOfMessage())

    send_error_response._tuspluggy = True
    H11Protocol._send_error_response = send_error_response
    return True


def apply() -> None:
    raise_socket_read_size()
    explain_protocol_errors()
    contain_connection_errors()
    if not tune_malloc():
        log.debug("malloc tuning not available on this platform")


def contain_connection_errors() -> bool:
    """Keep an unexpected error in one connection's task from stopping the whole server.

    hypercorn's TCPServer.run lets anything but OSError escape into the listeners' nursery,
    which cancels every connection and ends `serve`. Seen: trio.BusyResourceError when its
    answer to a broken request met the close of the same socket. Such an error is logged
    here and ends only its own connection.
    """
    from hypercorn.trio.tcp_server import TCPServer

    original = TCPServer.run
    if getattr(original, "_tuspluggy", False):
        return False

    async def run(self) -> None:
        try:
            await original(self)
        except Exception:  # not Cancelled: a shutdown still ends every connection
            log.warning("a connection ended on an unexpected error; the server goes on", exc_info=True)

    run._tuspluggy = True
    TCPServer.run = run
    return True
