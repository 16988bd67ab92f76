"""tuspluggy-nats against the NATS server on 127.0.0.1:4222, through a real tuspluggy."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from tuspluggy.errors import TusError
from tuspluggy.interfaces import HookCall, RequestInfo
from tuspluggy.testing import ServerProcess, encode_metadata, tus_upload, wait_for
from tuspluggy_nats.notifier import judge_reply, message_headers

from conftest import NATS_URL, NatsPeer

ALL_EVENTS = "pre-create,post-create,post-receive,pre-terminate,post-terminate,post-finish"
TUS = {"Tus-Resumable": "1.0.0"}


def serve(prefix: str, data_dir: str, *args: str, fmt: str = "v2") -> ServerProcess:
    return ServerProcess("--hooks-nats-urls", NATS_URL, "--hooks-nats-prefix", prefix, "--hooks", ALL_EVENTS,
                         "--hooks-format", fmt, *args, data_dir=data_dir)


def test_tuspluggy_lists_the_plugin_and_its_options():
    result = subprocess.run([sys.executable, "-m", "tuspluggy.cli", "plugins", "--json"],
                            capture_output=True, text=True, timeout=60, check=True)
    row = next(row for row in json.loads(result.stdout) if row["name"] == "nats")
    assert row["error"] is None and not row["builtin"]
    assert row["provides"] == ["notifier:nats"]
    assert {"hooks-nats-urls", "hooks-nats-prefix", "hooks-nats-subject", "hooks-nats-wait-for-replies",
            "hooks-nats-user", "hooks-nats-password", "hooks-nats-token"} <= set(row["options"])
    help_text = subprocess.run([sys.executable, "-m", "tuspluggy.cli", "serve", "--help"],
                               capture_output=True, text=True, timeout=60, check=True).stdout
    assert "--hooks-nats-urls" in help_text and "RUSTUS_HOOKS_NATS_URLS" in help_text


def test_every_event_is_published_to_prefix_dot_event(nats_prefix, data_dir):
    with NatsPeer(f"{nats_prefix}.>") as peer, serve(nats_prefix, data_dir) as server:
        location = tus_upload(server.url, b"0123456789", chunk_size=4, metadata={"filename": "digits.txt"})
        assert httpx.delete(location, headers=TUS, timeout=30).status_code == 204
        wait_for(lambda: "post-terminate" in peer.events(), timeout=30)
    events = peer.events()
    for event in ALL_EVENTS.split(","):
        assert event in events, events
    upload_id = location.rsplit("/", 1)[1]
    subject, payload, headers = next(m for m in peer.messages if m[0] == f"{nats_prefix}.post-finish")
    # The v2 payload, as every built-in notifier sends it.
    assert payload["upload"]["id"] == upload_id
    assert payload["upload"]["metadata"] == {"filename": "digits.txt"}
    assert payload["request"]["uri"].endswith(upload_id)
    assert headers["Hook-Name"] == "post-finish"
    assert headers["Upload-Id"] == upload_id
    assert headers["Event-Id"]


def test_the_tusd_format_and_one_subject_for_everything(nats_prefix, data_dir):
    subject = f"{nats_prefix}.all"
    with NatsPeer(subject) as peer, serve(nats_prefix, data_dir, "--hooks-nats-subject", subject, fmt="tusd") as server:
        location = tus_upload(server.url, b"abc")
        wait_for(lambda: any(h.get("Hook-Name") == "post-finish" for _, _, h in peer.messages), timeout=30)
    assert {s for s, _, _ in peer.messages} == {subject}
    finish = next(p for _, p, h in peer.messages if h["Hook-Name"] == "post-finish")
    assert finish["Upload"]["ID"] == location.rsplit("/", 1)[1]
    assert finish["HTTPRequest"]["Method"] == "PATCH"


def refuse_exe(subject: str, payload: dict, headers: dict) -> bytes:
    if subject.endswith(".pre-create") and payload["upload"]["metadata"].get("filename", "").endswith(".exe"):
        return b"no executables here"
    if subject.endswith(".pre-create") and payload["upload"]["metadata"].get("filename") == "secret.txt":
        return json.dumps({"status": 401, "message": "log in first"}).encode()
    if subject.endswith(".pre-create") and payload["upload"]["metadata"].get("filename") == "rename.txt":
        return json.dumps({"metadata": {"filename": "renamed.txt"}}).encode()
    return b"OK"


def create(url: str, filename: str) -> httpx.Response:
    return httpx.post(url, timeout=30, headers={**TUS, "Upload-Length": "3",
                                                "Upload-Metadata": encode_metadata({"filename": filename})})


def test_request_reply_lets_a_responder_reject_or_change_pre_create(nats_prefix, data_dir):
    with NatsPeer(f"{nats_prefix}.>", answer=refuse_exe), \
            serve(nats_prefix, data_dir, "--hooks-nats-wait-for-replies", "yes") as server:
        rejected = create(server.url, "setup.exe")
        assert rejected.status_code == 403
        assert "no executables here" in rejected.text
        unauthorised = create(server.url, "secret.txt")
        assert unauthorised.status_code == 401 and "log in first" in unauthorised.text
        accepted = create(server.url, "notes.txt")
        assert accepted.status_code == 201
        renamed = create(server.url, "rename.txt")
        assert renamed.status_code == 201
        head = httpx.head(renamed.headers["Location"], headers=TUS, timeout=30)
        assert "filename " in head.headers["Upload-Metadata"]
        assert head.headers["Upload-Metadata"] == encode_metadata({"filename": "renamed.txt"})


def test_request_reply_without_a_responder_fails_pre_create_with_a_gateway_error(nats_prefix, data_dir):
    with serve(nats_prefix, data_dir, "--hooks-nats-wait-for-replies", "yes") as server:
        response = create(server.url, "notes.txt")
    assert 500 <= response.status_code <= 504
    assert "\n" not in response.text.strip()  # one line, no traceback


def test_user_without_password_is_a_clear_start_up_error(data_dir):
    result = subprocess.run(
        [sys.executable, "-m", "tuspluggy.cli", "serve", "--port", "0", "--data-dir", data_dir, "--info-dir", data_dir,
         "--hooks-nats-urls", NATS_URL, "--hooks-nats-user", "alice"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "plugin 'nats'" in result.stderr and "--hooks-nats-password" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_notifier_stays_off_until_configured(data_dir):
    with ServerProcess(data_dir=data_dir) as server:
        tus_upload(server.url, b"x")
    assert "notifier nats enabled" not in server.log()


def call(event: str, headers: dict[str, list[str]] | None = None) -> HookCall:
    request = RequestInfo(uri="/files", method="POST", remote_addr="127.0.0.1", headers=headers or {})
    return HookCall(event=event, event_id="e-1", body="{}", upload_id="u-1", request=request)


def test_replies_empty_or_ok_accept_and_others_reject_only_pre_events():
    assert judge_reply("pre-create", b"") is None
    assert judge_reply("pre-create", b" ok\n") is None
    with pytest.raises(TusError) as error:
        judge_reply("pre-terminate", b"keep it")
    assert error.value.status == 403
    with pytest.raises(TusError) as error:
        judge_reply("pre-create", b'{"status": 413, "message": "too big"}')
    assert (error.value.status, error.value.message) == (413, "too big")
    assert judge_reply("pre-create", b'{"id": "my-id"}').data == {"id": "my-id"}
    assert judge_reply("post-finish", b"whatever") is None  # post-* cannot be rejected


def test_request_headers_are_forwarded_except_what_nats_cannot_carry():
    headers = message_headers(call("post-create", {"Authorization": ["Bearer x"], "X-Name": ["caf\u00e9"],
                                                   "X-Two": ["a", "b"]}))
    assert headers["Authorization"] == "Bearer x"
    assert headers["X-Two"] == "a, b"
    assert "X-Name" not in headers  # not ASCII: left out rather than crash
    assert headers["Hook-Name"] == "post-create" and headers["Event-Id"] == "e-1"
