"""Upload events and their delivery to notifiers (the hook system).

Placeholder until the hooks issue: no notifier is called yet.
"""

from __future__ import annotations

from .hooks_api import HookDispatcher, NoHooks


async def build_dispatcher(config, notifiers, ctx) -> tuple[HookDispatcher, list, list]:
    """The dispatcher for `notifiers`, the background tasks it needs, and its closers."""
    return NoHooks(), [], []
