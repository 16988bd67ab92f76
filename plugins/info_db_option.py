"""The --info-db-dsn option, shared by redis-info-storage and db-info-storage.

Whichever of the two plugins loads first declares it, so either works without the other
(and without the other's client library installed).
"""

from tuspluggy.plugin_manager import PluginLoadError


def add_info_db_dsn(add_option) -> None:
    try:
        add_option("info-db-dsn", default="",
                   help="Where upload records live for redis-info-storage (redis://host:6379/0) "
                        "or db-info-storage (postgresql://user@host/db).")
    except PluginLoadError:
        pass  # the other info store declared it already
