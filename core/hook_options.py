"""Options of the hook system itself (each notifier plugin declares its own)."""

from __future__ import annotations

from .hook_formats import DEFAULT_EVENTS, EVENTS, FORMATS
from .options import Option


def hook_options() -> list[Option]:
    o = Option
    return [
        o("hooks", list(DEFAULT_EVENTS),
          f"Events sent to notifiers, comma-separated, from: {', '.join(EVENTS)} (pre-access is opt-in).", list),
        o("hooks-format", "default", "JSON layout of hook payloads.", choices=FORMATS),
        o("hooks-outbox-dir", "", "Directory where post-* events wait for delivery; empty = <data-dir>/.events."),
        o("hooks-retry-delay", 1.0, "Seconds before an undelivered event is retried the first time; doubles each time.",
          float),
        o("hooks-retry-max-delay", 300.0, "Longest wait in seconds between two delivery attempts.", float),
        o("hooks-max-attempts", 0, "Delivery attempts per event and notifier before giving up; 0 = retry forever.",
          int),
        o("hooks-delivery-concurrency", 4, "Events delivered at the same time by each server process.", int),
        o("hooks-poll-interval", 1.0, "Seconds between scans of the outbox for events other workers recorded.",
          float),
    ]
