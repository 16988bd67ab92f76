"""A durable outbox for hook events: nothing is lost when a receiver, a broker or this
server is down for a while.

Layout of the outbox directory (one pair of files per event):

    pending/<ns-timestamp>-<event-id>.event   the event, written once (fsync'd) before the
                                              request that caused it is answered
    pending/<ns-timestamp>-<event-id>.state   per-notifier progress: delivered, attempts, last error
    failed/...                                events given up after --hooks-max-attempts
                                              (only when that option is not 0 = retry forever)

A background task (`Outbox.run`) delivers due events to each notifier that has not had
them yet, with exponential backoff between attempts. Several processes (``--workers``) may
share one outbox: an event is delivered by whoever holds an exclusive ``flock`` on its
``.event`` file, and the kernel drops that lock when a process dies, so a crash never
leaves an event claimed forever. Deliveries are at least once: a crash between a
successful send and the state update re-sends it, with the same event id, which receivers
use to de-duplicate (HTTP ``Idempotency-Key``, AMQP ``message_id``, Celery task id).
"""

from __future__ import annotations

import collections
import fcntl
import json
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import trio

from .fsutil import atomic_write, fsync_dir
from .interfaces import HookCall, RequestInfo

log = logging.getLogger("tuspluggy.hooks")

EVENT_SUFFIX = ".event"
STATE_SUFFIX = ".state"
RECENT_KEPT = 200  # completed deliveries remembered in memory for dashboards


@dataclass
class RetryPolicy:
    first_delay: float = 1.0  # seconds before the first retry
    max_delay: float = 300.0  # the delay doubles after each failure, up to this
    max_attempts: int = 0  # per notifier; 0 = never give up
    attempt_timeout: float = 120.0  # a notifier call taking longer counts as failed

    def delay(self, attempts: int) -> float:
        base = min(self.max_delay, self.first_delay * (2 ** max(0, attempts - 1)))
        return base * random.uniform(0.8, 1.0)  # spread retries of many events apart


@dataclass
class Delivery:
    """One event's progress towards one notifier (what a dashboard shows)."""

    event_id: str
    event: str
    upload_id: str
    notifier: str
    state: str  # "pending" | "delivered" | "failed"
    attempts: int
    last_error: str | None
    recorded_at: float


@dataclass
class _State:
    delivered: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    last_error: dict[str, str] = field(default_factory=dict)


class Outbox:
    def __init__(self, directory: str, *, policy: RetryPolicy | None = None, fsync: bool = True,
                 poll_interval: float = 1.0, concurrency: int = 4,
                 on_attempt: Callable[[str, str, str], None] | None = None) -> None:
        self.directory = os.path.abspath(directory)
        self.pending_dir = os.path.join(self.directory, "pending")
        self.failed_dir = os.path.join(self.directory, "failed")
        self._make_dirs()
        self._sweep_temporary_files()
        self.policy = policy or RetryPolicy()
        self.fsync = fsync
        # Events written by other worker processes are noticed at the next scan.
        self.poll_interval = poll_interval
        self.concurrency = max(1, concurrency)
        # Told (notifier, event, "ok" | "failed") after each attempt, e.g. for metrics.
        self.on_attempt = on_attempt
        self._wake = trio.Event()
        # In-memory only: after a restart every pending event is due at once.
        self._next_try: dict[str, float] = {}
        self._in_flight: set[str] = set()
        self._last_ns = 0
        self._recent: collections.deque[Delivery] = collections.deque(maxlen=RECENT_KEPT)

    # -- recording ----------------------------------------------------------------

    async def record(self, call: HookCall, notifiers: list[str]) -> None:
        """Write the event durably; returns once it survives a crash of this machine."""
        record = {
            "event_id": call.event_id,
            "event": call.event,
            "upload_id": call.upload_id,
            "body": call.body,
            "request": asdict(call.request),
            "notifiers": list(notifiers),
            "recorded_at": time.time(),
        }
        # Sorting by name is recording order; the upload id in the name keeps each upload's
        # events in that order without opening the files.
        self._last_ns = max(time.time_ns(), self._last_ns + 1)
        name = f"{self._last_ns:020d}-{call.upload_id}-{call.event_id}{EVENT_SUFFIX}"
        data = json.dumps(record, ensure_ascii=False).encode()
        await trio.to_thread.run_sync(partial(atomic_write, os.path.join(self.pending_dir, name), data, fsync=self.fsync))
        self._wake.set()

    # -- delivering ---------------------------------------------------------------

    async def run(self, notifiers: Mapping[str, Callable[[HookCall], Awaitable[Any]]]) -> None:
        """Deliver until cancelled. `notifiers` maps a notifier name to its notify method."""
        limiter = trio.CapacityLimiter(self.concurrency)
        async with trio.open_nursery() as nursery:
            while True:
                self._wake = trio.Event()
                wait = self.poll_interval
                now = time.monotonic()
                try:
                    names = await trio.to_thread.run_sync(self._pending_names)
                except OSError as error:
                    # E.g. the directory was removed under us: say so and keep trying.
                    log.error("hook outbox %s cannot be read: %s", self.pending_dir, error)
                    await trio.sleep(self.poll_interval)
                    await trio.to_thread.run_sync(self._make_dirs)
                    continue
                # Forget retry times of events another process finished.
                listed = set(names)
                for gone in [n for n in self._next_try if n not in listed]:
                    del self._next_try[gone]
                # Per upload, events go out in the order they happened: a later event waits
                # while an earlier one of the same upload is being sent or awaits a retry.
                waiting_uploads: set[str] = set()
                for name in names:
                    upload = _upload_of(name)
                    if upload in waiting_uploads:
                        continue
                    if name in self._in_flight:
                        waiting_uploads.add(upload)
                        continue
                    due = self._next_try.get(name, 0.0)
                    if due > now:
                        waiting_uploads.add(upload)
                        wait = min(wait, due - now)
                        continue
                    waiting_uploads.add(upload)
                    self._in_flight.add(name)
                    await limiter.acquire_on_behalf_of(name)
                    nursery.start_soon(self._deliver_one, name, notifiers, limiter)
                with trio.move_on_after(max(wait, 0.01)):
                    await self._wake.wait()

    def _make_dirs(self) -> None:
        try:
            os.makedirs(self.pending_dir, exist_ok=True)
            os.makedirs(self.failed_dir, exist_ok=True)
        except OSError as error:
            log.error("hook outbox %s cannot be created: %s", self.directory, error)

    def _sweep_temporary_files(self, older_than: float = 300) -> None:
        """Remove half-written event files a crash left behind (old enough that no other
        worker can still be writing them)."""
        cutoff = time.time() - older_than
        for directory in (self.pending_dir, self.failed_dir):
            try:
                for entry in os.scandir(directory):
                    if entry.name.startswith(".tmp-") and entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
            except OSError:
                pass

    def _pending_names(self) -> list[str]:
        return sorted(n for n in os.listdir(self.pending_dir) if n.endswith(EVENT_SUFFIX))

    async def _deliver_one(self, name: str, notifiers, limiter: trio.CapacityLimiter) -> None:
        try:
            await self._deliver_claimed(name, notifiers)
        except Exception:
            log.exception("hook outbox: delivering %s failed unexpectedly; it stays pending", name)
            self._next_try[name] = time.monotonic() + self.policy.delay(1)
        finally:
            self._in_flight.discard(name)
            limiter.release_on_behalf_of(name)
            self._wake.set()  # a finished delivery may make room for the next one

    async def _deliver_claimed(self, name: str, notifiers) -> None:
        path = os.path.join(self.pending_dir, name)
        claim = _claim(path)
        if claim is None:  # delivered and removed meanwhile, or another process has it
            self._next_try[name] = time.monotonic() + self.poll_interval
            return
        fd, record = claim
        try:
            state = self._read_state(path)
            call = HookCall(
                event=record["event"],
                event_id=record["event_id"],
                body=record["body"],
                upload_id=record["upload_id"],
                request=RequestInfo(**record["request"]),
            )
            retry_at = None
            for notifier in record["notifiers"]:
                if notifier in state.delivered or notifier in state.failed:
                    continue
                notify = notifiers.get(notifier)
                if notify is None:
                    log.warning("hook %s event %s: notifier %s is no longer configured; not delivered to it",
                                call.event, call.event_id, notifier)
                    state.failed.append(notifier)
                    state.last_error[notifier] = "notifier not configured"
                    continue
                try:
                    with trio.fail_after(self.policy.attempt_timeout):
                        await notify(call)
                except Exception as error:
                    self._report(notifier, call.event, "failed")
                    attempts = state.attempts[notifier] = state.attempts.get(notifier, 0) + 1
                    reason = _reason(error)
                    state.last_error[notifier] = reason
                    if self.policy.max_attempts and attempts >= self.policy.max_attempts:
                        state.failed.append(notifier)
                        log.error("hook %s event %s to notifier %s failed %d times, giving up: %s",
                                  call.event, call.event_id, notifier, attempts, reason)
                    else:
                        delay = self.policy.delay(attempts)
                        retry_at = delay if retry_at is None else min(retry_at, delay)
                        log.warning("hook %s event %s to notifier %s failed (attempt %d), retrying in %.1fs: %s",
                                    call.event, call.event_id, notifier, attempts, delay, reason)
                else:
                    self._report(notifier, call.event, "ok")
                    state.delivered.append(notifier)
                    state.last_error.pop(notifier, None)
            remaining = [n for n in record["notifiers"] if n not in state.delivered and n not in state.failed]
            if remaining:
                await trio.to_thread.run_sync(self._write_state, path, state)
                self._next_try[name] = time.monotonic() + (retry_at or self.policy.first_delay)
            elif state.failed:
                await trio.to_thread.run_sync(self._move_to_failed, path, state)
                self._next_try.pop(name, None)
            else:
                await trio.to_thread.run_sync(self._remove, path)
                self._next_try.pop(name, None)
                for notifier in record["notifiers"]:
                    self._recent.append(Delivery(
                        event_id=call.event_id, event=call.event, upload_id=call.upload_id, notifier=notifier,
                        state="delivered", attempts=state.attempts.get(notifier, 0) + 1, last_error=None,
                        recorded_at=record["recorded_at"],
                    ))
        finally:
            os.close(fd)

    def _report(self, notifier: str, event: str, outcome: str) -> None:
        if self.on_attempt is not None:
            try:
                self.on_attempt(notifier, event, outcome)
            except Exception:
                log.exception("hook outbox: the attempt observer failed")

    # -- state files ----------------------------------------------------------------

    @staticmethod
    def _state_path(event_path: str) -> str:
        return event_path[: -len(EVENT_SUFFIX)] + STATE_SUFFIX

    def _read_state(self, event_path: str) -> _State:
        try:
            with open(self._state_path(event_path), "rb") as file:
                return _State(**json.loads(file.read()))
        except FileNotFoundError:
            return _State()

    def _write_state(self, event_path: str, state: _State) -> None:
        atomic_write(self._state_path(event_path), json.dumps(asdict(state)).encode(), fsync=self.fsync)

    def _remove(self, event_path: str) -> None:
        for path in (self._state_path(event_path), event_path):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def _move_to_failed(self, event_path: str, state: _State) -> None:
        self._write_state(event_path, state)
        base = os.path.basename(event_path)
        os.replace(self._state_path(event_path), os.path.join(self.failed_dir, self._state_path(base)))
        os.replace(event_path, os.path.join(self.failed_dir, base))
        if self.fsync:
            fsync_dir(self.failed_dir)

    # -- the read API (dashboards, operators) ------------------------------------------

    def list_deliveries(self, *, recent: bool = True) -> list[Delivery]:
        """Every event still in the outbox, one row per notifier, oldest first; with
        `recent`, followed by the last RECENT_KEPT deliveries this process completed
        (those are no longer on disk)."""
        rows = []
        for directory in (self.pending_dir, self.failed_dir):
            for name in sorted(os.listdir(directory)):
                if not name.endswith(EVENT_SUFFIX):
                    continue
                path = os.path.join(directory, name)
                try:
                    with open(path, "rb") as file:
                        record = json.loads(file.read())
                except (FileNotFoundError, ValueError):
                    continue  # delivered (removed) while we looked
                state = self._read_state(path)
                for notifier in record["notifiers"]:
                    status = ("delivered" if notifier in state.delivered
                              else "failed" if notifier in state.failed else "pending")
                    rows.append(Delivery(
                        event_id=record["event_id"], event=record["event"], upload_id=record["upload_id"],
                        notifier=notifier, state=status, attempts=state.attempts.get(notifier, 0),
                        last_error=state.last_error.get(notifier), recorded_at=record["recorded_at"],
                    ))
        if recent:
            rows.extend(self._recent)
        return rows

    def retry(self, event_id: str) -> bool:
        """Try a failed (given up) or waiting event again now. False if it is not here."""
        suffix = f"-{event_id}{EVENT_SUFFIX}"
        for name in os.listdir(self.failed_dir):
            if name.endswith(suffix):
                failed_path = os.path.join(self.failed_dir, name)
                state = self._read_state(failed_path)
                for notifier in state.failed:
                    state.attempts.pop(notifier, None)
                state.failed = []
                atomic_write(self._state_path(failed_path), json.dumps(asdict(state)).encode(), fsync=self.fsync)
                os.replace(self._state_path(failed_path), self._state_path(os.path.join(self.pending_dir, name)))
                os.replace(failed_path, os.path.join(self.pending_dir, name))
                self._next_try.pop(name, None)
                self._wake.set()
                return True
        for name in os.listdir(self.pending_dir):
            if name.endswith(suffix):
                self._next_try.pop(name, None)
                self._wake.set()
                return True
        return False

    def pending_count(self) -> int:
        return len(self._pending_names())


def _upload_of(name: str) -> str:
    """The upload id inside ``<20-digit ns>-<upload id>-<36-char event id>.event``."""
    return name[21: -len(EVENT_SUFFIX) - 37]


def _claim(path: str) -> tuple[int, dict] | None:
    """Open and exclusively lock an event file: (fd, record), or None if it is gone or
    someone else is delivering it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(fd).st_nlink == 0:  # finished by the previous holder of the lock
            os.close(fd)
            return None
        with os.fdopen(os.dup(fd), "rb") as file:
            record = json.loads(file.read())
        return fd, record
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise


def _reason(error: BaseException) -> str:
    if isinstance(error, trio.TooSlowError):
        return "timed out"
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
