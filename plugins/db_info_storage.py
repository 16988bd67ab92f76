"""db-info-storage: upload records in PostgreSQL, shared by every instance.

The name is the one Rustus 0.7 used. The table (--db-info-table, created if missing):

    CREATE TABLE IF NOT EXISTS tuspluggy_uploads (
        id         TEXT PRIMARY KEY,              -- the upload id
        info       JSONB NOT NULL,                -- the whole Upload record
        expires_at DOUBLE PRECISION,              -- Unix seconds; NULL = never expires
        updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX IF NOT EXISTS tuspluggy_uploads_expires_at ON tuspluggy_uploads (expires_at)
        WHERE expires_at IS NOT NULL;

A save is one INSERT ... ON CONFLICT DO UPDATE (atomic). asyncpg is asyncio-only: every
call goes through the core's asyncio portal (``ctx.aio``), where both pools live.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import asyncpg

from tuspluggy.plugin_manager import PluginLoadError
from tuspluggy.upload import Upload, is_valid_upload_id

from .db_lock import AdvisoryLocker

_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
LIST_BATCH = 500


def _without_password(dsn: str) -> str:
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", dsn)


class DbInfoStore:
    def __init__(self, dsn: str, aio, *, table: str = "tuspluggy_uploads", pool_size: int = 10,
                 lock_pool_size: int = 20) -> None:
        if aio is None:
            raise RuntimeError("db-info-storage needs the asyncio portal (ctx.aio)")
        if not _TABLE_NAME.match(table):
            raise PluginLoadError(f"--db-info-table {table!r} is not a plain SQL identifier")
        self.dsn = dsn
        self.aio = aio
        self.table = table
        self.pool_size = pool_size
        self.lock_pool_size = lock_pool_size
        self.pool: asyncpg.Pool | None = None
        # Locks hold a connection each for as long as a request runs; a pool of their own
        # keeps record reads and writes from queueing behind them.
        self.lock_pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        table = self.table

        async def connect():
            pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=self.pool_size)
            lock_pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=self.lock_pool_size)
            async with pool.acquire() as connection:
                # Several instances may start at once: serialise the DDL on an advisory lock.
                async with connection.transaction():
                    await connection.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"ddl:{table}")
                    await connection.execute(
                        f"CREATE TABLE IF NOT EXISTS {table} ("
                        " id TEXT PRIMARY KEY, info JSONB NOT NULL, expires_at DOUBLE PRECISION,"
                        " updated_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                    )
                    await connection.execute(
                        f"CREATE INDEX IF NOT EXISTS {table}_expires_at ON {table} (expires_at)"
                        " WHERE expires_at IS NOT NULL"
                    )
            return pool, lock_pool

        try:
            self.pool, self.lock_pool = await self.aio.run(connect)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            # A one-line start-up error naming the store, not a traceback.
            raise PluginLoadError(f"db-info-storage: cannot use {_without_password(self.dsn)}: {error}") from None

    async def close(self) -> None:
        pools = [p for p in (self.pool, self.lock_pool) if p is not None]
        self.pool = self.lock_pool = None
        for pool in pools:
            await self.aio.run(lambda: pool.close())

    async def ready(self) -> None:
        await self.aio.run(lambda: self.pool.fetchval("SELECT 1"))

    async def get(self, upload_id: str) -> Upload | None:
        if not is_valid_upload_id(upload_id):
            return None
        data = await self.aio.run(lambda: self.pool.fetchval(
            f"SELECT info::text FROM {self.table} WHERE id = $1", upload_id))
        if data is None:
            return None
        return Upload.from_dict(json.loads(data))

    async def save(self, upload: Upload) -> None:
        data = json.dumps(upload.to_dict(), separators=(",", ":"))
        await self.aio.run(lambda: self.pool.execute(
            f"INSERT INTO {self.table} (id, info, expires_at) VALUES ($1, $2::jsonb, $3)"
            " ON CONFLICT (id) DO UPDATE SET info = EXCLUDED.info, expires_at = EXCLUDED.expires_at,"
            " updated_at = now()",
            upload.id, data, upload.expires_at,
        ))

    async def delete(self, upload_id: str) -> None:
        await self.aio.run(lambda: self.pool.execute(f"DELETE FROM {self.table} WHERE id = $1", upload_id))

    async def _ids(self, where: str, *args) -> AsyncIterator[str]:
        # Keyset pagination: memory stays bounded however many uploads there are.
        after = ""
        while True:
            rows = await self.aio.run(lambda: self.pool.fetch(
                f"SELECT id FROM {self.table} WHERE id > ${len(args) + 1} {where} ORDER BY id LIMIT {LIST_BATCH}",
                *args, after))
            for row in rows:
                yield row["id"]
            if len(rows) < LIST_BATCH:
                return
            after = rows[-1]["id"]

    async def list_ids(self) -> AsyncIterator[str]:
        async for upload_id in self._ids(""):
            yield upload_id

    async def list_expired(self, now: float) -> AsyncIterator[str]:
        """Ids whose recorded expiry is before `now` (the cleanup checks each record again)."""
        async for upload_id in self._ids("AND expires_at < $1", now):
            yield upload_id

    def make_locker(self) -> AdvisoryLocker:
        return AdvisoryLocker(self)
