"""Expired uploads are removed from both stores (records and bytes), whichever instance
created them."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from scaling_support import MiB, TUS, cluster, create, moto, on, patch, payload  # noqa: F401 (fixtures)


def run_cleanup(cluster, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tuspluggy.cli", "cleanup", *cluster.args("--data-dir", str(cluster.tmp_path), *extra)],
        capture_output=True, text=True, timeout=60,
    )


def test_expired_uploads_are_cleaned_from_both_stores(cluster):
    a, b = cluster.start_many(2, "--expiration", "1")
    s3 = cluster.moto.client()
    with httpx.Client(timeout=60) as client:
        stale = create(client, a.url, 10 * MiB)
        assert patch(client, stale, 0, payload(6 * MiB)).status_code == 204  # a part and a tail
        done = create(client, b.url, 100)
        assert patch(client, on(b, done), 0, payload(100)).status_code == 204  # finished: never expires
        stale_id = stale.rsplit("/", 1)[1]
        assert s3.list_multipart_uploads(Bucket=cluster.bucket).get("Uploads")
        time.sleep(1.5)
        result = run_cleanup(cluster, "--expiration", "1")
        assert result.returncode == 0, result.stdout + result.stderr
        assert stale_id in result.stdout
        for instance in (a, b):
            assert client.head(on(instance, stale), headers=TUS).status_code == 404
            assert client.get(on(instance, done)).content == payload(100)
    assert not s3.list_multipart_uploads(Bucket=cluster.bucket).get("Uploads")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=cluster.bucket).get("Contents", [])]
    assert keys == [done.rsplit("/", 1)[1]]  # no tails of the stale upload, its record gone


def test_periodic_cleanup_of_one_instance_removes_uploads_made_on_another(cluster):
    a = cluster.start("--expiration", "1", "--cleanup-interval", "0")
    b = cluster.start("--expiration", "1", "--cleanup-interval", "1")
    s3 = cluster.moto.client()
    with httpx.Client(timeout=60) as client:
        stale = create(client, a.url, 10 * MiB)
        assert patch(client, stale, 0, payload(MiB)).status_code == 204
        deadline = time.monotonic() + 20
        # The record goes first, then the bytes: wait for both.
        while (client.head(on(a, stale), headers=TUS).status_code != 404
               or s3.list_multipart_uploads(Bucket=cluster.bucket).get("Uploads")
               or s3.list_objects_v2(Bucket=cluster.bucket).get("Contents")):
            assert time.monotonic() < deadline, "B's cleanup never removed A's expired upload"
            time.sleep(0.3)
        assert client.head(on(b, stale), headers=TUS).status_code == 404
