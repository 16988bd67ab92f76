"""The docs keep up with the code: every option of core and of the built-in plugins is
documented under docs/, with its environment variable."""

import pathlib

from tuspluggy.options import core_options, env_name
from tuspluggy.plugin_manager import collect, make_plugin_manager

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"


def all_docs():
    return "\n".join(path.read_text() for path in DOCS.glob("*.md"))


def test_every_core_option_is_in_the_configuration_page():
    page = (DOCS / "configuration.md").read_text()
    for option in core_options():
        assert f"`--{option.name}`" in page, option.name
        assert env_name(option.name) in page, option.name


def test_every_builtin_plugin_option_is_documented():
    pm = make_plugin_manager()
    registry = collect(pm, core_options())
    builtin = {status.name for status in pm.statuses if status.builtin}
    text = all_docs()
    missing = [o.name for o in registry.options if o.owner in builtin and f"--{o.name}" not in text]
    assert missing == []


def test_readme_starts_with_the_two_commands():
    readme = (DOCS.parent / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1]
    blocks = [block.split("\n", 1)[1] for block in quick_start.split("```sh")[1:3]]
    assert "tuspluggy serve" in blocks[0] and "pip install" in blocks[0]
    assert "pytest" in blocks[1] and "pip install -e '.[test]'" in blocks[1]
    ci = (DOCS.parent / ".ci" / "run").read_text()
    assert blocks[1].strip().split("\n")[0] in ci
