"""docs/plugins.md stays honest: every hookspec is documented with its exact signature (as
datasette checks its own plugin docs), and every built-in plugin is in the table."""

from __future__ import annotations

import inspect
import re
import tomllib
from pathlib import Path

import pytest

from tuspluggy import hookspecs

ROOT = Path(__file__).resolve().parent.parent
DOCS = (ROOT / "docs" / "plugins.md").read_text()
HOOKSPECS = sorted(name for name, value in vars(hookspecs).items()
                   if name.startswith("tus_") and hasattr(value, "tuspluggy_spec"))


@pytest.mark.parametrize("name", HOOKSPECS)
def test_every_hookspec_is_documented_with_its_signature(name):
    arguments = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
    heading = f"### `{name}({arguments})`"
    assert heading in DOCS, f"docs/plugins.md needs a section headed {heading}"
    # The section says when the hook runs and what it returns.
    section = DOCS.split(heading, 1)[1].split("\n### ", 1)[0]
    assert "**When:**" in section and "**Returns:**" in section


def test_the_docs_document_no_hook_that_does_not_exist():
    documented = set(re.findall(r"^### `(tus_\w+)\(", DOCS, flags=re.M))
    assert documented == set(HOOKSPECS)


def test_every_builtin_plugin_is_in_the_docs():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    builtins = pyproject["project"]["entry-points"]["tuspluggy"]
    missing = [name for name in builtins if f"`{name}`" not in DOCS]
    assert not missing, f"add these built-in plugins to the table in docs/plugins.md: {missing}"
