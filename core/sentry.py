"""Error reports to Sentry (``--sentry-dsn``), as Rustus offers; needs the ``sentry`` extra.

Initialised only when a DSN is set, in every serving process. Only sentry-sdk's default
integrations are used: its logging integration turns the "unexpected error" log records
(the 500 answers) into Sentry events with their traceback. The auto-enabled framework
integrations are left off because they assume asyncio and this server runs on trio.
"""

from __future__ import annotations

import logging

log = logging.getLogger("tuspluggy.sentry")


def setup_sentry(config) -> bool:
    dsn = config.get("sentry_dsn")
    if not dsn:
        return False
    try:
        import sentry_sdk
    except ImportError:
        raise SystemExit("--sentry-dsn needs sentry-sdk: pip install 'tuspluggy[sentry]'") from None
    from . import __version__

    sentry_sdk.init(
        dsn=dsn,
        sample_rate=float(config.get("sentry_sample_rate", 1.0)),
        release=f"tuspluggy@{__version__}",
        auto_enabling_integrations=False,
    )
    log.info("sending errors to Sentry")
    return True
