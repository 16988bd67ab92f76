"""A per-upload lock that holds across every instance sharing one PostgreSQL database.

A session-level advisory lock, taken with pg_try_advisory_lock on a connection that the
holder keeps for as long as it holds the lock. PostgreSQL releases session locks when
their connection ends, so a holder that dies (kill -9, lost machine) frees its uploads as
soon as the server notices the connection is gone: no TTL to wait for. We poll the
non-blocking form rather than block in pg_advisory_lock so the wait stays bounded and a
cancelled request never leaves a waiting backend behind.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from tuspluggy.interfaces import LockTimeout
from tuspluggy.locks import LocalLocker, retry_until


def advisory_key(namespace: str, upload_id: str) -> int:
    """A signed 64-bit key from the table name and the upload id (two tables, or two
    deployments in one database, never share locks)."""
    digest = hashlib.blake2b(f"{namespace}\0{upload_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class AdvisoryLocker:
    def __init__(self, store) -> None:
        self._store = store  # DbInfoStore: owns the lock connection pool on the asyncio portal
        self.local = LocalLocker()

    @asynccontextmanager
    async def lock(self, upload_id: str, timeout: float) -> AsyncIterator[None]:
        deadline = trio.current_time() + timeout
        async with self.local.lock(upload_id, timeout):
            aio = self._store.aio
            pool = self._store.lock_pool
            key = advisory_key(self._store.table, upload_id)
            wait = max(0.01, deadline - trio.current_time())
            try:
                # Shielded (and bounded by `wait`): a connection handed over just as the
                # request is cancelled would otherwise never go back to the pool.
                with trio.CancelScope(shield=True):
                    connection = await aio.run(lambda: pool.acquire(timeout=wait))
            except TimeoutError:
                raise LockTimeout(upload_id) from None
            try:
                await retry_until(
                    lambda: aio.run(lambda: connection.fetchval("SELECT pg_try_advisory_lock($1)", key)),
                    deadline, upload_id, first_delay=0.01,
                )
                try:
                    yield
                finally:
                    with trio.CancelScope(shield=True) as scope:
                        scope.deadline = trio.current_time() + 5
                        await aio.run(lambda: connection.execute("SELECT pg_advisory_unlock($1)", key))
            finally:
                with trio.CancelScope(shield=True) as scope:
                    scope.deadline = trio.current_time() + 5
                    # asyncpg's pool resets a returned connection with pg_advisory_unlock_all(),
                    # so even a failed unlock above cannot leak the lock to the next user.
                    await aio.run(lambda: pool.release(connection))
