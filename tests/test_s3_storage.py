"""--storage s3 against a real S3-compatible server (moto's server mode, over HTTP).

Parts are 5 MiB (S3's minimum, which moto enforces like AWS); clients send chunks of any
size, so these tests also show that short tails are held until a part is full.
"""

from __future__ import annotations

import json
import os
import threading
import time

import httpx
import pytest

from s3_server import MotoServer
from tuspluggy.testing import ServerProcess, encode_metadata

MiB = 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}
PATCH = {**TUS, "Content-Type": "application/offset+octet-stream"}


@pytest.fixture(scope="module")
def moto():
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture
def bucket(moto):
    return moto.new_bucket()


@pytest.fixture(scope="module")
def shared(moto, tmp_path_factory):
    """One server for the tests that neither restart it nor need other options (a server
    process takes seconds to start)."""
    bucket = moto.new_bucket()
    data_dir = str(tmp_path_factory.mktemp("s3-shared"))
    process = ServerProcess(*moto.server_args(bucket, "--s3-part-size", str(5 * MiB), "--allow-empty", "yes"),
                            data_dir=data_dir).start()
    process.bucket, process.data_dir = bucket, data_dir
    yield process
    process.stop()


@pytest.fixture
def s3_server(moto, bucket, data_dir):
    started = []

    def make(*extra: str) -> ServerProcess:
        process = ServerProcess(*moto.server_args(bucket, "--s3-part-size", str(5 * MiB), *extra),
                                data_dir=data_dir).start()
        started.append(process)
        return process

    yield make
    for process in started:
        process.stop()


def payload(size: int, seed: int = 1) -> bytes:
    return (bytes(range(256)) * (size // 256 + 1))[seed: seed + size]


def create(client: httpx.Client, url: str, length: int | None, **headers) -> str:
    head = {**TUS, **headers}
    if length is None:
        head["Upload-Defer-Length"] = "1"
    else:
        head["Upload-Length"] = str(length)
    response = client.post(url, headers=head)
    assert response.status_code == 201, response.text
    return response.headers["Location"]


def patch(client: httpx.Client, location: str, offset: int, data, **headers) -> httpx.Response:
    return client.patch(location, content=data, headers={**PATCH, "Upload-Offset": str(offset), **headers})


def send_in_chunks(client, location, data: bytes, chunk: int, start: int = 0) -> None:
    offset = start
    while offset < len(data):
        response = patch(client, location, offset, data[offset: offset + chunk])
        assert response.status_code == 204, response.text
        offset = int(response.headers["Upload-Offset"])


def record(data_dir: str, location: str) -> dict:
    with open(os.path.join(data_dir, location.rsplit("/", 1)[1] + ".info")) as file:
        return json.load(file)


def objects(moto, bucket: str, upload_id: str = "") -> list[str]:
    """Keys of the bucket that belong to `upload_id` (all keys if empty)."""
    keys = [item["Key"] for item in moto.client().list_objects_v2(Bucket=bucket).get("Contents", [])]
    return [key for key in keys if upload_id in key]


def multipart_uploads(moto, bucket: str, upload_id: str = "") -> list[dict]:
    uploads = moto.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return [upload for upload in uploads if upload_id in upload["Key"]]


def upload_id_of(location: str) -> str:
    return location.rsplit("/", 1)[1]


def test_s3_small_chunks_become_5mib_parts_and_download_is_identical(shared, moto):
    server, bucket = shared, shared.bucket
    data = payload(12 * MiB + 123)
    with httpx.Client(timeout=60) as client:
        location = create(client, server.url, len(data), **{"Upload-Metadata": encode_metadata({"filename": "a.bin"})})
        # 700 KiB chunks: far below S3's 5 MiB minimum part size.
        send_in_chunks(client, location, data, 700 * 1024)
        response = client.get(location)
        assert response.status_code == 200
        assert response.content == data
        ranged = client.get(location, headers={"Range": "bytes=5242000-5243000"})
        assert ranged.status_code == 206
        assert ranged.content == data[5242000:5243001]
        assert ranged.headers["Content-Range"] == f"bytes 5242000-5243000/{len(data)}"
    assert multipart_uploads(moto, bucket, upload_id_of(location)) == []  # completed
    assert objects(moto, bucket, upload_id_of(location)) == [upload_id_of(location)]  # no tail objects left
    info = moto.client().head_object(Bucket=bucket, Key=location.rsplit("/", 1)[1])
    assert info["ContentLength"] == len(data)


def test_s3_bookkeeping_never_leaks_into_metadata(shared):
    server, data_dir = shared, shared.data_dir
    with httpx.Client(timeout=60) as client:
        location = create(client, server.url, 10 * MiB, **{"Upload-Metadata": encode_metadata({"filename": "x"})})
        assert patch(client, location, 0, payload(MiB)).status_code == 204
        head = client.head(location, headers=TUS)
        assert head.headers["Upload-Metadata"] == encode_metadata({"filename": "x"})
    stored = record(data_dir, location)
    assert stored["metadata"] == {"filename": "x"}
    assert not any(key.startswith("_s3") for key in stored["metadata"])
    assert stored["storage"] == "s3"
    assert stored["storage_state"]["mpu"] and stored["storage_state"]["tail"]


def test_s3_one_large_patch_streams_into_several_parts(shared, moto):
    server, bucket, data_dir = shared, shared.bucket, shared.data_dir
    data = payload(16 * MiB + 5, seed=7)
    with httpx.Client(timeout=60) as client:
        location = create(client, server.url, len(data) + 1)  # one byte short of done
        assert patch(client, location, 0, data).status_code == 204
        state = record(data_dir, location)["storage_state"]
        assert [p["size"] for p in state["parts"]] == [5 * MiB] * 3
        assert sum(t["size"] for t in state["tail"]) == MiB + 5
        parts = moto.client().list_parts(Bucket=bucket, Key=state["key"], UploadId=state["mpu"])["Parts"]
        assert [p["Size"] for p in parts] == [5 * MiB] * 3
        assert patch(client, location, len(data), b"!").status_code == 204
        assert client.get(location).content == data + b"!"


def test_s3_tail_survives_a_restart_and_the_upload_resumes(s3_server, moto, bucket):
    server = s3_server()
    data = payload(7 * MiB, seed=3)
    with httpx.Client(timeout=60) as client:
        location = create(client, server.url, len(data))
        send_in_chunks(client, location, data[: 3 * MiB], MiB)  # under one part: all tail
        assert any(".tus-tails/" in key for key in objects(moto, bucket))
        server.kill()  # no goodbye: the tail must already be in the object store
        server.start()
        head = client.head(location, headers=TUS)
        assert head.headers["Upload-Offset"] == str(3 * MiB)
        send_in_chunks(client, location, data, 1500 * 1024, start=3 * MiB)
        assert client.get(location).content == data
    assert not any(".tus-tails/" in key for key in objects(moto, bucket))


def test_s3_patch_killed_midway_resumes_from_what_was_stored(s3_server, moto, bucket):
    server = s3_server()
    data = payload(11 * MiB, seed=5)
    sent = threading.Event()

    def slow_body():
        yield data[: 6 * MiB]
        sent.set()
        time.sleep(30)  # the server dies before the rest comes
        yield data[6 * MiB:]

    with httpx.Client(timeout=60) as client:
        location = create(client, server.url, len(data))

        def send():
            try:
                patch(client, location, 0, slow_body())
            except httpx.HTTPError:
                pass

        thread = threading.Thread(target=send, daemon=True)
        thread.start()
        assert sent.wait(20)
        time.sleep(2.5)  # more than PROGRESS_SAVE_SECONDS: the first part was committed
        server.kill()
        server.start()
        offset = int(client.head(location, headers=TUS).headers["Upload-Offset"])
        assert 0 <= offset <= 6 * MiB
        send_in_chunks(client, location, data, 2 * MiB, start=offset)
        assert client.get(location).content == data


def test_s3_checksum_mismatch_keeps_nothing_of_the_patch(shared):
    server = shared
    data = payload(6 * MiB, seed=9)
    with httpx.Client(timeout=60) as client:
        location = create(client, server.url, len(data))
        bad = patch(client, location, 0, data, **{"Upload-Checksum": "sha1 " + "A" * 27 + "="})
        assert bad.status_code == 460
        assert client.head(location, headers=TUS).headers["Upload-Offset"] == "0"
        send_in_chunks(client, location, data, 4 * MiB)
        assert client.get(location).content == data


def test_s3_deferred_length_and_empty_uploads(shared):
    server = shared
    data = payload(5 * MiB + 10, seed=11)
    with httpx.Client(timeout=60) as client:
        location = create(client, server.url, None)
        assert patch(client, location, 0, data[:MiB]).status_code == 204
        response = patch(client, location, MiB, data[MiB:], **{"Upload-Length": str(len(data))})
        assert response.status_code == 204
        assert client.get(location).content == data
        empty = create(client, server.url, 0)
        got = client.get(empty)
        assert got.status_code == 200 and got.content == b""


def test_s3_unfinished_upload_download_is_a_409(shared):
    server = shared
    with httpx.Client(timeout=60) as client:
        location = create(client, server.url, 10)
        assert patch(client, location, 0, b"12345").status_code == 204
        response = client.get(location)
        assert response.status_code == 409
        assert "not finished" in response.text


def test_s3_termination_aborts_the_multipart_upload_and_deletes_tails(shared, moto):
    server, bucket = shared, shared.bucket
    with httpx.Client(timeout=60) as client:
        location = create(client, server.url, 20 * MiB)
        upload_id = upload_id_of(location)
        assert patch(client, location, 0, payload(6 * MiB)).status_code == 204
        assert len(multipart_uploads(moto, bucket, upload_id)) == 1
        assert len(objects(moto, bucket, upload_id)) == 1  # the 1 MiB tail
        assert client.delete(location, headers=TUS).status_code == 204
    assert multipart_uploads(moto, bucket, upload_id) == []
    assert objects(moto, bucket, upload_id) == []


def concat(client, url, parts: list[str]) -> str:
    response = client.post(url, headers={**TUS, "Upload-Concat": "final;" + " ".join(parts)})
    assert response.status_code == 201, response.text
    return response.headers["Location"]


def partial_upload(client, url, data: bytes) -> str:
    location = create(client, url, len(data), **{"Upload-Concat": "partial"})
    send_in_chunks(client, location, data, 3 * MiB)
    return location


def test_s3_concatenation_copies_parts_server_side(shared, moto):
    server, bucket = shared, shared.bucket
    first, second = payload(5 * MiB + 3, seed=2), payload(MiB, seed=4)
    with httpx.Client(timeout=60) as client:
        parts = [partial_upload(client, server.url, first), partial_upload(client, server.url, second)]
        final = concat(client, server.url, parts)
        assert client.get(final).content == first + second
    # That nothing was downloaded is shown by the storage-level test below; here the
    # object store's own view of the result:
    key = final.rsplit("/", 1)[1]
    assert moto.client().head_object(Bucket=bucket, Key=key)["ContentLength"] == len(first) + len(second)


def test_s3_concatenation_of_small_parts_streams_them(shared):
    server = shared
    pieces = [payload(MiB, seed=1), payload(2 * MiB + 1, seed=2), payload(3 * MiB, seed=3)]
    with httpx.Client(timeout=60) as client:
        parts = [partial_upload(client, server.url, piece) for piece in pieces]
        final = concat(client, server.url, parts)
        assert client.get(final).content == b"".join(pieces)


def test_s3_unfinished_concatenation_completes_when_parts_do(shared):
    server = shared
    first, second = payload(5 * MiB, seed=6), payload(700 * 1024, seed=8)
    with httpx.Client(timeout=60) as client:
        a = create(client, server.url, len(first), **{"Upload-Concat": "partial"})
        b = partial_upload(client, server.url, second)
        final = concat(client, server.url, [a, b])
        assert client.head(final, headers=TUS).status_code == 200
        send_in_chunks(client, a, first, 2 * MiB)
        assert client.get(final).content == first + second


def test_s3_upload_whose_finish_was_not_recorded_is_still_served(shared):
    # As if the instance died after completing the multipart upload but before saving the
    # record that says so: put back the record of just before the last byte, complete.
    server, data_dir = shared, shared.data_dir
    data = payload(6 * MiB + 1, seed=13)
    with httpx.Client(timeout=60) as client:
        location = create(client, server.url, len(data))
        assert patch(client, location, 0, data[:-1]).status_code == 204
        path = os.path.join(data_dir, upload_id_of(location) + ".info")
        with open(path) as file:
            before = json.load(file)
        assert patch(client, location, len(data) - 1, data[-1:]).status_code == 204
        with open(path, "w") as file:
            json.dump({**before, "offset": len(data), "expires_at": None}, file)
        assert client.get(location).content == data
        assert client.get(location, headers={"Range": "bytes=-10"}).content == data[-10:]


class ClientGone(Exception):
    pass


def settled_offset(client, location: str) -> int:
    """HEAD's offset once the server has finished with a request the client left (it
    saves what arrived after noticing): the same value twice, a second apart."""
    last = None
    for _ in range(30):
        offset = int(client.head(location, headers=TUS).headers["Upload-Offset"])
        if offset == last:
            return offset
        last = offset
        time.sleep(1)
    raise AssertionError("the offset never settled")


def test_s3_clients_that_disconnect_midway_resume_to_identical_bytes(shared):
    # Each PATCH breaks off after a different amount (mid-part, just past a part, mid-tail);
    # the offset HEAD reports must always match what is stored, so resuming from it gives
    # identical bytes.
    server = shared
    data = payload(17 * MiB + 99, seed=31)
    with httpx.Client(timeout=60) as client:
        location = create(client, server.url, len(data))
        offset = 0
        for cut in (5 * MiB + 300_000, 2 * MiB + 5, 6 * MiB + 1):
            def broken_body(start=offset, cut=cut):
                sent = 0
                while sent < cut:
                    piece = data[start + sent: start + min(cut, sent + 256 * 1024)]
                    yield piece
                    sent += len(piece)
                time.sleep(0.5)  # let the server take what arrived
                raise ClientGone()

            try:
                patch(client, location, offset, broken_body())
            except (ClientGone, httpx.HTTPError):
                pass
            new_offset = settled_offset(client, location)
            assert offset <= new_offset <= offset + cut
            offset = new_offset
        send_in_chunks(client, location, data, 4 * MiB, start=offset)
        assert client.get(location).content == data
