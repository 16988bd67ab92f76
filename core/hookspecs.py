"""The whole tuspluggy plugin contract, and nothing else.

A plugin is a module (or object) named by an entry point in the ``tuspluggy`` group.
It implements any of the hooks below with ``@tuspluggy.hookimpl``. Hooks are called at
start-up only, always with keyword arguments, so an implementation may accept a subset of
the arguments. They are synchronous: they hand over factories and options; requests then
call the objects those factories build (see interfaces.py), never pluggy.

A plugin whose hook name matches no hookspec (a typo), takes an argument its hookspec does
not have, or raises in a registration hook is marked broken and not loaded: `tuspluggy
plugins` shows why, and `serve` names it at start-up. docs/plugins.md documents each hook;
tests/test_plugins_docs.py keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("tuspluggy")
hookimpl = pluggy.HookimplMarker("tuspluggy")


@hookspec
def tus_add_options(add_option: Callable[..., None]) -> None:
    """Contribute command-line options to ``tuspluggy serve`` (and ``cleanup``).

    Called once when the command line is built, before anything is parsed.

    :param add_option: ``add_option(name, *, default=None, help="", type=str, choices=None,
        env_aliases=())``. ``name`` is the long flag without dashes (``"hooks-nats-urls"``);
        the value is then ``config.hooks_nats_urls``. Every option can also be set with
        ``TUSPLUGGY_<NAME_IN_UPPER_SNAKE>``. ``type`` is ``str``, ``int``, ``float``, ``bool``
        (a switch that takes yes/no, true/false, 1/0) or ``list`` (comma-separated).
    :return: nothing.
    """


@hookspec
def tus_register_storages(register: Callable[..., None]) -> None:
    """Offer data storages, selectable with ``--storage NAME``.

    Called once at start-up.

    :param register: ``register(name, factory)``. ``factory(ctx: PluginContext) -> Storage``
        is called only if ``--storage`` selects ``name``.
    :return: nothing.
    """


@hookspec
def tus_register_info_stores(register: Callable[..., None]) -> None:
    """Offer info stores (where upload records live), selectable with ``--info-storage NAME``.

    Called once at start-up.

    :param register: ``register(name, factory)``. ``factory(ctx: PluginContext) -> InfoStore``
        is called only if ``--info-storage`` selects ``name``.
    :return: nothing.
    """


@hookspec
def tus_register_notifiers(register: Callable[..., None]) -> None:
    """Offer notifiers, which receive upload events (hooks).

    Called once at start-up. Every registered factory is called; a notifier whose options
    are not set returns None and stays off, so installing a plugin never changes behaviour
    until the user configures it.

    :param register: ``register(name, factory)``. ``factory(ctx: PluginContext) -> Notifier | None``
        (or a list of notifiers, e.g. one per configured URL; each needs its own ``name``).
        A notifier with ``async aclose()`` is closed at shutdown.
    :return: nothing.
    """


@hookspec
def tus_startup(ctx: Any) -> None:
    """Called once when the server has built its storage, info store and notifiers, before
    the first request (in each worker process). ``ctx`` is the PluginContext. Keep it quick
    and non-blocking: to start background work, use ``ctx.aio`` (asyncio libraries) or open
    resources lazily. An exception stops the server with an error naming the plugin.

    :return: nothing.
    """
