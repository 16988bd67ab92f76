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
from pathlib import Path

import pytest

from tuspluggy.testing import overlay_venv


def run(*command, cwd=None, env=None, timeout=180) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})})
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


KINDS = {"notifier": "acme-log", "storage": "acme-vault", "info-store": "acme-ledger"}
PROVIDES = {"notifier": "notifier:{}", "storage": "storage:{}", "info-store": "info-storage:{}"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[str, dict[str, Path]]:
    """One project of each kind, made with `tuspluggy plugin new`, installed together into
    one throwaway venv (one pip run: each pip start costs seconds)."""
    root = tmp_path_factory.mktemp("generated")
    projects = {}
    for kind, name in KINDS.items():
        result = run(sys.executable, "-m", "tuspluggy.cli", "plugin", "new", name, "--kind", kind, "--author", "Ada",
                     cwd=root)
        projects[kind] = root / f"tuspluggy-{name}"
        assert f"created {projects[kind]}" in result.stdout
    venv = overlay_venv(root / "venv")
    editable = [arg for project in projects.values() for arg in ("-e", project)]
    run(venv, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", *editable)
    return venv, projects


def test_tuspluggy_plugins_lists_each_generated_plugin(generated):
    venv, _ = generated
    rows = {row["name"]: row for row in json.loads(run(venv, "-m", "tuspluggy.cli", "plugins", "--json").stdout)}
    for kind, name in KINDS.items():
        row = rows[name]
        assert row["distribution"] == f"tuspluggy-{name}" and row["version"] == "0.1.0"
        assert row["error"] is None and row["builtin"] is False
        assert row["provides"] == [PROVIDES[kind].format(name)]
        # Not installed where the rest of the suite runs.
        assert name not in {ep.name for ep in importlib.metadata.entry_points(group="tuspluggy")}


def test_each_generated_plugin_passes_its_own_tests(generated):
    """The generated tests start real tuspluggy servers with the plugin loaded through its
    entry point. The three suites run at the same time: they mostly wait on servers."""
    venv, projects = generated
    running = {
        kind: subprocess.Popen([venv, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for kind, project in projects.items()
    }
    outputs = {}
    try:
        for kind, process in running.items():
            outputs[kind] = (process.communicate(timeout=300)[0], process.returncode)
    finally:
        for process in running.values():
            if process.poll() is None:
                process.kill()
    for kind, (output, code) in outputs.items():
        assert code == 0, f"the generated {kind} plugin's tests failed:\n{output}"
        assert " passed" in output and "failed" not in output and "skipped" not in output
