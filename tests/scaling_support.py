"""Shared by tests/test_scaling*.py: a cluster of real `tuspluggy serve` processes on
different ports that share the records (Redis or PostgreSQL, for real) and the bytes (an
S3-compatible server, moto's server mode over HTTP). Each instance has its own
--data-dir, so nothing is shared through the local disk.
"""

from __future__ import annotations

import getpass
import os
import threading
import uuid

import httpx
import pytest

from s3_server import MotoServer
from tuspluggy.testing import ServerProcess, require_service

MiB = 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}
PATCH = {**TUS, "Content-Type": "application/offset+octet-stream"}


def postgres_dsn() -> str:
    # The machines' PostgreSQL trusts the local user (root in CI); the compose file's has only `postgres`.
    default = f"postgresql://{'root' if getpass.getuser() == 'root' else 'postgres'}@127.0.0.1:5432/test"
    return os.environ.get("TUSPLUGGY_TEST_POSTGRES_DSN", default)


def drop_table(table: str) -> None:
    import asyncio

    import asyncpg

    async def drop():
        connection = await asyncpg.connect(postgres_dsn())
        try:
            await connection.execute(f"DROP TABLE IF EXISTS {table}")
        finally:
            await connection.close()

    asyncio.run(drop())


def clear_redis_prefix(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    keys = client.keys(prefix + "*")
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="module")
def moto():
    server = MotoServer().start()
    yield server
    server.stop()


class Cluster:
    """Options shared by every instance, and the instances started with them."""

    def __init__(self, moto: MotoServer, info_args: list[str], tmp_path) -> None:
        self.moto = moto
        self.bucket = moto.new_bucket()
        self.info_args = info_args
        self.tmp_path = tmp_path
        self.instances: list[ServerProcess] = []

    def args(self, *extra: str) -> list[str]:
        return [*self.moto.server_args(self.bucket, "--s3-part-size", str(5 * MiB)), *self.info_args, *extra]

    def start(self, *extra: str) -> ServerProcess:
        data_dir = self.tmp_path / f"instance-{len(self.instances)}"
        data_dir.mkdir()
        instance = ServerProcess(*self.args(*extra), data_dir=str(data_dir)).start()
        self.instances.append(instance)
        return instance

    def start_many(self, count: int, *extra: str) -> list[ServerProcess]:
        """Start `count` instances at once (each takes seconds to import and connect)."""
        data_dirs = []
        for _ in range(count):
            data_dir = self.tmp_path / f"instance-{len(self.instances) + len(data_dirs)}"
            data_dir.mkdir()
            data_dirs.append(data_dir)
        instances = [ServerProcess(*self.args(*extra), data_dir=str(d)) for d in data_dirs]
        self.instances.extend(instances)
        errors = []

        def start(instance):
            try:
                instance.start()
            except Exception as error:  # reported below, in the test's thread
                errors.append(error)

        threads = [threading.Thread(target=start, args=(i,)) for i in instances]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return instances

    def stop(self) -> None:
        for instance in self.instances:
            instance.stop()


@pytest.fixture(params=["redis", "postgres"])
def cluster(request, moto, tmp_path):
    name = request.param
    require_service(name)
    if name == "redis":
        prefix = f"scaling-{uuid.uuid4().hex[:10]}:"
        info_args = ["--info-storage", "redis-info-storage", "--info-db-dsn", "redis://127.0.0.1:6379/0",
                     "--redis-key-prefix", prefix, "--redis-lock-ttl", "2"]
    else:
        table = f"scaling_{uuid.uuid4().hex[:10]}"
        info_args = ["--info-storage", "db-info-storage", "--info-db-dsn", postgres_dsn(), "--db-info-table", table]
    cluster = Cluster(moto, info_args, tmp_path)
    cluster.kind = name
    yield cluster
    cluster.stop()
    if name == "redis":
        clear_redis_prefix(prefix)
    else:
        drop_table(table)


def payload(size: int, seed: int = 1) -> bytes:
    return (bytes(range(256)) * (size // 256 + 1))[seed: seed + size]


def create(client: httpx.Client, url: str, length: int) -> str:
    response = client.post(url, headers={**TUS, "Upload-Length": str(length)})
    assert response.status_code == 201, response.text
    return response.headers["Location"]


def on(instance: ServerProcess, location: str) -> str:
    """The same upload's URL as seen through another instance (what a load balancer does)."""
    return instance.url + "/" + location.rsplit("/", 1)[1]


def patch(client, url: str, offset: int, data, **headers) -> httpx.Response:
    return client.patch(url, content=data, headers={**PATCH, "Upload-Offset": str(offset), **headers})


def offset_of(client, url: str) -> int:
    response = client.head(url, headers=TUS)
    assert response.status_code == 200, response.text
    return int(response.headers["Upload-Offset"])




async def assert_lock_of_a_killed_holder_is_released(store, upload_id: str, holder: list[str]) -> None:
    """`holder` is a command that takes the upload's lock in the store's own way, prints
    "locked" and waits; while it runs the lock times out for us, once it is killed (as a
    server instance dies mid-PATCH) the lock is ours."""
    import subprocess

    from tuspluggy.interfaces import LockTimeout

    process = subprocess.Popen(holder, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "locked"
        with pytest.raises(LockTimeout):
            async with store.make_locker().lock(upload_id, 0.2):
                pass
        process.kill()
        process.wait()
        async with store.make_locker().lock(upload_id, 5):
            pass
    finally:
        process.kill()
        process.wait()


def assert_unreachable_store_is_a_one_line_start_up_error(tmp_path, info_storage: str, dsn: str, shown: str) -> None:
    """`serve` with a store it cannot reach exits with one line naming the store and the
    DSN without its password (`shown`), never a traceback."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "tuspluggy.cli", "serve", "--port", "0", "--data-dir", str(tmp_path),
         "--info-storage", info_storage, "--info-db-dsn", dsn],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert f"{info_storage}: cannot use {shown}" in result.stderr
    assert "Traceback" not in result.stderr and "secret" not in result.stderr
