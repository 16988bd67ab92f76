"""The tus operations, independent of HTTP: create, patch, head, delete, download.

The HTTP adapter (app.py) parses nothing itself: it hands headers, the request info and
the body stream here and turns the result (or a TusError) into a response.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from .errors import StorageFull, TusError, not_found
from .hooks_api import HookDispatcher, NoHooks
from .interfaces import InfoStore, Locker, LockTimeout, RequestInfo, Storage
from .locks import LocalLocker
from .protocol import rules
from .protocol.parse import Checksum
from .upload import Upload, is_valid_upload_id, new_upload_id

log = logging.getLogger("tuspluggy.service")

COALESCE_BYTES = 1024 * 1024  # one storage write (thread hop) per MiB, not per 64 KiB read
PROGRESS_SAVE_SECONDS = 1.0  # how stale HEAD may be during a long PATCH
SHIELD_SECONDS = 15  # time allowed to save what arrived after a disconnect


@dataclass
class ServiceOptions:
    lock_timeout: float = 10
    read_timeout: float = 60
    remove_parts: bool = False


@dataclass
class Created:
    upload: Upload
    finished: bool


class UploadService:
    def __init__(
        self,
        *,
        storage: Storage,
        info_store: InfoStore,
        settings: rules.TusSettings,
        hooks: HookDispatcher | None = None,
        locker: Locker | None = None,
        options: ServiceOptions | None = None,
        base_path: str = "/files",
        metrics=None,
    ) -> None:
        self.base_path = base_path
        self.storage = storage
        self.info = info_store
        self.settings = settings
        self.hooks = hooks or NoHooks()
        self.locker = locker or info_store.make_locker() or LocalLocker()
        self.options = options or ServiceOptions()
        self.metrics = metrics

    # -- helpers -------------------------------------------------------------------

    @asynccontextmanager
    async def _locked(self, upload_id: str):
        try:
            async with self.locker.lock(upload_id, self.options.lock_timeout):
                yield
        except LockTimeout:
            raise TusError(423, "upload is locked by another request; retry shortly", {"Retry-After": "1"}) from None

    async def load(self, upload_id: str) -> Upload:
        if not is_valid_upload_id(upload_id):
            raise not_found()
        upload = await self.info.get(upload_id)
        if upload is None:
            raise not_found()
        return upload

    async def _check_access(self, action: str, upload_id: str, request: RequestInfo) -> None:
        """The opt-in pre-access hook, before an upload is locked. Without it the record
        is read once, under the lock, not also here (a small PATCH's hot path)."""
        if self.hooks.sends("pre-access"):
            await self.hooks.pre_access(action, await self.load(upload_id), request)

    def _expiry(self) -> float | None:
        if not self.settings.has("expiration"):
            return None
        return time.time() + self.settings.expiration

    def _count(self, name: str, *labels: str, amount: float = 1) -> None:
        if self.metrics is not None:
            self.metrics.count(name, *labels, amount=amount)

    # -- creation ------------------------------------------------------------------

    async def create(
        self,
        headers: Mapping[str, str],
        request: RequestInfo,
        body: AsyncIterator[bytes] | None,
    ) -> Created:
        plan = rules.plan_creation(headers, self.settings)
        upload = Upload(
            id=new_upload_id(),
            length=plan.length,
            metadata=plan.metadata,
            storage=self.storage.name,
            is_partial=plan.concat is not None and plan.concat.kind == "partial",
            expires_at=self._expiry(),
        )
        parts: list[Upload] = []
        if plan.concat is not None and plan.concat.kind == "final":
            upload.is_final = True
            upload.expires_at = None
            parts = await self._resolve_parts(plan.concat.part_urls)
            upload.parts = [p.id for p in parts]
            if all(p.length is not None for p in parts):
                upload.length = sum(p.length for p in parts)
                rules.check_length_limit(upload.length, self.settings)

        upload = await self.hooks.pre_create(upload, request)
        if await self.info.get(upload.id) is not None:
            raise TusError(409, f"an upload with id {upload.id!r} already exists")

        await self.storage.create(upload)
        try:
            await self.info.save(upload)
        except BaseException:
            with trio.CancelScope(shield=True):  # no bytes without a record (full disk, store down)
                await self.storage.remove(upload)
            raise
        self._count("created")

        if upload.is_final:
            await self._attach_final(upload, parts, request)
            upload = await self.load(upload.id)
            finished = upload.is_complete
            if not finished:
                await self.hooks.emit("post-create", upload, request)
            return Created(upload, finished)

        if plan.with_body and body is not None:
            try:
                async with self._locked(upload.id):
                    await self._receive_and_record(upload, body, plan.checksum, request, emit_receive=False)
            except TusError as error:
                # The upload exists even though its first bytes were refused: say where.
                error.upload_id = upload.id
                raise
        elif upload.length == 0:
            await self._finish(upload, request)
        if not upload.is_complete:
            await self.hooks.emit("post-create", upload, request)
        # An upload completed within its creation request sends post-finish and no
        # post-create (the Rustus hooks document's warning); _finish has sent it.
        return Created(upload, upload.is_complete)

    async def _resolve_parts(self, urls: tuple[str, ...]) -> list[Upload]:
        parts = []
        base = self.base_path
        for url in urls:
            part_id = rules.part_id_from_url(url, base)
            if part_id is None:
                raise TusError(404, f"partial upload {url[:80]!r} is not an upload of this server")
            part = await self.info.get(part_id) if is_valid_upload_id(part_id) else None
            if part is None:
                raise TusError(404, f"partial upload {part_id[:80]} not found")
            if not part.is_partial:
                raise rules.bad_request(f"upload {part_id} is not a partial upload (Upload-Concat: partial)")
            if not part.is_complete and not self.settings.has("concatenation-unfinished"):
                raise rules.bad_request(f"partial upload {part_id} is not complete")
            if rules.is_expired(part, time.time()):
                raise TusError(410, f"partial upload {part_id} has expired")
            parts.append(part)
        return parts

    async def _attach_final(self, final: Upload, parts: list[Upload], request: RequestInfo | None = None) -> None:
        """Tell unfinished parts about the final waiting for them, then assemble it if
        everything is already there."""
        for part in parts:
            if part.is_complete:
                continue
            async with self._locked(part.id):
                fresh = await self.load(part.id)
                if not fresh.is_complete and final.id not in fresh.finals_waiting:
                    fresh.finals_waiting.append(final.id)
                    await self.info.save(fresh)
        # post-finish of a final made complete by this POST carries this request.
        await self._try_assemble(final.id, request)

    async def _try_assemble(self, final_id: str, request: RequestInfo | None) -> None:
        async with self._locked(final_id):
            final = await self.info.get(final_id)
            if final is None or final.is_complete:
                return
            parts = []
            for part_id in final.parts or []:
                part = await self.info.get(part_id)
                if part is None:
                    log.warning("final upload %s: partial upload %s is gone", final_id, part_id)
                    return
                if not part.is_complete:
                    return
                parts.append(part)
            total = sum(p.length for p in parts)
            if self.settings.max_file_size and total > self.settings.max_file_size:
                log.warning("final upload %s: %d bytes exceed --max-file-size", final_id, total)
                return
            await self.storage.concatenate(final, parts)
            final.length = total
            final.offset = total
            await self.storage.finish(final)
            await self.info.save(final)
        self._count("finished")
        await self.hooks.emit("post-finish", final, request or _internal_request(final))
        if self.options.remove_parts:
            for part in parts:
                await self._remove(part)

    # -- PATCH ---------------------------------------------------------------------

    async def patch(
        self,
        upload_id: str,
        headers: Mapping[str, str],
        request: RequestInfo,
        body: AsyncIterator[bytes],
    ) -> Upload:
        # Header errors need no lock and no record; answer them before anything else.
        if rules.content_type(headers) != rules.OFFSET_OCTET_STREAM:
            raise TusError(415, f"PATCH requires Content-Type: {rules.OFFSET_OCTET_STREAM}")
        await self._check_access("PATCH", upload_id, request)
        async with self._locked(upload_id):
            upload = await self.load(upload_id)
            plan = rules.plan_patch(headers, upload, self.settings, time.time())
            if plan.declared_length is not None:
                upload.length = plan.declared_length
            if upload.is_complete:
                # Nothing left to write: a no-op that echoes the offset (or declares a
                # length equal to what is stored, which completes the upload).
                if plan.declared_length is not None:
                    await self._finish(upload, request)
                return upload
            await self._receive_and_record(upload, body, plan.checksum, request, emit_receive=True)
        return upload

    async def _receive_and_record(
        self,
        upload: Upload,
        body: AsyncIterator[bytes],
        checksum: Checksum | None,
        request: RequestInfo,
        *,
        emit_receive: bool,
    ) -> None:
        start = upload.offset
        if upload.expires_at is not None:
            upload.expires_at = self._expiry()
        failure: BaseException | None = None
        self._count("active", amount=1)
        try:
            await self._receive(upload, body, checksum)
        except BaseException as error:  # Cancelled (disconnect), timeouts, 4xx, disk full
            failure = error
            raise
        finally:
            self._count("active", amount=-1)
            # Record what was stored even when the client went away: it resumes from HEAD.
            with trio.CancelScope(shield=True) as scope:
                scope.deadline = trio.current_time() + SHIELD_SECONDS
                self._count("bytes", amount=upload.offset - start)
                if upload.is_complete:
                    await self._finish(upload, request)  # saves the record, once
                else:
                    if upload.offset != start or failure is None:
                        await self.info.save(upload)
                    if emit_receive and upload.offset != start and failure is None:
                        await self.hooks.emit("post-receive", upload, request)

    async def _receive(self, upload: Upload, body: AsyncIterator[bytes], checksum: Checksum | None) -> None:
        """Stream `body` into the storage, advancing `upload.offset` as bytes are stored.

        On a checksum mismatch the bytes are rolled back and the offset is unchanged. The
        record is saved every PROGRESS_SAVE_SECONDS so a killed server loses little.
        """
        start = upload.offset
        limit = upload.length
        max_body = self.settings.max_body_size
        hasher = hashlib.new(checksum.algorithm) if checksum else None
        writer = await self.storage.open_writer(upload, start)
        pending: list[bytes] = []
        pending_size = 0
        received = 0
        committed = start  # the offset the storage has confirmed as kept
        last_save = trio.current_time()

        async def flush() -> None:
            nonlocal pending, pending_size
            if pending_size:
                data = pending[0] if len(pending) == 1 else b"".join(pending)
                pending, pending_size = [], 0
                await writer.write(data)
                upload.offset += len(data)

        try:
            try:
                iterator = body.__aiter__()
                while True:
                    with trio.move_on_after(self.options.read_timeout) as idle:
                        try:
                            chunk = await iterator.__anext__()
                        except StopAsyncIteration:
                            break
                    if idle.cancelled_caught:
                        raise TusError(408, f"no data received for {self.options.read_timeout:g} seconds")
                    if not chunk:
                        continue
                    received += len(chunk)
                    if max_body and received > max_body:
                        raise TusError(413, f"request body exceeds --max-body-size {max_body}")
                    if limit is not None and start + received > limit:
                        fits = limit - (start + received - len(chunk))
                        chunk = chunk[:fits]
                        if chunk:
                            pending.append(chunk)
                            pending_size += len(chunk)
                            if hasher:
                                hasher.update(chunk)
                        raise TusError(413, f"request body goes past Upload-Length {limit}")
                    if hasher:
                        hasher.update(chunk)
                    pending.append(chunk)
                    pending_size += len(chunk)
                    if pending_size >= COALESCE_BYTES:
                        await flush()
                        if hasher is None and trio.current_time() - last_save >= PROGRESS_SAVE_SECONDS:
                            await writer.commit()
                            committed = upload.offset
                            await self.info.save(upload)
                            last_save = trio.current_time()
                await flush()
                if hasher is not None and hasher.digest() != checksum.digest:
                    await writer.rollback()
                    upload.offset = start
                    raise TusError(460, f"{checksum.algorithm} checksum of the body does not match Upload-Checksum")
                await writer.commit()
            except BaseException as error:
                with trio.CancelScope(shield=True) as scope:
                    scope.deadline = trio.current_time() + SHIELD_SECONDS
                    try:
                        if hasher is not None:
                            # An unverified chunk must not count: drop all of this request.
                            if upload.offset != start or pending_size:
                                await writer.rollback()
                            upload.offset = start
                        else:
                            if not isinstance(error, StorageFull):
                                await flush()  # store as much as arrived
                            await writer.commit()
                    except Exception:
                        # Only what the storage confirmed counts; the client sends the rest again.
                        upload.offset = committed
                        log.exception("upload %s: could not keep the bytes of an interrupted request", upload.id)
                raise
        finally:
            with trio.CancelScope(shield=True):
                await writer.aclose()

    async def _finish(self, upload: Upload, request: RequestInfo) -> None:
        try:
            await self.storage.finish(upload)
        except BaseException:
            # The bytes are stored even if finishing them failed: keep the offset.
            with trio.CancelScope(shield=True):
                await self.info.save(upload)
            raise
        upload.expires_at = None
        await self.info.save(upload)
        self._count("finished")
        await self.hooks.emit("post-finish", upload, request)
        for final_id in list(upload.finals_waiting):
            await self._try_assemble(final_id, request)

    # -- HEAD, GET, DELETE ---------------------------------------------------------

    async def head(self, upload_id: str, request: RequestInfo) -> Upload:
        upload = await self.load(upload_id)
        rules.check_not_expired(upload, time.time())
        await self.hooks.pre_access("HEAD", upload, request)
        return upload

    async def download(self, upload_id: str, request: RequestInfo) -> Upload:
        if not self.settings.has("getting"):
            raise TusError(405, "downloads (the getting extension) are not enabled", {"Allow": "HEAD, PATCH, DELETE"})
        upload = await self.load(upload_id)
        rules.check_not_expired(upload, time.time())
        await self.hooks.pre_access("GET", upload, request)
        if upload.is_final and not upload.is_complete:
            raise TusError(409, "the final upload is still waiting for its partial uploads")
        return upload

    async def terminate(self, upload_id: str, request: RequestInfo) -> None:
        if not self.settings.has("termination"):
            raise TusError(405, "termination is not enabled on this server", {"Allow": "HEAD, PATCH, OPTIONS"})
        await self._check_access("DELETE", upload_id, request)
        async with self._locked(upload_id):
            upload = await self.load(upload_id)
            await self.hooks.pre_terminate(upload, request)
            await self._remove(upload)
        self._count("terminated")
        await self.hooks.emit("post-terminate", upload, request)

    async def _remove(self, upload: Upload) -> None:
        # Record first: a crash in between leaves an orphan file, never a record whose
        # bytes are missing.
        await self.info.delete(upload.id)
        await self.storage.remove(upload)

    # -- expiration ----------------------------------------------------------------

    async def remove_expired(self, now: float | None = None) -> list[str]:
        """Remove every unfinished upload whose expiry has passed; returns their ids."""
        now = time.time() if now is None else now
        removed = []
        # A store that indexes expiry times (Redis, PostgreSQL) lists only the expired ids.
        list_expired = getattr(self.info, "list_expired", None)
        candidates = list_expired(now) if list_expired is not None else self.info.list_ids()
        async for upload_id in candidates:
            upload = await self.info.get(upload_id)
            if upload is None or not rules.is_expired(upload, now):
                continue
            try:
                async with self.locker.lock(upload_id, 0.5):
                    upload = await self.info.get(upload_id)
                    if upload is None or not rules.is_expired(upload, now):
                        continue
                    await self._remove(upload)
                    removed.append(upload_id)
            except LockTimeout:
                continue  # in use right now; the next round will see it
        if removed:
            log.info("removed %d expired upload(s)", len(removed))
        return removed


def _internal_request(upload: Upload) -> RequestInfo:
    return RequestInfo(uri="", method="", remote_addr=None, headers={})
