"""tuspluggy-nats: publish tuspluggy upload events to NATS.

Made from tuspluggy's plugin template (``tuspluggy plugin new nats``), then filled in.
Every enabled event (``--hooks``) goes to the subject ``{prefix}.{event}`` (or the one
``--hooks-nats-subject``) with the payload in the chosen ``--hooks-format``, the client's
request headers and ``Hook-Name``/``Event-Id``/``Upload-Id`` as NATS headers. With
``--hooks-nats-wait-for-replies`` each event is a request: a reply other than empty or
``OK`` rejects pre-* events (see notifier.judge_reply).
"""

from __future__ import annotations

from tuspluggy import hookimpl
from tuspluggy.interfaces import PluginContext
from tuspluggy.plugin_manager import PluginLoadError

from .notifier import NatsNotifier

__all__ = ["NatsNotifier"]


@hookimpl
def tus_add_options(add_option):
    add_option("hooks-nats-urls", default=[], type=list,
               help="NATS servers, comma-separated (nats://127.0.0.1:4222); setting it enables NATS hooks.")
    add_option("hooks-nats-prefix", default="tuspluggy", help="Events go to the subject <prefix>.<event>.")
    add_option("hooks-nats-subject", default="", help="One subject for every event instead of <prefix>.<event>.")
    add_option("hooks-nats-wait-for-replies", default=False, type=bool,
               help="Send each event as a request and wait for the reply; a reply other than empty or OK "
                    "rejects pre-* events (yes/no).")
    add_option("hooks-nats-user", default="", help="User name for NATS (needs --hooks-nats-password).")
    add_option("hooks-nats-password", default="", help="Password for NATS (needs --hooks-nats-user).")
    add_option("hooks-nats-token", default="", help="Authentication token for NATS.")
    add_option("hooks-nats-timeout", default=10.0, type=float,
               help="Seconds to connect, to get the server's acknowledgement, or to wait for a reply.")


@hookimpl
def tus_register_notifiers(register):
    def factory(ctx: PluginContext) -> NatsNotifier | None:
        config = ctx.config
        if not config.get("hooks_nats_urls"):
            return None  # not configured: installing the plugin changes nothing
        if bool(config.get("hooks_nats_user")) != bool(config.get("hooks_nats_password")):
            # A start-up error that names the plugin and the fix, not a traceback.
            raise PluginLoadError("plugin 'nats': --hooks-nats-user and --hooks-nats-password need each other")
        return NatsNotifier(ctx)

    register("nats", factory)
