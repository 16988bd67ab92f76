"""Graceful stop: SIGTERM during a PATCH keeps what arrived and ends the request cleanly
(an answer or a closed connection, never a hang); hook events not yet delivered when
the server stops are delivered after it starts again."""

from __future__ import annotations

import http.server
import json
import os
import socket
import threading
from urllib.parse import urlsplit

import httpx

from tuspluggy.testing import ServerProcess, read_raw_answer, tus_upload, wait_for

TUS = {"Tus-Resumable": "1.0.0"}
PATCH = {**TUS, "Content-Type": "application/offset+octet-stream"}


def test_sigterm_during_a_patch_stores_what_arrived(data_dir):
    source = os.urandom(1024 * 1024)
    sent = source[:300_000]
    with ServerProcess(data_dir=data_dir) as server:
        location = httpx.post(server.url + "/", headers={**TUS, "Upload-Length": str(len(source))}).headers["Location"]
        url = urlsplit(location)
        sock = socket.create_connection((url.hostname, url.port), timeout=60)
        sock.sendall(
            f"PATCH {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nTus-Resumable: 1.0.0\r\n"
            f"Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
            f"Content-Length: {len(source)}\r\n\r\n".encode() + sent
        )
        # HEAD shows progress once the bytes are in (the stalled PATCH holds the upload).
        wait_for(lambda: httpx.head(location, headers=TUS).status_code == 200)
        code = server.stop()  # SIGTERM, then waits for the process to exit
        answer = read_raw_answer(sock)
        sock.close()
        assert code == 0, server.log()[-2000:]
        # Either an answer (not a 5xx) or a plain close.
        assert answer == b"" or not answer.split(b" ", 2)[1].startswith(b"5"), answer[:300]
        assert "Traceback" not in server.log()

        server.start()
        head = httpx.head(location, headers=TUS)
        assert head.headers["Upload-Offset"] == str(len(sent))
        r = httpx.patch(location, content=source[len(sent):], headers={**PATCH, "Upload-Offset": str(len(sent))})
        assert r.status_code == 204, r.text
        assert httpx.get(location).content == source


class HookReceiver:
    """An HTTP hook endpoint that refuses (503) until `accepting` is set."""

    def __init__(self) -> None:
        self.accepting = threading.Event()
        self.events: list[dict] = []
        self.refused = 0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if not receiver.accepting.is_set():
                    receiver.refused += 1
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.events.append({"hook": self.headers.get("Hook-Name", ""), "body": body.decode()})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/hooks"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()


def test_hook_events_in_flight_at_sigterm_are_delivered_after_restart(data_dir):
    receiver = HookReceiver()
    try:
        with ServerProcess("--hooks-http-urls", receiver.url, "--hooks", "post-create,post-finish",
                           "--hooks-retry-delay", "0.2", "--hooks-retry-max-delay", "0.5",
                           data_dir=data_dir) as server:
            location = tus_upload(server.url + "/", b"hooked bytes")
            upload_id = location.rsplit("/", 1)[1]
            wait_for(lambda: receiver.refused >= 2, timeout=20)  # deliveries are being tried
            assert server.stop() == 0, server.log()[-2000:]
            assert receiver.events == []

            receiver.accepting.set()
            server.start()

            def delivered():
                mine = [e for e in receiver.events if upload_id in e["body"]]
                names = {e["hook"] for e in mine} | {json.loads(e["body"]).get("type", "") for e in mine}
                return mine if {"post-create", "post-finish"} <= names else None

            events = wait_for(delivered, timeout=30)
            assert len(events) >= 2
    finally:
        receiver.close()
