"""Hook payloads, field for field as the hooks document's models and schemas show, in
each --hooks-format: built directly, and as real hook scripts receive them from a real
`tuspluggy serve`."""

from __future__ import annotations

import json

import httpx
import pytest

from hooks_support import read_jsonl, recording_hook, validate_payload, wait_until
from tuspluggy.hook_formats import DEFAULT_EVENTS, payload
from tuspluggy.interfaces import RequestInfo
from tuspluggy.testing import encode_metadata
from tuspluggy.upload import Upload

TUS = {"Tus-Resumable": "1.0.0"}
REQUEST = RequestInfo(
    uri="/files/",
    method="POST",
    remote_addr="127.0.0.1",
    headers={"host": ["localhost"], "upload-length": ["220"], "x-multi": ["a", "b"]},
)


def uploads():
    yield Upload(id="3cd911fe-eba0-499a-b220-b1d1b947b80f", length=220, storage="file_storage",
                 metadata={"filename": "shrek2.mkv"})
    yield Upload(id="u-deferred", length=None, offset=10, storage="file_storage", path="/data/u-deferred")
    yield Upload(id="u-final", length=30, offset=30, storage="file_storage", is_final=True, parts=["p1", "p2"],
                 path="/data/u-final")
    yield Upload(id="u-part", length=3, storage="file_storage", is_partial=True)


@pytest.mark.parametrize("fmt", ["default", "v2", "tusd"])
@pytest.mark.parametrize("upload", list(uploads()), ids=lambda u: u.id)
def test_payload_matches_document_schema(fmt, upload):
    validate_payload(payload(fmt, upload, REQUEST), fmt)


def test_default_format_fields():
    body = payload("default", next(uploads()), REQUEST)
    assert body["upload"] == {
        "id": "3cd911fe-eba0-499a-b220-b1d1b947b80f", "offset": 0, "length": 220, "path": None,
        "created_at": body["upload"]["created_at"], "deferred_size": False, "is_partial": False, "is_final": False,
        "parts": None, "storage": "file_storage", "metadata": {"filename": "shrek2.mkv"},
    }
    assert isinstance(body["upload"]["created_at"], int)
    assert body["request"] == {
        "URI": "/files/", "method": "POST", "remote_addr": "127.0.0.1",
        "headers": {"host": "localhost", "upload-length": "220", "x-multi": "a, b"},
    }


def test_v2_format_spells_uri_in_lower_case():
    body = payload("v2", next(uploads()), REQUEST)
    assert "uri" in body["request"] and "URI" not in body["request"]
    assert body["upload"] == payload("default", next(uploads()), REQUEST)["upload"] | {
        "created_at": body["upload"]["created_at"]}


def test_tusd_format_fields_and_list_headers():
    final = list(uploads())[2]
    body = payload("tusd", final, REQUEST)
    assert body["Upload"] == {
        "ID": "u-final", "Offset": 30, "Size": 30, "IsFinal": True, "IsPartial": False,
        "PartialUploads": ["p1", "p2"], "SizeIsDeferred": False, "MetaData": {},
        "Storage": {"Type": "file_storage", "Path": "/data/u-final"},
    }
    assert body["HTTPRequest"] == {
        "URI": "/files/", "Method": "POST", "RemoteAddr": "127.0.0.1",
        "Header": {"host": ["localhost"], "upload-length": ["220"], "x-multi": ["a", "b"]},
    }


def test_deferred_length_is_an_int_with_the_deferred_flag():
    deferred = list(uploads())[1]
    assert payload("default", deferred, REQUEST)["upload"]["length"] == 0
    assert payload("default", deferred, REQUEST)["upload"]["deferred_size"] is True
    assert payload("tusd", deferred, REQUEST)["Upload"]["Size"] == 0
    assert payload("tusd", deferred, REQUEST)["Upload"]["SizeIsDeferred"] is True


def _hook_dir(tmp_path):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    log = tmp_path / "calls.jsonl"
    for event in DEFAULT_EVENTS:
        recording_hook(hooks, log, event)
    return hooks, log


@pytest.mark.parametrize("fmt", ["default", "v2", "tusd"])
def test_real_server_payloads_validate_in_every_format(make_server, tmp_path, fmt):
    hooks, log = _hook_dir(tmp_path)
    server = make_server("--hooks-dir", str(hooks), "--hooks-format", fmt)
    with httpx.Client(timeout=30) as client:
        # An upload in two PATCHes, then deleted.
        created = client.post(server.url, headers={**TUS, "Upload-Length": "5",
                                                   "Upload-Metadata": encode_metadata({"filename": "a.txt"})})
        assert created.status_code == 201
        location = created.headers["Location"]
        patch = {**TUS, "Content-Type": "application/offset+octet-stream"}
        assert client.patch(location, content=b"abc", headers={**patch, "Upload-Offset": "0"}).status_code == 204
        assert client.patch(location, content=b"de", headers={**patch, "Upload-Offset": "3"}).status_code == 204
        assert client.delete(location, headers=TUS).status_code == 204
        # A deferred-length upload and a concatenation.
        deferred = client.post(server.url, headers={**TUS, "Upload-Defer-Length": "1"})
        assert deferred.status_code == 201
        part = client.post(server.url, headers={**TUS, "Upload-Length": "2", "Upload-Concat": "partial",
                                                "Content-Type": "application/offset+octet-stream"}, content=b"xy")
        assert part.status_code == 201
        final = client.post(server.url, headers={**TUS, "Upload-Concat": f"final;{part.headers['Location']}"})
        assert final.status_code == 201

    expected = 12  # 4 for the first upload + 2 DELETE + 2 deferred + 2 part + 2 final
    calls = wait_until(lambda: (c := read_jsonl(log)) and len(c) >= expected and c, 30)
    assert len(calls) == expected, calls
    names = []
    for argv in calls:
        assert len(argv) == 1  # dir hooks get the JSON as their only argument
        body = json.loads(argv[0])
        validate_payload(body, fmt)
        names.append(body)
    first_id = created.headers["Location"].rsplit("/", 1)[1]
    key = "Upload" if fmt == "tusd" else "upload"
    id_key = "ID" if fmt == "tusd" else "id"
    mine = [b for b in names if b[key][id_key] == first_id]
    assert len(mine) == 6
    if fmt == "tusd":
        headers = mine[0]["HTTPRequest"]["Header"]
        assert all(isinstance(v, list) for v in headers.values())
        assert headers["upload-length"] == ["5"]
        assert mine[0]["Upload"]["Storage"]["Path"] is None  # pre-create: nothing stored yet
        deferred_hooks = [b for b in names if b["Upload"]["SizeIsDeferred"]]
        assert deferred_hooks and all(b["Upload"]["Size"] == 0 for b in deferred_hooks)
    else:
        headers = mine[0]["request"]["headers"]
        assert headers["upload-length"] == "5" and all(name == name.lower() for name in headers)
        assert mine[0]["upload"]["path"] is None
        assert mine[1]["upload"]["path"]  # post-create: the storage path


def test_remote_addr_is_the_peer_or_the_forwarded_client(make_server, tmp_path):
    hooks, log = _hook_dir(tmp_path)
    direct = make_server("--hooks-dir", str(hooks), "--hooks", "pre-create")
    proxied = make_server("--hooks-dir", str(hooks), "--hooks", "pre-create", "--behind-proxy", "yes")
    forwarded = {**TUS, "Upload-Length": "1", "X-Forwarded-For": "203.0.113.7, 10.0.0.1"}
    assert httpx.post(direct.url, headers=forwarded).status_code == 201
    assert httpx.post(proxied.url, headers=forwarded).status_code == 201
    assert httpx.post(proxied.url, headers={**TUS, "Upload-Length": "1",
                                            "Forwarded": 'for="[2001:db8::1]:4711";proto=https'}).status_code == 201
    calls = [json.loads(argv[0]) for argv in read_jsonl(log)]
    assert [c["request"]["remote_addr"] for c in calls] == ["127.0.0.1", "203.0.113.7", "2001:db8::1"]
