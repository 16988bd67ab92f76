"""Streaming at constant memory, bytes kept across disconnects and restarts, one request
at a time per upload, atomic records. Real server processes over real HTTP."""

import hashlib
import json
import os
import signal
import threading
import time

import httpx
import pytest

from tuspluggy.testing import ServerProcess

TUS = {"Tus-Resumable": "1.0.0"}
OCTET = {"Content-Type": "application/offset+octet-stream"}
MiB = 1024 * 1024


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(field)


def pattern(size, seed=0):
    block = hashlib.sha256(str(seed).encode()).digest() * (MiB // 32)
    whole, rest = divmod(size, len(block))
    return block * whole + block[:rest]


def test_one_gib_patch_streams_at_constant_memory(tmp_path):
    size = 1024 * MiB
    with ServerProcess(data_dir=str(tmp_path)) as srv, httpx.Client(timeout=300) as client:
        # Warm up allocators and imports with a small upload first.
        warm = client.post(srv.url + "/", headers={**TUS, "Upload-Length": str(4 * MiB)}).headers["Location"]
        client.patch(warm, content=b"w" * 4 * MiB, headers={**TUS, **OCTET, "Upload-Offset": "0"})
        pid = srv.process.pid
        baseline = rss_kib(pid)
        location = client.post(srv.url + "/", headers={**TUS, "Upload-Length": str(size)}).headers["Location"]
        chunk = pattern(MiB, 1)
        peak = [baseline]
        done = threading.Event()

        def watch():
            while not done.is_set():
                peak[0] = max(peak[0], rss_kib(pid))
                time.sleep(0.05)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        body = (chunk for _ in range(size // MiB))
        response = client.patch(location, content=body, headers={
            **TUS, **OCTET, "Upload-Offset": "0", "Content-Length": str(size)})
        done.set()
        watcher.join()
        assert response.status_code == 204
        assert response.headers["Upload-Offset"] == str(size)
        growth_mb = (peak[0] - baseline) / 1024
        print(f"baseline {baseline / 1024:.1f} MB, peak {peak[0] / 1024:.1f} MB, growth {growth_mb:.1f} MB")
        assert growth_mb < 48, f"RSS grew by {growth_mb:.1f} MB during a 1 GiB PATCH"
        stored = os.path.join(str(tmp_path), location.rsplit("/", 1)[1])
        assert os.path.getsize(stored) == size
        with open(stored, "rb") as file:
            file.seek(size - MiB)
            assert file.read() == chunk


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_upload_resumes_byte_identical_after_a_server_restart(tmp_path, sig):
    data = pattern(24 * MiB, 2)
    srv = ServerProcess(data_dir=str(tmp_path)).start()
    try:
        with httpx.Client(timeout=60) as client:
            location = client.post(srv.url + "/", headers={**TUS, "Upload-Length": str(len(data))}).headers["Location"]
            client.patch(location, content=data[: 10 * MiB], headers={**TUS, **OCTET, "Upload-Offset": "0"})

            # A PATCH in flight when the server dies: slow body, then the signal.
            def slow_body():
                for i in range(10 * MiB, 20 * MiB, MiB):
                    yield data[i: i + MiB]
                    time.sleep(0.1)

            def send():
                try:
                    client2 = httpx.Client(timeout=60)
                    client2.patch(location, content=slow_body(), headers={
                        **TUS, **OCTET, "Upload-Offset": str(10 * MiB), "Content-Length": str(10 * MiB)})
                except httpx.HTTPError:
                    pass

            sender = threading.Thread(target=send)
            sender.start()
            time.sleep(0.5)
            srv.stop(sig)
            sender.join()
        srv.start()  # same port, same data
        with httpx.Client(timeout=60) as client:
            offset = int(client.head(location, headers=TUS).headers["Upload-Offset"])
            assert 10 * MiB <= offset <= 20 * MiB
            response = client.patch(location, content=data[offset:], headers={
                **TUS, **OCTET, "Upload-Offset": str(offset)})
            assert response.status_code == 204
            assert hashlib.sha256(client.get(location).content).digest() == hashlib.sha256(data).digest()
    finally:
        srv.stop()


def test_concurrent_patches_to_one_upload_never_interleave(tmp_path):
    size = 8 * MiB
    with ServerProcess("--lock-timeout", "1", data_dir=str(tmp_path)) as srv:
        location = httpx.post(srv.url + "/", headers={**TUS, "Upload-Length": str(size)}).headers["Location"]
        results = {}

        def slow(fill):
            for _ in range(8):
                yield fill * MiB
                time.sleep(0.2)

        def send(name, fill):
            with httpx.Client(timeout=60) as client:
                response = client.patch(location, content=slow(fill), headers={
                    **TUS, **OCTET, "Upload-Offset": "0", "Content-Length": str(size)})
                results[name] = response

        threads = [threading.Thread(target=send, args=(n, f)) for n, f in (("a", b"a"), ("b", b"b"))]
        for thread in threads:
            thread.start()
            time.sleep(0.1)
        for thread in threads:
            thread.join()
        statuses = sorted(r.status_code for r in results.values())
        assert statuses in ([204, 409], [204, 423]), statuses
        for response in results.values():
            assert response.status_code < 500
        content = httpx.get(location, timeout=60).content
        assert content in (b"a" * size, b"b" * size)


def test_records_are_replaced_atomically(tmp_path):
    with ServerProcess(data_dir=str(tmp_path)) as srv, httpx.Client() as client:
        location = client.post(srv.url + "/", headers={**TUS, "Upload-Length": "1000"}).headers["Location"]
        for offset in range(0, 1000, 10):
            client.patch(location, content=b"x" * 10, headers={**TUS, **OCTET, "Upload-Offset": str(offset)})
    leftovers = [name for name in os.listdir(tmp_path) if name.startswith(".tmp-")]
    assert leftovers == []
    record = json.loads((tmp_path / (location.rsplit("/", 1)[1] + ".info")).read_text())
    assert record["offset"] == 1000


def test_force_fsync_still_serves(tmp_path):
    with ServerProcess("--force-fsync", "yes", data_dir=str(tmp_path)) as srv, httpx.Client() as client:
        location = client.post(srv.url + "/", headers={**TUS, "Upload-Length": "6"}).headers["Location"]
        assert client.patch(location, content=b"abcdef", headers={**TUS, **OCTET, "Upload-Offset": "0"}).status_code == 204
        assert client.get(location).content == b"abcdef"
