"""`tuspluggy plugin new`: a new plugin package from the bundled copier template.

The template is the top-level ``plugin-template/`` of the source tree; a wheel carries it as
the package data ``tuspluggy/plugin_template`` (see pyproject.toml).
"""

from __future__ import annotations

import re
from pathlib import Path

KINDS = ("notifier", "storage", "info-store")
# A name that is a valid distribution suffix, entry-point name and (with dashes turned
# into underscores) Python module name.
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


class ScaffoldError(Exception):
    """A plugin could not be scaffolded; the message says why, in one line."""


def template_dir() -> Path:
    """Where the copier template (the directory holding copier.yml) is."""
    here = Path(__file__).resolve().parent
    # In a wheel: package data next to this module. From a checkout or an editable
    # install: the top-level plugin-template/ beside core/.
    for candidate in (here / "plugin_template", here.parent / "plugin-template"):
        if (candidate / "copier.yml").is_file():
            return candidate
    raise ScaffoldError("the plugin template is missing from this tuspluggy installation (no copier.yml found)")


def normalize_name(name: str) -> str:
    """`Slack`, `tuspluggy-slack` and `tuspluggy_slack` all mean the plugin `slack`."""
    name = name.strip().lower().replace("_", "-")
    if name.startswith("tuspluggy-"):
        name = name[len("tuspluggy-"):]
    if not _NAME.match(name):
        raise ScaffoldError(f"plugin name {name!r}: use lowercase letters, digits and single dashes, starting with a letter")
    return name


def new_plugin(name: str, *, kind: str = "notifier", directory: str | Path | None = None,
               description: str | None = None, author: str | None = None, email: str | None = None) -> Path:
    """Render the template into `directory` (default ``./tuspluggy-NAME``); return its path."""
    name = normalize_name(name)
    if kind not in KINDS:
        raise ScaffoldError(f"kind {kind!r}: choose one of {', '.join(KINDS)}")
    target = Path(directory) if directory else Path(f"tuspluggy-{name}")
    if target.exists() and any(target.iterdir()):
        raise ScaffoldError(f"{target} already exists and is not empty")
    try:
        import copier
    except ImportError:
        raise ScaffoldError("copier is not installed: pip install copier") from None
    data = {"plugin_name": name, "kind": kind}
    for key, value in (("description", description), ("author_name", author), ("author_email", email)):
        if value:
            data[key] = value
    try:
        copier.run_copy(str(template_dir()), str(target), data=data, defaults=True, quiet=True, overwrite=False)
    except ScaffoldError:
        raise
    except Exception as error:  # copier's own errors (a failed validator, an unreadable template...)
        raise ScaffoldError(f"copier could not render the template: {type(error).__name__}: {error}") from error
    return target.resolve()
