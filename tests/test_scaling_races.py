"""Two instances sharing Redis or PostgreSQL and an S3 store, with clients that retry
blindly: racing PATCHes of the same chunk through both never corrupt an upload."""

from __future__ import annotations

import threading

import httpx

from scaling_support import MiB, cluster, create, moto, offset_of, on, patch, payload  # noqa: F401 (fixtures)


def test_many_racing_chunks_through_both_instances_keep_the_bytes_right(cluster):
    # Clients that retry blindly: each chunk is sent through both instances at once;
    # whichever loses gets 409 (offset moved) or 423 (still locked), never a corruption.
    a, b = cluster.start_many(2)
    data = payload(6 * MiB + 3, seed=5)
    chunk = 2 * MiB + 1  # three rounds; the second crosses the first 5 MiB part
    with httpx.Client(timeout=60) as client:
        location = create(client, a.url, len(data))
        offset = 0
        while offset < len(data):
            statuses = []

            def send(instance, start=offset):
                with httpx.Client(timeout=60) as own:
                    statuses.append(patch(own, on(instance, location), start, data[start: start + chunk]).status_code)

            threads = [threading.Thread(target=send, args=(i,)) for i in (a, b)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            assert 204 in statuses and set(statuses) <= {204, 409, 423}, statuses
            offset = offset_of(client, on(b, location))
        assert offset == len(data)
        assert client.get(on(a, location)).content == data
