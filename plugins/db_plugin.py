"""db-info-storage: the options and factory of the PostgreSQL info store
(plugins/db_info_storage.py, which needs asyncpg: ``pip install 'tuspluggy[postgres]'``)."""

from __future__ import annotations

from tuspluggy import hookimpl
from tuspluggy.interfaces import PluginContext

from .info_db_option import add_info_db_dsn, checked_dsn_and_module


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
        dsn, store = checked_dsn_and_module(config, "db-info-storage", ("postgresql://", "postgres://"),
                                            "postgresql://user@host:port/database",
                                            "tuspluggy.plugins.db_info_storage", "postgres")
        return store.DbInfoStore(dsn, ctx.aio, table=config.get("db_info_table") or "tuspluggy_uploads",
                                 pool_size=config.get("db_info_pool_size") or 10,
                                 lock_pool_size=config.get("db_lock_pool_size") or 20)

    register("db-info-storage", factory)
