"""File and dir hooks with real scripts against a real `tuspluggy serve`: the document's
single_file_hook.sh, blocking semantics, answers that change the upload, pre-access,
and the post-finish-instead-of-post-create rules."""

from __future__ import annotations

import json
import os
import shutil

import httpx
import pytest

from hooks_support import CONTRIB, read_jsonl, recording_hook, wait_until
from tuspluggy.testing import encode_metadata

TUS = {"Tus-Resumable": "1.0.0"}
PATCH = {**TUS, "Content-Type": "application/offset+octet-stream"}
SINGLE_FILE_HOOK = CONTRIB / "hooks" / "single_file_hook.sh"


def _need_jq():
    if shutil.which("jq") is None:  # .ci/run installs it; elsewhere: apt-get install -y jq
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("jq is missing (apt-get install -y jq)")
        pytest.skip("jq is missing (apt-get install -y jq)")


def _stored_records(data_dir) -> list[str]:
    return [n for n in os.listdir(data_dir) if n.endswith(".info")]


def _events(log) -> list[tuple[str, dict]]:
    """(hook name, payload) of each call of a recording --hooks-file script."""
    return [(argv[0], json.loads(argv[1])) for argv in read_jsonl(log)]


def test_single_file_hook_from_the_document_rejects_pepe(make_server, data_dir):
    _need_jq()
    server = make_server("--hooks-file", str(SINGLE_FILE_HOOK))
    rejected = httpx.post(server.url, headers={**TUS, "Upload-Length": "4",
                                               "Upload-Metadata": encode_metadata({"meme": "pepe"})})
    assert rejected.status_code == 400
    assert rejected.text.strip() == "This meme isn't allowed"
    assert _stored_records(data_dir) == []  # nothing was stored
    accepted = httpx.post(server.url, headers={**TUS, "Upload-Length": "4",
                                               "Upload-Metadata": encode_metadata({"meme": "doge"})})
    assert accepted.status_code == 201
    assert len(_stored_records(data_dir)) == 1


def test_single_file_hook_gets_hook_name_and_json(make_server, tmp_path):
    log = tmp_path / "calls.jsonl"
    hook = recording_hook(tmp_path, log, "hook.py")
    server = make_server("--hooks-file", str(hook))
    created = httpx.post(server.url, headers={**TUS, "Upload-Length": "3"})
    assert created.status_code == 201
    assert httpx.patch(created.headers["Location"], content=b"abc",
                       headers={**PATCH, "Upload-Offset": "0"}).status_code == 204
    events = wait_until(lambda: len(_events(log)) >= 3 and _events(log))
    assert [name for name, _ in events] == ["pre-create", "post-create", "post-finish"]
    assert events[2][1]["upload"]["offset"] == 3


def test_rustus_env_names_configure_hooks(make_server, tmp_path):
    log = tmp_path / "calls.jsonl"
    hook = recording_hook(tmp_path, log, "hook.py")
    server = make_server(env={"RUSTUS_HOOKS_FILE": str(hook), "RUSTUS_HOOKS": "pre-create",
                              "RUSTUS_HOOKS_FORMAT": "tusd", "TUSPLUGGY_HOOKS_FORMAT": "v2"})
    assert httpx.post(server.url, headers={**TUS, "Upload-Length": "3"}).status_code == 201
    (name, body), = _events(log)
    assert name == "pre-create" and "uri" in body["request"]  # TUSPLUGGY_* wins over RUSTUS_*


def test_failing_hook_without_stderr_gives_400_naming_it(make_server, tmp_path, data_dir):
    hook = recording_hook(tmp_path, tmp_path / "log", "hook.py", status=3)
    server = make_server("--hooks-file", str(hook), "--hooks", "pre-create")
    response = httpx.post(server.url, headers={**TUS, "Upload-Length": "3"})
    assert response.status_code == 400
    assert "pre-create" in response.text and "status 3" in response.text
    assert _stored_records(data_dir) == []


def test_hook_timeout_gives_504_naming_the_hook(make_server, tmp_path, data_dir):
    hook = recording_hook(tmp_path, tmp_path / "log", "hook.py", sleep=20)
    server = make_server("--hooks-file", str(hook), "--hooks", "pre-create", "--hooks-file-timeout", "1")
    response = httpx.post(server.url, headers={**TUS, "Upload-Length": "3"}, timeout=30)
    assert response.status_code == 504
    assert "pre-create hook" in response.text and "file" in response.text
    assert _stored_records(data_dir) == []


def test_missing_dir_hook_file_is_an_error(make_server, tmp_path, data_dir):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    recording_hook(hooks, tmp_path / "log", "post-create")
    server = make_server("--hooks-dir", str(hooks), "--hooks", "pre-create,post-create")
    response = httpx.post(server.url, headers={**TUS, "Upload-Length": "3"})
    assert response.status_code == 502
    assert "pre-create" in response.text and "not found" in response.text
    assert _stored_records(data_dir) == []
    assert "no executable for enabled event(s): pre-create" in server.log()


def test_pre_create_answer_changes_id_and_metadata(make_server, tmp_path):
    log = tmp_path / "calls.jsonl"
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    answer = json.dumps({"id": "invoice-42", "metadata": {"filename": "renamed.pdf", "owner": "alice"}})
    recording_hook(hooks, log, "pre-create", stdout=answer)
    recording_hook(hooks, log, "post-create")
    server = make_server("--hooks-dir", str(hooks), "--hooks", "pre-create,post-create")
    created = httpx.post(server.url, headers={**TUS, "Upload-Length": "3",
                                              "Upload-Metadata": encode_metadata({"filename": "a.pdf"})})
    assert created.status_code == 201
    assert created.headers["Location"].endswith("/invoice-42")
    head = httpx.head(created.headers["Location"], headers=TUS)
    assert head.status_code == 200
    assert sorted(head.headers["Upload-Metadata"].split(",")) == sorted(
        encode_metadata({"filename": "renamed.pdf", "owner": "alice"}).split(","))
    post_create = wait_until(lambda: [json.loads(a[0]) for a in read_jsonl(log)][1:])
    assert post_create[0]["upload"]["id"] == "invoice-42"
    # The same id again is a conflict, not an overwrite.
    again = httpx.post(server.url, headers={**TUS, "Upload-Length": "3"})
    assert again.status_code == 409


@pytest.mark.parametrize("answer", ['{"id": "../etc"}', '{"metadata": {"a b": "x"}}', '{"size": 3}', "[1]"])
def test_invalid_answer_is_refused_and_nothing_stored(make_server, tmp_path, data_dir, answer):
    hook = recording_hook(tmp_path, tmp_path / "log", "hook.py", stdout=answer)
    server = make_server("--hooks-file", str(hook), "--hooks", "pre-create")
    response = httpx.post(server.url, headers={**TUS, "Upload-Length": "3"})
    assert response.status_code == 502
    assert "invalid change" in response.text
    assert _stored_records(data_dir) == []


def test_pre_terminate_rejection_keeps_the_upload(make_server, tmp_path):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    recording_hook(hooks, tmp_path / "log", "pre-terminate", stderr="keep it\n", status=1)
    server = make_server("--hooks-dir", str(hooks), "--hooks", "pre-terminate")
    location = httpx.post(server.url, headers={**TUS, "Upload-Length": "3"}).headers["Location"]
    response = httpx.delete(location, headers=TUS)
    assert response.status_code == 400 and response.text.strip() == "keep it"
    assert httpx.head(location, headers=TUS).status_code == 200


def test_completed_in_creation_and_concatenation_send_post_finish_not_post_create(make_server, tmp_path):
    log = tmp_path / "calls.jsonl"
    hook = recording_hook(tmp_path, log, "hook.py")
    server = make_server("--hooks-file", str(hook))
    with httpx.Client(timeout=30) as client:
        whole = client.post(server.url, content=b"abc", headers={**PATCH, "Upload-Length": "3"})
        assert whole.status_code == 201 and whole.headers["Upload-Offset"] == "3"
        part = client.post(server.url, content=b"xy", headers={**PATCH, "Upload-Length": "2",
                                                                 "Upload-Concat": "partial"})
        final = client.post(server.url, headers={**TUS, "Upload-Concat": f"final;{part.headers['Location']}"})
        assert final.status_code == 201
    ids = {r.headers["Location"].rsplit("/", 1)[1]: name for name, r in
           (("whole", whole), ("part", part), ("final", final))}
    events = wait_until(lambda: len(_events(log)) >= 6 and _events(log))
    by_upload = {}
    for name, body in events:
        by_upload.setdefault(ids[body["upload"]["id"]], []).append(name)
    assert by_upload == {"whole": ["pre-create", "post-finish"], "part": ["pre-create", "post-finish"],
                         "final": ["pre-create", "post-finish"]}
    final_finish = [b for n, b in events if n == "post-finish" and ids[b["upload"]["id"]] == "final"][0]
    assert final_finish["upload"]["is_final"] and final_finish["upload"]["parts"] == [
        part.headers["Location"].rsplit("/", 1)[1]]
    assert final_finish["request"]["method"] == "POST"  # the request that completed it


def test_pre_access_is_opt_in_and_authorises_each_method(make_server, tmp_path):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    # Allow only requests that carry "X-Token: yes".
    script = hooks / "pre-access"
    script.write_text("#!/bin/sh\necho \"$1\" | grep -q '\"x-token\":\"yes\"' && exit 0\necho 'no token' >&2\nexit 1\n")
    script.chmod(0o755)
    plain = make_server("--hooks-dir", str(hooks), "--hooks", "post-terminate")  # default list has no pre-access
    location = httpx.post(plain.url, headers={**TUS, "Upload-Length": "3"}).headers["Location"]
    assert httpx.head(location, headers=TUS).status_code == 200

    guarded = make_server("--hooks-dir", str(hooks), "--hooks", "pre-access")
    location = httpx.post(guarded.url, headers={**TUS, "Upload-Length": "3"}).headers["Location"]
    for method, extra in (("HEAD", {}), ("PATCH", {**PATCH, "Upload-Offset": "0"}), ("GET", {}), ("DELETE", {})):
        refused = httpx.request(method, location, headers={**TUS, **extra}, content=b"abc" if method == "PATCH" else None)
        assert refused.status_code == 400, method
        if method != "HEAD":
            assert refused.text.strip() == "no token"
    allowed = {**TUS, "X-Token": "yes"}
    assert httpx.head(location, headers=allowed).status_code == 200
    assert httpx.patch(location, content=b"abc", headers={**allowed, **PATCH, "Upload-Offset": "0"}).status_code == 204
    assert httpx.get(location, headers=allowed).content == b"abc"
    assert httpx.delete(location, headers=allowed).status_code == 204


def test_failed_post_event_is_retried_until_the_hook_works(make_server, tmp_path):
    log = tmp_path / "calls.jsonl"
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    server = make_server("--hooks-dir", str(hooks), "--hooks", "post-create", "--hooks-retry-delay", "0.2",
                         "--hooks-retry-max-delay", "0.5")
    created = httpx.post(server.url, headers={**TUS, "Upload-Length": "3"})
    assert created.status_code == 201  # post-* events never fail a request
    wait_until(lambda: "hook post-create event" in server.log() and "notifier dir failed" in server.log())
    recording_hook(hooks, log, "post-create")  # the operator adds the missing hook
    (argv,) = wait_until(lambda: read_jsonl(log))
    assert json.loads(argv[0])["upload"]["id"] == created.headers["Location"].rsplit("/", 1)[1]


def test_default_hooks_option_lists_the_six_document_events():
    from tuspluggy.options import core_options

    (hooks,) = [o for o in core_options() if o.name == "hooks"]
    assert hooks.default == ["pre-create", "post-create", "post-receive", "pre-terminate", "post-terminate",
                             "post-finish"]
    assert "pre-access" not in hooks.default
