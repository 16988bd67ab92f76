"""What the upload service asks of the hook system.

The service calls these four methods at fixed points of a request; `events.py` implements
them with notifiers. `NoHooks` is what runs when no notifier is configured.
"""

from __future__ import annotations

from typing import Protocol

from .interfaces import RequestInfo
from .upload import Upload


class HookDispatcher(Protocol):
    async def pre_create(self, upload: Upload, request: RequestInfo) -> Upload:
        """Blocking: may reject (raise TusError) or return the upload with a changed id or
        metadata. Nothing is stored before it returns."""

    async def pre_terminate(self, upload: Upload, request: RequestInfo) -> None:
        """Blocking: may reject (raise TusError); nothing is removed before it returns."""

    async def pre_access(self, action: str, upload: Upload, request: RequestInfo) -> None:
        """Blocking, opt-in: authorise HEAD/PATCH/GET/DELETE on an existing upload."""

    def sends(self, event: str) -> bool:
        """True when `event` reaches at least one notifier (work for it can be skipped otherwise)."""

    async def emit(self, event: str, upload: Upload, request: RequestInfo) -> None:
        """A post-* event. Returns once the event is recorded; delivery happens later."""


class NoHooks:
    async def pre_create(self, upload: Upload, request: RequestInfo) -> Upload:
        return upload

    async def pre_terminate(self, upload: Upload, request: RequestInfo) -> None:
        return None

    async def pre_access(self, action: str, upload: Upload, request: RequestInfo) -> None:
        return None

    def sends(self, event: str) -> bool:
        return False

    async def emit(self, event: str, upload: Upload, request: RequestInfo) -> None:
        return None
