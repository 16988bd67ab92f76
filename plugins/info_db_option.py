"""The --info-db-dsn option and its check, shared by redis-info-storage and db-info-storage.

Whichever of the two plugins loads first declares it, so either works without the other
(and without the other's client library installed).
"""

from types import ModuleType

from tuspluggy.plugin_manager import PluginLoadError

from .optional import import_for


def add_info_db_dsn(add_option) -> None:
    try:
        add_option("info-db-dsn", default="",
                   help="Where upload records live for redis-info-storage (redis://host:6379/0) "
                        "or db-info-storage (postgresql://user@host/db).")
    except PluginLoadError:
        pass  # the other info store declared it already


def checked_dsn_and_module(config, store: str, schemes: tuple[str, ...], example: str, module: str,
                           extra: str) -> tuple[str, ModuleType]:
    """--info-db-dsn if it has one of `schemes`, and the store's module (whose client
    library is imported only now); a one-line PluginLoadError otherwise."""
    dsn = config.get("info_db_dsn") or ""
    if not dsn.startswith(schemes):
        raise PluginLoadError(f"{store} needs --info-db-dsn {example}")
    return dsn, import_for(module, store, extra)
