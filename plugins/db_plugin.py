"""db-info-storage: the options and factory of the PostgreSQL info store
(plugins/db_info_storage.py, which needs asyncpg: ``pip install 'tuspluggy[postgres]'``)."""

from __future__ import annotations

from tuspluggy import hookimpl
from tuspluggy.interfaces import PluginContext
from tuspluggy.plugin_manager import PluginLoadError

from .info_db_option import add_info_db_dsn
from .optional import import_for


@hookimpl
def tus_add_options(add_option):
    add_info_db_dsn(add_option)
    add_option("db-info-table", default="tuspluggy_uploads",
               help="Table of db-info-storage (created if missing).")
    add_option("db-info-pool-size", default=10, type=int,
               help="Connections db-info-storage keeps for reading and writing records.")
    add_option("db-lock-pool-size", default=20, type=int,
               help="Connections for upload locks: at most this many uploads are locked at once per instance.")


@hookimpl
def tus_register_info_stores(register):
    def factory(ctx: PluginContext):
        config = ctx.config
        dsn = config.get("info_db_dsn") or ""
        if not dsn.startswith(("postgresql://", "postgres://")):
            raise PluginLoadError("db-info-storage needs --info-db-dsn postgresql://user@host:port/database")
        store = import_for("tuspluggy.plugins.db_info_storage", "db-info-storage", "postgres")
        return store.DbInfoStore(dsn, ctx.aio, table=config.get("db_info_table") or "tuspluggy_uploads",
                                 pool_size=config.get("db_info_pool_size") or 10,
                                 lock_pool_size=config.get("db_lock_pool_size") or 20)

    register("db-info-storage", factory)
