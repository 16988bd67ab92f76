"""Small file-system helpers shared by the file-based plugins."""

from __future__ import annotations

import itertools
import os

from .spare_files import SpareFiles

# Temporary names unique per process without mkstemp's random names and retries (a
# quarter of a record write's CPU when measured); the pid tells processes apart.
_sequence = itertools.count()


def _create_temporary(directory: str) -> tuple[int, str]:
    while True:
        tmp = os.path.join(directory, f".tmp-{os.getpid()}-{next(_sequence)}.part")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), tmp
        except FileExistsError:  # left by a crashed process that had our pid
            continue


def _open_spare(spares: SpareFiles | None) -> tuple[int, str] | None:
    tmp = spares.take() if spares is not None else None
    if tmp is None:
        return None
    try:
        return os.open(tmp, os.O_WRONLY | os.O_CLOEXEC), tmp
    except OSError:  # removed meanwhile (see spare_files)
        return None


def atomic_write(path: str, data: bytes, *, fsync: bool, spares: SpareFiles | None = None) -> None:
    """Write-then-rename: readers see the old content or the new one, never half of it.

    `spares`, if given, are empty files made ahead in the same directory as `path`."""
    directory = os.path.dirname(path) or "."
    spare = _open_spare(spares)
    if spare is not None:
        try:
            _write_then_rename(*spare, path, data, fsync)
        except FileNotFoundError:
            # Removed between our open and the rename (another host sharing the directory
            # cleaned up spares it took for a dead process's): write a temporary of our own.
            _write_then_rename(*_create_temporary(directory), path, data, fsync)
    else:
        _write_then_rename(*_create_temporary(directory), path, data, fsync)
    if fsync:
        fsync_dir(directory)


def _write_then_rename(fd: int, tmp: str, path: str, data: bytes, fsync: bool) -> None:
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
