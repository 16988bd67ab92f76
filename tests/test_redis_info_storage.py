"""redis-info-storage against the real Redis on 127.0.0.1:6379 (unique key prefix per test)."""

from __future__ import annotations

import sys
import time
import uuid

import pytest
import trio

from tuspluggy.aio import AsyncioPortal
from tuspluggy.interfaces import LockTimeout
from tuspluggy.plugins.redis_info_storage import RedisInfoStore
from tuspluggy.testing import require_service
from tuspluggy.upload import Upload, new_upload_id

from scaling_support import (
    assert_lock_of_a_killed_holder_is_released,
    assert_unreachable_store_is_a_one_line_start_up_error,
)

DSN = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def portal():
    require_service("redis")
    portal = AsyncioPortal()
    portal.start()
    yield portal
    await portal.close()


@pytest.fixture
async def prefix(portal):
    prefix = f"test-{uuid.uuid4().hex[:10]}:"
    yield prefix
    store = RedisInfoStore(DSN, portal, prefix=prefix)
    await store.open()
    keys = await portal.run(lambda: store.client.keys(prefix + "*"))
    if keys:
        await portal.run(lambda: store.client.delete(*keys))
    await store.close()


async def open_store(portal, prefix, **kwargs) -> RedisInfoStore:
    store = RedisInfoStore(DSN, portal, prefix=prefix, **kwargs)
    await store.open()
    return store


async def test_redis_records_use_rustus_key_layout(portal, prefix):
    # The contract itself is in test_info_store_contract.py; here: Rustus's layout, the bare id holds the record.
    store = await open_store(portal, prefix)
    try:
        upload = Upload(id=new_upload_id(), length=10, metadata={"filename": "a.txt"})
        await store.save(upload)
        raw = await portal.run(lambda: store.client.get(prefix + upload.id))
        assert b'"filename"' in raw
    finally:
        await store.close()


async def test_redis_info_expiration_sets_a_sliding_ttl(portal, prefix):
    store = await open_store(portal, prefix, expiration=100)
    try:
        upload = Upload(id=new_upload_id(), length=5)
        await store.save(upload)
        ttl = await portal.run(lambda: store.client.ttl(prefix + upload.id))
        assert 90 < ttl <= 100
    finally:
        await store.close()


async def test_redis_lock_is_renewed_while_held(portal, prefix):
    store = await open_store(portal, prefix, lock_ttl=0.6)
    other = await open_store(portal, prefix, lock_ttl=0.6)
    try:
        upload_id = new_upload_id()
        async with store.make_locker().lock(upload_id, 1):
            await trio.sleep(1.5)  # longer than the TTL: only renewal keeps it
            with pytest.raises(LockTimeout):
                async with other.make_locker().lock(upload_id, 0.2):
                    pass
    finally:
        await store.close()
        await other.close()


HOLD_LOCK = """
import sys, time, redis
client = redis.Redis.from_url(sys.argv[1])
lock = client.lock(sys.argv[2], timeout=float(sys.argv[3]))
assert lock.acquire(blocking=False)
print("locked", flush=True)
time.sleep(600)
"""


async def test_redis_lock_of_a_killed_holder_expires(portal, prefix):
    store = await open_store(portal, prefix, lock_ttl=1.5)
    try:
        upload_id = new_upload_id()
        key = store.make_locker().key(upload_id)
        await assert_lock_of_a_killed_holder_is_released(
            store, upload_id, [sys.executable, "-c", HOLD_LOCK, DSN, key, "1.5"])
    finally:
        await store.close()


def test_redis_unreachable_is_a_one_line_start_up_error(tmp_path):
    assert_unreachable_store_is_a_one_line_start_up_error(
        tmp_path, "redis-info-storage", "redis://:secret@127.0.0.1:1/0", "redis://:***@127.0.0.1:1/0")


async def test_redis_records_dropped_by_their_ttl_leave_no_index_entry_behind(portal, prefix):
    store = await open_store(portal, prefix, expiration=1)
    try:
        upload = Upload(id=new_upload_id(), length=5, expires_at=None)
        await store.save(upload)
        assert [i async for i in store.list_expired(time.time())] == []
        await trio.sleep(1.3)  # Redis drops the record (EX 1)
        assert await store.get(upload.id) is None
        assert [i async for i in store.list_expired(time.time())] == []
        assert [i async for i in store.list_ids()] == []  # pruned from the index
    finally:
        await store.close()
