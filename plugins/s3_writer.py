"""Streaming a PATCH body into an S3 multipart upload, whatever the client's chunk size.

S3 wants every part but the last to be at least 5 MiB; tus clients send any size. The
writer cuts the stream into --s3-part-size parts and uploads up to --s3-concurrency of
them at once (in threads) while the body keeps arriving, so memory stays at about
(concurrency + 1) parts per request. What is left over (the tail, always smaller than a
part) is saved on commit as a small temporary object, so that another instance, or this
one after a restart, can resume the upload: the next writer reads the tail back and puts
it in front of the new bytes.

What the upload record holds (``Upload.storage_state``, never shown to clients or hooks):

    {"key": object key, "mpu": multipart upload id, "done": false,
     "parts": [{"n": 1, "etag": "...", "size": 8388608}, ...],
     "tail":  [{"key": ".tus-tails/<id>/<token>", "size": 12345}, ...]}

The offset always equals the sizes of parts plus tail. Each commit writes new tail
objects under fresh names and never overwrites one, so a crash between the commit and
the record's save leaves the old record pointing at intact objects; what no record
references any more is deleted when the next writer opens (under the upload's lock).
"""

from __future__ import annotations

import copy
import uuid
from collections import deque

import trio

from .s3_client import call, call_sync, wait_future

# More tail objects than this are merged into one, so resuming reads few objects.
MAX_TAIL_OBJECTS = 8


def state_size(state: dict) -> int:
    return sum(p["size"] for p in state.get("parts", [])) + sum(t["size"] for t in state.get("tail", []))


class S3Writer:
    def __init__(self, storage, upload) -> None:
        self.storage = storage
        self.upload = upload
        state = upload.storage_state
        self.opened_state = copy.deepcopy(state)
        self.committed_state = copy.deepcopy(state)
        self.parts: list[dict] = list(state.get("parts", []))
        self.tail: list[dict] = list(state.get("tail", []))  # stored tail objects, buffer[:persisted]
        self.buffer = bytearray()
        self.persisted = 0
        self.tail_loaded = not self.tail
        self.inflight: deque[tuple[int, int, object]] = deque()
        self.next_part = max((p["n"] for p in self.parts), default=0) + 1
        self.broken = False

    # -- the UploadWriter protocol ---------------------------------------------------

    async def write(self, data: bytes) -> None:
        if self.broken:
            raise RuntimeError("this writer failed earlier and was reset")
        try:
            await self._load_tail()
            # Make room for the parts this write completes before taking its bytes: a
            # cancellation (client gone) can then only come before the data is accepted,
            # never after, so the service's offset and the stored bytes always agree.
            parts_due = (len(self.buffer) + len(data)) // self.storage.part_size
            while self.inflight and len(self.inflight) + parts_due > self.storage.concurrency:
                await self._settle_oldest()
            self.buffer += data
            while len(self.buffer) >= self.storage.part_size:
                self._send_part()
        except Exception:  # not Cancelled: then the state is intact and the service commits
            self._reset_to_committed()
            raise

    async def commit(self) -> None:
        if self.broken:
            return  # already reset to the last commit: nothing more is durable
        try:
            while self.inflight:
                await self._settle_oldest()
            if len(self.buffer) > self.persisted:
                await self._store_tail()
            state = dict(self.upload.storage_state, parts=list(self.parts), tail=list(self.tail))
            self.upload.storage_state = state
            self.committed_state = copy.deepcopy(state)
        except BaseException:
            # Cancelled too: the service saves the record even when its shielded commit
            # runs out of time (slow object store); it must then say what is really stored.
            self._reset_to_committed()
            raise

    async def rollback(self) -> None:
        await self._drain()
        self.broken = True
        self.buffer = bytearray()
        self.upload.storage_state = copy.deepcopy(self.opened_state)

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True):
            await self._drain()
        self.buffer = bytearray()

    # -- parts and tails ---------------------------------------------------------------

    async def _load_tail(self) -> None:
        if self.tail_loaded:
            return
        # Into a local buffer first: a request cancelled half-way through changes nothing.
        loaded = bytearray()
        for segment in self.tail:
            loaded += await self.storage.get_bytes(segment["key"])
        self.buffer = loaded + self.buffer
        self.persisted = len(loaded)
        self.tail_loaded = True

    def _send_part(self) -> None:
        """Cut a part off the buffer and start its upload (no checkpoint: see write)."""
        size = self.storage.part_size
        body = bytes(self.buffer[:size])
        del self.buffer[:size]
        # The stored tail was smaller than a part, so this part has swallowed all of it.
        self.tail, self.persisted = [], 0
        number = self.next_part
        self.next_part += 1
        state = self.upload.storage_state
        future = self.storage.executor.submit(
            call_sync, self.storage.client, "upload_part", Bucket=self.storage.bucket, Key=state["key"],
            UploadId=state["mpu"], PartNumber=number, Body=body,
        )
        self.inflight.append((number, len(body), future))

    async def _settle_oldest(self) -> None:
        number, size, future = self.inflight[0]
        response = await wait_future(future)
        self.inflight.popleft()
        self.parts.append({"n": number, "etag": response["ETag"], "size": size})

    async def _store_tail(self) -> None:
        if len(self.tail) >= MAX_TAIL_OBJECTS:
            self.tail, self.persisted = [], 0  # rewrite the whole tail as one object
        data = bytes(self.buffer[self.persisted:])
        key = self.storage.tail_key(self.upload.id, uuid.uuid4().hex)
        await call(self.storage.client, "put_object", Bucket=self.storage.bucket, Key=key, Body=data)
        self.tail.append({"key": key, "size": len(data)})
        self.persisted = len(self.buffer)

    async def _drain(self) -> None:
        # A part still uploading after we give up on it could land on a part number the
        # next writer reuses; wait for every one of them before letting go.
        while self.inflight:
            _, _, future = self.inflight.popleft()
            try:
                await wait_future(future)
            except Exception:
                pass

    def _reset_to_committed(self) -> None:
        """After a failed write or commit, go back to what the last commit made durable.

        The service counts a write in the offset as soon as write() returns and saves the
        record after commit() even when it failed; resetting the offset here keeps that
        record from claiming bytes the object store does not have."""
        self.broken = True
        self.upload.storage_state = copy.deepcopy(self.committed_state)
        self.upload.offset = state_size(self.committed_state)
