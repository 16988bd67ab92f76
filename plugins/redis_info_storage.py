"""redis-info-storage: upload records in Redis, shared by every instance.

Key layout (``P`` is --redis-key-prefix, empty by default as in Rustus):

- ``P{upload id}``: the record, a JSON string; with --redis-info-expiration it is set with
  ``EX n`` and every save refreshes it (a sliding TTL, as Rustus does).
- ``Ptuspluggy:uploads``: a sorted set of every upload id, scored by the record's expiry
  time (Unix seconds; +inf for uploads that never expire), so listing expired uploads for
  cleanup is one ZRANGEBYSCORE, not a SCAN of the whole database.
- ``Ptuspluggy:lock:{upload id}``: the per-upload lock (redis_lock.RedisLocker).

redis.asyncio is asyncio-only: every call goes through the core's asyncio portal
(``ctx.aio``), which keeps the client and its connection pool on one asyncio loop.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import AsyncIterator

import redis.asyncio as redis_asyncio
from redis.exceptions import RedisError

from tuspluggy.plugin_manager import PluginLoadError
from tuspluggy.upload import Upload, is_valid_upload_id

from .redis_lock import RedisLocker

LIST_BATCH = 500


class RedisInfoStore:
    def __init__(self, dsn: str, aio, *, prefix: str = "", expiration: int | None = None,
                 lock_ttl: float = 30) -> None:
        if aio is None:
            raise RuntimeError("redis-info-storage needs the asyncio portal (ctx.aio)")
        self.dsn = dsn
        self.aio = aio
        self.prefix = prefix
        self.expiration = expiration or None
        self.lock_ttl = lock_ttl
        self.client: redis_asyncio.Redis | None = None

    @property
    def index_key(self) -> str:
        return f"{self.prefix}tuspluggy:uploads"

    def _key(self, upload_id: str) -> str:
        return self.prefix + upload_id

    async def open(self) -> None:
        async def connect():
            # A blocking pool: a burst of requests waits for a connection instead of
            # failing with "too many connections".
            pool = redis_asyncio.BlockingConnectionPool.from_url(self.dsn, max_connections=100, timeout=20)
            client = redis_asyncio.Redis.from_pool(pool)  # the client owns (and closes) the pool
            await client.ping()
            return client

        try:
            self.client = await self.aio.run(connect)
        except (OSError, RedisError) as error:
            # A one-line start-up error naming the store, not a traceback.
            dsn = re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", self.dsn)
            raise PluginLoadError(f"redis-info-storage: cannot use {dsn}: {error}") from None

    async def close(self) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            await self.aio.run(lambda: client.aclose())

    async def ready(self) -> None:
        await self.aio.run(lambda: self.client.ping())

    async def get(self, upload_id: str) -> Upload | None:
        if not is_valid_upload_id(upload_id):
            return None
        data = await self.aio.run(lambda: self.client.get(self._key(upload_id)))
        if data is None:
            return None
        return Upload.from_dict(json.loads(data))

    async def save(self, upload: Upload) -> None:
        data = json.dumps(upload.to_dict(), separators=(",", ":"))
        score = upload.expires_at if upload.expires_at is not None else math.inf
        if self.expiration:
            # Redis drops the record by itself then: list it for cleanup by that time too,
            # so the index entry it leaves behind is pruned (see list_expired).
            score = min(score, time.time() + self.expiration)

        async def write():
            # MULTI/EXEC: the record and its index entry change together.
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.set(self._key(upload.id), data, ex=self.expiration)
                pipe.zadd(self.index_key, {upload.id: score})
                await pipe.execute()

        await self.aio.run(write)

    async def delete(self, upload_id: str) -> None:
        async def remove():
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.delete(self._key(upload_id))
                pipe.zrem(self.index_key, upload_id)
                await pipe.execute()

        await self.aio.run(remove)

    async def _ids_by_score(self, maximum: float) -> AsyncIterator[str]:
        start = 0
        while True:
            batch = await self.aio.run(lambda: self.client.zrangebyscore(
                self.index_key, "-inf", maximum, start=start, num=LIST_BATCH))
            for raw in batch:
                yield raw.decode()
            if len(batch) < LIST_BATCH:
                return
            start += LIST_BATCH

    async def list_ids(self) -> AsyncIterator[str]:
        async for upload_id in self._ids_by_score(math.inf):
            yield upload_id

    async def list_expired(self, now: float) -> AsyncIterator[str]:
        """Ids whose recorded expiry is before `now` (the cleanup checks each record again).

        Read in full before yielding: the cleanup removes what it is given, which would
        shift the offsets of a paginated read."""
        expired = [upload_id async for upload_id in self._ids_by_score(now)]
        if expired:
            # Records gone by their --redis-info-expiration TTL leave index entries: prune them.
            exists = await self.aio.run(lambda: self._exists(expired))
            gone = [upload_id for upload_id, there in zip(expired, exists) if not there]
            if gone:
                await self.aio.run(lambda: self.client.zrem(self.index_key, *gone))
            expired = [upload_id for upload_id, there in zip(expired, exists) if there]
        for upload_id in expired:
            yield upload_id

    async def _exists(self, upload_ids: list[str]) -> list[int]:
        async with self.client.pipeline(transaction=False) as pipe:
            for upload_id in upload_ids:
                pipe.exists(self._key(upload_id))
            return await pipe.execute()

    def make_locker(self) -> RedisLocker:
        return RedisLocker(self, self.lock_ttl)
