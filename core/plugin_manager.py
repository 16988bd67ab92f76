"""Finding plugins and collecting what they offer.

Built-in plugins are entry points of tuspluggy's own distribution in the ``tuspluggy``
group, so they load exactly as a third-party plugin does. Entry points are loaded one at a
time: a plugin that fails to import or registers a misspelled hook is reported by name
and skipped, and ``serve`` refuses to start only if the user selected something it offers.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import hookspecs
from .options import Option

ENTRY_POINT_GROUP = "tuspluggy"
log = logging.getLogger("tuspluggy.plugins")


@dataclass
class PluginStatus:
    name: str
    distribution: str | None
    version: str | None
    builtin: bool
    error: str | None = None
    disabled: bool = False


class PluginLoadError(Exception):
    """A plugin, named in the message, could not be used."""


class PluginManager(pluggy.PluginManager):
    def __init__(self) -> None:
        super().__init__("tuspluggy")
        self.add_hookspecs(hookspecs)
        self.statuses: list[PluginStatus] = []


def _entry_points() -> Iterable[importlib.metadata.EntryPoint]:
    return importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)


def make_plugin_manager(
    *,
    load_entrypoints: bool = True,
    disabled: Iterable[str] = (),
    plugins: Iterable[tuple[str, Any]] = (),
) -> PluginManager:
    """A fresh manager: entry-point plugins (minus `disabled`) plus `plugins` given as
    (name, module-or-object) pairs, which tests use to register only what they need."""
    pm = PluginManager()
    disabled = set(disabled)
    if load_entrypoints:
        for ep in _entry_points():
            dist = ep.dist.name if ep.dist else None
            status = PluginStatus(
                name=ep.name,
                distribution=dist,
                version=ep.dist.version if ep.dist else None,
                builtin=dist == "tuspluggy",
            )
            pm.statuses.append(status)
            if ep.name in disabled:
                status.disabled = True
                pm.set_blocked(ep.name)
                continue
            try:
                module = ep.load()
                pm.register(module, name=ep.name)
            except Exception as error:  # a broken plugin must not take the server down
                status.error = f"{type(error).__name__}: {error}"
                log.error("plugin %s (%s) failed to load: %s", ep.name, dist, status.error)
    for name, plugin in plugins:
        try:
            pm.register(plugin, name=name)
            pm.statuses.append(PluginStatus(name=name, distribution=None, version=None, builtin=False))
        except Exception as error:
            pm.statuses.append(
                PluginStatus(name=name, distribution=None, version=None, builtin=False, error=str(error))
            )
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as error:
        # A hookimpl whose name matches no hookspec: almost always a typo.
        raise PluginLoadError(f"plugin {error.plugin_name!r}: {error}") from error
    return pm


@dataclass
class Registry:
    """Everything the loaded plugins offer, by name, with who offered it."""

    storages: dict[str, Callable] = field(default_factory=dict)
    info_stores: dict[str, Callable] = field(default_factory=dict)
    notifiers: dict[str, Callable] = field(default_factory=dict)
    options: list[Option] = field(default_factory=list)
    providers: dict[str, str] = field(default_factory=dict)  # "storage:file-storage" -> plugin


def _call_each(pm: PluginManager, hook_name: str, make_arg: Callable[[str], Callable]) -> None:
    """Call one hook plugin by plugin, so an error names the plugin that raised it."""
    caller = getattr(pm.hook, hook_name)
    for impl in caller.get_hookimpls():
        plugin_name = pm.get_name(impl.plugin) or repr(impl.plugin)
        arg = make_arg(plugin_name)
        try:
            impl.function(**{name: arg for name in impl.argnames})
        except Exception as error:
            raise PluginLoadError(f"plugin {plugin_name!r} failed in {hook_name}: {type(error).__name__}: {error}") from error


def collect(pm: PluginManager, core_options: Iterable[Option] = ()) -> Registry:
    registry = Registry(options=list(core_options))

    def registrar(kind: str, table: dict[str, Callable]):
        def make(plugin_name: str):
            def register(name: str, factory: Callable) -> None:
                if name in table:
                    raise PluginLoadError(
                        f"{kind} {name!r} is offered by both {registry.providers[f'{kind}:{name}']!r} and {plugin_name!r}"
                    )
                table[name] = factory
                registry.providers[f"{kind}:{name}"] = plugin_name

            return register

        return make

    def option_adder(plugin_name: str):
        def add_option(name: str, **kwargs: Any) -> None:
            if any(o.name == name for o in registry.options):
                raise PluginLoadError(f"option --{name} of plugin {plugin_name!r} is already declared")
            kwargs.setdefault("owner", plugin_name)
            registry.options.append(Option(name, **kwargs))

        return add_option

    _call_each(pm, "tus_add_options", option_adder)
    _call_each(pm, "tus_register_storages", registrar("storage", registry.storages))
    _call_each(pm, "tus_register_info_stores", registrar("info-storage", registry.info_stores))
    _call_each(pm, "tus_register_notifiers", registrar("notifier", registry.notifiers))
    return registry


def select(table: dict[str, Callable], kind: str, name: str) -> Callable:
    """The factory called `name`, or a start-up error listing the known names."""
    try:
        return table[name]
    except KeyError:
        known = ", ".join(sorted(table)) or "none"
        raise PluginLoadError(f"unknown {kind} {name!r}; installed: {known}") from None
