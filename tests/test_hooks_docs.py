"""docs/hooks.md keeps up with the code: every hook option is documented with its CLI
flag and environment variable; and several notifiers at once each get every event."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from hooks_support import Receiver, read_jsonl, recording_hook, wait_until
from tuspluggy.options import core_options, env_name
from tuspluggy.plugin_manager import collect, make_plugin_manager
from tuspluggy.testing import tus_upload

DOC = (Path(__file__).resolve().parent.parent / "docs" / "hooks.md").read_text()


def _hook_options():
    registry = collect(make_plugin_manager(), core_options())
    # Built-in hook options only: an installed third-party notifier documents its own.
    built_in = {"core", "file-hooks", "http-hooks", "amqp-hooks"}
    return [o for o in registry.options if "hook" in o.name and o.owner in built_in]


@pytest.mark.parametrize("option", _hook_options(), ids=lambda o: o.name)
def test_every_hook_option_is_documented(option):
    assert f"--{option.name}" in DOC


@pytest.mark.parametrize("notifier_option", ["hooks-file", "hooks-dir", "hooks-http-urls", "hooks-amqp-url"])
def test_every_notifier_has_cli_and_env_examples(notifier_option):
    assert f"tuspluggy serve --{notifier_option}" in DOC or f"--{notifier_option} " in DOC
    assert env_name(notifier_option) in DOC


def test_several_notifiers_each_get_every_event(make_server, tmp_path):
    receiver = Receiver(tmp_path / "received.jsonl").start()
    log = tmp_path / "calls.jsonl"
    hook = recording_hook(tmp_path, log, "hook.py")
    try:
        server = make_server("--hooks-file", str(hook), "--hooks-http-urls", receiver.url,
                             "--hooks-http-proxy-headers", "Authorization")
        location = tus_upload(server.url, b"both", chunk_size=2, headers={"Authorization": "Bearer jwt"})
        assert httpx.delete(location, headers={"Tus-Resumable": "1.0.0", "Authorization": "Bearer jwt"}).status_code == 204
        expected = ["pre-create", "post-create", "post-receive", "post-finish", "pre-terminate", "post-terminate"]
        wait_until(lambda: len(receiver.received()) >= 6 and len(read_jsonl(log)) >= 6)
        assert sorted(r["hook_name"] for r in receiver.received()) == sorted(expected)
        assert sorted(argv[0] for argv in read_jsonl(log)) == sorted(expected)
        # The same event id reaches every notifier of a post-* event.
        keys = {r["hook_name"]: r["idempotency_key"] for r in receiver.received()}
        assert len(set(keys.values())) == 6
        assert all(json.loads(argv[1])["upload"]["id"] == location.rsplit("/", 1)[1] for argv in read_jsonl(log))
    finally:
        receiver.stop()
