"""The typed objects plugins hand over, and that requests call directly.

pluggy is used only at start-up to discover factories (see hookspecs.py); every request
then awaits the plain async methods below, with no pluggy call on the hot path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .upload import Upload

if TYPE_CHECKING:
    from .aio import AsyncioPortal
    from .config import Config


@dataclass
class PluginContext:
    """What every factory receives: the parsed options and the shared services of core."""

    config: Config
    aio: AsyncioPortal | None = None
    # Anything a plugin wants to share with another one, by name.
    extras: dict[str, Any] = field(default_factory=dict)


class UploadWriter(Protocol):
    """Appends bytes to one upload, starting at the offset it was opened at."""

    async def write(self, data: bytes) -> None:
        """Store `data` after what was written before. On return the bytes survive a crash
        of this process (they may still be in the OS page cache)."""

    async def commit(self) -> None:
        """Make everything written so far durable, as the configuration asks (fsync when
        --force-fsync). The server saves the new offset only after this returns."""

    async def rollback(self) -> None:
        """Forget every byte this writer wrote (a checksum mismatch): the upload is as it
        was when the writer was opened."""

    async def aclose(self) -> None:
        """Release what the writer holds. Called once, after commit or rollback or neither."""


@runtime_checkable
class Storage(Protocol):
    """Where the bytes of uploads live."""

    #: Stored in `Upload.storage` and shown in hook payloads (e.g. "file_storage").
    name: str
    #: tus extensions this storage can serve: any of "termination", "concatenation",
    #: "concatenation-unfinished", "creation-defer-length". Tus-Extension is derived from it.
    capabilities: frozenset[str]

    async def create(self, upload: Upload) -> None:
        """Prepare an empty upload; may set `upload.path` and `upload.storage_state`."""

    async def open_writer(self, upload: Upload, offset: int) -> UploadWriter:
        """A writer appending at `offset` (always the upload's stored offset)."""

    async def read(self, upload: Upload, start: int, end: int) -> AsyncIterator[bytes]:
        """Yield the bytes in [start, end) in bounded chunks."""

    async def concatenate(self, final: Upload, parts: list[Upload]) -> None:
        """Fill `final` with the bytes of `parts`, in order (all are complete)."""

    async def finish(self, upload: Upload) -> None:
        """Called once when the last byte of an upload is stored."""

    async def remove(self, upload: Upload) -> None:
        """Delete the upload's bytes. Removing something already gone is not an error."""


class LockTimeout(Exception):
    """The upload stayed locked by another request for longer than the wait allowed."""


class Locker(Protocol):
    """One request at a time changes an upload."""

    def lock(self, upload_id: str, timeout: float) -> AbstractAsyncContextManager[None]:
        """Hold the upload's lock for the `async with` block; raise LockTimeout after
        `timeout` seconds of waiting. A lock held by a process that dies is released."""


@runtime_checkable
class InfoStore(Protocol):
    """Where upload records live."""

    async def get(self, upload_id: str) -> Upload | None:
        """The record, or None if there is none."""

    async def save(self, upload: Upload) -> None:
        """Create or replace the record atomically: a crash leaves the old or the new one."""

    async def delete(self, upload_id: str) -> None:
        """Remove the record; removing a missing record is not an error."""

    async def list_ids(self) -> AsyncIterator[str]:
        """Every upload id stored (for cleanup and listings). A store that indexes expiry
        may also offer ``list_expired(now) -> AsyncIterator[str]``: the ids whose
        ``expires_at`` is before `now`; the cleanup then reads only those records."""

    def make_locker(self) -> Locker | None:
        """A lock that holds wherever this store is shared (across processes or machines),
        or None when an in-process lock is enough."""


@dataclass
class RequestInfo:
    """What hooks are told about the request that caused an event."""

    uri: str
    method: str
    remote_addr: str | None
    headers: dict[str, list[str]]


@dataclass
class HookCall:
    """One event on its way to one notifier."""

    event: str  # "pre-create", "post-finish"...
    event_id: str  # stable across retries and restarts; receivers de-duplicate on it
    body: str  # the JSON payload in the configured --hooks-format
    upload_id: str
    request: RequestInfo


@dataclass
class HookReply:
    """A notifier's answer to a blocking event. `data` may change the new upload
    (see docs/hooks.md: {"id": ..., "metadata": {...}})."""

    data: dict[str, Any] | None = None


class Notifier(Protocol):
    """Something told about upload events: a script, an HTTP endpoint, a broker..."""

    name: str
    #: False for fire-and-forget transports (AMQP): their answer never cancels a request.
    can_reject: bool

    async def notify(self, call: HookCall) -> HookReply | None:
        """Deliver one event. For a blocking event (pre-*), raising `errors.TusError`
        rejects the request with that answer; any other exception is a delivery failure
        (a 502 naming the hook for pre-* events, 504 for `TimeoutError`; a retry later for
        post-* events). A `HookReply` to pre-create may change the new upload."""
