"""Each kind of generated plugin, made with `tuspluggy plugin new`, installed into a
throwaway venv (tuspluggy.testing.overlay_venv, so the environment other tests share never
loads it): its own tests pass (they start real servers) and `tuspluggy plugins` lists it.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys

import pytest

from tuspluggy.testing import overlay_venv


def run(*command, cwd=None, env=None, timeout=180) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})})
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> str:
    return overlay_venv(tmp_path_factory.mktemp("venv") / "v")


@pytest.mark.parametrize(
    "kind, name, module",
    [("notifier", "acme-log", "tuspluggy_acme_log"), ("storage", "acme-vault", "tuspluggy_acme_vault"),
     ("info-store", "acme-ledger", "tuspluggy_acme_ledger")],
)
def test_a_generated_plugin_installs_passes_its_own_tests_and_is_listed(tmp_path, venv, kind, name, module):
    result = run(sys.executable, "-m", "tuspluggy.cli", "plugin", "new", name, "--kind", kind, "--author", "Ada",
                 cwd=tmp_path)
    project = tmp_path / f"tuspluggy-{name}"
    assert f"created {project}" in result.stdout
    assert (project / "src" / module / "__init__.py").is_file()

    run(venv, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e", project)
    # The generated project's own tests: they start real tuspluggy servers with the plugin.
    tests = run(venv, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=project, timeout=300)
    assert " passed" in tests.stdout and "failed" not in tests.stdout

    rows = {row["name"]: row for row in json.loads(run(venv, "-m", "tuspluggy.cli", "plugins", "--json").stdout)}
    row = rows[name]
    assert row["distribution"] == f"tuspluggy-{name}" and row["version"] == "0.1.0"
    assert row["error"] is None and row["builtin"] is False
    provided = {"notifier": f"notifier:{name}", "storage": f"storage:{name}", "info-store": f"info-storage:{name}"}
    assert row["provides"] == [provided[kind]]
    # Not installed where the rest of the suite runs.
    assert name not in {ep.name for ep in importlib.metadata.entry_points(group="tuspluggy")}
