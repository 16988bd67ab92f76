"""redis-info-storage: the options and factory of the Redis info store
(plugins/redis_info_storage.py, which needs redis: ``pip install 'tuspluggy[redis]'``)."""

from __future__ import annotations

from tuspluggy import hookimpl
from tuspluggy.interfaces import PluginContext

from .info_db_option import add_info_db_dsn, checked_dsn_and_module


@hookimpl
def tus_add_options(add_option):
    add_info_db_dsn(add_option)
    add_option("redis-info-expiration", default=0, type=int,
               help="Seconds a record lives in Redis after its last save (EX); 0 = no TTL.")
    add_option("redis-key-prefix", default="",
               help="Prefix of every key redis-info-storage writes (records, index, locks).")
    add_option("redis-lock-ttl", default=30.0, type=float,
               help="Seconds an upload lock outlives a dead holder; the live holder renews it.")


@hookimpl
def tus_register_info_stores(register):
    def factory(ctx: PluginContext):
        config = ctx.config
        dsn, store = checked_dsn_and_module(config, "redis-info-storage", ("redis://", "rediss://", "unix://"),
                                            "redis://host:port/db", "tuspluggy.plugins.redis_info_storage", "redis")
        return store.RedisInfoStore(dsn, ctx.aio, prefix=config.get("redis_key_prefix") or "",
                                    expiration=config.get("redis_info_expiration") or None,
                                    lock_ttl=config.get("redis_lock_ttl") or 30)

    register("redis-info-storage", factory)
