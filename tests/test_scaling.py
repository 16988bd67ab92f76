"""Two instances behind a load balancer, sharing Redis or PostgreSQL and an S3 store:
an upload moves between them, and they never corrupt an upload they both write to."""

from __future__ import annotations

import threading
import time

import httpx

from scaling_support import MiB, cluster, create, moto, offset_of, on, patch, payload  # noqa: F401 (fixtures)
from tuspluggy.testing import ServerProcess


def test_upload_begun_on_one_instance_is_finished_on_the_other(cluster):
    a, b = cluster.start_many(2)
    data = payload(11 * MiB + 17)
    with httpx.Client(timeout=60) as client:
        location = create(client, a.url, len(data))
        # 3.5 MiB through A: all of it still a tail (less than a part), held in S3.
        for start in (0, 2 * MiB):
            end = min(start + 2 * MiB, 3 * MiB + MiB // 2)
            assert patch(client, location, start, data[start:end]).status_code == 204
        assert offset_of(client, on(b, location)) == 3 * MiB + MiB // 2
        # B picks up the tail A left and finishes the upload in odd-sized chunks.
        offset = 3 * MiB + MiB // 2
        while offset < len(data):
            response = patch(client, on(b, location), offset, data[offset: offset + 3 * MiB + 1])
            assert response.status_code == 204, response.text
            offset = int(response.headers["Upload-Offset"])
        assert client.get(location).content == data
        assert client.get(on(b, location)).content == data
        ranged = client.get(on(b, location), headers={"Range": "bytes=100-5242979"})
        assert ranged.status_code == 206 and ranged.content == data[100:5242980]


def slow_body(data: bytes, pieces: int, pause: float):
    size = len(data) // pieces + 1
    for start in range(0, len(data), size):
        yield data[start: start + size]
        time.sleep(pause)


def test_concurrent_patches_through_both_instances_never_corrupt_the_upload(cluster):
    a, b = cluster.start_many(2)
    size = 6 * MiB
    versions = {"a": payload(size, seed=1), "b": payload(size, seed=99)}
    with httpx.Client(timeout=60) as client:
        location = create(client, a.url, size)
    results: dict[str, int] = {}

    def send(name: str, instance: ServerProcess) -> None:
        with httpx.Client(timeout=60) as own:
            # Slow bodies, so both requests are in flight at the same time.
            response = patch(own, on(instance, location), 0, slow_body(versions[name], 6, 0.3))
            results[name] = response.status_code

    threads = [threading.Thread(target=send, args=(n, i)) for n, i in (("a", a), ("b", b))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results.values()) in ([204, 409], [204, 423]), results
    winner = next(name for name, status in results.items() if status == 204)
    with httpx.Client(timeout=60) as client:
        assert offset_of(client, on(a, location)) == size
        assert client.get(on(a, location)).content == versions[winner]
        assert client.get(on(b, location)).content == versions[winner]
