"""A PATCH that dies with its instance must not leave the upload locked forever."""

from __future__ import annotations

import threading
import time

import httpx

from scaling_support import MiB, cluster, create, moto, offset_of, on, patch, payload  # noqa: F401 (fixtures)


def test_a_patch_that_dies_with_its_instance_does_not_lock_the_upload_forever(cluster):
    a, b = cluster.start(), cluster.start("--lock-timeout", "15")
    data = payload(6 * MiB, seed=3)
    sent = threading.Event()

    def never_ending():
        yield data[: MiB]
        sent.set()
        time.sleep(60)
        yield data[MiB:]

    with httpx.Client(timeout=60) as client:
        location = create(client, a.url, len(data))

        def send():
            try:
                with httpx.Client(timeout=60) as own:
                    patch(own, location, 0, never_ending())
            except httpx.HTTPError:
                pass

        threading.Thread(target=send, daemon=True).start()
        assert sent.wait(20)
        time.sleep(0.5)
        a.kill()  # the instance dies holding the upload's lock
        # B gets the lock once the store notices (PostgreSQL: the connection is gone;
        # Redis: the TTL of 2 s runs out, no one renews it) and resumes the upload.
        offset = offset_of(client, on(b, location))
        response = patch(client, on(b, location), offset, data[offset:])
        assert response.status_code == 204, response.text
        assert client.get(on(b, location)).content == data
