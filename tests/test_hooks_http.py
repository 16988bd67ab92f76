"""HTTP hooks against the document's FastAPI receiver (contrib/fastapi_receiver) run by
uvicorn, and delivery that loses nothing while the receiver or the server is down."""

from __future__ import annotations

import collections
import socket

import httpx
import pytest

from hooks_support import Receiver, validate_payload, wait_until
from tuspluggy.testing import tus_upload

TUS = {"Tus-Resumable": "1.0.0"}
AUTH = {"Authorization": "Bearer jwt"}


@pytest.fixture
def receiver(tmp_path):
    started = Receiver(tmp_path / "received.jsonl").start()
    yield started
    started.stop()


def test_events_reach_the_receiver_with_hook_name_idempotency_key_and_proxied_header(make_server, receiver):
    server = make_server("--hooks-http-urls", receiver.url, "--hooks-http-proxy-headers", "Authorization",
                         "--hooks-format", "v2")
    location = tus_upload(server.url, b"x" * 10, chunk_size=4, headers=AUTH)
    assert httpx.delete(location, headers={**TUS, **AUTH}).status_code == 204
    expected = ["pre-create", "post-create", "post-receive", "post-receive", "post-finish", "pre-terminate",
                "post-terminate"]
    received = wait_until(lambda: len(receiver.received()) >= len(expected) and receiver.received())
    assert sorted(r["hook_name"] for r in received) == sorted(expected)
    keys = [r["idempotency_key"] for r in received]
    assert all(keys) and len(set(keys)) == len(keys)  # one key per event
    for record in received:
        validate_payload(record["payload"], "v2")
        assert record["payload"]["request"]["headers"]["authorization"] == "Bearer jwt"


def test_rejection_reaches_the_client_unchanged(make_server, receiver, data_dir):
    server = make_server("--hooks-http-urls", receiver.url, "--hooks-http-proxy-headers", "Authorization")
    response = httpx.post(server.url, headers={**TUS, "Upload-Length": "3", "Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": "Unauthorized"}
    assert [n for n in __import__("os").listdir(data_dir) if n.endswith(".info")] == []


def test_receiver_answer_changes_the_new_upload(make_server, receiver):
    server = make_server("--hooks-http-urls", receiver.url + "/rename", "--hooks", "pre-create")
    from tuspluggy.testing import encode_metadata

    created = httpx.post(server.url, headers={**TUS, "Upload-Length": "3",
                                              "Upload-Metadata": encode_metadata({"name": "report"})})
    assert created.status_code == 201
    assert created.headers["Location"].endswith("/named-report")
    head = httpx.head(created.headers["Location"], headers=TUS)
    assert "checked " in head.headers["Upload-Metadata"]


def test_unreachable_receiver_gives_502_naming_the_hook(make_server):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    url = f"http://127.0.0.1:{port}/hooks"
    server = make_server("--hooks-http-urls", url)
    response = httpx.post(server.url, headers={**TUS, "Upload-Length": "3"})
    assert response.status_code == 502
    assert f"pre-create hook of notifier http:{url}" in response.text


def test_silent_receiver_gives_504_after_http_hook_timeout(make_server):
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hooks"
        server = make_server("--hooks-http-urls", url, "--http-hook-timeout", "0.5")
        response = httpx.post(server.url, headers={**TUS, "Upload-Length": "3"}, timeout=30)
    assert response.status_code == 504
    assert "pre-create hook" in response.text and "timed out" in response.text


def _delivered(receiver) -> collections.Counter:
    return collections.Counter(r["idempotency_key"] for r in receiver.received())


def test_receiver_down_then_server_restart_loses_nothing(make_server, tmp_path):
    receiver = Receiver(tmp_path / "received.jsonl")  # not started: the receiver is down
    events = "post-create,post-receive,post-finish,post-terminate"
    server = make_server("--hooks-http-urls", receiver.url, "--hooks-http-proxy-headers", "Authorization",
                         "--hooks", events, "--hooks-retry-delay", "0.2", "--hooks-retry-max-delay", "1")
    locations = [tus_upload(server.url, b"y" * 8, chunk_size=3, headers=AUTH) for _ in range(3)]
    assert httpx.delete(locations[0], headers={**TUS, **AUTH}).status_code == 204
    wait_until(lambda: "failed (attempt 2)" in server.log())  # retried, with the reason logged
    assert "could not be reached" in server.log()
    server.kill()  # SIGKILL: the undelivered events are on disk and survive a crash
    server.start()
    receiver.start()
    try:
        # per upload: post-create, post-receive x2, post-finish; plus post-terminate once
        expected = 3 * 4 + 1
        wait_until(lambda: sum(_delivered(receiver).values()) >= expected, 60)
        server.stop()  # nothing left to send: no late duplicates either
        received = receiver.received()
        assert len(received) == expected
        assert all(count == 1 for count in _delivered(receiver).values())
        names = collections.Counter(r["hook_name"] for r in received)
        assert names == {"post-create": 3, "post-receive": 6, "post-finish": 3, "post-terminate": 1}
    finally:
        receiver.stop()


def test_receiver_restart_while_server_runs_loses_nothing(make_server, tmp_path):
    receiver = Receiver(tmp_path / "received.jsonl").start()
    server = make_server("--hooks-http-urls", receiver.url, "--hooks-http-proxy-headers", "Authorization",
                         "--hooks", "post-create,post-finish", "--hooks-retry-delay", "0.2",
                         "--hooks-retry-max-delay", "1")
    try:
        tus_upload(server.url, b"z", headers=AUTH)
        wait_until(lambda: len(receiver.received()) == 2)
        receiver.stop()
        for _ in range(4):
            tus_upload(server.url, b"z", headers=AUTH)
        receiver.start()
        wait_until(lambda: len(receiver.received()) >= 10, 60)
        server.stop()
        assert len(receiver.received()) == 10
        assert all(count == 1 for count in _delivered(receiver).values())
    finally:
        receiver.stop()


def test_pre_terminate_rejection_keeps_the_upload(make_server, receiver):
    server = make_server("--hooks-http-urls", receiver.url, "--hooks-http-proxy-headers", "Authorization",
                         "--hooks", "pre-terminate")
    location = httpx.post(server.url, headers={**TUS, "Upload-Length": "3"}).headers["Location"]
    refused = httpx.delete(location, headers={**TUS, "Authorization": "Bearer wrong"})
    assert refused.status_code == 401 and refused.json() == {"detail": "Unauthorized"}
    assert httpx.head(location, headers=TUS).status_code == 200
    assert httpx.delete(location, headers={**TUS, **AUTH}).status_code == 204


def test_several_urls_each_get_every_event_and_the_first_rejection_stops(make_server, tmp_path):
    first = Receiver(tmp_path / "first.jsonl").start()
    second = Receiver(tmp_path / "second.jsonl").start()
    try:
        server = make_server("--hooks-http-urls", f"{first.url},{second.url}", "--hooks-http-proxy-headers",
                             "Authorization", "--hooks", "pre-create,post-create")
        assert httpx.post(server.url, headers={**TUS, "Upload-Length": "3", **AUTH}).status_code == 201
        wait_until(lambda: len(first.received()) == 2 and len(second.received()) == 2)
        assert [r["hook_name"] for r in second.received()] == ["pre-create", "post-create"]
        # One event id per event, the same at every URL.
        assert [r["idempotency_key"] for r in first.received()] == [r["idempotency_key"] for r in second.received()]
        assert httpx.post(server.url, headers={**TUS, "Upload-Length": "3"}).status_code == 401
        assert len(second.received()) == 2  # the second URL was not asked after the first said no
    finally:
        first.stop()
        second.stop()
