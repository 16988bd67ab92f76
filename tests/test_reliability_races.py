"""Races: two clients PATCHing one upload at once, and PATCH racing DELETE, 50 rounds each,
against a real server with two worker processes (so requests of one race may land in
different processes and only the cross-process lock keeps them apart).

Whatever the interleaving: no 5xx, the stored bytes are exactly one client's, and no lock
is left behind (no lock file, and the next request on the upload is not kept waiting).
"""

from __future__ import annotations

import os
import threading

import httpx
import pytest
import trio

from tuspluggy.locks import FileRangeLocker
from tuspluggy.testing import ServerProcess

TUS = {"Tus-Resumable": "1.0.0"}
PATCH = {**TUS, "Content-Type": "application/offset+octet-stream"}
ROUNDS = 50
SIZE = 256 * 1024  # big enough that a PATCH takes a few reads, small enough for 50 rounds


@pytest.fixture(scope="module")
def race_server(tmp_path_factory):
    data = str(tmp_path_factory.mktemp("races"))
    # A short lock wait: a loser answers 423 quickly instead of queueing.
    with ServerProcess("--workers", "2", "--lock-timeout", "2", data_dir=data) as server:
        server.data = data
        yield server


def run_together(*calls):
    """Start every call at the same moment (a barrier), return their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        barrier.wait()
        try:
            results[index] = call()
        except httpx.HTTPError as error:  # a transport error is a result too, checked below
            results[index] = error

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def assert_no_locks_left(data: str) -> None:
    """Another process (this one) can lock every upload at once: no request kept its lock."""
    ids = [name[: -len(".info")] for name in os.listdir(data) if name.endswith(".info")]
    assert ids
    locker = FileRangeLocker(data)

    async def lock_each() -> None:
        for upload_id in ids:
            async with locker.lock(upload_id, 0.5):
                pass

    trio.run(lock_each)


def test_two_clients_patch_the_same_upload_at_once(race_server):
    url = race_server.url + "/"
    statuses: dict[int, int] = {}
    with httpx.Client(timeout=30) as a, httpx.Client(timeout=30) as b, httpx.Client(timeout=30) as check:
        for round_ in range(ROUNDS):
            location = check.post(url, headers={**TUS, "Upload-Length": str(SIZE)}).headers["Location"]
            body_a = bytes([round_ % 251]) * SIZE
            body_b = bytes([(round_ + 100) % 251]) * SIZE
            ra, rb = run_together(
                lambda: a.patch(location, content=body_a, headers={**PATCH, "Upload-Offset": "0"}),
                lambda: b.patch(location, content=body_b, headers={**PATCH, "Upload-Offset": "0"}),
            )
            for response in (ra, rb):
                assert isinstance(response, httpx.Response), response
                assert response.status_code < 500, response.text
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            winners = [(r, body) for r, body in ((ra, body_a), (rb, body_b)) if r.status_code == 204]
            # The loser saw the upload locked (423) or already moved on (409).
            assert len(winners) == 1, (ra.status_code, ra.text, rb.status_code, rb.text)
            loser = rb if winners[0][0] is ra else ra
            assert loser.status_code in (409, 423), loser.text
            stored = check.get(location)
            assert stored.content == winners[0][1], "the stored bytes mix both clients"
            assert check.head(location, headers=TUS).headers["Upload-Offset"] == str(SIZE)
    assert_no_locks_left(race_server.data)
    assert sum(statuses.values()) == 2 * ROUNDS


def test_patch_racing_delete(race_server):
    url = race_server.url + "/"
    outcomes = set()
    with httpx.Client(timeout=30) as a, httpx.Client(timeout=30) as b, httpx.Client(timeout=30) as check:
        for round_ in range(ROUNDS):
            location = check.post(url, headers={**TUS, "Upload-Length": str(SIZE)}).headers["Location"]
            upload_id = location.rsplit("/", 1)[1]
            body = os.urandom(SIZE)
            rp, rd = run_together(
                lambda: a.patch(location, content=body, headers={**PATCH, "Upload-Offset": "0"}),
                lambda: b.delete(location, headers=TUS),
            )
            assert isinstance(rp, httpx.Response) and isinstance(rd, httpx.Response), (rp, rd)
            assert rp.status_code < 500 and rd.status_code < 500, (rp.text, rd.text)
            # Either order is fine; a request that lost the lock race says so (423).
            assert rp.status_code in (204, 404, 423), rp.text
            assert rd.status_code in (204, 423), rd.text
            outcomes.add((rp.status_code, rd.status_code))
            head = check.head(location, headers=TUS)
            if rd.status_code == 204:
                assert head.status_code == 404
                # Record and bytes are both gone: nothing half-deleted stays behind.
                assert not os.path.exists(os.path.join(race_server.data, upload_id))
                assert not os.path.exists(os.path.join(race_server.data, upload_id + ".info"))
            else:
                assert head.status_code == 200
                assert check.delete(location, headers=TUS).status_code == 204
    assert_no_locks_left(race_server.data)
    # Nothing stays locked: a fresh upload on the same server is served at once.
    location = httpx.post(url, headers={**TUS, "Upload-Length": "3"}).headers["Location"]
    r = httpx.patch(location, content=b"abc", headers={**PATCH, "Upload-Offset": "0"}, timeout=5)
    assert r.status_code == 204
