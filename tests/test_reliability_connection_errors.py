"""One connection's unexpected error must not stop the server (hypercorn lets anything but
OSError escape a connection's task; core/tuning.contain_connection_errors), and a client
that vanishes mid-PATCH gets no answer written after it, which once raced hypercorn's own
answer on the same socket and crashed the server."""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlsplit

import httpx
import trio
from hypercorn.trio.tcp_server import TCPServer

from tuspluggy import tuning
from tuspluggy.testing import ServerProcess, ThreadServer

TUS = {"Tus-Resumable": "1.0.0"}


def test_an_unexpected_error_in_one_connection_leaves_the_server_serving(tmp_path, monkeypatch):
    tuning.contain_connection_errors()  # what `tuspluggy serve` applies at start-up
    original = TCPServer._read_data
    failed = []

    async def read_data_failing_once(self) -> None:
        if not failed:
            failed.append(True)
            raise trio.BusyResourceError("another task is currently sending data on this SocketStream")
        await original(self)

    monkeypatch.setattr(TCPServer, "_read_data", read_data_failing_once)
    with ThreadServer(data_dir=str(tmp_path), info_dir=str(tmp_path)) as srv:
        try:
            httpx.options(srv.url + "/", timeout=5)
        except httpx.HTTPError:
            pass  # that connection is the one that failed
        assert failed
        response = httpx.post(srv.url + "/", headers={**TUS, "Upload-Length": "3"}, timeout=5)
        assert response.status_code == 201


def test_clients_cut_off_mid_patch_again_and_again_never_stop_the_server(tmp_path):
    with ServerProcess(data_dir=str(tmp_path)) as srv, httpx.Client(timeout=10) as client:
        for _ in range(15):
            url = client.post(srv.url + "/", headers={**TUS, "Upload-Length": "100000"}).headers["Location"]
            parts = urlsplit(url)
            head = (f"PATCH {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nTus-Resumable: 1.0.0\r\n"
                    "Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n"
                    "Content-Length: 100000\r\n\r\n").encode()
            with socket.create_connection((parts.hostname, parts.port)) as sock:
                sock.sendall(head + b"x" * 30_000)
                time.sleep(0.05)
            deadline = time.monotonic() + 10
            while int(client.head(url, headers=TUS).headers["Upload-Offset"]) != 30_000:
                assert time.monotonic() < deadline
                time.sleep(0.02)
        assert srv.process.poll() is None
        assert "Traceback" not in srv.log()


def test_an_early_answer_to_a_long_body_closes_the_connection_instead_of_hanging(tmp_path):
    # A PATCH refused before its body is read (409 here; a losing concurrent PATCH, a
    # failed pre-hook) while the client is still sending tens of MiB: the client gets the
    # answer, then the connection is closed; nothing waits for the client's timeout.
    with ServerProcess(data_dir=str(tmp_path)) as srv, httpx.Client(timeout=10) as client:
        url = client.post(srv.url + "/", headers={**TUS, "Upload-Length": str(200 << 20)}).headers["Location"]
        parts = urlsplit(url)
        head = (f"PATCH {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nTus-Resumable: 1.0.0\r\n"
                "Upload-Offset: 5\r\nContent-Type: application/offset+octet-stream\r\n"
                f"Content-Length: {200 << 20}\r\n\r\n").encode()
        sock = socket.create_connection((parts.hostname, parts.port))
        sock.settimeout(10)
        sock.sendall(head)
        stopped = []

        def keep_sending() -> None:
            block = b"z" * 65536
            deadline = time.monotonic() + 30
            try:
                while time.monotonic() < deadline:
                    sock.sendall(block)
            except OSError as error:  # the server closed the connection: what we want
                stopped.append(error)

        sender = threading.Thread(target=keep_sending, daemon=True)
        sender.start()
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 409"), answer[:100]
        sender.join(8)
        assert stopped, "the server kept the connection open, reading nothing"
        sock.close()
        assert client.head(url, headers=TUS).headers["Upload-Offset"] == "0"
