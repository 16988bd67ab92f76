"""file-info-storage: one JSON record per upload, ``{info-dir}/{id}.info``."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import AsyncIterator

import trio

from tuspluggy import hookimpl
from tuspluggy.errors import StorageFull
from tuspluggy.fsutil import atomic_write
from tuspluggy.interfaces import PluginContext
from tuspluggy.locks import FileRangeLocker
from tuspluggy.spare_files import SpareFiles
from tuspluggy.upload import Upload, is_valid_upload_id

SUFFIX = ".info"


class FileInfoStore:
    def __init__(self, info_dir: str, force_fsync: bool = False) -> None:
        self.info_dir = os.path.abspath(info_dir)
        self.force_fsync = force_fsync
        os.makedirs(self.info_dir, exist_ok=True)
        self.spares = SpareFiles(self.info_dir, mode=0o600)  # every record save writes a new file

    def _path(self, upload_id: str) -> str:
        if not is_valid_upload_id(upload_id):
            raise ValueError(f"not an upload id: {upload_id!r}")
        return os.path.join(self.info_dir, upload_id + SUFFIX)

    async def get(self, upload_id: str) -> Upload | None:
        if not is_valid_upload_id(upload_id):
            return None
        try:
            with open(self._path(upload_id), "rb") as file:
                data = file.read()
        except FileNotFoundError:
            return None
        return Upload.from_dict(json.loads(data))

    async def save(self, upload: Upload) -> None:
        data = json.dumps(upload.to_dict(), separators=(",", ":")).encode()
        path = self._path(upload.id)
        try:
            if self.force_fsync:
                await trio.to_thread.run_sync(lambda: atomic_write(path, data, fsync=True, spares=self.spares))
            else:
                atomic_write(path, data, fsync=False, spares=self.spares)
        except OSError as error:
            if error.errno in (errno.ENOSPC, errno.EDQUOT):  # a clear 507, not a 500
                raise StorageFull("storage is full: no room left for the upload's record; retry later") from error
            raise

    async def delete(self, upload_id: str) -> None:
        try:
            os.unlink(self._path(upload_id))
        except FileNotFoundError:
            pass

    async def list_ids(self) -> AsyncIterator[str]:
        for name in await trio.to_thread.run_sync(os.listdir, self.info_dir):
            if name.endswith(SUFFIX) and not name.startswith("."):
                yield name[: -len(SUFFIX)]

    def close(self) -> None:
        self.spares.discard()

    def make_locker(self) -> FileRangeLocker:
        return FileRangeLocker(self.info_dir)


@hookimpl
def tus_register_info_stores(register):
    def factory(ctx: PluginContext) -> FileInfoStore:
        return FileInfoStore(ctx.config.info_dir, ctx.config.force_fsync)

    register("file-info-storage", factory)
