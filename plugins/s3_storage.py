"""--storage s3: upload bytes in any S3-compatible object store, as multipart uploads.

POST starts a multipart upload; PATCH bodies stream into parts (s3_writer.S3Writer) with
no minimum on the client's chunk size; the last byte completes the upload; DELETE and
expiry abort it. Concatenation copies the partial uploads' objects server-side
(UploadPartCopy) when every part but the last is at least 5 MiB, and streams them
otherwise. GET reads ranges of the finished object.

The multipart upload id, the parts and their ETags live in ``Upload.storage_state``,
never in the user's metadata.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import trio

from tuspluggy.errors import TusError
from tuspluggy.plugin_manager import PluginLoadError
from tuspluggy.upload import Upload

from .s3_client import ObjectStoreError, call
from .s3_writer import S3Writer, state_size

log = logging.getLogger("tuspluggy.s3")

MiB = 1024 * 1024
MIN_PART = 5 * MiB  # S3's smallest part (but the last)
MAX_COPY_PART = 5 * 1024 * MiB  # S3's largest part, also for UploadPartCopy
READ_CHUNK = MiB
TAIL_DIR = ".tus-tails/"


class S3Storage:
    name = "s3"
    capabilities = frozenset({"termination", "concatenation", "concatenation-unfinished", "creation-defer-length"})

    def __init__(self, client, bucket: str, *, prefix: str = "", part_size: int = 8 * MiB,
                 concurrency: int = 4) -> None:
        if part_size < MIN_PART:
            raise PluginLoadError(f"--s3-part-size must be at least {MIN_PART} (S3's minimum part size)")
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.part_size = part_size
        self.concurrency = max(1, concurrency)
        # Part uploads run here while the request goes on reading its body.
        self.executor = ThreadPoolExecutor(max_workers=self.concurrency * 4, thread_name_prefix="tuspluggy-s3")

    # -- names ---------------------------------------------------------------------

    def object_key(self, upload: Upload) -> str:
        return self.prefix + upload.id

    def tail_prefix(self, upload_id: str) -> str:
        return f"{self.prefix}{TAIL_DIR}{upload_id}/"

    def tail_key(self, upload_id: str, token: str) -> str:
        return self.tail_prefix(upload_id) + token

    # -- life cycle ------------------------------------------------------------------

    async def open(self) -> None:
        try:
            await call(self.client, "head_bucket", Bucket=self.bucket)
        except TusError as error:
            raise PluginLoadError(f"--storage s3: bucket {self.bucket!r} is not reachable: {error.message}") from None

    async def close(self) -> None:
        await trio.to_thread.run_sync(self.executor.shutdown)

    async def ready(self) -> None:
        await call(self.client, "head_bucket", Bucket=self.bucket)

    # -- the Storage protocol ------------------------------------------------------

    async def create(self, upload: Upload) -> None:
        key = self.object_key(upload)
        response = await call(self.client, "create_multipart_upload", Bucket=self.bucket, Key=key)
        upload.storage_state = {"key": key, "mpu": response["UploadId"], "done": False, "parts": [], "tail": []}
        upload.path = f"s3://{self.bucket}/{key}"

    def _check_state(self, upload: Upload, offset: int | None = None) -> None:
        state = upload.storage_state
        if "key" not in state:
            # Stored by another storage (--storage changed): not ours to touch.
            raise TusError(404, f"upload {upload.id} is not in the object store (stored by {upload.storage or 'another storage'})")
        if offset is not None and not state.get("done") and state_size(state) != offset:
            raise TusError(500, f"upload {upload.id}: the record's offset {offset} and its stored parts disagree")

    async def open_writer(self, upload: Upload, offset: int) -> S3Writer:
        self._check_state(upload, offset)
        await self._delete_unreferenced_tails(upload)
        return S3Writer(self, upload)

    def read(self, upload: Upload, start: int, end: int) -> AsyncIterator[bytes]:
        # A plain function, so this answer comes before the response starts: S3 cannot
        # serve the parts of a multipart upload that is not completed.
        self._check_state(upload)
        if upload.storage_state.get("done"):
            return self._stream(upload.storage_state["key"], start, end)
        if upload.is_complete:
            return self._finish_then_stream(upload, start, end)
        raise TusError(409, "the upload is not finished; the object store serves finished uploads only")

    async def _finish_then_stream(self, upload: Upload, start: int, end: int) -> AsyncIterator[bytes]:
        """The record says complete but not that the object was: the instance that stored
        the last byte died around finish(). Finish now (again: completing twice fails
        harmlessly), then serve the object."""
        try:
            await self.finish(upload.copy())
        except ObjectStoreError as error:
            log.info("upload %s: finishing again: %s", upload.id, error.message)
        async for chunk in self._stream(upload.storage_state["key"], start, end):
            yield chunk

    async def _stream(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        response = await call(self.client, "get_object", Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end - 1}")
        body = response["Body"]
        try:
            while True:
                chunk = await trio.to_thread.run_sync(body.read, READ_CHUNK)
                if not chunk:
                    return
                yield chunk
        finally:
            body.close()

    async def get_bytes(self, key: str) -> bytes:
        response = await call(self.client, "get_object", Bucket=self.bucket, Key=key)
        return await trio.to_thread.run_sync(response["Body"].read)

    async def concatenate(self, final: Upload, parts: list[Upload]) -> None:
        parts = [part for part in parts if part.offset > 0]  # empty parts add nothing
        state = final.storage_state
        state.update(parts=[], tail=[])
        if not parts:
            return
        if all(part.offset >= MIN_PART for part in parts[:-1]):
            await self._copy_parts(final, parts)
            return
        # Some part is too small to be a part of its own: stream the bytes through a
        # writer, which cuts them into parts of the right size.
        writer = await self.open_writer(final, 0)
        try:
            for part in parts:
                async for chunk in self._stream(part.storage_state["key"], 0, part.offset):
                    await writer.write(chunk)
            await writer.commit()
        finally:
            await writer.aclose()

    async def _copy_parts(self, final: Upload, parts: list[Upload]) -> None:
        """Server-side copies, up to --s3-concurrency at a time; nothing is downloaded."""
        state = final.storage_state
        ranges = []  # (source key, first byte, last byte)
        for part in parts:
            pieces = math.ceil(part.offset / MAX_COPY_PART)
            piece = math.ceil(part.offset / pieces)
            for first in range(0, part.offset, piece):
                ranges.append((part.storage_state["key"], first, min(part.offset, first + piece) - 1))
        results: list[dict | None] = [None] * len(ranges)
        limiter = trio.CapacityLimiter(self.concurrency)

        errors: list[ObjectStoreError] = []

        async def copy(index: int, source: str, first: int, last: int) -> None:
            try:
                async with limiter:
                    response = await call(
                        self.client, "upload_part_copy", Bucket=self.bucket, Key=state["key"], UploadId=state["mpu"],
                        PartNumber=index + 1, CopySource={"Bucket": self.bucket, "Key": source},
                        CopySourceRange=f"bytes={first}-{last}",
                    )
            except ObjectStoreError as error:
                errors.append(error)  # one plain error for the client, not an ExceptionGroup
                return
            results[index] = {"n": index + 1, "etag": response["CopyPartResult"]["ETag"], "size": last - first + 1}

        async with trio.open_nursery() as nursery:
            for index, (source, first, last) in enumerate(ranges):
                nursery.start_soon(copy, index, source, first, last)
        if errors:
            raise errors[0]
        state["parts"] = results

    async def finish(self, upload: Upload) -> None:
        state = upload.storage_state
        if state.get("done"):
            return
        parts = list(state.get("parts", []))
        tail = state.get("tail", [])
        if tail:
            number = max((p["n"] for p in parts), default=0) + 1
            common = dict(Bucket=self.bucket, Key=state["key"], UploadId=state["mpu"], PartNumber=number)
            if len(tail) == 1:  # the last part may be small: copy the tail object server-side
                response = await call(self.client, "upload_part_copy",
                                      CopySource={"Bucket": self.bucket, "Key": tail[0]["key"]}, **common)
                etag = response["CopyPartResult"]["ETag"]
            else:
                data = b"".join([await self.get_bytes(segment["key"]) for segment in tail])
                etag = (await call(self.client, "upload_part", Body=data, **common))["ETag"]
            parts.append({"n": number, "etag": etag, "size": sum(t["size"] for t in tail)})
        if parts:
            await call(self.client, "complete_multipart_upload", Bucket=self.bucket, Key=state["key"],
                       UploadId=state["mpu"], MultipartUpload={
                           "Parts": [{"PartNumber": p["n"], "ETag": p["etag"]} for p in sorted(parts, key=lambda p: p["n"])]
                       })
        else:  # S3 cannot complete a multipart upload of no parts: an empty object it is
            await call(self.client, "put_object", Bucket=self.bucket, Key=state["key"], Body=b"")
            await call(self.client, "abort_multipart_upload", ignore=("NoSuchUpload",),
                       Bucket=self.bucket, Key=state["key"], UploadId=state["mpu"])
        upload.storage_state = {"key": state["key"], "done": True, "size": sum(p["size"] for p in parts)}
        await self._delete_tails(upload.id, keep=())

    async def remove(self, upload: Upload) -> None:
        state = upload.storage_state
        if not state.get("key"):
            return
        if state.get("mpu"):
            await call(self.client, "abort_multipart_upload", ignore=("NoSuchUpload",),
                       Bucket=self.bucket, Key=state["key"], UploadId=state["mpu"])
        await call(self.client, "delete_object", ignore=("NoSuchKey",), Bucket=self.bucket, Key=state["key"])
        await self._delete_tails(upload.id, keep=())

    # -- temporary tail objects ------------------------------------------------------

    async def _delete_unreferenced_tails(self, upload: Upload) -> None:
        keep = {segment["key"] for segment in upload.storage_state.get("tail", [])}
        await self._delete_tails(upload.id, keep)

    async def _delete_tails(self, upload_id: str, keep) -> None:
        listing = await call(self.client, "list_objects_v2", Bucket=self.bucket, Prefix=self.tail_prefix(upload_id))
        stale = [{"Key": item["Key"]} for item in listing.get("Contents", []) if item["Key"] not in keep]
        if stale:
            await call(self.client, "delete_objects", Bucket=self.bucket, Delete={"Objects": stale, "Quiet": True})
