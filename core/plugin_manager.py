"""Finding plugins and collecting what they offer.

Built-in plugins are entry points of tuspluggy's own distribution in the ``tuspluggy``
group, so they load exactly as a third-party plugin does. Entry points are loaded one at a
time: a plugin that fails to import, registers a misspelled hook or raises in a hook is
recorded by name (``PluginManager.broken()``) and skipped, so ``tuspluggy plugins`` still
lists it; ``serve`` then refuses to start with a message naming it, until it is fixed or
switched off with ``--disable-plugin NAME``.
"""

from __future__ import annotations

import functools
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

    def status(self, name: str) -> PluginStatus | None:
        return next((s for s in self.statuses if s.name == name), None)

    def broken(self) -> list[PluginStatus]:
        """Plugins that are installed and enabled but could not be used."""
        return [s for s in self.statuses if s.error and not s.disabled]

    def mark_broken(self, name: str, error: str) -> None:
        """Record why plugin `name` is unusable and stop calling it."""
        status = self.status(name)
        if status is not None and status.error is None:
            status.error = error
        plugin = self.get_plugin(name)
        if plugin is not None:
            self.unregister(plugin, name=name)
        # Blocked, so a later registration under the same name is refused too.
        self.set_blocked(name)


def _unknown_hooks(pm: pluggy.PluginManager, plugin: Any) -> list[str]:
    """Hook implementations of `plugin` that match no hookspec: almost always a typo."""
    return sorted(
        caller.name
        for caller in pm.get_hookcallers(plugin) or []
        if not caller.has_spec() and not caller.name.startswith("_")
    )


def _register(pm: PluginManager, plugin: Any, name: str) -> None:
    """Register `plugin`, refusing (with a message that names the hook) a hookimpl whose name
    is no hookspec; pluggy itself refuses unknown arguments of a known hook."""
    pm.register(plugin, name=name)
    unknown = _unknown_hooks(pm, plugin)
    if unknown:
        pm.unregister(plugin, name=name)
        known = ", ".join(sorted(n for n in dir(pm.hook) if n.startswith("tus_")))
        raise PluginLoadError(f"unknown hook {', '.join(unknown)} (misspelled? the hooks are: {known})")


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
                _register(pm, module, ep.name)
            except Exception as error:  # a broken plugin must not take `tuspluggy plugins` down
                status.error = _describe(error)
                log.debug("plugin %s (%s) failed to load: %s", ep.name, dist, status.error)
    for name, plugin in plugins:
        status = PluginStatus(name=name, distribution=None, version=None, builtin=False)
        pm.statuses.append(status)
        try:
            _register(pm, plugin, name)
        except Exception as error:
            status.error = _describe(error)
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


def _describe(error: BaseException) -> str:
    if isinstance(error, PluginLoadError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def _call_each(pm: PluginManager, hook_name: str, make_arg: Callable[[str], Callable],
               on_error: Callable[[str, str], None] | None = None) -> None:
    """Call one hook plugin by plugin, so an error names the plugin that raised it.

    With `on_error(plugin_name, message)` a failing plugin is reported and the others go on
    (collecting what plugins offer); without it the first failure is raised (start-up)."""
    caller = getattr(pm.hook, hook_name)
    for impl in caller.get_hookimpls():
        plugin_name = pm.get_name(impl.plugin) or repr(impl.plugin)
        arg = make_arg(plugin_name)
        try:
            impl.function(**{name: arg for name in impl.argnames})
        except Exception as error:
            message = f"failed in {hook_name}: {_describe(error)}"
            if on_error is None:
                raise PluginLoadError(f"plugin {plugin_name!r} {message}") from error
            on_error(plugin_name, message)


def _naming_failures(factory: Callable, kind: str, name: str, plugin_name: str) -> Callable:
    """`factory`, whose exceptions become a start-up error naming the plugin (factories run
    while the server is built: a bare traceback there would not say whose it is)."""

    @functools.wraps(factory)
    def build(ctx: Any) -> Any:
        try:
            return factory(ctx)
        except PluginLoadError:
            raise
        except Exception as error:
            raise PluginLoadError(
                f"plugin {plugin_name!r} could not build {kind} {name!r}: {type(error).__name__}: {error}"
            ) from error

    return build


def call_startup(pm: PluginManager, ctx: Any) -> None:
    """Run every tus_startup, naming the plugin that raises instead of a bare traceback."""
    _call_each(pm, "tus_startup", lambda _plugin: ctx)


def collect(pm: PluginManager, core_options: Iterable[Option] = ()) -> Registry:
    """Ask every plugin what it offers. A plugin that raises, or offers a name another
    plugin already offers, is marked broken (see PluginManager.broken) and everything it
    offered is withdrawn, so `tuspluggy plugins` still lists it and `serve` can name it."""
    registry = Registry(options=list(core_options))
    tables = {"storage": registry.storages, "info-storage": registry.info_stores, "notifier": registry.notifiers}

    def registrar(kind: str, table: dict[str, Callable]):
        def make(plugin_name: str):
            def register(name: str, factory: Callable) -> None:
                if name in table:
                    raise PluginLoadError(
                        f"{kind} {name!r} is already offered by plugin {registry.providers[f'{kind}:{name}']!r}"
                    )
                if not callable(factory):
                    raise PluginLoadError(f"the factory of {kind} {name!r} is not callable: {factory!r}")
                table[name] = _naming_failures(factory, kind, name, plugin_name)
                registry.providers[f"{kind}:{name}"] = plugin_name

            return register

        return make

    def option_adder(plugin_name: str):
        def add_option(name: str, **kwargs: Any) -> None:
            if any(o.name == name for o in registry.options):
                raise PluginLoadError(f"option --{name} is already declared")
            kwargs.setdefault("owner", plugin_name)
            registry.options.append(Option(name, **kwargs))

        return add_option

    def withdraw(plugin_name: str, message: str) -> None:
        log.debug("plugin %s is broken: %s", plugin_name, message)
        pm.mark_broken(plugin_name, message)
        registry.options[:] = [o for o in registry.options if o.owner != plugin_name]
        for key, owner in list(registry.providers.items()):
            if owner == plugin_name:
                kind, name = key.split(":", 1)
                tables[kind].pop(name, None)
                del registry.providers[key]

    _call_each(pm, "tus_add_options", option_adder, withdraw)
    _call_each(pm, "tus_register_storages", registrar("storage", registry.storages), withdraw)
    _call_each(pm, "tus_register_info_stores", registrar("info-storage", registry.info_stores), withdraw)
    _call_each(pm, "tus_register_notifiers", registrar("notifier", registry.notifiers), withdraw)
    return registry


def select(table: dict[str, Callable], kind: str, name: str) -> Callable:
    """The factory called `name`, or a start-up error listing the known names."""
    try:
        return table[name]
    except KeyError:
        known = ", ".join(sorted(table)) or "none"
        raise PluginLoadError(f"unknown {kind} {name!r}; installed: {known}") from None
