"""db-info-storage against the real PostgreSQL on 127.0.0.1:5432 (a unique table per test)."""

from __future__ import annotations

import sys
import uuid

import pytest

from tuspluggy.aio import AsyncioPortal
from tuspluggy.plugins.db_info_storage import DbInfoStore
from tuspluggy.plugins.db_lock import advisory_key
from tuspluggy.testing import require_service
from tuspluggy.upload import new_upload_id

from scaling_support import (
    assert_lock_of_a_killed_holder_is_released,
    assert_unreachable_store_is_a_one_line_start_up_error,
    postgres_dsn,
)


@pytest.fixture
async def portal():
    require_service("postgres")
    portal = AsyncioPortal()
    portal.start()
    yield portal
    await portal.close()


@pytest.fixture
async def table(portal):
    name = f"test_uploads_{uuid.uuid4().hex[:10]}"
    yield name
    store = DbInfoStore(postgres_dsn(), portal, table=name)
    await store.open()
    await portal.run(lambda: store.pool.execute(f"DROP TABLE IF EXISTS {name}"))
    await store.close()


async def open_store(portal, table) -> DbInfoStore:
    store = DbInfoStore(postgres_dsn(), portal, table=table)
    await store.open()
    return store


async def test_db_store_creates_its_table_if_missing(portal, table):
    store = await open_store(portal, table)
    try:
        columns = await portal.run(lambda: store.pool.fetch(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1", table))
        assert {r["column_name"]: r["data_type"] for r in columns} == {
            "id": "text", "info": "jsonb", "expires_at": "double precision",
            "updated_at": "timestamp with time zone",
        }
    finally:
        await store.close()
    again = await open_store(portal, table)  # a second instance finds it there
    await again.close()


HOLD_LOCK = """
import asyncio, sys, asyncpg
async def main():
    connection = await asyncpg.connect(sys.argv[1])
    assert await connection.fetchval("SELECT pg_try_advisory_lock($1)", int(sys.argv[2]))
    print("locked", flush=True)
    await asyncio.sleep(600)
asyncio.run(main())
"""


async def test_db_advisory_lock_of_a_killed_holder_is_released(portal, table):
    # Its connection dies with it: PostgreSQL drops the session lock.
    store = await open_store(portal, table)
    try:
        upload_id = new_upload_id()
        key = advisory_key(table, upload_id)
        await assert_lock_of_a_killed_holder_is_released(
            store, upload_id, [sys.executable, "-c", HOLD_LOCK, postgres_dsn(), str(key)])
    finally:
        await store.close()


def test_db_unreachable_is_a_one_line_start_up_error(tmp_path):
    assert_unreachable_store_is_a_one_line_start_up_error(
        tmp_path, "db-info-storage", "postgresql://tus:secret@127.0.0.1:1/x", "postgresql://tus:***@127.0.0.1:1/x")
