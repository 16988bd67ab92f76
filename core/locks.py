"""Per-upload locks: one request at a time changes an upload.

`LocalLocker` serialises the requests of one process with trio locks. `FileRangeLocker`
adds a byte-range lock per upload on one shared lock file, so that several processes
sharing a directory (`--workers N`, or instances on one host) serialise too; the kernel
releases it when its process dies, so a crashed request never leaves an upload locked.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from .interfaces import LockTimeout


async def retry_until(attempt, deadline: float, upload_id: str, first_delay: float = 0.005):
    """Await `attempt()` with doubling pauses (up to 0.1 s) until it returns neither None nor
    False; LockTimeout if that would take past `deadline` (trio time). For lockers whose
    backend offers only a try-lock (flock LOCK_NB, pg_try_advisory_lock)."""
    delay = first_delay
    while (result := await attempt()) is None or result is False:
        if trio.current_time() + delay > deadline:
            raise LockTimeout(upload_id)
        await trio.sleep(delay)
        delay = min(delay * 2, 0.1)
    return result


class LocalLocker:
    def __init__(self) -> None:
        self._locks: dict[str, tuple[trio.Lock, int]] = {}

    @asynccontextmanager
    async def lock(self, upload_id: str, timeout: float) -> AsyncIterator[None]:
        lock, users = self._locks.get(upload_id, (None, 0))
        if lock is None:
            lock = trio.Lock()
        self._locks[upload_id] = (lock, users + 1)
        try:
            with trio.move_on_after(timeout) as scope:
                await lock.acquire()
            if scope.cancelled_caught:
                raise LockTimeout(upload_id)
            try:
                yield
            finally:
                lock.release()
        finally:
            lock, users = self._locks[upload_id]
            if users == 1:
                del self._locks[upload_id]
            else:
                self._locks[upload_id] = (lock, users - 1)


_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", None)


def _range_lock(fd: int, offset: int, *, exclusive: bool) -> None:
    """Lock (or unlock) one byte at `offset` without waiting; OSError EAGAIN/EACCES if held."""
    if _OFD_SETLK is None:
        fcntl.lockf(fd, (fcntl.LOCK_EX | fcntl.LOCK_NB) if exclusive else fcntl.LOCK_UN, 1, offset)
        return
    # struct flock {short l_type, l_whence; off_t l_start, l_len; pid_t l_pid (0 for OFD)}
    request = struct.pack("hhqqi4x", fcntl.F_WRLCK if exclusive else fcntl.F_UNLCK, os.SEEK_SET, offset, 1, 0)
    fcntl.fcntl(fd, _OFD_SETLK, request)


class FileRangeLocker:
    """LocalLocker within the process, and across processes a lock on one byte of
    ``{directory}/.locks`` chosen by the upload id.

    One lock file opened once, instead of a lock file created and unlinked per request:
    creating a file cost ~0.1 ms on the project's machines, a tenth of a small upload.
    On Linux these are open-file-description locks (F_OFD_SETLK): owned by this locker's
    descriptor, so two lockers conflict even within one process, and the kernel drops
    them when the process dies, so a crashed request never leaves an upload locked.
    Elsewhere they are POSIX record locks, which belong to the process (two lockers of
    one process then do not exclude each other). Two ids sharing a byte (a 2^-56 chance)
    would at worst share one lock.
    """

    FILE_NAME = ".locks"

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, self.FILE_NAME)
        self.local = LocalLocker()
        self._fd: int | None = None
        self._pid = 0

    def _descriptor(self) -> int:
        if self._fd is None or self._pid != os.getpid():  # a forked child needs its own
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            self._pid = os.getpid()
        return self._fd

    @staticmethod
    def byte_for(upload_id: str) -> int:
        return int.from_bytes(hashlib.blake2b(upload_id.encode(), digest_size=7).digest(), "big")

    def _try_lock(self, offset: int) -> bool:
        try:
            _range_lock(self._descriptor(), offset, exclusive=True)
        except OSError as error:
            if error.errno in (errno.EACCES, errno.EAGAIN):
                return False
            raise
        return True

    @asynccontextmanager
    async def lock(self, upload_id: str, timeout: float) -> AsyncIterator[None]:
        deadline = trio.current_time() + timeout
        async with self.local.lock(upload_id, timeout):
            offset = self.byte_for(upload_id)

            async def attempt() -> bool:
                return self._try_lock(offset)

            await retry_until(attempt, deadline, upload_id)
            try:
                yield
            finally:
                _range_lock(self._descriptor(), offset, exclusive=False)
