"""Importing a built-in plugin's optional dependency only when the plugin is selected.

The S3 storage and the Redis and PostgreSQL info stores need libraries that are extras
(``pip install 'tuspluggy[s3]'``). Their entry-point modules declare options and factories
only; the factory imports the implementation, so a plain install loads every entry point
cleanly and starts fast, and choosing a store whose library is missing is one clear line.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from tuspluggy.plugin_manager import PluginLoadError


def import_for(module: str, what: str, extra: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as error:
        missing = error.name or str(error)
        raise PluginLoadError(f"{what} needs the {missing!r} package: pip install 'tuspluggy[{extra}]'") from None
