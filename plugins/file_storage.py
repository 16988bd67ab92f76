"""file-storage: upload bytes as plain files under --data-dir."""

from __future__ import annotations

import errno
import os
from collections.abc import AsyncIterator

import trio

from tuspluggy import hookimpl
from tuspluggy.errors import StorageFull
from tuspluggy.interfaces import PluginContext
from tuspluggy.protocol.parse import utc_parts
from tuspluggy.spare_files import SpareFiles
from tuspluggy.upload import Upload

READ_CHUNK = 1024 * 1024
COPY_CHUNK = 4 * 1024 * 1024
# A write this small goes to the page cache in microseconds, less than the thread hop
# around it would cost (the body of a small upload, the tail of a PATCH); it is done on
# the trio thread, like the info store's record writes.
INLINE_WRITE_BYTES = 64 * 1024


def _raise_if_full(error: OSError) -> None:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        raise StorageFull() from error


class FileWriter:
    def __init__(self, path: str, offset: int, fsync: bool) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        self._start = offset
        self._position = offset
        self._fsync = fsync

    def _pwrite_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, self._position)
            self._position += written
            view = view[written:]

    async def write(self, data: bytes) -> None:
        before = self._position
        try:
            if len(data) <= INLINE_WRITE_BYTES:
                self._pwrite_all(data)
            else:
                # One thread hop per (already coalesced, ~1 MiB) buffer keeps a slow disk
                # from stalling every other request on the trio thread.
                await trio.to_thread.run_sync(self._pwrite_all, data)
        except OSError as error:
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                # The offset will not count a partly written buffer, so neither does the
                # file: its size stays equal to the recorded offset (and the space is freed).
                try:
                    await trio.to_thread.run_sync(os.ftruncate, self._fd, before)
                    self._position = before
                except OSError:
                    pass
            _raise_if_full(error)
            raise

    async def commit(self) -> None:
        if self._fsync:
            await trio.to_thread.run_sync(os.fdatasync, self._fd)

    async def rollback(self) -> None:
        await trio.to_thread.run_sync(os.ftruncate, self._fd, self._start)
        self._position = self._start

    async def aclose(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class FileStorage:
    name = "file_storage"
    capabilities = frozenset({"termination", "concatenation", "concatenation-unfinished", "creation-defer-length"})

    def __init__(self, data_dir: str, dir_structure: str = "", force_fsync: bool = False) -> None:
        self.data_dir = os.path.abspath(data_dir)
        self.dir_structure = dir_structure
        self.force_fsync = force_fsync
        os.makedirs(self.data_dir, exist_ok=True)
        self.spares = SpareFiles(self.data_dir)

    def _directory_for(self, upload: Upload) -> str:
        if not self.dir_structure:
            return self.data_dir
        when = utc_parts(upload.created_at)
        # Not zero-padded, as Rustus does, so existing trees keep their shape.
        sub = self.dir_structure
        for key in ("year", "month", "day", "hour", "minute"):
            sub = sub.replace("{" + key + "}", str(getattr(when, key)))
        sub = os.path.normpath(sub.strip("/"))
        if sub.startswith("..") or os.path.isabs(sub):
            raise ValueError("--dir-structure must stay inside --data-dir")
        return os.path.join(self.data_dir, sub)

    async def ready(self) -> None:
        """Readiness (/health): the data directory exists and is writable."""
        if not os.path.isdir(self.data_dir) or not os.access(self.data_dir, os.W_OK | os.X_OK):
            raise OSError(f"{self.data_dir} is not a writable directory")

    async def create(self, upload: Upload) -> None:
        directory = self._directory_for(upload)
        path = os.path.join(directory, upload.id)

        try:
            # An empty file: as cheap as a record write, so no thread hop either. A spare
            # made ahead is linked in (link, like O_EXCL, refuses an existing name).
            if directory != self.data_dir:
                os.makedirs(directory, exist_ok=True)
            if not self._link_spare(path):
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644))
        except OSError as error:
            _raise_if_full(error)
            raise
        upload.path = path

    def close(self) -> None:
        self.spares.discard()

    def _link_spare(self, path: str) -> bool:
        spare = self.spares.take()
        if spare is None:
            return False
        try:
            os.link(spare, path)
        except FileNotFoundError:  # removed meanwhile (see spare_files)
            return False
        except OSError as error:
            os.unlink(spare)
            if error.errno == errno.EXDEV:  # --dir-structure crossing a mount point
                return False
            raise
        os.unlink(spare)
        return True

    async def open_writer(self, upload: Upload, offset: int) -> FileWriter:
        return FileWriter(upload.path, offset, self.force_fsync)

    async def read(self, upload: Upload, start: int, end: int) -> AsyncIterator[bytes]:
        file = await trio.open_file(upload.path, "rb")
        async with file:
            await file.seek(start)
            remaining = end - start
            while remaining > 0:
                chunk = await file.read(min(READ_CHUNK, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk

    async def concatenate(self, final: Upload, parts: list[Upload]) -> None:
        def copy() -> None:
            with open(final.path, "r+b") as target:
                target.truncate(0)
                for part in parts:
                    with open(part.path, "rb") as source:
                        remaining = part.offset
                        while remaining > 0:
                            chunk = source.read(min(COPY_CHUNK, remaining))
                            if not chunk:
                                raise OSError(f"part {part.id} is shorter than its offset")
                            target.write(chunk)
                            remaining -= len(chunk)
                if self.force_fsync:
                    target.flush()
                    os.fsync(target.fileno())

        try:
            await trio.to_thread.run_sync(copy)
        except OSError as error:
            _raise_if_full(error)
            raise

    async def finish(self, upload: Upload) -> None:
        return None

    async def remove(self, upload: Upload) -> None:
        if upload.path:
            try:
                os.unlink(upload.path)
            except FileNotFoundError:
                pass


@hookimpl
def tus_register_storages(register):
    def factory(ctx: PluginContext) -> FileStorage:
        config = ctx.config
        return FileStorage(config.data_dir, config.dir_structure, config.force_fsync)

    register("file-storage", factory)
