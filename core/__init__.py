"""tuspluggy: a tus 1.0.0 resumable-upload server whose storages, info stores and
notifiers are pluggy plugins."""

__version__ = "0.1.0"
TUS_VERSION = "1.0.0"

from .hookspecs import hookimpl, hookspec  # noqa: E402  (the names plugins import)

__all__ = ["TUS_VERSION", "__version__", "hookimpl", "hookspec"]
