"""Per-upload locks: one request at a time changes an upload.

`LocalLocker` serialises the requests of one process with trio locks. `FlockLocker`
adds an flock(2) on a lock file so that several processes sharing a directory
(`--workers N`, or instances on one host) serialise too; the kernel releases an flock
when its process dies, so a crashed request never leaves an upload locked.
"""

from __future__ import annotations

import errno
import fcntl
import os
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


class FlockLocker:
    """LocalLocker within the process, flock(2) on ``{directory}/{id}.lock`` across processes."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.local = LocalLocker()

    def _path(self, upload_id: str) -> str:
        return os.path.join(self.directory, f"{upload_id}.lock")

    def _try_flock(self, path: str) -> int | None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return None
            raise
        try:
            same_file = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same_file = False
        if not same_file:  # the previous holder unlinked it between our open and flock
            os.close(fd)
            return None
        return fd

    @asynccontextmanager
    async def lock(self, upload_id: str, timeout: float) -> AsyncIterator[None]:
        deadline = trio.current_time() + timeout
        async with self.local.lock(upload_id, timeout):
            path = self._path(upload_id)

            async def attempt() -> int | None:
                return self._try_flock(path)

            fd = await retry_until(attempt, deadline, upload_id)
            try:
                yield
            finally:
                # Unlink while still holding the lock, so no waiter locks a stale file.
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
                os.close(fd)
