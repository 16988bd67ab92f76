"""Readiness: can this server store uploads and deliver events right now?

A component may offer ``async def ready() -> None`` that raises (or returns False) when
its backend cannot be reached; components without it are taken as ready. The info store
is also asked for a record that cannot exist, which reaches its backend (a file system,
Redis, PostgreSQL) through the same path a HEAD takes.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass

import trio

log = logging.getLogger("tuspluggy.health")

CHECK_SECONDS = 5  # a backend slower than this counts as unreachable
PROBE_ID = "tuspluggy-health-probe"  # a valid id that no upload is ever given


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


async def _check(name: str, call) -> Check:
    try:
        with trio.fail_after(CHECK_SECONDS):
            result = call()
            if inspect.isawaitable(result):
                result = await result
    except trio.TooSlowError:
        return Check(name, False, f"no answer within {CHECK_SECONDS}s")
    except Exception as error:  # any failure means "not ready"; say which
        log.warning("readiness check %s failed: %s", name, error)
        return Check(name, False, " ".join(f"{type(error).__name__}: {error}".split())[:200])
    if result is False:
        return Check(name, False, "not ready")
    return Check(name, True)


async def readiness(storage, info_store, notifiers) -> list[Check]:
    checks = []
    if hasattr(storage, "ready"):
        checks.append(await _check("storage", storage.ready))
    else:
        checks.append(Check("storage", True))
    info_check = getattr(info_store, "ready", None) or (lambda: info_store.get(PROBE_ID))
    checks.append(await _check("info-store", info_check))
    for notifier in notifiers:
        name = f"notifier {getattr(notifier, 'name', type(notifier).__name__)}"
        if hasattr(notifier, "ready"):
            checks.append(await _check(name, notifier.ready))
    return checks


def render(checks: list[Check]) -> tuple[int, str]:
    """503 with one line per failed check, or 200 "ok"."""
    failed = [c for c in checks if not c.ok]
    if not failed:
        return 200, "ok"
    return 503, "; ".join(f"{c.name}: {c.detail}" for c in failed)
