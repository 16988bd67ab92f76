"""A per-upload lock that holds across every instance sharing one Redis.

The lock is redis-py's ``Lock`` (SET NX PX with a random token, released and renewed by
Lua scripts that check the token), so we do not hand-write the protocol. It has a TTL:
the holder renews it every third of the TTL while its request runs, so a long PATCH keeps
it, and a holder that dies (kill -9, lost machine) stops renewing and the lock expires
after at most one TTL. Requests of one process first queue on a trio lock, so only one
of them at a time polls Redis.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
from redis.exceptions import LockError

from tuspluggy.interfaces import LockTimeout
from tuspluggy.locks import LocalLocker

log = logging.getLogger("tuspluggy.redis_lock")


class RedisLocker:
    def __init__(self, store, ttl: float) -> None:
        self._store = store  # RedisInfoStore: its client lives on the asyncio portal
        self.ttl = ttl
        self.local = LocalLocker()

    def key(self, upload_id: str) -> str:
        return f"{self._store.prefix}tuspluggy:lock:{upload_id}"

    @asynccontextmanager
    async def lock(self, upload_id: str, timeout: float) -> AsyncIterator[None]:
        deadline = trio.current_time() + timeout
        async with self.local.lock(upload_id, timeout):
            aio = self._store.aio
            lock = self._store.client.lock(
                self.key(upload_id), timeout=self.ttl, sleep=0.05, thread_local=False,
                blocking_timeout=max(0.0, deadline - trio.current_time()),
            )
            # Shielded (the wait is bounded by blocking_timeout): a lock taken just as the
            # request is cancelled must reach the release below, not linger for a TTL.
            with trio.CancelScope(shield=True):
                acquired = await aio.run(lock.acquire)
            if not acquired:
                raise LockTimeout(upload_id)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._renew, lock, upload_id)
                    try:
                        yield
                    finally:
                        nursery.cancel_scope.cancel()
            finally:
                with trio.CancelScope(shield=True) as scope:
                    scope.deadline = trio.current_time() + 5
                    try:
                        await aio.run(lock.release)
                    except LockError:
                        # It expired while we held it (we could not renew): say so loudly,
                        # another instance may have changed the upload meanwhile.
                        log.error("lock of upload %s had expired before its release", upload_id)
                    except Exception:
                        log.exception("could not release the lock of upload %s; it expires in %ss",
                                      upload_id, self.ttl)

    async def _renew(self, lock, upload_id: str) -> None:
        while True:
            await trio.sleep(self.ttl / 3)
            try:
                await self._store.aio.run(lambda: lock.reacquire())
            except Exception as error:
                log.error("could not renew the lock of upload %s: %s", upload_id, error)
