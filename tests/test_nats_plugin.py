"""contrib/tuspluggy-nats, the third-party NATS notifier made from the template: installed
on its own into a throwaway venv (tuspluggy.testing.overlay_venv), its own tests pass
against the NATS server on 127.0.0.1:4222, `tuspluggy plugins` lists it, and an upload
through a real server publishes every event to {prefix}.{event}.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from tuspluggy.testing import ServerProcess, overlay_venv, require_service, tus_upload, wait_for

PROJECT = Path(__file__).resolve().parent.parent / "contrib" / "tuspluggy-nats"
EVENTS = ["pre-create", "post-create", "post-receive", "pre-terminate", "post-terminate", "post-finish"]


def run(*command, cwd=None, timeout=240) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


def nats_peer_class():
    """The contrib tests' NATS subscriber, loaded by path (its module is named conftest)."""
    spec = importlib.util.spec_from_file_location("tuspluggy_nats_test_peer", PROJECT / "tests" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.NatsPeer


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> str:
    python = overlay_venv(tmp_path_factory.mktemp("nats-venv") / "v")
    # --no-deps: nats-py comes from tuspluggy's test extra, so this works offline.
    run(python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e", PROJECT)
    return python


def test_the_nats_plugin_is_listed_with_its_options(venv):
    rows = {row["name"]: row for row in json.loads(run(venv, "-m", "tuspluggy.cli", "plugins", "--json").stdout)}
    row = rows["nats"]
    assert row["distribution"] == "tuspluggy-nats" and not row["builtin"] and row["error"] is None
    assert row["provides"] == ["notifier:nats"]
    assert row["hooks"] == ["tus_add_options", "tus_register_notifiers"]
    assert {"hooks-nats-urls", "hooks-nats-prefix", "hooks-nats-subject", "hooks-nats-wait-for-replies",
            "hooks-nats-user", "hooks-nats-password", "hooks-nats-token"} <= set(row["options"])
    assert "nats" not in {ep.name for ep in importlib.metadata.entry_points(group="tuspluggy")}


def test_the_nats_plugin_passes_its_own_tests(venv):
    require_service("nats")
    result = run(venv, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=PROJECT, timeout=300)
    assert " passed" in result.stdout and "failed" not in result.stdout and "skipped" not in result.stdout


def test_an_upload_through_a_real_server_publishes_every_event(venv, tmp_path):
    require_service("nats")
    prefix = f"suite-{uuid.uuid4().hex[:10]}"
    NatsPeer = nats_peer_class()
    with NatsPeer(f"{prefix}.>") as peer, ServerProcess(
        "--hooks-nats-urls", "nats://127.0.0.1:4222", "--hooks", ",".join(EVENTS), "--hooks-format", "default",
        data_dir=str(tmp_path / "data"), python=venv, env={"TUSPLUGGY_HOOKS_NATS_PREFIX": prefix},
    ) as server:
        location = tus_upload(server.url, b"x" * 3000, chunk_size=1000)
        assert httpx.delete(location, headers={"Tus-Resumable": "1.0.0"}, timeout=30).status_code == 204
        wait_for(lambda: "post-terminate" in peer.events(), timeout=30)
    assert set(peer.events()) == set(EVENTS)
    assert {subject for subject, _, _ in peer.messages} == {f"{prefix}.{event}" for event in EVENTS}
    subject, payload, headers = next(m for m in peer.messages if m[0] == f"{prefix}.post-finish")
    # The default format: "URI" in upper case, the upload's fields as the built-in notifiers send them.
    assert payload["upload"]["id"] == location.rsplit("/", 1)[1] and payload["upload"]["offset"] == 3000
    assert "URI" in payload["request"]
    assert headers["Hook-Name"] == "post-finish"
