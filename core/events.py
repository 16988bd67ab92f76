"""Upload events and their delivery to notifiers (the hook system).

- Blocking events (pre-create, pre-terminate, and the opt-in pre-access) are sent right
  away to every notifier that can reject (`Notifier.can_reject`), one after the other in
  the order the notifiers were loaded. The first one that rejects or fails stops the
  request: a rejection (`TusError`) reaches the client as the notifier made it; a
  failure becomes 502 (504 for a timeout) naming the hook and the notifier. A notifier
  may answer pre-create with a change of the new upload's id and metadata (see
  `apply_change`, docs/hooks.md).
- Notifiers that cannot reject (AMQP) are told about blocking events through the outbox
  once the blocking notifiers accepted, so they never cancel anything.
- post-* events are written to the durable outbox (outbox.py) before the request is
  answered, then delivered in the background with retries.
"""

from __future__ import annotations

import errno
import logging
import os
import uuid
from typing import Any

import trio

from .errors import StorageFull, TusError
from .hook_formats import EVENTS, render
from .interfaces import HookCall, HookReply, Notifier, RequestInfo
from .outbox import Outbox, RetryPolicy
from .plugin_manager import PluginLoadError  # a start-up error the CLI shows as one line
from .upload import Upload, is_valid_upload_id

log = logging.getLogger("tuspluggy.hooks")

CHANGEABLE = frozenset({"id", "metadata"})


def apply_change(upload: Upload, data: Any, where: str) -> Upload:
    """The upload after a pre-create hook's JSON answer ``{"id": str, "metadata": {str: str}}``
    (both keys optional; `metadata` replaces the whole map; ``null`` or ``{}`` = no change).

    A malformed answer is the hook's fault, not the client's: it raises a 502 naming `where`.
    """
    if data is None:
        return upload

    def invalid(reason: str) -> TusError:
        return TusError(502, f"{where} answered with an invalid change: {reason}")

    if not isinstance(data, dict):
        raise invalid("expected a JSON object")
    unknown = set(data) - CHANGEABLE
    if unknown:
        raise invalid(f"unknown key(s) {', '.join(sorted(unknown))}; allowed: id, metadata")
    changed = upload.copy()
    if "id" in data and data["id"] is not None:
        new_id = data["id"]
        if not isinstance(new_id, str) or not is_valid_upload_id(new_id):
            raise invalid("id must be 1-128 characters of A-Z a-z 0-9 . _ - starting with a letter or digit")
        changed.id = new_id
    if "metadata" in data and data["metadata"] is not None:
        metadata = data["metadata"]
        if not isinstance(metadata, dict):
            raise invalid("metadata must be an object of strings")
        for key, value in metadata.items():
            if not key or not key.isascii() or any(c in key for c in " ,\t\r\n") or not isinstance(value, str):
                raise invalid(f"metadata key {key[:40]!r} must be non-empty ASCII without spaces or commas, "
                              "with a string value")
        changed.metadata = dict(metadata)
    return changed


class EventDispatcher:
    def __init__(self, notifiers: list[Notifier], *, events: set[str], fmt: str, outbox: Outbox | None,
                 metrics: Any = None) -> None:
        self.notifiers = list(notifiers)
        self.events = set(events)
        self.fmt = fmt
        self.outbox = outbox
        self.metrics = metrics
        self.blocking = [n for n in self.notifiers if getattr(n, "can_reject", True)]
        self.told_later = [n for n in self.notifiers if not getattr(n, "can_reject", True)]

    # -- blocking events ----------------------------------------------------------------

    async def pre_create(self, upload: Upload, request: RequestInfo) -> Upload:
        return await self._blocking("pre-create", upload, request, may_change=True)

    async def pre_terminate(self, upload: Upload, request: RequestInfo) -> None:
        await self._blocking("pre-terminate", upload, request)

    async def pre_access(self, action: str, upload: Upload, request: RequestInfo) -> None:
        # `action` is the request's method, which the payload already carries.
        await self._blocking("pre-access", upload, request)

    def sends(self, event: str) -> bool:
        return event in self.events and bool(self.notifiers)

    async def _blocking(self, event: str, upload: Upload, request: RequestInfo, *, may_change: bool = False) -> Upload:
        if not self.sends(event):
            return upload
        event_id = str(uuid.uuid4())
        for notifier in self.blocking:
            call = HookCall(event, event_id, render(self.fmt, upload, request), upload.id, request)
            where = f"{event} hook of notifier {notifier.name}"
            try:
                reply = await notifier.notify(call)
            except TusError as rejection:
                self._count(notifier.name, event, "rejected")
                log.info("%s rejected upload %s: %s %s", where, upload.id, rejection.status, rejection.message)
                raise
            except (TimeoutError, trio.TooSlowError) as error:
                self._count(notifier.name, event, "failed")
                log.error("%s timed out: %s", where, error)
                raise TusError(504, f"{where} timed out{_detail(error)}") from None
            except Exception as error:
                self._count(notifier.name, event, "failed")
                log.error("%s failed: %s", where, _detail(error) or type(error).__name__)
                raise TusError(502, f"{where} failed{_detail(error)}") from None
            self._count(notifier.name, event, "ok")
            if may_change and isinstance(reply, HookReply) and reply.data is not None:
                upload = apply_change(upload, reply.data, where)
        if self.told_later:
            call = HookCall(event, event_id, render(self.fmt, upload, request), upload.id, request)
            await self._record(call, self.told_later)
        return upload

    # -- post-* events --------------------------------------------------------------------

    async def emit(self, event: str, upload: Upload, request: RequestInfo) -> None:
        if not self.sends(event):
            return
        call = HookCall(event, str(uuid.uuid4()), render(self.fmt, upload, request), upload.id, request)
        await self._record(call, self.notifiers)

    async def _record(self, call: HookCall, notifiers: list[Notifier]) -> None:
        assert self.outbox is not None
        # Shielded: once a request decided an event happened, a disconnect must not drop it.
        with trio.CancelScope(shield=True):
            try:
                await self.outbox.record(call, [n.name for n in notifiers])
            except OSError as error:
                if error.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise StorageFull(f"no room to record the {call.event} event; retry later") from error
                raise

    async def deliver_forever(self) -> None:
        assert self.outbox is not None
        await self.outbox.run({n.name: n.notify for n in self.notifiers})

    def _count(self, notifier: str, event: str, outcome: str) -> None:
        if self.metrics is not None and hasattr(self.metrics, "hook_delivery"):
            self.metrics.hook_delivery(notifier, event, outcome)


def _detail(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f": {text[:300]}" if text else ""


def outbox_dir(config) -> str:
    return config.get("hooks_outbox_dir") or os.path.join(config.data_dir, ".events")


def _flatten(notifiers) -> list[Notifier]:
    flat = []
    for notifier in notifiers:
        if isinstance(notifier, (list, tuple)):
            flat.extend(notifier)
        elif notifier is not None:
            flat.append(notifier)
    return flat


async def build_dispatcher(config, notifiers, ctx) -> tuple[EventDispatcher, list, list]:
    """The dispatcher for `notifiers`, the background tasks it needs, and its closers."""
    notifiers = _flatten(notifiers)
    events = set(config.get("hooks") or [])
    unknown = events - set(EVENTS)
    if unknown:
        raise PluginLoadError(f"--hooks: unknown event(s) {', '.join(sorted(unknown))}; known: {', '.join(EVENTS)}")
    names = [n.name for n in notifiers]
    if len(set(names)) != len(names):
        raise PluginLoadError(f"two notifiers share a name: {names}; names must be unique")
    metrics = ctx.extras.get("metrics") if ctx is not None else None
    closers = [n.aclose for n in notifiers if hasattr(n, "aclose")]
    outbox = None
    background = []
    if notifiers:
        outbox = Outbox(
            outbox_dir(config),
            policy=RetryPolicy(
                first_delay=config.get("hooks_retry_delay", 1.0),
                max_delay=config.get("hooks_retry_max_delay", 300.0),
                max_attempts=config.get("hooks_max_attempts", 0),
            ),
            poll_interval=config.get("hooks_poll_interval", 1.0),
            concurrency=config.get("hooks_delivery_concurrency", 4),
            on_attempt=getattr(metrics, "hook_delivery", None),
        )
        if metrics is not None and hasattr(metrics, "undelivered_from"):
            metrics.undelivered_from(outbox.pending_count)
    dispatcher = EventDispatcher(notifiers, events=events, fmt=config.get("hooks_format", "default"),
                                 outbox=outbox, metrics=metrics)
    if outbox is not None:
        background.append(dispatcher.deliver_forever)
        if ctx is not None:
            ctx.extras["outbox"] = outbox  # the read API for dashboards: list_deliveries(), retry()
        for notifier in notifiers:
            log.info("notifier %s gets events: %s", notifier.name, ", ".join(e for e in EVENTS if e in events))
    return dispatcher, background, closers
