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
