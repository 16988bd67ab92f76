"""The design rules that a refactoring could break silently."""

import ast
import pathlib

CORE = pathlib.Path(__file__).resolve().parent.parent / "core"
HOT_PATH = ["app.py", "body.py", "service.py", "protocol/rules.py", "protocol/parse.py", "protocol/download.py",
            "protocol/proxy.py", "locks.py"]


def imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield ("." * node.level) + (node.module or "")


def test_core_never_imports_a_builtin_plugin():
    # Built-ins load through entry points exactly as third-party plugins do.
    for path in CORE.rglob("*.py"):
        for name in imports(path):
            assert not name.startswith("tuspluggy.plugins"), f"{path.name} imports {name}"
            assert not name.startswith("..plugins") and name != ".plugins", f"{path.name} imports {name}"


def test_the_request_path_never_calls_pluggy():
    for relative in HOT_PATH:
        path = CORE / relative
        text = path.read_text()
        assert "pluggy" not in set(imports(path)), relative
        assert ".hook." not in text, f"{relative} calls a pluggy hook"


def test_the_protocol_layer_does_no_io():
    for path in (CORE / "protocol").glob("*.py"):
        names = set(imports(path))
        for forbidden in ("quart", "trio", "os", "httpx", "socket", "asyncio"):
            assert forbidden not in names, f"{path.name} imports {forbidden}"


def test_optional_libraries_load_only_when_their_plugin_is_chosen():
    # A plain `pip install tuspluggy` has no boto3/redis/asyncpg/aiormq/httpx client in use:
    # loading every entry point must neither need them nor pay for importing them (memory).
    import subprocess
    import sys

    code = (
        "import sys; from tuspluggy.server import load_plugins; pm, _ = load_plugins(); "
        "assert not [s.name for s in pm.statuses if s.error]; "
        "print(sorted(m for m in ('boto3', 'redis', 'asyncpg', 'aiormq', 'nats', 'httpx') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_missing_optional_library_is_one_line_naming_the_extra():
    import pytest

    from tuspluggy.plugin_manager import PluginLoadError
    from tuspluggy.plugins.optional import import_for

    with pytest.raises(PluginLoadError) as error:
        import_for("tuspluggy_no_such_module", "--storage s3", "s3")
    assert str(error.value) == "--storage s3 needs the 'tuspluggy_no_such_module' package: pip install 'tuspluggy[s3]'"
