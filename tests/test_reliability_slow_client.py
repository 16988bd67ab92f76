"""Slow or dead clients: a PATCH whose client stops sending is given up after
--read-timeout, what arrived is kept, the upload's lock is released, and other clients are
served the whole time. A client that never finishes its request head is dropped too."""

from __future__ import annotations

import os
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

from tuspluggy.testing import ServerProcess, read_raw_answer, tus_upload

TUS = {"Tus-Resumable": "1.0.0"}
PATCH = {**TUS, "Content-Type": "application/offset+octet-stream"}
READ_TIMEOUT = 2


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory):
    data = str(tmp_path_factory.mktemp("slow"))
    with ServerProcess("--read-timeout", str(READ_TIMEOUT), "--lock-timeout", "1", data_dir=data) as server:
        server.data = data
        yield server


def open_stalled_patch(location: str, sent: bytes, declared: int) -> socket.socket:
    """A PATCH that announces `declared` bytes, sends `sent`, then goes quiet."""
    url = urlsplit(location)
    sock = socket.create_connection((url.hostname, url.port), timeout=30)
    head = (
        f"PATCH {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nTus-Resumable: 1.0.0\r\n"
        f"Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    )
    sock.sendall(head.encode() + sent)
    return sock


def answer_or_close(sock: socket.socket, timeout: float) -> bytes:
    """What the server sends before it closes (b"" when it just closes)."""
    sock.settimeout(timeout)
    return read_raw_answer(sock, head_only=True)


def test_stalled_patch_is_timed_out_keeps_its_bytes_and_frees_the_lock(slow_server):
    url = slow_server.url + "/"
    source = os.urandom(512 * 1024)
    location = httpx.post(url, headers={**TUS, "Upload-Length": str(len(source))}).headers["Location"]
    sent = source[:200_000]
    stalled = open_stalled_patch(location, sent, len(source))
    try:
        started = time.monotonic()
        # Other clients are served while the stalled request holds the upload.
        while time.monotonic() - started < READ_TIMEOUT * 0.75:
            other = tus_upload(url, os.urandom(100_000), chunk_size=40_000)
            assert httpx.head(other, headers=TUS).status_code == 200
        # The same upload is busy meanwhile: a second writer is told so, not queued forever.
        busy = httpx.patch(location, content=b"x", headers={**PATCH, "Upload-Offset": "0"}, timeout=30)
        assert busy.status_code in (409, 423), busy.text

        answer = answer_or_close(stalled, timeout=READ_TIMEOUT * 10)
        assert answer == b"" or answer.split(b" ", 2)[1] in (b"408", b"400"), answer[:200]
    finally:
        stalled.close()

    def offset() -> int:
        return int(httpx.head(location, headers=TUS).headers["Upload-Offset"])

    # What arrived before the client went quiet is stored and recorded.
    deadline = time.monotonic() + 10
    while offset() != len(sent) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert offset() == len(sent)
    # The lock is free: the upload resumes at once from HEAD.
    r = httpx.patch(location, content=source[len(sent):], headers={**PATCH, "Upload-Offset": str(len(sent))},
                    timeout=30)
    assert r.status_code == 204, r.text
    assert httpx.get(location).content == source


def test_client_that_never_finishes_its_request_head_is_dropped(slow_server):
    url = urlsplit(slow_server.url)
    idle = socket.create_connection((url.hostname, url.port), timeout=30)
    try:
        idle.sendall(b"PATCH /files/abc HTTP/1.1\r\nHost: x\r\nTus-Resum")
        assert tus_upload(slow_server.url + "/", b"still served")
        answer = answer_or_close(idle, timeout=READ_TIMEOUT * 10)
        assert not answer.startswith(b"HTTP/1.1 5"), answer[:200]
    finally:
        idle.close()
