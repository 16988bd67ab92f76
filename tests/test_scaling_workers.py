"""--workers N: several processes of one machine on one port keep the guarantees of
several instances (the same shared stores and locks, the same racing-PATCH outcome)."""

from __future__ import annotations

import threading

import httpx
import pytest

from scaling_support import (  # noqa: F401 (moto is a fixture)
    MiB, Cluster, clear_redis_prefix, create, drop_table, moto, offset_of, patch, payload, postgres_dsn,
)
from tuspluggy.testing import ServerProcess, require_service


@pytest.fixture(params=["file", "redis", "postgres"])
def workers_server(request, moto, tmp_path):
    import uuid

    kind = request.param
    name = uuid.uuid4().hex[:10]
    if kind == "file":
        args = []
    else:
        require_service(kind)
        if kind == "redis":
            info = ["--info-storage", "redis-info-storage", "--info-db-dsn", "redis://127.0.0.1:6379/0",
                    "--redis-key-prefix", f"workers-{name}:"]
        else:
            info = ["--info-storage", "db-info-storage", "--info-db-dsn", postgres_dsn(),
                    "--db-info-table", f"workers_{name}"]
        args = Cluster(moto, info, tmp_path).args()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    server = ServerProcess(*args, "--workers", "2", data_dir=str(data_dir)).start()
    yield server
    server.stop()
    if kind == "redis":
        clear_redis_prefix(f"workers-{name}:")
    elif kind == "postgres":
        drop_table(f"workers_{name}")


def test_workers_share_uploads_and_never_corrupt_racing_patches(workers_server):
    data = payload(6 * MiB + 11, seed=21)
    chunk = 2 * MiB + 7  # four rounds of three racing requests
    with httpx.Client(timeout=60) as client:
        location = create(client, workers_server.url, len(data))
        offset = 0
        while offset < len(data):
            statuses = []

            def send(start=offset):
                # A fresh connection each: the kernel hands them to either worker.
                with httpx.Client(timeout=60) as own:
                    statuses.append(patch(own, location, start, data[start: start + chunk]).status_code)

            threads = [threading.Thread(target=send) for _ in range(3)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            assert statuses.count(204) >= 1 and set(statuses) <= {204, 409, 423}, statuses
            offset = offset_of(client, location)
        for _ in range(4):  # several connections, served by either worker
            with httpx.Client(timeout=60) as own:
                assert own.get(location).content == data
