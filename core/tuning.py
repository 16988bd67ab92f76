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


def apply() -> None:
    raise_socket_read_size()
    if not tune_malloc():
        log.debug("malloc tuning not available on this platform")
