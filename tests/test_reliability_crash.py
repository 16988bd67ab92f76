"""Crash: the server is killed with SIGKILL while 20 uploads stream in at once. After a
restart every upload resumes from the offset HEAD reports, and every file ends up
byte-identical to its source."""

from __future__ import annotations

import os
import threading
import time

import httpx

from tuspluggy.testing import ServerProcess

TUS = {"Tus-Resumable": "1.0.0"}
PATCH = {**TUS, "Content-Type": "application/offset+octet-stream"}
UPLOADS = 20
SIZE = 2 * 1024 * 1024
PATCH_SIZE = 512 * 1024
PIECE = 32 * 1024  # the client sends a PATCH body in pieces, with a pause after each


def slow_body(data: bytes):
    for start in range(0, len(data), PIECE):
        yield data[start:start + PIECE]
        time.sleep(0.01)


def test_sigkill_during_20_uploads_then_every_upload_resumes_byte_identical(data_dir):
    sources = [os.urandom(SIZE) for _ in range(UPLOADS)]
    acknowledged = [0] * UPLOADS
    stop = threading.Event()
    with ServerProcess(data_dir=data_dir) as server:
        with httpx.Client(timeout=30) as client:
            locations = [
                client.post(server.url + "/", headers={**TUS, "Upload-Length": str(SIZE)}).headers["Location"]
                for _ in range(UPLOADS)
            ]

        def upload(index: int) -> None:
            with httpx.Client(timeout=30) as client:
                offset = 0
                try:
                    while offset < SIZE and not stop.is_set():
                        body = sources[index][offset:offset + PATCH_SIZE]
                        r = client.patch(locations[index], content=slow_body(body),
                                         headers={**PATCH, "Upload-Offset": str(offset)})
                        assert r.status_code == 204, r.text
                        offset = acknowledged[index] = int(r.headers["Upload-Offset"])
                except httpx.TransportError:
                    pass  # the server was killed under us

        threads = [threading.Thread(target=upload, args=(i,)) for i in range(UPLOADS)]
        for thread in threads:
            thread.start()
        # Kill once the uploads are well under way, with most PATCHes in flight.
        deadline = time.monotonic() + 30
        while sum(acknowledged) < UPLOADS * PATCH_SIZE and time.monotonic() < deadline:
            time.sleep(0.01)
        server.kill()
        stop.set()
        for thread in threads:
            thread.join(30)
        assert 0 < sum(acknowledged) < UPLOADS * SIZE, "the kill must come while uploads are in progress"

        server.start()  # same port and directories: the upload URLs stay valid
        with httpx.Client(timeout=60) as client:
            for index, location in enumerate(locations):
                head = client.head(location, headers=TUS)
                assert head.status_code == 200, head.text
                offset = int(head.headers["Upload-Offset"])
                # Nothing acknowledged is lost; whatever is recorded is really stored.
                assert acknowledged[index] <= offset <= SIZE
                stored = open(os.path.join(data_dir, location.rsplit("/", 1)[1]), "rb").read()
                assert stored[:offset] == sources[index][:offset]
                if offset < SIZE:
                    r = client.patch(location, content=sources[index][offset:],
                                     headers={**PATCH, "Upload-Offset": str(offset)})
                    assert r.status_code == 204, r.text
                assert client.get(location).content == sources[index]
                assert open(os.path.join(data_dir, location.rsplit("/", 1)[1]), "rb").read() == sources[index]


def test_client_cut_off_mid_patch_keeps_every_byte_it_sent(server):
    """The connection drops mid-body: what the server had buffered is stored too, so HEAD
    reports exactly what the client sent, and the upload resumes from there."""
    import socket
    from urllib.parse import urlsplit

    source = os.urandom(8 * 1024 * 1024)
    sent = 3 * 1024 * 1024 + 12345
    location = httpx.post(server.url + "/", headers={**TUS, "Upload-Length": str(len(source))}).headers["Location"]
    url = urlsplit(location)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(
            f"PATCH {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nTus-Resumable: 1.0.0\r\n"
            f"Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
            f"Content-Length: {len(source)}\r\n\r\n".encode() + source[:sent]
        )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        offset = int(httpx.head(location, headers=TUS).headers["Upload-Offset"])
        if offset == sent:
            break
        time.sleep(0.05)
    assert offset == sent
    r = httpx.patch(location, content=source[sent:], headers={**PATCH, "Upload-Offset": str(sent)}, timeout=30)
    assert r.status_code == 204, r.text
    assert httpx.get(location).content == source
