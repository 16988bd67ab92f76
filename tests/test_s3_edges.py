"""--storage s3, the edges: an object-store outage, start-up errors, the options that
shape keys and requests, what hooks see, and storage-level checks (parts upload
concurrently; concatenation downloads nothing) against the same real S3 server."""

from __future__ import annotations

import time

import httpx

from s3_server import MotoServer
from test_s3_storage import (  # noqa: F401 (moto, bucket, s3_server are fixtures)
    MiB, TUS, bucket, create, encode_metadata, moto, objects, patch, payload, record, s3_server, upload_id_of,
)
from tuspluggy.testing import ServerProcess


async def test_s3_concatenation_does_not_download_parts_when_copy_is_possible(moto, bucket, monkeypatch):
    # The storage object alone, against the same real server: make any download of a
    # part's bytes fail, and concatenation must still succeed by server-side copy.
    from tuspluggy.config import Config
    from tuspluggy.plugins import s3_client, s3_storage
    from tuspluggy.upload import Upload, new_upload_id

    config = Config({"s3_url": moto.url, "s3_region": "us-east-1", "s3_access_key": "a", "s3_secret_key": "b",
                     "s3_force_path_style": True, "s3_headers": ""})
    storage = s3_storage.S3Storage(s3_client.make_client(config, 10), bucket, part_size=5 * MiB)
    await storage.open()
    try:
        uploads = []
        for size, seed in ((5 * MiB, 1), (2 * MiB, 2)):
            upload = Upload(id=new_upload_id(), length=size, is_partial=True)
            await storage.create(upload)
            writer = await storage.open_writer(upload, 0)
            await writer.write(payload(size, seed))
            await writer.commit()
            await writer.aclose()
            upload.offset = size
            await storage.finish(upload)
            uploads.append(upload)

        def no_download(*args, **kwargs):
            raise AssertionError("a part was downloaded")

        monkeypatch.setattr(storage, "_stream", no_download)
        monkeypatch.setattr(storage, "get_bytes", no_download)
        final = Upload(id=new_upload_id(), length=None, is_final=True)
        await storage.create(final)
        await storage.concatenate(final, uploads)
        final.offset = final.length = 7 * MiB
        await storage.finish(final)
        body = moto.client().get_object(Bucket=bucket, Key=final.storage_state["key"])["Body"].read()
        assert body == payload(5 * MiB, 1) + payload(2 * MiB, 2)
    finally:
        await storage.close()


def test_s3_outage_answers_503_and_keeps_the_stored_offset(tmp_path):
    own = MotoServer().start()  # this test stops it
    try:
        bucket = own.new_bucket()
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        with ServerProcess(*own.server_args(bucket, "--s3-part-size", str(5 * MiB)), data_dir=str(data_dir)) as server:
            with httpx.Client(timeout=90) as client:
                location = create(client, server.url, 10 * MiB)
                assert patch(client, location, 0, payload(MiB)).status_code == 204
                own.stop()
                response = patch(client, location, MiB, payload(6 * MiB))
                assert response.status_code == 503
                assert response.headers["Retry-After"]
                assert response.text.count("\n") <= 1 and "Traceback" not in response.text
                assert client.head(location, headers=TUS).headers["Upload-Offset"] == str(MiB)
    finally:
        own.stop()


def test_s3_unreachable_bucket_is_a_one_line_start_up_error(tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "tuspluggy.cli", "serve", "--port", "0", "--data-dir", str(tmp_path),
         "--info-dir", str(tmp_path), "--storage", "s3", "--s3-url", "http://127.0.0.1:9", "--s3-bucket", "nope",
         "--s3-access-key", "a", "--s3-secret-key", "b"],
        capture_output=True, text=True, timeout=90,
    )
    assert result.returncode != 0
    assert "bucket 'nope' is not reachable" in result.stderr
    assert "Traceback" not in result.stderr


async def test_s3_parts_upload_concurrently_and_memory_stays_bounded(moto, bucket):
    # The storage object against the real server, counting how many part uploads run at
    # once and how much the writer holds after each 1 MiB write.
    import threading as _threading

    from tuspluggy.config import Config
    from tuspluggy.plugins import s3_client, s3_storage
    from tuspluggy.upload import Upload, new_upload_id

    config = Config({"s3_url": moto.url, "s3_region": "us-east-1", "s3_access_key": "a", "s3_secret_key": "b",
                     "s3_force_path_style": True, "s3_headers": ""})
    storage = s3_storage.S3Storage(s3_client.make_client(config, 20), bucket, part_size=5 * MiB, concurrency=3)
    await storage.open()
    running, most = 0, 0
    guard = _threading.Lock()
    submit = storage.executor.submit

    def counting_submit(function, *args, **kwargs):
        def counted():
            nonlocal running, most
            with guard:
                running += 1
                most = max(most, running)
            try:
                time.sleep(0.2)  # let the next parts start before this one ends
                return function(*args, **kwargs)
            finally:
                with guard:
                    running -= 1

        return submit(counted)

    storage.executor.submit = counting_submit
    try:
        data = payload(31 * MiB, seed=19)
        upload = Upload(id=new_upload_id(), length=len(data))
        await storage.create(upload)
        writer = await storage.open_writer(upload, 0)
        for start in range(0, len(data), MiB):
            await writer.write(data[start: start + MiB])
            assert len(writer.buffer) < storage.part_size  # never more than a part waiting
            assert len(writer.inflight) <= storage.concurrency  # never more than 3 parts sent
        await writer.commit()
        await writer.aclose()
        upload.offset = len(data)
        await storage.finish(upload)
        assert most == storage.concurrency
        body = moto.client().get_object(Bucket=bucket, Key=upload.storage_state["key"])["Body"].read()
        assert body == data
    finally:
        await storage.close()


def test_s3_object_prefix_key_files_and_extra_headers(moto, bucket, tmp_path):
    from s3_server import ACCESS_KEY, SECRET_KEY

    access, secret = tmp_path / "access", tmp_path / "secret"
    access.write_text(ACCESS_KEY + "\n")
    secret.write_text(SECRET_KEY + "\n")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    args = ["--storage", "s3", "--s3-url", moto.url, "--s3-bucket", bucket, "--s3-region", "us-east-1",
            "--s3-force-path-style", "yes", "--s3-access-key-path", str(access), "--s3-secret-key-path", str(secret),
            "--s3-object-prefix", "tus/", "--s3-headers", '{"x-amz-meta-origin": "tuspluggy"}']
    data = payload(2 * MiB, seed=23)
    with ServerProcess(*args, data_dir=str(data_dir)) as server, httpx.Client(timeout=60) as client:
        location = create(client, server.url, len(data))
        assert patch(client, location, 0, data[:MiB]).status_code == 204
        assert objects(moto, bucket, upload_id_of(location))[0].startswith("tus/.tus-tails/")
        assert patch(client, location, MiB, data[MiB:]).status_code == 204
        assert client.get(location).content == data
    key = "tus/" + upload_id_of(location)
    assert objects(moto, bucket, upload_id_of(location)) == [key]
    assert moto.client().head_object(Bucket=bucket, Key=key)["Metadata"] == {"origin": "tuspluggy"}


def test_s3_bad_headers_option_is_a_one_line_start_up_error(moto, bucket, tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "tuspluggy.cli", "serve", "--port", "0", "--data-dir", str(tmp_path),
         "--info-dir", str(tmp_path), *moto.server_args(bucket, "--s3-headers", "[1, 2]")],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "--s3-headers must be a JSON object" in result.stderr and "Traceback" not in result.stderr


def test_s3_bookkeeping_never_reaches_hooks(moto, bucket, tmp_path):
    import stat
    import sys

    log = tmp_path / "hooks.jsonl"
    script = tmp_path / "hook.py"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        "    f.write(sys.argv[2] + '\\n')\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    args = moto.server_args(bucket, "--hooks-file", str(script), "--hooks", "post-create,post-receive,post-finish")
    data = payload(6 * MiB, seed=29)
    with ServerProcess(*args, data_dir=str(data_dir)) as server, httpx.Client(timeout=60) as client:
        location = create(client, server.url, len(data), **{"Upload-Metadata": encode_metadata({"filename": "f"})})
        assert patch(client, location, 0, data[: 3 * MiB]).status_code == 204
        mpu = record(str(data_dir), location)["storage_state"]["mpu"]
        assert patch(client, location, 3 * MiB, data[3 * MiB:]).status_code == 204

        def three_events():
            return log.exists() and len(log.read_text().splitlines()) >= 3 and log.read_text()

        from tuspluggy.testing import wait_for

        text = wait_for(three_events, timeout=30)
    assert '"filename"' in text
    assert "_s3" not in text and "storage_state" not in text and "etag" not in text.lower()
    assert mpu not in text  # the multipart upload id stays private


def test_s3_upload_of_another_storage_is_a_404_not_a_crash(s3_server, data_dir):
    with ServerProcess(data_dir=data_dir) as file_server, httpx.Client(timeout=60) as client:
        location = create(client, file_server.url, 10)
        upload_id = upload_id_of(location)
    server = s3_server()  # same --info-dir, now --storage s3
    with httpx.Client(timeout=60) as client:
        response = patch(client, server.url + "/" + upload_id, 0, b"12345")
        assert response.status_code == 404
        assert "not in the object store" in response.text
